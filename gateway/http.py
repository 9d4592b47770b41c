"""The control API of ussdsim: JSON over HTTP (twisted.web) under ``/api/v1/``, by which a
tester sets up subscribers, moves the clock, makes subscribers consume and reads the message
log, and through which each service offers its self-care actions (DESIGN.md, "Contracts").

**Endpoints** (``{msisdn}`` is the wire MSISDN, e.g. ``79160000001``)::

    GET    /api/v1/                                 the routes this API serves
    GET    /api/v1/subscribers?profile=&company=&tariff=&account=&status=
    POST   /api/v1/subscribers                      201 + the subscriber
    GET    /api/v1/subscribers/{msisdn}
    PATCH  /api/v1/subscribers/{msisdn}             World.patch: top_up, adjust_balance, status,
                                                    tariff, options, owner_id, region, …
    GET    /api/v1/subscribers/{msisdn}/packages?include_expired=true
    GET    /api/v1/subscribers/{msisdn}/ledger?since=&limit=
    GET    /api/v1/subscribers/{msisdn}/usage?limit=    the usage log
    POST   /api/v1/subscribers/{msisdn}/usage       SPEC CU-01: {"kind", "amount", "destination"?,
                                                    "abroad"?, "country"?}
    GET    /api/v1/clock                            {"now", "iso", "offset"}
    POST   /api/v1/clock/advance                    {"seconds": N} or {"duration": "1h30m"}
    GET    /api/v1/messages?msisdn=&limit=          every MO and MT of a number, oldest first
    GET    /api/v1/messages?after=ID&msisdn=&limit= the log past a cursor, by id: all numbers
                                                    unless msisdn; "next" is the cursor to
                                                    pass on, "last_id" the newest id now

**Token.** GET (and HEAD) needs nothing; every other method needs
``Authorization: Bearer <token>``.  The token is made once per state file
(:func:`ensure_api_token`, ``secrets.token_urlsafe``), kept in the store's settings, and
printed by ``ussdsim serve``; a missing or wrong one is ``401 unauthorized``, checked before
the path is looked at.

**Commit before answer.** A mutating call runs its handler inside one
``world.transaction()``, queues the replies the handler returns through the gateway
(``Gateway.deliver_replies``: rendered in the profile's words and stored for delivery) in the
same transaction, and then calls ``router.flush()``, which commits and writes the
deliver_sm PDUs; only then is the HTTP answer written.  If the handler raises, nothing of it
is kept.

**Self-care actions.** A service adds its own endpoints with
``api.add_action(method, pattern, handler)``, e.g.
``api.add_action("POST", "/api/v1/mts/shared-bundle/{msisdn}/invite", invite)``.  The
pattern's ``{name}`` segments match one path segment each and arrive in
``request.params``; literal segments win over placeholders.  The handler takes an
:class:`ApiRequest` (method, path, params, query, body — a JSON object, ``{}`` when empty —
and ``now``) and returns an :class:`ApiResponse` (``body`` as JSON data, ``status``, and the
``replies`` to deliver) or any value with those three attributes (:class:`ApiAnswer`).
It refuses by raising a ``services.model.DomainError`` subclass (its ``code`` and
``http_status`` go on the wire); :func:`check_fields`, :func:`text`, :func:`whole`,
:func:`flag` and :func:`optional_text` check a body the way the core endpoints do.
``atomic=False`` is for a handler that commits by itself (``clock/advance`` uses
``Gateway.advance``); the router is flushed after it even when it refuses.

**Errors** are ``{"error": code, "message": text, "field": name-or-null}``, never HTML or a
traceback.  The codes are stable:

    ====================  ======  =====================================================
    code                  status  meaning
    ====================  ======  =====================================================
    bad_json              400     the body is not UTF-8 JSON
    unauthorized          401     mutating call without the right bearer token
    not_found             404     no endpoint at this path
    unknown_msisdn        404     no subscriber with this MSISDN
    method_not_allowed    405     the path exists, not with this method (``Allow`` says)
    duplicate_msisdn      409     POST /subscribers with an MSISDN that exists
    insufficient_funds    409     a charge beyond balance plus credit limit
    invalid_transition    409     a change the subscriber's state forbids (terminated)
    payload_too_large     413     a body over 1 MiB
    missing_field         422     a required field or query parameter is absent
    unknown_field         422     a field or query parameter this endpoint does not take
    wrong_type            422     a field of the wrong JSON type (or a body not an object)
    invalid_value         422     a field of the right type with an unusable value
    unknown_profile       422     no such operator profile
    unknown_tariff        422     the profile has no such tariff
    unknown_option        422     the profile has no such option
    domain_error          400     any other refusal of the core without its own code
    internal              500     a bug: logged as ``http_internal_error`` with the traceback
    ====================  ======  =====================================================

Services may add codes of their own (their ``DomainError`` subclasses); :data:`API_ERRORS`
lists the ones above.
"""

