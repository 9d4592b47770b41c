"""Tele2 Russia «Выгодно вместе» (SPEC TV-01 … TV-14, seed 003): groups of Tele2 private
subscribers whose subscription fees are discounted by the size of the group.

This module owns the groups (who organizes, who is in, who joined and left when), the
discount each member gets at each subscription-fee charge, and the automatic departures
and disbanding.  Subscribers act by USSD (``*985*2#`` create, ``*985*7XXXXXXXXXX*2#`` join,
``*985*0*2#`` leave — command handlers in the :class:`~services.dispatch.ServiceDirectory`)
or through the self-care API (``TogetherService`` methods; ``add_routes`` mounts them on the
control API).  The discount is a fee adjuster of the core (``World.add_fee_adjuster``), so it
is applied exactly when the core charges the fee on a member's billing day (TV-06) and is
visible in the ledger entry's ``detail``; every decision is also kept in
``together_charges`` with the reason when there is none.  The terms (tariffs, sizes,
percentages, lags) are the profile's ``services.together`` facts, read and checked by
:func:`read_terms`.  The state lives in the store in this module's own tables
(:data:`MIGRATIONS`, applied once per state file).

Choices where seed 003 leaves a detail open (SPEC: "choose what a real operator would
do, write the choice in the module docstring"):

- Eligibility (TV-03) is checked in this order, and the first failure is the refusal:
  a subscriber of this operator (``not_tele2_subscriber``), active
  (``subscriber_not_active``), a private person (``not_private_person``), on an eligible
  tariff (``tariff_not_eligible``); then one group per subscriber (``already_in_group``).
- A join names the organizer's number; a number that organizes no group is refused
  (``group_not_found``) even when it is a member of one.  A full group (5) is refused
  (``group_full``).  The organizer may also add a number through the API (the seed's
  «Личный кабинет»); the number joins at once and is told by SMS how to leave.
- ``*985*0*2#`` from the organizer disbands the group (the seed gives the command only
  for participants; the group is the organizer's, so it ends with it), as does the
  organizer leaving automatically (TV-11).
- The size counts every member, with or without «Автоплатеж» (TV-07 keeps them in the
  group); the discount of a charge uses the size at that charge (TV-05, TV-06).
- TV-08 "paid": every member's fee records for the period containing the charge are
  paid (for a member whose new period begins at that very instant and is not charged
  yet, the previous period's).  A late payment of an unpaid period (after a top-up) is
  not discounted: the discount resumes at the next charge after everybody has paid.
- TV-09: the Visa bonus counts from ``card_registered_at`` (or the option's activation
  when the card time is not given) plus the whole lag, 3 days: the simulator always
  takes the longest lag the seed allows, so a tester can rely on it.  The bonus is only
  added to a group discount that is due (the seed: «при выполнении остальных условий»).
- TV-10: a group is disbanded 6 calendar months after its creation if it never had 3
  members in that time («менее трех на протяжении 6 месяцев»); a group that reached 3 is
  not disbanded by this rule even if it shrinks later (it then simply has no discount).
- TV-11: leaving the eligible tariffs, a new owner of the SIM (``owner_id``), becoming a
  business customer or termination make the member leave at once, with an SMS.
- TV-12: on an instalment tariff no discount is given until the second part of a fee on
  that tariff has been paid (the charges after it are discounted, both parts); during a
  «2 недели бесплатно» promo there is no fee and so no discount, and the first charge
  after it is discounted.
- TV-13: the personal offer (option ``personal_offer``, ``discount_percent``) is applied
  by this module to any subscriber who has it, in a group or not, so that the two
  discounts can be compared: the larger in money wins (the programme's on a tie).
- TV-14: «Автоплатеж» is checked on each number itself; an ЕЛС number never inherits it
  from another number of the same account.
- Discounts are rounded down to whole kopecks (percent of the fee being charged, which
  is one instalment on an instalment tariff).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Final, Literal, cast

import attrs

from parsers import ParseError
from parsers.commands import CreateTogetherGroup, JoinTogetherGroup, LeaveTogetherGroup
from parsers.msisdn import api_number
from services.charging import FeeContext
from services.clock import DAY, add_months, parse_duration
from services.dispatch import (
    ActionAnswer,
    ActionRegistry,
    ActionRequest,
    Context,
    Outcome,
    Screen,
    ServiceDirectory,
    check_fields,
)
from services.model import (
    DomainError,
    FeeAdjustment,
    FeeRecord,
    FeeStatus,
    InvalidValue,
    Segment,
    Subscriber,
    SubscriberChanged,
    SubscriberStatus,
    WrongType,
    to_json,
)
from services.outbox import Reply, require_template
from services.profiles import Profile, ProfileError
from services.world import World

SERVICE: Final = "together"
TARIFF_FEE: Final = "tariff"

# -- reply texts (fixtures/profiles/tele2ru.yaml, templates ``together.*``) -----------------------

_PROFILES: Final = ("tele2ru",)
CREATED = require_template("together.created", "organizer", profiles=_PROFILES)
JOINED = require_template("together.joined", "organizer", "size", "percent", profiles=_PROFILES)
ADDED = require_template("together.added", "organizer", "size", "percent", profiles=_PROFILES)
MEMBER_JOINED = require_template(
    "together.member_joined", "member", "size", "percent", profiles=_PROFILES
)
LEFT = require_template("together.left", "organizer", profiles=_PROFILES)
MEMBER_LEFT = require_template(
    "together.member_left", "member", "size", "percent", profiles=_PROFILES
)
REMOVED = require_template("together.removed", "organizer", profiles=_PROFILES)
DISBANDED = require_template("together.disbanded", "organizer", profiles=_PROFILES)
DISBANDED_BY_YOU = require_template("together.disbanded_by_you", "size", profiles=_PROFILES)
DISBANDED_SMALL = require_template(
    "together.disbanded_small", "organizer", "min_members", profiles=_PROFILES
)
AUTO_LEFT = {
    reason: require_template(f"together.auto_left.{reason}", "tariff", profiles=_PROFILES)
    for reason in ("tariff_changed", "owner_changed", "not_private")
}


# -- refusals -------------------------------------------------------------------------------------


class TogetherRefused(DomainError):
    """A «Выгодно вместе» request the rules refuse; ``code`` names the rule that did.

    ``number`` is the number the refusal is about (the asker, the organizer named in a
    join, the number being added) and ``tariff`` its tariff's name, for the reply text
    ``together.refused.<code>``.
    """

    code: ClassVar[str] = "together_refused"
    http_status: ClassVar[int] = 409

    def __init__(self, message: str, *, number: str, tariff: str = "") -> None:
        super().__init__(message, field="msisdn")
        self.number = number
        self.tariff = tariff

    @property
    def template(self) -> str:
        return f"together.refused.{self.code}"

    @property
    def params(self) -> dict[str, object]:
        return {"number": self.number, "tariff": self.tariff}


class NotTele2Subscriber(TogetherRefused):
    """TV-03: only Tele2 subscribers (of this profile) take part."""

    code = "not_tele2_subscriber"
    http_status = 404


class SubscriberNotActive(TogetherRefused):
    """A blocked or terminated number can neither create nor join a group."""

    code = "subscriber_not_active"


class NotPrivatePerson(TogetherRefused):
    """TV-03: only private persons, not business customers."""

    code = "not_private_person"


class TariffNotEligible(TogetherRefused):
    """TV-03: only «Мой разговор», «Мой онлайн», «Мой онлайн+»."""

    code = "tariff_not_eligible"


class AlreadyInGroup(TogetherRefused):
    """One group per subscriber."""

    code = "already_in_group"


class GroupNotFound(TogetherRefused):
    """TV-02: the number named in a join organizes no group."""

    code = "group_not_found"
    http_status = 404


class GroupFull(TogetherRefused):
    """TV-05: at most five members, the organizer included."""

    code = "group_full"


class NotInGroup(TogetherRefused):
    """Leaving or viewing needs a group."""

    code = "not_in_group"
    http_status = 404


class NotOrganizer(TogetherRefused):
    """Adding, removing and disbanding are the organizer's (TV-02)."""

    code = "not_organizer"
    http_status = 403


