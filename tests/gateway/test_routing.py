"""Tests of routing, store-and-forward and receipts without sockets (GW-05 … GW-09)."""

from __future__ import annotations

import pytest

from gateway import pdu as P
from gateway import smsc
from gateway.app import unknown_service
from gateway.config import EsmeAccount, GatewayConfig
from gateway.pdu import CommandStatus, Tag, Tlv
from gateway.routing import (
    Link,
    MobileOriginated,
    Outgoing,
    Router,
    ServiceRegistry,
    parse_smpp_time,
    receipt_text,
)
from services.store import SqliteStore, StoredMessage

A, B, C = "79160000001", "79160000002", "79160000003"
ACCOUNTS = (
    EsmeAccount(system_id="tester", password="secret", deliver_window=2),
    EsmeAccount(system_id="dec", password="dec", message_id_format="dec"),
)
CONFIG = GatewayConfig(accounts=ACCOUNTS, default_validity=3600)


class Harness:
    def __init__(self, store: SqliteStore | None = None) -> None:
        self.store = store or SqliteStore()
        self.registry = ServiceRegistry(lambda m: None, unknown_service)
        self.router = Router(self.store, self.registry, CONFIG)
        self.written: dict[int, list[P.Pdu]] = {}
        self._next = 0

    def bind(
        self, address_range: str = "", system_id: str = "tester", kind: type = P.BindTransceiver
    ) -> Link:
        self._next += 1
        conn = self._next
        account = next(a for a in ACCOUNTS if a.system_id == system_id)
        session = smsc.SmscSession(lambda s, p, b: account)
        self.written[conn] = []
        link = Link(conn, session, lambda data, c=conn: self._collect(c, data), lambda: None)
        self.router.connect(link)
        session.receive_data(
            P.encode(
                kind(sequence=1, system_id=system_id, password="x", address_range=address_range)
            ),
            0,
        )
        self.router.bound(link, 0)
        self.router.mark_dirty(link)
        self.router.flush()
        # Keep what was delivered on binding (held messages); drop only the bind response.
        self.written[conn] = [p for p in self.written[conn] if not p.command_id & 0x80000000]
        return link

    def _collect(self, conn: int, data: bytes) -> None:
        self.written[conn].extend(P.PduStream().feed(data))  # type: ignore[arg-type]

    def take(self, link: Link) -> list[P.Pdu]:
        items, self.written[link.conn_id] = self.written[link.conn_id], []
        return items

    def send(self, link: Link, pdu: P.Pdu, now: int = 0) -> list[P.Pdu]:
        for event in link.session.receive_data(P.encode(pdu), now):
            if isinstance(event, smsc.OperationRequested):
                self.router.operation(link, event.pdu, now)
            elif isinstance(event, smsc.DeliveryAnswered):
                self.router.delivery_answered(
                    link, event.sequence, event.status, event.context, now
                )
        self.router.mark_dirty(link)
        self.router.flush()
        return self.take(link)


def submit(source: str, destination: str, text: bytes = b"hello", **fields: object) -> P.SubmitSm:
    return P.SubmitSm(
        sequence=7, source_addr=source, destination_addr=destination, short_message=text, **fields
    )  # type: ignore[arg-type]


def test_gw_08_routes_by_address_range() -> None:
    """GW-08: a mobile-terminated message goes to the session whose address_range matches."""
    h = Harness()
    sender = h.bind("^79160000001$")
    for_b = h.bind("^7916000000[2]$")
    for_c = h.bind("^79160000003$")
    (resp,) = h.send(sender, submit(A, B))
    assert isinstance(resp, P.SubmitSmResp) and resp.status == 0
    delivered = h.take(for_b)
    assert [p.destination_addr for p in delivered] == [B]  # type: ignore[attr-defined]
    assert h.take(for_c) == []


def test_gw_08_falls_back_to_last_submitter_of_the_msisdn() -> None:
    """GW-08: with no matching range, the session that last submitted from that MSISDN gets it."""
    h = Harness()
    b_handset = h.bind("^$")  # claims nobody by range
    h.send(b_handset, submit(B, "79169999999"))
    a_handset = h.bind("^$")
    h.send(a_handset, submit(A, B))
    assert [p.destination_addr for p in h.take(b_handset)] == [B]  # type: ignore[attr-defined]


