"""Kannel (Debian ``kannel``) as an independent ESME of the live gateway (issue 8 item 3):
bearerbox binds as a transceiver with the shipped ``kannel`` account; an HTTP sendsms
becomes a submit_sm the gateway delivers to a handset; a USSD dialogue that Kannel opens
(``ussd_service_op`` in sendsms meta-data) and answers through its sms-service (the reply's
``X-Kannel-Meta-Data``) gets every menu with ``ussd_service_op`` in the get-url's meta-data,
and the SMS the service sends after it; an SMS from a handset to a number in Kannel's bind
address_range reaches the sms-service and its reply comes back; and delivery receipts are
matched by Kannel's dlr-url for ids past 9, with ``msg-id-type`` following the account's
message-id base, hex and decimal (GW-01, GW-06, GW-07, GW-08, GW-09, GW-10).

One Kannel serves the module: starting the boxes is the slow part (about a second).
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Final

import attrs
import pytest
import pytest_twisted  # type: ignore[import-untyped]

from gateway.app import Gateway
from gateway.client import Received, SmppClient
from gateway.config import EsmeAccount, GatewayConfig
from gateway.smsc import State
from tests.e2e.conftest import e2e_config, start_gateway
from tests.e2e.interop import STRANGER_B, off_reactor, reactor_test, require_tool
from tests.e2e.kannel.lab import (
    Answer,
    Application,
    Hit,
    Kannel,
    Route,
    free_port,
    kannel_conf,
    msg_id_type,
    which,
)

pytestmark = [pytest.mark.e2e, pytest.mark.interop]


def shipped_kannel_account() -> EsmeAccount:
    """The account ``ussdsim serve`` ships for Kannel (hex message ids): the one under test."""
    account = GatewayConfig().account("kannel")
    assert account is not None, "ussdsim serve ships a kannel account"
    return account


KANNEL = shipped_kannel_account()
KANNEL_DEC = EsmeAccount(system_id="kannel-dec", password="kannel", message_id_format="dec")
HEX_ROUTE = Route(smsc_id="ussdsim", account=KANNEL, address_range="7999888.*")
DEC_ROUTE = Route(smsc_id="ussdsim-dec", account=KANNEL_DEC, address_range="7999777.*")
ROUTES: Final = (HEX_ROUTE, DEC_ROUTE)
#: Numbers the Kannel application serves: inside each bind's address_range (GW-08).
APP_NUMBER: Final = {HEX_ROUTE.smsc_id: "79998880001", DEC_ROUTE.smsc_id: "79997770001"}
HANDSET = STRANGER_B  # a handset bound for exactly its own number
SENDER, RECIPIENT_TYPED = "359881000001", "0898123456"  # Time Share demo sender (seed 004)
MY_MENU_ANSWERS: Final = ("5", "3", RECIPIENT_TYPED, "2", "30")  # Uslugi → Time Share → …
MORE = "\n0 още"  # the paging item of a long Telenor screen (GW-11)
USSR_REQUEST, PSSR_RESPONSE, USSR_CONFIRM, PSSR_INDICATION = 2, 17, 18, 1
STEP_TIMEOUT = 10.0


@attrs.define
class Lab:
    """The gateway, Kannel around it, and the application Kannel calls."""

    gateway: Gateway
    kannel: Kannel
    app: Application

    def handset(self) -> SmppClient:
        host, port = self.gateway.smpp_address
        return SmppClient(host, port, address_range=HANDSET, timeout=STEP_TIMEOUT)

    def api_messages(self, msisdn: str) -> list[dict[str, Any]]:
        host, port = self.gateway.http_address
        url = f"http://{host}:{port}/api/v1/messages?msisdn={msisdn}"
        with urllib.request.urlopen(url, timeout=5) as response:
            messages: list[dict[str, Any]] = json.load(response)["messages"]
            return messages


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    require_tool([which("bearerbox"), "--version"], package="kannel")
    require_tool([which("smsbox"), "--version"], package="kannel")
    root = tmp_path_factory.mktemp("kannel")
    accounts = (EsmeAccount(system_id="tester", password="secret"), KANNEL, KANNEL_DEC)
    gateway = start_gateway(e2e_config(root, accounts=accounts))
    app = Application()
    ports = {name: free_port() for name in ("admin", "smsbox", "sendsms")}
    conf = root / "kannel.conf"
    kannel = Kannel(
        conf,
        root,
        admin_port=ports["admin"],
        smsbox_port=ports["smsbox"],
        sendsms_port=ports["sendsms"],
    )
    try:
        conf.write_text(
            kannel_conf(
                smpp_port=gateway.smpp_address[1],
                routes=ROUTES,
                admin_port=ports["admin"],
                smsbox_port=ports["smsbox"],
                sendsms_port=ports["sendsms"],
                service_url=app.url,
                logs=root,
            )
        )
        # Off the reactor: the gateway must answer the binds while the boxes start.
        pytest_twisted.blockon(off_reactor(kannel.start, [r.smsc_id for r in ROUTES], timeout=30.0))
        yield Lab(gateway=gateway, kannel=kannel, app=app)
    finally:
        # bearerbox unbinds on SIGTERM: the gateway must be there to answer.
        pytest_twisted.blockon(off_reactor(kannel.stop, timeout=30.0))
        app.close()
        pytest_twisted.blockon(gateway.stop())


def kannel_links(gateway: Gateway, system_id: str) -> list[Any]:
    return [
        link
        for link in gateway.router.links()
        if link.session.account is not None and link.session.account.system_id == system_id
    ]


@reactor_test
async def test_gw_01_bearerbox_binds_as_a_transceiver_with_each_account(lab: Lab) -> None:
    """GW-01: both Kannel SMSCs are bound transceivers here and online on Kannel's status."""
    with lab.kannel.explain():
        for route in ROUTES:
            (link,) = kannel_links(lab.gateway, route.account.system_id)
            session = link.session
            assert session.state is State.BOUND_TRX and session.bind_type == "transceiver"
            assert session.address_range == route.address_range
            assert link.address_range.pattern == route.address_range
        port = lab.gateway.smpp_address[1]
        for route in ROUTES:
            line = await off_reactor(lab.kannel.smsc_line, route.smsc_id)
            assert "(online" in line, line
            assert f"SMPP:127.0.0.1:{port}/{port}:{route.account.system_id}:" in line, line
        assert lab.kannel.complaints() == []