class NotAMember(TogetherRefused):
    """The organizer removes a number that is not in its group."""

    code = "not_a_member"
    http_status = 404


class OrganizerNotRemovable(TogetherRefused):
    """The organizer cannot remove itself; it disbands the group instead."""

    code = "organizer_not_removable"


#: Every refusal by its code (the HTTP layer's table; the profile words each one).
REFUSALS: Final[dict[str, type[TogetherRefused]]] = {
    cls.code: cls
    for cls in (
        NotTele2Subscriber,
        SubscriberNotActive,
        NotPrivatePerson,
        TariffNotEligible,
        AlreadyInGroup,
        GroupNotFound,
        GroupFull,
        NotInGroup,
        NotOrganizer,
        NotAMember,
        OrganizerNotRemovable,
    )
}
for _code in REFUSALS:
    require_template(f"together.refused.{_code}", "number", "tariff", profiles=_PROFILES)


# -- the terms: the profile's ``services.together`` facts -----------------------------------------


@attrs.frozen(kw_only=True)
class TogetherTerms:
    """The programme's terms in one profile (seed 003), read from ``services.together``.

    Schema: ``ussd_code`` (the service code, ``985``), ``sender`` (the short-number role the
    SMS come from, default ``together``), ``eligible_tariffs`` (tariff codes, TV-03),
    ``min_members``/``max_members`` (TV-05), ``discounts`` (a list of ``{members, percent}``
    covering every size from min to max, TV-05), ``visa_bonus_percent`` and ``visa_lag``
    (TV-09), ``disband_after_months`` (TV-10), ``autopay_option`` (TV-07, TV-14),
    ``promo_option`` (TV-12) and ``personal_offer_option`` (TV-13): option codes of the
    profile.
    """

    profile: str
    ussd_code: str
    sender: str
    eligible_tariffs: frozenset[str]
    min_members: int
    max_members: int
    discounts: Mapping[int, int]
    visa_bonus_percent: int
    visa_lag: int
    disband_after_months: int
    autopay_option: str
    promo_option: str | None
    personal_offer_option: str | None
    utc_offset: int

    def percent_for(self, size: int) -> int:
        """TV-05: the group discount for ``size`` members (0 below the minimum)."""
        if size < self.min_members:
            return 0
        return self.discounts[min(size, self.max_members)]


_TERM_KEYS: Final = frozenset(
    {
        "ussd_code",
        "sender",
        "eligible_tariffs",
        "min_members",
        "max_members",
        "discounts",
        "visa_bonus_percent",
        "visa_lag",
        "disband_after_months",
        "autopay_option",
        "promo_option",
        "personal_offer_option",
    }
)


class _Facts:
    """Typed reads of one raw ``services.<name>`` mapping; errors name the profile file."""

    def __init__(self, profile: Profile, name: str, data: object, keys: frozenset[str]) -> None:
        self.profile, self.where = profile, f"services.{name}"
        if not isinstance(data, Mapping):
            raise self.error("", "expected a mapping")
        unknown = sorted(str(key) for key in data if key not in keys)
        if unknown:
            raise self.error(unknown[0], f"unknown field (fields: {', '.join(sorted(keys))})")
        self.data = data

    def error(self, key: str, reason: str) -> ProfileError:
        where = f"{self.where}.{key}" if key else self.where
        return ProfileError(self.profile.source, None, f"{where}: {reason}")

    def raw(self, key: str, default: object = None) -> Any:
        if key not in self.data:
            if default is None:
                raise self.error(key, "required field missing")
            return default
        return self.data[key]

    def whole(self, key: str, *, minimum: int = 0, maximum: int | None = None) -> int:
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(key, f"expected a whole number of at least {minimum}, got {value!r}")
        if maximum is not None and value > maximum:
            raise self.error(key, f"expected at most {maximum}, got {value}")
        return value

    def text(self, key: str, default: str | None = None) -> str:
        value = self.raw(key, default)
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"expected a text, got {value!r}")
        return value

    def duration(self, key: str) -> int:
        try:
            return parse_duration(self.raw(key))
        except ValueError as exc:
            raise self.error(key, str(exc)) from None

    def option(self, key: str, *, required: bool = True) -> str | None:
        if not required and key not in self.data:
            return None
        code = self.text(key)
        if code not in self.profile.options:
            raise self.error(key, f"unknown option {code!r}")
        return code


