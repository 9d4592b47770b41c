"""Assembly: the clock, the store, the router, the services and the listeners of one gateway.

This is the one module that reads the wall clock (through the reactor it is given): the
simulator time is ``reactor.seconds()`` plus the tester's offset, and everything else
receives it.  Tests build a :class:`Gateway` on a ``task.Clock`` or on the real reactor
with port 0; ``ussdsim serve`` builds one on the real reactor.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Iterable
from typing import Any

import structlog
from twisted.internet import defer, task
from twisted.internet.interfaces import IListeningPort

from gateway import coding
from gateway.config import GatewayConfig
from gateway.http import ControlApi, ensure_api_token
from gateway.protocol import SmppServerFactory
from gateway.routing import MobileOriginated, Outgoing, Router, ServiceRegistry
from parsers import ParseError, parse_sms
from services import charging
from services.clock import SimClock, TimeSource
from services.dispatch import Context, Outcome, ServiceDirectory
from services.outbox import Reply, render, render_template
from services.profiles import Profiles, load_profiles
from services.store import SqliteStore
from services.world import World
from sessions.manager import DialogueManager, Turn

#: The service modules; each has ``install(world, directory)`` (services/dispatch.py).
SERVICE_MODULES: tuple[str, ...] = (
    "services.info",
    "services.time_share",
    "services.together",
    "services.business_quota",
    "services.shared_bundle",
    "services.share_resources",
)

#: Reply to an MO from a number no profile knows, for which no service is registered (GW-05).
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
        return [
            Outgoing(
                to=mo.source,
                sender=mo.destination,
                text=UNKNOWN_SERVICE_TEXT,
                channel="ussd",
                ussd_op=17,
            )
        ]
    return [Outgoing(to=mo.source, sender=mo.destination, text=UNKNOWN_SERVICE_TEXT)]


class Gateway:
    """One simulator: the world of subscribers, the router and the SMPP listener on a reactor."""

    def __init__(
        self,
        config: GatewayConfig,
        reactor: Any,
        *,
        store: SqliteStore | None = None,
        profiles: Profiles | None = None,
        load_demo: bool = True,
        log: Any = None,
        time_source: TimeSource | None = None,
    ) -> None:
        self.config = config
        self.reactor = reactor
        self.store = store if store is not None else SqliteStore(config.state_path)
        self.profiles = profiles if profiles is not None else load_profiles()
        # Simulated time runs on the reactor's clock unless told otherwise (the pytest
        # plugin's clock stands still); the SMPP sessions' timers always use the reactor's.
        self.clock = SimClock(time_source if time_source is not None else reactor)
        self.world = World(self.store, self.profiles, self.clock)
        self.registry = ServiceRegistry(self.profile_of, self._unknown_service)
        self.directory = ServiceDirectory()
        self.router = Router(self.store, self.registry, config, on_p2p=self._charge_p2p)
        self._install_services()
        if load_demo:  # after the services, so their on_demo_loaded hooks see it
            self.world.load_demo(now=self.clock.now())
        # USSD dialogues (SE-01 … SE-05): every USSD message goes to the manager; a broken
        # menu in a profile stops the start here (sessions.menus.MenuError).
        self.dialogues = DialogueManager(
            self.directory,
            self.profiles,
            fits=coding.fits_ussd,
            transaction=self.world.transaction,
            log=log,
        )
        self.registry.ussd_override = self._on_ussd
        self.smpp_factory = SmppServerFactory(config, self.router, reactor, self.now, log=log)
        self.smpp_port: IListeningPort | None = None
        # The control API exists before start() so that services can add their actions.
        self.api = ControlApi(self)
        for module, selfcare in self._installed:
            # Self-care routes («Личный кабинет», the apps) of the services that have them.
            if selfcare is not None and hasattr(module, "add_routes"):
                module.add_routes(self.api, selfcare)
        self.http_port: IListeningPort | None = None
        self._ticker = task.LoopingCall(self._tick)
        self._ticker.clock = reactor

    def now(self) -> int:
        """The simulator clock: reactor time plus the tester's offset, whole seconds."""
        return self.clock.now()

    # -- the world and the outbox --------------------------------------------------------

    def profile_of(self, msisdn: str) -> str | None:
        subscriber = self.world.find(msisdn)
        return None if subscriber is None else subscriber.profile

    def _install_services(self) -> None:
        """Let each service module register its commands and actions, then route its numbers."""
        self._installed: list[tuple[Any, Any]] = []
        for name in SERVICE_MODULES:
            module = importlib.import_module(name)
            self._installed.append((module, module.install(self.world, self.directory)))
        for profile in self.profiles:
            for number in self.directory.sms_numbers(profile):
                self.registry.register_sms(profile, number, self._on_service_sms)

    def _on_service_sms(self, mo: MobileOriginated) -> list[Outgoing]:
        """GW-05: an SMS to a service number is parsed and handed to its command's handler."""
        profile_name = self.profile_of(mo.source)
        if profile_name is None:
            return unknown_service(mo, None)
        profile = self.profiles.profile(profile_name)
        try:
            command = parse_sms(mo.text, mo.destination, profile_name)
        except ParseError as error:
            text = render_template(profile, f"parse_error.{error.reason}", {})
            return [Outgoing(to=mo.source, sender=mo.destination, text=text)]
        handler = self.directory.command_handler(profile_name, command)
        if handler is None:
            return self._unknown_service(mo, profile_name)
        context = Context(
            msisdn=mo.source,
            profile=profile_name,
            now=mo.now,
            channel="sms",
            service_number=mo.destination,
        )
        # The change, the MO's log entry and the replies commit together, in the router's
        # flush, before the submit_sm_resp is written: a crash loses all or nothing.
        self.store.begin()
        with self.world.transaction():
            outcome = handler(context, command)
        return self.outgoing(outcome, context)

    def _on_ussd(self, mo: MobileOriginated) -> list[Outgoing]:
        """GW-10: a USSD message goes to its subscriber's dialogue; screens go back as USSD."""
        profile = self.dialogues.profile_of(mo.source) or self.profile_of(mo.source)
        if profile is None:
            return unknown_service(mo, None)
        # As for an SMS to a service: a change a menu action makes joins the router's commit
        # (one per reactor turn, before any resp or deliver_sm is written) instead of
        # committing on its own inside the dialogue step.
        self.store.begin()
        turn = self.dialogues.handle(
            msisdn=mo.source,
            profile=profile,
            text=mo.text,
            op=mo.ussd_op,
            service_number=mo.destination,
            now=mo.now,
        )
        return self._turn_outgoing(turn)

    def _turn_outgoing(self, turn: Turn) -> list[Outgoing]:
        out = [
            Outgoing(
                to=screen.to,
                sender=screen.sender,
                text=screen.text,
                channel="ussd",
                ussd_op=17 if screen.end else 2,
            )
            for screen in turn.screens
        ]
        for reply in turn.replies:
            out.append(self.reply_outgoing(reply))
        return out

    def _expire_dialogues(self) -> None:
        """SE-02: dialogues past their inactivity timeout end (silently)."""
        due = self.dialogues.next_deadline()
        if due is not None and due <= self.now():
            self.dialogues.expire(self.now())

    def outgoing(self, outcome: Outcome, context: Context) -> list[Outgoing]:
        """Turn a service's outcome into texts: the answer (SMS or screen), then the SMS."""
        out: list[Outgoing] = []
        screen = outcome.screen
        if screen is not None:
            profile = self.profiles.profile(context.profile)
            text = render_template(profile, screen.template, screen.params)
            if context.channel == "sms":
                out.append(Outgoing(to=context.msisdn, sender=context.service_number, text=text))
            else:
                out.append(
                    Outgoing(
                        to=context.msisdn,
                        sender=context.service_number,
                        text=text,
                        channel="ussd",
                        ussd_op=17 if screen.end else 2,
                    )
                )
        for reply in outcome.replies:
            out.append(self.reply_outgoing(reply))
        return out

    def _unknown_service(self, mo: MobileOriginated, profile: str | None) -> list[Outgoing]:
        if profile is None:
            return unknown_service(mo, profile)
        text = render_template(self.profiles.profile(profile), "parse_error.unknown_service", {})
        end = 17 if mo.channel == "ussd" else None
        return [
            Outgoing(
                to=mo.source, sender=mo.destination, text=text, channel=mo.channel, ussd_op=end
            )
        ]

    def _charge_p2p(self, source: str, destination: str, now: int) -> None:
        """CU-02: a person-to-person SMS through the gateway is charged as one SMS."""
        result = charging.charge_p2p_sms(self.world, source, now)
        if result is not None:
            self.deliver_replies(result.replies)

    def reply_outgoing(self, reply: Reply) -> Outgoing:
        """A service's reply, rendered in its profile's language, as a text to send."""
        return Outgoing(
            to=reply.to,
            sender=reply.sender,
            text=render(reply, self.profiles),
            channel=reply.channel,
            ussd_op=17 if reply.channel == "ussd" else None,
        )

    def deliver_replies(self, replies: Iterable[Reply]) -> None:
        """Render services' replies in the profile's language and queue them (durably)."""
        now = self.now()
        for reply in replies:
            self.router.send(self.reply_outgoing(reply), now)

    def advance(self, seconds: int) -> list[Reply]:
        """Move the simulator clock (the tester's control): fire what fell due, in order."""
        with self.world.transaction():
            replies = self.world.advance(seconds)
            self.deliver_replies(replies)
        self._expire_dialogues()
        self.router.tick(self.now())
        self.router.flush()
        return replies

    # -- running -------------------------------------------------------------------------

    def start(self) -> None:
        self.smpp_port = self.reactor.listenTCP(
            self.config.smpp_port, self.smpp_factory, interface=self.config.smpp_host
        )
        self.api.token = ensure_api_token(self.world)
        self.http_port = self.reactor.listenTCP(
            self.config.http_port, self.api.site(self.reactor), interface=self.config.http_host
        )
        self._ticker.start(1.0, now=False)

    @property
    def smpp_address(self) -> tuple[str, int]:
        assert self.smpp_port is not None
        address = self.smpp_port.getHost()
        return address.host, address.port  # type: ignore[attr-defined]

    @property
    def http_address(self) -> tuple[str, int]:
        port: Any = self.http_port  # Any: zope interface methods confuse mypy without a plugin
        assert port is not None
        address = port.getHost()
        return address.host, address.port

    @property
    def api_token(self) -> str:
        """The control API's bearer token (made on the first start of this state file)."""
        assert self.api.token is not None, "the token is set up by start()"
        return self.api.token

    def _tick(self) -> None:
        due = self.world.timeline.next_due()
        if due is not None and due <= self.now():
            with self.world.transaction():
                self.deliver_replies(self.world.run_due(self.now()))
        self._expire_dialogues()
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
        http_port: Any = self.http_port
        if http_port is not None:
            yield http_port.stopListening()
        self.router.flush()
        self.store.close()
