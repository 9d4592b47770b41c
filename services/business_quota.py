"""The Tele2 Russia business cabinet's quota management (SPEC BQ-01 … BQ-05, seed 001).

This module owns the cabinet of corporate customers: the managers' login by a one-time
code sent as an SMS to the manager's phone (returned as a ``Reply`` from the profile's
``cabinet`` short number, so the gateway delivers it to a bound ESME), the throttling of
code requests and wrong codes, the session tokens, the company's subscribers with their
quotas, and the numbered quota requests that the simulator processes on its clock
(accepted → in progress → done / rejected).  It works through ``CabinetService`` methods
that raise ``CabinetError`` subclasses with stable ``code``s and HTTP statuses;
``add_routes`` mounts them on the control API.  The terms (code length and lifetime, throttling,
processing times, companies and their managers) are the profile's
``services.business_quota`` facts (:func:`read_terms`); the state is this module's own
tables (:data:`MIGRATIONS`).

Choices where seed 001 leaves a detail open:

- A quota is a monthly spending limit in minor units (kopecks) per subscriber number,
  between ``quota_min`` and ``quota_max``; the cabinet records it, charging does not
  enforce it (the seed says nothing of what happens at the limit).
- Only the numbers listed as a company's ``managers`` may log in (``not_a_manager``); a
  new code may be asked for once per ``otp_resend_after`` (``too_many_requests``) and
  voids the previous one; a code lives ``otp_ttl`` and opens one session only
  (``code_used``); ``otp_max_attempts`` wrong tries void it (``code_void``);
  ``lockout_after_failures`` wrong codes in a row lock the number for ``lockout``
  (``locked``, with ``retry_after``); a success resets the count.
- A session token is sent back once; the store keeps only its SHA-256.  It ends after
  ``session_ttl`` without a request, or on logout.
- The manager sees and changes only numbers whose ``company`` is its company; any other
  number, existing or not, is ``subscriber_not_in_company`` (404: a cabinet does not tell
  one company about another's numbers).
- Change (seed: the «Изменить» button) creates a numbered request like add and delete,
  although the seed shows the request number only after add and delete.
- One open request per number at a time (``request_pending``); add needs no quota yet
  (``quota_exists``), change and delete need one (``no_quota``).  At processing the request
  is rejected when the number is no longer active or no longer the company's, or the quota
  changed under it; otherwise the quota is set.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar, Final, Literal

import attrs

from parsers import ParseError
from parsers.msisdn import api_number
from services.clock import parse_duration
from services.dispatch import (
    ActionAnswer,
    ActionRegistry,
    ActionRequest,
    ServiceDirectory,
    check_fields,
)
from services.model import DomainError, Subscriber, SubscriberStatus, WrongType, to_json
from services.outbox import Reply, require_template
from services.profiles import Profile, ProfileError
from services.world import World

SERVICE: Final = "business_quota"

OTP = require_template("business_quota.otp", "code", "minutes", profiles=("tele2ru",))

RequestAction = Literal["add", "change", "delete"]
RequestStatus = Literal["accepted", "in_progress", "done", "rejected"]
ACTIONS: Final = ("add", "change", "delete")
OPEN_STATUSES: Final = ("accepted", "in_progress")
FIRST_REQUEST: Final = 1_000_001


# -- refusals -------------------------------------------------------------------------------------


class CabinetError(DomainError):
    """A refusal of the cabinet; ``code`` is stable, ``retry_after`` set when throttled."""

    code: ClassVar[str] = "cabinet_error"
    http_status: ClassVar[int] = 400

    def __init__(
        self, message: str, *, field: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after


class InvalidPhone(CabinetError):
    code = "invalid_phone"
    http_status = 422


class NotAManager(CabinetError):
    """BQ-01: the number is not assigned to any company's cabinet."""

    code = "not_a_manager"
    http_status = 403


class TooManyRequests(CabinetError):
    """BQ-01: a new code was asked for too soon after the last one."""

    code = "too_many_requests"
    http_status = 429


class Locked(CabinetError):
    """BQ-01: too many wrong codes in a row; the number is locked for a while."""

    code = "locked"
    http_status = 429


class InvalidCodeFormat(CabinetError):
    """The code is not six digits (not counted as a wrong try)."""

    code = "invalid_code_format"
    http_status = 422


class NoCode(CabinetError):
    """No code was asked for this number (or a newer request replaced it)."""

    code = "no_code"
    http_status = 401


class WrongCode(CabinetError):
    """BQ-01: the code does not match; ``attempts_left`` tries remain for this code."""

    code = "wrong_code"
    http_status = 401

    def __init__(self, message: str, *, attempts_left: int) -> None:
        super().__init__(message, field="code")
        self.attempts_left = attempts_left


class CodeExpired(CabinetError):
    """BQ-01: the code's lifetime is over."""

    code = "code_expired"
    http_status = 401


class CodeUsed(CabinetError):
    """BQ-01: the code already opened a session (single use)."""

    code = "code_used"
    http_status = 401