def test_gw_06_held_until_a_session_binds_then_delivered() -> None:
    """GW-06: a message for a destination nobody serves is held, then delivered on bind."""
    h = Harness()
    sender = h.bind("^79160000001$")
    h.send(sender, submit(A, C))
    assert h.router.held_count() == 1
    late = h.bind("^79160000003$")
    (deliver,) = h.take(late)
    assert isinstance(deliver, P.DeliverSm) and deliver.short_message == b"hello"
    h.send(late, P.DeliverSmResp(sequence=deliver.sequence))
    assert h.router.held_count() == 0
    (state,) = h.store.connection.execute("SELECT state FROM messages").fetchone()
    assert state == 2  # DELIVERED


def test_gw_06_held_message_survives_a_new_router_on_the_same_store(tmp_path: object) -> None:
    """GW-06: what was acknowledged and held is still there for a router started anew."""
    path = f"{tmp_path}/state.sqlite3"
    h = Harness(SqliteStore(path))
    sender = h.bind("^79160000001$")
    h.send(sender, submit(A, C, b"after restart"))
    h.store.close()
    again = Harness(SqliteStore(path))
    assert again.router.held_count() == 1
    receiver = again.bind("^79160000003$")
    (deliver,) = again.take(receiver)
    assert deliver.short_message == b"after restart"  # type: ignore[union-attr]


def test_gw_07_expired_message_gets_expired_receipt() -> None:
    """GW-07: a held message whose validity ends gets state EXPIRED and a receipt saying so."""
    h = Harness()
    sender = h.bind("^79160000001$")
    (resp,) = h.send(
        sender, submit(A, C, registered_delivery=1, validity_period="000000000100000R")
    )
    h.router.tick(59)
    assert h.router.held_count() == 1
    h.router.tick(60)
    h.router.flush()
    (receipt,) = h.take(sender)
    assert isinstance(receipt, P.DeliverSm) and receipt.esm_class & 0x04
    text = receipt.short_message.decode()
    assert f"id:{resp.message_id} " in text and "stat:EXPIRED" in text and "dlvrd:000" in text  # type: ignore[union-attr]
    assert receipt.message_state == 3 and receipt.receipted_message_id == resp.message_id  # type: ignore[union-attr]


def test_gw_07_rejected_delivery_gets_undeliv_receipt_on_failure_only_request() -> None:
    """GW-07: registered_delivery=2 asks for a receipt on failure: a permanent error gives UNDELIV."""
    h = Harness()
    sender = h.bind("^79160000001$")
    receiver = h.bind("^79160000002$")
    h.send(sender, submit(A, B, registered_delivery=2))
    (deliver,) = h.take(receiver)
    h.send(
        receiver, P.DeliverSmResp(sequence=deliver.sequence, status=CommandStatus.ESME_RX_P_APPN)
    )
    (receipt,) = h.take(sender)
    assert "stat:UNDELIV" in receipt.short_message.decode()  # type: ignore[union-attr]


def test_gw_07_successful_delivery_sends_no_receipt_on_failure_only_request() -> None:
    """GW-07: registered_delivery=2 and a successful delivery → no receipt."""
    h = Harness()
    sender = h.bind("^79160000001$")
    receiver = h.bind("^79160000002$")
    h.send(sender, submit(A, B, registered_delivery=2))
    (deliver,) = h.take(receiver)
    h.send(receiver, P.DeliverSmResp(sequence=deliver.sequence))
    assert h.take(sender) == []