def read_terms(profile: Profile) -> TogetherTerms | None:
    """The profile's «Выгодно вместе» terms, None when it has none, or ``ProfileError``."""
    if SERVICE not in profile.services:
        return None
    facts = _Facts(profile, SERVICE, profile.services[SERVICE], _TERM_KEYS)
    tariffs = facts.raw("eligible_tariffs")
    if isinstance(tariffs, str) or not isinstance(tariffs, Sequence) or not tariffs:
        raise facts.error("eligible_tariffs", "expected a non-empty list of tariff codes")
    for code in tariffs:
        if code not in profile.tariffs:
            raise facts.error("eligible_tariffs", f"unknown tariff {code!r}")
    minimum = facts.whole("min_members", minimum=2)
    maximum = facts.whole("max_members", minimum=minimum)
    discounts: dict[int, int] = {}
    table = facts.raw("discounts")
    if isinstance(table, str) or not isinstance(table, Sequence):
        raise facts.error("discounts", "expected a list of {members, percent}")
    for item in table:
        if not isinstance(item, Mapping) or set(item) != {"members", "percent"}:
            raise facts.error("discounts", f"each item is {{members, percent}}, got {item!r}")
        members, percent = item["members"], item["percent"]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (members, percent)):
            raise facts.error("discounts", f"members and percent are whole numbers: {item!r}")
        if not minimum <= members <= maximum or not 0 < percent < 100 or members in discounts:
            raise facts.error("discounts", f"bad or repeated size/percent: {item!r}")
        discounts[members] = percent
    if sorted(discounts) != list(range(minimum, maximum + 1)):
        raise facts.error("discounts", f"every size from {minimum} to {maximum} needs a percent")
    sender_role = facts.text("sender", "together")
    if sender_role not in profile.short_numbers:
        raise facts.error("sender", f"no short number {sender_role!r} in short_numbers")
    autopay = facts.option("autopay_option")
    assert autopay is not None
    for name, kind in (("visa", "bool"), ("card_registered_at", "time")):
        if profile.options[autopay].params.get(name) != kind:
            raise facts.error("autopay_option", f"the option needs a {kind} parameter {name!r}")
    personal = facts.option("personal_offer_option", required=False)
    if personal is not None and profile.options[personal].params.get("discount_percent") != "int":
        raise facts.error("personal_offer_option", "the option needs an int 'discount_percent'")
    promo = facts.option("promo_option", required=False)
    if promo is not None and not profile.options[promo].fee_free_days:
        raise facts.error("promo_option", "the option has no fee_free_days")
    return TogetherTerms(
        profile=profile.name,
        ussd_code=facts.text("ussd_code"),
        sender=profile.short_numbers[sender_role],
        eligible_tariffs=frozenset(tariffs),
        min_members=minimum,
        max_members=maximum,
        discounts=discounts,
        visa_bonus_percent=facts.whole("visa_bonus_percent", maximum=99),
        visa_lag=facts.duration("visa_lag"),
        disband_after_months=facts.whole("disband_after_months", minimum=1),
        autopay_option=autopay,
        promo_option=promo,
        personal_offer_option=personal,
        utc_offset=profile.settings.utc_offset,
    )


# -- the store ------------------------------------------------------------------------------------

#: This module's schema, one tuple of statements per version (never edit a shipped one).
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE together_groups (
            id               INTEGER PRIMARY KEY,
            profile          TEXT NOT NULL,
            organizer        TEXT NOT NULL,
            created_at       INTEGER NOT NULL,
            disband_check_at INTEGER NOT NULL,   -- TV-10: creation + 6 months
            reached_min_at   INTEGER,            -- first time it had min_members
            disbanded_at     INTEGER,
            disband_reason   TEXT
        )""",
        "CREATE UNIQUE INDEX together_groups_live ON together_groups (organizer)"
        " WHERE disbanded_at IS NULL",
        "CREATE INDEX together_groups_check ON together_groups (disband_check_at)"
        " WHERE disbanded_at IS NULL AND reached_min_at IS NULL",
        """CREATE TABLE together_members (
            id         INTEGER PRIMARY KEY,
            group_id   INTEGER NOT NULL REFERENCES together_groups (id),
            msisdn     TEXT NOT NULL,
            joined_at  INTEGER NOT NULL,
            joined_by  TEXT NOT NULL,            -- created | ussd | api | organizer
            left_at    INTEGER,
            left_reason TEXT                     -- left | removed | disbanded | tariff_changed...
        )""",
        "CREATE UNIQUE INDEX together_members_live ON together_members (msisdn)"
        " WHERE left_at IS NULL",
        "CREATE INDEX together_members_group ON together_members (group_id, id)",
        """CREATE TABLE together_events (
            id       INTEGER PRIMARY KEY,        -- TV-04: joins and leaves in their order
            group_id INTEGER NOT NULL REFERENCES together_groups (id),
            msisdn   TEXT NOT NULL,
            event    TEXT NOT NULL,              -- joined | left
            at       INTEGER NOT NULL,
            reason   TEXT NOT NULL               -- how it joined / why it left
        )""",
        "CREATE INDEX together_events_group ON together_events (group_id, id)",
        """CREATE TABLE together_charges (
            id               INTEGER PRIMARY KEY,
            msisdn           TEXT NOT NULL,
            group_id         INTEGER,
            at               INTEGER NOT NULL,
            period_start     INTEGER NOT NULL,
            part             INTEGER NOT NULL,
            members          INTEGER NOT NULL,
            group_percent    INTEGER NOT NULL,   -- TV-05 (0 when a condition fails)
            visa_percent     INTEGER NOT NULL,   -- TV-09
            personal_percent INTEGER NOT NULL,   -- TV-13
            applied          TEXT NOT NULL,      -- together | personal_offer | none
            amount           INTEGER NOT NULL,   -- the fee before the discount
            discount         INTEGER NOT NULL,
            reason           TEXT NOT NULL       -- ok, or why the programme gave nothing
        )""",
        "CREATE INDEX together_charges_msisdn ON together_charges (msisdn, id)",
    ),
)


# -- values the API shows -------------------------------------------------------------------------

Role = Literal["organizer", "member"]


@attrs.frozen(kw_only=True)
class MemberView:
    """TV-04: what every member sees of each member."""

    msisdn: str
    role: Role
    joined_at: int
    autopay: bool
    visa: bool
    fee_paid: bool


@attrs.frozen(kw_only=True)
class MembershipEvent:
    """TV-04: a join or a leave, as the members see it."""

    msisdn: str
    event: Literal["joined", "left"]
    at: int
    reason: str


@attrs.frozen(kw_only=True)
class Discount:
    """The discount of one fee charge (TV-05 … TV-13), or why there is none."""

    members: int
    group_percent: int
    visa_percent: int
    personal_percent: int
    applied: Literal["together", "personal_offer", "none"]
    amount: int
    discount: int
    reason: str
    #: the percent actually taken off the fee (derived from the fields above)
    percent: int = attrs.field(init=False)

    @percent.default
    def _percent(self) -> int:
        if self.applied == "together":
            return self.group_percent + self.visa_percent
        if self.applied == "personal_offer":
            return self.personal_percent
        return 0


@attrs.frozen(kw_only=True)
class ChargeRecord:
    """One fee charge of a member as the programme decided it (``together_charges``)."""

    msisdn: str
    group_id: int | None
    at: int
    period_start: int
    part: int
    decision: Discount


@attrs.frozen(kw_only=True)
class GroupView:
    """A group as its members see it in «Личный кабинет» (TV-04, TV-05, TV-10)."""

    id: int
    organizer: str
    created_at: int
    size: int
    percent: int  # the group discount for its size now (TV-05)
    all_paid: bool  # TV-08
    disband_at: int | None  # TV-10: when it ends unless it reaches the minimum first
    members: tuple[MemberView, ...]
    history: tuple[MembershipEvent, ...]
    viewer: str
    viewer_discount: Discount  # what the viewer's fee would get if charged now
    viewer_charges: tuple[ChargeRecord, ...]  # the viewer's last charges under the programme


@attrs.frozen(kw_only=True)
class GroupChange:
    """The result of an action: the asker's group after it (None: none) and what to send."""

    view: GroupView | None
    outcome: Outcome