class CodeVoid(CabinetError):
    """BQ-01: too many wrong tries made the code void; ask for a new one."""

    code = "code_void"
    http_status = 401


class InvalidSession(CabinetError):
    """No session token, or one the cabinet does not know (or a logged-out one)."""

    code = "invalid_session"
    http_status = 401


class SessionExpired(CabinetError):
    code = "session_expired"
    http_status = 401


class SubscriberNotInCompany(CabinetError):
    """BQ-05: the number is not one of the manager's company (or does not exist)."""

    code = "subscriber_not_in_company"
    http_status = 404


class InvalidQuota(CabinetError):
    code = "invalid_quota"
    http_status = 422


class QuotaExists(CabinetError):
    code = "quota_exists"
    http_status = 409


class NoQuota(CabinetError):
    code = "no_quota"
    http_status = 409


class RequestPending(CabinetError):
    """An earlier request for the same number is not processed yet."""

    code = "request_pending"
    http_status = 409


class RequestNotFound(CabinetError):
    code = "request_not_found"
    http_status = 404


#: Every refusal by its code (the HTTP layer's table of error codes).
ERRORS: Final[dict[str, type[CabinetError]]] = {
    cls.code: cls
    for cls in (
        InvalidPhone,
        NotAManager,
        TooManyRequests,
        Locked,
        InvalidCodeFormat,
        NoCode,
        WrongCode,
        CodeExpired,
        CodeUsed,
        CodeVoid,
        InvalidSession,
        SessionExpired,
        SubscriberNotInCompany,
        InvalidQuota,
        QuotaExists,
        NoQuota,
        RequestPending,
        RequestNotFound,
    )
}


# -- the terms ------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Company:
    """A corporate customer: its code (``company`` of its subscribers), name and managers."""

    code: str
    name: str
    managers: frozenset[str]


@attrs.frozen(kw_only=True)
class CabinetTerms:
    """The cabinet's terms in one profile, read from ``services.business_quota``.

    Schema: ``sender`` (short-number role of the code SMS, default ``cabinet``),
    ``otp_length``, ``otp_ttl``, ``otp_resend_after``, ``otp_max_attempts``,
    ``lockout_after_failures``, ``lockout``, ``session_ttl``, ``request_start_after``,
    ``request_done_after`` (durations like ``5m``), ``quota_min``/``quota_max`` (minor
    units), ``companies`` (code → ``{name, managers: [msisdn…]}``).
    """

    profile: str
    sender: str
    otp_length: int
    otp_ttl: int
    otp_resend_after: int
    otp_max_attempts: int
    lockout_after_failures: int
    lockout: int
    session_ttl: int
    request_start_after: int
    request_done_after: int
    quota_min: int
    quota_max: int
    companies: Mapping[str, Company]

    def company_managed_by(self, msisdn: str) -> Company | None:
        for company in self.companies.values():
            if msisdn in company.managers:
                return company
        return None


_DURATIONS: Final = (
    "otp_ttl",
    "otp_resend_after",
    "lockout",
    "session_ttl",
    "request_start_after",
    "request_done_after",
)
_TERM_KEYS: Final = frozenset(
    {
        "sender",
        "otp_length",
        "otp_max_attempts",
        "lockout_after_failures",
        "quota_min",
        "quota_max",
        "companies",
        *_DURATIONS,
    }
)


def read_terms(profile: Profile) -> CabinetTerms | None:
    """The profile's cabinet terms, None when it has none, or ``ProfileError``."""
    if SERVICE not in profile.services:
        return None
    data = profile.services[SERVICE]

    def error(key: str, reason: str) -> ProfileError:
        return ProfileError(profile.source, None, f"services.{SERVICE}.{key}: {reason}")

    if not isinstance(data, Mapping):
        raise error("", "expected a mapping")
    for key in data:
        if key not in _TERM_KEYS:
            raise error(str(key), f"unknown field (fields: {', '.join(sorted(_TERM_KEYS))})")
    for key in _TERM_KEYS - {"sender"}:
        if key not in data:
            raise error(key, "required field missing")

    def whole(key: str, minimum: int) -> int:
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise error(key, f"expected a whole number of at least {minimum}, got {value!r}")
        return value

    durations = {}
    for key in _DURATIONS:
        try:
            durations[key] = parse_duration(data[key])
        except ValueError as exc:
            raise error(key, str(exc)) from None
        if durations[key] <= 0 and key not in ("otp_resend_after", "request_start_after"):
            raise error(key, "must be longer than zero")
    sender = data.get("sender", "cabinet")
    if sender not in profile.short_numbers:
        raise error("sender", f"no short number {sender!r} in short_numbers")
    companies: dict[str, Company] = {}
    managers_seen: set[str] = set()
    raw_companies = data["companies"]
    if not isinstance(raw_companies, Mapping) or not raw_companies:
        raise error("companies", "expected a mapping of company codes")
    for code, item in raw_companies.items():
        where = f"companies.{code}"
        if not isinstance(item, Mapping) or set(item) != {"name", "managers"}:
            raise error(where, "expected {name, managers}")
        managers = item["managers"]
        if isinstance(managers, str) or not isinstance(managers, Sequence) or not managers:
            raise error(f"{where}.managers", "expected a non-empty list of MSISDNs")
        for manager in managers:
            if not isinstance(manager, str) or not profile.valid_msisdn(manager):
                raise error(f"{where}.managers", f"{manager!r} is not a {profile.name} MSISDN")
            if manager in managers_seen:
                raise error(f"{where}.managers", f"{manager} manages two companies")
            managers_seen.add(manager)
        companies[str(code)] = Company(
            code=str(code), name=str(item["name"]), managers=frozenset(managers)
        )
    quota_min, quota_max = whole("quota_min", 1), whole("quota_max", 1)
    if quota_max < quota_min:
        raise error("quota_max", "must not be below quota_min")
    return CabinetTerms(
        profile=profile.name,
        sender=profile.short_numbers[sender],
        otp_length=whole("otp_length", 4),
        otp_max_attempts=whole("otp_max_attempts", 1),
        lockout_after_failures=whole("lockout_after_failures", 1),
        quota_min=quota_min,
        quota_max=quota_max,
        companies=companies,
        **durations,
    )