@reactor_test
async def test_gw_06_an_http_sendsms_becomes_a_submit_sm_delivered_to_the_handset(lab: Lab) -> None:
    """GW-06: a sendsms is a submit_sm from the kannel account, delivered to the handset."""
    text = "Hello from Kannel"

    def run() -> Received:
        with lab.handset() as handset:
            answer = lab.kannel.sendsms(
                smsc=HEX_ROUTE.smsc_id, to=HANDSET, text=text, **{"from": APP_NUMBER["ussdsim"]}
            )
            assert answer.startswith("0: Accepted"), answer
            got = handset.wait_for(lambda r: r.text == text)
            # Answered in order after our deliver_sm_resp: the delivery is committed by now.
            handset.enquire_link()
            return got

    with lab.kannel.explain():
        got = await off_reactor(run)
        assert (got.source, got.destination) == (APP_NUMBER["ussdsim"], HANDSET)
        assert got.esm_class == 0 and not got.is_receipt and got.data_coding == 0

        log = await off_reactor(lab.api_messages, HANDSET)
        (entry,) = [m for m in log if m["text"] == text]
        assert (entry["kind"], entry["source"], entry["direction"], entry["status"]) == (
            "p2p",
            APP_NUMBER["ussdsim"],
            "mt",
            "DELIVERED",
        )
        stored = lab.gateway.store.get_message(entry["id"])
        assert stored is not None and stored.origin_system_id == KANNEL.system_id
        assert lab.kannel.complaints() == []


def ussd_script(answers: dict[str, deque[str]]) -> Callable[[Hit], Answer]:
    """An application that plays each subscriber's handset: it answers every menu or prompt
    (op 2) with the next scripted answer, or «0» to turn a page, as a USSR confirm (op 18)."""

    def respond(hit: Hit) -> Answer:
        script = answers.get(hit.receiver)
        if hit.path != "/mo" or hit.ussd_service_op != USSR_REQUEST or script is None:
            return "", {}
        reply = "0" if hit.text.endswith(MORE) else (script.popleft() if script else "")
        return reply, {"X-Kannel-Meta-Data": f"?smpp?ussd_service_op={USSR_CONFIRM}"}

    return respond