def test_gw_07_temporary_failure_is_retried() -> None:
    """GW-07: a throttled delivery is not final: it is tried again later and then delivered."""
    h = Harness()
    sender = h.bind("^79160000001$")
    receiver = h.bind("^79160000002$")
    h.send(sender, submit(A, B, registered_delivery=1))
    (first,) = h.take(receiver)
    h.send(receiver, P.DeliverSmResp(sequence=first.sequence, status=CommandStatus.ESME_RTHROTTLED))
    assert h.take(sender) == []  # no receipt yet
    h.router.tick(5)
    h.router.flush()
    (second,) = h.take(receiver)
    h.send(receiver, P.DeliverSmResp(sequence=second.sequence), now=6)
    (receipt,) = h.take(sender)
    assert "stat:DELIVRD" in receipt.short_message.decode()  # type: ignore[union-attr]


def test_gw_07_receipt_text_sample_is_decoded_text_without_udh() -> None:
    """GW-07: the receipt's text: is the message's first characters, not its UDH octets."""
    body = bytes([5, 0, 3, 1, 2, 1]) + "Привет, мир! Hello there".encode("utf-16-be")
    message = StoredMessage(
        1, "p2p", "", "", 1, 1, A, 1, 1, B, 0x40, 0, 0, 1, 8, body, b"", 0, 0, 1, None
    )
    text = receipt_text(message, "1", 2, 0, 0)
    assert text.endswith("text:......, ...! Hello t")  # 20 characters, Cyrillic as dots


def test_gw_04_deliveries_wait_for_window() -> None:
    """GW-04: with deliver_window 2, the third message waits for an answer before it is sent."""
    h = Harness()
    sender = h.bind("^79160000001$")
    receiver = h.bind("^79160000002$")
    for _ in range(3):
        h.send(sender, submit(A, B))
    sent = h.take(receiver)
    assert len(sent) == 2
    after_answer = h.send(receiver, P.DeliverSmResp(sequence=sent[0].sequence))
    assert [type(p) for p in after_answer] == [P.DeliverSm]


def test_gw_09_udhi_without_a_udh_is_refused() -> None:
    """GW-09: esm_class UDHI on a message with no well-formed UDH is refused, not relayed."""
    h = Harness()
    sender = h.bind("^79160000001$")
    (resp,) = h.send(sender, submit(A, B, b"\x30plain text", esm_class=0x40))
    assert resp.status == CommandStatus.ESME_RINVESMCLASS


def test_gw_05_sms_to_unregistered_short_number_answers_unknown_service() -> None:
    """GW-05: an SMS to a short number nothing serves gets a reply from that number."""
    h = Harness()
    handset = h.bind("^79160000001$")
    out = h.send(handset, submit(A, "9999", b"hello"))
    assert isinstance(out[0], P.SubmitSmResp) and out[0].status == 0
    reply = out[1]
    assert (
        isinstance(reply, P.DeliverSm)
        and reply.source_addr == "9999"
        and reply.destination_addr == A
    )


def test_gw_05_registered_short_number_is_dispatched_with_reassembled_text() -> None:
    """GW-05/GW-09: a concatenated MO to a service number reaches its handler once, whole."""
    h = Harness()
    seen: list[MobileOriginated] = []

    def handler(mo: MobileOriginated) -> list[Outgoing]:
        seen.append(mo)
        return [Outgoing(to=mo.source, sender="125", text="ok")]

    h.registry.register_sms(None, "125", handler)
    handset = h.bind("^79160000001$")
    text = "Ж" * 80
    units = text.encode("utf-16-be")
    for n, chunk in enumerate((units[:134], units[134:])):
        h.send(
            handset,
            submit(A, "125", bytes([5, 0, 3, 9, 2, n + 1]) + chunk, esm_class=0x40, data_coding=8),
        )
    assert [mo.text for mo in seen] == [text]


def test_gw_10_ussd_reply_goes_back_with_op_and_echoed_session_info() -> None:
    """GW-10: a USSD reply is a deliver_sm to the dialling session with ussd_service_op and its_session_info."""
    h = Harness()
    h.registry.ussd_override = lambda mo: [
        Outgoing(to=mo.source, sender="123", text="Меню", channel="ussd", ussd_op=2)
    ]
    handset = h.bind("^$")
    out = h.send(
        handset,
        submit(
            A,
            "123",
            b"*123#",
            service_type="USSD",
            tlvs=(Tlv.u8(Tag.USSD_SERVICE_OP, 1), Tlv.u16(Tag.ITS_SESSION_INFO, 0x0A01)),
        ),
    )
    screen = out[1]
    assert isinstance(screen, P.DeliverSm) and screen.service_type == "USSD"
    assert screen.ussd_service_op == 2 and screen.its_session_info == 0x0A01


