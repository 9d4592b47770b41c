"""Tests of the Twisted adapter with StringTransport and a task.Clock-driven reactor:
framing, timers and logging (GW-02, GW-03, GW-12)."""

from __future__ import annotations

from typing import Any

import attrs
import structlog
from structlog.testing import capture_logs
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport

from gateway import pdu as P
from gateway.app import unknown_service
from gateway.config import EsmeAccount, GatewayConfig
from gateway.protocol import SmppServerFactory, SmppServerProtocol
from gateway.routing import Router, ServiceRegistry
from services.store import SqliteStore

CONFIG = GatewayConfig(
    accounts=(EsmeAccount(system_id="tester", password="secret"),),
    enquire_link_interval=30,
    response_timeout=10,
    bind_timeout=5,
    max_command_length=1024,
)


def make_factory(log: Any = None) -> tuple[SmppServerFactory, MemoryReactorClock]:
    reactor = MemoryReactorClock()
    router = Router(SqliteStore(), ServiceRegistry(lambda m: None, unknown_service), CONFIG)
    factory = SmppServerFactory(CONFIG, router, reactor, lambda: int(reactor.seconds()), log=log)
    return factory, reactor


def connect(
    factory: SmppServerFactory, port: int = 40000
) -> tuple[SmppServerProtocol, StringTransport]:
    proto = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", port))
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", port))
    proto.makeConnection(transport)
    return proto, transport


def received(transport: StringTransport) -> list[P.Pdu]:
    items = P.PduStream().feed(transport.value())
    transport.clear()
    assert not any(isinstance(i, P.PduError) for i in items)
    return items  # type: ignore[return-value]


def send(proto: SmppServerProtocol, reactor: MemoryReactorClock, *pdus: P.Pdu) -> None:
    proto.dataReceived(b"".join(P.encode(p) for p in pdus))
    reactor.advance(0)  # the end of the reactor turn: commit, then write


def bind(proto: SmppServerProtocol, reactor: MemoryReactorClock) -> None:
    send(proto, reactor, P.BindTransceiver(sequence=1, system_id="tester", password="secret"))


def test_gw_03_pdu_split_across_reads_is_framed() -> None:
    """GW-03: a PDU arriving one byte at a time is answered once, whole."""
    factory, reactor = make_factory()
    proto, transport = connect(factory)
    data = P.encode(P.BindTransceiver(sequence=1, system_id="tester", password="secret"))
    for i in range(len(data)):
        proto.dataReceived(data[i : i + 1])
    reactor.advance(0)
    (resp,) = received(transport)
    assert isinstance(resp, P.BindTransceiverResp) and resp.status == 0


def test_gw_03_bad_command_length_closes_only_that_connection() -> None:
    """GW-03: a command_length over the maximum closes that connection; a neighbour keeps working."""
    factory, reactor = make_factory()
    bad, bad_transport = connect(factory, 40001)
    good, good_transport = connect(factory, 40002)
    bind(good, reactor)
    received(good_transport)
    bad.dataReceived(b"\x00\x10\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x01")
    reactor.advance(0)
    assert bad_transport.disconnecting
    send(good, reactor, P.EnquireLink(sequence=2))
    (resp,) = received(good_transport)
    assert isinstance(resp, P.EnquireLinkResp) and not good_transport.disconnecting


def test_gw_03_garbage_body_answered_with_error_status_connection_kept() -> None:
    """GW-03: a submit_sm whose source_addr is unterminated gets its resp with an error status."""
    factory, reactor = make_factory()
    proto, transport = connect(factory)
    bind(proto, reactor)
    received(transport)
    body = b"\x00" + b"\x01\x01" + b"7" * 30  # service_type '', ton, npi, then no NUL
    header = (16 + len(body)).to_bytes(
        4, "big"
    ) + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x05"
    send(proto, reactor, P.EnquireLink(sequence=4))
    proto.dataReceived(header + body)
    reactor.advance(0)
    answers = received(transport)
    resp = next(a for a in answers if a.sequence == 5)
    assert isinstance(resp, P.SubmitSmResp)
    assert resp.status == P.CommandStatus.ESME_RINVSRCADR
    assert not transport.disconnecting


def test_gw_02_idle_session_probed_then_dropped_on_the_clock() -> None:
    """GW-02: after the idle interval the server sends enquire_link; no answer → disconnect."""
    factory, reactor = make_factory()
    proto, transport = connect(factory)
    bind(proto, reactor)
    received(transport)
    reactor.advance(30)
    (probe,) = received(transport)
    assert isinstance(probe, P.EnquireLink)
    reactor.advance(10)
    assert transport.disconnecting