@attrs.frozen
class Group:
    """A live group as the store holds it (``together_groups``)."""

    id: int
    profile: str
    organizer: str
    created_at: int
    disband_check_at: int
    reached_min_at: int | None


_GROUP_COLUMNS: Final = "id, profile, organizer, created_at, disband_check_at, reached_min_at"


def _outcome(screen: Screen | None, replies: Iterable[Reply]) -> Outcome:
    # ``Outcome.replies`` converts with a bare ``tuple``, which mypy types as an unbound
    # ``Iterable[_T_co]``; the cast keeps this module clean whichever way dispatch.py goes.
    return Outcome(screen=screen, replies=cast(Any, tuple(replies)))


def _charge_record(row: Any) -> ChargeRecord:
    (msisdn, group_id, at, period_start, part, members, group_percent, visa_percent,
     personal_percent, applied, amount, discount, reason) = row  # fmt: skip
    decision = Discount(
        members=members, group_percent=group_percent, visa_percent=visa_percent,
        personal_percent=personal_percent, applied=applied, amount=amount, discount=discount,
        reason=reason,
    )  # fmt: skip
    return ChargeRecord(
        msisdn=msisdn, group_id=group_id, at=at, period_start=period_start, part=part,
        decision=decision,
    )  # fmt: skip


# -- the service ----------------------------------------------------------------------------------


