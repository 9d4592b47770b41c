"""End to end for «Выгодно вместе» (TV-01, TV-02, TV-05, TV-06) on a live gateway on 127.0.0.1:
python-smpplib handsets dial ``*985*2#`` and two ``*985*7…*2#`` joins, a billing day is moved
by the clock, and the discount is in the ledger; the same story through the self-care API
over real HTTP, with the members' SMS delivered to a bound ESME."""

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
from gateway.client import SmppClient
from services.clock import DAY
from services.profiles import Profiles, load_profiles
from tests.e2e.conftest import e2e_config, in_thread

pytestmark = pytest.mark.e2e

PROFILES: Profiles = load_profiles()
ORGANIZER, FIRST, SECOND = "79520000001", "79520000002", "79520000003"  # demo, all with autopay
FEE = 50_000  # «Мой онлайн»; «Мой разговор» (the second member) is 350 ₽
DISCOUNTED = {ORGANIZER: 47_500, FIRST: 47_500, SECOND: 33_250}  # 5 % for three members


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    from twisted.internet import reactor

    gw = Gateway(e2e_config(tmp_path), reactor, profiles=PROFILES)
    gw.start()
    yield gw
    pytest_twisted.blockon(gw.stop())


def handset(gateway: Gateway, address_range: str = "") -> SmppClient:
    host, port = gateway.smpp_address
    return SmppClient(host, port, timeout=5, address_range=address_range)


def http(
    gateway: Gateway, method: str, path: str, body: object = None, *, token: bool = True
) -> tuple[int, Any]:
    """One real HTTP request to the control API; the status and the JSON answer."""
    host, port = gateway.http_address
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {gateway.api_token}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(
        f"http://{host}:{port}{path}", data=data, method=method, headers=headers
    )
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def whole_sms(phone: SmppClient, sender: str, count: int) -> list[str]:
    """The next ``count`` SMS from ``sender``, their concatenated parts put back together."""
    joiner = coding.Reassembler()
    texts: list[str] = []
    while len(texts) < count:
        part = phone.wait_for(lambda r: r.source == sender and not r.is_receipt)
        if not part.esm_class & 0x40:
            texts.append(part.text)
            continue
        concat, payload = coding.parse_udh(part.short_message)
        assert concat is not None
        whole = joiner.add(part.destination, concat, payload, part.data_coding, 0.0)
        if whole is not None:
            texts.append(coding.decode_text(whole, part.data_coding))
    return texts


def fee_entries(gateway: Gateway, msisdn: str) -> list[Any]:
    status, ledger = http(gateway, "GET", f"/api/v1/subscribers/{msisdn}/ledger", token=False)
    assert status == 200
    return [e for e in ledger["entries"] if e["reason"] == "fee" and e["reference"] == "tariff"]


@pytest_twisted.inlineCallbacks
def test_tv_01_02_05_ussd_group_then_a_billing_day_discounts_the_fees(gateway: Gateway) -> Any:
    """TV-01, TV-02, TV-05: *985*2#, two *985*7…*2# joins, a billing day: 5 % in the ledger."""

    def dial_all() -> list[str]:
        with handset(gateway) as phones:
            screens = [phones.dial(ORGANIZER, "*985*2#").text]
            for member in (FIRST, SECOND):
                screens.append(phones.dial(member, f"*985*{ORGANIZER}*2#").text)
            return screens

    created, first, second = yield in_thread(dial_all)
    assert "создана" in created and f"*985*{ORGANIZER}*2#" in created
    assert "Участников: 2, скидка 0 %" in first and "Участников: 3, скидка 5 %" in second
    gateway.advance(32 * DAY)
    for msisdn, amount in DISCOUNTED.items():
        entries = yield in_thread(fee_entries, gateway, msisdn)
        assert entries[-1]["amount"] == -amount and "5 %" in entries[-1]["detail"]


@pytest_twisted.inlineCallbacks
def test_tv_01_02_05_api_group_then_a_billing_day_discounts_the_fees(gateway: Gateway) -> Any:
    """TV-01, TV-02, TV-04, TV-05 over HTTP: the organizer's ESME gets the joins by SMS,
    a billing day moved by the clock API charges every member 5 % less."""

    def story() -> dict[str, Any]:
        with handset(gateway, address_range=ORGANIZER) as organizer_phone:
            status, made = http(gateway, "POST", f"/api/v1/tele2ru/together/{ORGANIZER}/group")
            assert status == 201, made
            for member in (FIRST, SECOND):
                status, joined = http(
                    gateway,
                    "POST",
                    f"/api/v1/tele2ru/together/{member}/join",
                    {"organizer": ORGANIZER},
                )
                assert status == 200, joined
            news = whole_sms(organizer_phone, "985", 2)
            status, view = http(
                gateway, "GET", f"/api/v1/tele2ru/together/{SECOND}/group", token=False
            )
            assert status == 200
            status, _clock = http(gateway, "POST", "/api/v1/clock/advance", {"seconds": 32 * DAY})
            assert status == 200
            fees = {msisdn: fee_entries(gateway, msisdn)[-1] for msisdn in DISCOUNTED}
            return {"news": news, "view": view["group"], "fees": fees}

    result = yield in_thread(story)
    first_news, second_news = result["news"]
    assert FIRST in first_news and "Участников: 2" in first_news
    assert SECOND in second_news and "Участников: 3, скидка группы: 5 %" in second_news
    view = result["view"]
    assert [m["msisdn"] for m in view["members"]] == [ORGANIZER, FIRST, SECOND]
    assert all(m["autopay"] and m["fee_paid"] for m in view["members"])
    assert view["percent"] == 5
    for msisdn, amount in DISCOUNTED.items():
        entry = result["fees"][msisdn]
        assert entry["amount"] == -amount and "«Выгодно вместе»: 5 %" in entry["detail"]


@pytest_twisted.inlineCallbacks
def test_tv_03_refusal_over_http_has_its_code(gateway: Gateway) -> Any:
    """TV-03 over HTTP: «Классический» cannot create a group (409 tariff_not_eligible)."""
    status, body = yield in_thread(
        http, gateway, "POST", "/api/v1/tele2ru/together/79520000013/group"
    )
    assert (status, body["error"]) == (409, "tariff_not_eligible")