from __future__ import annotations

import datetime as _dt
import hmac
import json
import re
import secrets
import traceback
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from typing import IO, Any, Final, Protocol

import attrs
import structlog
from twisted.web import resource, server

from gateway import coding
from gateway import pdu as P
from services import charging
from services.clock import parse_duration
from services.model import (
    ERRORS,
    DomainError,
    InvalidValue,
    SubscriberStatus,
    UnknownField,
    WrongType,
    to_json,
)
from services.outbox import Reply, render
from services.profiles import Profiles
from services.store import SqliteStore, StoredMessage
from services.world import World

API_PREFIX: Final = "/api/v1"
#: The settings key under which the token is kept with the state.
TOKEN_SETTING: Final = "api_token"
#: Bodies above this are refused unread (a control API takes small JSON objects).
MAX_BODY: Final = 1 << 20
#: Methods that need no token: they change nothing.
READ_METHODS: Final = frozenset({"GET", "HEAD"})
METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
MAX_MESSAGES: Final = 1000
MAX_LEDGER: Final = 10000

_SEGMENT: Final = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}|[^{}/]+")
_SUBSCRIBER_FIELDS: Final = (
    "msisdn",
    "profile",
    "tariff",
    "balance",
    "status",
    "owner_id",
    "region",
    "segment",
    "company",
    "account",
    "note",
    "options",
    "fee_paid",
    "packages",
)
_PACKAGE_FIELDS: Final = (
    "kind",
    "amount",
    "valid_for",
    "valid_until",
    "destination",
    "zone",
    "label",
)
_ESM_UDHI: Final = 0x40  # SMPP 3.4 §5.2.12: the short_message starts with a UDH
_MO_KINDS: Final = frozenset({"mo", "ussd_mo"})
_STATUSES: Final = frozenset(status.value for status in SubscriberStatus)
_USSD_KINDS: Final = frozenset({"ussd", "ussd_mo"})


# -- errors -------------------------------------------------------------------------------------


class BadJson(DomainError):
    code = "bad_json"
    http_status = 400


class Unauthorized(DomainError):
    code = "unauthorized"
    http_status = 401


class NotFound(DomainError):
    code = "not_found"
    http_status = 404


class MethodNotAllowed(DomainError):
    code = "method_not_allowed"
    http_status = 405

    def __init__(self, message: str, *, allowed: Iterable[str]) -> None:
        super().__init__(message)
        self.allowed = tuple(sorted(allowed))


class PayloadTooLarge(DomainError):
    code = "payload_too_large"
    http_status = 413


class MissingField(DomainError):
    code = "missing_field"
    http_status = 422


#: Every error code of the API with its status (the table of the module docstring).
API_ERRORS: Final[Mapping[str, int]] = {
    **{code: cls.http_status for code, cls in ERRORS.items()},
    **{
        cls.code: cls.http_status
        for cls in (
            BadJson,
            Unauthorized,
            NotFound,
            MethodNotAllowed,
            PayloadTooLarge,
            MissingField,
        )
    },
    "internal": 500,
}


def error_body(code: str, message: str, field: str | None = None) -> dict[str, object]:
    return {"error": code, "message": message, "field": field}


# -- checking request bodies (for the core endpoints and the services' actions) -----------------


def check_fields(
    body: Mapping[str, object],
    *,
    required: Iterable[str] = (),
    optional: Iterable[str] = (),
    where: str = "",
) -> None:
    """Refuse a field that is not ``required`` or ``optional``, or a ``required`` one absent."""
    wanted = tuple(required)
    known = (*wanted, *optional)
    for name in body:
        if name not in known:
            raise UnknownField(
                f"unknown field {where}{name!r}; this takes: {', '.join(known) or 'nothing'}",
                field=f"{where}{name}",
            )
    for name in wanted:
        if name not in body:
            raise MissingField(f"field {where}{name!r} is required", field=f"{where}{name}")


def text(value: object, field: str) -> str:
    """A non-empty JSON string."""
    if not isinstance(value, str):
        raise WrongType(f"{field} must be a string, got {_kind(value)}", field=field)
    if not value.strip():
        raise InvalidValue(f"{field} must not be empty", field=field)
    return value


