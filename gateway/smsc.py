"""The SMSC side of one SMPP 3.4 session, sans-IO: bind state, windows, sequence numbers.

Theory of operation
-------------------
An :class:`SmscSession` is fed bytes (:meth:`receive_data`) and a time, and answers with
*events* for the application (a bind, an operation to carry out, the answer to one of our
deliver_sm, the peer leaving) while queueing the bytes it wants sent, which the adapter
takes with :meth:`data_to_send`.  It never touches a socket or a timer: the adapter asks
:meth:`next_deadline` and calls :meth:`tick` when that moment comes (GW-02 keep-alive,
bind timeout, response timeouts).

What a PDU does depends only on the session's state and the PDU's command, and every
such pair is in one table, :data:`TRANSITIONS` (as in h11's ``_state.py``): anything not
in the table is answered ``ESME_RINVBNDSTS`` when it is an operation, ``generic_nack
ESME_RINVCMDID`` when the SMSC never accepts it.  The states::

    OPEN --bind ok--> BOUND_TX | BOUND_RX | BOUND_TRX --unbind--> CLOSED
      \\--bind refused--> OPEN (the ESME may try again)

The session answers binds, enquire_link, unbind and protocol errors itself.  Operations
(submit_sm, data_sm, query_sm, cancel_sm, replace_sm, submit_multi) become
:class:`OperationRequested` events; the application answers them with :meth:`respond`,
after it has committed whatever the operation changed.  Windows (GW-04): an ESME with
``window`` operations unanswered gets ``ESME_RTHROTTLED`` for the next; our own
deliver_sm are never more than ``deliver_window`` unanswered (:meth:`can_deliver`).
Nothing is ever queued for sending before the bind response: python-smpplib takes the
next PDU after a bind for the bind response.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Final

import attrs

from gateway import pdu as P
from gateway.config import EsmeAccount
from gateway.pdu import CommandId, CommandStatus


class State(enum.Enum):
    """Bind states of an SMPP session (SMPP 3.4 §2.3)."""

    OPEN = "open"
    BOUND_TX = "bound_tx"
    BOUND_RX = "bound_rx"
    BOUND_TRX = "bound_trx"
    CLOSED = "closed"


class Action(enum.Enum):
    """What the session does with a PDU in a given state."""

    BIND = "bind"
    ALREADY_BOUND = "already_bound"  # ESME_RALYBND
    NOT_BOUND = "not_bound"  # the operation's resp with ESME_RINVBNDSTS
    OPERATION = "operation"  # handed to the application
    ENQUIRE_LINK = "enquire_link"
    UNBIND = "unbind"
    RESPONSE = "response"  # an answer to a PDU we sent
    NACK = "nack"  # generic_nack ESME_RINVCMDID: the SMSC never accepts this command
    IGNORE = "ignore"


BOUND: Final = frozenset({State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX})
_BIND_STATE: Final = {
    CommandId.BIND_TRANSMITTER: State.BOUND_TX,
    CommandId.BIND_RECEIVER: State.BOUND_RX,
    CommandId.BIND_TRANSCEIVER: State.BOUND_TRX,
}
BIND_TYPE_NAME: Final = {
    CommandId.BIND_TRANSMITTER: "transmitter",
    CommandId.BIND_RECEIVER: "receiver",
    CommandId.BIND_TRANSCEIVER: "transceiver",
}
_OPERATIONS: Final = (
    CommandId.SUBMIT_SM,
    CommandId.DATA_SM,
    CommandId.QUERY_SM,
    CommandId.CANCEL_SM,
    CommandId.REPLACE_SM,
    CommandId.SUBMIT_MULTI,
)
_RESPONSES: Final = (
    CommandId.DELIVER_SM_RESP,
    CommandId.DATA_SM_RESP,
    CommandId.ENQUIRE_LINK_RESP,
    CommandId.UNBIND_RESP,
    CommandId.GENERIC_NACK,
)
#: Commands an SMSC sends but never accepts from an ESME.
_NEVER_ACCEPTED: Final = (
    CommandId.DELIVER_SM,
    CommandId.OUTBIND,
    CommandId.ALERT_NOTIFICATION,
    CommandId.BIND_TRANSMITTER_RESP,
    CommandId.BIND_RECEIVER_RESP,
    CommandId.BIND_TRANSCEIVER_RESP,
    CommandId.SUBMIT_SM_RESP,
    CommandId.QUERY_SM_RESP,
    CommandId.CANCEL_SM_RESP,
    CommandId.REPLACE_SM_RESP,
    CommandId.SUBMIT_MULTI_RESP,
)


def _table() -> dict[tuple[State, CommandId], tuple[Action, State | None]]:
    """Build the transition table: ``(state, command) -> (action, next state)``.

    ``None`` as next state means "decided by the action" (a bind may succeed or fail).
    """
    table: dict[tuple[State, CommandId], tuple[Action, State | None]] = {}
    live = (State.OPEN, *BOUND)
    for state in live:
        for command in _BIND_STATE:
            if state is State.OPEN:
                table[state, command] = (Action.BIND, None)
            else:
                table[state, command] = (Action.ALREADY_BOUND, state)
        table[state, CommandId.ENQUIRE_LINK] = (Action.ENQUIRE_LINK, state)
        table[state, CommandId.UNBIND] = (
            (Action.UNBIND, State.CLOSED) if state in BOUND else (Action.NOT_BOUND, state)
        )
        for command in _RESPONSES:
            table[state, command] = (Action.RESPONSE, state)
        for command in _NEVER_ACCEPTED:
            table[state, command] = (Action.NACK, state)
        for command in _OPERATIONS:
            table[state, command] = (Action.NOT_BOUND, state)
    for state in (State.BOUND_TX, State.BOUND_TRX):
        for command in _OPERATIONS:
            table[state, command] = (Action.OPERATION, state)
    for command in CommandId:
        table[State.CLOSED, command] = (Action.IGNORE, State.CLOSED)
    return table


#: Requests an ESME may send whose own resp carries a decoding error (GW-03).
_REQUEST_CLASSES: Final[dict[int, type]] = {
    cls.command_id: cls
    for cls in (
        P.BindTransmitter,
        P.BindReceiver,
        P.BindTransceiver,
        P.SubmitSm,
        P.DataSm,
        P.QuerySm,
        P.CancelSm,
        P.ReplaceSm,
        P.SubmitMulti,
        P.EnquireLink,
        P.Unbind,
    )
}


#: Every (state, command) pair the session knows; see the module docstring.
TRANSITIONS: Final = _table()


# -- events for the application -------------------------------------------------------


@attrs.frozen
class BindAccepted:
    """An ESME bound (GW-01)."""

    account: EsmeAccount
    bind_type: str
    address_range: str


@attrs.frozen
class BindRefused:
    """A bind was refused; the session stays open for another try."""

    system_id: str
    status: CommandStatus


@attrs.frozen
class OperationRequested:
    """An operation the application must carry out and then :meth:`~SmscSession.respond` to."""

    pdu: P.Pdu


@attrs.frozen
class DeliveryAnswered:
    """The ESME answered (or failed to answer in time) one of our deliver_sm / data_sm."""

    sequence: int
    status: int
    context: object
    timed_out: bool = False


@attrs.frozen
class ProtocolErrorReceived:
    """A PDU that could not be decoded; already answered.  ``fatal`` closes the session."""

    error: P.PduError


@attrs.frozen
class SessionClosing:
    """The session is over (unbind, fatal error, timeout); send what is queued, then close."""

    reason: str


Event = (
    BindAccepted
    | BindRefused
    | OperationRequested
    | DeliveryAnswered
    | ProtocolErrorReceived
    | SessionClosing
)

Authenticator = Callable[[str, str, str], "EsmeAccount | CommandStatus"]


class SmscSession:
    """One SMPP session as the SMSC sees it.  See the module docstring."""

    def __init__(
        self,
        authenticate: Authenticator,
        *,
        server_system_id: str = "ussdsim",
        max_command_length: int = 65536,
        bind_timeout: float = 30.0,
        enquire_link_interval: float = 30.0,
        response_timeout: float = 10.0,
        now: float = 0.0,
        observe: Callable[[str, P.Pdu], None] | None = None,
    ) -> None:
        self.state = State.OPEN
        #: called with ("pdu_received" | "pdu_sent", pdu) for every PDU, when logging wants it
        self.observe = observe
        self.account: EsmeAccount | None = None
        self.bind_type = ""
        self.address_range = ""
        self._authenticate = authenticate
        self._server_system_id = server_system_id
        self._stream = P.PduStream(max_command_length)
        self._out: list[bytes] = []
        self._bind_timeout = bind_timeout
        self._enquire_interval = enquire_link_interval
        self._response_timeout = response_timeout
        self._opened_at = now
        self._last_heard = now
        self._next_sequence = 1
        #: our requests awaiting an answer: sequence -> (sent at, context)
        self._pending: dict[int, tuple[float, object]] = {}
        self._enquire_sequence: int | None = None
        self._unanswered_ops = 0
        self._window = 1
        self._deliver_window = 1
        self._max_tps = 0
        self._tps_second = -1
        self._tps_count = 0

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    # -- feeding ------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        """Take bytes from the peer; return what the application must act on."""
        if self.state is State.CLOSED:
            return []
        self._last_heard = now
        events: list[Event] = []
        for item in self._stream.feed(data):
            if isinstance(item, P.PduError):
                events.extend(self._protocol_error(item))
                if self.closed:
                    break
                continue
            if self.observe is not None:
                self.observe("pdu_received", item)
            events.extend(self._receive_pdu(item, now))
            if self.closed:
                break
        return events

    def _receive_pdu(self, pdu: P.Pdu, now: float) -> list[Event]:
        action, next_state = TRANSITIONS[self.state, pdu.command_id]
        if action is Action.OPERATION:
            return self._operation(pdu, now)
        if action is Action.RESPONSE:
            return self._response(pdu)
        if action is Action.ENQUIRE_LINK:
            self._send(P.EnquireLinkResp(sequence=pdu.sequence))
            return []
        if action is Action.BIND:
            return self._bind(pdu)
        if action is Action.ALREADY_BOUND:
            self._send(pdu.response(status=CommandStatus.ESME_RALYBND))  # type: ignore[union-attr]
            return []
        if action is Action.NOT_BOUND:
            self._send(pdu.response(status=CommandStatus.ESME_RINVBNDSTS))  # type: ignore[union-attr]
            return []
        if action is Action.UNBIND:
            self._send(P.UnbindResp(sequence=pdu.sequence))
            assert next_state is not None
            self.state = next_state
            return [SessionClosing("unbind")]
        if action is Action.NACK:
            self._send(P.GenericNack(sequence=pdu.sequence, status=CommandStatus.ESME_RINVCMDID))
            return []
        return []  # Action.IGNORE

    def _bind(self, pdu: P.Pdu) -> list[Event]:
        assert isinstance(pdu, P.BindTransmitter | P.BindReceiver | P.BindTransceiver)
        bind_type = BIND_TYPE_NAME[pdu.command_id]
        found = self._authenticate(pdu.system_id, pdu.password, bind_type)
        if isinstance(found, CommandStatus):
            self._send(pdu.response(status=found, system_id=self._server_system_id))
            return [BindRefused(pdu.system_id, found)]
        self.account = found
        self.state = _BIND_STATE[pdu.command_id]
        self.bind_type = bind_type
        self.address_range = pdu.address_range or found.address_range
        self._window = found.window
        self._deliver_window = found.deliver_window
        self._max_tps = found.max_tps
        self._send(
            pdu.response(
                system_id=self._server_system_id,
                # §5.3.2.25: we speak 3.4, so the ESME may send TLVs.
                tlvs=(P.Tlv.u8(P.Tag.SC_INTERFACE_VERSION, 0x34),),
            )
        )
        return [BindAccepted(found, bind_type, self.address_range)]

    def _operation(self, pdu: P.Pdu, now: float) -> list[Event]:
        if self._unanswered_ops >= self._window or self._over_throughput(now):
            self._send(pdu.response(status=CommandStatus.ESME_RTHROTTLED))  # type: ignore[union-attr]
            return []
        self._unanswered_ops += 1
        return [OperationRequested(pdu)]

    def _over_throughput(self, now: float) -> bool:
        if not self._max_tps:
            return False
        second = int(now)
        if second != self._tps_second:
            self._tps_second, self._tps_count = second, 0
        self._tps_count += 1
        return self._tps_count > self._max_tps

    def _response(self, pdu: P.Pdu) -> list[Event]:
        if pdu.sequence == self._enquire_sequence:
            self._enquire_sequence = None
            self._pending.pop(pdu.sequence, None)
            return []
        entry = self._pending.pop(pdu.sequence, None)
        if entry is None:
            return []  # an answer to nothing we asked: nothing to do (logged by the adapter)
        return [DeliveryAnswered(pdu.sequence, pdu.status, entry[1])]

    def _protocol_error(self, error: P.PduError) -> list[Event]:
        if error.fatal:
            self.state = State.CLOSED
            return [ProtocolErrorReceived(error), SessionClosing(f"fatal: {error.detail}")]
        sequence = error.sequence or 0
        request_class = _REQUEST_CLASSES.get(error.command_id or 0)
        if request_class is not None:
            self._send(request_class(sequence=sequence).response(status=error.status))
        else:
            self._send(P.GenericNack(sequence=sequence, status=error.status))
        return [ProtocolErrorReceived(error)]

    # -- the application's side ---------------------------------------------------------

    def respond(self, request: P.Pdu, status: int = 0, **fields: object) -> None:
        """Answer an :class:`OperationRequested` (after its effects are committed)."""
        self._unanswered_ops -= 1
        self._send(request.response(status=status, **fields))  # type: ignore[union-attr]

    @property
    def can_receive(self) -> bool:
        """Whether mobile-terminated messages may be sent on this session (GW-08)."""
        return self.state in (State.BOUND_RX, State.BOUND_TRX)

    def can_deliver(self) -> bool:
        """Whether another deliver_sm fits in our window (GW-04)."""
        return self.can_receive and self.outstanding_deliveries < self._deliver_window

    @property
    def outstanding_deliveries(self) -> int:
        return len(self._pending) - (self._enquire_sequence is not None)

    def deliver(
        self, pdu_without_sequence: P.DeliverSm | P.DataSm, context: object, now: float
    ) -> int:
        """Queue a deliver_sm (or data_sm); its answer comes back as DeliveryAnswered."""
        sequence = self._take_sequence()
        self._pending[sequence] = (now, context)
        self._send(pdu_without_sequence.with_sequence(sequence))
        return sequence

    def unbind(self) -> None:
        """Start a server-initiated unbind (shutdown); the adapter closes after a grace time."""
        if self.state in BOUND:
            self._send(P.Unbind(sequence=self._take_sequence()))
        self.state = State.CLOSED

    def connection_lost(self) -> list[DeliveryAnswered]:
        """The transport is gone: every deliver_sm in flight is answered as timed out."""
        self.state = State.CLOSED
        lost = [
            DeliveryAnswered(sequence, -1, context, timed_out=True)
            for sequence, (_, context) in self._pending.items()
            if sequence != self._enquire_sequence
        ]
        self._pending.clear()
        return lost

    def data_to_send(self) -> bytes:
        out = b"".join(self._out)
        self._out.clear()
        return out

    # -- time ---------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest moment :meth:`tick` has something to do."""
        if self.state is State.CLOSED:
            return None
        if self.state is State.OPEN:
            return self._opened_at + self._bind_timeout
        deadlines = []
        if self._enquire_sequence is None:
            deadlines.append(self._last_heard + self._enquire_interval)
        if self._pending:  # our deliver_sm and our enquire_link awaiting an answer
            deadlines.append(
                min(sent for sent, _ in self._pending.values()) + self._response_timeout
            )
        return min(deadlines)

    def tick(self, now: float) -> list[Event]:
        """Act on every deadline that has passed (GW-02 keep-alive and timeouts)."""
        if self.state is State.CLOSED:
            return []
        if self.state is State.OPEN:
            if now >= self._opened_at + self._bind_timeout:
                self.state = State.CLOSED
                return [SessionClosing("bind timeout")]
            return []
        events: list[Event] = []
        if self._enquire_sequence is not None:
            sent = self._pending[self._enquire_sequence][0]
            if now >= sent + self._response_timeout:
                events.extend(self.connection_lost())
                events.append(SessionClosing("enquire_link not answered"))
                return events
        for sequence, (sent, context) in list(self._pending.items()):
            if sequence != self._enquire_sequence and now >= sent + self._response_timeout:
                del self._pending[sequence]
                events.append(DeliveryAnswered(sequence, -1, context, timed_out=True))
        if self._enquire_sequence is None and now >= self._last_heard + self._enquire_interval:
            sequence = self._take_sequence()
            self._enquire_sequence = sequence
            self._pending[sequence] = (now, None)
            self._send(P.EnquireLink(sequence=sequence))
        return events

    # -- internals ----------------------------------------------------------------------

    def _take_sequence(self) -> int:
        sequence = self._next_sequence
        # §5.1.4: sequence numbers run 0x00000001 to 0x7FFFFFFF, then wrap.
        self._next_sequence = 1 if sequence >= 0x7FFFFFFF else sequence + 1
        return sequence

    def _send(self, pdu: P.Pdu) -> None:
        if self.observe is not None:
            self.observe("pdu_sent", pdu)
        self._out.append(P.encode(pdu))
