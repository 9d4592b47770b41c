"""The values of the operator's world and the one root of its refusals.

Subscribers, their options, packages, ledger entries, top-ups, recurring charges and fee
records are frozen attrs values read from the store by ``services.world.World``; nothing
here touches the database.  Money is integer minor units (kopecks, tiyn, stotinki), data
integer MB, voice integer minutes, time integer clock seconds.  Every refusal of the core is
a ``DomainError`` subclass whose ``code`` (stable, snake_case) the control API puts in its
JSON ``error`` field and whose ``http_status`` it answers with.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import ClassVar

import attrs

from services.outbox import Params, as_params

# -- registries -----------------------------------------------------------------------------


class SubscriberStatus(enum.StrEnum):
    """Account states the services' rules test (MP-16, TS-04, TS-05, MP-21)."""

    ACTIVE = "active"
    BLOCKED_FINANCIAL = "blocked_financial"
    BLOCKED_VOLUNTARY = "blocked_voluntary"
    TERMINATED = "terminated"


class Segment(enum.StrEnum):
    """Private person or business customer (TV-03 admits only private persons)."""

    PRIVATE = "private"
    BUSINESS = "business"


class UsageKind(enum.StrEnum):
    """What a subscriber consumes (SPEC CU-01): data in MB, voice in minutes, SMS by count."""

    DATA = "data"
    VOICE = "voice"
    SMS = "sms"


class Payment(enum.StrEnum):
    """How a tariff is paid: prepaid (balance never below zero) or postpaid (credit limit)."""

    PREPAID = "prepaid"
    POSTPAID = "postpaid"


class Period(enum.StrEnum):
    """How often a recurring charge falls due."""

    MONTH = "month"
    DAY = "day"


class FeeStatus(enum.StrEnum):
    """What became of a fee for a period (TV-08 asks "has every member paid?")."""

    PAID = "paid"
    UNPAID = "unpaid"
    SKIPPED = "skipped"  # not charged because the number was blocked (MP-17)


# -- refusals -------------------------------------------------------------------------------


class DomainError(Exception):
    """Root of the core's refusals; ``code`` is stable and goes on the wire as is."""

    code: ClassVar[str] = "domain_error"
    http_status: ClassVar[int] = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class UnknownMsisdn(DomainError):
    code = "unknown_msisdn"
    http_status = 404


class UnknownProfile(DomainError):
    code = "unknown_profile"
    http_status = 422


class UnknownTariff(DomainError):
    code = "unknown_tariff"
    http_status = 422


class UnknownOption(DomainError):
    code = "unknown_option"
    http_status = 422


class UnknownField(DomainError):
    code = "unknown_field"
    http_status = 422


class MissingField(DomainError):
    """A required body field or query parameter is absent (the control API's own code)."""

    code = "missing_field"
    http_status = 422


class WrongType(DomainError):
    code = "wrong_type"
    http_status = 422


class InvalidValue(DomainError):
    code = "invalid_value"
    http_status = 422


class DuplicateMsisdn(DomainError):
    code = "duplicate_msisdn"
    http_status = 409


class InsufficientFunds(DomainError):
    code = "insufficient_funds"
    http_status = 409


class InvalidTransition(DomainError):
    """A change the subscriber's state does not allow (a terminated number, for one)."""

    code = "invalid_transition"
    http_status = 409


#: Every refusal class by its code (the control API's table of error codes).
ERRORS: dict[str, type[DomainError]] = {
    cls.code: cls
    for cls in (
        DomainError,
        UnknownMsisdn,
        UnknownProfile,
        UnknownTariff,
        UnknownOption,
        UnknownField,
        WrongType,
        InvalidValue,
        DuplicateMsisdn,
        InsufficientFunds,
        InvalidTransition,
    )
}


# -- values ---------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class OptionState:
    """An option a subscriber has, since when, with its own facts (Visa card, debt…)."""

    code: str
    activated_at: int
    params: Params = attrs.field(factory=Params, converter=as_params)


