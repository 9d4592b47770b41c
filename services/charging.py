"""Charging: who pays for a use (SPEC CU-01, CU-02), and the fees of each billing day.

**Usage.** ``record_usage`` takes one use of data (MB), voice (minutes) or SMS by a
subscriber, at home or abroad, and pays for it in this order, unit by unit:

1. the usage sources services registered with ``world.add_usage_source`` (lowest
   priority first) — e.g. the MTS shared bundle with its personal limits (MP-11, MP-12);
2. the subscriber's own packages of that kind and destination, earliest expiry first
   (a voice package for ``any`` destination pays every call; abroad only packages of zone
   ``abroad``/``everywhere`` pay, plus the home packages when an option's ``roaming``
   covers the country and its fee for the day is paid — «Забугорище»);
3. the own tariff's per-unit rate from the balance (``rates`` or ``abroad``), as far as
   balance plus credit limit reach.  Data with no package and no per-MB rate is refused
   (internet suspended), as is whatever the money does not cover.

The result says which source paid how much, what was billed and what was refused, with
the notices it causes (package spent, internet suspended, insufficient funds, low
balance).  A person-to-person SMS through the gateway is one SMS of usage
(``charge_p2p_sms``).

**The usage-source protocol.** A source is any object with a ``name`` and
``claim(world, usage, remaining) -> Claim | None``, called inside the transaction with
what is still unpaid.  ``None`` means "not mine".  A ``Claim`` lists what the source paid
(``paid``: ``(source_label, amount)`` pairs, at most ``remaining`` in all — the source
itself updates whatever it counts) and what happens to the rest (``then``):
``CONTINUE`` to the next source and the own packages, ``BILL`` straight to the own
tariff's rates (skipping the own packages: MP-12's minutes over a personal limit), or
``REFUSE`` (MP-13's suspended own internet, MP-16, MP-22), with its ``replies`` and a
``reason`` code.  A source may charge money itself (MP-22's surcharge to the initiator,
``charge_roaming_day``) through the world's ledger.

**Fees.** Every subscriber has a recurring charge ``tariff`` (the monthly fee, even when
it is zero: it renews the tariff's packages each period); options with a fee or packages
have ``option:<code>``; services add their own with ``world.schedule_recurring`` and a
handler (``world.set_recurring_handler``).  The Timeline item ``recurring_charges`` runs
them on their due times in order.  The core's handler (``bill_recurring``) charges the
tariff fee on the billing day (monthly on the connection date, or on the tariff's fixed
day; in two instalments for an instalment tariff, TV-12; not before a «2 недели
бесплатно» promo ends), through ``collect_fee``: the fee adjusters of the services run
first (a discount, TV-05), then the net amount is debited, or the period is recorded as
unpaid and charged at the next top-up or unblock; a blocked number's period is recorded as
skipped.  Each outcome is a ``FeeResult`` given to the ``on_fee`` hooks and kept as a fee
record, so ``world.has_paid_fee`` answers TV-08.  An option whose fee cannot be paid is
turned off.  The Timeline item ``package_expiry`` ends packages at their ``valid_until``.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Protocol

import attrs

from services.clock import DAY, add_months, day_of_month, local_day, next_day_of_month
from services.model import (
    DomainError,
    FeeAdjustment,
    FeeStatus,
    InsufficientFunds,
    InvalidValue,
    Period,
    RecurringCharge,
    Subscriber,
    SubscriberStatus,
    UsageKind,
    WrongType,
)
from services.outbox import Reply, require_template
from services.profiles import OptionDef, Profile, Rates, Tariff

if TYPE_CHECKING:
    from services.world import World

__all__ = [
    "Claim",
    "FeeAdjustment",
    "FeeContext",
    "FeeResult",
    "Then",
    "Usage",
    "UsageResult",
    "UsageSource",
    "bill_recurring",
    "charge_p2p_sms",
    "charge_roaming_day",
    "collect_fee",
    "install",
    "record_usage",
    "retry_unpaid_fees",
    "start_option",
    "start_tariff",
]

FEE_CHARGED = require_template("fee_charged", "name", "fee", "balance")
FEE_NOT_PAID = require_template("fee_not_paid", "name", "fee", "balance")
PACKAGE_EXHAUSTED = require_template("package_exhausted", "package")
INTERNET_SUSPENDED = require_template("internet_suspended")
INSUFFICIENT_FUNDS = require_template("insufficient_funds", "balance")
ROAMING_DAY_CHARGED = require_template("roaming_day_charged", "option", "fee")

TARIFF: str = "tariff"


# -- usage ------------------------------------------------------------------------------------


class Then(enum.StrEnum):
    """What happens to the part of a use a source did not pay."""

    CONTINUE = "continue"  # next source, then the own packages, then the tariff's rates
    BILL = "bill"  # the own tariff's rates only
    REFUSE = "refuse"  # not served (internet suspended, …)


@attrs.frozen(kw_only=True)
class Usage:
    """One use being charged, as usage sources see it."""

    subscriber: Subscriber
    kind: UsageKind
    amount: int
    destination: str
    abroad: bool
    country: str | None
    at: int


@attrs.frozen(kw_only=True)
class Claim:
    """A usage source's answer: what it paid and what becomes of the rest."""

    paid: tuple[tuple[str, int], ...] = ()
    then: Then = Then.CONTINUE
    replies: tuple[Reply, ...] = ()
    reason: str = ""


