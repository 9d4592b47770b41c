"""The world of subscribers over the store: the repository every service and the control API use.

``World(store, profiles, clock)`` reads and changes subscribers, their options, packages,
balance (only through the ledger: a subscriber's balance is always the sum of its ledger
entries), top-ups, recurring charges and fee records, inside explicit transactions of the
store.  Each operation is atomic on its own (a savepoint when the caller already holds a
transaction) and callers group several in one ``with world.transaction():``; nothing is
committed behind their back, so the gateway can queue the replies of a change in the same
transaction and acknowledge the PDU only after the commit.

Services plug in here rather than being called by name: ``on_change`` hooks see every
``SubscriberChanged`` inside the transaction and return replies (MP-21, TV-11);
``add_usage_source`` lets a service pay usage before the subscriber's own packages
(``services.charging`` documents the protocol); ``add_fee_adjuster`` and ``on_fee`` let a
service change a fee before it is charged and react after (TV-05 … TV-08);
``set_recurring_handler`` gives a service its own recurring charge (MP-17);
``on_package_expired`` and ``on_demo_loaded`` complete the set.  The due work of the core
(billing days, package expiry) is registered on ``world.timeline`` at construction, and
services register theirs on the same timeline.

**The read cache.**  The World is the only writer of the core tables (subscribers and their
options, packages, top-ups), so it keeps what the hot paths read in memory: subscribers by
MSISDN (unknown ones too), each subscriber's live packages and its top-ups, each loaded from
SQLite on first use and then updated by the very methods that write the rows, in the same
call, after the statement succeeded.  Any rollback (a savepoint of ``transaction`` or the
store's, which calls ``forget`` through ``on_rollback`` when the store offers it) drops the
whole cache, and so do the hooks services add with ``on_forget`` for caches of their own: what
is read next comes from SQLite again, which is always the truth.  Each map is bounded
(``cache_limit`` MSISDNs; past it the map starts over).  Everything else (ledger, fees,
recurring charges, usage, queries over many subscribers) is read from SQLite as before.
"""

from __future__ import annotations

import json
import sqlite3
from bisect import insort
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Final, Protocol

import attrs

from services import charging
from services.clock import SimClock, Timeline, day_of_month
from services.model import (
    DuplicateMsisdn,
    FeeAdjustment,
    FeeRecord,
    FeeStatus,
    InsufficientFunds,
    InvalidTransition,
    InvalidValue,
    LedgerEntry,
    OptionState,
    Package,
    Period,
    RecurringCharge,
    Segment,
    Subscriber,
    SubscriberChanged,
    SubscriberStatus,
    TopUp,
    UnknownField,
    UnknownMsisdn,
    UsageKind,
    UsageRecord,
    WrongType,
)
from services.outbox import Params, Reply, require_template
from services.profiles import DemoSubscriber, OptionDef, PackageSpec, Profile, Profiles, Tariff


class SqlStore(Protocol):
    """What the World needs of a store: a SQLite-dialect connection and transactions.

    ``services.store.SqliteStore`` is one; another backend stands in by offering the same
    (or by providing a World of its own over the same public methods).
    """

    @property
    def connection(self) -> sqlite3.Connection: ...

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]: ...


ChangeHook = Callable[[SubscriberChanged], Iterable[Reply]]
ForgetHook = Callable[[], None]
ExpiryHook = Callable[[Package], Iterable[Reply]]
DemoHook = Callable[[Profile, DemoSubscriber, Subscriber, int], None]
RecurringHandler = Callable[[RecurringCharge, int], Sequence[Reply]]
FeeAdjuster = Callable[["charging.FeeContext"], FeeAdjustment | None]
FeeHook = Callable[["charging.FeeResult"], Iterable[Reply]]

#: Keys the control API's PATCH may carry, in the order they are applied: money first
#: (so a top-up pays the new tariff's fee), then the account's state, then what it buys.
PATCH_FIELDS: Final = (
    "top_up",
    "adjust_balance",
    "status",
    "owner_id",
    "region",
    "segment",
    "company",
    "account",
    "note",
    "tariff",
    "options",
)

_SUBSCRIBER_COLUMNS: Final = (
    "msisdn, profile, tariff, status, owner_id, region, segment, company, account, balance,"
    " created_at, tariff_since, note"
)
_FIND_SUBSCRIBER: Final = (
    "SELECT s.msisdn, s.profile, s.tariff, s.status, s.owner_id, s.region, s.segment,"
    " s.company, s.account, s.balance, s.created_at, s.tariff_since, s.note,"
    " o.code, o.activated_at, o.params"
    " FROM subscribers AS s LEFT JOIN subscriber_options AS o ON o.msisdn = s.msisdn"
    " WHERE s.msisdn = ? ORDER BY o.code"
)
_STATUSES: Final = {status.value: status for status in SubscriberStatus}
_SEGMENTS: Final = {segment.value: segment for segment in Segment}
_KINDS: Final = {kind.value: kind for kind in UsageKind}
_NO_PARAMS: Final = Params()
_PACKAGE_COLUMNS: Final = (
    "id, msisdn, kind, destination, zone, initial, remaining, valid_from, valid_until, source,"
    " label, expired_at"
)
_RECURRING_COLUMNS: Final = (
    "msisdn, code, owner, amount, period, anchor_day, next_at, part, period_start, period_end,"
    " created_at"
)
#: How many MSISDNs each map of the read cache holds before it starts over.
CACHE_LIMIT: Final = 200_000
_FEE_COLUMNS: Final = (
    "id, msisdn, code, period_start, period_end, part, amount_due, amount_charged, status, at,"
    " detail"
)

TOPUP_RECEIVED: Final = require_template("topup_received", "amount", "balance")
LOW_BALANCE: Final = require_template("low_balance", "balance")
TARIFF_CHANGED: Final = require_template("tariff_changed", "tariff")
OPTION_ON: Final = require_template("option_on", "option")
OPTION_OFF: Final = require_template("option_off", "option")