# -- the store ------------------------------------------------------------------------------------

#: This module's schema, one tuple of statements per version (never edit a shipped one).
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE bq_codes (
            phone       TEXT PRIMARY KEY,      -- the manager's MSISDN (one live code each)
            code_hash   TEXT NOT NULL,         -- sha256(salt || code)
            salt        TEXT NOT NULL,
            issued_at   INTEGER NOT NULL,
            expires_at  INTEGER NOT NULL,
            wrong_tries INTEGER NOT NULL DEFAULT 0,
            used_at     INTEGER,
            void_at     INTEGER
        ) WITHOUT ROWID""",
        """CREATE TABLE bq_throttle (
            phone        TEXT PRIMARY KEY,
            failures     INTEGER NOT NULL,     -- wrong codes in a row
            locked_until INTEGER
        ) WITHOUT ROWID""",
        """CREATE TABLE bq_sessions (
            token_hash TEXT PRIMARY KEY,       -- sha256 of the token; the token is not kept
            phone      TEXT NOT NULL,
            company    TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL
        ) WITHOUT ROWID""",
        """CREATE TABLE bq_quotas (
            msisdn     TEXT PRIMARY KEY,
            company    TEXT NOT NULL,
            amount     INTEGER NOT NULL,       -- a month's limit, minor units
            set_at     INTEGER NOT NULL,
            request    INTEGER NOT NULL        -- the request that set it
        ) WITHOUT ROWID""",
        """CREATE TABLE bq_requests (
            number     INTEGER PRIMARY KEY,
            profile    TEXT NOT NULL,
            company    TEXT NOT NULL,
            manager    TEXT NOT NULL,
            msisdn     TEXT NOT NULL,
            action     TEXT NOT NULL,          -- add | change | delete
            amount     INTEGER,                -- the quota asked for (add, change)
            previous   INTEGER,                -- the quota when asked (change, delete)
            status     TEXT NOT NULL,          -- accepted | in_progress | done | rejected
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            next_at    INTEGER,                -- when processing moves it on (BQ-04)
            reason     TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX bq_requests_open ON bq_requests (next_at) WHERE next_at IS NOT NULL",
        "CREATE INDEX bq_requests_company ON bq_requests (company, number)",
        """CREATE TABLE bq_request_events (
            number INTEGER NOT NULL REFERENCES bq_requests (number),
            status TEXT NOT NULL,
            at     INTEGER NOT NULL,
            reason TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX bq_request_events_number ON bq_request_events (number)",
    ),
)


# -- values the API shows -------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class LoginChallenge:
    """BQ-01: a code was sent; it is valid until ``expires_at``."""

    phone: str
    sent_from: str
    expires_at: int
    resend_after: int


@attrs.frozen(kw_only=True)
class Session:
    """An open cabinet session of a manager (BQ-01)."""

    token: str  # only given out when the session opens; '' afterwards
    phone: str
    company: str
    company_name: str
    expires_at: int


@attrs.frozen(kw_only=True)
class Quota:
    """A subscriber's quota: a month's spending limit in minor units (BQ-02)."""

    amount: int
    set_at: int
    request: int


@attrs.frozen(kw_only=True)
class RequestEvent:
    status: RequestStatus
    at: int
    reason: str


@attrs.frozen(kw_only=True)
class QuotaRequest:
    """A numbered quota request and its history (BQ-03, BQ-04)."""

    number: int
    msisdn: str
    action: RequestAction
    amount: int | None
    previous: int | None
    status: RequestStatus
    created_at: int
    updated_at: int
    reason: str
    manager: str
    events: tuple[RequestEvent, ...]


@attrs.frozen(kw_only=True)
class SubscriberEntry:
    """One line of the «Абоненты» tab (BQ-02)."""

    msisdn: str
    tariff: str
    status: str
    quota: Quota | None
    pending_request: int | None


@attrs.frozen(kw_only=True)
class SubscriberPage:
    """A subscriber's page with its «Управление квотой» block (BQ-02)."""

    msisdn: str
    tariff: str
    status: str
    company: str
    quota: Quota | None
    requests: tuple[QuotaRequest, ...]


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _random_code(length: int) -> str:
    return f"{secrets.randbelow(10**length):0{length}d}"


# -- the service ----------------------------------------------------------------------------------


class CabinetService:
    """The cabinet over a world: login, sessions, subscribers, quota requests, processing."""

    def __init__(
        self,
        world: World,
        terms: Mapping[str, CabinetTerms],
        *,
        make_code: Callable[[int], str] = _random_code,
        make_token: Callable[[], str] = lambda: secrets.token_urlsafe(24),
    ) -> None:
        self.world = world
        self.terms = dict(terms)
        self._make_code = make_code
        self._make_token = make_token
        self._db: sqlite3.Connection = world.store.connection

    # -- BQ-01: login -----------------------------------------------------------------------------

    def _manager(self, phone: str, profile: str | None) -> tuple[str, CabinetTerms, Company]:
        """The manager's wire MSISDN, its profile's terms and company, or a refusal."""
        if not isinstance(phone, str):
            raise InvalidPhone("phone must be a text like 79520000100", field="phone")
        candidates = [t for t in self.terms.values() if profile in (None, t.profile)]
        for terms in candidates:
            try:
                msisdn = api_number(phone, terms.profile)
            except ParseError as error:
                if len(candidates) == 1:
                    raise InvalidPhone(
                        f"{phone!r} is not a phone number ({error.reason}: {error.expected})",
                        field="phone",
                    ) from None
                continue
            company = terms.company_managed_by(msisdn)
            if company is not None:
                return msisdn, terms, company
            raise NotAManager(f"{msisdn} has no access to a business cabinet", field="phone")
        raise InvalidPhone(f"{phone!r} is not a phone number", field="phone")

    def _lock_state(self, phone: str, now: int) -> None:
        row = self._db.execute(
            "SELECT locked_until FROM bq_throttle WHERE phone = ?", (phone,)
        ).fetchone()
        if row is not None and row[0] is not None and row[0] > now:
            raise Locked(
                f"{phone} is locked after wrong codes; try again in {row[0] - now} s",
                field="phone",
                retry_after=row[0] - now,
            )

    def request_code(
        self, phone: str, *, now: int, profile: str | None = None
    ) -> tuple[LoginChallenge, list[Reply]]:
        """BQ-01: send a one-time code by SMS to a manager's phone."""
        with self.world.transaction():
            msisdn, terms, _company = self._manager(phone, profile)
            self._lock_state(msisdn, now)
            row = self._db.execute(
                "SELECT issued_at FROM bq_codes WHERE phone = ?", (msisdn,)
            ).fetchone()
            if row is not None and row[0] + terms.otp_resend_after > now:
                wait = row[0] + terms.otp_resend_after - now
                raise TooManyRequests(
                    f"a new code for {msisdn} can be sent in {wait} s",
                    field="phone",
                    retry_after=wait,
                )
            code = self._make_code(terms.otp_length)
            salt = secrets.token_hex(8)
            self._db.execute(
                "INSERT INTO bq_codes (phone, code_hash, salt, issued_at, expires_at)"
                " VALUES (?,?,?,?,?) ON CONFLICT (phone) DO UPDATE SET"
                " code_hash = excluded.code_hash, salt = excluded.salt,"
                " issued_at = excluded.issued_at, expires_at = excluded.expires_at,"
                " wrong_tries = 0, used_at = NULL, void_at = NULL",
                (msisdn, _hash(salt + code), salt, now, now + terms.otp_ttl),
            )
            minutes = max(1, terms.otp_ttl // 60)
            sms = Reply(
                to=msisdn,
                sender=terms.sender,
                template=OTP.key,
                params={"code": code, "minutes": minutes},
                profile=terms.profile,
            )
            challenge = LoginChallenge(
                phone=msisdn,
                sent_from=terms.sender,
                expires_at=now + terms.otp_ttl,
                resend_after=now + terms.otp_resend_after,
            )
            return challenge, [sms]

    def open_session(
        self, phone: str, code: str, *, now: int, profile: str | None = None
    ) -> Session:
        """BQ-01: the code opens a session; wrong, reused or expired codes are refused.

        A wrong code is counted in a transaction of its own before the refusal is raised, so
        call it outside any transaction that the refusal would roll back (the route is
        mounted with ``atomic=False``), or the throttling would be undone.
        """
        msisdn, terms, company = self._manager(phone, profile)
        if (
            not isinstance(code, str)
            or len(code) != terms.otp_length
            or not code.isascii()
            or not code.isdigit()
        ):
            raise InvalidCodeFormat(
                f"the code is {terms.otp_length} digits, got {code!r}", field="code"
            )
        self._lock_state(msisdn, now)
        row = self._db.execute(
            "SELECT code_hash, salt, expires_at, wrong_tries, used_at, void_at"
            " FROM bq_codes WHERE phone = ?",
            (msisdn,),
        ).fetchone()
        if row is None:
            raise NoCode(f"no code was sent to {msisdn}", field="code")
        code_hash, salt, expires_at, wrong_tries, used_at, void_at = row
        if used_at is not None:
            raise CodeUsed("this code has already been used; ask for a new one", field="code")
        if void_at is not None:
            raise CodeVoid("too many wrong tries voided this code; ask for a new one", field="code")
        if expires_at <= now:
            raise CodeExpired("the code has expired; ask for a new one", field="code")
        if not secrets.compare_digest(_hash(salt + code), code_hash):
            raise self._wrong_code(msisdn, terms, wrong_tries, now)
        token = self._make_token()
        with self.world.transaction():
            self._db.execute("UPDATE bq_codes SET used_at = ? WHERE phone = ?", (now, msisdn))
            self._db.execute("DELETE FROM bq_throttle WHERE phone = ?", (msisdn,))
            self._db.execute(
                "INSERT INTO bq_sessions (token_hash, phone, company, created_at, expires_at)"
                " VALUES (?,?,?,?,?)",
                (_hash(token), msisdn, company.code, now, now + terms.session_ttl),
            )
        return Session(
            token=token,
            phone=msisdn,
            company=company.code,
            company_name=company.name,
            expires_at=now + terms.session_ttl,
        )

    def _wrong_code(
        self, msisdn: str, terms: CabinetTerms, wrong_tries: int, now: int
    ) -> CabinetError:
        """Count a wrong code (this code's tries, the number's failures in a row)."""
        with self.world.transaction():
            tries = wrong_tries + 1
            void = tries >= terms.otp_max_attempts
            self._db.execute(
                "UPDATE bq_codes SET wrong_tries = ?, void_at = ? WHERE phone = ?",
                (tries, now if void else None, msisdn),
            )
            row = self._db.execute(
                "INSERT INTO bq_throttle (phone, failures) VALUES (?, 1)"
                " ON CONFLICT (phone) DO UPDATE SET failures = failures + 1"
                " RETURNING failures",
                (msisdn,),
            ).fetchone()
            if row[0] >= terms.lockout_after_failures:
                self._db.execute(
                    "UPDATE bq_throttle SET failures = 0, locked_until = ? WHERE phone = ?",
                    (now + terms.lockout, msisdn),
                )
                self._db.execute("UPDATE bq_codes SET void_at = ? WHERE phone = ?", (now, msisdn))
                return Locked(
                    f"{msisdn} is locked for {terms.lockout} s after"
                    f" {terms.lockout_after_failures} wrong codes",
                    field="code",
                    retry_after=terms.lockout,
                )
        left = max(0, terms.otp_max_attempts - tries)
        return WrongCode(
            f"the code does not match; {left} tries left for this code", attempts_left=left
        )

    def session(self, token: str | None, *, now: int) -> Session:
        """The session of ``token``, its idle time renewed; ``InvalidSession``/``SessionExpired``."""
        if not token or not isinstance(token, str):
            raise InvalidSession("a session token is required (log in first)", field="token")
        with self.world.transaction():
            row = self._db.execute(
                "SELECT phone, company, expires_at FROM bq_sessions WHERE token_hash = ?",
                (_hash(token),),
            ).fetchone()
            if row is None:
                raise InvalidSession("unknown session token", field="token")
            phone, company, expires_at = row
            if expires_at <= now:
                raise SessionExpired("the session has expired; log in again", field="token")
            terms = self._terms_for_manager(phone)
            self._db.execute(
                "UPDATE bq_sessions SET expires_at = ? WHERE token_hash = ?",
                (now + terms.session_ttl, _hash(token)),
            )
            return Session(
                token="",
                phone=phone,
                company=company,
                company_name=terms.companies[company].name,
                expires_at=now + terms.session_ttl,
            )

    def close_session(self, token: str | None, *, now: int) -> None:
        """Log out: the token stops working."""
        self.session(token, now=now)
        with self.world.transaction():
            self._db.execute("DELETE FROM bq_sessions WHERE token_hash = ?", (_hash(str(token)),))

    def _terms_for_manager(self, phone: str) -> CabinetTerms:
        for terms in self.terms.values():
            if terms.company_managed_by(phone) is not None:
                return terms
        raise InvalidSession(f"{phone} no longer manages a company", field="token")

    # -- BQ-02, BQ-05: the company's subscribers --------------------------------------------------

    def _quota(self, msisdn: str) -> Quota | None:
        row = self._db.execute(
            "SELECT amount, set_at, request FROM bq_quotas WHERE msisdn = ?", (msisdn,)
        ).fetchone()
        return None if row is None else Quota(amount=row[0], set_at=row[1], request=row[2])

    def _pending(self, msisdn: str) -> int | None:
        row = self._db.execute(
            "SELECT number FROM bq_requests WHERE msisdn = ? AND status IN (?, ?)"
            " ORDER BY number LIMIT 1",
            (msisdn, *OPEN_STATUSES),
        ).fetchone()
        return None if row is None else int(row[0])

    def subscribers(self, token: str | None, *, now: int) -> list[SubscriberEntry]:
        """BQ-02, BQ-05: the numbers of the manager's company, each with its quota."""
        session = self.session(token, now=now)
        terms = self._terms_for_manager(session.phone)
        return [
            SubscriberEntry(
                msisdn=subscriber.msisdn,
                tariff=self.world.tariff_of(subscriber).name,
                status=str(subscriber.status),
                quota=self._quota(subscriber.msisdn),
                pending_request=self._pending(subscriber.msisdn),
            )
            for subscriber in self.world.subscribers(profile=terms.profile, company=session.company)
        ]

    def _company_subscriber(self, session: Session, msisdn: str) -> Subscriber:
        """BQ-05: a number of the session's company, or ``SubscriberNotInCompany``."""
        terms = self._terms_for_manager(session.phone)
        try:
            number = api_number(msisdn, terms.profile) if isinstance(msisdn, str) else None
        except ParseError as error:
            raise InvalidPhone(
                f"{msisdn!r} is not a phone number ({error.reason})", field="msisdn"
            ) from None
        if number is None:
            raise InvalidPhone("msisdn must be a text", field="msisdn")
        subscriber = self.world.find(number)
        if (
            subscriber is None
            or subscriber.profile != terms.profile
            or subscriber.company != session.company
        ):
            raise SubscriberNotInCompany(
                f"{number} is not a number of your company", field="msisdn"
            )
        return subscriber

    def subscriber_page(self, token: str | None, msisdn: str, *, now: int) -> SubscriberPage:
        """BQ-02: one subscriber's page with its quota and its requests."""
        session = self.session(token, now=now)
        subscriber = self._company_subscriber(session, msisdn)
        return SubscriberPage(
            msisdn=subscriber.msisdn,
            tariff=self.world.tariff_of(subscriber).name,
            status=str(subscriber.status),
            company=session.company,
            quota=self._quota(subscriber.msisdn),
            requests=tuple(self._requests("msisdn = ?", (subscriber.msisdn,))),
        )

    # -- BQ-03: quota requests --------------------------------------------------------------------

    def request_quota(
        self,
        token: str | None,
        msisdn: str,
        action: str,
        *,
        now: int,
        amount: object = None,
    ) -> QuotaRequest:
        """BQ-03: add, change or delete a subscriber's quota: a numbered request, accepted."""
        if action not in ACTIONS:
            raise CabinetError(f"action must be one of {', '.join(ACTIONS)}", field="action")
        with self.world.transaction():
            session = self.session(token, now=now)
            subscriber = self._company_subscriber(session, msisdn)
            terms = self._terms_for_manager(session.phone)
            wanted: int | None = None
            if action != "delete":
                if isinstance(amount, bool) or not isinstance(amount, int):
                    raise InvalidQuota(
                        f"amount is a whole number of kopecks, got {amount!r}", field="amount"
                    )
                if not terms.quota_min <= amount <= terms.quota_max:
                    raise InvalidQuota(
                        f"amount must be from {terms.quota_min} to {terms.quota_max}",
                        field="amount",
                    )
                wanted = amount
            elif amount is not None:
                raise InvalidQuota("a delete request carries no amount", field="amount")
            pending = self._pending(subscriber.msisdn)
            if pending is not None:
                raise RequestPending(
                    f"request {pending} for {subscriber.msisdn} is not processed yet",
                    field="msisdn",
                )
            current = self._quota(subscriber.msisdn)
            if action == "add" and current is not None:
                raise QuotaExists(f"{subscriber.msisdn} already has a quota", field="msisdn")
            if action != "add" and current is None:
                raise NoQuota(f"{subscriber.msisdn} has no quota", field="msisdn")
            # Request numbers look like an operator's (1000001, …), not like 1, 2, 3.
            row = self._db.execute(
                "INSERT INTO bq_requests (number, profile, company, manager, msisdn, action,"
                " amount, previous, status, created_at, updated_at, next_at)"
                f" VALUES ((SELECT coalesce(max(number), {FIRST_REQUEST - 1}) + 1"
                " FROM bq_requests),?,?,?,?,?,?,?,?,?,?,?) RETURNING number",
                (
                    terms.profile,
                    session.company,
                    session.phone,
                    subscriber.msisdn,
                    action,
                    wanted,
                    None if current is None else current.amount,
                    "accepted",
                    now,
                    now,
                    now + terms.request_start_after,
                ),
            ).fetchone()
            number = int(row[0])
            self._event(number, "accepted", now, "")
            return self._request(number)

    def _event(self, number: int, status: str, at: int, reason: str) -> None:
        self._db.execute(
            "INSERT INTO bq_request_events (number, status, at, reason) VALUES (?,?,?,?)",
            (number, status, at, reason),
        )

    # -- BQ-04: history ---------------------------------------------------------------------------

    def _requests(self, where: str, args: Sequence[object]) -> list[QuotaRequest]:
        rows = self._db.execute(
            "SELECT number, msisdn, action, amount, previous, status, created_at, updated_at,"
            f" reason, manager FROM bq_requests WHERE {where}"
            " ORDER BY number DESC",
            tuple(args),
        ).fetchall()
        found = []
        for row in rows:
            events = tuple(
                RequestEvent(status=status, at=at, reason=reason)
                for status, at, reason in self._db.execute(
                    "SELECT status, at, reason FROM bq_request_events WHERE number = ?"
                    " ORDER BY rowid",
                    (row[0],),
                )
            )
            (number, msisdn, action, amount, previous, status, created, updated, reason,
             manager) = row  # fmt: skip
            found.append(
                QuotaRequest(
                    number=number,
                    msisdn=msisdn,
                    action=action,
                    amount=amount,
                    previous=previous,
                    status=status,
                    created_at=created,
                    updated_at=updated,
                    reason=reason,
                    manager=manager,
                    events=events,
                )
            )
        return found

    def _request(self, number: int) -> QuotaRequest:
        return self._requests("number = ?", (number,))[0]

    def history(
        self, token: str | None, *, now: int, msisdn: str | None = None
    ) -> list[QuotaRequest]:
        """BQ-04: every request of the manager's company, newest first (one number's)."""
        session = self.session(token, now=now)
        if msisdn is not None:
            subscriber = self._company_subscriber(session, msisdn)
            return self._requests(
                "company = ? AND msisdn = ?", (session.company, subscriber.msisdn)
            )
        return self._requests("company = ?", (session.company,))

    def request(self, token: str | None, number: object, *, now: int) -> QuotaRequest:
        """BQ-04: one request of the manager's company by its number."""
        session = self.session(token, now=now)
        if isinstance(number, str) and number.isdigit():
            number = int(number)
        if isinstance(number, bool) or not isinstance(number, int):
            raise RequestNotFound(f"no request {number!r}", field="number")
        found = self._requests("company = ? AND number = ?", (session.company, number))
        if not found:
            raise RequestNotFound(f"no request {number} of your company", field="number")
        return found[0]

    # -- BQ-04: processing on the clock -----------------------------------------------------------

    def next_processing(self) -> int | None:
        row = self._db.execute("SELECT min(next_at) FROM bq_requests").fetchone()
        return None if row[0] is None else int(row[0])

    def process_due(self, due: int) -> list[Reply]:
        """Move every request due by ``due`` one step: accepted → in progress → done/rejected."""
        rows = self._db.execute(
            "SELECT number, profile, company, msisdn, action, amount, previous, status, next_at"
            " FROM bq_requests WHERE next_at IS NOT NULL AND next_at <= ?"
            " ORDER BY next_at, number",
            (due,),
        ).fetchall()
        for number, profile, company, msisdn, action, amount, previous, status, at in rows:
            terms = self.terms[profile]
            if status == "accepted":
                self._db.execute(
                    "UPDATE bq_requests SET status = 'in_progress', updated_at = ?, next_at = ?"
                    " WHERE number = ?",
                    (at, at + terms.request_done_after, number),
                )
                self._event(number, "in_progress", at, "")
                continue
            reason = self._rejection(company, msisdn, action, previous)
            if not reason:
                self._apply(company, msisdn, action, amount, number, at)
            final = "rejected" if reason else "done"
            self._db.execute(
                "UPDATE bq_requests SET status = ?, updated_at = ?, next_at = NULL, reason = ?"
                " WHERE number = ?",
                (final, at, reason, number),
            )
            self._event(number, final, at, reason)
        return []

    def _rejection(self, company: str, msisdn: str, action: str, previous: int | None) -> str:
        """Why a request cannot be carried out now ('' when it can)."""
        subscriber = self.world.find(msisdn)
        if subscriber is None or subscriber.company != company:
            return "subscriber_left_company"
        if subscriber.status is not SubscriberStatus.ACTIVE:
            return "subscriber_not_active"
        current = self._quota(msisdn)
        if action == "add" and current is not None:
            return "quota_exists"
        if action != "add" and (current is None or current.amount != previous):
            return "quota_changed"
        return ""

    def _apply(
        self, company: str, msisdn: str, action: str, amount: int | None, number: int, at: int
    ) -> None:
        if action == "delete":
            self._db.execute("DELETE FROM bq_quotas WHERE msisdn = ?", (msisdn,))
            return
        self._db.execute(
            "INSERT INTO bq_quotas (msisdn, company, amount, set_at, request) VALUES (?,?,?,?,?)"
            " ON CONFLICT (msisdn) DO UPDATE SET company = excluded.company,"
            " amount = excluded.amount, set_at = excluded.set_at, request = excluded.request",
            (msisdn, company, amount, at, number),
        )

    def quota_of(self, msisdn: str) -> Quota | None:
        """A subscriber's quota as the cabinet holds it (for tests and the control API)."""
        return self._quota(msisdn)


# -- the cabinet's HTTP routes (mounted on the control API by the gateway) ---------------------


def add_routes(api: ActionRegistry, service: CabinetService) -> None:
    """Mount the cabinet of every profile with it under ``/api/v1/{profile}/business``.

    ``POST …/login`` ``{"phone"}`` sends the code by SMS (202); ``POST …/session``
    ``{"phone", "code"}`` opens a session (201, ``{"token", …}``); ``DELETE …/session``
    ``{"session"}`` logs out; ``GET …/subscribers?session=`` (BQ-02);
    ``GET …/subscribers/{msisdn}?session=`` (BQ-02); ``POST|PUT|DELETE
    …/subscribers/{msisdn}/quota`` ``{"session", "amount"}`` add / change / delete a quota
    (BQ-03: 202 with the numbered request); ``GET …/requests?session=&msisdn=`` and
    ``GET …/requests/{number}?session=`` (BQ-04).  The control API's ``ApiRequest`` carries
    no headers, so the session token travels as the ``session`` field or query parameter;
    mutating calls need the control API's bearer token as well.
    """
    for profile in service.terms:
        _mount(api, service, profile)


def _mount(api: ActionRegistry, service: CabinetService, profile: str) -> None:
    base = f"/api/v1/{profile}/business"

    def login(request: ActionRequest) -> ActionAnswer:
        check_fields(request.body, required=("phone",))
        challenge, replies = service.request_code(
            _string(request.body["phone"], "phone"), now=request.now, profile=profile
        )
        return ActionAnswer(body=to_json(challenge), status=202, replies=tuple(replies))

    def open_session(request: ActionRequest) -> ActionAnswer:
        check_fields(request.body, required=("phone", "code"))
        opened = service.open_session(
            _string(request.body["phone"], "phone"),
            _string(request.body["code"], "code"),
            now=request.now,
            profile=profile,
        )
        return ActionAnswer(body=to_json(opened), status=201)

    def close_session(request: ActionRequest) -> ActionAnswer:
        check_fields(request.body, required=("session",))
        service.close_session(_string(request.body["session"], "session"), now=request.now)
        return ActionAnswer(body={"closed": True})

    def subscribers(request: ActionRequest) -> ActionAnswer:
        check_fields(request.query, required=("session",))
        found = service.subscribers(request.query["session"], now=request.now)
        return ActionAnswer(body={"subscribers": to_json(found)})

    def page(request: ActionRequest) -> ActionAnswer:
        check_fields(request.query, required=("session",))
        found = service.subscriber_page(
            request.query["session"], request.params["msisdn"], now=request.now
        )
        return ActionAnswer(body=to_json(found))

    def quota(action: RequestAction) -> Callable[[ActionRequest], ActionAnswer]:
        def handler(request: ActionRequest) -> ActionAnswer:
            if action == "delete":
                check_fields(request.body, required=("session",))
            else:
                check_fields(request.body, required=("session", "amount"))
            made = service.request_quota(
                _string(request.body["session"], "session"),
                request.params["msisdn"],
                action,
                now=request.now,
                amount=request.body.get("amount"),
            )
            return ActionAnswer(body={"request": to_json(made)}, status=202)

        return handler

    def history(request: ActionRequest) -> ActionAnswer:
        check_fields(request.query, required=("session",), optional=("msisdn",))
        found = service.history(
            request.query["session"], now=request.now, msisdn=request.query.get("msisdn")
        )
        return ActionAnswer(body={"requests": to_json(found)})

    def one_request(request: ActionRequest) -> ActionAnswer:
        check_fields(request.query, required=("session",))
        found = service.request(request.query["session"], request.params["number"], now=request.now)
        return ActionAnswer(body={"request": to_json(found)})

    for method, path, handler, atomic in (
        ("POST", "/login", login, True),
        # Not atomic: a wrong code must stay counted although the call is refused (BQ-01);
        # open_session commits its own changes.
        ("POST", "/session", open_session, False),
        ("DELETE", "/session", close_session, True),
        ("GET", "/subscribers", subscribers, True),
        ("GET", "/subscribers/{msisdn}", page, True),
        ("POST", "/subscribers/{msisdn}/quota", quota("add"), True),
        ("PUT", "/subscribers/{msisdn}/quota", quota("change"), True),
        ("DELETE", "/subscribers/{msisdn}/quota", quota("delete"), True),
        ("GET", "/requests", history, True),
        ("GET", "/requests/{number}", one_request, True),
    ):
        api.add_action(method, base + path, handler, atomic=atomic)


def _string(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise WrongType(f"{field} must be a string", field=field)
    return value


def install(world: World, directory: ServiceDirectory) -> CabinetService:
    """Set the cabinet up on ``world`` for every profile with ``services.business_quota``."""
    terms = {
        name: found
        for name, profile in world.profiles.items()
        if (found := read_terms(profile)) is not None
    }
    world.migrate_service(SERVICE, MIGRATIONS)
    service = CabinetService(world, terms)
    world.timeline.register("business_quota_requests", service.next_processing, service.process_due)
    return service
