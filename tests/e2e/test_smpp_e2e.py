"""End to end over real TCP on 127.0.0.1 with python-smpplib as the independent client
(GW-01 … GW-09): binds, keep-alive, windows, person-to-person SMS, store-and-forward across
reconnects and restarts, receipts and a long Cyrillic SMS."""

from __future__ import annotations

import socket
import struct
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import smpplib.client
import smpplib.consts
import smpplib.exceptions
import smpplib.smpp

from gateway.app import Gateway
from gateway.client import ClientError, SmppClient
from tests.e2e.conftest import e2e_config, in_thread, start_gateway

pytestmark = pytest.mark.e2e

A, B, C = "79160000001", "79160000002", "79160000003"
ESME_RALYBND = 0x05
ESME_RINVPASWD = 0x0E
ESME_RINVSYSID = 0x0F
ESME_RINVBNDSTS = 0x04
ESME_RTHROTTLED = 0x58


def client(gateway: Gateway, **kwargs: Any) -> SmppClient:
    host, port = gateway.smpp_address
    return SmppClient(host, port, timeout=5, **kwargs)


def raw_exchange(gateway: Gateway, payload: bytes, responses: int) -> list[tuple[int, int, int]]:
    """Write bytes on a bare socket; read ``responses`` PDU headers (id, status, sequence)."""
    with socket.create_connection(gateway.smpp_address, timeout=5) as sock:
        sock.sendall(payload)
        headers = []
        buffer = b""
        while len(headers) < responses:
            while len(buffer) < 4 or len(buffer) < struct.unpack(">I", buffer[:4])[0]:
                chunk = sock.recv(65536)
                if not chunk:
                    raise AssertionError(f"connection closed after {headers}")
                buffer += chunk
            length = struct.unpack(">I", buffer[:4])[0]
            _, command_id, status, sequence = struct.unpack(">IIII", buffer[:16])
            headers.append((command_id, status, sequence))
            buffer = buffer[length:]
        return headers


def smpplib_bytes(command: str, sequence: int, **fields: Any) -> bytes:
    """Bytes of a PDU as python-smpplib builds them (an independent encoder)."""
    maker = smpplib.client.Client("127.0.0.1", 1, allow_unknown_opt_params=True)
    pdu = smpplib.smpp.make_pdu(command, client=maker, **fields)
    pdu.sequence = sequence
    data: bytes = pdu.generate()
    return data


@pytest_twisted.inlineCallbacks
def test_gw_01_bind_transceiver_over_tcp(gateway: Gateway) -> Any:
    """GW-01: smpplib binds as transceiver with the configured credentials and unbinds."""

    def run() -> str:
        c = client(gateway)
        c.connect()
        state = c._client.state
        c.close()
        return str(state)

    state = yield in_thread(run)
    assert state == str(smpplib.consts.SMPP_CLIENT_STATE_BOUND_TRX)


@pytest_twisted.inlineCallbacks
@pytest.mark.parametrize(
    ("system_id", "password", "status"),
    [("tester", "wrong", ESME_RINVPASWD), ("nobody", "secret", ESME_RINVSYSID)],
)
def test_gw_01_bad_credentials_over_tcp(
    gateway: Gateway, system_id: str, password: str, status: int
) -> Any:
    """GW-01: wrong password → ESME_RINVPASWD; unknown system_id → ESME_RINVSYSID."""

    def run() -> int:
        try:
            client(gateway, system_id=system_id, password=password).connect()
        except ClientError as exc:
            return exc.status
        return 0

    got = yield in_thread(run)
    assert got == status


@pytest_twisted.inlineCallbacks
def test_gw_01_double_bind_and_submit_before_bind_over_tcp(gateway: Gateway) -> Any:
    """GW-01: a second bind → ESME_RALYBND; a submit before any bind → ESME_RINVBNDSTS."""
    bind = smpplib_bytes("bind_transceiver", 1, system_id="tester", password="secret")
    again = smpplib_bytes("bind_transmitter", 2, system_id="tester", password="secret")
    early = smpplib_bytes("submit_sm", 7, source_addr=A, destination_addr=B, short_message=b"x")
    double = yield in_thread(raw_exchange, gateway, bind + again, 2)
    assert double[0][1:] == (0, 1)
    assert double[1] == (0x80000002, ESME_RALYBND, 2)
    before = yield in_thread(raw_exchange, gateway, early, 1)
    assert before == [(0x80000004, ESME_RINVBNDSTS, 7)]


