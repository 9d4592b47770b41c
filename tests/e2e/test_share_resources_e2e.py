"""End to end: Tele2 Kazakhstan «Делитесь ресурсами» over real SMPP (python-smpplib handsets
through gateway/client.py) and the real control API (the app) on 127.0.0.1 — an invitation
in the app, its SMS from 2221 once the clock has moved, «1» to 2221, the participants tab,
and a removal with its confirmation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from gateway.app import Gateway
from gateway.client import SmppClient
from services import share_resources
from services.profiles import Profiles, load_profiles
from tests.e2e.conftest import e2e_config, in_thread
from tests.e2e.test_shared_bundle_e2e import Lab, whole_sms

pytestmark = pytest.mark.e2e

OWNER = "77010000001"  # demo: «Tele2 Дома Duo», 2 places
INVITEE = "77010000011"
SECOND = "77010000012"
THIRD = "77010000013"
BASE = f"/api/v1/tele2kz/share/{OWNER}"
PROFILES: Profiles = load_profiles()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    """The e2e gateway with the demo population and the app's actions mounted."""
    from twisted.internet import reactor

    gw = Gateway(e2e_config(tmp_path), reactor, profiles=PROFILES)
    if not any(pattern.startswith("/api/v1/tele2kz/share") for _, pattern in gw.api.routes):
        share_resources.add_routes(gw.api, share_resources.SelfCare(world=gw.world))
    gw.start()
    yield gw
    pytest_twisted.blockon(gw.stop())


def story(gateway: Gateway) -> dict[str, Any]:
    lab = Lab(gateway)
    lab.phone = SmppClient(*gateway.smpp_address, timeout=5, address_range="770.*")
    seen: dict[str, Any] = {}
    with lab.phone:
        seen["invited"] = lab.api("POST", f"{BASE}/invitations", {"msisdn": INVITEE})
        seen["second"] = lab.api("POST", f"{BASE}/invitations", {"msisdn": SECOND})
        seen["third"] = lab.api("POST", f"{BASE}/invitations", {"msisdn": THIRD})
        log = lab.api("GET", f"/api/v1/messages?msisdn={INVITEE}")[1]["messages"]
        seen["before"] = [m for m in log if m["source"] == "2221"]
        seen["advanced"] = lab.api("POST", "/api/v1/clock/advance", {"seconds": 5 * 60})
        seen["invitation"] = whole_sms(lab.phone, INVITEE, "2221")
        lab.phone.send_sms(INVITEE, "2221", "1")
        seen["joined_member"] = whole_sms(lab.phone, INVITEE, "2221")
        seen["joined_owner"] = whole_sms(lab.phone, OWNER, "2221")
        seen["cancelled"] = lab.api("DELETE", f"{BASE}/invitations/{SECOND}")
        seen["view"] = lab.api("GET", BASE)
        status, asked = lab.api("POST", f"{BASE}/members/{INVITEE}/removal")
        seen["asked"] = (status, asked)
        seen["still_member"] = lab.api("GET", BASE)[1]["members"]
        seen["removed"] = lab.api(
            "POST",
            f"{BASE}/members/{INVITEE}/removal/confirm",
            {"confirmation": asked["confirmation"]},
        )
        seen["removed_sms"] = whole_sms(lab.phone, INVITEE, "2221")
        seen["after"] = lab.api("GET", BASE)
        log = lab.api("GET", f"/api/v1/messages?msisdn={INVITEE}")[1]["messages"]
        seen["from_2221"] = [m["at"] for m in log if m["source"] == "2221"]
        seen["invited_at"] = seen["invited"][1]["group"]["invitations"][0]["created_at"]
    return seen


@pytest_twisted.inlineCallbacks
def test_sr_02_to_sr_06_invite_accept_view_cancel_and_remove_over_smpp(gateway: Gateway) -> Any:
    """SR-02 … SR-06: the app invites, the SMS from 2221 comes within 5 minutes, «1» joins,
    the tab counts invitations as places, cancel frees one, removal waits for confirmation."""
    seen = yield in_thread(story, gateway)
    assert seen["invited"][0] == 201
    assert seen["invited"][1]["group"]["free_places"] == 1
    assert seen["third"][0] == 409 and seen["third"][1]["error"] == "no_free_places"
    assert seen["before"] == []  # SR-02: the SMS leaves on the clock, not at once
    assert seen["advanced"][0] == 200
    assert seen["invitation"].endswith("Чтобы принять приглашение, отправьте 1 на номер 2221.")
    assert f"Абонент {OWNER} приглашает вас" in seen["invitation"]
    assert seen["joined_member"].startswith(
        f"Вы в группе «Делитесь ресурсами» абонента {OWNER}. Вам доступно: Интернет 5 ГБ"
    )
    assert seen["joined_owner"].startswith(f"Номер {INVITEE} принял приглашение")
    assert seen["cancelled"][0] == 200
    view = seen["view"][1]
    assert [m["msisdn"] for m in view["members"]] == [INVITEE]
    assert view["invitations"] == [] and view["free_places"] == 1
    status, asked = seen["asked"]
    assert status == 200 and asked["result"] == "confirmation_required"
    assert asked["message"] == (
        f"Удалить номер {INVITEE} из группы «Делитесь ресурсами»? Подтвердите удаление."
    )
    assert [m["msisdn"] for m in seen["still_member"]] == [INVITEE]
    assert seen["removed"][0] == 200 and seen["removed"][1]["result"] == "removed"
    assert seen["removed_sms"].startswith(f"Абонент {OWNER} удалил ваш номер")
    assert seen["after"][1]["members"] == [] and seen["after"][1]["free_places"] == 2
    # SR-02 on the simulator clock: the invitation SMS left within 5 minutes of the request
    assert 0 < seen["from_2221"][0] - seen["invited_at"] <= 5 * 60
