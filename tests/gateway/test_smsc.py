"""Tests of the sans-IO SMPP session: the bind-state table, windows, keep-alive (GW-01 … GW-04)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import pdu as P
from gateway import smsc
from gateway.config import EsmeAccount
from gateway.pdu import CommandId, CommandStatus
from gateway.smsc import Action, SmscSession, State

ACCOUNT = EsmeAccount(system_id="tester", password="secret", window=3, deliver_window=2)
RX_ONLY = EsmeAccount(system_id="rx", password="rx", bind_types=frozenset({"receiver"}))


def authenticate(system_id: str, password: str, bind_type: str) -> EsmeAccount | CommandStatus:
    for account in (ACCOUNT, RX_ONLY):
        if account.system_id == system_id:
            if account.password != password:
                return CommandStatus.ESME_RINVPASWD
            if bind_type not in account.bind_types:
                return CommandStatus.ESME_RBINDFAIL
            return account
    return CommandStatus.ESME_RINVSYSID


PDU_CLASSES = [
    c
    for c in vars(P).values()
    if isinstance(c, type) and isinstance(getattr(c, "command_id", None), CommandId)
]


def new_session(**kwargs: float) -> SmscSession:
    return SmscSession(authenticate, **kwargs)  # type: ignore[arg-type]


def feed(
    session: SmscSession, *pdus: P.Pdu, now: float = 0.0
) -> tuple[list[smsc.Event], list[P.Pdu]]:
    """Feed PDUs; return the events and the PDUs the session answered with."""
    events = session.receive_data(b"".join(P.encode(p) for p in pdus), now)
    out = [item for item in P.PduStream().feed(session.data_to_send())]
    assert all(not isinstance(item, P.PduError) for item in out)
    return events, out  # type: ignore[return-value]


def bound(kind: type = P.BindTransceiver) -> SmscSession:
    session = new_session()
    feed(session, kind(sequence=1, system_id="tester", password="secret"))
    return session


def submit(sequence: int) -> P.SubmitSm:
    return P.SubmitSm(sequence=sequence, source_addr="79160000001", destination_addr="79160000002")


def test_gw_01_bind_transceiver_accepted() -> None:
    """GW-01: a bind with the configured credentials is answered ESME_ROK and the session is bound."""
    session = new_session()
    events, out = feed(
        session, P.BindTransceiver(sequence=7, system_id="tester", password="secret")
    )
    assert session.state is State.BOUND_TRX
    assert isinstance(events[0], smsc.BindAccepted)
    assert isinstance(out[0], P.BindTransceiverResp)
    assert (out[0].sequence, out[0].status, out[0].system_id) == (7, 0, "ussdsim")


@pytest.mark.parametrize(
    ("system_id", "password", "status"),
    [
        ("tester", "wrong", CommandStatus.ESME_RINVPASWD),
        ("nobody", "secret", CommandStatus.ESME_RINVSYSID),
    ],
)
def test_gw_01_bad_credentials_refused(
    system_id: str, password: str, status: CommandStatus
) -> None:
    """GW-01: wrong password → ESME_RINVPASWD, unknown system_id → ESME_RINVSYSID; still open."""
    session = new_session()
    events, out = feed(
        session, P.BindTransmitter(sequence=1, system_id=system_id, password=password)
    )
    assert out[0].status == status
    assert isinstance(events[0], smsc.BindRefused)
    assert session.state is State.OPEN


def test_gw_01_second_bind_is_already_bound() -> None:
    """GW-01: a second bind on a bound session → ESME_RALYBND, the first bind stays."""
    session = bound()
    _, out = feed(session, P.BindTransmitter(sequence=2, system_id="tester", password="secret"))
    assert isinstance(out[0], P.BindTransmitterResp)
    assert out[0].status == CommandStatus.ESME_RALYBND
    assert session.state is State.BOUND_TRX


def test_gw_01_submit_before_bind_is_invalid_bind_status() -> None:
    """GW-01: any operation before bind → ESME_RINVBNDSTS."""
    session = new_session()
    events, out = feed(session, submit(5))
    assert events == []
    assert isinstance(out[0], P.SubmitSmResp)
    assert (out[0].sequence, out[0].status) == (5, CommandStatus.ESME_RINVBNDSTS)


def test_gw_01_receiver_that_submits_is_invalid_bind_status() -> None:
    """GW-01: a receiver that submits → ESME_RINVBNDSTS."""
    session = new_session()
    feed(session, P.BindReceiver(sequence=1, system_id="rx", password="rx"))
    assert session.state is State.BOUND_RX
    _, out = feed(session, submit(2))
    assert out[0].status == CommandStatus.ESME_RINVBNDSTS


def test_gw_01_bind_type_not_allowed_for_account() -> None:
    """GW-01: an account limited to receiver binds cannot bind as transmitter (ESME_RBINDFAIL)."""
    session = new_session()
    _, out = feed(session, P.BindTransmitter(sequence=1, system_id="rx", password="rx"))
    assert out[0].status == CommandStatus.ESME_RBINDFAIL


@given(
    state=st.sampled_from([s for s in State if s is not State.CLOSED]),
    command=st.sampled_from(list(CommandId)),
)
def test_gw_01_transition_table_covers_every_state_and_command(
    state: State, command: CommandId
) -> None:
    """GW-01/GW-03: every (state, command) pair has an entry, and it is the right kind of answer."""
    action, next_state = smsc.TRANSITIONS[state, command]
    bound_states = {State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX}
    if command in (CommandId.BIND_TRANSMITTER, CommandId.BIND_RECEIVER, CommandId.BIND_TRANSCEIVER):
        assert action is (Action.BIND if state is State.OPEN else Action.ALREADY_BOUND)
    elif command is CommandId.ENQUIRE_LINK:
        assert action is Action.ENQUIRE_LINK and next_state is state  # GW-02: every state
    elif command is CommandId.UNBIND:
        assert action is (Action.UNBIND if state in bound_states else Action.NOT_BOUND)
    elif command in (CommandId.SUBMIT_SM, CommandId.DATA_SM, CommandId.SUBMIT_MULTI):
        expected = (
            Action.OPERATION if state in (State.BOUND_TX, State.BOUND_TRX) else Action.NOT_BOUND
        )
        assert action is expected
    elif command.name.endswith("_RESP") and command not in (
        CommandId.DELIVER_SM_RESP,
        CommandId.DATA_SM_RESP,
        CommandId.ENQUIRE_LINK_RESP,
        CommandId.UNBIND_RESP,
    ):
        assert action is Action.NACK
    if action is not Action.UNBIND and action is not Action.BIND:
        assert next_state is state


@given(
    state=st.sampled_from([s for s in State if s is not State.CLOSED]),
    command=st.sampled_from(
        [
            c
            for c in CommandId
            if c not in (CommandId.GENERIC_NACK,) and not c.name.endswith("_RESP")
        ]
    ),
)
def test_gw_03_every_request_in_every_state_gets_exactly_one_answer(
    state: State, command: CommandId
) -> None:
    """GW-03: whatever an ESME sends in whatever state, it gets one answer with its sequence."""
    session = new_session()
    if state is State.BOUND_TX:
        feed(session, P.BindTransmitter(sequence=1, system_id="tester", password="secret"))
    elif state is State.BOUND_RX:
        feed(session, P.BindReceiver(sequence=1, system_id="tester", password="secret"))
    elif state is State.BOUND_TRX:
        feed(session, P.BindTransceiver(sequence=1, system_id="tester", password="secret"))
    request_class = next(c for c in PDU_CLASSES if c.command_id == command)
    binds = (CommandId.BIND_TRANSMITTER, CommandId.BIND_RECEIVER, CommandId.BIND_TRANSCEIVER)
    if command in binds:
        request = request_class(sequence=99, system_id="tester", password="secret")
    else:
        request = request_class(sequence=99)
    events, out = feed(session, request)
    operations = [e for e in events if isinstance(e, smsc.OperationRequested)]
    if operations:
        assert out == []
        session.respond(operations[0].pdu)
        out = list(P.PduStream().feed(session.data_to_send()))  # type: ignore[arg-type]
    assert len(out) == 1
    assert out[0].sequence == 99


def test_gw_02_enquire_link_answered() -> None:
    """GW-02: enquire_link is answered with enquire_link_resp of the same sequence."""
    session = bound()
    _, out = feed(session, P.EnquireLink(sequence=42))
    assert isinstance(out[0], P.EnquireLinkResp) and out[0].sequence == 42


def test_gw_02_unbind_answered_then_closing() -> None:
    """GW-02: unbind → unbind_resp, then the session closes."""
    session = bound()
    events, out = feed(session, P.Unbind(sequence=3))
    assert isinstance(out[0], P.UnbindResp) and out[0].sequence == 3
    assert isinstance(events[-1], smsc.SessionClosing)
    assert session.state is State.CLOSED


def test_gw_02_idle_session_gets_enquire_link_and_is_dropped_without_answer() -> None:
    """GW-02: the server sends enquire_link to an idle session and drops one that does not answer."""
    session = SmscSession(authenticate, enquire_link_interval=30, response_timeout=10)  # type: ignore[arg-type]
    feed(session, P.BindTransceiver(sequence=1, system_id="tester", password="secret"))
    assert session.next_deadline() == 30
    assert session.tick(30) == []
    sent = list(P.PduStream().feed(session.data_to_send()))
    assert isinstance(sent[0], P.EnquireLink)
    events = session.tick(40)
    assert any(isinstance(e, smsc.SessionClosing) for e in events)


def test_gw_02_answered_enquire_link_keeps_session() -> None:
    """GW-02: an answered enquire_link keeps the session open."""
    session = SmscSession(authenticate, enquire_link_interval=30, response_timeout=10)  # type: ignore[arg-type]
    feed(session, P.BindTransceiver(sequence=1, system_id="tester", password="secret"))
    session.tick(30)
    (probe,) = P.PduStream().feed(session.data_to_send())
    feed(session, P.EnquireLinkResp(sequence=probe.sequence), now=31)  # type: ignore[union-attr]
    assert session.tick(45) == []
    assert session.state is State.BOUND_TRX


def test_gw_02_bind_timeout_closes_open_session() -> None:
    """GW-02: a connection that never binds is closed after the bind timeout."""
    session = SmscSession(authenticate, bind_timeout=5)  # type: ignore[arg-type]
    assert session.tick(4) == []
    assert isinstance(session.tick(5)[0], smsc.SessionClosing)


def test_gw_04_throttles_over_window() -> None:
    """GW-04: an ESME with `window` operations unanswered gets ESME_RTHROTTLED for the next."""
    session = bound()
    events, out = feed(session, *(submit(i) for i in range(10, 14)))
    assert len(events) == 3  # window=3 operations handed to the application
    assert [(p.sequence, p.status) for p in out] == [(13, CommandStatus.ESME_RTHROTTLED)]
    session.respond(events[0].pdu, message_id="1")  # type: ignore[union-attr]
    events, _ = feed(session, submit(14))
    assert len(events) == 1  # a place in the window opened


def test_gw_04_deliver_window_honoured() -> None:
    """GW-04: the server never has more than deliver_window deliver_sm unanswered."""
    session = bound()
    for i in range(2):
        assert session.can_deliver()
        session.deliver(P.DeliverSm(sequence=0, destination_addr="7916"), i, now=0)
    assert not session.can_deliver()
    sent = list(P.PduStream().feed(session.data_to_send()))
    events, _ = feed(session, P.DeliverSmResp(sequence=sent[0].sequence))  # type: ignore[union-attr]
    assert isinstance(events[0], smsc.DeliveryAnswered) and events[0].context == 0
    assert session.can_deliver()


def test_gw_04_unanswered_deliver_sm_times_out() -> None:
    """GW-04: a deliver_sm with no answer within response_timeout is reported as timed out."""
    session = SmscSession(authenticate, response_timeout=10, enquire_link_interval=1000)  # type: ignore[arg-type]
    feed(session, P.BindTransceiver(sequence=1, system_id="tester", password="secret"))
    session.deliver(P.DeliverSm(sequence=0, destination_addr="7916"), "ctx", now=0)
    assert session.tick(9.9) == []
    (event,) = session.tick(10)
    assert isinstance(event, smsc.DeliveryAnswered)
    assert (event.status, event.context, event.timed_out) == (-1, "ctx", True)
    assert session.can_deliver()  # the timed-out one no longer holds a place in the window


def test_gw_03_bad_command_length_closes_session() -> None:
    """GW-03: a command_length under 16 is fatal: the session closes."""
    session = bound()
    events = session.receive_data(b"\x00\x00\x00\x08\x00\x00\x00\x15", 0)
    assert any(isinstance(e, smsc.SessionClosing) for e in events)
    assert session.state is State.CLOSED


def test_gw_03_unknown_command_id_gets_generic_nack() -> None:
    """GW-03: an unknown command_id → generic_nack ESME_RINVCMDID with the same sequence."""
    session = bound()
    session.receive_data(b"\x00\x00\x00\x10\x00\x00\x77\x77\x00\x00\x00\x00\x00\x00\x00\x09", 0)
    (nack,) = P.PduStream().feed(session.data_to_send())
    assert isinstance(nack, P.GenericNack)
    assert (nack.sequence, nack.status) == (9, CommandStatus.ESME_RINVCMDID)


def test_gw_03_deliver_sm_from_esme_is_nacked() -> None:
    """GW-03: commands only an SMSC sends (deliver_sm) are refused with generic_nack."""
    session = bound()
    _, out = feed(session, P.DeliverSm(sequence=4))
    assert isinstance(out[0], P.GenericNack) and out[0].status == CommandStatus.ESME_RINVCMDID


def test_gw_01_nothing_sent_before_bind_response() -> None:
    """GW-01: the bind response is the first PDU the session ever sends (smpplib relies on it)."""
    session = new_session()
    _events, out = feed(
        session,
        P.BindTransceiver(sequence=1, system_id="tester", password="secret"),
        P.EnquireLink(sequence=2),
    )
    assert isinstance(out[0], P.BindTransceiverResp)