class UsageSource(Protocol):
    """A service's way of paying usage before the own packages (see the module docstring)."""

    @property
    def name(self) -> str: ...

    def claim(self, world: World, usage: Usage, remaining: int) -> Claim | None: ...


@attrs.frozen(kw_only=True)
class UsageResult:
    """How one use was paid (SPEC CU-01): ``sum(paid_by) + refused == amount``."""

    msisdn: str
    kind: UsageKind
    amount: int
    destination: str
    abroad: bool
    country: str | None
    paid_by: tuple[tuple[str, int], ...]  # ('package:<id>', n), ('tariff', n), (source, n)
    billed: int  # money charged by the own tariff's rates, minor units
    refused: int
    refusal: (
        str | None
    )  # not_active | internet_suspended | insufficient_funds | not_sold | a source's
    replies: tuple[Reply, ...]


def _usage_kind(kind: UsageKind | str) -> UsageKind:
    try:
        return UsageKind(kind)
    except ValueError:
        raise InvalidValue(f"kind must be data, voice or sms, got {kind!r}", field="kind") from None


def _roaming_option(
    subscriber: Subscriber, profile: Profile, country: str | None
) -> OptionDef | None:
    for state in subscriber.options:
        definition = profile.options.get(state.code)
        if definition and definition.roaming and country in definition.roaming.countries:
            return definition
    return None


def charge_roaming_day(
    world: World, payer: str, option: OptionDef, *, now: int
) -> tuple[bool, list[Reply]]:
    """The option's fee for this local day, charged at most once a day (MP-22, Забугорище).

    Returns whether the day is paid (already, or now) and the notice of a new charge.
    """
    if option.roaming is None:
        raise InvalidValue(f"option {option.code!r} has no roaming terms", field="option")
    profile = world.profile_of(payer)
    reference = f"{option.code}:{local_day(now, profile.settings.utc_offset)}"
    if world.has_ledger_entry(payer, reason="roaming_day", reference=reference):
        return True, []
    fee = option.roaming.daily_fee
    if fee == 0:
        return True, []
    if world.spendable(payer) < fee:
        return False, []
    entry = world.debit(payer, fee, now=now, reason="roaming_day", reference=reference)
    notice = world.notice(payer, ROAMING_DAY_CHARGED.key, option=option.name, fee=fee)
    return True, [notice, *world.notices_for(entry)]