def optional_text(value: object, field: str) -> str | None:
    """A non-empty JSON string or null."""
    return None if value is None else text(value, field)


def whole(value: object, field: str, *, minimum: int | None = None) -> int:
    """A JSON integer (not a boolean, not 1.0), at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise WrongType(f"{field} must be a whole number, got {_kind(value)}", field=field)
    if minimum is not None and value < minimum:
        raise InvalidValue(f"{field} must be at least {minimum}, got {value}", field=field)
    return value


def flag(value: object, field: str) -> bool:
    """A JSON boolean."""
    if not isinstance(value, bool):
        raise WrongType(f"{field} must be true or false, got {_kind(value)}", field=field)
    return value


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _query_whole(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise WrongType(f"{name} must be a whole number, got {raw!r}", field=name) from None
    if not low <= value <= high:
        raise InvalidValue(f"{name} must be from {low} to {high}, got {value}", field=name)
    return value


def _query_flag(query: Mapping[str, str], name: str) -> bool:
    raw = query.get(name, "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise WrongType(f"{name} must be true or false, got {raw!r}", field=name)
    return raw in ("true", "1")


# -- requests, responses and routes -------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ApiRequest:
    """One call as a handler sees it: the body is a JSON object (``{}`` when there is none)."""

    method: str
    path: str
    params: Mapping[str, str]
    query: Mapping[str, str]
    body: Mapping[str, object]
    now: int


def _as_replies(replies: Iterable[Reply]) -> tuple[Reply, ...]:
    return tuple(replies)


@attrs.frozen(kw_only=True)
class ApiResponse:
    """A handler's answer: JSON data, its status, and replies to deliver in the same commit."""

    body: object
    status: int = 200
    replies: tuple[Reply, ...] = attrs.field(default=(), converter=_as_replies)


class ApiAnswer(Protocol):
    """What a handler returns: :class:`ApiResponse`, or a service's own value of that shape
    (services do not import the gateway, so they cannot name ``ApiResponse``)."""

    @property
    def body(self) -> object: ...

    @property
    def status(self) -> int: ...

    @property
    def replies(self) -> Iterable[Reply]: ...


Handler = Callable[[ApiRequest], ApiAnswer]


@attrs.frozen
class _Route:
    method: str
    pattern: str
    segments: tuple[tuple[bool, str], ...]  # (is a placeholder, literal text or name)
    handler: Handler
    atomic: bool

    def match(self, parts: tuple[str, ...]) -> dict[str, str] | None:
        if len(parts) != len(self.segments):
            return None
        params: dict[str, str] = {}
        for part, (placeholder, name) in zip(parts, self.segments, strict=True):
            if placeholder:
                params[name] = part
            elif part != name:
                return None
        return params

    @property
    def rank(self) -> tuple[bool, ...]:
        # Literal segments first: ``/subscribers/search`` beats ``/subscribers/{msisdn}``.
        return tuple(placeholder for placeholder, _ in self.segments)


def _compile(pattern: str) -> tuple[tuple[bool, str], ...]:
    if not pattern.startswith(API_PREFIX + "/") and pattern != API_PREFIX:
        raise ValueError(f"an API path starts with {API_PREFIX}/, got {pattern!r}")
    segments = []
    for part in pattern.strip("/").split("/"):
        found = _SEGMENT.fullmatch(part)
        if found is None:
            raise ValueError(f"bad path segment {part!r} in {pattern!r}")
        segments.append((True, found.group(1)) if found.group(1) else (False, part))
    names = [name for placeholder, name in segments if placeholder]
    if len(names) != len(set(names)):
        raise ValueError(f"a placeholder repeats in {pattern!r}")
    return tuple(segments)


def _split_path(path: str) -> tuple[str, ...]:
    return tuple(urllib.parse.unquote(part) for part in path.strip("/").split("/") if part)


# -- what the API needs of the gateway ----------------------------------------------------------


class _Router(Protocol):
    def flush(self) -> None: ...


class ApiHost(Protocol):
    """The parts of ``gateway.app.Gateway`` the API uses."""

    @property
    def world(self) -> World: ...

    @property
    def profiles(self) -> Profiles: ...

    @property
    def store(self) -> SqliteStore: ...

    @property
    def router(self) -> _Router: ...

    def now(self) -> int: ...

    def advance(self, seconds: int) -> list[Reply]: ...

    def deliver_replies(self, replies: Iterable[Reply]) -> None: ...


