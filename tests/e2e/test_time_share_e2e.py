"""End to end over real TCP on 127.0.0.1 with python-smpplib (``gateway.client.SmppClient``):
Telenor «Time Share» by SMS to 125 (SPEC TS-01, TS-06, TS-07, TS-10) against a real gateway."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_twisted

from gateway import coding
from gateway.app import Gateway
from gateway.client import Received, SmppClient
from services.model import UsageKind
from services.time_share import Side, TimeShare, read_terms
from tests.e2e.conftest import e2e_config, in_thread, start_gateway

pytestmark = pytest.mark.e2e

SENDER = "359881000001"  # meets every condition; topped up 15 лв. 5 days ago (no fee)
RECIPIENT = "359898123456"  # the seed's 0898123456
OLD_TOPUP = "359881000024"  # last top-up 40 days ago


def client(gateway: Gateway) -> SmppClient:
    host, port = gateway.smpp_address
    return SmppClient(host, port, timeout=5)  # the account's address_range ".*": every handset


def journal(gateway: Gateway) -> TimeShare:
    """A view of the gateway's Time Share journal (the same store)."""
    profile = gateway.profiles["telenor"]
    return TimeShare(gateway.world, profile, read_terms(profile))


@attrs.frozen
class Sms:
    """One whole SMS from 125 as the handset shows it (concatenated parts rejoined)."""

    to: str
    text: str
    data_coding: int


def whole_messages(parts: list[Received]) -> tuple[list[Sms], int]:
    """Rejoin concatenated parts (GW-09); also how many parts are still missing."""
    whole: list[Sms] = []
    pending: dict[tuple[str, int], dict[int, Received]] = {}
    totals: dict[tuple[str, int], int] = {}
    for part in parts:
        if not part.esm_class & 0x40:
            whole.append(Sms(part.destination, part.text, part.data_coding))
            continue
        concat, _ = coding.parse_udh(part.short_message)
        assert concat is not None
        key = (part.destination, concat.reference)
        pending.setdefault(key, {})[concat.sequence] = part
        totals[key] = concat.total
    missing = 0
    for key, got in pending.items():
        if len(got) < totals[key]:
            missing += totals[key] - len(got)
            continue
        payload = b"".join(coding.parse_udh(got[n].short_message)[1] for n in sorted(got))
        first = got[min(got)]
        whole.append(Sms(key[0], coding.decode_text(payload, first.data_coding), first.data_coding))
    return whole, missing


def send_and_collect(gateway: Gateway, sender: str, text: str, count: int) -> list[Sms]:
    """Send ``text`` to 125 as ``sender``; the ``count`` whole SMS that 125 sends back."""
    with client(gateway) as handset:
        handset.submit(sender, "125", text)
        parts: list[Received] = []
        while True:
            whole, missing = whole_messages(parts)
            if len(whole) >= count and not missing:
                break
            parts.append(handset.wait_for(lambda r: r.source == "125"))
        parts += [r for r in handset.drain(0.2) if r.source == "125"]
        return whole_messages(parts)[0]


@pytest_twisted.inlineCallbacks
def test_ts_01_ts_06_ts_10_g_sms_to_125_brings_two_confirmations(gateway: Gateway) -> Any:
    """TS-01/TS-06/TS-10: «G,0898123456,30» to 125 → an SMS to each party; the SMS is free."""
    world = gateway.world
    balance = world.get(SENDER).balance
    network = world.available(
        RECIPIENT, UsageKind.VOICE, now=gateway.now(), destination="network", exact=True
    )
    got = yield in_thread(send_and_collect, gateway, SENDER, "G,0898123456,30", 2)
    by_party = {r.to: r for r in got}
    assert sorted(by_party) == [SENDER, RECIPIENT] and len(got) == 2
    assert by_party[SENDER].text == (
        "Успешно изпратихте 30 мин. към мрежата на Теленор на 0898123456. "
        "Услугата е безплатна за вас. Наличен кредит: 10,00 лв."
    )
    assert by_party[RECIPIENT].text.startswith(
        "Получихте 30 мин. към мрежата на Теленор от 0881000001 с услугата Time Share. Валидни до "
    )
    assert by_party[SENDER].data_coding == 8  # Bulgarian travels as UCS2
    assert world.get(SENDER).balance == balance  # TS-09 free and TS-10 no SMS charge
    assert [e.reason for e in world.ledger(SENDER)] == ["opening_balance"]
    now = gateway.now()
    assert (
        world.available(RECIPIENT, UsageKind.VOICE, now=now, destination="network", exact=True)
        == network + 30
    )
    (transfer,) = [t for t in journal(gateway).transfers(SENDER) if t.side is Side.BOTH]
    assert (transfer.recipient, transfer.minutes, transfer.destination) == (
        RECIPIENT,
        30,
        "network",
    )


@pytest_twisted.inlineCallbacks
def test_ts_07_a_refused_sms_gets_the_reason_by_sms_and_nothing_moves(gateway: Gateway) -> Any:
    """TS-04/TS-07: a sender whose last top-up is 40 days old gets the reason from 125 only."""
    got = yield in_thread(send_and_collect, gateway, OLD_TOPUP, "G,0898123456,10", 1)
    assert [(r.to, r.text) for r in got] == [
        (OLD_TOPUP, "Time Share: отказ. Последното ви презареждане е преди повече от 31 дни.")
    ]
    assert journal(gateway).transfers(OLD_TOPUP) == []


@pytest_twisted.inlineCallbacks
def test_ts_03_a_count_outside_10_to_50_is_refused_with_its_reason(gateway: Gateway) -> Any:
    """TS-03/TS-07: «G,0898123456,35» comes back with the multiple-of-10 reason."""
    got = yield in_thread(send_and_collect, gateway, SENDER, "G,0898123456,35", 1)
    assert [(r.to, r.text) for r in got] == [(SENDER, "Броят минути трябва да е кратен на 10.")]


@pytest_twisted.inlineCallbacks
def test_ts_06_an_acknowledged_transfer_survives_a_gateway_restart(tmp_path: Path) -> Any:
    """TS-06: once 125 has answered, the transfer is in the state file after a restart."""
    config = e2e_config(tmp_path)
    first = start_gateway(config)
    try:
        yield in_thread(send_and_collect, first, SENDER, "F,0898123456,20", 2)
    finally:
        yield first.stop()
    second = start_gateway(config)
    try:
        made = [t for t in journal(second).transfers(SENDER) if t.side is Side.BOTH]
        assert [(t.recipient, t.minutes, t.destination) for t in made] == [
            (RECIPIENT, 20, "friends")
        ]
        packages = second.world.packages(RECIPIENT, include_expired=True)
        assert [p.initial for p in packages if p.source == "time_share"] == [20]
        # The sender's window remembers it: 30 more would pass 50.
        got = yield in_thread(send_and_collect, second, SENDER, "G,0898123456,40", 1)
        assert got[0].text.startswith("Time Share: отказ. Лимитът е 50 мин.")
    finally:
        yield second.stop()