class TogetherService:
    """«Выгодно вместе» over a world: the actions, the fee adjuster, the hooks, the timeline."""

    def __init__(self, world: World, terms: Mapping[str, TogetherTerms]) -> None:
        self.world = world
        self.terms = dict(terms)
        self._db: sqlite3.Connection = world.store.connection

    # -- reading groups ---------------------------------------------------------------------------

    def group_of(self, msisdn: str) -> Group | None:
        """The live group ``msisdn`` is a member of (organizer included), or None."""
        row = self._db.execute(
            "SELECT g.id, g.profile, g.organizer, g.created_at, g.disband_check_at,"
            " g.reached_min_at"
            " FROM together_members AS m JOIN together_groups AS g ON g.id = m.group_id"
            " WHERE m.msisdn = ? AND m.left_at IS NULL",
            (msisdn,),
        ).fetchone()
        return None if row is None else Group(*row)

    def members(self, group_id: int) -> list[str]:
        """The current members of a group, the organizer first, then by joining."""
        rows = self._db.execute(
            "SELECT msisdn FROM together_members WHERE group_id = ? AND left_at IS NULL"
            " ORDER BY id",
            (group_id,),
        ).fetchall()
        return [str(row[0]) for row in rows]

    def _organized_group(self, organizer: str) -> Group | None:
        row = self._db.execute(
            f"SELECT {_GROUP_COLUMNS} FROM together_groups"
            " WHERE organizer = ? AND disbanded_at IS NULL",
            (organizer,),
        ).fetchone()
        return None if row is None else Group(*row)

    def _terms_of(self, subscriber: Subscriber) -> TogetherTerms | None:
        return self.terms.get(subscriber.profile)

    # -- eligibility (TV-03) ----------------------------------------------------------------------

    def _eligible(self, msisdn: str, profile: str) -> tuple[Subscriber, TogetherTerms]:
        """The subscriber if it may be in a group (TV-03), else the first refusal."""
        subscriber = self.world.find(msisdn)
        terms = self.terms.get(profile)
        if subscriber is None or terms is None or subscriber.profile != profile:
            raise NotTele2Subscriber(f"{msisdn} is not a subscriber of {profile}", number=msisdn)
        tariff = self.world.tariff_of(subscriber).name
        if subscriber.status is not SubscriberStatus.ACTIVE:
            raise SubscriberNotActive(
                f"{msisdn} is {subscriber.status}", number=msisdn, tariff=tariff
            )
        if subscriber.segment is not Segment.PRIVATE:
            raise NotPrivatePerson(f"{msisdn} is a business customer", number=msisdn, tariff=tariff)
        if subscriber.tariff not in terms.eligible_tariffs:
            raise TariffNotEligible(
                f"{msisdn} is on {tariff}, outside the programme", number=msisdn, tariff=tariff
            )
        return subscriber, terms

    def _free(self, msisdn: str) -> None:
        if self.group_of(msisdn) is not None:
            raise AlreadyInGroup(f"{msisdn} is already in a group", number=msisdn)

    def _asker_terms(self, msisdn: str) -> TogetherTerms:
        subscriber = self.world.get(msisdn)
        terms = self._terms_of(subscriber)
        if terms is None:
            raise NotTele2Subscriber(f"{msisdn}'s operator has no «Выгодно вместе»", number=msisdn)
        return terms

    # -- actions (TV-01, TV-02) -------------------------------------------------------------------

    def create_group(self, organizer: str, *, now: int) -> GroupChange:
        """TV-01: ``organizer`` creates a group and is its first member."""
        with self.world.transaction():
            profile = self.world.get(organizer).profile
            _, terms = self._eligible(organizer, profile)
            self._free(organizer)
            check_at = add_months(now, terms.disband_after_months, utc_offset=terms.utc_offset)
            cursor = self._db.execute(
                "INSERT INTO together_groups (profile, organizer, created_at, disband_check_at)"
                " VALUES (?,?,?,?)",
                (profile, organizer, now, check_at),
            )
            group_id = int(cursor.lastrowid or 0)
            self._insert_member(group_id, organizer, now, "created")
            screen = Screen(template=CREATED.key, params={"organizer": organizer})
            return GroupChange(
                view=self.group_view(organizer, now=now), outcome=Outcome(screen=screen)
            )

    def join_group(self, msisdn: str, organizer: str, *, now: int) -> GroupChange:
        """TV-02: ``msisdn`` joins the group organized by ``organizer`` (``*985*7…*2#``)."""
        with self.world.transaction():
            profile = self.world.get(msisdn).profile
            self._eligible(msisdn, profile)
            self._free(msisdn)
            group = self._joinable(organizer, profile)
            size = self._admit(group, msisdn, now, "ussd")
            terms = self.terms[profile]
            percent = terms.percent_for(size)
            screen = Screen(
                template=JOINED.key,
                params={"organizer": organizer, "size": size, "percent": percent},
            )
            replies = self._tell_others(group, msisdn, MEMBER_JOINED.key, size, percent)
            return GroupChange(
                view=self.group_view(msisdn, now=now),
                outcome=_outcome(screen, replies),
            )

    def add_member(self, organizer: str, msisdn: str, *, now: int) -> GroupChange:
        """TV-02: the organizer adds ``msisdn`` through «Личный кабинет» (the API)."""
        with self.world.transaction():
            terms = self._asker_terms(organizer)
            group = self._own_group(organizer)
            self._eligible(msisdn, terms.profile)
            self._free(msisdn)
            size = self._admit(self._joinable(organizer, terms.profile), msisdn, now, "organizer")
            percent = terms.percent_for(size)
            params = {"organizer": organizer, "size": size, "percent": percent}
            replies = [self._sms(terms, msisdn, ADDED.key, params)]
            replies += self._tell_others(group, msisdn, MEMBER_JOINED.key, size, percent)
            return GroupChange(
                view=self.group_view(organizer, now=now), outcome=_outcome(None, replies)
            )

    def leave_group(self, msisdn: str, *, now: int) -> GroupChange:
        """TV-02: ``msisdn`` leaves (``*985*0*2#``); the organizer's leaving disbands the group."""
        with self.world.transaction():
            terms = self._asker_terms(msisdn)
            group = self.group_of(msisdn)
            if group is None:
                raise NotInGroup(f"{msisdn} is in no group", number=msisdn)
            if group.organizer == msisdn:
                size = len(self.members(group.id))
                replies = self._disband(group, now, "left", notify_organizer=False)
                screen = Screen(template=DISBANDED_BY_YOU.key, params={"size": size})
                return GroupChange(view=None, outcome=_outcome(screen, replies))
            size = self._depart(group, msisdn, now, "left")
            percent = terms.percent_for(size)
            replies = self._tell_others(group, msisdn, MEMBER_LEFT.key, size, percent)
            screen = Screen(template=LEFT.key, params={"organizer": group.organizer})
            return GroupChange(view=None, outcome=_outcome(screen, replies))

    def remove_member(self, organizer: str, msisdn: str, *, now: int) -> GroupChange:
        """The organizer removes a member through the API; the member is told by SMS."""
        with self.world.transaction():
            terms = self._asker_terms(organizer)
            group = self._own_group(organizer)
            if msisdn == organizer:
                raise OrganizerNotRemovable(
                    "the organizer disbands the group instead", number=organizer
                )
            if msisdn not in self.members(group.id):
                raise NotAMember(f"{msisdn} is not in the group", number=msisdn)
            size = self._depart(group, msisdn, now, "removed")
            percent = terms.percent_for(size)
            replies = [self._sms(terms, msisdn, REMOVED.key, {"organizer": organizer})]
            replies += self._tell_others(group, msisdn, MEMBER_LEFT.key, size, percent)
            return GroupChange(
                view=self.group_view(organizer, now=now), outcome=_outcome(None, replies)
            )

    def disband_group(self, organizer: str, *, now: int) -> GroupChange:
        """The organizer ends its group through the API; every other member is told."""
        with self.world.transaction():
            self._asker_terms(organizer)
            group = self._own_group(organizer)
            replies = self._disband(group, now, "disbanded", notify_organizer=False)
            return GroupChange(view=None, outcome=_outcome(None, replies))

    def _own_group(self, organizer: str) -> Group:
        group = self.group_of(organizer)
        if group is None:
            raise NotInGroup(f"{organizer} is in no group", number=organizer)
        if group.organizer != organizer:
            raise NotOrganizer(f"{organizer} does not organize its group", number=organizer)
        return group

    def _joinable(self, organizer: str, profile: str) -> Group:
        found = self.world.find(organizer)
        if found is None or found.profile != profile:
            raise NotTele2Subscriber(
                f"{organizer} is not a subscriber of {profile}", number=organizer
            )
        group = self._organized_group(organizer)
        if group is None:
            raise GroupNotFound(f"{organizer} organizes no group", number=organizer)
        terms = self.terms[profile]
        if len(self.members(group.id)) >= terms.max_members:
            raise GroupFull(f"the group of {organizer} is full", number=organizer)
        return group

    def _insert_member(self, group_id: int, msisdn: str, now: int, how: str) -> None:
        self._db.execute(
            "INSERT INTO together_members (group_id, msisdn, joined_at, joined_by)"
            " VALUES (?,?,?,?)",
            (group_id, msisdn, now, how),
        )
        self._log(group_id, msisdn, "joined", now, how)

    def _log(self, group_id: int, msisdn: str, event: str, at: int, reason: str) -> None:
        self._db.execute(
            "INSERT INTO together_events (group_id, msisdn, event, at, reason) VALUES (?,?,?,?,?)",
            (group_id, msisdn, event, at, reason),
        )

    def _admit(self, group: Group, msisdn: str, now: int, how: str) -> int:
        self._insert_member(group.id, msisdn, now, how)
        size = len(self.members(group.id))
        if group.reached_min_at is None and size >= self.terms[group.profile].min_members:
            self._db.execute(
                "UPDATE together_groups SET reached_min_at = ? WHERE id = ?", (now, group.id)
            )
        return size

    def _depart(self, group: Group, msisdn: str, now: int, reason: str) -> int:
        self._db.execute(
            "UPDATE together_members SET left_at = ?, left_reason = ?"
            " WHERE group_id = ? AND msisdn = ? AND left_at IS NULL",
            (now, reason, group.id, msisdn),
        )
        self._log(group.id, msisdn, "left", now, reason)
        return len(self.members(group.id))

    def _disband(
        self, group: Group, now: int, reason: str, *, notify_organizer: bool
    ) -> list[Reply]:
        """End a group: every member leaves ('disbanded'; the organizer with ``reason``)."""
        terms = self.terms[group.profile]
        members = self.members(group.id)
        if reason != "too_small":
            self._depart(group, group.organizer, now, reason)
        for member in self.members(group.id):
            self._depart(group, member, now, "disbanded")
        self._db.execute(
            "UPDATE together_groups SET disbanded_at = ?, disband_reason = ? WHERE id = ?",
            (now, reason, group.id),
        )
        if reason == "too_small":
            template, params = (
                DISBANDED_SMALL.key,
                {
                    "organizer": group.organizer,
                    "min_members": terms.min_members,
                },
            )
        else:
            template, params = DISBANDED.key, {"organizer": group.organizer}
        return [
            self._sms(terms, member, template, params)
            for member in members
            if notify_organizer or member != group.organizer
        ]

    def _sms(
        self, terms: TogetherTerms, to: str, template: str, params: Mapping[str, object]
    ) -> Reply:
        return Reply(
            to=to, sender=terms.sender, template=template, params=params, profile=terms.profile
        )

    def _tell_others(
        self, group: Group, member: str, template: str, size: int, percent: int
    ) -> list[Reply]:
        """TV-04: the other members learn of a join or a leave."""
        terms = self.terms[group.profile]
        params = {"member": member, "size": size, "percent": percent}
        return [
            self._sms(terms, other, template, params)
            for other in self.members(group.id)
            if other != member
        ]

    # -- TV-04: the member view -------------------------------------------------------------------

    def group_view(self, msisdn: str, *, now: int) -> GroupView:
        """The viewer's group as every member sees it (TV-04), or ``NotInGroup``."""
        subscriber = self.world.get(msisdn)
        terms = self._terms_of(subscriber)
        group = self.group_of(msisdn)
        if terms is None or group is None:
            raise NotInGroup(f"{msisdn} is in no group", number=msisdn)
        members = self.members(group.id)
        views = []
        for member in members:
            other = self.world.get(member)
            autopay = other.option(terms.autopay_option)
            views.append(
                MemberView(
                    msisdn=member,
                    role="organizer" if member == group.organizer else "member",
                    joined_at=self._joined_at(group.id, member),
                    autopay=autopay is not None,
                    visa=autopay is not None and autopay.params.get("visa") is True,
                    fee_paid=self._fee_paid(member, now),
                )
            )
        history = [
            MembershipEvent(msisdn=member, event=event, at=at, reason=reason)
            for member, event, at, reason in self._db.execute(
                "SELECT msisdn, event, at, reason FROM together_events WHERE group_id = ?"
                " ORDER BY id",
                (group.id,),
            )
        ]
        tariff = self.world.tariff_of(subscriber)
        fee = tariff.monthly_fee - tariff.monthly_fee // 2 * (tariff.fee_instalments - 1)
        decision = self._decide(subscriber, terms, at=now, period_start=now, part=1, amount=fee)
        return GroupView(
            id=group.id,
            organizer=group.organizer,
            created_at=group.created_at,
            size=len(members),
            percent=terms.percent_for(len(members)),
            all_paid=all(view.fee_paid for view in views),
            disband_at=None if group.reached_min_at is not None else group.disband_check_at,
            members=tuple(views),
            history=tuple(history),
            viewer=msisdn,
            viewer_discount=decision,
            viewer_charges=tuple(self.charges(msisdn, limit=12)),
        )

    def _joined_at(self, group_id: int, msisdn: str) -> int:
        row = self._db.execute(
            "SELECT joined_at FROM together_members WHERE group_id = ? AND msisdn = ?"
            " AND left_at IS NULL",
            (group_id, msisdn),
        ).fetchone()
        return int(row[0])

    def charges(self, msisdn: str, *, limit: int | None = None) -> list[ChargeRecord]:
        """The programme's decisions on ``msisdn``'s fee charges, oldest first."""
        sql = (
            "SELECT msisdn, group_id, at, period_start, part, members, group_percent,"
            " visa_percent, personal_percent, applied, amount, discount, reason"
            " FROM together_charges WHERE msisdn = ? ORDER BY id DESC"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = self._db.execute(sql, (msisdn,)).fetchall()
        return [_charge_record(row) for row in reversed(rows)]

    # -- the discount (TV-05 … TV-14) -------------------------------------------------------------

    def _fee_paid(self, msisdn: str, at: int, *, charging: tuple[int, int] | None = None) -> bool:
        """TV-08: whether ``msisdn`` has paid its tariff fee for the period around ``at``.

        ``charging`` (period start, part) is the record being charged right now, which does
        not count against its own charge.  A member whose new period begins at ``at`` and is
        not charged yet is judged by the period just ended.
        """

        def relevant(records: list[FeeRecord]) -> list[FeeRecord]:
            return [r for r in records if (r.period_start, r.part) != charging]

        records = relevant(self.world.fee_status(msisdn, now=at))
        if not records:
            records = relevant(self.world.fee_status(msisdn, now=at - 1))
        return all(record.status is FeeStatus.PAID for record in records)

    def _late(self, msisdn: str, period_start: int, part: int) -> bool:
        """The charge is a retry of a period left unpaid (after a top-up or an unblock)."""
        row = self._db.execute(
            "SELECT 1 FROM fee_records WHERE msisdn = ? AND code = ? AND period_start = ?"
            " AND part = ? AND status <> 'paid'",
            (msisdn, TARIFF_FEE, period_start, part),
        ).fetchone()
        return row is not None

    def _promo_running(self, subscriber: Subscriber, terms: TogetherTerms, at: int) -> bool:
        if terms.promo_option is None:
            return False
        promo = subscriber.option(terms.promo_option)
        if promo is None:
            return False
        days = self.world.profile_of(subscriber).options[terms.promo_option].fee_free_days or 0
        return promo.activated_at + days * DAY > at

    def _instalments_started(self, subscriber: Subscriber, at: int) -> bool:
        """TV-12: on an instalment tariff, a second part on this tariff was paid before ``at``."""
        if self.world.tariff_of(subscriber).fee_instalments != 2:
            return True
        row = self._db.execute(
            "SELECT 1 FROM fee_records WHERE msisdn = ? AND code = ? AND part = 2"
            " AND status = 'paid' AND period_start >= ? AND at < ?",
            (subscriber.msisdn, TARIFF_FEE, subscriber.tariff_since, at),
        ).fetchone()
        return row is not None

    def _visa_bonus(self, subscriber: Subscriber, terms: TogetherTerms, at: int) -> tuple[int, str]:
        """TV-09: the Visa bonus, once the card is ``visa_lag`` old; else why not."""
        autopay = subscriber.option(terms.autopay_option)
        if autopay is None or autopay.params.get("visa") is not True:
            return 0, ""
        registered = autopay.params.get("card_registered_at", autopay.activated_at)
        if not isinstance(registered, int) or registered + terms.visa_lag > at:
            return 0, "visa_lag"
        return terms.visa_bonus_percent, ""

    def _personal_percent(self, subscriber: Subscriber, terms: TogetherTerms) -> int:
        if terms.personal_offer_option is None:
            return 0
        offer = subscriber.option(terms.personal_offer_option)
        if offer is None:
            return 0
        percent = offer.params.get("discount_percent", 0)
        return max(0, min(100, percent)) if isinstance(percent, int) else 0

    def _decide(
        self,
        subscriber: Subscriber,
        terms: TogetherTerms,
        *,
        at: int,
        period_start: int,
        part: int,
        amount: int,
    ) -> Discount:
        """The discount of a fee of ``amount`` charged at ``at``; see the module docstring."""
        group = self.group_of(subscriber.msisdn)
        members = [] if group is None else self.members(group.id)
        personal = self._personal_percent(subscriber, terms)
        group_percent, visa_percent, reason = 0, 0, "ok"
        if group is None:
            reason = "not_in_group"
        elif subscriber.tariff not in terms.eligible_tariffs:
            reason = "tariff_not_eligible"
        elif len(members) < terms.min_members:
            reason = "too_few_members"
        elif not subscriber.has_option(terms.autopay_option):
            reason = "no_autopay"
        elif self._late(subscriber.msisdn, period_start, part):
            reason = "late_payment"
        elif not all(
            self._fee_paid(
                member,
                at,
                charging=(period_start, part) if member == subscriber.msisdn else None,
            )
            for member in members
        ):
            reason = "not_all_paid"
        elif self._promo_running(subscriber, terms, at):
            reason = "promo_period"
        elif not self._instalments_started(subscriber, at):
            reason = "instalment_not_started"
        else:
            group_percent = terms.percent_for(len(members))
            visa_percent, visa_reason = self._visa_bonus(subscriber, terms, at)
            reason = visa_reason or "ok"
        together_money = amount * (group_percent + visa_percent) // 100
        personal_money = amount * personal // 100
        applied: Literal["together", "personal_offer", "none"] = "none"
        discount = 0
        if together_money and together_money >= personal_money:
            applied, discount = "together", together_money
        elif personal_money:
            applied, discount = "personal_offer", personal_money
        return Discount(
            members=len(members), group_percent=group_percent, visa_percent=visa_percent,
            personal_percent=personal, applied=applied, amount=amount, discount=discount,
            reason=reason,
        )  # fmt: skip

    def adjust_fee(self, context: FeeContext) -> FeeAdjustment | None:
        """The fee adjuster (``World.add_fee_adjuster``): the discount of a tariff fee."""
        subscriber = context.subscriber
        terms = self._terms_of(subscriber)
        if context.code != TARIFF_FEE or terms is None:
            return None
        decision = self._decide(
            subscriber,
            terms,
            at=context.at,
            period_start=context.period_start,
            part=context.part,
            amount=context.amount,
        )
        group = self.group_of(subscriber.msisdn)
        if group is None and decision.applied == "none":
            return None
        self._db.execute(
            "INSERT INTO together_charges (msisdn, group_id, at, period_start, part, members,"
            " group_percent, visa_percent, personal_percent, applied, amount, discount, reason)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                subscriber.msisdn,
                None if group is None else group.id,
                context.at,
                context.period_start,
                context.part,
                decision.members,
                decision.group_percent,
                decision.visa_percent,
                decision.personal_percent,
                decision.applied,
                decision.amount,
                decision.discount,
                decision.reason,
            ),
        )
        if decision.discount == 0:
            return None
        if decision.applied == "together":
            visa = f" + {decision.visa_percent} % Visa" if decision.visa_percent else ""
            detail = (
                f"«Выгодно вместе»: {decision.group_percent} %{visa},"
                f" участников: {decision.members}"
            )
            reason = "together_discount"
        else:
            detail = f"персональное предложение: {decision.personal_percent} %"
            reason = "personal_offer"
        return FeeAdjustment(
            amount=context.amount - decision.discount, reason=reason, detail=detail
        )

    # -- TV-11: departures on changes -------------------------------------------------------------

    def on_subscriber_changed(self, event: SubscriberChanged) -> list[Reply]:
        """TV-11 (and TV-03 kept): a member that no longer qualifies leaves at once."""
        group = self.group_of(event.msisdn)
        if group is None:
            return []
        terms = self.terms[group.profile]
        if event.field == "tariff" and event.new not in terms.eligible_tariffs:
            reason = "tariff_changed"
        elif event.field == "owner_id":
            reason = "owner_changed"
        elif event.field == "segment" and event.new != Segment.PRIVATE:
            reason = "not_private"
        elif event.field == "status" and event.new == SubscriberStatus.TERMINATED:
            reason = "terminated"
        else:
            return []
        subscriber = self.world.get(event.msisdn)
        replies: list[Reply] = []
        if reason in AUTO_LEFT:
            tariff = self.world.tariff_of(subscriber).name
            replies.append(
                self._sms(terms, event.msisdn, AUTO_LEFT[reason].key, {"tariff": tariff})
            )
        if group.organizer == event.msisdn:
            return replies + self._disband(group, event.at, reason, notify_organizer=False)
        size = self._depart(group, event.msisdn, event.at, reason)
        return replies + self._tell_others(
            group, event.msisdn, MEMBER_LEFT.key, size, terms.percent_for(size)
        )

    # -- TV-10: disbanding small groups on the timeline -------------------------------------------

    def next_disband_check(self) -> int | None:
        row = self._db.execute(
            "SELECT min(disband_check_at) FROM together_groups"
            " WHERE disbanded_at IS NULL AND reached_min_at IS NULL"
        ).fetchone()
        return None if row[0] is None else int(row[0])

    def disband_due(self, due: int) -> list[Reply]:
        """TV-10: end every group that stayed under the minimum until its check time."""
        replies: list[Reply] = []
        rows = self._db.execute(
            f"SELECT {_GROUP_COLUMNS} FROM together_groups WHERE disbanded_at IS NULL"
            " AND reached_min_at IS NULL AND disband_check_at <= ? ORDER BY disband_check_at, id",
            (due,),
        ).fetchall()
        for row in rows:
            group = Group(*row)
            replies += self._disband(
                group, group.disband_check_at, "too_small", notify_organizer=True
            )
        return replies