@attrs.frozen(kw_only=True)
class Subscriber:
    """One number of one profile, as the store holds it now."""

    msisdn: str
    profile: str
    tariff: str
    status: SubscriberStatus
    owner_id: str
    region: str
    segment: Segment
    company: str | None
    account: str | None  # единый лицевой счёт shared by several numbers (TV-14)
    balance: int
    created_at: int
    tariff_since: int
    note: str
    options: tuple[OptionState, ...] = ()

    @property
    def active(self) -> bool:
        return self.status is SubscriberStatus.ACTIVE

    def option(self, code: str) -> OptionState | None:
        for state in self.options:
            if state.code == code:
                return state
        return None

    def has_option(self, code: str) -> bool:
        return self.option(code) is not None


@attrs.frozen(kw_only=True)
class Package:
    """An amount of data (MB), voice (minutes) or SMS a subscriber may use until a time."""

    id: int
    msisdn: str
    kind: UsageKind
    destination: str  # voice: 'any' pays every call; 'network', 'friends', 'home'… only those
    zone: str  # 'home', 'abroad' or 'everywhere'
    initial: int
    remaining: int
    valid_from: int
    valid_until: int | None  # None: no end
    source: str  # 'tariff', 'option:<code>', a service name, 'grant'
    label: str
    expired_at: int | None

    def usable(self, now: int) -> bool:
        return (
            self.expired_at is None
            and self.remaining > 0
            and self.valid_from <= now
            and (self.valid_until is None or now < self.valid_until)
        )


@attrs.frozen(kw_only=True)
class LedgerEntry:
    """One movement of money: negative is a charge, positive a credit."""

    id: int
    msisdn: str
    at: int
    amount: int
    balance_after: int
    reason: str  # stable code: 'opening_balance', 'top_up', 'usage:voice', 'fee', ...
    reference: str  # what it was for: a tariff/option/service code, a package id…
    detail: str


@attrs.frozen(kw_only=True)
class TopUp:
    """A payment onto the balance (TS-04 and TS-09 ask about the last 31 days)."""

    id: int
    msisdn: str
    at: int
    amount: int
    method: str  # 'cash', 'card', 'autopay', …; 'history' for a demo's past top-ups


@attrs.frozen(kw_only=True)
class SubscriberChanged:
    """A field of a subscriber changed; hooks see it inside the same transaction (MP-21).

    ``field`` is one of ``tariff``, ``status``, ``owner_id``, ``region``, ``segment``,
    ``company``, ``account``, ``note`` or ``option:<code>`` (``old``/``new`` then ``'on'``
    or ``'off'``).
    """

    msisdn: str
    field: str
    old: str | None
    new: str | None
    at: int


@attrs.frozen(kw_only=True)
class RecurringCharge:
    """A charge that falls due again and again: the tariff fee, an option, a service's own.

    ``part``/``period_start``/``period_end`` track a fee paid in instalments (TV-12):
    part 1 is due at the period start, part 2 in the middle of the period.
    """

    msisdn: str
    code: str  # 'tariff', 'option:<code>', or a service's own code
    owner: str  # 'core' or the service whose handler runs it
    amount: int
    period: Period
    anchor_day: int  # day of the month monthly charges fall on (clamped to short months)
    next_at: int
    part: int
    period_start: int | None
    period_end: int | None
    created_at: int


@attrs.frozen(kw_only=True)
class FeeAdjustment:
    """A change to a fee before it is charged (a discount, TV-05): the new amount and why."""

    amount: int
    reason: str
    detail: str = ""


@attrs.frozen(kw_only=True)
class FeeRecord:
    """What was due and what was charged for one period (or one instalment) of a fee."""

    id: int
    msisdn: str
    code: str
    period_start: int
    period_end: int
    part: int
    amount_due: int  # before adjustments
    amount_charged: int
    status: FeeStatus
    at: int
    detail: str


@attrs.frozen(kw_only=True)
class UsageRecord:
    """One consumption the core recorded (SPEC CU-01), with how it was paid."""

    id: int
    msisdn: str
    at: int
    kind: UsageKind
    amount: int
    destination: str
    abroad: bool
    country: str | None
    paid_by: tuple[tuple[str, int], ...]
    billed: int
    refused: int


def to_json(value: object) -> object:
    """A core value as plain JSON data: attrs values → objects, enums → their values."""
    if attrs.has(type(value)):
        return {name: to_json(item) for name, item in attrs.asdict(value, recurse=False).items()}  # type: ignore[arg-type]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(item) for item in value]
    return value
