"""Assembly: the clock, the store, the router, the services and the listeners of one gateway.

This is the one module that reads the wall clock (through the reactor it is given): the
simulator time is ``reactor.seconds()`` plus the tester's offset, and everything else
receives it.  Tests build a :class:`Gateway` on a ``task.Clock`` or on the real reactor
with port 0; ``ussdsim serve`` builds one on the real reactor.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import structlog
from twisted.internet import defer, task
from twisted.internet.interfaces import IListeningPort

from gateway.config import GatewayConfig
from gateway.protocol import SmppServerFactory
from gateway.routing import MobileOriginated, Outgoing, Router, ServiceRegistry
from services.store import SqliteStore

#: Reply to an MO for which no service is registered (GW-05), before any profile says more.
UNKNOWN_SERVICE_TEXT = "Unknown service / Неизвестная услуга"


def configure_logging(*, json: bool = False, level: int = logging.INFO) -> None:
    """structlog: JSON lines in production (``serve --json``), console on a TTY (GW-12)."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json or not sys.stderr.isatty()
        else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def unknown_service(mo: MobileOriginated, profile: str | None) -> list[Outgoing]:
    """GW-05: the sender learns that nothing answers at that number or code."""
    if mo.channel == "ussd":
        return [Outgoing(to=mo.source, sender=mo.destination, text=UNKNOWN_SERVICE_TEXT, channel="ussd", ussd_op=17)]
    return [Outgoing(to=mo.source, sender=mo.destination, text=UNKNOWN_SERVICE_TEXT)]


class Gateway:
    """One simulator: store, router and SMPP listener on a reactor."""

    def __init__(
        self,
        config: GatewayConfig,
        reactor: Any,
        *,
        store: SqliteStore | None = None,
        profile_of: Callable[[str], str | None] | None = None,
        log: Any = None,
    ) -> None:
        self.config = config
        self.reactor = reactor
        self.offset = 0
        self.store = store if store is not None else SqliteStore(config.state_path)
        self.registry = ServiceRegistry(profile_of or (lambda msisdn: None), unknown_service)
        self.router = Router(self.store, self.registry, config)
        self.smpp_factory = SmppServerFactory(config, self.router, reactor, self.now, log=log)
        self.smpp_port: IListeningPort | None = None
        self._ticker = task.LoopingCall(self._tick)
        self._ticker.clock = reactor

    def now(self) -> int:
        """The simulator clock: reactor time plus the tester's offset, whole seconds."""
        return int(self.reactor.seconds()) + self.offset

    def start(self) -> None:
        self.smpp_port = self.reactor.listenTCP(
            self.config.smpp_port, self.smpp_factory, interface=self.config.smpp_host
        )
        self._ticker.start(1.0, now=False)

    @property
    def smpp_address(self) -> tuple[str, int]:
        assert self.smpp_port is not None
        address = self.smpp_port.getHost()
        return address.host, address.port  # type: ignore[attr-defined]

    def _tick(self) -> None:
        self.router.tick(self.now())
        self.router.flush()

    @defer.inlineCallbacks
    def stop(self) -> Any:
        """Unbind every session, stop listening, flush and close the store."""
        if self._ticker.running:
            self._ticker.stop()
        for connection in list(self.smpp_factory.connections.values()):
            connection.shutdown()
        if self.smpp_port is not None:
            yield self.smpp_port.stopListening()
        self.router.flush()
        self.store.close()