# -- USSD command handlers and installation -------------------------------------------------------


def _refused(error: TogetherRefused) -> Outcome:
    return Outcome(screen=Screen(template=error.template, params=error.params))


def command_handlers(service: TogetherService) -> dict[type, Any]:
    """The handlers of ``*985*2#``, ``*985*7…*2#`` and ``*985*0*2#`` (TV-01, TV-02)."""

    def create(context: Context, command: CreateTogetherGroup) -> Outcome:
        try:
            return service.create_group(context.msisdn, now=context.now).outcome
        except TogetherRefused as error:
            return _refused(error)

    def join(context: Context, command: JoinTogetherGroup) -> Outcome:
        try:
            return service.join_group(
                context.msisdn, command.organizer_msisdn, now=context.now
            ).outcome
        except TogetherRefused as error:
            return _refused(error)

    def leave(context: Context, command: LeaveTogetherGroup) -> Outcome:
        try:
            return service.leave_group(context.msisdn, now=context.now).outcome
        except TogetherRefused as error:
            return _refused(error)

    return {CreateTogetherGroup: create, JoinTogetherGroup: join, LeaveTogetherGroup: leave}


# -- the self-care API (mounted on the control API by the gateway) ----------------------------


ActionHandler = Callable[[Any], ActionAnswer]