def _whole(value: object, field: str, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise WrongType(f"{field} must be a whole number, got {value!r}", field=field)
    if minimum is not None and value < minimum:
        raise InvalidValue(f"{field} must be at least {minimum}, got {value}", field=field)
    return value


def _text(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise WrongType(f"{field} must be a text, got {value!r}", field=field)
    if not value.strip():
        raise InvalidValue(f"{field} must not be empty", field=field)
    return value


def _optional_text(value: object, field: str) -> str | None:
    return None if value is None else _text(value, field)


def _package_order(package: Package) -> tuple[bool, int, int]:
    """SQL's ``ORDER BY valid_until IS NULL, valid_until, id``: earliest expiry first."""
    until = package.valid_until
    return (until is None, 0 if until is None else until, package.id)


class World:
    """Subscribers, packages, money and fees in the store; hooks for the services."""

    def __init__(
        self,
        store: SqlStore,
        profiles: Profiles,
        clock: SimClock,
        *,
        timeline: Timeline | None = None,
        cache_limit: int = CACHE_LIMIT,
    ) -> None:
        self.store = store
        self.profiles = profiles
        self.clock = clock
        self.timeline = Timeline() if timeline is None else timeline
        self._db = store.connection
        # The read cache (module docstring): MSISDN → subscriber (None: unknown), its live
        # packages in expiry order, its top-ups in time order.
        self.cache_limit = max(1, cache_limit)
        self._subscriber_cache: dict[str, Subscriber | None] = {}
        self._package_cache: dict[str, list[Package]] = {}
        #: package id → owner, for the packages the cache has held (a hint: always checked)
        self._package_owner: dict[int, str] = {}
        self._topup_cache: dict[str, list[TopUp]] = {}
        self._forget_hooks: list[ForgetHook] = []
        on_rollback = getattr(store, "on_rollback", None)
        if on_rollback is not None:
            on_rollback(self.forget)
        self._change_hooks: list[ChangeHook] = []
        self._expiry_hooks: list[ExpiryHook] = []
        self._demo_hooks: list[DemoHook] = []
        self._fee_adjusters: list[FeeAdjuster] = []
        self._fee_hooks: list[FeeHook] = []
        self._recurring_handlers: dict[str, RecurringHandler] = {}
        self._usage_sources: list[tuple[int, int, charging.UsageSource]] = []
        charging.install(self)
        saved = self.get_setting("clock_offset")
        if saved is not None and int(saved) > clock.offset:
            # The tester's offset survives a restart: simulated time never runs backward.
            clock.advance(int(saved) - clock.offset)

    # -- transactions ------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit: a transaction of the store, or a savepoint inside the caller's."""
        if not self._db.in_transaction:
            try:
                with self.store.transaction():
                    yield
            except BaseException:
                self.forget()  # rolled back, or the commit failed: SQLite is the truth
                raise
            return
        # One name for every level: SQLite nests same-named savepoints (ROLLBACK TO and
        # RELEASE act on the innermost), and a constant text stays in sqlite3's statement
        # cache, where per-call names would evict the real queries.
        self._db.execute("SAVEPOINT world")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK TO world")
            self._db.execute("RELEASE world")
            self.forget()
            raise
        self._db.execute("RELEASE world")

    def _one_write(self) -> AbstractContextManager[None]:
        """For an operation whose only write is its last statement (atomic by itself): inside
        the caller's transaction as it is, saving the savepoint's two statements; else a
        transaction of its own."""
        return nullcontext() if self._db.in_transaction else self.transaction()

    # -- the read cache ----------------------------------------------------------------------

    def forget(self) -> None:
        """Drop everything cached (the World's and the services' ``on_forget`` hooks).

        Called on every rollback; a tester who changed the SQLite file behind the World's
        back calls it too.
        """
        self._subscriber_cache.clear()
        self._package_cache.clear()
        self._package_owner.clear()
        self._topup_cache.clear()
        for hook in self._forget_hooks:
            hook()

    def on_forget(self, hook: ForgetHook) -> None:
        """Call ``hook()`` whenever the cache is dropped: a service's own cache of rows it
        writes goes with the World's on a rollback."""
        self._forget_hooks.append(hook)

    def _remember(self, cache: MutableMapping[str, Any], msisdn: str, value: object) -> None:
        if len(cache) >= self.cache_limit:
            cache.clear()
        cache[msisdn] = value

    def _stale(self, msisdn: str) -> None:
        """The subscriber's row or options changed: read them again next time."""
        self._subscriber_cache.pop(msisdn, None)

    # -- the clock -----------------------------------------------------------------------------

    def now(self) -> int:
        return self.clock.now()

    def run_due(self, now: int | None = None) -> list[Reply]:
        """Fire everything due up to ``now`` (default: the clock) in one transaction.

        To queue the replies atomically with the changes, call it inside the caller's own
        ``with world.transaction():`` and queue them before leaving it.
        """
        with self.transaction():
            return self.timeline.run_due(self.clock.now() if now is None else now)

    def advance(self, seconds: int) -> list[Reply]:
        """Move the clock forward (persisting the offset) and fire what fell due."""
        with self.transaction():
            self.clock.advance(seconds)
            self.set_setting("clock_offset", str(self.clock.offset))
            return self.timeline.run_due(self.clock.now())

    # -- settings ------------------------------------------------------------------------------

    def get_setting(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_setting(self, key: str, value: str) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def migrate_service(self, name: str, migrations: Sequence[Sequence[str]]) -> None:
        """Apply the schema versions of a service's own tables this state file lacks.

        Each service owns its tables and their history (``MIGRATIONS`` in its module, one
        tuple of statements per version); the version reached is the setting
        ``schema.<name>``, bumped in the same transaction as the version's statements, so a
        crash leaves all of a version or none.  The core's tables are ``services/schema.py``'s.
        """
        current = int(self.get_setting(f"schema.{name}") or 0)
        for version, statements in enumerate(migrations, start=1):
            if version <= current:
                continue
            with self.transaction():
                for statement in statements:
                    self._db.execute(statement)
                self.set_setting(f"schema.{name}", str(version))

    # -- hooks ---------------------------------------------------------------------------------

    def on_change(self, hook: ChangeHook) -> None:
        """Call ``hook(event)`` for every subscriber change, inside its transaction."""
        self._change_hooks.append(hook)

    def on_package_expired(self, hook: ExpiryHook) -> None:
        self._expiry_hooks.append(hook)

    def on_demo_loaded(self, hook: DemoHook) -> None:
        """Call ``hook(profile, demo, subscriber, now)`` for each demo subscriber created.

        A service seeds its own state from ``demo.services[<its name>]`` here.
        """
        self._demo_hooks.append(hook)

    def add_fee_adjuster(self, adjuster: FeeAdjuster) -> None:
        """Let a service change a fee before it is charged (see ``charging.collect_fee``)."""
        self._fee_adjusters.append(adjuster)

    def on_fee(self, hook: FeeHook) -> None:
        """Call ``hook(result)`` after every fee is charged, left unpaid or skipped."""
        self._fee_hooks.append(hook)

    def set_recurring_handler(self, owner: str, handler: RecurringHandler) -> None:
        """Run ``handler(charge, due)`` for the recurring charges ``owner`` schedules."""
        if owner == "core":
            raise ValueError("the 'core' recurring charges are the core's own")
        self._recurring_handlers[owner] = handler

    def add_usage_source(self, source: charging.UsageSource, *, priority: int = 100) -> None:
        """Let ``source`` pay usage before the subscriber's own packages (lower goes first)."""
        self._usage_sources.append((priority, len(self._usage_sources), source))
        self._usage_sources.sort(key=lambda entry: entry[:2])

    @property
    def fee_adjusters(self) -> tuple[FeeAdjuster, ...]:
        return tuple(self._fee_adjusters)

    @property
    def fee_hooks(self) -> tuple[FeeHook, ...]:
        return tuple(self._fee_hooks)

    @property
    def usage_sources(self) -> tuple[charging.UsageSource, ...]:
        return tuple(source for _, _, source in self._usage_sources)

    @property
    def expiry_hooks(self) -> tuple[ExpiryHook, ...]:
        return tuple(self._expiry_hooks)

    def recurring_handler(self, owner: str) -> RecurringHandler | None:
        return self._recurring_handlers.get(owner)

    def _emit(self, event: SubscriberChanged) -> list[Reply]:
        self._db.execute(
            "INSERT INTO subscriber_changes (msisdn, at, field, old, new) VALUES (?,?,?,?,?)",
            (event.msisdn, event.at, event.field, event.old, event.new),
        )
        replies: list[Reply] = []
        for hook in self._change_hooks:
            replies.extend(hook(event))
        return replies

    # -- reading subscribers --------------------------------------------------------------------

    @staticmethod
    def _option(code: str, activated_at: int, params: str) -> OptionState:
        return OptionState(
            code=code,
            activated_at=activated_at,
            params=_NO_PARAMS if params == "{}" else json.loads(params),
        )

    @staticmethod
    def _subscriber(row: Any, options: tuple[OptionState, ...]) -> Subscriber:
        # Rows come straight from our own columns: dict lookups, not Enum() calls, on this
        # path (every SMS and every service request reads a subscriber).
        return Subscriber(
            msisdn=row[0],
            profile=row[1],
            tariff=row[2],
            status=_STATUSES[row[3]],
            owner_id=row[4],
            region=row[5],
            segment=_SEGMENTS[row[6]],
            company=row[7],
            account=row[8],
            balance=row[9],
            created_at=row[10],
            tariff_since=row[11],
            note=row[12],
            options=options,
        )

    def find(self, msisdn: str) -> Subscriber | None:
        """The subscriber with this MSISDN, or None."""
        try:
            return self._subscriber_cache[msisdn]
        except KeyError:
            pass
        rows = self._db.execute(_FIND_SUBSCRIBER, (msisdn,)).fetchall()
        found = None
        if rows:
            options = tuple(self._option(*row[13:]) for row in rows if row[13] is not None)
            found = self._subscriber(rows[0], options)
        self._remember(self._subscriber_cache, msisdn, found)
        return found

    def get(self, msisdn: str) -> Subscriber:
        """The subscriber with this MSISDN, or ``UnknownMsisdn``."""
        subscriber = self.find(msisdn)
        if subscriber is None:
            raise UnknownMsisdn(f"no subscriber {msisdn!r}", field="msisdn")
        return subscriber

    def exists(self, msisdn: str) -> bool:
        return self.find(msisdn) is not None

    def subscribers(
        self,
        *,
        profile: str | None = None,
        company: str | None = None,
        tariff: str | None = None,
        account: str | None = None,
        status: SubscriberStatus | str | None = None,
    ) -> list[Subscriber]:
        """Subscribers matching every filter given, by MSISDN."""
        clauses, args = [], []
        for column, value in (
            ("profile", profile),
            ("company", company),
            ("tariff", tariff),
            ("account", account),
            ("status", None if status is None else str(status)),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.execute(
            f"SELECT {_SUBSCRIBER_COLUMNS} FROM subscribers{where} ORDER BY msisdn", args
        ).fetchall()
        options: dict[str, list[OptionState]] = {}
        if rows:
            for msisdn, code, activated_at, params in self._db.execute(
                "SELECT msisdn, code, activated_at, params FROM subscriber_options"
                f" WHERE msisdn IN (SELECT msisdn FROM subscribers{where}) ORDER BY code",
                args,
            ):
                options.setdefault(msisdn, []).append(self._option(code, activated_at, params))
        return [self._subscriber(row, tuple(options.get(row[0], ()))) for row in rows]

    def profile_of(self, subscriber: Subscriber | str) -> Profile:
        if isinstance(subscriber, str):
            subscriber = self.get(subscriber)
        return self.profiles.profile(subscriber.profile)

    def tariff_of(self, subscriber: Subscriber | str) -> Tariff:
        if isinstance(subscriber, str):
            subscriber = self.get(subscriber)
        return self.profiles.profile(subscriber.profile).tariff(subscriber.tariff)

    def changes(self, msisdn: str) -> list[SubscriberChanged]:
        """Every recorded change of a subscriber, oldest first."""
        rows = self._db.execute(
            "SELECT msisdn, field, old, new, at FROM subscriber_changes WHERE msisdn = ?"
            " ORDER BY id",
            (msisdn,),
        ).fetchall()
        return [SubscriberChanged(msisdn=m, field=f, old=o, new=n, at=a) for m, f, o, n, a in rows]

    # -- creating subscribers -------------------------------------------------------------------

    def create_subscriber(
        self,
        *,
        msisdn: str,
        profile: str,
        tariff: str,
        now: int,
        balance: int = 0,
        status: SubscriberStatus | str = SubscriberStatus.ACTIVE,
        owner_id: str | None = None,
        region: str | None = None,
        segment: Segment | str = Segment.PRIVATE,
        company: str | None = None,
        account: str | None = None,
        note: str = "",
        options: Mapping[str, Mapping[str, object] | None] | Iterable[str] = (),
        fee_paid: bool = True,
    ) -> Subscriber:
        """A new subscriber, as if its current period were under way.

        The balance is taken as given (one ``opening_balance`` ledger entry), the tariff's
        packages are granted for the current period and its fee counts as paid (or unpaid
        with ``fee_paid=False``: it is then charged at the next top-up).  Options are on
        since ``activated_at`` (a reserved parameter; default ``now``) with no fee charged
        now; their renewal comes monthly from their activation.
        """
        the_profile = self.profiles.profile(_text(profile, "profile"))
        number = _text(msisdn, "msisdn")
        if not the_profile.valid_msisdn(number):
            raise InvalidValue(
                f"{number!r} is not a {the_profile.name} MSISDN ({the_profile.msisdn_format})",
                field="msisdn",
            )
        the_tariff = the_profile.tariff(_text(tariff, "tariff"))
        the_status = self._status(status)
        the_segment = self._segment(segment)
        the_region = self._region(the_profile, region)
        opening = _whole(balance, "balance")
        if opening < -the_tariff.credit_limit:
            raise InvalidValue(
                f"balance {opening} is below the credit limit of {the_tariff.name}",
                field="balance",
            )
        option_inputs = self._option_inputs(the_profile, options)
        with self.transaction():
            if self.exists(number):
                raise DuplicateMsisdn(f"subscriber {number} already exists", field="msisdn")
            self._db.execute(
                f"INSERT INTO subscribers ({_SUBSCRIBER_COLUMNS})"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    number,
                    the_profile.name,
                    the_tariff.code,
                    str(the_status),
                    _optional_text(owner_id, "owner_id") or f"owner-{number}",
                    the_region,
                    str(the_segment),
                    _optional_text(company, "company"),
                    _optional_text(account, "account"),
                    0,
                    now,
                    now,
                    note,
                ),
            )
            self._stale(number)
            if opening:
                self._post(number, opening, now=now, reason="opening_balance")
            for definition, params, activated_at in option_inputs:
                since = now if activated_at is None else activated_at
                self._insert_option(number, definition, params, since)
                charging.start_option(self, number, definition, since, now=now, charge=False)
            charging.start_tariff(self, number, the_tariff, now, charge=False, paid=fee_paid)
            return self.get(number)

    @staticmethod
    def _status(value: SubscriberStatus | str) -> SubscriberStatus:
        try:
            return SubscriberStatus(value)
        except ValueError:
            raise InvalidValue(
                f"status must be one of {', '.join(SubscriberStatus)}, got {value!r}",
                field="status",
            ) from None

    @staticmethod
    def _segment(value: Segment | str) -> Segment:
        try:
            return Segment(value)
        except ValueError:
            raise InvalidValue(
                f"segment must be one of {', '.join(Segment)}, got {value!r}", field="segment"
            ) from None

    @staticmethod
    def _region(profile: Profile, region: str | None) -> str:
        if region is None:
            return next(iter(profile.regions))
        if _text(region, "region") not in profile.regions:
            raise InvalidValue(
                f"region must be one of {', '.join(profile.regions)}, got {region!r}",
                field="region",
            )
        return region

    def _option_inputs(
        self,
        profile: Profile,
        options: Mapping[str, Mapping[str, object] | None] | Iterable[str],
    ) -> list[tuple[OptionDef, dict[str, object], int | None]]:
        if isinstance(options, str):
            raise WrongType("options must be a mapping or a list of codes", field="options")
        items = (
            list(options.items())
            if isinstance(options, Mapping)
            else [(code, None) for code in options]
        )
        result = []
        for code, given in items:
            definition = profile.option(_text(code, "options"))
            if not isinstance(given, Mapping | None):
                raise WrongType(f"parameters of option {code!r} must be a mapping", field="options")
            params = dict(given or {})
            raw = params.pop("activated_at", None)
            activated = None if raw is None else _whole(raw, "activated_at")
            result.append((definition, self._option_params(definition, params), activated))
        return result

    @staticmethod
    def _option_params(definition: OptionDef, params: Mapping[str, object]) -> dict[str, object]:
        checked: dict[str, object] = {}
        for name, value in params.items():
            kind = definition.params.get(name)
            if kind is None:
                raise UnknownField(
                    f"option {definition.code!r} has no parameter {name!r}"
                    f" (it has: {', '.join(definition.params) or 'none'})",
                    field=f"options.{definition.code}.{name}",
                )
            where = f"options.{definition.code}.{name}"
            if kind == "bool":
                if not isinstance(value, bool):
                    raise WrongType(f"{where} must be true or false", field=where)
            elif kind == "text":
                _text(value, where)
            else:
                _whole(value, where, minimum=0 if kind in ("money", "time") else None)
            checked[name] = value
        return checked

    def _insert_option(
        self,
        msisdn: str,
        definition: OptionDef,
        params: Mapping[str, object],
        activated_at: int | None,
    ) -> None:
        self._db.execute(
            "INSERT INTO subscriber_options (msisdn, code, activated_at, params) VALUES (?,?,?,?)",
            (msisdn, definition.code, activated_at, json.dumps(dict(params), sort_keys=True)),
        )
        self._stale(msisdn)

    # -- changing subscribers -----------------------------------------------------------------

    def patch(self, msisdn: str, changes: Mapping[str, object], *, now: int) -> list[Reply]:
        """Apply the control API's changes at once (all or nothing), in ``PATCH_FIELDS`` order.

        ``top_up`` (minor units), ``adjust_balance`` (signed), ``status``, ``owner_id``,
        ``region``, ``segment``, ``company``, ``account``, ``note``, ``tariff``, ``options``
        (code → true / false / parameters).  Unknown keys raise ``UnknownField``.
        """
        unknown = sorted(set(changes) - set(PATCH_FIELDS))
        if unknown:
            raise UnknownField(
                f"unknown field {unknown[0]!r}; fields: {', '.join(PATCH_FIELDS)}",
                field=unknown[0],
            )
        replies: list[Reply] = []
        with self.transaction():
            self.get(msisdn)
            for field in PATCH_FIELDS:
                if field not in changes:
                    continue
                value = changes[field]
                if field == "top_up":
                    replies += self.top_up(msisdn, _whole(value, field, minimum=1), now=now)
                elif field == "adjust_balance":
                    self.adjust_balance(msisdn, _whole(value, field), now=now)
                elif field == "status":
                    replies += self.set_status(msisdn, _text(value, field), now=now)
                elif field == "tariff":
                    replies += self.change_tariff(msisdn, _text(value, field), now=now)
                elif field == "options":
                    replies += self._patch_options(msisdn, value, now=now)
                else:
                    replies += self.set_field(msisdn, field, value, now=now)  # type: ignore[arg-type]
        return replies

    def _patch_options(self, msisdn: str, value: object, *, now: int) -> list[Reply]:
        if not isinstance(value, Mapping):
            raise WrongType(
                "options must map option codes to true, false or parameters", field="options"
            )
        replies: list[Reply] = []
        for code, wanted in value.items():
            if wanted is False or wanted is None:
                replies += self.remove_option(msisdn, str(code), now=now)
            elif wanted is True or isinstance(wanted, Mapping):
                params = {} if wanted is True else dict(wanted)
                replies += self.set_option(msisdn, str(code), now=now, params=params)
            else:
                raise WrongType(
                    f"options.{code} must be true, false or a mapping of parameters",
                    field=f"options.{code}",
                )
        return replies

    def _writable(self, msisdn: str) -> Subscriber:
        subscriber = self.get(msisdn)
        if subscriber.status is SubscriberStatus.TERMINATED:
            raise InvalidTransition(f"subscriber {msisdn} is terminated", field="status")
        return subscriber

    def set_field(self, msisdn: str, field: str, value: str | None, *, now: int) -> list[Reply]:
        """Change ``owner_id``, ``region``, ``segment``, ``company``, ``account`` or ``note``."""
        with self.transaction():
            subscriber = self._writable(msisdn)
            profile = self.profile_of(subscriber)
            new: str | None
            if field == "owner_id":
                new = _text(value, field)
            elif field == "region":
                new = self._region(profile, _text(value, field))
            elif field == "segment":
                new = str(self._segment(_text(value, field)))
            elif field in ("company", "account"):
                new = _optional_text(value, field)
            elif field == "note":
                if not isinstance(value, str):
                    raise WrongType("note must be a text", field=field)
                new = value
            else:
                raise UnknownField(f"field {field!r} cannot be set this way", field=field)
            old = getattr(subscriber, field)
            old = None if old is None else str(old)
            if old == new:
                return []
            self._db.execute(f"UPDATE subscribers SET {field} = ? WHERE msisdn = ?", (new, msisdn))
            self._stale(msisdn)
            return self._emit(
                SubscriberChanged(msisdn=msisdn, field=field, old=old, new=new, at=now)
            )

    def change_owner(self, msisdn: str, owner_id: str, *, now: int) -> list[Reply]:
        """A new owner of the SIM (MP-21, TV-11 react to it)."""
        return self.set_field(msisdn, "owner_id", owner_id, now=now)

    def set_status(self, msisdn: str, status: SubscriberStatus | str, *, now: int) -> list[Reply]:
        """Block, unblock or terminate.  Terminated is final.

        Unblocking charges the fee left unpaid or skipped for the current period;
        terminating ends every recurring charge and package.
        """
        new = self._status(status)
        with self.transaction():
            subscriber = self._writable(msisdn)
            if subscriber.status is new:
                return []
            self._db.execute(
                "UPDATE subscribers SET status = ? WHERE msisdn = ?", (str(new), msisdn)
            )
            self._stale(msisdn)
            replies = self._emit(
                SubscriberChanged(
                    msisdn=msisdn, field="status", old=str(subscriber.status), new=str(new), at=now
                )
            )
            if new is SubscriberStatus.TERMINATED:
                self._db.execute("DELETE FROM recurring_charges WHERE msisdn = ?", (msisdn,))
                self.expire_packages(msisdn, now=now)
            elif new is SubscriberStatus.ACTIVE:
                replies += charging.retry_unpaid_fees(self, msisdn, now=now)
            return replies

    def change_tariff(self, msisdn: str, tariff: str, *, now: int) -> list[Reply]:
        """Move to another tariff: the new fee is charged now and a new period begins.

        The old tariff's packages end; refused with ``InsufficientFunds`` when the first
        fee of the new tariff cannot be paid.
        """
        with self.transaction():
            subscriber = self._writable(msisdn)
            profile = self.profile_of(subscriber)
            new = profile.tariff(tariff)
            if new.code == subscriber.tariff:
                return []
            if subscriber.balance < -new.credit_limit:
                raise InsufficientFunds(
                    f"{msisdn} owes {-subscriber.balance}, more than {new.name} allows",
                    field="tariff",
                )
            self._db.execute(
                "UPDATE subscribers SET tariff = ?, tariff_since = ? WHERE msisdn = ?",
                (new.code, now, msisdn),
            )
            self._stale(msisdn)
            replies = charging.start_tariff(self, msisdn, new, now, charge=True)
            replies.insert(0, self._notice(subscriber, TARIFF_CHANGED.key, tariff=new.name))
            replies += self._emit(
                SubscriberChanged(
                    msisdn=msisdn, field="tariff", old=subscriber.tariff, new=new.code, at=now
                )
            )
            return replies

    def set_option(
        self,
        msisdn: str,
        code: str,
        *,
        now: int,
        params: Mapping[str, object] | None = None,
    ) -> list[Reply]:
        """Turn an option on (its first fee charged now) or change its parameters."""
        with self.transaction():
            subscriber = self._writable(msisdn)
            definition = self.profile_of(subscriber).option(code)
            wanted = dict(params or {})
            raw = wanted.pop("activated_at", None)
            activated = None if raw is None else _whole(raw, "activated_at")
            checked = self._option_params(definition, wanted)
            current = subscriber.option(definition.code)
            if current is not None:
                merged = {**current.params, **checked}
                self._db.execute(
                    "UPDATE subscriber_options SET params = ?, activated_at = ?"
                    " WHERE msisdn = ? AND code = ?",
                    (
                        json.dumps(merged, sort_keys=True),
                        current.activated_at if activated is None else activated,
                        msisdn,
                        definition.code,
                    ),
                )
                self._stale(msisdn)
                return []
            start = now if activated is None else activated
            self._insert_option(msisdn, definition, checked, start)
            replies = charging.start_option(self, msisdn, definition, start, now=now, charge=True)
            replies.insert(0, self._notice(subscriber, OPTION_ON.key, option=definition.name))
            replies += self._emit(
                SubscriberChanged(
                    msisdn=msisdn, field=f"option:{definition.code}", old="off", new="on", at=now
                )
            )
            return replies

    def remove_option(self, msisdn: str, code: str, *, now: int) -> list[Reply]:
        """Turn an option off: its recurring fee stops and its packages end now."""
        with self.transaction():
            subscriber = self._writable(msisdn)
            definition = self.profile_of(subscriber).option(code)
            if not subscriber.has_option(definition.code):
                return []
            self._db.execute(
                "DELETE FROM subscriber_options WHERE msisdn = ? AND code = ?",
                (msisdn, definition.code),
            )
            self._stale(msisdn)
            self.cancel_recurring(msisdn, f"option:{definition.code}")
            self.expire_packages(msisdn, now=now, source=f"option:{definition.code}")
            replies = [self._notice(subscriber, OPTION_OFF.key, option=definition.name)]
            replies += self._emit(
                SubscriberChanged(
                    msisdn=msisdn, field=f"option:{definition.code}", old="on", new="off", at=now
                )
            )
            return replies

    # -- money ----------------------------------------------------------------------------------

    def _post(
        self,
        msisdn: str,
        amount: int,
        *,
        now: int,
        reason: str,
        reference: str = "",
        detail: str = "",
    ) -> LedgerEntry:
        row = self._db.execute(
            "UPDATE subscribers SET balance = balance + ? WHERE msisdn = ? RETURNING balance",
            (amount, msisdn),
        ).fetchone()
        if row is None:
            raise UnknownMsisdn(f"no subscriber {msisdn!r}", field="msisdn")
        cursor = self._db.execute(
            "INSERT INTO ledger (msisdn, at, amount, balance_after, reason, reference, detail)"
            " VALUES (?,?,?,?,?,?,?)",
            (msisdn, now, amount, row[0], reason, reference, detail),
        )
        cached = self._subscriber_cache.get(msisdn)
        if cached is not None:
            self._subscriber_cache[msisdn] = attrs.evolve(cached, balance=int(row[0]))
        return LedgerEntry(
            id=int(cursor.lastrowid or 0),
            msisdn=msisdn,
            at=now,
            amount=amount,
            balance_after=int(row[0]),
            reason=reason,
            reference=reference,
            detail=detail,
        )

    def spendable(self, subscriber: Subscriber | str) -> int:
        """How much can be charged now: the balance plus the tariff's credit limit."""
        if isinstance(subscriber, str):
            subscriber = self.get(subscriber)
        return subscriber.balance + self.tariff_of(subscriber).credit_limit

    def debit(
        self,
        msisdn: str,
        amount: int,
        *,
        now: int,
        reason: str,
        reference: str = "",
        detail: str = "",
    ) -> LedgerEntry:
        """Charge ``amount`` (> 0); ``InsufficientFunds`` beyond balance plus credit limit."""
        _whole(amount, "amount", minimum=1)
        with self.transaction():
            if self.spendable(msisdn) < amount:
                raise InsufficientFunds(
                    f"{msisdn} cannot pay {amount} (has {self.spendable(msisdn)} to spend)",
                    field="amount",
                )
            return self._post(
                msisdn, -amount, now=now, reason=reason, reference=reference, detail=detail
            )

    def credit(
        self,
        msisdn: str,
        amount: int,
        *,
        now: int,
        reason: str,
        reference: str = "",
        detail: str = "",
    ) -> LedgerEntry:
        """Add ``amount`` (> 0) to the balance."""
        _whole(amount, "amount", minimum=1)
        with self.transaction():
            return self._post(
                msisdn, amount, now=now, reason=reason, reference=reference, detail=detail
            )

    def transfer(
        self,
        source: str,
        destination: str,
        amount: int,
        *,
        now: int,
        reason: str,
        reference: str = "",
    ) -> tuple[LedgerEntry, LedgerEntry]:
        """Move money between two subscribers; the two entries sum to zero."""
        with self.transaction():
            self.get(destination)
            out = self.debit(
                source,
                amount,
                now=now,
                reason=reason,
                reference=reference,
                detail=f"to {destination}",
            )
            into = self.credit(
                destination,
                amount,
                now=now,
                reason=reason,
                reference=reference,
                detail=f"from {source}",
            )
            return out, into

    def adjust_balance(
        self, msisdn: str, amount: int, *, now: int, reason: str = "adjustment"
    ) -> LedgerEntry | None:
        """A tester's correction of the balance (either sign), through the ledger."""
        if amount > 0:
            return self.credit(msisdn, amount, now=now, reason=reason)
        if amount < 0:
            return self.debit(msisdn, -amount, now=now, reason=reason)
        return None

    def top_up(self, msisdn: str, amount: int, *, now: int, method: str = "cash") -> list[Reply]:
        """A payment: credited, kept in the top-up history, then unpaid fees are retried."""
        _whole(amount, "top_up", minimum=1)
        with self.transaction():
            subscriber = self._writable(msisdn)
            entry = self._post(msisdn, amount, now=now, reason="top_up", reference=method)
            self._db.execute(
                "INSERT INTO topups (msisdn, at, amount, method) VALUES (?,?,?,?)",
                (msisdn, now, amount, method),
            )
            self._topup_cache.pop(msisdn, None)
            replies = [
                self._notice(
                    subscriber, TOPUP_RECEIVED.key, amount=amount, balance=entry.balance_after
                )
            ]
            return replies + charging.retry_unpaid_fees(self, msisdn, now=now)

    def ledger(
        self, msisdn: str | None = None, *, since: int | None = None, limit: int | None = None
    ) -> list[LedgerEntry]:
        """Ledger entries, oldest first (the newest ``limit`` of them when a limit is given)."""
        clauses: list[str] = []
        args: list[object] = []
        if msisdn is not None:
            clauses.append("msisdn = ?")
            args.append(msisdn)
        if since is not None:
            clauses.append("at >= ?")
            args.append(since)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = (
            "SELECT id, msisdn, at, amount, balance_after, reason, reference, detail"
            f" FROM ledger{where} ORDER BY id DESC"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = self._db.execute(sql, args).fetchall()
        return [
            LedgerEntry(
                id=i, msisdn=m, at=a, amount=am, balance_after=b, reason=r, reference=ref, detail=d
            )
            for i, m, a, am, b, r, ref, d in reversed(rows)
        ]

    def has_ledger_entry(self, msisdn: str, *, reason: str, reference: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM ledger WHERE msisdn = ? AND reason = ? AND reference = ? LIMIT 1",
            (msisdn, reason, reference),
        ).fetchone()
        return row is not None

    def topups(self, msisdn: str, *, since: int | None = None) -> list[TopUp]:
        """Top-ups of a subscriber, oldest first (TS-04, TS-09 look at 31 days)."""
        every = self._topup_cache.get(msisdn)
        if every is None:
            rows = self._db.execute(
                "SELECT id, msisdn, at, amount, method FROM topups WHERE msisdn = ?"
                " ORDER BY at, id",
                (msisdn,),
            ).fetchall()
            every = [TopUp(id=i, msisdn=m, at=a, amount=am, method=me) for i, m, a, am, me in rows]
            self._remember(self._topup_cache, msisdn, every)
        if since is None:
            return list(every)
        return [t for t in every if t.at >= since]

    def last_topup(self, msisdn: str) -> TopUp | None:
        found = self.topups(msisdn)
        return found[-1] if found else None

    def record_topup_history(
        self, msisdn: str, *, at: int, amount: int, method: str = "history"
    ) -> None:
        """A past top-up already included in the balance (the demo's history): no ledger entry."""
        _whole(amount, "amount", minimum=1)
        self._db.execute(
            "INSERT INTO topups (msisdn, at, amount, method) VALUES (?,?,?,?)",
            (msisdn, at, amount, method),
        )
        self._topup_cache.pop(msisdn, None)

    def notices_for(self, entry: LedgerEntry) -> list[Reply]:
        """The low-balance notice when this charge took the balance below the threshold."""
        subscriber = self.get(entry.msisdn)
        profile = self.profile_of(subscriber)
        threshold = profile.settings.low_balance_threshold
        before = entry.balance_after - entry.amount
        if entry.amount < 0 and before >= threshold > entry.balance_after:
            return [self._notice(subscriber, LOW_BALANCE.key, balance=entry.balance_after)]
        return []

    def _notice(self, subscriber: Subscriber, template: str, **params: object) -> Reply:
        profile = self.profile_of(subscriber)
        return Reply(
            to=subscriber.msisdn,
            sender=profile.info_number,
            template=template,
            params=params,
            profile=profile.name,
        )

    def notice(self, msisdn: str, template: str, **params: object) -> Reply:
        """An SMS to the subscriber from its profile's info number."""
        return self._notice(self.get(msisdn), template, **params)

    # -- packages -------------------------------------------------------------------------------

    @staticmethod
    def _package(row: Any) -> Package:
        return Package(
            id=row[0],
            msisdn=row[1],
            kind=_KINDS[row[2]],
            destination=row[3],
            zone=row[4],
            initial=row[5],
            remaining=row[6],
            valid_from=row[7],
            valid_until=row[8],
            source=row[9],
            label=row[10],
            expired_at=row[11],
        )

    def grant_package(
        self,
        msisdn: str,
        *,
        kind: UsageKind | str,
        amount: int,
        now: int,
        valid_until: int | None,
        destination: str = "any",
        zone: str = "home",
        source: str = "grant",
        label: str = "",
    ) -> Package:
        """Give a subscriber a package (a tariff's, an option's, minutes received, a tester's)."""
        try:
            the_kind = UsageKind(kind)
        except ValueError:
            raise InvalidValue(
                f"kind must be data, voice or sms, got {kind!r}", field="kind"
            ) from None
        _whole(amount, "amount", minimum=1)
        if valid_until is not None and valid_until <= now:
            raise InvalidValue("a package must be valid after now", field="valid_until")
        if zone not in ("home", "abroad", "everywhere"):
            raise InvalidValue(
                f"zone must be home, abroad or everywhere, got {zone!r}", field="zone"
            )
        with self._one_write():
            profile = self.profile_of(msisdn)
            if destination not in profile.destinations:
                raise InvalidValue(
                    f"destination must be one of {', '.join(profile.destinations)}",
                    field="destination",
                )
            # No RETURNING: it costs SQLite more than the insert itself, and every column
            # is known here but the id.
            cursor = self._db.execute(
                "INSERT INTO packages (msisdn, kind, destination, zone, initial, remaining,"
                " valid_from, valid_until, source, label) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    msisdn,
                    str(the_kind),
                    destination,
                    zone,
                    amount,
                    amount,
                    now,
                    valid_until,
                    source,
                    label,
                ),
            )
            package = Package(
                id=int(cursor.lastrowid or 0),
                msisdn=msisdn,
                kind=the_kind,
                destination=destination,
                zone=zone,
                initial=amount,
                remaining=amount,
                valid_from=now,
                valid_until=valid_until,
                source=source,
                label=label,
                expired_at=None,
            )
            live = self._package_cache.get(msisdn)
            if live is not None:
                insort(live, package, key=_package_order)
            self._index_package(package)
            return package

    def grant_packages(
        self,
        msisdn: str,
        specs: Iterable[PackageSpec],
        *,
        now: int,
        valid_until: int | None,
        source: str,
    ) -> list[Package]:
        return [
            self.grant_package(
                msisdn,
                kind=spec.kind,
                amount=spec.amount,
                now=now,
                valid_until=valid_until,
                destination=spec.destination,
                zone=spec.zone,
                source=source,
                label=spec.label,
            )
            for spec in specs
        ]

    def _live_packages(self, msisdn: str) -> list[Package]:
        """The cached live packages (``expired_at IS NULL``) of a subscriber, expiry order."""
        live = self._package_cache.get(msisdn)
        if live is None:
            rows = self._db.execute(
                f"SELECT {_PACKAGE_COLUMNS} FROM packages WHERE msisdn = ?"
                " AND expired_at IS NULL ORDER BY valid_until IS NULL, valid_until, id",
                (msisdn,),
            ).fetchall()
            live = [self._package(row) for row in rows]
            self._remember(self._package_cache, msisdn, live)
            for package in live:
                self._index_package(package)
        return live

    def packages(
        self, msisdn: str, *, now: int | None = None, include_expired: bool = False
    ) -> list[Package]:
        """A subscriber's packages, earliest expiry first; with ``now``, only usable ones."""
        if include_expired:
            rows = self._db.execute(
                f"SELECT {_PACKAGE_COLUMNS} FROM packages WHERE msisdn = ?"
                " ORDER BY valid_until IS NULL, valid_until, id",
                (msisdn,),
            ).fetchall()
            found = [self._package(row) for row in rows]
        else:
            found = list(self._live_packages(msisdn))
        return found if now is None else [p for p in found if p.usable(now)]

    def usable_packages(
        self,
        msisdn: str,
        kind: UsageKind,
        *,
        now: int,
        destination: str = "any",
        zones: Iterable[str] = ("home", "everywhere"),
        exact: bool = False,
    ) -> list[Package]:
        """Packages that can pay this use now, earliest expiry first.

        A voice package for ``any`` destination pays every call; one for ``network`` only
        calls to ``network`` (``exact=True``: only packages of exactly that destination).
        """
        wanted_zones = zones if isinstance(zones, tuple | frozenset | set) else tuple(zones)
        other = destination if exact else "any"
        return [
            p
            for p in self._live_packages(msisdn)
            if p.kind == kind
            and p.remaining > 0
            and p.valid_from <= now
            and (p.valid_until is None or p.valid_until > now)
            and p.zone in wanted_zones
            and (p.destination == destination or p.destination == other)
        ]

    def available(
        self,
        msisdn: str,
        kind: UsageKind | str,
        *,
        now: int,
        destination: str = "any",
        exact: bool = False,
        zones: Iterable[str] = ("home", "everywhere"),
    ) -> int:
        """How much of ``kind`` the subscriber's own packages hold for this destination now."""
        return sum(
            p.remaining
            for p in self.usable_packages(
                msisdn, UsageKind(kind), now=now, destination=destination, exact=exact, zones=zones
            )
        )

    def _index_package(self, package: Package) -> None:
        if len(self._package_owner) >= 4 * self.cache_limit:
            self._package_owner.clear()
        self._package_owner[package.id] = package.msisdn

    def consume_package(self, package_id: int, amount: int) -> Package:
        """Take ``amount`` from one package; never below zero (``InvalidValue``)."""
        _whole(amount, "amount", minimum=1)
        # The package's owner is usually known (the caller found the package through the
        # cache): then the row needs no RETURNING, which costs SQLite three times the UPDATE.
        owner = self._package_owner.get(package_id)
        live = None if owner is None else self._package_cache.get(owner)
        if live is not None:
            for index, held in enumerate(live):
                if held.id == package_id:
                    cursor = self._db.execute(
                        "UPDATE packages SET remaining = remaining - ?"
                        " WHERE id = ? AND remaining >= ?",
                        (amount, package_id, amount),
                    )
                    if cursor.rowcount != 1:
                        raise InvalidValue(
                            f"package {package_id} does not hold {amount}", field="amount"
                        )
                    package = attrs.evolve(held, remaining=held.remaining - amount)
                    live[index] = package  # same validity: the order stays
                    return package
        row = self._db.execute(
            "UPDATE packages SET remaining = remaining - ? WHERE id = ? AND remaining >= ?"
            f" RETURNING {_PACKAGE_COLUMNS}",
            (amount, package_id, amount),
        ).fetchone()
        if row is None:
            raise InvalidValue(f"package {package_id} does not hold {amount}", field="amount")
        package = self._package(row)
        live = self._package_cache.get(package.msisdn)
        if live is not None:
            for index, held in enumerate(live):
                if held.id == package_id:
                    live[index] = package
                    break
        return package

    def take_from_packages(
        self,
        msisdn: str,
        kind: UsageKind | str,
        amount: int,
        *,
        now: int,
        destination: str = "any",
        exact: bool = False,
        zones: Iterable[str] = ("home", "everywhere"),
    ) -> list[tuple[Package, int]]:
        """Take up to ``amount`` from the own packages, earliest expiry first.

        Returns each package after the taking with the amount taken from it.
        """
        taken: list[tuple[Package, int]] = []
        remaining = _whole(amount, "amount", minimum=0)
        with self.transaction():
            for package in self.usable_packages(
                msisdn, UsageKind(kind), now=now, destination=destination, exact=exact, zones=zones
            ):
                if remaining == 0:
                    break
                portion = min(remaining, package.remaining)
                taken.append((self.consume_package(package.id, portion), portion))
                remaining -= portion
        return taken

    def expire_packages(self, msisdn: str, *, now: int, source: str | None = None) -> list[Package]:
        """End a subscriber's live packages now (of one source, or all)."""
        sql = "UPDATE packages SET expired_at = ? WHERE msisdn = ? AND expired_at IS NULL"
        args: list[object] = [now, msisdn]
        if source is not None:
            sql += " AND source = ?"
            args.append(source)
        rows = self._db.execute(sql + f" RETURNING {_PACKAGE_COLUMNS}", args).fetchall()
        self._package_cache.pop(msisdn, None)
        return [self._package(row) for row in rows]

    def next_package_expiry(self) -> int | None:
        row = self._db.execute(
            "SELECT min(valid_until) FROM packages"
            " WHERE expired_at IS NULL AND valid_until IS NOT NULL"
        ).fetchone()
        return None if row[0] is None else int(row[0])

    def expire_due_packages(self, now: int) -> list[Package]:
        """Mark every package whose validity ended by ``now`` as expired; return them."""
        rows = self._db.execute(
            "UPDATE packages SET expired_at = valid_until WHERE expired_at IS NULL"
            f" AND valid_until IS NOT NULL AND valid_until <= ? RETURNING {_PACKAGE_COLUMNS}",
            (now,),
        ).fetchall()
        expired = [self._package(row) for row in rows]
        for package in expired:
            self._package_cache.pop(package.msisdn, None)
        return sorted(expired, key=lambda p: (p.valid_until, p.id))

    # -- recurring charges and fee records ---------------------------------------------------------

    @staticmethod
    def _recurring(row: Any) -> RecurringCharge:
        (
            msisdn,
            code,
            owner,
            amount,
            period,
            anchor_day,
            next_at,
            part,
            period_start,
            period_end,
            created_at,
        ) = row
        return RecurringCharge(
            msisdn=str(msisdn),
            code=str(code),
            owner=str(owner),
            amount=int(amount),
            period=Period(period),
            anchor_day=int(anchor_day),
            next_at=int(next_at),
            part=int(part),
            period_start=None if period_start is None else int(period_start),
            period_end=None if period_end is None else int(period_end),
            created_at=int(created_at),
        )

    def schedule_recurring(
        self,
        msisdn: str,
        code: str,
        *,
        amount: int,
        period: Period | str,
        next_at: int,
        now: int,
        owner: str = "core",
        anchor_day: int | None = None,
        part: int = 1,
        period_start: int | None = None,
        period_end: int | None = None,
    ) -> RecurringCharge:
        """Create or replace the recurring charge ``code`` of a subscriber.

        A service that owns its charge (``owner`` = its name) registers a handler with
        ``set_recurring_handler`` and is called at ``next_at`` with the charge; it collects
        the money (``charging.collect_fee``) and calls this again (or ``reschedule``) with
        the next due time.  Monthly charges keep ``anchor_day`` (default: ``next_at``'s day).
        """
        _whole(amount, "amount", minimum=0)
        try:
            the_period = Period(period)
        except ValueError:
            raise InvalidValue(
                f"period must be month or day, got {period!r}", field="period"
            ) from None
        with self.transaction():
            self.get(msisdn)
            profile = self.profile_of(msisdn)
            anchor = anchor_day or day_of_month(next_at, profile.settings.utc_offset)
            row = self._db.execute(
                f"INSERT INTO recurring_charges ({_RECURRING_COLUMNS})"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT (msisdn, code) DO UPDATE SET owner = excluded.owner,"
                " amount = excluded.amount, period = excluded.period,"
                " anchor_day = excluded.anchor_day, next_at = excluded.next_at,"
                " part = excluded.part, period_start = excluded.period_start,"
                " period_end = excluded.period_end"
                f" RETURNING {_RECURRING_COLUMNS}",
                (
                    msisdn,
                    code,
                    owner,
                    amount,
                    str(the_period),
                    anchor,
                    next_at,
                    part,
                    period_start,
                    period_end,
                    now,
                ),
            ).fetchone()
            return self._recurring(row)

    def reschedule(
        self,
        charge: RecurringCharge,
        *,
        next_at: int,
        part: int = 1,
        period_start: int | None = None,
        period_end: int | None = None,
        amount: int | None = None,
        period: Period | None = None,
        anchor_day: int | None = None,
    ) -> None:
        """Move a recurring charge to its next due time (after handling it)."""
        self._db.execute(
            "UPDATE recurring_charges SET next_at = ?, part = ?, period_start = ?, period_end = ?,"
            " amount = ?, period = ?, anchor_day = ? WHERE msisdn = ? AND code = ?",
            (
                next_at,
                part,
                period_start,
                period_end,
                charge.amount if amount is None else amount,
                str(charge.period if period is None else period),
                charge.anchor_day if anchor_day is None else anchor_day,
                charge.msisdn,
                charge.code,
            ),
        )

    def cancel_recurring(self, msisdn: str, code: str) -> bool:
        cursor = self._db.execute(
            "DELETE FROM recurring_charges WHERE msisdn = ? AND code = ?", (msisdn, code)
        )
        return cursor.rowcount > 0

    def recurring(self, msisdn: str) -> list[RecurringCharge]:
        rows = self._db.execute(
            f"SELECT {_RECURRING_COLUMNS} FROM recurring_charges WHERE msisdn = ?"
            " ORDER BY next_at, code",
            (msisdn,),
        ).fetchall()
        return [self._recurring(row) for row in rows]

    def get_recurring(self, msisdn: str, code: str) -> RecurringCharge | None:
        row = self._db.execute(
            f"SELECT {_RECURRING_COLUMNS} FROM recurring_charges WHERE msisdn = ? AND code = ?",
            (msisdn, code),
        ).fetchone()
        return None if row is None else self._recurring(row)

    def next_recurring_at(self) -> int | None:
        row = self._db.execute("SELECT min(next_at) FROM recurring_charges").fetchone()
        return None if row[0] is None else int(row[0])

    def recurring_due(self, now: int) -> list[RecurringCharge]:
        """Recurring charges due at or before ``now``, in due order."""
        rows = self._db.execute(
            f"SELECT {_RECURRING_COLUMNS} FROM recurring_charges WHERE next_at <= ?"
            " ORDER BY next_at, msisdn, code",
            (now,),
        ).fetchall()
        return [self._recurring(row) for row in rows]

    @staticmethod
    def _fee(row: Any) -> FeeRecord:
        (fid, msisdn, code, period_start, period_end, part, due, charged, status, at, detail) = row
        return FeeRecord(
            id=int(fid),
            msisdn=str(msisdn),
            code=str(code),
            period_start=int(period_start),
            period_end=int(period_end),
            part=int(part),
            amount_due=int(due),
            amount_charged=int(charged),
            status=FeeStatus(status),
            at=int(at),
            detail=str(detail),
        )

    def record_fee(
        self,
        msisdn: str,
        *,
        code: str,
        period_start: int,
        period_end: int,
        part: int,
        amount_due: int,
        amount_charged: int,
        status: FeeStatus,
        at: int,
        detail: str = "",
    ) -> FeeRecord:
        """Record (or update, on a retry) the fate of one period's fee."""
        row = self._db.execute(
            f"INSERT INTO fee_records ({_FEE_COLUMNS.replace('id, ', '', 1)})"
            " VALUES (?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT (msisdn, code, period_start, part) DO UPDATE SET"
            " period_end = excluded.period_end, amount_due = excluded.amount_due,"
            " amount_charged = excluded.amount_charged, status = excluded.status,"
            " at = excluded.at, detail = excluded.detail"
            f" RETURNING {_FEE_COLUMNS}",
            (
                msisdn,
                code,
                period_start,
                period_end,
                part,
                amount_due,
                amount_charged,
                str(status),
                at,
                detail,
            ),
        ).fetchone()
        return self._fee(row)

    def close_fee_periods(self, msisdn: str, code: str, *, now: int) -> None:
        """End the open periods of a fee at ``now`` (the tariff changed mid-period)."""
        self._db.execute(
            "UPDATE fee_records SET period_end = ? WHERE msisdn = ? AND code = ?"
            " AND period_start < ? AND period_end > ?",
            (now, msisdn, code, now, now),
        )

    def fee_records(
        self, msisdn: str, *, code: str | None = None, status: FeeStatus | None = None
    ) -> list[FeeRecord]:
        """Fee records of a subscriber, oldest period first."""
        sql = f"SELECT {_FEE_COLUMNS} FROM fee_records WHERE msisdn = ?"
        args: list[object] = [msisdn]
        if code is not None:
            sql += " AND code = ?"
            args.append(code)
        if status is not None:
            sql += " AND status = ?"
            args.append(str(status))
        rows = self._db.execute(sql + " ORDER BY period_start, part, id", args).fetchall()
        return [self._fee(row) for row in rows]

    def fee_status(self, msisdn: str, *, now: int, code: str = "tariff") -> list[FeeRecord]:
        """The records of the period containing ``now`` (one per instalment)."""
        rows = self._db.execute(
            f"SELECT {_FEE_COLUMNS} FROM fee_records WHERE msisdn = ? AND code = ?"
            " AND period_start <= ? AND ? < period_end ORDER BY part",
            (msisdn, code, now, now),
        ).fetchall()
        return [self._fee(row) for row in rows]

    def has_paid_fee(self, msisdn: str, *, now: int, code: str = "tariff") -> bool:
        """Whether the fee of the current period is paid (TV-08).

        True for a tariff without a monthly fee; false when the period's fee (any
        instalment charged so far) is unpaid or was skipped while blocked.
        """
        records = self.fee_status(msisdn, now=now, code=code)
        if not records:
            return code == "tariff" and self.tariff_of(msisdn).no_monthly_fee
        return all(record.status is FeeStatus.PAID for record in records)

    # -- usage log ----------------------------------------------------------------------------

    def log_usage(
        self,
        msisdn: str,
        *,
        at: int,
        kind: UsageKind,
        amount: int,
        destination: str,
        abroad: bool,
        country: str | None,
        paid_by: Sequence[tuple[str, int]],
        billed: int,
        refused: int,
    ) -> None:
        self._db.execute(
            "INSERT INTO usage (msisdn, at, kind, amount, destination, abroad, country, paid_by,"
            " billed, refused) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                msisdn,
                at,
                str(kind),
                amount,
                destination,
                int(abroad),
                country,
                json.dumps([list(p) for p in paid_by]),
                billed,
                refused,
            ),
        )

    def usage_log(self, msisdn: str, *, limit: int = 100) -> list[UsageRecord]:
        """The newest recorded uses of a subscriber, oldest first."""
        rows = self._db.execute(
            "SELECT id, msisdn, at, kind, amount, destination, abroad, country, paid_by, billed,"
            " refused FROM usage WHERE msisdn = ? ORDER BY id DESC LIMIT ?",
            (msisdn, limit),
        ).fetchall()
        return [
            UsageRecord(
                id=i,
                msisdn=m,
                at=at,
                kind=UsageKind(k),
                amount=a,
                destination=d,
                abroad=bool(ab),
                country=c,
                paid_by=tuple((s, n) for s, n in json.loads(p)),
                billed=b,
                refused=r,
            )
            for i, m, at, k, a, d, ab, c, p, b, r in reversed(rows)
        ]

    # -- the demo population --------------------------------------------------------------------

    def load_demo(self, *, now: int) -> list[str]:
        """Create every profile's demo subscribers, once per state file; their MSISDNs.

        Times in the fixtures are relative ("40d ago"), so the demo is set up as of ``now``.
        """
        if self.get_setting("demo_loaded_at") is not None:
            return []
        created = []
        with self.transaction():
            for profile in self.profiles.values():
                for demo in profile.demo:
                    created.append(self._create_demo(profile, demo, now))
            self.set_setting("demo_loaded_at", str(now))
        return created

    def _create_demo(self, profile: Profile, demo: DemoSubscriber, now: int) -> str:
        options: dict[str, Mapping[str, object] | None] = {}
        for code, option in demo.options.items():
            params = dict(option.params)
            params.update({name: now + offset for name, offset in option.relative_times.items()})
            params["activated_at"] = now - option.activated_ago
            options[code] = params
        subscriber = self.create_subscriber(
            msisdn=demo.msisdn,
            profile=profile.name,
            tariff=demo.tariff,
            now=now,
            balance=demo.balance,
            status=demo.status,
            owner_id=demo.owner_id,
            region=demo.region,
            segment=demo.segment,
            company=demo.company,
            account=demo.account,
            note=demo.note,
            options=options,
            fee_paid=demo.fee_paid,
        )
        for topup in demo.topups:
            self.record_topup_history(
                demo.msisdn, at=now - topup.ago, amount=topup.amount, method=topup.method
            )
        for package in demo.packages:
            spec = package.spec
            self.grant_package(
                demo.msisdn,
                kind=spec.kind,
                amount=spec.amount,
                now=now,
                valid_until=None if package.valid_for is None else now + package.valid_for,
                destination=spec.destination,
                zone=spec.zone,
                source="grant",
                label=spec.label,
            )
        for hook in self._demo_hooks:
            hook(profile, demo, subscriber, now)
        return demo.msisdn
