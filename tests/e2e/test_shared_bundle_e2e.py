"""End to end: MTS «Общий пакет» over real SMPP (python-smpplib handsets through
gateway/client.py) and the real control API on 127.0.0.1 — invite by USSD, the SMS invitation
from 434, «ДА#0001», both confirmations, group info, a personal limit set in «Личный кабинет»,
use over it, the notification, leaving; and the hour of MP-09 on the clock."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from gateway import coding
from gateway.app import Gateway
from gateway.client import Received, SmppClient
from services import shared_bundle
from services.profiles import Profiles, load_profiles
from tests.e2e.conftest import e2e_config, in_thread

pytestmark = pytest.mark.e2e

INITIATOR = "79160000001"  # demo: «Наш Smart», money for the fee
INVITED = "79160000015"  # demo: «Smart» — gets an SMS invitation (MP-06)
PROFILES: Profiles = load_profiles()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    """The e2e gateway with the demo population and the service's self-care actions mounted."""
    from twisted.internet import reactor

    gw = Gateway(e2e_config(tmp_path), reactor, profiles=PROFILES)
    if not any(pattern.startswith("/api/v1/mts/shared-bundle") for _, pattern in gw.api.routes):
        shared_bundle.add_routes(gw.api, shared_bundle.SelfCare(world=gw.world))
    gw.start()
    yield gw
    pytest_twisted.blockon(gw.stop())