def api_msisdn(value: object, profile: str, field: str) -> str:
    """A number given to the API (``+7 952 000-00-01`` too) as a wire MSISDN of ``profile``."""
    if not isinstance(value, str):
        raise WrongType(f"{field} must be a string like 79520000001", field=field)
    try:
        return api_number(value, profile)
    except ParseError as error:
        raise InvalidValue(
            f"{field}: {value!r} is not a number ({error.reason}; expected {error.expected})",
            field=field,
        ) from None


def add_routes(api: ActionRegistry, service: TogetherService) -> None:
    """Mount the self-care actions of every profile with the programme (TV-01, TV-02, TV-04).

    Under ``/api/v1/{profile}/together/{msisdn}`` (``{msisdn}``: the subscriber acting):
    ``POST …/group`` create (201), ``GET …/group`` the member view, ``DELETE …/group``
    disband (organizer), ``POST …/join`` ``{"organizer"}``, ``POST …/leave``,
    ``POST …/members`` ``{"msisdn"}`` add (organizer, 201), ``DELETE …/members/{member}``
    remove (organizer), ``GET …/charges`` the programme's decision on each fee charge.
    Refusals are ``TogetherRefused`` codes (``REFUSALS``) or the core's.
    """
    for profile in service.terms:
        _mount(api, service, profile)