@reactor_test
async def test_gw_10_a_ussd_dialogue_through_kannel_brings_each_menu_with_its_ussd_service_op(
    lab: Lab,
) -> None:
    """GW-10: menus reach the sms-service with op 2 in %D, the last with 17, then 125's SMS."""
    # Kannel dials *123# with op 1 in the sendsms meta-data; the application answers each
    # screen with op 18 in X-Kannel-Meta-Data (accept-x-kannel-headers) down the Time Share
    # path; the UCS2 screens (GW-09) and the SMS from 125 in two UDH parts follow.
    since = lab.app.mark()
    lab.app.respond = ussd_script({SENDER: deque(MY_MENU_ANSWERS)})

    def run() -> tuple[Hit, Hit]:
        answer = lab.kannel.sendsms(
            smsc=HEX_ROUTE.smsc_id,
            to="123",
            text="*123#",
            **{"from": SENDER, "meta-data": f"?smpp?ussd_service_op={PSSR_INDICATION}"},
        )
        assert answer.startswith("0: Accepted"), answer
        final = lab.app.wait_for(
            lambda h: h.receiver == SENDER and h.ussd_service_op == PSSR_RESPONSE,
            what="the final USSD screen (op 17)",
            since=since,
        )
        sms = lab.app.wait_for(
            lambda h: h.receiver == SENDER and h.sender == "125",
            what="the SMS from 125",
            since=since,
        )
        return final, sms

    with lab.kannel.explain():
        final, sms = await off_reactor(run)
        screens = [h for h in lab.app.hits(since) if h.receiver == SENDER and h.sender == "123"]
        assert screens[-1] == final
        ops = [h.ussd_service_op for h in screens]
        assert ops[:5] == [USSR_REQUEST] * 5 and ops[-1] == PSSR_RESPONSE, ops
        assert all(op == USSR_REQUEST for op in ops[5:-1]), ops  # pages of the long result
        assert set(screens[0].meta) == {"smpp"}  # the TLV is Kannel's only meta-data
        assert screens[0].text.startswith("MyMenu\n1 Telenor paketi")
        assert "Time Share" in screens[2].text and "мрежата на Теленор" in screens[3].text
        assert screens[2].get("coding") == "2"  # Cyrillic screens travel as UCS2 (GW-09)
        assert "Брой минути" in screens[4].text
        assert screens[5].text.startswith("Успешно изпратихте 30 мин. към мрежата на Теленор")
        assert "Наличен кредит" in screens[-1].text  # the last page of the result
        assert lab.gateway.dialogues.dialogue(SENDER) is None

        assert sms.ussd_service_op is None and sms.get("coding") == "2"
        log = await off_reactor(lab.api_messages, SENDER)  # the API is served by the reactor
        parts = [
            m
            for m in log
            if m["source"] == "125" and m["channel"] == "sms" and m["direction"] == "mt"
        ]
        assert len(parts) == 2  # sent as two UDH parts, joined again by Kannel
        assert sms.text == "".join(p["text"] for p in parts)
        assert sms.text.startswith("Успешно изпратихте 30 мин.")
        assert lab.kannel.complaints() == []


@reactor_test
async def test_gw_08_an_sms_to_kannels_address_range_reaches_its_service_and_the_reply_returns(
    lab: Lab,
) -> None:
    """GW-08: an MO to each Kannel bind's address_range reaches that SMSC; its reply returns."""
    since = lab.app.mark()

    def respond(hit: Hit) -> Answer:
        if hit.path == "/mo" and hit.sender == HANDSET:
            return f"pong: {hit.text}", {}
        return "", {}

    lab.app.respond = respond

    def exchange(handset: SmppClient, route: Route) -> tuple[Hit, Received]:
        number = APP_NUMBER[route.smsc_id]
        handset.submit(HANDSET, number, f"ping {route.smsc_id}")
        hit = lab.app.wait_for(
            lambda h: h.receiver == number, what=f"the MO to {number}", since=since
        )
        return hit, handset.wait_for(lambda r: r.source == number)

    def run() -> list[tuple[Hit, Received]]:
        with lab.handset() as handset:
            return [exchange(handset, route) for route in ROUTES]

    with lab.kannel.explain():
        exchanges = await off_reactor(run)
        for route, (hit, reply) in zip(ROUTES, exchanges, strict=True):
            assert hit.get("smsc") == route.smsc_id  # the bind whose address_range matched
            assert (hit.sender, hit.text, hit.ussd_service_op) == (
                HANDSET,
                f"ping {route.smsc_id}",
                None,
            )
            assert (reply.destination, reply.text) == (HANDSET, f"pong: ping {route.smsc_id}")
        assert lab.kannel.complaints() == []