@pytest_twisted.inlineCallbacks
def test_gw_02_enquire_link_and_unbind_over_tcp(gateway: Gateway) -> Any:
    """GW-02: enquire_link answered; unbind answered with unbind_resp, then the connection closes."""
    bind = smpplib_bytes("bind_transceiver", 1, system_id="tester", password="secret")
    enquire = smpplib_bytes("enquire_link", 2)
    unbind = smpplib_bytes("unbind", 3)

    def run() -> tuple[list[tuple[int, int, int]], bytes]:
        with socket.create_connection(gateway.smpp_address, timeout=5) as sock:
            sock.sendall(bind + enquire + unbind)
            data = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break  # the gateway closed the connection after unbind_resp
                data += chunk
        headers = []
        while data:
            length, command_id, status, sequence = struct.unpack(">IIII", data[:16])
            headers.append((command_id, status, sequence))
            data = data[length:]
        return headers, data

    headers, _ = yield in_thread(run)
    assert headers == [(0x80000009, 0, 1), (0x80000015, 0, 2), (0x80000006, 0, 3)]


@pytest_twisted.inlineCallbacks
def test_gw_04_throttles_over_window_over_tcp(gateway: Gateway) -> Any:
    """GW-04: the third pipelined submit of an ESME with window 2 gets ESME_RTHROTTLED."""
    bind = smpplib_bytes("bind_transmitter", 1, system_id="small", password="small")
    submits = b"".join(
        smpplib_bytes("submit_sm", seq, source_addr=A, destination_addr=C, short_message=b"hi")
        for seq in (2, 3, 4)
    )
    headers = yield in_thread(raw_exchange, gateway, bind + submits, 4)
    # Answers may come in any order (SMPP is asynchronous); the third is the throttled one.
    assert sorted((seq, status) for _, status, seq in headers[1:]) == [
        (2, 0),
        (3, 0),
        (4, ESME_RTHROTTLED),
    ]


@pytest_twisted.inlineCallbacks
def test_gw_06_gw_08_person_to_person_between_two_binds(gateway: Gateway) -> Any:
    """GW-06/GW-08: an SMS from A's ESME reaches the ESME whose address_range matches B."""

    def run() -> tuple[str, Any]:
        with (
            client(gateway, address_range=A) as sender,
            client(gateway, system_id="other", password="other", address_range=B) as receiver,
        ):
            message_id = sender.submit(A, B, "Привет, B")
            got = receiver.wait_for(lambda r: r.destination == B)
            return message_id, got

    message_id, got = yield in_thread(run)
    assert message_id
    assert (got.source, got.destination, got.text) == (A, B, "Привет, B")
    assert got.data_coding == 8  # GW-09: Cyrillic travels as UCS2


@pytest_twisted.inlineCallbacks
def test_gw_06_store_and_forward_across_reconnect(gateway: Gateway) -> Any:
    """GW-06: a message for a destination nobody serves waits until an ESME for it binds."""

    def send() -> None:
        with client(gateway, address_range=A) as sender:
            sender.submit(A, C, "kept for later")

    def receive() -> Any:
        with client(gateway, system_id="other", password="other", address_range=C) as receiver:
            return receiver.wait_for(lambda r: r.destination == C)

    yield in_thread(send)
    assert gateway.router.held_count() == 1
    got = yield in_thread(receive)
    assert got.text == "kept for later"
    assert gateway.router.held_count() == 0


