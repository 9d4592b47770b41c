"""How services plug into the network: command handlers, menu actions and their results.

A service never sees SMPP.  It registers, per profile, a handler for each parsed command
(``parsers.commands``) it owns — the same handler whether the command came as an SMS to
a short number or as a USSD string — and handlers for the named actions its USSD menus
end in.  A handler gets a :class:`Context` (who asks, when, through which channel) and
returns an :class:`Outcome`: the answer the subscriber sees (:class:`Screen`: an SMS from
the short number when it asked by SMS, the final USSD screen when it dialled — SPEC
TS-07), and any further SMS to anybody (:class:`~services.outbox.Reply`: confirmations,
invitations, notifications).

The gateway (``gateway/app.py``) owns one :class:`ServiceDirectory`, lets each service
module ``install(world, directory)`` itself, and routes: an SMS to a short number of the
profile is parsed with ``parse_sms`` and its command's handler called; a USSD string is
handed to the dialogue manager (``sessions``), which parses it with ``parse_ussd``, runs
menus, and calls command handlers and menu actions through the same directory.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol

import attrs

from services.model import MissingField, UnknownField
from services.outbox import Params, Reply, as_params

Channel = Literal["sms", "ussd"]


@attrs.frozen(kw_only=True)
class Context:
    """Who asks and how: the subscriber's MSISDN (wire form), its profile, the time."""

    msisdn: str
    profile: str
    now: int
    channel: Channel
    #: the short number or USSD code the request came to (the sender of SMS answers)
    service_number: str = ""


@attrs.frozen(kw_only=True)
class Screen:
    """What the subscriber is shown: a template of the profile and its parameters.

    ``end`` closes a USSD dialogue (PSSR response); ``end=False`` keeps it open with this
    text as a prompt whose answer comes back to the same action as ``params['answer']``
    (used for confirmation steps and pick lists built from live data).
    """

    template: str
    params: Params = attrs.field(factory=Params, converter=as_params)
    end: bool = True


def _replies(replies: Iterable[Reply]) -> tuple[Reply, ...]:
    return tuple(replies)


@attrs.frozen(kw_only=True)
class Outcome:
    """The result of a handler: the answer to the asker and SMS to anybody."""

    screen: Screen | None = None
    replies: tuple[Reply, ...] = attrs.field(default=(), converter=_replies)


CommandHandler = Callable[[Context, Any], Outcome]
ActionHandler = Callable[[Context, Mapping[str, object]], Outcome]


@attrs.frozen(kw_only=True)
class ActionAnswer:
    """A self-care handler's answer: JSON data, the HTTP status, SMS to deliver in the commit.

    It has the fields of ``gateway.http.ApiResponse``, which the control API reads; services
    do not import the gateway.
    """

    body: object
    status: int = 200
    replies: tuple[Reply, ...] = ()


class ActionRegistry(Protocol):
    """Where a service's self-care routes go (``gateway.http.ControlApi`` is one)."""

    def add_action(
        self, method: str, pattern: str, handler: Callable[[Any], Any], *, atomic: bool = True
    ) -> None: ...


#: A plain self-care handler: ``(world, path params, JSON body, now) -> (JSON data, SMS)``.
SelfCareHandler = Callable[
    [Any, Mapping[str, str], Mapping[str, object], int], tuple[object, list[Reply]]
]


def mount_routes(
    api: ActionRegistry,
    world: object,
    routes: Iterable[tuple[str, str, SelfCareHandler]],
    *,
    created: Collection[SelfCareHandler] = (),
) -> None:
    """Mount ``(method, pattern, handler)`` routes on the control API; handlers in
    ``created`` answer 201, the others 200."""
    for method, pattern, handler in routes:
        api.add_action(
            method, pattern, _mounted(world, handler, 201 if handler in created else 200)
        )


def _mounted(world: object, handler: SelfCareHandler, status: int) -> Callable[[Any], ActionAnswer]:
    def call(request: Any) -> ActionAnswer:
        body, replies = handler(world, request.params, request.body, request.now)
        return ActionAnswer(body=body, status=status, replies=tuple(replies))

    return call


class UnknownAction(LookupError):
    """A menu names an action no installed service provides (a fixture error)."""


class ServiceDirectory:
    """The registry of command handlers and menu actions, per profile."""

    def __init__(self) -> None:
        self._commands: dict[tuple[str, type], CommandHandler] = {}
        self._actions: dict[tuple[str, str], ActionHandler] = {}
        self._numbers: dict[str, set[str]] = {}

    def register_command(self, profile: str, command_type: type, handler: CommandHandler) -> None:
        self._commands[profile, command_type] = handler

    def register_action(self, profile: str, name: str, handler: ActionHandler) -> None:
        self._actions[profile, name] = handler

    def register_sms_number(self, profile: str, number: str) -> None:
        """SMS to ``number`` from a subscriber of ``profile`` are commands (GW-05)."""
        self._numbers.setdefault(profile, set()).add(number)

    def sms_numbers(self, profile: str) -> frozenset[str]:
        return frozenset(self._numbers.get(profile, ()))

    def command_handler(self, profile: str, command: object) -> CommandHandler | None:
        return self._commands.get((profile, type(command)))

    def action(self, profile: str, name: str) -> ActionHandler:
        try:
            return self._actions[profile, name]
        except KeyError:
            raise UnknownAction(
                f"{profile}: no service provides the menu action {name!r}"
            ) from None

    def has_action(self, profile: str, name: str) -> bool:
        return (profile, name) in self._actions

    def actions(self, profile: str) -> frozenset[str]:
        return frozenset(name for p, name in self._actions if p == profile)


# -- what self-care handlers read of a call ------------------------------------------------


class ActionRequest(Protocol):
    """What a self-care handler reads of a call (``gateway.http.ApiRequest`` is one)."""

    @property
    def params(self) -> Mapping[str, str]: ...

    @property
    def query(self) -> Mapping[str, str]: ...

    @property
    def body(self) -> Mapping[str, object]: ...

    @property
    def now(self) -> int: ...


def check_fields(
    given: Mapping[str, object], *, required: Sequence[str] = (), optional: Sequence[str] = ()
) -> None:
    """Refuse unknown fields and absent required ones, as the control API does."""
    known = (*required, *optional)
    for name in given:
        if name not in known:
            raise UnknownField(
                f"unknown field {name!r}; this takes: {', '.join(known) or 'nothing'}",
                field=str(name),
            )
    for name in required:
        if name not in given:
            raise MissingField(f"field {name!r} is required", field=name)
