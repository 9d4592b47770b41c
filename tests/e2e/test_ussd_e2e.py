"""USSD dialogues end to end over real TCP with python-smpplib as the handset (GW-10, GW-11,
SE-01 … SE-05, TS-02, TS-07, MP-05, MP-20): My Menu *123#, the Time Share path, invalid
choices, timeouts on the simulator clock, aborts, paging, its_session_info and each dialect."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from gateway.app import Gateway
from gateway.client import Received, SmppClient
from gateway.config import EsmeAccount
from sessions.paging import fits_ussd
from tests.e2e.conftest import ACCOUNTS, e2e_config, in_thread, start_gateway

pytestmark = pytest.mark.e2e

SENDER = "359881000001"  # Time Share sender meeting every condition, no fee (seed 004)
RECIPIENT_TYPED, RECIPIENT = "0898123456", "359898123456"
INITIATOR = "79160000001"
MY_MENU = (
    "MyMenu\n1 Telenor paketi\n2 Internet\n3 Paketi kam opredeleni strani\n4 Balans\n5 Uslugi\n"
    "6 Oferta za vas\n7 Promo oferti"
)
DIALECT_ACCOUNTS = (
    *ACCOUNTS,
    EsmeAccount(system_id="tata", password="tata", dialect="its-end-bit"),
    EsmeAccount(system_id="plain", password="plain", dialect="no-ussd-op"),
)


@pytest.fixture
def ussd_gateway(tmp_path: Path) -> Iterator[Gateway]:
    gw = start_gateway(e2e_config(tmp_path, accounts=DIALECT_ACCOUNTS))
    yield gw
    pytest_twisted.blockon(gw.stop())


def handset(gateway: Gateway, system_id: str = "tester", password: str = "secret") -> SmppClient:
    host, port = gateway.smpp_address
    return SmppClient(host, port, system_id=system_id, password=password, timeout=5)


def to_the_end(client: SmppClient, msisdn: str, screen: Received) -> tuple[str, list[Received]]:
    """Turn the pages of a paged final text (GW-11): its whole text and every page."""
    pages = [screen]
    while pages[-1].ussd_service_op == 2 and pages[-1].text.endswith("\n0 още"):
        pages.append(client.answer(msisdn, "0"))
    return "\n".join(p.text.removesuffix("\n0 още") for p in pages), pages


def dialogue(
    client: SmppClient, msisdn: str, code: str, *answers: str, **its: Any
) -> list[Received]:
    """Dial, answer each in turn; every screen received."""
    screens = [client.dial(msisdn, code, **its)]
    for text in answers:
        screens.append(client.answer(msisdn, text, **its))
    return screens


@pytest_twisted.inlineCallbacks
def test_ts_02_my_menu_over_smpp_then_balans(ussd_gateway: Gateway) -> Any:
    """TS-02, GW-10: *123# brings My Menu as a USSR request (op 2) from 123; «4» shows the
    balance and minutes (paged, GW-11) and ends with a PSSR response (op 17)."""

    def run() -> tuple[Received, str, list[Received]]:
        with handset(ussd_gateway) as client:
            menu, first = dialogue(client, SENDER, "*123#", "4")
            return (menu, *to_the_end(client, SENDER, first))

    menu, balance, pages = yield in_thread(run)
    assert (menu.text, menu.ussd_service_op, menu.source) == (MY_MENU, 2, "123")
    assert pages[-1].ussd_service_op == 17
    assert balance.startswith("Баланс: 10,00 лв.\nМинути към мрежата на Теленор: 600")
    assert ussd_gateway.dialogues.dialogue(SENDER) is None


@pytest_twisted.inlineCallbacks
def test_ts_07_the_time_share_menu_path_transfers_and_confirms(ussd_gateway: Gateway) -> Any:
    """TS-02, TS-07: *123# → 5 → 3 → recipient → destination → minutes: the real Time Share
    service moves the minutes; the result is the final screen and both parties get an SMS."""

    def run() -> tuple[list[Received], str, list[Received]]:
        with handset(ussd_gateway) as client:
            screens = dialogue(client, SENDER, "*123#", "5", "3", RECIPIENT_TYPED, "2", "30")
            result, pages = to_the_end(client, SENDER, screens[-1])
            sms = [
                client.wait_for(
                    lambda r, who=who: r.service_type != "USSD" and r.destination == who
                )
                for who in (SENDER, RECIPIENT)
            ]
            return screens + pages[1:], result, sms

    screens, result, sms = yield in_thread(run)
    assert [s.ussd_service_op for s in screens[:5]] == [2, 2, 2, 2, 2]
    assert screens[-1].ussd_service_op == 17
    assert "Time Share" in screens[2].text and "мрежата на Теленор" in screens[3].text
    assert "30" in result and "Успешно" in result
    assert [m.destination for m in sms] == [SENDER, RECIPIENT]
    assert all(m.source == "125" for m in sms)


@pytest_twisted.inlineCallbacks
def test_ts_07_a_refusal_through_the_menu_is_told_on_the_screen(ussd_gateway: Gateway) -> Any:
    """TS-07: a sender whose last top-up was 40 days ago is refused on the menu screen."""

    def run() -> tuple[list[Received], str]:
        with handset(ussd_gateway) as client:
            screens = dialogue(
                client, "359881000024", "*123#", "5", "3", RECIPIENT_TYPED, "2", "10"
            )
            result, pages = to_the_end(client, "359881000024", screens[-1])
            assert client.drain(0.3) == []  # no SMS: it asked on the screen
            return [*screens, *pages[1:]], result

    screens, result = yield in_thread(run)
    assert screens[-1].ussd_service_op == 17
    assert result and "Успешно" not in result


@pytest_twisted.inlineCallbacks
def test_se_03_an_invalid_choice_reshows_the_menu_with_an_error_line(ussd_gateway: Gateway) -> Any:
    """SE-03: «9» at My Menu re-shows it under the error line; the dialogue goes on."""

    def run() -> list[Received]:
        with handset(ussd_gateway) as client:
            return dialogue(client, SENDER, "*123#", "9", "5")

    _, again, services = yield in_thread(run)
    assert again.text == "Nevaliden izbor.\n" + MY_MENU and again.ussd_service_op == 2
    assert services.text.startswith("Uslugi\n1 Aktivni uslugi") and services.ussd_service_op == 2


@pytest_twisted.inlineCallbacks
def test_se_05_a_bad_number_is_asked_again_then_ends_after_three_tries(
    ussd_gateway: Gateway,
) -> Any:
    """SE-05: the recipient prompt re-asks with the reason, and the third bad number ends."""

    def run() -> list[Received]:
        with handset(ussd_gateway) as client:
            return dialogue(client, SENDER, "*123#", "5", "3", "12", "0812", "x")

    screens = yield in_thread(run)
    assert screens[3].text.startswith("Невалиден номер.\nTime Share")
    assert screens[4].ussd_service_op == 2
    assert screens[5].ussd_service_op == 17
    assert "Твърде много невалидни опити" in screens[5].text


@pytest_twisted.inlineCallbacks
def test_se_02_a_late_answer_after_the_timeout_gets_session_expired(ussd_gateway: Gateway) -> Any:
    """SE-02: with no answer for 120 s on the simulator clock the dialogue ends; the late answer
    gets the final «session expired» text (the clock is moved, nothing sleeps)."""
    client = handset(ussd_gateway)
    yield in_thread(client.connect)
    try:
        menu = yield in_thread(client.dial, SENDER, "*123#")
        assert menu.ussd_service_op == 2
        ussd_gateway.advance(119)
        assert ussd_gateway.dialogues.dialogue(SENDER) is not None
        ussd_gateway.advance(1)
        assert ussd_gateway.dialogues.dialogue(SENDER) is None
        late = yield in_thread(client.answer, SENDER, "4")
    finally:
        yield in_thread(client.close)
    assert (late.text, late.ussd_service_op) == (
        "Времето за отговор изтече. Наберете *123# отново.",
        17,
    )


@pytest_twisted.inlineCallbacks
def test_gw_10_abort_by_op_32_and_by_an_empty_answer_ends_without_reply(
    ussd_gateway: Gateway,
) -> Any:
    """GW-10: op 32 and an empty answer both end the dialogue; the handset gets nothing."""

    def run() -> list[Received]:
        with handset(ussd_gateway) as client:
            client.dial(SENDER, "*123#")
            client.release(SENDER)
            quiet = client.drain(0.3)
            client.dial(SENDER, "*123#")
            client.send_ussd(SENDER, "", op=18)
            return quiet + client.drain(0.3)

    after_aborts = yield in_thread(run)
    assert after_aborts == []
    assert ussd_gateway.dialogues.dialogue(SENDER) is None


@pytest_twisted.inlineCallbacks
def test_se_01_dialling_again_ends_the_open_dialogue(ussd_gateway: Gateway) -> Any:
    """SE-01: a new string while a dialogue is open replaces it; one dialogue per MSISDN."""

    def run() -> list[Received]:
        with handset(ussd_gateway) as client:
            return [
                client.dial(SENDER, "*123#"),
                client.answer(SENDER, "5"),
                client.dial(SENDER, "*123#"),
            ]

    first, _, again = yield in_thread(run)
    assert first.text == again.text == MY_MENU
    assert len(ussd_gateway.dialogues) == 1


@pytest_twisted.inlineCallbacks
def test_gw_11_a_long_screen_is_paged_with_oshte(ussd_gateway: Gateway) -> Any:
    """GW-11: «1 Telenor paketi» lists four Cyrillic packages — more than 80 UCS2 characters —
    so it comes in pages, each within one USSD message and ending «0 още», until the last."""

    def run() -> list[Received]:
        with handset(ussd_gateway) as client:
            screens = dialogue(client, SENDER, "*123#", "1")
            while screens[-1].ussd_service_op == 2:
                screens.append(client.answer(SENDER, "0"))
            return screens[1:]

    pages = yield in_thread(run)
    assert len(pages) >= 3
    assert all(p.ussd_service_op == 2 and p.text.endswith("\n0 още") for p in pages[:-1])
    assert pages[-1].ussd_service_op == 17
    assert all(p.data_coding == 8 and len(p.short_message) <= 160 for p in pages)
    assert all(fits_ussd(p.text) for p in pages)
    whole = "\n".join(p.text.removesuffix("\n0 още") for p in pages)
    assert whole.startswith("Вашите пакети:\n")
    assert "600 минути в мрежата на Теленор: остават 600 мин." in whole
    assert "8 GB мобилен интернет: остават 8192 MB" in whole


@pytest_twisted.inlineCallbacks
def test_gw_10_its_session_info_is_echoed_on_every_reply(ussd_gateway: Gateway) -> Any:
    """GW-10: the its_session_info the ESME sends comes back on each screen of the dialogue."""

    def run() -> list[Received]:
        with handset(ussd_gateway) as client:
            return dialogue(client, SENDER, "*123#", "5", "1", its_session_info=0x2A04)

    screens = yield in_thread(run)
    assert [s.its_session_info for s in screens] == [0x2A04, 0x2A04, 0x2A04]
    assert [s.ussd_service_op for s in screens] == [2, 2, 17]


@pytest_twisted.inlineCallbacks
def test_se_04_mp_20_the_shortcut_and_the_menu_path_give_the_same_screen(
    ussd_gateway: Gateway,
) -> Any:
    """SE-04, MP-20, MP-05: *434*2# and *434# → 2 → 3 show the same final screen; *434*1#
    asks for the number (the same prompt as *434# → 1)."""

    def run() -> tuple[Received, Received, Received, Received]:
        with handset(ussd_gateway) as client:
            direct = client.dial(INITIATOR, "*434*2#")
            through = dialogue(client, INITIATOR, "*434#", "2", "3")[-1]
            prompt = client.dial(INITIATOR, "*434*1#")
            via_menu = dialogue(client, INITIATOR, "*434#", "1")[-1]
            client.release(INITIATOR)
            return direct, through, prompt, via_menu

    direct, through, prompt, via_menu = yield in_thread(run)
    assert (direct.text, direct.ussd_service_op) == (through.text, through.ussd_service_op)
    assert direct.ussd_service_op == 17
    assert prompt.text == via_menu.text and "7XXXXXXXXXX" in prompt.text
    assert prompt.ussd_service_op == 2


@pytest_twisted.inlineCallbacks
def test_gw_10_dialect_its_end_bit_marks_the_end_in_its_session_info(
    ussd_gateway: Gateway,
) -> Any:
    """GW-10 dialect its-end-bit: every reply is op 2; the final one sets bit 0 of the echoed
    its_session_info; an MO with that bit set aborts the dialogue."""

    def run() -> tuple[list[Received], list[Received]]:
        with handset(ussd_gateway, "tata", "tata") as client:
            screens = dialogue(client, SENDER, "*123#", "6", its_session_info=0x0700)
            client.dial(SENDER, "*123#", its_session_info=0x0800)
            client.send_ussd(SENDER, "", op=18, its_session_info=0x0801)
            return screens, client.drain(0.3)

    screens, after_abort = yield in_thread(run)
    assert [(s.ussd_service_op, s.its_session_info) for s in screens] == [(2, 0x0700), (2, 0x0701)]
    assert screens[1].text.startswith("Оферта за вас:")
    assert after_abort == []
    assert ussd_gateway.dialogues.dialogue(SENDER) is None


@pytest_twisted.inlineCallbacks
def test_gw_10_dialect_no_ussd_op_sends_plain_deliver_sm(ussd_gateway: Gateway) -> Any:
    """GW-10 dialect no-ussd-op: deliver_sm without ussd_service_op (plain smpplib); answers
    without an op are read from the text."""

    def run() -> list[Received]:
        with handset(ussd_gateway, "plain", "plain") as client:
            first = client.dial(SENDER, "*123#")
            client.send_ussd(SENDER, "6", op=None)
            return [first, client.screen(SENDER)]

    menu, balance = yield in_thread(run)
    assert (menu.text, menu.ussd_service_op) == (MY_MENU, None)
    assert balance.ussd_service_op is None and balance.text.startswith("Оферта за вас:")
    assert ussd_gateway.dialogues.dialogue(SENDER) is None