def test_gw_06_query_cancel_and_replace_a_held_message() -> None:
    """GW-06: query_sm reports the state; replace_sm and cancel_sm act on a held message."""
    h = Harness()
    sender = h.bind("^79160000001$", system_id="dec")
    (resp,) = h.send(sender, submit(A, C))
    message_id = resp.message_id  # type: ignore[union-attr]
    assert message_id.isdigit()  # this account asked for decimal ids
    (query,) = h.send(sender, P.QuerySm(sequence=8, message_id=message_id, source_addr=A))
    assert isinstance(query, P.QuerySmResp) and query.message_state == 1
    (replaced,) = h.send(
        sender, P.ReplaceSm(sequence=9, message_id=message_id, source_addr=A, short_message=b"new")
    )
    assert replaced.status == 0
    (cancelled,) = h.send(sender, P.CancelSm(sequence=10, message_id=message_id, source_addr=A))
    assert cancelled.status == 0 and h.router.held_count() == 0
    (again,) = h.send(sender, P.CancelSm(sequence=11, message_id=message_id, source_addr=A))
    assert again.status == CommandStatus.ESME_RCANCELFAIL
    (query,) = h.send(sender, P.QuerySm(sequence=12, message_id=message_id, source_addr=A))
    assert query.message_state == 4  # type: ignore[union-attr]  # DELETED


def test_gw_06_submit_multi_stores_one_message_per_destination() -> None:
    """GW-06: submit_multi becomes one person-to-person message per SME address."""
    h = Harness()
    sender = h.bind("^79160000001$")
    dests = (
        P.SmeAddress(dest_addr_ton=1, dest_addr_npi=1, destination_addr=B),
        P.SmeAddress(dest_addr_ton=1, dest_addr_npi=1, destination_addr=C),
    )
    (resp,) = h.send(
        sender,
        P.SubmitMulti(sequence=5, source_addr=A, dest_addresses=dests, short_message=b"hi all"),
    )
    assert isinstance(resp, P.SubmitMultiResp) and resp.status == 0 and resp.unsuccess_smes == ()
    assert h.router.held_count() == 2


def test_gw_06_data_sm_is_carried_like_submit_sm() -> None:
    """GW-06: data_sm with a message_payload is stored and answered with data_sm_resp."""
    h = Harness()
    sender = h.bind("^79160000001$")
    receiver = h.bind("^79160000002$")
    (resp,) = h.send(
        sender,
        P.DataSm(
            sequence=6,
            source_addr=A,
            destination_addr=B,
            tlvs=(Tlv(Tag.MESSAGE_PAYLOAD, b"payload"),),
        ),
    )
    assert isinstance(resp, P.DataSmResp) and resp.status == 0 and resp.message_id
    (deliver,) = h.take(receiver)
    assert deliver.message_payload == b"payload"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", None),
        ("000001000000000R", 1000 + 86400),
        ("260101120000000+", 1767268800),
        ("260101120000004+", 1767268800 - 3600),
    ],
)
def test_gw_06_validity_period_formats(value: str, expected: int | None) -> None:
    """GW-06: validity periods in SMPP 3.4 §7.1.1 absolute and relative forms."""
    assert parse_smpp_time(value, 1000) == expected


def test_gw_06_bad_validity_period_refused() -> None:
    """GW-06: a validity period of the right form but an impossible date → ESME_RINVEXPIRY."""
    with pytest.raises(ValueError):
        parse_smpp_time("261399120000000+", 0)  # month 13
    h = Harness()
    sender = h.bind("^79160000001$")
    (resp,) = h.send(sender, submit(A, C, validity_period="261399120000000+"))
    assert resp.status == CommandStatus.ESME_RINVEXPIRY
    assert h.router.held_count() == 0