def covered(ids: list[int], account: EsmeAccount) -> bool:
    """The ids include the ones where hex and decimal readings part: past 9, in hex both an
    all-digit one (0x10 read as decimal is 10) and one with a letter (DESIGN.md traps)."""
    if account.message_id_format == "dec":
        return any(i > 9 for i in ids)
    return any(i >= 0x10 and f"{i:x}".isdigit() for i in ids) and any(
        re.search("[a-f]", f"{i:x}") for i in ids
    )


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.account.message_id_format)
@reactor_test
async def test_gw_07_kannel_matches_every_receipt_with_msg_id_type_from_the_id_base(
    lab: Lab, route: Route
) -> None:
    """GW-07: Kannel's dlr-url gets DLR type 1 for each message, ids past 9 in either base."""
    # %F is the id of our submit_sm_resp as Kannel read it (msg-id-type 0x03 for hex, 0x00
    # for decimal), printed in decimal; the receipt's id must map to the same message.
    since = lab.app.mark()
    lab.app.respond = lambda hit: ("", {})
    source = APP_NUMBER[route.smsc_id]

    def one(handset: SmppClient, n: int) -> Hit:
        """Message ``n`` through Kannel with a dlr-url; its final DLR."""
        text = f"receipt {route.smsc_id} {n}"
        url = lab.app.url + f"/dlr?route={route.smsc_id}&n={n}&type=%d&fid=%F&answer=%A"
        answer = lab.kannel.sendsms(
            smsc=route.smsc_id,
            to=HANDSET,
            text=text,
            **{"from": source, "dlr-mask": "31", "dlr-url": url},
        )
        assert answer.startswith("0: Accepted"), answer
        handset.wait_for(lambda r: r.text == text)  # answered: DELIVRD
        return lab.app.wait_for(
            lambda h: (
                h.get("route") == route.smsc_id
                and h.get("n") == str(n)
                and h.get("type") in ("1", "2", "16")
            ),
            what=f"the final DLR of message {n}",
            since=since,
        )

    def run() -> list[tuple[int, Hit]]:
        results: list[tuple[int, Hit]] = []
        with lab.handset() as handset:
            for n in range(1, 25):
                if covered([int(h.get("fid")) for _, h in results], route.account):
                    break
                results.append((n, one(handset, n)))
        return results

    with lab.kannel.explain():
        wanted = 0x03 if route.account.message_id_format == "hex" else 0x00
        assert msg_id_type(route.account) == wanted
        (group,) = [
            g
            for g in lab.kannel.conf.read_text().split("group = ")
            if f"smsc-id = {route.smsc_id}\n" in g
        ]
        assert f"msg-id-type = 0x{wanted:02x}\n" in group
        results = await off_reactor(run, timeout=60.0)
        ids = []
        for n, hit in results:
            assert hit.get("type") == "1", hit.params  # DLR_SUCCESS: Kannel matched it
            message_id = int(hit.get("fid"))
            receipt = re.match(
                r"id:(\w+) sub:001 dlvrd:001 .* stat:DELIVRD err:000", hit.get("answer")
            )
            assert receipt is not None, hit.get("answer")
            base = 16 if route.account.message_id_format == "hex" else 10
            assert int(receipt.group(1), base) == message_id
            stored = lab.gateway.store.get_message(message_id)
            assert stored is not None and stored.kind == "p2p"
            assert stored.origin_system_id == route.account.system_id
            assert stored.short_message == f"receipt {route.smsc_id} {n}".encode()
            ids.append(message_id)
        assert covered(ids, route.account), ids
        failures = [h for h in lab.app.hits(since) if h.get("type") in ("2", "16")]
        assert failures == []
        assert lab.kannel.complaints() == []
