"""Telenor «Time Share» (SPEC TS-01 … TS-10, seed 004): a prepaid subscriber sends part of its
unspent minutes to another Telenor prepaid subscriber, by SMS ``F,08XXXXXXXX,YY`` /
``G,08XXXXXXXX,YY`` to 125 (TS-01) or through My Menu ``*123#`` → 5 → 3 (TS-02, the menu action
``time_share.transfer``).  This module owns the eligibility rules of both parties, the rolling
31-day send and receive limits, the move of the minutes in their destination category with the
validity of TS-08, the fee of TS-09, the confirmation and refusal texts it asks for, the terms
schema of ``services.time_share`` in the profile, and the journal of transfers
(``time_share_transfers``, in the world's SQLite store, so an acknowledged transfer survives a
restart).  Minutes move through the world's packages and the fee through its ledger, so minutes
and money are conserved; what the recipient does not use by the end of the validity is ended
by the core's package expiry on the clock (TS-08).

**Order of the checks** (the first that fails is the refusal; each has its own reason and text,
TS-07, sent back by SMS from 125 or shown on the menu screen, as the request came):

===  ===============================  =====================================================  =====
 #   reason                           refused when                                           rule
===  ===============================  =====================================================  =====
 0   (``parse_error.<reason>``)       the message or a menu answer is malformed, or the      TS-03
                                      minutes are not 10 … 50 in steps of 10                 TS-07
 1   ``sender_unknown``               the sender is no subscriber of the profile             TS-04
 2   ``sender_not_active``            the sender's number is blocked or terminated           TS-04
 3   ``sender_not_prepaid``           the sender's tariff is postpaid                        TS-04
 4   ``sender_visitor``               the sender is on a tariff tagged ``visitor``           TS-04
 5   ``sender_cash_in_time_debt``     the sender owes «Cash in Time» (its ``debt`` > 0)      TS-04
 6   ``sender_cash_in_time_fee``      the sender owes the «Cash in Time» fee (``fee`` > 0)   TS-04
 7   ``sender_no_recent_topup``       no top-up in the last 31 days                          TS-04
 8   ``sender_low_credit``            the credit after the fee would be under 2 лв.          TS-04
 9   ``sender_too_few_minutes``       under 10 unspent minutes to the chosen destination     TS-04
10   ``sender_not_enough_minutes``    10 or more, but fewer than the minutes asked           TS-04
11   ``sender_send_limit``            sent in the last 31 days plus these would pass 50      TS-04
12   ``recipient_unknown``            the recipient is no Telenor subscriber of the          TS-05
                                      simulator
13   ``recipient_is_sender``          the recipient is the sender («към други номера»)       TS-05
14   ``recipient_not_active``         the recipient's number is blocked or terminated        TS-05
15   ``recipient_not_prepaid``        the recipient's tariff is postpaid                     TS-05
16   ``recipient_visitor``            the recipient is on a tariff tagged ``visitor``        TS-05
17   ``recipient_cash_in_time_debt``  the recipient owes «Cash in Time»                      TS-05
18   ``recipient_cash_in_time_fee``   the recipient owes the «Cash in Time» fee (the seed    TS-05
                                      says so for the recipient too; SPEC TS-05 omits it)
19   ``recipient_receive_limit``      received in the last 31 days plus these would pass 50  TS-05
===  ===============================  =====================================================  =====

Decisions where the seed is not exact: "in the last 31 days" is the closed interval
``[now - 31 d, now]`` everywhere (last top-up, the top-ups that make the transfer free, both
limits), so a top-up exactly 31 days old still counts and the limits hold over any 31-day span;
the limits count minutes asked plus minutes already moved, so they are never passed; "unspent
minutes to the chosen destination" are the usable home packages of exactly that destination
(``network`` for G, ``friends`` for F; minutes for ``any`` destination are another category and
are not sent), taken earliest expiry first; the fee is waived when the top-ups of the 31 days
add up to 10 лв. or more; TS-08's "longer existing validity" is the latest end among the
recipient's usable packages of the same destination (one without an end gives the received
minutes none).  Money and minutes are integers (stotinki, minutes), time is clock seconds.

**The journal** ``time_share_transfers`` is this service's own table, created by ``install``
when missing.  A demo subscriber's ``services.time_share`` (``sent`` / ``received`` lists of
``{ago, minutes, to|from, destination}``) becomes rows that count toward that subscriber's own
window only (``Side``): the fixture names counterparts that must themselves stay eligible
(``359881000030`` "received 50 from" ``359881000001``, the sender that meets every condition).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import attrs
import yaml

from parsers import Destination, ParseError, normalize
from parsers.commands import TransferMinutes
from parsers.sms import SHORT_NUMBERS
from services.clock import parse_duration
from services.dispatch import Context, Outcome, Screen, ServiceDirectory
from services.model import Package, Payment, Subscriber, SubscriberStatus, UsageKind
from services.outbox import (
    Params,
    Reply,
    parse_error_template,
    render_template,
    require_template,
)
from services.profiles import DemoSubscriber, Profile, ProfileError, Tariff
from services.world import World

PROFILE: Final = "telenor"
#: The name of the service in ``profile.services``, ``demo.services`` and package sources.
SERVICE: Final = "time_share"
#: The My Menu action (TS-02) the dialogue calls with recipient, destination and minutes.
ACTION: Final = "time_share.transfer"
#: Where received minutes come from, on the recipient's package (TS-06).
PACKAGE_SOURCE: Final = SERVICE
#: Ledger reason of the fee (TS-09); the reference is ``time_share:<transfer id>``.
FEE_REASON: Final = "fee"

#: TS-01/TS-06: the letter of the request → the profile's voice destination.
DESTINATIONS: Final[Mapping[Destination, str]] = {
    Destination.FRIENDS: "friends",
    Destination.NETWORK: "network",
}

#: ParseError reasons a Time Share SMS can carry (TS-07: each has its own reply text).
SMS_PARSE_REASONS: Final = (
    "empty",
    "spaces_not_allowed",
    "bad_format",
    "bad_separator",
    "bad_msisdn",
    "bad_destination_letter",
    "not_a_number",
    "minutes_out_of_range",
    "minutes_not_multiple_of_10",
)


class Refusal(enum.StrEnum):
    """Why a transfer is refused (TS-04 sender, TS-05 recipient, TS-07 one text each), in the
    order the conditions are checked (module docstring)."""

    SENDER_UNKNOWN = "sender_unknown"
    SENDER_NOT_ACTIVE = "sender_not_active"
    SENDER_NOT_PREPAID = "sender_not_prepaid"
    SENDER_VISITOR = "sender_visitor"
    SENDER_CASH_IN_TIME_DEBT = "sender_cash_in_time_debt"
    SENDER_CASH_IN_TIME_FEE = "sender_cash_in_time_fee"
    SENDER_NO_RECENT_TOPUP = "sender_no_recent_topup"
    SENDER_LOW_CREDIT = "sender_low_credit"
    SENDER_TOO_FEW_MINUTES = "sender_too_few_minutes"
    SENDER_NOT_ENOUGH_MINUTES = "sender_not_enough_minutes"
    SENDER_SEND_LIMIT = "sender_send_limit"
    RECIPIENT_UNKNOWN = "recipient_unknown"
    RECIPIENT_IS_SENDER = "recipient_is_sender"
    RECIPIENT_NOT_ACTIVE = "recipient_not_active"
    RECIPIENT_NOT_PREPAID = "recipient_not_prepaid"
    RECIPIENT_VISITOR = "recipient_visitor"
    RECIPIENT_CASH_IN_TIME_DEBT = "recipient_cash_in_time_debt"
    RECIPIENT_CASH_IN_TIME_FEE = "recipient_cash_in_time_fee"
    RECIPIENT_RECEIVE_LIMIT = "recipient_receive_limit"

    @property
    def template(self) -> str:
        return f"time_share.refused.{self.value}"


#: Every refusal text gets these; the rest are per reason (``_REFUSAL_PARAMS``).
_BASE_PARAMS: Final = ("recipient", "minutes", "destination")
_REFUSAL_PARAMS: Final[Mapping[Refusal, tuple[str, ...]]] = {
    Refusal.SENDER_CASH_IN_TIME_DEBT: ("amount",),
    Refusal.SENDER_CASH_IN_TIME_FEE: ("amount",),
    Refusal.SENDER_NO_RECENT_TOPUP: ("days",),
    Refusal.SENDER_LOW_CREDIT: ("balance", "fee", "minimum"),
    Refusal.SENDER_TOO_FEW_MINUTES: ("available", "minimum"),
    Refusal.SENDER_NOT_ENOUGH_MINUTES: ("available",),
    Refusal.SENDER_SEND_LIMIT: ("sent", "limit", "days", "left"),
    Refusal.RECIPIENT_RECEIVE_LIMIT: ("limit", "days", "left"),
}
for _refusal in Refusal:
    require_template(
        _refusal.template, *_BASE_PARAMS, *_REFUSAL_PARAMS.get(_refusal, ()), profiles=[PROFILE]
    )

_CONFIRMATION: Final = ("minutes", "destination", "recipient", "balance")
#: TS-06/TS-09: the sender's confirmation, with the fee when one was charged.
SENT_FREE: Final = require_template("time_share.sent_free", *_CONFIRMATION, profiles=[PROFILE])
SENT_WITH_FEE: Final = require_template(
    "time_share.sent_with_fee", *_CONFIRMATION, "fee", profiles=[PROFILE]
)
#: TS-06/TS-08: the recipient's confirmation, with the end of the validity (or none).
RECEIVED: Final = require_template(
    "time_share.received", "minutes", "destination", "sender", "until", profiles=[PROFILE]
)
RECEIVED_NO_END: Final = require_template(
    "time_share.received_no_end", "minutes", "destination", "sender", profiles=[PROFILE]
)
#: The label of the received package (what My Menu lists).
PACKAGE_LABEL: Final = require_template(
    "time_share.package_label", "minutes", "destination", "sender", profiles=[PROFILE]
)


# -- the terms of the profile ------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class TimeShareTerms:
    """The facts of seed 004 as ``services.time_share`` of the profile states them.

    Money in minor units (stotinki), durations in seconds.
    """

    sms_number: str  # TS-01, TS-10
    minutes_min: int  # TS-03
    minutes_max: int  # TS-03
    minutes_step: int  # TS-03
    window: int  # TS-04, TS-05: the rolling period of both limits
    send_limit: int  # TS-04
    receive_limit: int  # TS-05
    validity: int  # TS-08
    fee: int  # TS-09
    free_after_topups_of: int  # TS-09
    min_credit_after_fee: int  # TS-04
    last_topup_within: int  # TS-04
    excluded_tariff_tags: frozenset[str]  # TS-04, TS-05: the Visitor plan
    cash_in_time_option: str  # TS-04, TS-05

    @property
    def window_days(self) -> int:
        return self.window // 86_400

    def minutes_refusal(self, minutes: int) -> str | None:
        """The ``ParseError`` reason for a count outside TS-03, checked range first (as the
        parser does), or None."""
        if not self.minutes_min <= minutes <= self.minutes_max:
            return "minutes_out_of_range"
        if minutes % self.minutes_step:
            return "minutes_not_multiple_of_10"
        return None


#: The schema of ``services.time_share``: key → kind (every key required, no other allowed).
TERMS_SCHEMA: Final[Mapping[str, str]] = {
    "sms_number": "digits",
    "minutes_min": "whole",
    "minutes_max": "whole",
    "minutes_step": "whole",
    "window": "duration",
    "send_limit": "whole",
    "receive_limit": "whole",
    "validity": "duration",
    "fee": "money",
    "free_after_topups_of": "money",
    "min_credit_after_fee": "money",
    "last_topup_within": "duration",
    "excluded_tariff_tags": "names",
    "cash_in_time_option": "name",
}


def _yaml_line(source: str, path: Sequence[object]) -> int | None:
    """The line of ``path`` in the YAML file ``source`` (only read when there is an error)."""
    try:
        node = yaml.compose(Path(source).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    line = None
    for key in path:
        found = None
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            found = node.value[key]
        if found is None:
            break
        node, line = found, int(found.start_mark.line) + 1
    return line


def _error(profile: Profile, path: Sequence[object], reason: str) -> ProfileError:
    where = ".".join(str(part) if not isinstance(part, int) else f"[{part}]" for part in path)
    return ProfileError(profile.source, _yaml_line(profile.source, path), f"{where}: {reason}")


def _read_value(profile: Profile, path: Sequence[object], kind: str, value: object) -> object:
    """One field of the terms, checked by its kind of ``TERMS_SCHEMA``."""
    if kind in ("whole", "money"):
        return _read_whole(profile, path, value, minimum=0)
    if kind == "duration":
        return _read_duration(profile, path, value)
    if kind == "digits":
        if not isinstance(value, str) or not value.isdigit():
            raise _error(profile, path, f"expected digits in quotes, got {value!r}")
        return value
    if kind == "name":
        if not isinstance(value, str) or re.fullmatch(r"[a-z0-9_]+", value) is None:
            raise _error(profile, path, f"expected a name [a-z0-9_]+, got {value!r}")
        return value
    if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
        raise _error(profile, path, f"expected a list of names, got {value!r}")
    return frozenset(value)


def _read_whole(profile: Profile, path: Sequence[object], value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _error(profile, path, f"expected a whole number ≥ {minimum}, got {value!r}")
    return value


def _read_duration(profile: Profile, path: Sequence[object], value: object) -> int:
    if not isinstance(value, str | int):
        raise _error(profile, path, f"expected a duration like '31d' or '72h', got {value!r}")
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise _error(profile, path, str(exc)) from None


def read_terms(profile: Profile) -> TimeShareTerms:
    """``services.time_share`` of ``profile`` as terms, or ``ProfileError`` (file, line, reason)."""
    raw = profile.services.get(SERVICE)
    if not isinstance(raw, Mapping):
        raise _error(profile, ("services", SERVICE), "the Time Share terms are missing")
    for key in raw:
        if key not in TERMS_SCHEMA:
            raise _error(
                profile,
                ("services", SERVICE, key),
                f"unknown field; fields: {', '.join(TERMS_SCHEMA)}",
            )
    values: dict[str, Any] = {}
    for key, kind in TERMS_SCHEMA.items():
        path = ("services", SERVICE, key)
        if key not in raw:
            raise _error(profile, path, "required field missing")
        values[key] = _read_value(profile, path, kind, raw[key])
    terms = TimeShareTerms(**values)
    here = ("services", SERVICE)
    if terms.sms_number != SHORT_NUMBERS.get(profile.name):
        raise _error(
            profile,
            (*here, "sms_number"),
            f"the SMS parser reads Time Share at {SHORT_NUMBERS.get(profile.name)!r}",
        )
    if not 0 < terms.minutes_min <= terms.minutes_max or terms.minutes_step < 1:
        raise _error(profile, (*here, "minutes_min"), "expected 0 < minutes_min ≤ minutes_max")
    if terms.cash_in_time_option not in profile.options:
        raise _error(profile, (*here, "cash_in_time_option"), "no such option in the profile")
    for tag in terms.excluded_tariff_tags:
        if not any(tag in tariff.tags for tariff in profile.tariffs.values()):
            raise _error(profile, (*here, "excluded_tariff_tags"), f"no tariff has tag {tag!r}")
    return terms


# -- values ---------------------------------------------------------------------------------


class Side(enum.StrEnum):
    """Whose limit a journal row counts toward: both (a transfer made here) or one side (a demo
    subscriber's past, TS-04/TS-05 windows, whose counterpart's limits are its own affair)."""

    BOTH = "both"
    SENDER = "sender"
    RECIPIENT = "recipient"


@attrs.frozen(kw_only=True)
class Transfer:
    """One Time Share transfer in the journal (TS-06): who, when, what, the fee and the package."""

    id: int
    at: int
    sender: str
    recipient: str
    destination: str  # 'network' | 'friends'
    minutes: int
    fee: int
    valid_until: int | None
    package_id: int | None  # the recipient's package; None for a demo's history
    side: Side


@attrs.frozen(kw_only=True)
class _Refused:
    reason: Refusal
    params: Mapping[str, object]


@attrs.frozen(kw_only=True)
class _Plan:
    """An approved transfer, with what the checks found (so nothing is read twice)."""

    sender: Subscriber
    recipient: Subscriber
    destination: str
    minutes: int
    fee: int
    taking: tuple[tuple[Package, int], ...]
    valid_until: int | None


# -- the journal ------------------------------------------------------------------------------

#: This service's own tables, one tuple of statements per schema version
#: (``World.migrate_service``).  Version 1 keeps ``IF NOT EXISTS``: state files made before
#: versions were recorded already have the journal.
MIGRATIONS: Final = (
    (
        """CREATE TABLE IF NOT EXISTS time_share_transfers (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,                 -- the confirmation (TS-08 counts from it)
    sender      TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    destination TEXT NOT NULL,                    -- network | friends (TS-06)
    minutes     INTEGER NOT NULL CHECK (minutes > 0),
    fee         INTEGER NOT NULL,                 -- stotinki charged (TS-09)
    valid_until INTEGER,                          -- of the received minutes (TS-08)
    package_id  INTEGER,                          -- the recipient's package
    side        TEXT NOT NULL DEFAULT 'both'      -- both | sender | recipient (demo history)
)""",
        "CREATE INDEX IF NOT EXISTS time_share_sent ON time_share_transfers (sender, at)",
        "CREATE INDEX IF NOT EXISTS time_share_received ON time_share_transfers (recipient, at)",
    ),
)
_COLUMNS: Final = (
    "id, at, sender, recipient, destination, minutes, fee, valid_until, package_id, side"
)
_INSERT: Final = (
    "INSERT INTO time_share_transfers (at, sender, recipient, destination, minutes, fee,"
    " valid_until, package_id, side) VALUES (?,?,?,?,?,?,?,?,?)"
)
#: The rows of one party's window, for the in-memory copy (``TimeShare._window``).
_SENT_ROWS: Final = (
    "SELECT at, minutes FROM time_share_transfers WHERE sender = ? AND side <> 'recipient'"
)
_RECEIVED_ROWS: Final = (
    "SELECT at, minutes FROM time_share_transfers WHERE recipient = ? AND side <> 'sender'"
)


def _national(msisdn: str) -> str:
    """``3598XXXXXXXX`` as a Bulgarian subscriber writes it, ``08XXXXXXXX`` (TS-01)."""
    return "0" + msisdn[3:] if msisdn.startswith("359") else msisdn


# -- the service ------------------------------------------------------------------------------


class TimeShare:
    """Time Share over a world: the SMS command, the menu action and the journal queries."""

    def __init__(self, world: World, profile: Profile, terms: TimeShareTerms) -> None:
        self.world = world
        self.profile = profile
        self.terms = terms
        self._db = world.store.connection
        self._destination_names = {
            code: profile.destinations[code] for code in DESTINATIONS.values()
        }
        # The 31-day windows (TS-04, TS-05) in memory: per MSISDN, the (at, minutes) of the
        # journal rows that count toward its send or receive limit, read from the journal on
        # first use and appended to by every insert; dropped with the World's cache on a
        # rollback, so they always equal what the journal's SUM would say.
        self._sent: dict[str, list[tuple[int, int]]] = {}
        self._received: dict[str, list[tuple[int, int]]] = {}
        world.on_forget(self._forget)
        world.migrate_service("time_share", MIGRATIONS)

    # -- entry points ---------------------------------------------------------------------

    def on_sms(self, context: Context, command: TransferMinutes) -> Outcome:
        """TS-01: ``F|G,08XXXXXXXX,YY`` to 125, already parsed (the gateway answers parse
        errors with ``parse_error.<reason>``)."""
        return self.request(
            context,
            recipient=command.recipient_msisdn,
            destination=command.destination,
            minutes=command.minutes,
        )

    def on_menu(self, context: Context, params: Mapping[str, object]) -> Outcome:
        """TS-02: the My Menu action with ``recipient`` (wire MSISDN; a typed ``08…`` is taken
        too), ``destination`` (``"F"``/``"G"``) and ``minutes``; a bad value is refused on the
        screen with the parser's reason text (TS-07)."""
        recipient = params.get("recipient")
        letter = params.get("destination")
        minutes = params.get("minutes")
        if recipient is None or letter is None or minutes is None:
            return self._parse_refusal("bad_format")
        if not isinstance(recipient, str):
            return self._parse_refusal("bad_msisdn")
        if not self.profile.valid_msisdn(recipient):
            try:
                recipient = normalize(recipient, self.profile.name, context="ussd")
            except ParseError as error:
                return self._parse_refusal(error.reason)
        if not isinstance(letter, str) or letter.upper() not in ("F", "G"):
            return self._parse_refusal("bad_destination_letter")
        destination = Destination(letter.upper())
        if isinstance(minutes, str) and minutes.isdecimal():
            minutes = int(minutes)
        if isinstance(minutes, bool) or not isinstance(minutes, int):
            return self._parse_refusal("not_a_number")
        return self.request(context, recipient=recipient, destination=destination, minutes=minutes)

    def request(
        self, context: Context, *, recipient: str, destination: Destination, minutes: int
    ) -> Outcome:
        """Check every condition in order; move the minutes or answer with the reason."""
        reason = self.terms.minutes_refusal(minutes)
        if reason is not None:
            return self._parse_refusal(reason)
        code = DESTINATIONS[destination]
        if self._db.in_transaction:
            # The caller's transaction (the gateway's, one per SMS) makes the change atomic
            # and rolls it back on an exception; a savepoint of our own costs two statements.
            return self._decide(context, recipient, code, minutes)
        with self.world.transaction():
            return self._decide(context, recipient, code, minutes)

    def _decide(self, context: Context, recipient: str, destination: str, minutes: int) -> Outcome:
        verdict = self._check(context.msisdn, recipient, destination, minutes, context.now)
        if isinstance(verdict, _Refused):
            return Outcome(screen=Screen(template=verdict.reason.template, params=verdict.params))
        return self._execute(context, verdict)

    # -- the checks (TS-04, TS-05), in the documented order -----------------------------------

    def _excluded(self, tariff: Tariff) -> bool:
        return not tariff.tags.isdisjoint(self.terms.excluded_tariff_tags)

    def _cash_in_time(self, subscriber: Subscriber) -> tuple[int, int]:
        """What the subscriber owes «Cash in Time»: (debt, unpaid fee)."""
        option = subscriber.option(self.terms.cash_in_time_option)
        if option is None:
            return 0, 0
        debt, fee = option.params.get("debt", 0), option.params.get("fee", 0)
        return (debt if isinstance(debt, int) else 0), (fee if isinstance(fee, int) else 0)

    def _check(
        self, sender_msisdn: str, recipient_msisdn: str, destination: str, minutes: int, now: int
    ) -> _Refused | _Plan:
        terms, world = self.terms, self.world
        base = {
            "recipient": _national(recipient_msisdn),
            "minutes": minutes,
            "destination": self._destination_names[destination],
        }

        def refuse(reason: Refusal, **extra: object) -> _Refused:
            return _Refused(reason=reason, params={**base, **extra})

        sender = world.find(sender_msisdn)
        if sender is None or sender.profile != self.profile.name:
            return refuse(Refusal.SENDER_UNKNOWN)
        if sender.status is not SubscriberStatus.ACTIVE:
            return refuse(Refusal.SENDER_NOT_ACTIVE)
        tariff = self.profile.tariff(sender.tariff)
        if tariff.payment is not Payment.PREPAID:
            return refuse(Refusal.SENDER_NOT_PREPAID)
        if self._excluded(tariff):
            return refuse(Refusal.SENDER_VISITOR)
        debt, owed_fee = self._cash_in_time(sender)
        if debt > 0:
            return refuse(Refusal.SENDER_CASH_IN_TIME_DEBT, amount=debt)
        if owed_fee > 0:
            return refuse(Refusal.SENDER_CASH_IN_TIME_FEE, amount=owed_fee)
        # One read of the top-ups answers both TS-04 (any in 31 days) and TS-09 (how much).
        since = now - max(terms.last_topup_within, terms.window)
        topups = world.topups(sender_msisdn, since=since)
        if not any(t.at >= now - terms.last_topup_within for t in topups):
            return refuse(Refusal.SENDER_NO_RECENT_TOPUP, days=terms.last_topup_within // 86_400)
        paid_in = sum(t.amount for t in topups if t.at >= now - terms.window)
        fee = 0 if paid_in >= terms.free_after_topups_of else terms.fee
        if sender.balance - fee < terms.min_credit_after_fee:
            return refuse(
                Refusal.SENDER_LOW_CREDIT,
                balance=sender.balance,
                fee=fee,
                minimum=terms.min_credit_after_fee,
            )
        packages = world.usable_packages(
            sender_msisdn, UsageKind.VOICE, now=now, destination=destination, exact=True
        )
        available = sum(p.remaining for p in packages)
        if available < terms.minutes_min:
            return refuse(
                Refusal.SENDER_TOO_FEW_MINUTES, available=available, minimum=terms.minutes_min
            )
        if available < minutes:
            return refuse(Refusal.SENDER_NOT_ENOUGH_MINUTES, available=available)
        sent = self._sum(True, sender_msisdn, now - terms.window)
        if sent + minutes > terms.send_limit:
            return refuse(
                Refusal.SENDER_SEND_LIMIT,
                sent=sent,
                limit=terms.send_limit,
                days=terms.window_days,
                left=max(0, terms.send_limit - sent),
            )

        recipient = world.find(recipient_msisdn)
        if recipient is None or recipient.profile != self.profile.name:
            return refuse(Refusal.RECIPIENT_UNKNOWN)
        if recipient.msisdn == sender.msisdn:
            return refuse(Refusal.RECIPIENT_IS_SENDER)
        if recipient.status is not SubscriberStatus.ACTIVE:
            return refuse(Refusal.RECIPIENT_NOT_ACTIVE)
        recipient_tariff = self.profile.tariff(recipient.tariff)
        if recipient_tariff.payment is not Payment.PREPAID:
            return refuse(Refusal.RECIPIENT_NOT_PREPAID)
        if self._excluded(recipient_tariff):
            return refuse(Refusal.RECIPIENT_VISITOR)
        debt, owed_fee = self._cash_in_time(recipient)
        if debt > 0:
            return refuse(Refusal.RECIPIENT_CASH_IN_TIME_DEBT)
        if owed_fee > 0:
            return refuse(Refusal.RECIPIENT_CASH_IN_TIME_FEE)
        received = self._sum(False, recipient_msisdn, now - terms.window)
        if received + minutes > terms.receive_limit:
            return refuse(
                Refusal.RECIPIENT_RECEIVE_LIMIT,
                limit=terms.receive_limit,
                days=terms.window_days,
                left=max(0, terms.receive_limit - received),
            )

        taking: list[tuple[Package, int]] = []
        wanted = minutes
        for package in packages:  # earliest expiry first
            portion = min(wanted, package.remaining)
            taking.append((package, portion))
            wanted -= portion
            if wanted == 0:
                break
        return _Plan(
            sender=sender,
            recipient=recipient,
            destination=destination,
            minutes=minutes,
            fee=fee,
            taking=tuple(taking),
            valid_until=self._validity(recipient_msisdn, destination, now),
        )

    def _validity(self, recipient: str, destination: str, now: int) -> int | None:
        """TS-08: 72 h from now, or the longer validity of the recipient's own minutes to the
        same destination (None: they have no end, and so have the received ones)."""
        until: int | None = now + self.terms.validity
        for package in self.world.usable_packages(
            recipient, UsageKind.VOICE, now=now, destination=destination, exact=True
        ):
            if package.valid_until is None:
                return None
            until = max(until, package.valid_until) if until is not None else None
        return until

    def _forget(self) -> None:
        self._sent.clear()
        self._received.clear()

    def _window(self, sent: bool, msisdn: str) -> list[tuple[int, int]]:
        cache = self._sent if sent else self._received
        rows = cache.get(msisdn)
        if rows is None:
            query = _SENT_ROWS if sent else _RECEIVED_ROWS
            rows = [(int(at), int(m)) for at, m in self._db.execute(query, (msisdn,))]
            if len(cache) >= self.world.cache_limit:
                cache.clear()
            cache[msisdn] = rows
        return rows

    def _sum(self, sent: bool, msisdn: str, since: int) -> int:
        """What the journal's ``SUM(minutes)`` of one party's rows at or after ``since`` is."""
        return sum(minutes for at, minutes in self._window(sent, msisdn) if at >= since)

    def _journal(
        self,
        *,
        at: int,
        sender: str,
        recipient: str,
        destination: str,
        minutes: int,
        fee: int = 0,
        valid_until: int | None = None,
        package_id: int | None = None,
        side: Side = Side.BOTH,
    ) -> int:
        """Insert one journal row and keep the windows in step; the row's id."""
        cursor = self._db.execute(
            _INSERT,
            (at, sender, recipient, destination, minutes, fee, valid_until, package_id, str(side)),
        )
        if side is not Side.RECIPIENT:
            held = self._sent.get(sender)
            if held is not None:
                held.append((at, minutes))
        if side is not Side.SENDER:
            held = self._received.get(recipient)
            if held is not None:
                held.append((at, minutes))
        return int(cursor.lastrowid or 0)

    # -- the move (TS-06, TS-08, TS-09) ---------------------------------------------------------

    def _execute(self, context: Context, plan: _Plan) -> Outcome:
        world, terms, now = self.world, self.terms, context.now
        sender, recipient = plan.sender.msisdn, plan.recipient.msisdn
        for package, portion in plan.taking:
            world.consume_package(package.id, portion)
        names = {
            "minutes": plan.minutes,
            "destination": self._destination_names[plan.destination],
            "sender": _national(sender),
        }
        granted = world.grant_package(
            recipient,
            kind=UsageKind.VOICE,
            amount=plan.minutes,
            now=now,
            valid_until=plan.valid_until,
            destination=plan.destination,
            source=PACKAGE_SOURCE,
            label=render_template(self.profile, PACKAGE_LABEL.key, names),
        )
        transfer_id = self._journal(
            at=now,
            sender=sender,
            recipient=recipient,
            destination=plan.destination,
            minutes=plan.minutes,
            fee=plan.fee,
            valid_until=plan.valid_until,
            package_id=granted.id,
        )
        balance = plan.sender.balance
        if plan.fee:
            # TS-04 guaranteed the credit stays at 2 лв. or more, so no low-balance notice.
            entry = world.debit(
                sender,
                plan.fee,
                now=now,
                reason=FEE_REASON,
                reference=f"{SERVICE}:{transfer_id}",
                detail=f"Time Share {plan.minutes} min to {recipient}",
            )
            balance = entry.balance_after
        confirmation = Params(
            {
                "minutes": plan.minutes,
                "destination": names["destination"],
                "recipient": _national(recipient),
                "balance": balance,
                **({"fee": plan.fee} if plan.fee else {}),
            }
        )
        template = SENT_WITH_FEE.key if plan.fee else SENT_FREE.key
        received = (
            Reply(
                to=recipient,
                sender=terms.sms_number,
                template=RECEIVED.key,
                params={**names, "until": plan.valid_until},
                profile=self.profile.name,
            )
            if plan.valid_until is not None
            else Reply(
                to=recipient,
                sender=terms.sms_number,
                template=RECEIVED_NO_END.key,
                params=names,
                profile=self.profile.name,
            )
        )
        replies: tuple[Reply, ...] = (received,)
        if context.channel == "ussd":
            # TS-06: both parties get an SMS even when the result is shown on the screen.
            own = Reply(
                to=sender,
                sender=terms.sms_number,
                template=template,
                params=confirmation,
                profile=self.profile.name,
            )
            replies = (own, received)
        return Outcome(
            screen=Screen(template=template, params=confirmation),
            replies=replies,
        )

    def _parse_refusal(self, reason: str) -> Outcome:
        return Outcome(screen=Screen(template=parse_error_template(reason)))

    # -- queries --------------------------------------------------------------------------------

    def sent_minutes(self, msisdn: str, *, now: int) -> int:
        """Minutes ``msisdn`` sent in the window ending at ``now`` (TS-04)."""
        return self._sum(True, msisdn, now - self.terms.window)

    def received_minutes(self, msisdn: str, *, now: int) -> int:
        """Minutes ``msisdn`` received in the window ending at ``now`` (TS-05)."""
        return self._sum(False, msisdn, now - self.terms.window)

    def transfers(self, msisdn: str | None = None) -> list[Transfer]:
        """The journal (of one party, sender or recipient), oldest first."""
        sql = f"SELECT {_COLUMNS} FROM time_share_transfers"
        args: tuple[str, ...] = ()
        if msisdn is not None:
            sql += " WHERE sender = ? OR recipient = ?"
            args = (msisdn, msisdn)
        rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
        return [
            Transfer(
                id=i,
                at=at,
                sender=s,
                recipient=r,
                destination=d,
                minutes=m,
                fee=f,
                valid_until=v,
                package_id=p,
                side=Side(side),
            )
            for i, at, s, r, d, m, f, v, p, side in rows
        ]

    # -- the demo's history (TS-04, TS-05 limits already partly used) --------------------------

    def seed_demo(self, demo: DemoSubscriber, *, now: int) -> int:
        """Record the Time Share past of one demo subscriber (``services.time_share``:
        ``sent``/``received`` lists of ``{ago, minutes, to|from, destination}``); the rows
        count toward that subscriber's limit only.  Returns how many rows were written."""
        rows = self._demo_history(demo)
        with self.world.transaction():
            for side, ago, minutes, other, destination in rows:
                sender, recipient = (
                    (demo.msisdn, other) if side is Side.SENDER else (other, demo.msisdn)
                )
                self._journal(
                    at=now - ago,
                    sender=sender,
                    recipient=recipient,
                    destination=destination,
                    minutes=minutes,
                    side=side,
                )
        return len(rows)

    def _demo_history(self, demo: DemoSubscriber) -> list[tuple[Side, int, int, str, str]]:
        raw = demo.services.get(SERVICE)
        if raw is None:
            return []
        index = next(i for i, d in enumerate(self.profile.demo) if d.msisdn == demo.msisdn)
        here: tuple[object, ...] = ("demo", index, "services", SERVICE)
        if not isinstance(raw, Mapping) or not set(raw) <= {"sent", "received"}:
            raise _error(self.profile, here, "expected a mapping with 'sent' and/or 'received'")
        rows = []
        for key, side, other_key in (
            ("sent", Side.SENDER, "to"),
            ("received", Side.RECIPIENT, "from"),
        ):
            for n, item in enumerate(raw.get(key, ())):
                path = (*here, key, n)
                if not isinstance(item, Mapping) or set(item) != {
                    "ago",
                    "minutes",
                    other_key,
                    "destination",
                }:
                    raise _error(
                        self.profile, path, f"expected ago, minutes, {other_key}, destination"
                    )
                ago = _read_duration(self.profile, (*path, "ago"), item["ago"])
                minutes = _read_whole(self.profile, (*path, "minutes"), item["minutes"], minimum=1)
                other = item[other_key]
                if not isinstance(other, str) or not self.profile.valid_msisdn(other):
                    raise _error(self.profile, (*path, other_key), "expected a wire MSISDN")
                destination = item["destination"]
                if destination not in self._destination_names:
                    raise _error(
                        self.profile,
                        (*path, "destination"),
                        f"expected one of {', '.join(self._destination_names)}",
                    )
                rows.append((side, ago, minutes, other, destination))
        return rows

    def _on_demo_loaded(
        self, profile: Profile, demo: DemoSubscriber, subscriber: Subscriber, now: int
    ) -> None:
        if profile.name == self.profile.name and SERVICE in demo.services:
            self.seed_demo(demo, now=now)
            self.world.set_setting(_DEMO_SEEDED, "1")

    def _catch_up_demo(self) -> None:
        """The gateway loads the demo before services install: seed what was missed, once."""
        loaded_at = self.world.get_setting("demo_loaded_at")
        if loaded_at is None or self.world.get_setting(_DEMO_SEEDED) is not None:
            return
        with self.world.transaction():
            for demo in self.profile.demo:
                if SERVICE in demo.services and self.world.exists(demo.msisdn):
                    self.seed_demo(demo, now=int(loaded_at))
            self.world.set_setting(_DEMO_SEEDED, "1")


_DEMO_SEEDED: Final = "time_share.demo_seeded"


def _check_templates(profile: Profile) -> None:
    keys: Iterable[str] = (
        *(refusal.template for refusal in Refusal),
        SENT_FREE.key,
        SENT_WITH_FEE.key,
        RECEIVED.key,
        RECEIVED_NO_END.key,
        PACKAGE_LABEL.key,
        *(parse_error_template(reason) for reason in SMS_PARSE_REASONS),
    )
    for key in keys:
        if key not in profile.templates:
            raise _error(profile, ("templates", key), "template missing (Time Share needs it)")


def install(world: World, directory: ServiceDirectory) -> TimeShare | None:
    """Register Time Share for the ``telenor`` profile (if loaded): SMS to 125 (TS-01), the
    ``TransferMinutes`` command and the My Menu action (TS-02).  ``ProfileError`` when the
    profile's terms, templates or demo history are broken."""
    if PROFILE not in world.profiles:
        return None
    profile = world.profiles[PROFILE]
    terms = read_terms(profile)
    _check_templates(profile)
    service = TimeShare(world, profile, terms)
    for demo in profile.demo:
        service._demo_history(demo)  # refuse a broken demo at start, not at load time
    directory.register_sms_number(PROFILE, terms.sms_number)
    directory.register_command(PROFILE, TransferMinutes, service.on_sms)
    directory.register_action(PROFILE, ACTION, service.on_menu)
    world.on_demo_loaded(service._on_demo_loaded)
    service._catch_up_demo()
    return service