def _mount(api: ActionRegistry, service: TogetherService, profile: str) -> None:
    base = f"/api/v1/{profile}/together/{{msisdn}}"

    def asker(request: ActionRequest) -> str:
        msisdn = service.world.get(request.params["msisdn"]).msisdn
        if service.world.get(msisdn).profile != profile:
            raise NotTele2Subscriber(f"{msisdn} is not a subscriber of {profile}", number=msisdn)
        return msisdn

    def view_json(view: GroupView | None) -> object:
        return {"group": None if view is None else to_json(view)}

    def answer(change: GroupChange, status: int = 200) -> ActionAnswer:
        return ActionAnswer(
            body=view_json(change.view), status=status, replies=change.outcome.replies
        )

    def create(request: ActionRequest) -> ActionAnswer:
        check_fields(request.body)
        return answer(service.create_group(asker(request), now=request.now), 201)

    def view(request: ActionRequest) -> ActionAnswer:
        check_fields(request.query)
        return ActionAnswer(body=view_json(service.group_view(asker(request), now=request.now)))

    def disband(request: ActionRequest) -> ActionAnswer:
        check_fields(request.body)
        return answer(service.disband_group(asker(request), now=request.now))

    def join(request: ActionRequest) -> ActionAnswer:
        check_fields(request.body, required=("organizer",))
        organizer = api_msisdn(request.body["organizer"], profile, "organizer")
        return answer(service.join_group(asker(request), organizer, now=request.now))

    def leave(request: ActionRequest) -> ActionAnswer:
        check_fields(request.body)
        return answer(service.leave_group(asker(request), now=request.now))

    def add(request: ActionRequest) -> ActionAnswer:
        check_fields(request.body, required=("msisdn",))
        member = api_msisdn(request.body["msisdn"], profile, "msisdn")
        return answer(service.add_member(asker(request), member, now=request.now), 201)

    def remove(request: ActionRequest) -> ActionAnswer:
        check_fields(request.body)
        member = api_msisdn(request.params["member"], profile, "member")
        return answer(service.remove_member(asker(request), member, now=request.now))

    def charges(request: ActionRequest) -> ActionAnswer:
        check_fields(request.query)
        msisdn = asker(request)
        return ActionAnswer(body={"msisdn": msisdn, "charges": to_json(service.charges(msisdn))})

    for method, path, handler in (
        ("POST", "/group", create),
        ("GET", "/group", view),
        ("DELETE", "/group", disband),
        ("POST", "/join", join),
        ("POST", "/leave", leave),
        ("POST", "/members", add),
        ("DELETE", "/members/{member}", remove),
        ("GET", "/charges", charges),
    ):
        api.add_action(method, base + path, handler)


def install(world: World, directory: ServiceDirectory) -> TogetherService:
    """Set the programme up on ``world`` for every profile with ``services.together``."""
    terms = {
        name: found
        for name, profile in world.profiles.items()
        if (found := read_terms(profile)) is not None
    }
    world.migrate_service(SERVICE, MIGRATIONS)
    service = TogetherService(world, terms)
    handlers = command_handlers(service)
    for profile in terms:
        for command_type, handler in handlers.items():
            directory.register_command(profile, command_type, handler)
    world.add_fee_adjuster(service.adjust_fee)
    world.on_change(service.on_subscriber_changed)
    world.timeline.register("together_disband", service.next_disband_check, service.disband_due)
    return service