def record_usage(
    world: World,
    msisdn: str,
    kind: UsageKind | str,
    amount: int,
    *,
    destination: str = "any",
    abroad: bool = False,
    country: str | None = None,
    now: int,
) -> UsageResult:
    """Charge one use (SPEC CU-01) and record it; see the module docstring for the order."""
    the_kind = _usage_kind(kind)
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise WrongType(f"amount must be a whole number, got {amount!r}", field="amount")
    if amount <= 0:
        raise InvalidValue(f"amount must be positive, got {amount}", field="amount")
    if not isinstance(abroad, bool):
        raise WrongType("abroad must be true or false", field="abroad")
    if country is not None and (not isinstance(country, str) or len(country) != 2):
        raise InvalidValue(
            f"country is a two-letter code like 'TR', got {country!r}", field="country"
        )
    if abroad and country is None:
        raise InvalidValue("use abroad needs the country", field="country")
    with world.transaction():
        subscriber = world.get(msisdn)
        profile = world.profile_of(subscriber)
        if destination not in profile.destinations:
            raise InvalidValue(
                f"destination must be one of {', '.join(profile.destinations)},"
                f" got {destination!r}",
                field="destination",
            )
        result = _charge(
            world, subscriber, profile, the_kind, amount, destination, abroad, country, now
        )
        world.log_usage(
            msisdn,
            at=now,
            kind=the_kind,
            amount=amount,
            destination=destination,
            abroad=abroad,
            country=country,
            paid_by=result.paid_by,
            billed=result.billed,
            refused=result.refused,
        )
        return result