class HttpRequest(Protocol):
    """What the API reads and sets on a twisted.web request (and on a test's stand-in)."""

    method: bytes
    uri: bytes
    content: IO[bytes] | None

    def getHeader(self, key: bytes) -> bytes | None: ...

    def setResponseCode(self, code: int) -> None: ...

    def setHeader(self, name: bytes, value: bytes) -> None: ...


def ensure_api_token(world: World) -> str:
    """The API token of this state file, made (and committed) on first use."""
    token = world.get_setting(TOKEN_SETTING)
    if token is None:
        token = secrets.token_urlsafe(24)
        world.set_setting(TOKEN_SETTING, token)
    return token


def clock_json(now: int, offset: int) -> dict[str, object]:
    iso = _dt.datetime.fromtimestamp(now, _dt.UTC).isoformat().replace("+00:00", "Z")
    return {"now": now, "iso": iso, "offset": offset}


# -- the API ------------------------------------------------------------------------------------


class ControlApi:
    """The routes, the token check and the commit-then-answer rule; ``site()`` serves it."""

    def __init__(self, host: ApiHost, *, token: str | None = None, log: Any = None) -> None:
        self.host = host
        #: None refuses every mutating call until the gateway sets it (``Gateway.start``).
        self.token = token
        self.log = log if log is not None else structlog.get_logger("ussdsim.http")
        self._routes: list[_Route] = []
        self.resource = _ApiResource(self)
        for method, pattern, handler, atomic in (
            ("GET", "/api/v1", self._index, True),
            ("GET", "/api/v1/subscribers", self._list_subscribers, True),
            ("POST", "/api/v1/subscribers", self._create_subscriber, True),
            ("GET", "/api/v1/subscribers/{msisdn}", self._get_subscriber, True),
            ("PATCH", "/api/v1/subscribers/{msisdn}", self._patch_subscriber, True),
            ("GET", "/api/v1/subscribers/{msisdn}/packages", self._packages, True),
            ("GET", "/api/v1/subscribers/{msisdn}/ledger", self._ledger, True),
            ("GET", "/api/v1/subscribers/{msisdn}/usage", self._usage_log, True),
            ("POST", "/api/v1/subscribers/{msisdn}/usage", self._record_usage, True),
            ("GET", "/api/v1/clock", self._clock, True),
            ("POST", "/api/v1/clock/advance", self._advance, False),
            ("GET", "/api/v1/messages", self._messages, True),
        ):
            self.add_action(method, pattern, handler, atomic=atomic)

    # -- the registry ---------------------------------------------------------------------------

    def add_action(
        self, method: str, pattern: str, handler: Handler, *, atomic: bool = True
    ) -> None:
        """Serve ``method pattern`` with ``handler`` (see the module docstring)."""
        verb = method.upper()
        if verb not in METHODS:
            raise ValueError(f"method must be one of {', '.join(sorted(METHODS))}, got {method!r}")
        segments = _compile(pattern)
        for route in self._routes:
            if route.method == verb and route.segments == segments:
                raise ValueError(f"{verb} {pattern} is already served")
        self._routes.append(_Route(verb, pattern, segments, handler, atomic))

    @property
    def routes(self) -> tuple[tuple[str, str], ...]:
        """(method, pattern) of every route, in registration order."""
        return tuple((route.method, route.pattern) for route in self._routes)

    def site(self, reactor: Any = None) -> server.Site:
        """The twisted.web site, timed by ``reactor`` (default: Twisted's global reactor)."""
        # A gateway on a private reactor (the pytest plugin's) must not have its HTTP
        # timeouts scheduled on the global one, which may never run.
        site = server.Site(self.resource, reactor=reactor)  # type: ignore[no-untyped-call]
        site.noisy = False
        return site

    # -- one request ------------------------------------------------------------------------------

    def handle(self, request: HttpRequest) -> bytes:
        """Answer one request: always JSON, always a status; never raises."""
        method = bytes(request.method).decode("latin-1").upper()
        path = "?"
        headers: dict[bytes, bytes] = {}
        try:
            split = urllib.parse.urlsplit(bytes(request.uri).decode("latin-1"))
            path = split.path
            status, payload = self._dispatch(request, method, path, split.query)
            data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        except DomainError as exc:
            status = exc.http_status
            refusal = error_body(exc.code, exc.message, exc.field)
            data = json.dumps(refusal, ensure_ascii=False).encode("utf-8")
            if isinstance(exc, MethodNotAllowed):
                headers[b"allow"] = ", ".join(exc.allowed).encode("ascii")
            elif isinstance(exc, Unauthorized):
                headers[b"www-authenticate"] = b'Bearer realm="ussdsim"'
        except Exception as exc:
            status = 500
            data = json.dumps(
                error_body("internal", "internal error; the gateway's log has the details")
            ).encode("utf-8")
            self.log.error(
                "http_internal_error",
                method=method,
                path=path,
                error=repr(exc),
                traceback=traceback.format_exc(),
            )
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        for name, value in headers.items():
            request.setHeader(name, value)
        self.log.info("http_request", method=method, path=path, status=status)
        return data + b"\n"

    def _dispatch(
        self, request: HttpRequest, method: str, path: str, query_text: str
    ) -> tuple[int, object]:
        if method not in READ_METHODS:
            self._authorize(request.getHeader(b"authorization"))
        route, params = self._find(method, _split_path(path))
        query = _parse_query(query_text)
        body: Mapping[str, object] = {}
        if route.method not in READ_METHODS:
            body = _parse_body(request.content)
        call = ApiRequest(
            method=route.method,
            path=path,
            params=params,
            query=query,
            body=body,
            now=self.host.now(),
        )
        if route.method in READ_METHODS:
            answer = route.handler(call)
        elif route.atomic:
            with self.host.world.transaction():
                answer = route.handler(call)
                replies = tuple(answer.replies)
                if replies:
                    self.host.deliver_replies(replies)
            # Commit, then write the queued deliver_sm: the HTTP answer goes after both.
            self.host.router.flush()
        else:
            try:
                answer = route.handler(call)
                replies = tuple(answer.replies)
                if replies:
                    with self.host.world.transaction():
                        self.host.deliver_replies(replies)
            finally:
                # Even when it refuses, what the handler committed by itself goes out now.
                self.host.router.flush()
        return answer.status, answer.body

    def _authorize(self, header: bytes | None) -> None:
        if self.token is None:
            raise Unauthorized("the API token is not set up yet (the gateway has not started)")
        if header is None:
            raise Unauthorized("this call needs 'Authorization: Bearer <token>'")
        scheme, _, credentials = header.strip().partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(
            credentials.strip(), self.token.encode("ascii")
        ):
            raise Unauthorized("wrong API token (ussdsim serve prints the right one)")

    def _find(self, method: str, parts: tuple[str, ...]) -> tuple[_Route, dict[str, str]]:
        wanted = "GET" if method == "HEAD" else method
        allowed: set[str] = set()
        best: tuple[_Route, dict[str, str]] | None = None
        for route in self._routes:
            params = route.match(parts)
            if params is None:
                continue
            if route.method != wanted:
                allowed.add(route.method)
                continue
            if best is None or route.rank < best[0].rank:
                best = (route, params)
        if best is not None:
            return best
        shown = "/" + "/".join(parts)
        if allowed:
            if "GET" in allowed:
                allowed.add("HEAD")
            raise MethodNotAllowed(
                f"{method} is not allowed on {shown}; allowed: {', '.join(sorted(allowed))}",
                allowed=allowed,
            )
        raise NotFound(f"no endpoint at {shown} (GET {API_PREFIX}/ lists them)")

    # -- the core's endpoints ---------------------------------------------------------------------

    def _index(self, request: ApiRequest) -> ApiResponse:
        _check_query(request.query)
        routes = [{"method": method, "path": pattern} for method, pattern in self.routes]
        return ApiResponse(body={"routes": routes})

    def _subscriber_json(self, msisdn: str) -> object:
        return to_json(self.host.world.get(msisdn))

    def _list_subscribers(self, request: ApiRequest) -> ApiResponse:
        _check_query(request.query, "profile", "company", "tariff", "account", "status")
        # ``?profile=&company=acme``: an empty filter is no filter (forms and scripts send them).
        query = {name: value for name, value in request.query.items() if value}
        if "profile" in query:
            self.host.profiles.profile(query["profile"])  # UnknownProfile for a typo
        status = query.get("status")
        if status is not None and status not in _STATUSES:
            raise InvalidValue(
                f"status must be one of {', '.join(SubscriberStatus)}, got {status!r}",
                field="status",
            )
        found = self.host.world.subscribers(
            profile=query.get("profile"),
            company=query.get("company"),
            tariff=query.get("tariff"),
            account=query.get("account"),
            status=status,
        )
        return ApiResponse(body={"subscribers": [to_json(s) for s in found]})

    def _create_subscriber(self, request: ApiRequest) -> ApiResponse:
        body = request.body
        check_fields(body, required=_SUBSCRIBER_FIELDS[:3], optional=_SUBSCRIBER_FIELDS[3:])
        world = self.host.world
        options = body.get("options", [])
        if not isinstance(options, Mapping | list):
            raise WrongType("options must map codes to parameters, or list codes", field="options")
        subscriber = world.create_subscriber(
            msisdn=text(body["msisdn"], "msisdn"),
            profile=text(body["profile"], "profile"),
            tariff=text(body["tariff"], "tariff"),
            now=request.now,
            balance=whole(body.get("balance", 0), "balance"),
            status=text(body.get("status", "active"), "status"),
            owner_id=optional_text(body.get("owner_id"), "owner_id"),
            region=optional_text(body.get("region"), "region"),
            segment=text(body.get("segment", "private"), "segment"),
            company=optional_text(body.get("company"), "company"),
            account=optional_text(body.get("account"), "account"),
            note=_note(body.get("note", "")),
            options=options,  # checked item by item by the world
            fee_paid=flag(body.get("fee_paid", True), "fee_paid"),
        )
        packages = body.get("packages", [])
        if not isinstance(packages, list):
            raise WrongType("packages must be a list of objects", field="packages")
        for index, item in enumerate(packages):
            self._grant(subscriber.msisdn, item, f"packages[{index}].", request.now)
        return ApiResponse(body=self._subscriber_json(subscriber.msisdn), status=201)

    def _grant(self, msisdn: str, item: object, where: str, now: int) -> None:
        if not isinstance(item, Mapping):
            raise WrongType(f"{where[:-1]} must be an object", field=where[:-1])
        check_fields(item, required=("kind", "amount"), optional=_PACKAGE_FIELDS[2:], where=where)
        if "valid_for" in item and "valid_until" in item:
            raise InvalidValue(
                f"give {where}valid_for or {where}valid_until, not both", field=f"{where}valid_for"
            )
        valid_until: int | None = None
        if item.get("valid_until") is not None:
            valid_until = whole(item["valid_until"], f"{where}valid_until")
        elif item.get("valid_for") is not None:
            valid_until = now + _duration(item["valid_for"], f"{where}valid_for")
        self.host.world.grant_package(
            msisdn,
            kind=text(item["kind"], f"{where}kind"),
            amount=whole(item["amount"], f"{where}amount"),
            now=now,
            valid_until=valid_until,
            destination=text(item.get("destination", "any"), f"{where}destination"),
            zone=text(item.get("zone", "home"), f"{where}zone"),
            label=_note(item.get("label", ""), f"{where}label"),
        )

    def _get_subscriber(self, request: ApiRequest) -> ApiResponse:
        _check_query(request.query)
        return ApiResponse(body=self._subscriber_json(request.params["msisdn"]))

    def _patch_subscriber(self, request: ApiRequest) -> ApiResponse:
        msisdn = request.params["msisdn"]
        replies = self.host.world.patch(msisdn, request.body, now=request.now)
        return ApiResponse(body=self._subscriber_json(msisdn), replies=replies)

    def _packages(self, request: ApiRequest) -> ApiResponse:
        _check_query(request.query, "include_expired")
        msisdn = self.host.world.get(request.params["msisdn"]).msisdn
        every = _query_flag(request.query, "include_expired")
        found = self.host.world.packages(msisdn, include_expired=every)
        return ApiResponse(body={"msisdn": msisdn, "packages": [to_json(p) for p in found]})

    def _ledger(self, request: ApiRequest) -> ApiResponse:
        query = request.query
        _check_query(query, "since", "limit")
        subscriber = self.host.world.get(request.params["msisdn"])
        since = _query_whole(query, "since", 0, 0, 2**62) if "since" in query else None
        limit = _query_whole(query, "limit", MAX_LEDGER, 1, MAX_LEDGER)
        entries = self.host.world.ledger(subscriber.msisdn, since=since, limit=limit)
        return ApiResponse(
            body={
                "msisdn": subscriber.msisdn,
                "balance": subscriber.balance,
                "entries": [to_json(e) for e in entries],
            }
        )

    def _usage_log(self, request: ApiRequest) -> ApiResponse:
        _check_query(request.query, "limit")
        msisdn = self.host.world.get(request.params["msisdn"]).msisdn
        limit = _query_whole(request.query, "limit", 100, 1, MAX_MESSAGES)
        records = self.host.world.usage_log(msisdn, limit=limit)
        return ApiResponse(body={"msisdn": msisdn, "usage": [to_json(r) for r in records]})

    def _record_usage(self, request: ApiRequest) -> ApiResponse:
        """SPEC CU-01: charge one use; answer who paid, what was billed, what was sent."""
        body = request.body
        check_fields(
            body, required=("kind", "amount"), optional=("destination", "abroad", "country")
        )
        world = self.host.world
        msisdn = world.get(request.params["msisdn"]).msisdn
        result = charging.record_usage(
            world,
            msisdn,
            text(body["kind"], "kind"),
            whole(body["amount"], "amount"),
            destination=text(body.get("destination", "any"), "destination"),
            abroad=flag(body.get("abroad", False), "abroad"),
            country=optional_text(body.get("country"), "country"),
            now=request.now,
        )
        packages = {p.id: p for p in world.packages(msisdn, include_expired=True)}
        paid_by = []
        for source, amount in result.paid_by:
            entry: dict[str, object] = {"source": source, "amount": amount}
            if source.startswith("package:") and source[8:].isdigit():
                package = packages.get(int(source[8:]))
                if package is not None:
                    entry.update(label=package.label, remaining=package.remaining)
            paid_by.append(entry)
        notifications = [
            {
                "to": reply.to,
                "from": reply.sender,
                "channel": reply.channel,
                "template": reply.template,
                "text": render(reply, self.host.profiles),
            }
            for reply in result.replies
        ]
        return ApiResponse(
            body={
                "msisdn": msisdn,
                "kind": str(result.kind),
                "amount": result.amount,
                "destination": result.destination,
                "abroad": result.abroad,
                "country": result.country,
                "paid_by": paid_by,
                "billed": result.billed,
                "refused": result.refused,
                "refusal": result.refusal,
                "balance": world.get(msisdn).balance,
                "notifications": notifications,
            },
            replies=result.replies,
        )

    def _clock(self, request: ApiRequest) -> ApiResponse:
        _check_query(request.query)
        return ApiResponse(body=clock_json(self.host.now(), self.host.world.clock.offset))

    def _advance(self, request: ApiRequest) -> ApiResponse:
        body = request.body
        check_fields(body, optional=("seconds", "duration"))
        if "seconds" not in body and "duration" not in body:
            raise MissingField('give "seconds" (whole seconds) or "duration" (like "1h30m")')
        if "seconds" in body and "duration" in body:
            raise InvalidValue('give "seconds" or "duration", not both', field="duration")
        if "seconds" in body:
            seconds = whole(body["seconds"], "seconds", minimum=0)
        else:
            seconds = _duration(body["duration"], "duration")
        replies = self.host.advance(seconds)  # commits and flushes by itself
        answer = clock_json(self.host.now(), self.host.world.clock.offset)
        answer.update(advanced=seconds, queued=len(replies))
        return ApiResponse(body=answer)

    def _messages(self, request: ApiRequest) -> ApiResponse:
        query = request.query
        _check_query(query, "msisdn", "limit", "after")
        if "after" in query:
            return self._messages_after(query)
        if not query.get("msisdn"):
            raise MissingField("query parameter 'msisdn' (or 'after') is required", field="msisdn")
        msisdn = query["msisdn"]
        limit = _query_whole(query, "limit", 100, 1, MAX_MESSAGES)
        found = self.host.store.messages_for(msisdn, limit=limit)
        return ApiResponse(
            body={"msisdn": msisdn, "messages": [message_json(m, msisdn) for m in reversed(found)]}
        )

    def _messages_after(self, query: Mapping[str, str]) -> ApiResponse:
        """The log past a cursor (``ussdsim watch`` polls it): ids above ``after``, in order."""
        if "msisdn" in query and not query["msisdn"]:
            raise MissingField("query parameter 'msisdn' is empty", field="msisdn")
        msisdn = query.get("msisdn")
        after = _query_whole(query, "after", 0, 0, 2**63 - 1)
        limit = _query_whole(query, "limit", 100, 1, MAX_MESSAGES)
        store = self.host.store
        found = store.messages_after(after, msisdn=msisdn, limit=limit)
        return ApiResponse(
            body={
                "msisdn": msisdn,
                "after": after,
                # Without an msisdn a person-to-person SMS is seen from its sender: "mo".
                "messages": [message_json(m, msisdn or m.source_addr) for m in found],
                "next": found[-1].id if found else after,
                "last_id": store.last_message_id(),
            }
        )


