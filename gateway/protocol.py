"""The thin Twisted adapter: bytes from a socket into an :class:`~gateway.smsc.SmscSession`,
its events to the :class:`~gateway.routing.Router`, bytes back out, and the timers.

This is the only module that writes to a transport, closes a connection or calls
``callLater`` for SMPP sessions.  Time comes from the injected ``IReactorTime`` (a
``task.Clock`` in tests); the simulator clock (``now`` in seconds) is the reactor time
plus the tester's offset, supplied by ``now``.

Every PDU in and out is one structlog event (GW-12): ``pdu_received`` / ``pdu_sent`` with
the connection id, peer, system_id, sequence, command, status and MSISDNs; bodies only
at debug level.  Logging is switched off per PDU when the logger is not enabled for
info, so a benchmark pays nothing for it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import structlog
from twisted.internet import protocol
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from gateway import pdu as P
from gateway import smsc
from gateway.config import GatewayConfig
from gateway.pdu import CommandStatus
from gateway.routing import Link, Router

_conn_ids = itertools.count(1)
#: How long a closing session may take to send what it has queued before the socket closes.
CLOSE_GRACE = 2.0


def _describe(pdu: P.Pdu) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "command": pdu.command_id.name.lower(),
        "sequence": pdu.sequence,
        "status": pdu.status,
    }
    source = getattr(pdu, "source_addr", None)
    if source:
        fields["source_addr"] = source
    destination = getattr(pdu, "destination_addr", None)
    if destination:
        fields["destination_addr"] = destination
    return fields


class SmppServerProtocol(protocol.Protocol):
    """One ESME connection."""

    def __init__(self, factory: SmppServerFactory) -> None:
        self.factory = factory
        self.conn_id = next(_conn_ids)
        self.log = factory.log
        self.link: Link | None = None
        self._timer: IDelayedCall | None = None
        self._closing = False

    # -- Twisted callbacks ---------------------------------------------------------------

    def connectionMade(self) -> None:
        factory = self.factory
        assert self.transport is not None
        peer = self.transport.getPeer()
        self.log = factory.log.bind(conn_id=self.conn_id, peer=f"{peer.host}:{peer.port}")  # type: ignore[attr-defined]
        config = factory.config
        session = smsc.SmscSession(
            factory.authenticate,
            server_system_id=config.server_system_id,
            max_command_length=config.max_command_length,
            bind_timeout=config.bind_timeout,
            enquire_link_interval=config.enquire_link_interval,
            response_timeout=config.response_timeout,
            now=factory.reactor.seconds(),
            observe=self._observe if factory.log_pdus else None,
        )
        self.link = Link(
            self.conn_id, session, self._write, self._close_now, seconds=factory.reactor.seconds
        )
        factory.router.connect(self.link)
        factory.connections[self.conn_id] = self
        self.log.info("connection_made")
        self._schedule()

    def dataReceived(self, data: bytes) -> None:
        link = self.link
        if link is None or self._closing:
            return
        router = self.factory.router
        now = self.factory.now()
        session = link.session
        events = session.receive_data(data, self.factory.reactor.seconds())
        for event in events:
            if isinstance(event, smsc.OperationRequested):
                router.operation(link, event.pdu, now)
            elif isinstance(event, smsc.DeliveryAnswered):
                router.delivery_answered(link, event.sequence, event.status, event.context, now)
            elif isinstance(event, smsc.BindAccepted):
                self.log = self.log.bind(system_id=event.account.system_id)
                self.log.info(
                    "bind_accepted", bind_type=event.bind_type, address_range=event.address_range
                )
                router.bound(link, now)
            elif isinstance(event, smsc.BindRefused):
                self.log.warning(
                    "bind_rejected", system_id=event.system_id, status=event.status.name
                )
                router.mark_dirty(link)
            elif isinstance(event, smsc.ProtocolErrorReceived):
                error = event.error
                self.log.warning(
                    "pdu_malformed",
                    status=CommandStatus(error.status).name,
                    command_id=error.command_id,
                    sequence=error.sequence,
                    detail=error.detail,
                    fatal=error.fatal,
                )
                router.mark_dirty(link)
            elif isinstance(event, smsc.SessionClosing):
                self.log.info("session_closing", reason=event.reason)
                router.mark_dirty(link)
                self._closing = True
        # Answers to bind, enquire_link and the like are queued in the session too.
        router.mark_dirty(link)
        if self._closing:
            router.flush()
            self._close_soon()
        else:
            # One commit for everything every connection fed in this reactor turn; no
            # answer leaves before it (the flush writes only after committing).
            self.factory.request_flush()
        self._schedule()

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self.factory.connections.pop(self.conn_id, None)
        if self.link is not None:
            self.factory.router.disconnect(self.link, self.factory.now())
            self.factory.router.flush()
            self.link = None
        self.log.info("connection_lost", reason=str(reason.value))

    # -- timers --------------------------------------------------------------------------

    def _schedule(self) -> None:
        if self.link is None or self._closing:
            return
        deadline = self.link.session.next_deadline()
        if deadline is None:
            return
        delay = max(0.0, deadline - self.factory.reactor.seconds())
        timer = self._timer
        if timer is not None and timer.active():
            if timer.getTime() <= deadline:
                return  # the earlier timer will look again when it fires
            timer.cancel()
        self._timer = self.factory.reactor.callLater(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        link = self.link
        if link is None:
            return
        router = self.factory.router
        now = self.factory.now()
        for event in link.session.tick(self.factory.reactor.seconds()):
            if isinstance(event, smsc.DeliveryAnswered):
                router.delivery_answered(link, event.sequence, event.status, event.context, now)
            elif isinstance(event, smsc.SessionClosing):
                self.log.info("session_closing", reason=event.reason)
                self._closing = True
        router.mark_dirty(link)
        router.flush()
        if self._closing:
            self._close_soon()
        else:
            self._schedule()

    # -- writing and closing ---------------------------------------------------------------

    def _observe(self, event: str, pdu: P.Pdu) -> None:
        """GW-12: one structured event per PDU; the body only at debug level."""
        self.log.info(event, **_describe(pdu))
        message = getattr(pdu, "short_message", None)
        if message:
            self.log.debug("pdu_body", sequence=pdu.sequence, short_message=message.hex())

    def _write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def _close_soon(self) -> None:
        """Close after what is queued has gone out (an unbind_resp must reach the peer)."""
        assert self.transport is not None
        self.transport.loseConnection()

    def _close_now(self) -> None:
        if self.transport is not None:
            self.transport.loseConnection()

    def shutdown(self) -> None:
        """Server-initiated unbind on shutdown; the connection is closed after a grace time."""
        if self.link is None:
            return
        self.link.session.unbind()
        data = self.link.session.data_to_send()
        if data:
            self._write(data)
        self._closing = True
        self.factory.reactor.callLater(CLOSE_GRACE, self._close_now)


class SmppServerFactory(protocol.Factory):
    """Makes one :class:`SmppServerProtocol` per ESME connection."""

    def __init__(
        self,
        config: GatewayConfig,
        router: Router,
        reactor: IReactorTime,
        now: Callable[[], int],
        *,
        log: Any = None,
    ) -> None:
        self.config = config
        self.router = router
        self.reactor = reactor
        self.now = now
        self.log = log if log is not None else structlog.get_logger("ussdsim.smpp")
        self.log_pdus = _enabled(self.log)
        self.connections: dict[int, SmppServerProtocol] = {}
        self._flush_call: IDelayedCall | None = None

    def request_flush(self) -> None:
        """Commit and write at the end of this reactor turn (once, for all connections)."""
        if self._flush_call is None:
            self._flush_call = self.reactor.callLater(0, self._flush)

    def _flush(self) -> None:
        self._flush_call = None
        self.router.flush()

    def buildProtocol(self, addr: Any) -> SmppServerProtocol:
        return SmppServerProtocol(self)

    def authenticate(self, system_id: str, password: str, bind_type: str) -> Any:
        """GW-01: the account, or the status that refuses the bind."""
        account = self.config.account(system_id)
        if account is None:
            return CommandStatus.ESME_RINVSYSID
        if account.password != password:
            return CommandStatus.ESME_RINVPASWD
        if bind_type not in account.bind_types:
            return CommandStatus.ESME_RBINDFAIL
        return account


def _enabled(log: Any) -> bool:
    """Whether per-PDU info events would be emitted at all (skip building them if not)."""
    is_enabled = getattr(log, "is_enabled_for", None)
    if callable(is_enabled):
        import logging

        return bool(is_enabled(logging.INFO))
    return True