def _charge(
    world: World,
    subscriber: Subscriber,
    profile: Profile,
    kind: UsageKind,
    amount: int,
    destination: str,
    abroad: bool,
    country: str | None,
    now: int,
) -> UsageResult:
    paid: list[tuple[str, int]] = []
    replies: list[Reply] = []
    billed = 0
    refusal: str | None = None
    remaining = amount
    then = Then.CONTINUE

    if subscriber.status is not SubscriberStatus.ACTIVE:
        then, refusal = Then.REFUSE, "not_active"
    else:
        usage = Usage(
            subscriber=subscriber, kind=kind, amount=amount, destination=destination,
            abroad=abroad, country=country, at=now,
        )  # fmt: skip
        for source in world.usage_sources:
            claim = source.claim(world, usage, remaining)
            if claim is None:
                continue
            taken = sum(n for _, n in claim.paid)
            if any(n < 0 for _, n in claim.paid) or taken > remaining:
                raise DomainError(f"usage source {source.name!r} paid {taken} of {remaining}")
            paid.extend(claim.paid)
            replies.extend(claim.replies)
            remaining -= taken
            then = claim.then
            if then is Then.REFUSE:
                refusal = claim.reason or source.name
            if then is not Then.CONTINUE or remaining == 0:
                break

    if remaining and then is Then.CONTINUE:
        zones = ["abroad", "everywhere"] if abroad else ["home", "everywhere"]
        if abroad and (option := _roaming_option(subscriber, profile, country)) is not None:
            own = world.available(subscriber.msisdn, kind, now=now, destination=destination)
            roaming = world.available(
                subscriber.msisdn, kind, now=now, destination=destination, zones=zones
            )
            # The day's fee is due only when the home packages are really needed.
            if remaining > roaming and own > 0:
                day_paid, notices = charge_roaming_day(world, subscriber.msisdn, option, now=now)
                replies.extend(notices)
                if day_paid:
                    zones.append("home")
        for package, portion in world.take_from_packages(
            subscriber.msisdn, kind, remaining, now=now, destination=destination, zones=zones
        ):
            paid.append((f"package:{package.id}", portion))
            remaining -= portion
            if package.remaining == 0:
                replies.append(
                    world.notice(
                        subscriber.msisdn, PACKAGE_EXHAUSTED.key, package=package.label or str(kind)
                    )
                )

    if remaining and then is not Then.REFUSE:
        tariff = world.tariff_of(subscriber)
        rates: Rates | None = tariff.abroad if abroad else tariff.rates
        price = None if rates is None else rates.price(kind, destination)
        if price is None:
            refusal = "internet_suspended" if kind is UsageKind.DATA else "not_sold"
            if kind is UsageKind.DATA:
                replies.append(world.notice(subscriber.msisdn, INTERNET_SUSPENDED.key))
        else:
            units = (
                remaining
                if price == 0
                else min(remaining, max(world.spendable(subscriber.msisdn), 0) // price)
            )
            if units:
                billed = units * price
                paid.append((TARIFF, units))
                remaining -= units
                if billed:
                    entry = world.debit(
                        subscriber.msisdn, billed, now=now, reason=f"usage:{kind}",
                        reference=destination, detail=f"{units} × {price}",
                    )  # fmt: skip
                    replies.extend(world.notices_for(entry))
            if remaining:
                refusal = "insufficient_funds"
                balance = world.get(subscriber.msisdn).balance
                replies.append(
                    world.notice(subscriber.msisdn, INSUFFICIENT_FUNDS.key, balance=balance)
                )

    return UsageResult(
        msisdn=subscriber.msisdn,
        kind=kind,
        amount=amount,
        destination=destination,
        abroad=abroad,
        country=country,
        paid_by=tuple(paid),
        billed=billed,
        refused=remaining,
        refusal=refusal if remaining else None,
        replies=tuple(replies),
    )


def charge_p2p_sms(world: World, msisdn: str, now: int) -> UsageResult | None:
    """A person-to-person SMS sent through the gateway, charged as one SMS (SPEC CU-02).

    None when the sender is not a subscriber of the simulator (nothing to charge);
    ``refused == 1`` when the sender may not send it (blocked, no money).
    """
    if not world.exists(msisdn):
        return None  # a number outside the simulator: nobody here to charge
    return record_usage(world, msisdn, UsageKind.SMS, 1, now=now)


# -- fees ---------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class FeeContext:
    """A fee about to be charged, as fee adjusters see it (``amount``: after earlier ones)."""

    subscriber: Subscriber
    code: str
    name: str
    gross: int
    amount: int
    period_start: int
    period_end: int
    part: int
    at: int


@attrs.frozen(kw_only=True)
class FeeResult:
    """What became of one period's fee; ``on_fee`` hooks receive it."""

    msisdn: str
    code: str
    name: str
    period_start: int
    period_end: int
    part: int
    amount_due: int  # before adjustments
    amount: int  # after adjustments: what was (or would have been) charged
    adjustments: tuple[FeeAdjustment, ...]
    status: FeeStatus
    at: int
    replies: tuple[Reply, ...] = ()

    @property
    def paid(self) -> bool:
        return self.status is FeeStatus.PAID


def _run_fee_hooks(world: World, result: FeeResult, replies: list[Reply]) -> FeeResult:
    for hook in world.fee_hooks:
        replies.extend(hook(result))
    return attrs.evolve(result, replies=tuple(replies))


def collect_fee(
    world: World,
    msisdn: str,
    *,
    code: str,
    amount: int,
    now: int,
    period_start: int,
    period_end: int,
    part: int = 1,
    name: str = "",
    notify_unpaid: bool = True,
) -> FeeResult:
    """Charge one period's fee: adjusters, then the debit (or "unpaid"), record, hooks."""
    subscriber = world.get(msisdn)
    context = FeeContext(
        subscriber=subscriber, code=code, name=name or code, gross=amount, amount=amount,
        period_start=period_start, period_end=period_end, part=part, at=now,
    )  # fmt: skip
    adjustments = []
    net = amount
    for adjuster in world.fee_adjusters:
        adjustment = adjuster(attrs.evolve(context, amount=net))
        if adjustment is None:
            continue
        if adjustment.amount < 0:
            raise DomainError(f"a fee adjustment cannot make {code} negative: {adjustment}")
        adjustments.append(adjustment)
        net = adjustment.amount
    detail = "; ".join(f"{a.reason} {a.detail}".strip() for a in adjustments)
    replies: list[Reply] = []
    if net == 0 or world.spendable(subscriber) >= net:
        status = FeeStatus.PAID
        if net:
            entry = world.debit(msisdn, net, now=now, reason="fee", reference=code, detail=detail)
            replies.append(
                world.notice(
                    msisdn, FEE_CHARGED.key, name=context.name, fee=net, balance=entry.balance_after
                )
            )
            replies.extend(world.notices_for(entry))
    else:
        status = FeeStatus.UNPAID
        if notify_unpaid:
            replies.append(
                world.notice(
                    msisdn, FEE_NOT_PAID.key, name=context.name, fee=net, balance=subscriber.balance
                )
            )
    world.record_fee(
        msisdn, code=code, period_start=period_start, period_end=period_end, part=part,
        amount_due=amount, amount_charged=net if status is FeeStatus.PAID else 0,
        status=status, at=now, detail=detail,
    )  # fmt: skip
    result = FeeResult(
        msisdn=msisdn, code=code, name=context.name, period_start=period_start,
        period_end=period_end, part=part, amount_due=amount, amount=net,
        adjustments=tuple(adjustments), status=status, at=now,
    )  # fmt: skip
    return _run_fee_hooks(world, result, replies)


def skip_fee(
    world: World,
    msisdn: str,
    *,
    code: str,
    amount: int,
    now: int,
    period_start: int,
    period_end: int,
    part: int = 1,
    name: str = "",
) -> FeeResult:
    """Record a period's fee as not charged because the number is blocked (MP-17)."""
    world.record_fee(
        msisdn, code=code, period_start=period_start, period_end=period_end, part=part,
        amount_due=amount, amount_charged=0, status=FeeStatus.SKIPPED, at=now, detail="blocked",
    )  # fmt: skip
    result = FeeResult(
        msisdn=msisdn, code=code, name=name or code, period_start=period_start,
        period_end=period_end, part=part, amount_due=amount, amount=0, adjustments=(),
        status=FeeStatus.SKIPPED, at=now,
    )  # fmt: skip
    return _run_fee_hooks(world, result, [])


def _first_instalment(tariff: Tariff) -> int:
    return (
        tariff.monthly_fee - tariff.monthly_fee // 2
        if tariff.fee_instalments == 2
        else tariff.monthly_fee
    )


def _period_end(tariff: Tariff, start: int, anchor_day: int, utc_offset: int) -> int:
    if tariff.billing_day is None:
        return add_months(start, 1, day=anchor_day, utc_offset=utc_offset)
    return next_day_of_month(start, tariff.billing_day, utc_offset=utc_offset)


def _promo_end(subscriber: Subscriber, profile: Profile, now: int) -> int | None:
    """The end of a running «2 недели бесплатно»-like promo (the fee starts after it)."""
    for state in subscriber.options:
        definition = profile.options.get(state.code)
        if definition is not None and definition.fee_free_days:
            end = state.activated_at + definition.fee_free_days * DAY
            if end > now:
                return end
    return None


def _schedule_tariff(
    world: World, msisdn: str, tariff: Tariff, start: int, end: int, anchor_day: int, now: int
) -> None:
    if tariff.fee_instalments == 2:
        world.schedule_recurring(
            msisdn, TARIFF, amount=tariff.monthly_fee, period=Period.MONTH,
            next_at=start + (end - start) // 2, now=now, anchor_day=anchor_day, part=2,
            period_start=start, period_end=end,
        )  # fmt: skip
    else:
        world.schedule_recurring(
            msisdn, TARIFF, amount=tariff.monthly_fee, period=Period.MONTH, next_at=end,
            now=now, anchor_day=anchor_day,
        )  # fmt: skip


def _open_tariff_period(
    world: World,
    subscriber: Subscriber,
    tariff: Tariff,
    start: int,
    anchor_day: int,
    *,
    mode: str,
) -> list[Reply]:
    """Charge (or record) the fee of a period starting at ``start`` and renew its packages.

    ``mode``: ``charge`` (the billing day), ``strict`` (a tariff change: unpaid is refused),
    ``paid``/``unpaid`` (a new subscriber's current period, taken as it is).
    """
    profile = world.profile_of(subscriber)
    utc_offset = profile.settings.utc_offset
    msisdn = subscriber.msisdn
    promo_end = _promo_end(subscriber, profile, start)
    if promo_end is not None:
        world.record_fee(
            msisdn, code=TARIFF, period_start=start, period_end=promo_end, part=1, amount_due=0,
            amount_charged=0, status=FeeStatus.PAID, at=start, detail="promo",
        )  # fmt: skip
        world.grant_packages(
            msisdn, tariff.packages, now=start, valid_until=promo_end, source=TARIFF
        )
        anchor = tariff.billing_day or day_of_month(promo_end, utc_offset)
        world.schedule_recurring(
            msisdn, TARIFF, amount=tariff.monthly_fee, period=Period.MONTH, next_at=promo_end,
            now=start, anchor_day=anchor,
        )  # fmt: skip
        return []
    end = _period_end(tariff, start, anchor_day, utc_offset)
    amount = _first_instalment(tariff)
    replies: list[Reply] = []
    paid = True
    if mode in ("paid", "unpaid"):
        paid = mode == "paid" or amount == 0
        world.record_fee(
            msisdn, code=TARIFF, period_start=start, period_end=end, part=1, amount_due=amount,
            amount_charged=0, status=FeeStatus.PAID if paid else FeeStatus.UNPAID, at=start,
            detail="current period at creation",
        )  # fmt: skip
    elif subscriber.status is not SubscriberStatus.ACTIVE:
        replies += skip_fee(
            world, msisdn, code=TARIFF, amount=amount, now=start, period_start=start,
            period_end=end, name=tariff.name,
        ).replies  # fmt: skip
        paid = False
    else:
        result = collect_fee(
            world, msisdn, code=TARIFF, amount=amount, now=start, period_start=start,
            period_end=end, name=tariff.name,
        )  # fmt: skip
        if mode == "strict" and not result.paid:
            raise InsufficientFunds(
                f"{msisdn} cannot pay the first fee of {tariff.name} ({result.amount})",
                field="tariff",
            )
        replies += result.replies
        paid = result.paid
    if paid:
        world.grant_packages(msisdn, tariff.packages, now=start, valid_until=end, source=TARIFF)
    _schedule_tariff(world, msisdn, tariff, start, end, anchor_day, start)
    return replies


def start_tariff(
    world: World, msisdn: str, tariff: Tariff, now: int, *, charge: bool, paid: bool = True
) -> list[Reply]:
    """Begin a tariff's first period now: on creation (``charge=False``) or a change.

    The previous tariff's packages end and its open period is closed at ``now``.
    """
    subscriber = world.get(msisdn)
    world.cancel_recurring(msisdn, TARIFF)
    world.expire_packages(msisdn, now=now, source=TARIFF)
    world.close_fee_periods(msisdn, TARIFF, now=now)
    if subscriber.status is SubscriberStatus.TERMINATED:
        return []
    utc_offset = world.profile_of(subscriber).settings.utc_offset
    anchor = tariff.billing_day or day_of_month(now, utc_offset)
    mode = "strict" if charge else ("paid" if paid else "unpaid")
    return _open_tariff_period(world, subscriber, tariff, now, anchor, mode=mode)


def start_option(
    world: World, msisdn: str, definition: OptionDef, activated_at: int, *, now: int, charge: bool
) -> list[Reply]:
    """Grant an option's packages and schedule its renewal; with ``charge``, its fee now.

    ``InsufficientFunds`` when the first fee cannot be paid (the option is not turned on).
    """
    code = f"option:{definition.code}"
    profile = world.profile_of(msisdn)
    utc_offset = profile.settings.utc_offset
    replies: list[Reply] = []
    if definition.renewal == "none":
        end = None if definition.validity is None else activated_at + definition.validity
        fee_end = now + DAY if end is None or end <= now else end
    else:
        anchor = day_of_month(activated_at, utc_offset)
        months = 1
        end = add_months(activated_at, months, day=anchor, utc_offset=utc_offset)
        while end <= now:
            months += 1
            end = add_months(activated_at, months, day=anchor, utc_offset=utc_offset)
        fee_end = end
    if charge and definition.fee:
        result = collect_fee(
            world, msisdn, code=code, amount=definition.fee, now=now, period_start=now,
            period_end=fee_end, name=definition.name, notify_unpaid=False,
        )  # fmt: skip
        if not result.paid:
            raise InsufficientFunds(
                f"{msisdn} cannot pay {definition.name} ({result.amount})", field="options"
            )
        replies += result.replies
    if definition.packages and (end is None or end > now):
        world.grant_packages(msisdn, definition.packages, now=now, valid_until=end, source=code)
    if definition.renewal == "monthly" and (definition.fee or definition.packages):
        assert end is not None
        world.schedule_recurring(
            msisdn, code, amount=definition.fee, period=Period.MONTH, next_at=end,
            now=now, anchor_day=day_of_month(activated_at, utc_offset),
        )  # fmt: skip
    return replies


def retry_unpaid_fees(world: World, msisdn: str, *, now: int) -> list[Reply]:
    """Charge the current period's tariff fee left unpaid or skipped (after a top-up/unblock)."""
    subscriber = world.get(msisdn)
    if subscriber.status is not SubscriberStatus.ACTIVE:
        return []
    tariff = world.tariff_of(subscriber)
    replies: list[Reply] = []
    for record in world.fee_records(msisdn, code=TARIFF):
        if record.status is FeeStatus.PAID or record.period_end <= now:
            continue
        result = collect_fee(
            world, msisdn, code=TARIFF, amount=record.amount_due, now=now,
            period_start=record.period_start, period_end=record.period_end, part=record.part,
            name=tariff.name, notify_unpaid=False,
        )  # fmt: skip
        replies += result.replies
        if not result.paid:
            break
        if record.part == 1:
            world.grant_packages(
                msisdn, tariff.packages, now=now, valid_until=record.period_end, source=TARIFF
            )
    return replies


# -- billing days on the timeline ------------------------------------------------------------------


def bill_recurring(world: World, charge: RecurringCharge, due: int) -> list[Reply]:
    """The core's handler for its recurring charges (``tariff``, ``option:<code>``, others).

    Services that own a charge may call it for the plain monthly behaviour.
    """
    subscriber = world.find(charge.msisdn)
    if subscriber is None or subscriber.status is SubscriberStatus.TERMINATED:
        world.cancel_recurring(charge.msisdn, charge.code)
        return []
    profile = world.profile_of(subscriber)
    if charge.code == TARIFF:
        return _bill_tariff(world, subscriber, charge, due)
    if charge.code.startswith("option:"):
        return _bill_option(world, subscriber, profile, charge, due)
    return _bill_plain(world, subscriber, profile, charge, due)


def _bill_tariff(
    world: World, subscriber: Subscriber, charge: RecurringCharge, due: int
) -> list[Reply]:
    tariff = world.tariff_of(subscriber)
    if charge.part == 2 and charge.period_start is not None and charge.period_end is not None:
        replies = _collect_or_skip(
            world, subscriber, code=TARIFF, amount=tariff.monthly_fee // 2, due=due,
            period_start=charge.period_start, period_end=charge.period_end, part=2,
            name=tariff.name,
        )  # fmt: skip
        world.reschedule(charge, next_at=charge.period_end, part=1)
        return replies
    return _open_tariff_period(world, subscriber, tariff, due, charge.anchor_day, mode="charge")


def _collect_or_skip(
    world: World,
    subscriber: Subscriber,
    *,
    code: str,
    amount: int,
    due: int,
    period_start: int,
    period_end: int,
    part: int,
    name: str,
) -> list[Reply]:
    """Collect a fee from an active subscriber; record it as skipped for a blocked one."""
    collect = collect_fee if subscriber.active else skip_fee
    result = collect(
        world, subscriber.msisdn, code=code, amount=amount, now=due, period_start=period_start,
        period_end=period_end, part=part, name=name,
    )  # fmt: skip
    return list(result.replies)


def _next_due(charge: RecurringCharge, due: int, profile: Profile) -> int:
    if charge.period is Period.DAY:
        return due + DAY
    return add_months(due, 1, day=charge.anchor_day, utc_offset=profile.settings.utc_offset)


def _bill_option(
    world: World, subscriber: Subscriber, profile: Profile, charge: RecurringCharge, due: int
) -> list[Reply]:
    code = charge.code.removeprefix("option:")
    definition = profile.options.get(code)
    if definition is None or not subscriber.has_option(code):
        world.cancel_recurring(subscriber.msisdn, charge.code)
        return []
    end = _next_due(charge, due, profile)
    replies: list[Reply] = []
    if not subscriber.active:
        replies += _collect_or_skip(
            world, subscriber, code=charge.code, amount=charge.amount, due=due,
            period_start=due, period_end=end, part=1, name=definition.name,
        )  # fmt: skip
        world.reschedule(charge, next_at=end)
        return replies
    result = collect_fee(
        world, subscriber.msisdn, code=charge.code, amount=charge.amount, now=due,
        period_start=due, period_end=end, name=definition.name,
    )  # fmt: skip
    replies += result.replies
    if result.paid:
        world.grant_packages(
            subscriber.msisdn, definition.packages, now=due, valid_until=end, source=charge.code
        )
        world.reschedule(charge, next_at=end)
    else:
        replies += world.remove_option(subscriber.msisdn, code, now=due)
    return replies


def _bill_plain(
    world: World, subscriber: Subscriber, profile: Profile, charge: RecurringCharge, due: int
) -> list[Reply]:
    end = _next_due(charge, due, profile)
    replies = _collect_or_skip(
        world, subscriber, code=charge.code, amount=charge.amount, due=due, period_start=due,
        period_end=end, part=1, name=charge.code,
    )  # fmt: skip
    world.reschedule(charge, next_at=end)
    return replies


def _fire_recurring(world: World, due: int) -> list[Reply]:
    replies: list[Reply] = []
    for listed in world.recurring_due(due):
        # An earlier handler of this instant may have cancelled or moved this charge.
        charge = world.get_recurring(listed.msisdn, listed.code)
        if charge is None or charge.next_at > due:
            continue
        handler = world.recurring_handler(charge.owner)
        replies.extend(
            bill_recurring(world, charge, due) if handler is None else handler(charge, due)
        )
    return replies


def _fire_expiry(world: World, due: int) -> list[Reply]:
    replies: list[Reply] = []
    expired = world.expire_due_packages(due)
    for hook in world.expiry_hooks:
        for package in expired:
            replies.extend(hook(package))
    return replies


def install(world: World) -> None:
    """Register the core's due work on the world's timeline (billing days, then expiry)."""
    world.timeline.register(
        "recurring_charges", world.next_recurring_at, lambda due: _fire_recurring(world, due)
    )
    world.timeline.register(
        "package_expiry", world.next_package_expiry, lambda due: _fire_expiry(world, due)
    )