@pytest_twisted.inlineCallbacks
def test_gw_06_store_and_forward_across_gateway_restart(tmp_path: Path) -> Any:
    """GW-06: an acknowledged message survives a restart of the gateway and is then delivered."""
    config = e2e_config(tmp_path)
    first = start_gateway(config)

    def send(gw: Gateway) -> str:
        with client(gw, address_range=A) as sender:
            return sender.submit(A, C, "survives a restart")

    yield in_thread(send, first)
    yield first.stop()
    second = start_gateway(config)
    try:

        def receive() -> Any:
            with client(second, system_id="other", password="other", address_range=C) as receiver:
                return receiver.wait_for(lambda r: r.destination == C)

        got = yield in_thread(receive)
        assert got.text == "survives a restart"
    finally:
        yield second.stop()


@pytest_twisted.inlineCallbacks
def test_gw_07_delivery_receipt_with_state_reached(gateway: Gateway) -> Any:
    """GW-07: registered_delivery=1 → a receipt deliver_sm (esm_class 0x04) with stat:DELIVRD."""

    def run() -> tuple[str, Any]:
        with (
            client(gateway, address_range=A) as sender,
            client(gateway, system_id="other", password="other", address_range=B) as receiver,
        ):
            message_id = sender.submit(A, B, "with receipt", registered_delivery=1)
            receiver.wait_for(lambda r: r.destination == B)
            return message_id, sender.wait_for(lambda r: r.is_receipt)

    message_id, receipt = yield in_thread(run)
    assert receipt.esm_class & 0x04
    assert receipt.destination == A and receipt.source == B
    assert f"id:{message_id} " in receipt.text
    assert "stat:DELIVRD" in receipt.text and "dlvrd:001" in receipt.text
    assert receipt.receipted_message_id == message_id
    assert receipt.message_state == 2


@pytest_twisted.inlineCallbacks
def test_gw_09_long_cyrillic_sms_arrives_in_concatenated_ucs2_parts(gateway: Gateway) -> Any:
    """GW-09: a 300-character Cyrillic SMS sent in UDH parts reaches B as parts that rejoin."""
    text = ("Съешь же ещё этих мягких французских булок, да выпей чаю. " * 6)[:300]
    units = text.encode("utf-16-be")
    chunks = [units[i : i + 134] for i in range(0, len(units), 134)]
    parts = [bytes([5, 0, 3, 0x2A, len(chunks), n + 1]) + chunk for n, chunk in enumerate(chunks)]

    def run() -> list[Any]:
        with (
            client(gateway, address_range=A) as sender,
            client(gateway, system_id="other", password="other", address_range=B) as receiver,
        ):
            for part in parts:
                sender.submit(A, B, part, data_coding=8, esm_class=0x40)
            return [receiver.wait_for(lambda r: r.destination == B) for _ in parts]

    received = yield in_thread(run)
    assert len(received) == len(parts) == 5
    rejoined = b""
    for item in sorted(received, key=lambda r: r.short_message[5]):
        assert item.esm_class & 0x40 and item.data_coding == 8
        assert item.short_message[:5] == bytes([5, 0, 3, 0x2A, 5])
        rejoined += item.short_message[6:]
    assert rejoined.decode("utf-16-be") == text


@pytest_twisted.inlineCallbacks
def test_gw_09_a_handset_reads_long_sms_whole_and_skips_screens_and_receipts(
    gateway: Gateway,
) -> Any:
    """GW-09: ``SmppClient.drain_sms`` gives each concatenated SMS once, whole, in arrival
    order, and leaves out USSD screens and delivery receipts."""
    long_text = ("Получихте 30 мин. от 0881000001 с услугата Time Share. " * 4)[:200]

    def run() -> tuple[Any, Any]:
        with (
            client(gateway, address_range=A) as sender,
            client(gateway, system_id="other", password="other", address_range=B) as receiver,
        ):
            sender.send_sms(A, B, long_text, registered_delivery=1)
            sender.send_sms(A, B, "short one")
            receiver.dial(B, "*123#")  # a screen waits in the receiver's inbox too
            whole = receiver.drain_sms(0.5)
            return whole, sender.drain_sms(0.5)  # the sender's inbox: receipts only

    whole, receipts_only = yield in_thread(run)
    assert [(s.source, s.destination, s.text, s.parts) for s in whole] == [
        (A, B, long_text, 3),  # 200 UCS2 characters: 67 a part
        (A, B, "short one", 1),
    ]
    assert receipts_only == []