class Lab:
    """A handset ESME for the MTS numbers plus the control API, used from one thread."""

    def __init__(self, gateway: Gateway) -> None:
        host, port = gateway.http_address
        self.base = f"http://{host}:{port}"
        self.token = gateway.api_token
        self.phone = SmppClient(*gateway.smpp_address, timeout=5, address_range="7916.*")

    def api(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers=headers)  # fmt: skip
        try:
            with opener.open(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def sms_to(self, msisdn: str) -> str:
        return whole_sms(self.phone, msisdn, "434")


def whole_sms(phone: SmppClient, msisdn: str, sender: str) -> str:
    """The next SMS from ``sender`` to ``msisdn``, its concatenated parts joined (GW-09)."""

    def part_of(r: Received) -> bool:
        return r.destination == msisdn and r.source == sender and r.service_type != "USSD"

    first = phone.wait_for(part_of)
    if not first.esm_class & 0x40:
        return first.text
    concat, _ = coding.parse_udh(first.short_message)
    if concat is None:
        return first.text
    parts = {concat.sequence: first.text}
    while len(parts) < concat.total:
        more = phone.wait_for(
            lambda r: (
                part_of(r)
                and bool(r.esm_class & 0x40)
                and (c := coding.parse_udh(r.short_message)[0]) is not None
                and c.reference == concat.reference
            )
        )
        found = coding.parse_udh(more.short_message)[0]
        assert found is not None
        parts[found.sequence] = more.text
    return "".join(parts[i] for i in sorted(parts))


def story(gateway: Gateway) -> dict[str, Any]:
    lab = Lab(gateway)
    seen: dict[str, Any] = {}
    with lab.phone:
        seen["invite_screen"] = lab.phone.dial(INITIATOR, f"*434*1*{INVITED}#")
        seen["invitation"] = lab.sms_to(INVITED)
        balance = lab.api("GET", f"/api/v1/subscribers/{INVITED}")[1]["balance"]
        lab.phone.send_sms(INVITED, "434", "ДА#0001")
        seen["joined_participant"] = lab.sms_to(INVITED)
        seen["joined_initiator"] = lab.sms_to(INITIATOR)
        seen["free_answer"] = (
            balance == lab.api("GET", f"/api/v1/subscribers/{INVITED}")[1]["balance"]
        )
        seen["info_screen"] = lab.phone.dial(INITIATOR, "*434*2#")
        seen["info"] = lab.sms_to(INITIATOR)
        seen["limits"] = lab.api(
            "PUT",
            f"/api/v1/mts/shared-bundle/{INITIATOR}/members/{INVITED}/limits",
            {"voice": 10},
        )
        lab.sms_to(INVITED)  # «Инициатор … установил вам лимиты»
        seen["usage"] = lab.api(
            "POST", f"/api/v1/subscribers/{INVITED}/usage", {"kind": "voice", "amount": 15}
        )
        seen["limit_sms"] = lab.sms_to(INVITED)
        seen["leave_screen"] = lab.phone.dial(INVITED, "*434*0#")
        seen["left_participant"] = lab.sms_to(INVITED)
        seen["left_initiator"] = lab.sms_to(INITIATOR)
        seen["view"] = lab.api("GET", f"/api/v1/mts/shared-bundle/{INITIATOR}")
    return seen


@pytest_twisted.inlineCallbacks
def test_mp_05_mp_07_mp_10_mp_12_mp_19_mp_20_a_whole_group_story_over_smpp(
    gateway: Gateway,
) -> Any:
    """MP-05 … MP-20: *434*1*7…# → SMS from 434 → «ДА#0001» → confirmations → *434*2# →
    limit in the API → use over it → the SMS → *434*0# → confirmations to both."""
    seen = yield in_thread(story, gateway)
    screen = seen["invite_screen"]
    assert screen.ends_dialogue and screen.service_type == "USSD"
    assert screen.text.startswith(f"Приглашение отправлено абоненту {INVITED}.")
    invitation = seen["invitation"]
    assert f"Абонент {INITIATOR} приглашает вас в группу «Общий пакет»" in invitation
    assert "ДА#0001" in invitation and "НЕТ#0001" in invitation
    assert seen["joined_participant"].startswith(
        f"Вы участник группы «Общий пакет» абонента {INITIATOR}"
    )
    assert seen["joined_initiator"] == (
        f"Абонент {INVITED} присоединился к вашей группе «Общий пакет». Участников: 1 из 5."
    )
    assert seen["free_answer"], "MP-07: «ДА» costs nothing"
    assert seen["info_screen"].text == "Информация о группе «Общий пакет» отправлена вам в SMS."
    info = seen["info"]
    assert "Участников: 1 из 5" in info and INVITED in info and "Пакеты обновятся" in info
    assert seen["limits"][0] == 200 and seen["limits"][1]["limits"]["voice"] == 10
    status, usage = seen["usage"]
    assert status == 200
    # MP-12/MP-13: 10 minutes shared, then the participant's own «Smart» minutes
    assert [(p["source"][:8], p["amount"]) for p in usage["paid_by"]] == [
        ("shared_b", 10),
        ("package:", 5),
    ]
    assert seen["limit_sms"].startswith("Ваш лимит минут в группе «Общий пакет» исчерпан")
    assert seen["leave_screen"].text == f"Вы вышли из группы «Общий пакет» абонента {INITIATOR}."
    assert seen["left_participant"].startswith("Вы вышли из группы «Общий пакет»")
    assert seen["left_initiator"] == f"Абонент {INVITED} вышел из вашей группы «Общий пакет»."
    assert seen["view"][1]["group"] is None  # the last participant out disbands the group


def expiry(gateway: Gateway) -> dict[str, Any]:
    lab = Lab(gateway)
    seen: dict[str, Any] = {}
    with lab.phone:
        status, body = lab.api(
            "POST", f"/api/v1/mts/shared-bundle/{INITIATOR}/invitations", {"msisdn": INVITED}
        )
        seen["invited"] = (status, body)
        lab.sms_to(INVITED)
        seen["advanced"] = lab.api("POST", "/api/v1/clock/advance", {"seconds": 3600})
        seen["expired"] = lab.sms_to(INITIATOR)
        lab.phone.send_sms(INVITED, "434", "ДА")
        seen["late"] = lab.sms_to(INVITED)
    return seen


@pytest_twisted.inlineCallbacks
def test_mp_09_an_unanswered_invitation_is_annulled_after_an_hour_on_the_clock(
    gateway: Gateway,
) -> Any:
    """MP-09: the API invites, the clock moves an hour, the initiator is told; «ДА» is too late."""
    seen = yield in_thread(expiry, gateway)
    assert seen["invited"][0] == 201 and seen["invited"][1]["result"] == "invited"
    assert seen["advanced"][0] == 200
    assert seen["expired"].startswith(
        f"Абонент {INVITED} не ответил на приглашение в группу «Общий пакет» в течение часа"
    )
    assert seen["late"].startswith("У вас нет действующих приглашений")