def test_gw_02_bind_timeout_drops_silent_connection() -> None:
    """GW-02: a connection that never binds is closed after bind_timeout."""
    factory, reactor = make_factory()
    _, transport = connect(factory)
    reactor.advance(4)
    assert not transport.disconnecting
    reactor.advance(1)
    assert transport.disconnecting


def test_gw_02_unbind_answered_then_closed() -> None:
    """GW-02: unbind → unbind_resp written, then the connection is closed."""
    factory, reactor = make_factory()
    proto, transport = connect(factory)
    bind(proto, reactor)
    received(transport)
    send(proto, reactor, P.Unbind(sequence=9))
    (resp,) = received(transport)
    assert isinstance(resp, P.UnbindResp) and resp.sequence == 9
    assert transport.disconnecting


def test_gw_12_every_pdu_in_and_out_is_one_structured_event() -> None:
    """GW-12: each PDU in and out is logged once with connection, system_id, sequence, command, status, MSISDN."""
    with capture_logs() as logs:
        factory, reactor = make_factory(log=structlog.get_logger("test"))
        proto, _transport = connect(factory)
        bind(proto, reactor)
        send(
            proto,
            reactor,
            P.SubmitSm(
                sequence=2,
                source_addr="79160000001",
                destination_addr="79160000002",
                short_message=b"hi",
            ),
        )
    pdus = [e for e in logs if e["event"] in ("pdu_received", "pdu_sent")]
    assert [(e["event"], e["command"]) for e in pdus] == [
        ("pdu_received", "bind_transceiver"),
        ("pdu_sent", "bind_transceiver_resp"),
        ("pdu_received", "submit_sm"),
        ("pdu_sent", "submit_sm_resp"),
        ("pdu_sent", "deliver_sm"),  # the transceiver's range (.*) covers the destination
    ]
    submit = pdus[2]
    assert submit["sequence"] == 2 and submit["status"] == 0
    assert submit["source_addr"] == "79160000001" and submit["destination_addr"] == "79160000002"
    assert submit["system_id"] == "tester" and "conn_id" in submit and "peer" in submit
    assert all("short_message" not in e for e in pdus)  # bodies only at debug level
    assert any(e["event"] == "pdu_body" and e["log_level"] == "debug" for e in logs)


def test_gw_06_submit_answered_only_after_commit() -> None:
    """GW-06: the submit_sm_resp leaves only at the end of the turn, after the message is committed."""
    factory, reactor = make_factory()
    proto, transport = connect(factory)
    bind(proto, reactor)
    received(transport)
    proto.dataReceived(
        P.encode(
            P.SubmitSm(
                sequence=3,
                source_addr="79160000001",
                destination_addr="79160000009",
                short_message=b"x",
            )
        )
    )
    assert transport.value() == b""  # not yet: nothing committed
    store = factory.router.store
    reactor.advance(0)
    resp = received(transport)[0]
    assert isinstance(resp, P.SubmitSmResp) and resp.status == 0
    stored = store.connection.execute("SELECT count(*) FROM messages").fetchone()[0]
    assert stored == 1 and not store.connection.in_transaction


def test_gw_02_deliver_sm_times_out_on_the_session_clock_not_the_simulated_one() -> None:
    """GW-02: an unanswered deliver_sm times out response_timeout after it left, whichever
    way a tester has moved the simulated clock (ahead: not only after the jump; behind: not
    at once)."""
    for offset in (3600, -3600):
        reactor = MemoryReactorClock()
        reactor.advance(100_000)
        router = Router(SqliteStore(), ServiceRegistry(lambda m: None, unknown_service), CONFIG)
        factory = SmppServerFactory(
            CONFIG, router, reactor, lambda r=reactor, o=offset: int(r.seconds()) + o
        )
        proto, transport = connect(factory)
        send(
            proto,
            reactor,
            P.BindTransceiver(
                sequence=1, system_id="tester", password="secret", address_range="79160000002"
            ),
        )
        received(transport)
        submit = P.SubmitSm(sequence=2, source_addr="79160000001", destination_addr="79160000002")
        send(proto, reactor, attrs.evolve(submit, short_message=b"hi"))
        resp, deliver = received(transport)
        assert isinstance(resp, P.SubmitSmResp) and isinstance(deliver, P.DeliverSm)
        session = proto.link.session
        reactor.advance(CONFIG.response_timeout - 1)
        assert session.outstanding_deliveries == 1, offset  # not timed out early
        reactor.advance(2)
        assert session.outstanding_deliveries == 0, offset  # timed out, on time