# -- helpers ------------------------------------------------------------------------------------


def _parse_body(content: IO[bytes] | None) -> dict[str, object]:
    if content is None:
        return {}
    content.seek(0)
    raw = content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise PayloadTooLarge(f"the body is over {MAX_BODY} bytes")
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadJson(f"the body is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise WrongType(f"the body must be a JSON object, got {_kind(value)}")
    return value


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _parse_query(query_text: str) -> dict[str, str]:
    query: dict[str, str] = {}
    for name, value in urllib.parse.parse_qsl(query_text, keep_blank_values=True):
        if name in query:
            raise InvalidValue(f"query parameter {name!r} is given twice", field=name)
        query[name] = value
    return query


def _check_query(query: Mapping[str, str], *allowed: str) -> None:
    for name in query:
        if name not in allowed:
            raise UnknownField(
                f"unknown query parameter {name!r}; this takes: {', '.join(allowed) or 'none'}",
                field=name,
            )


def _note(value: object, field: str = "note") -> str:
    if not isinstance(value, str):
        raise WrongType(f"{field} must be a string, got {_kind(value)}", field=field)
    return value


def _duration(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise WrongType(f"{field} must be a duration like '1h30m' or seconds", field=field)
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise InvalidValue(f"{field}: {exc}", field=field) from None


def _message_body(message: StoredMessage) -> tuple[bytes, list[int] | None]:
    """The user data of a stored message without its UDH, and [part, of] when concatenated."""
    body = message.short_message
    part: list[int] | None = None
    tlvs = P.decode_tlvs(message.tlvs) if message.tlvs else ()
    if not body:
        for tlv in tlvs:
            if tlv.tag == P.Tag.MESSAGE_PAYLOAD:
                body = tlv.value
    if message.esm_class & _ESM_UDHI:
        concat, body = coding.parse_udh(body)
        if concat is not None:
            part = [concat.sequence, concat.total]
    else:
        sar = {tlv.tag: tlv.value for tlv in tlvs}
        total, sequence = sar.get(P.Tag.SAR_TOTAL_SEGMENTS), sar.get(P.Tag.SAR_SEGMENT_SEQNUM)
        if total and sequence:
            part = [sequence[0], total[0]]
    return body, part


def message_json(message: StoredMessage, msisdn: str) -> dict[str, object]:
    """One entry of the message log, as seen from ``msisdn``.  ``ussd_op`` is the
    ``ussd_service_op`` a USSD message went out with (2 menu, 17 final text, as the receiving
    account's dialect wrote it); None for SMS and for a USSD MO, whose op is not kept."""
    try:
        body, part = _message_body(message)
        text_: str | None = coding.decode_text(body, message.data_coding)
    except (coding.CodingError, P.PduError):
        # Bytes an ESME sent as they came (binary data, a broken UDH): shown as hex only.
        body, part, text_ = message.short_message, None, None
    if message.kind in _MO_KINDS:
        direction = "mo"
    elif message.kind == "p2p" and message.source_addr == msisdn:
        direction = "mo"
    else:
        direction = "mt"
    try:
        status = P.MessageState(message.state).name
    except ValueError:
        status = str(message.state)
    ussd_op = None
    if message.kind in _USSD_KINDS and message.tlvs:
        try:
            ops = [t.value for t in P.decode_tlvs(message.tlvs) if t.tag == P.Tag.USSD_SERVICE_OP]
        except P.PduError:
            ops = []
        ussd_op = ops[0][0] if ops and ops[0] else None
    return {
        "id": message.id,
        "at": message.submitted_at,
        "direction": direction,
        "channel": "ussd" if message.kind in _USSD_KINDS else "sms",
        "ussd_op": ussd_op,
        "kind": message.kind,
        "source": message.source_addr,
        "destination": message.destination_addr,
        "text": text_,
        "data_coding": message.data_coding,
        "hex": None if text_ is not None else body.hex(),
        "part": part,
        "status": status,
        "done_at": message.done_at,
        "error_code": message.error_code,
    }


class _ApiResource(resource.Resource):
    """The twisted.web side: every path under the site goes to :meth:`ControlApi.handle`."""

    isLeaf = True

    def __init__(self, api: ControlApi) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._api = api

    def render(self, request: Any) -> bytes:
        return self._api.handle(request)


__all__ = [
    "API_ERRORS",
    "ApiAnswer",
    "ApiHost",
    "ApiRequest",
    "ApiResponse",
    "BadJson",
    "ControlApi",
    "Handler",
    "MethodNotAllowed",
    "MissingField",
    "NotFound",
    "PayloadTooLarge",
    "Unauthorized",
    "check_fields",
    "clock_json",
    "ensure_api_token",
    "error_body",
    "flag",
    "message_json",
    "optional_text",
    "text",
    "whole",
]
