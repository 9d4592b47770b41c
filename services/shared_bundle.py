"""MTS «Общий пакет» (SPEC §3, MP-01 … MP-22; seed 002): groups that share a «Наш Smart» bundle.

This module owns the groups, their members, invitations, personal limits and the use each
member made of the shared packages (tables ``shared_bundle_*``, created by ``install``), and
the rules around them; the money, packages and clock are the operator core's (``World``).

**Theory of operation.** An initiator invites a number (USSD ``*434*1*7…#``, the ``*434#``
menu or the self-care API).  An invitee on a tariff without a monthly fee and without the
internet options of MP-06 joins at once; the others get an SMS from 434 and answer «ДА» /
«НЕТ» (with ``#XXXX``, the last digits of the inviter, when several invitations wait) within
the hour of MP-09, after which the invitation is annulled on the clock (a ``Timeline`` item)
and the initiator told.  The first join creates the group (MP-10): the inviter becomes its
initiator, gets the option «Общий пакет. Инициатор группы» and its fee (MP-17), and its
packages become the group's shared packages.  They are not copied: members draw on the
initiator's own packages through a usage source of the charging engine (``charging``'s
protocol), so the initiator's billing day renews them and its extra packages join them.

**Who pays for a use.** For a member's use at home the source pays, in order: the member's
own «Турбо-кнопка» packages for data (they are personal, seed §13, and used first: sharing
resumes «по исчерпании ее квоты»); then the shared packages — unit by unit for minutes and
SMS, in portions of 100 MB handed to a participant for data (MP-11: a portion is taken from
the pool at once and is the participant's until it is used or its package ends); a
participant never beyond its personal limit (MP-12; the initiator has none).  What the pool
or the limit does not pay goes on to the member's own minute/SMS packages and tariff
(MP-13, MP-15; ``Then.CONTINUE``) or, for data, is refused: a participant's own internet
packages and pay-per-MB are suspended while it is in the group (MP-13), and a spent shared
internet package suspends internet for everyone (MP-15).  When the shared internet runs out
and the initiator takes extras (MP-14, on unless declined) one extra package is bought for
the initiator and shared.  While the initiator is blocked (MP-16) participants' minutes and
SMS go to their own tariffs and their internet is suspended.  Abroad (MP-22) a participant's
internet is suspended; its minutes are paid from the shared packages in the countries of
the initiator's «Забугорище», whose day fee goes to the initiator at most once a day.

**Notices.** The member whose use spends a shared package triggers an SMS to every member
(MP-15); a participant reaching a personal limit gets one (MP-12); each use refused for data
gets an SMS naming why.  Confirmations go to both sides of every join, removal and exit
(MP-10, MP-18, MP-19); MP-21's changes (``World.on_change``) disband or leave with SMS.

**The fee (MP-17).**  52 ₽ on the day the first participant joins and monthly on that date
(a recurring charge owned by this service).  With too little money on a due date the fee
goes daily (2,10 ₽, SMS) and each day the full monthly fee is tried first; when it fits it is
charged, the monthly date moves to that day, and an SMS says so.

Choices where the seed is open (SPEC: "choose what a real operator would do"):

* The invitation SMS names the four last digits of the inviter (``ДА#4567``); any number of
  last digits is accepted.  A suffix that fits no pending inviter, or several, and a bare
  «ДА»/«НЕТ» with several invitations pending, get a reply listing the inviters with the
  shortest unambiguous suffix of each.  Accepting one invitation annuls the others.
* Inviting someone already invited and not yet answered is refused (the hour runs on).
  Pending invitations do not hold places; whoever accepts the last place first gets it.
* Removing the last participant disbands the group (the seed's way to disband through
  «Личный кабинет»); pending invitations stay valid.  An explicit disband (``*434*0#`` by
  the initiator) and MP-21 annul them.
* Group info (MP-20) is sent by SMS, the USSD screen says so: five members' data would not
  fit 80 UCS2 characters.  The initiator's SMS lists what the seed lists: the number of
  participants and their numbers, the shared packages, personal limits, each
  participant's use, the renewal date (its own use is the packages' remainder).
* Personal limits count per period of the shared packages (the initiator's billing period);
  data limits count the portions handed out.  The unused rest of a portion is lost when the
  participant leaves or its package ends.
* The extra package (MP-14) and its price are the profile's ``services.shared_bundle.extra_data``.
* MP-17 while blocked: a monthly due date that falls in a block is deferred; at the unblock
  each deferred fee is charged, except one whose due date lies in a calendar month the number
  spent wholly blocked for lack of money, which is waived; without the money for a deferred
  fee the regime goes daily.  Days of the daily regime spent blocked are not charged.
"""

from __future__ import annotations

import datetime as _dt
import enum
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Final, cast

import attrs

from parsers import SHORT_NUMBERS, ParseError, normalize
from parsers.commands import (
    AcceptInvitation,
    DeclineInvitation,
    GroupInfo,
    InviteMember,
    LeaveGroup,
    RemoveMember,
)
from parsers.msisdn import is_wire
from services import charging
from services.charging import Claim, Then, Usage
from services.clock import DAY, add_months, day_of_month, parse_duration
from services.dispatch import (
    ActionAnswer,
    ActionRegistry,
    Context,
    Outcome,
    Screen,
    ServiceDirectory,
    mount_routes,
)
from services.model import (
    DomainError,
    FeeStatus,
    InvalidValue,
    Package,
    Period,
    RecurringCharge,
    Subscriber,
    SubscriberChanged,
    SubscriberStatus,
    UnknownField,
    UnknownMsisdn,
    UsageKind,
    WrongType,
    to_json,
)
from services.outbox import Params, Reply, render_template, require_template
from services.profiles import Profile, ProfileError

if TYPE_CHECKING:
    from services.world import World

PROFILE: Final = "mts"
#: The key of the facts in the profile, the owner of the fee, the prefix of its ledger refs.
SERVICE: Final = "shared_bundle"
FEE_CODE: Final = "shared_bundle"
EXTRA_SOURCE: Final = "shared_bundle:extra"
_DEFERRED: Final = "deferred: blocked"
_WAIVED: Final = "waived: a calendar month blocked for lack of money"
_DAILY_INSTEAD: Final = "not charged: the daily regime took over"
_KINDS: Final = (UsageKind.DATA, UsageKind.VOICE, UsageKind.SMS)

# -- the facts of the profile (services.shared_bundle) ---------------------------------------------


@attrs.frozen(kw_only=True)
class ExtraPackage:
    """The extra internet package bought for the initiator when the shared one runs out (MP-14)."""

    amount: int
    fee: int
    label: str


@attrs.frozen(kw_only=True)
class Settings:
    """``services.shared_bundle`` of the profile, checked (seed 002 facts, MP-01 … MP-22)."""

    sms_number: str  # where invitations come from and «ДА»/«НЕТ» go (MP-07)
    max_members: int  # MP-03: the initiator and five participants
    invitation_ttl: int  # MP-09
    data_portion_mb: int  # MP-11
    fee_monthly: int  # MP-17
    fee_daily: int  # MP-17
    suffix_digits: int  # MP-07: how many last digits the invitation suggests
    initiator_tariffs: frozenset[str]  # MP-01
    excluded_participant_tariffs: frozenset[str]  # MP-02
    invitation_required_options: frozenset[str]  # MP-06
    roaming_option: str  # MP-22 «Забугорище»
    internet_redirect: str  # MP-15, MP-16
    initiator_option: str  # MP-17 «Общий пакет. Инициатор группы»
    participant_option: str  # MP-17 «Участник группы»
    personal_sources: frozenset[str]  # packages that are never shared («Турбо-кнопка»)
    extra_data: ExtraPackage | None  # MP-14
    extras_by_default: bool

    @property
    def max_participants(self) -> int:
        return self.max_members - 1


class _Facts:
    """One mapping of ``services.shared_bundle`` being read; unknown keys are refused."""

    def __init__(self, profile: Profile, data: object, where: str) -> None:
        if not isinstance(data, Mapping):
            raise ProfileError(profile.source, None, f"{where}: expected a mapping")
        self.profile, self.data, self.where = profile, data, where
        self._read: set[str] = set()

    def error(self, key: str, reason: str) -> ProfileError:
        return ProfileError(self.profile.source, None, f"{self.where}.{key}: {reason}")

    def raw(self, key: str, default: object = ...) -> Any:
        self._read.add(key)
        if key not in self.data:
            if default is ...:
                raise self.error(key, "required field missing")
            return default
        return self.data[key]

    def text(self, key: str, default: object = ...) -> str:
        value = self.raw(key, default)
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"expected a non-empty text, got {value!r}")
        return value

    def whole(self, key: str, default: object = ..., *, minimum: int = 0) -> int:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(key, f"expected a whole number of at least {minimum}, got {value!r}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {value!r}")
        return value

    def duration(self, key: str, default: object = ...) -> int:
        value = self.raw(key, default)
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None

    def codes(self, key: str, known: Mapping[str, object], what: str) -> frozenset[str]:
        value = self.raw(key, ())
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise self.error(key, f"expected a list of {what} codes")
        for code in value:
            if code not in known:
                raise self.error(key, f"unknown {what} {code!r}")
        return frozenset(value)

    def finish(self) -> None:
        for key in self.data:
            if key not in self._read:
                raise self.error(str(key), "unknown field")


@functools.cache
def read_settings(profile: Profile) -> Settings:
    """The service's facts of ``profile``, or ``ProfileError`` naming the field and reason."""
    facts = _Facts(profile, profile.services.get(SERVICE), f"services.{SERVICE}")
    number = facts.text("sms_number")
    if number not in profile.short_numbers.values():
        raise facts.error("sms_number", f"{number} is not among the profile's short_numbers")
    if SHORT_NUMBERS.get(profile.name, number) != number:
        raise facts.error(
            "sms_number", f"the SMS parser takes «ДА»/«НЕТ» at {SHORT_NUMBERS[profile.name]}"
        )
    extra = None
    if facts.raw("extra_data", None) is not None:
        extra_facts = _Facts(profile, facts.raw("extra_data"), f"{facts.where}.extra_data")
        extra = ExtraPackage(
            amount=extra_facts.whole("amount", minimum=1),
            fee=extra_facts.whole("fee"),
            label=extra_facts.text("label"),
        )
        extra_facts.finish()
    personal_tags = facts.raw("personal_option_tags", ())
    if isinstance(personal_tags, str) or not isinstance(personal_tags, Sequence):
        raise facts.error("personal_option_tags", "expected a list of option tags")
    roaming = facts.text("roaming_option")
    initiator_option = facts.text("initiator_option")
    participant_option = facts.text("participant_option")
    for key, code in (
        ("roaming_option", roaming),
        ("initiator_option", initiator_option),
        ("participant_option", participant_option),
    ):
        if code not in profile.options:
            raise facts.error(key, f"unknown option {code!r}")
    if profile.options[roaming].roaming is None:
        raise facts.error("roaming_option", f"option {roaming!r} has no roaming terms")
    settings = Settings(
        sms_number=number,
        max_members=facts.whole("max_members", minimum=2),
        invitation_ttl=facts.duration("invitation_ttl"),
        data_portion_mb=facts.whole("data_portion_mb", minimum=1),
        fee_monthly=facts.whole("fee_monthly"),
        fee_daily=facts.whole("fee_daily"),
        suffix_digits=facts.whole("suffix_digits", 4, minimum=1),
        initiator_tariffs=facts.codes("initiator_tariffs", profile.tariffs, "tariff"),
        excluded_participant_tariffs=facts.codes(
            "excluded_participant_tariffs", profile.tariffs, "tariff"
        ),
        invitation_required_options=facts.codes(
            "invitation_required_options", profile.options, "option"
        ),
        roaming_option=roaming,
        internet_redirect=facts.text("internet_redirect"),
        initiator_option=initiator_option,
        participant_option=participant_option,
        personal_sources=frozenset(
            f"option:{code}"
            for code, option in profile.options.items()
            if option.tags & set(personal_tags)
        ),
        extra_data=extra,
        extras_by_default=facts.flag("extras_by_default", True),
    )
    if not settings.initiator_tariffs:
        raise facts.error("initiator_tariffs", "at least one tariff is needed")
    facts.finish()
    return settings


def settings_of(world: World) -> Settings:
    return read_settings(world.profiles.profile(PROFILE))


# -- refusals --------------------------------------------------------------------------------------


class SharedBundleRefused(DomainError):
    """A request the «Общий пакет» rules refuse; ``code`` is the reason and names its reply."""

    code: ClassVar[str] = "shared_bundle_refused"
    http_status: ClassVar[int] = 409
    #: the parameters of the reply template ``shared_bundle.refused.<code>``
    template_params: ClassVar[tuple[str, ...]] = ()

    def __init__(self, message: str, **params: object) -> None:
        super().__init__(message)
        self.params = Params(params)

    @classmethod
    def template(cls) -> str:
        return f"shared_bundle.refused.{cls.code}"

    def screen(self) -> Screen:
        return Screen(template=self.template(), params=self.params)


class InitiatorTariff(SharedBundleRefused):
    """MP-01: only «Наш Smart» subscribers can be initiators."""

    code = "initiator_tariff"


class ParticipantTariff(SharedBundleRefused):
    """MP-02: the invitee's tariff cannot take part."""

    code = "participant_tariff"
    template_params = ("msisdn", "tariff")


class NotMtsSubscriber(SharedBundleRefused):
    """MP-03: the invitee is not an MTS subscriber."""

    code = "not_mts_subscriber"
    template_params = ("msisdn",)


class OtherRegion(SharedBundleRefused):
    """MP-03: the invitee's home region differs from the initiator's."""

    code = "other_region"
    template_params = ("msisdn",)


class GroupFull(SharedBundleRefused):
    """MP-03: six members already."""

    code = "group_full"
    template_params = ("max_members", "max_participants")


class InviteeInGroup(SharedBundleRefused):
    """MP-04: the invitee already belongs to a group."""

    code = "invitee_in_group"
    template_params = ("msisdn",)


class AlreadyInGroup(SharedBundleRefused):
    """MP-04: the one accepting already belongs to a group."""

    code = "already_in_group"


class InviterIsParticipant(SharedBundleRefused):
    """MP-04: a participant cannot create a group of its own."""

    code = "inviter_is_participant"


class SelfInvite(SharedBundleRefused):
    """An initiator cannot invite its own number."""

    code = "self_invite"


class AlreadyInvited(SharedBundleRefused):
    """An invitation to the same number waits for its answer (MP-09's hour runs on)."""

    code = "already_invited"
    template_params = ("msisdn", "until")


class NotActive(SharedBundleRefused):
    """A blocked or terminated number cannot manage a group."""

    code = "not_active"


class NoInvitation(SharedBundleRefused):
    """MP-07, MP-08: «ДА»/«НЕТ» with no invitation pending (none sent, or annulled: MP-09)."""

    code = "no_invitation"
    http_status = 404


class InviterUnavailable(SharedBundleRefused):
    """MP-01, MP-04 at acceptance: the inviter can no longer be an initiator."""

    code = "inviter_unavailable"
    template_params = ("msisdn",)


class NotInitiator(SharedBundleRefused):
    """MP-12, MP-18: only the initiator manages the group."""

    code = "not_initiator"


class NotParticipant(SharedBundleRefused):
    """MP-12, MP-18: the number is not a participant of the asker's group."""

    code = "not_participant"
    template_params = ("msisdn",)
    http_status = 404


class NotInGroup(SharedBundleRefused):
    """MP-19, MP-20: the asker is in no group."""

    code = "not_in_group"
    http_status = 404


class NotInvited(SharedBundleRefused):
    """No pending invitation from the asker to that number."""

    code = "not_invited"
    template_params = ("msisdn",)
    http_status = 404


REFUSALS: Final[tuple[type[SharedBundleRefused], ...]] = (
    InitiatorTariff,
    ParticipantTariff,
    NotMtsSubscriber,
    OtherRegion,
    GroupFull,
    InviteeInGroup,
    AlreadyInGroup,
    InviterIsParticipant,
    SelfInvite,
    AlreadyInvited,
    NotActive,
    NoInvitation,
    InviterUnavailable,
    NotInitiator,
    NotParticipant,
    NotInGroup,
    NotInvited,
)


def _need(key: str, *params: str) -> str:
    return require_template(f"shared_bundle.{key}", *params, profiles=[PROFILE]).key


for _refusal in REFUSALS:
    require_template(_refusal.template(), *_refusal.template_params, profiles=[PROFILE])

INVITATION: Final = _need("invitation", "initiator", "number", "suffix", "until")
INVITATION_SENT: Final = _need("invitation_sent", "invitee", "until")
JOINED_AT_ONCE: Final = _need("joined_at_once", "invitee")
JOINED_INITIATOR: Final = _need("joined_initiator", "participant", "count", "max_participants")
JOINED_PARTICIPANT: Final = _need("joined_participant", "initiator")
DECLINED_INVITEE: Final = _need("declined_invitee", "initiator")
DECLINED_INITIATOR: Final = _need("declined_initiator", "invitee")
INVITATION_EXPIRED: Final = _need("invitation_expired", "invitee")
INVITATION_CANCELLED: Final = _need("invitation_cancelled", "initiator")
CANCELLED: Final = _need("cancelled", "invitee")
CHOOSE_INVITATION: Final = _need("choose_invitation", "choices")
UNKNOWN_SUFFIX: Final = _need("unknown_suffix", "suffix", "choices")
AMBIGUOUS_SUFFIX: Final = _need("ambiguous_suffix", "suffix", "choices")
CHOICE_ITEM: Final = _need("choice_item", "inviter", "word", "suffix")
WORD_YES: Final = _need("word.yes")
WORD_NO: Final = _need("word.no")
REMOVED_INITIATOR: Final = _need("removed_initiator", "participant")
REMOVED_PARTICIPANT: Final = _need("removed_participant", "initiator")
LEFT_PARTICIPANT: Final = _need("left_participant", "initiator")
LEFT_INITIATOR: Final = _need("left_initiator", "participant")
DISBANDED_INITIATOR: Final = _need("disbanded_initiator")
DISBANDED_PARTICIPANT: Final = _need("disbanded_participant", "initiator")
LEFT_BY_TARIFF: Final = _need("left_by_tariff", "initiator", "tariff")
LEFT_BY_OWNER: Final = _need("left_by_owner", "initiator")
MEMBER_LEFT_BY_CHANGE: Final = _need("member_left_by_change", "participant")
DISBANDED_BY_CHANGE: Final = _need("disbanded_by_change", "initiator")
DISBANDED_BY_CHANGE_INITIATOR: Final = _need("disbanded_by_change_initiator")
INFO_SENT: Final = _need("info_sent")
INFO_INITIATOR: Final = _need(
    "info_initiator",
    "count",
    "max_participants",
    "members",
    "data_size",
    "data_left",
    "voice_size",
    "voice_left",
    "sms_size",
    "sms_left",
    "renewal",
)
INFO_MEMBER_LINE: Final = _need(
    "info_member_line",
    "msisdn",
    "data_used",
    "voice_used",
    "sms_used",
    "data_limit",
    "voice_limit",
    "sms_limit",
)
INFO_NO_MEMBERS: Final = _need("info_no_members")
INFO_NO_LIMIT: Final = _need("info_no_limit")
INFO_PARTICIPANT: Final = _need(
    "info_participant",
    "initiator",
    "data_size",
    "voice_size",
    "sms_size",
    "data_used",
    "voice_used",
    "sms_used",
    "renewal",
)
PICK_MEMBER: Final = _need("pick_member", "choices")
PICK_ITEM: Final = _need("pick_item", "number", "msisdn")
EXHAUSTED: Final = {kind: _need(f"exhausted.{kind}", "redirect") for kind in _KINDS}
LIMIT_REACHED: Final = {kind: _need(f"limit_reached.{kind}", "redirect") for kind in _KINDS}
LIMIT_RESTORED: Final = _need("limit_restored")
LIMITS_SAVED: Final = _need("limits_saved", "participant")
LIMITS_CHANGED: Final = _need("limits_changed", "initiator", "data", "voice", "sms")
EXTRAS_ON: Final = _need("extras_on")
EXTRAS_OFF: Final = _need("extras_off")
EXTRA_BOUGHT: Final = _need("extra_bought", "package", "fee")
NO_SHARED_INTERNET: Final = _need("no_shared_internet", "redirect")
INITIATOR_BLOCKED: Final = _need("initiator_blocked", "initiator", "redirect")
INITIATOR_UNBLOCKED: Final = _need("initiator_unblocked", "initiator")
BLOCKED_INTERNET: Final = _need("blocked_internet", "redirect")
ABROAD_INTERNET: Final = _need("abroad_internet", "redirect")
FEE_DAILY: Final = _need("fee_daily", "name", "monthly", "daily")
FEE_MONTHLY_AGAIN: Final = _need("fee_monthly_again", "name", "monthly", "next")
FAILED: Final = _need("failed")
#: Short screens (a USSD message holds 80 UCS2 characters, GW-11); the SMS say the rest.
SCREEN_LEFT: Final = _need("screen.left", "initiator")
SCREEN_DISBANDED: Final = _need("screen.disbanded")
FEE_CHARGED_KEY: Final = "fee_charged"

# -- values ----------------------------------------------------------------------------------------


class Role(enum.StrEnum):
    """A member's place in a group (MP-10)."""

    INITIATOR = "initiator"
    PARTICIPANT = "participant"


class InvitationStatus(enum.StrEnum):
    """What became of an invitation (MP-07 … MP-09)."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"  # MP-09: not answered within the hour
    CANCELLED = "cancelled"  # withdrawn, annulled by another acceptance or a disband
    REFUSED = "refused"  # accepted, but the rules no longer allowed the join


@attrs.frozen(kw_only=True)
class Invitation:
    id: int
    initiator: str
    invitee: str
    sent_at: int
    expires_at: int
    status: InvitationStatus
    closed_at: int | None


@attrs.frozen(kw_only=True)
class Member:
    msisdn: str
    group_id: int
    role: Role
    joined_at: int
    portion: int  # MB left of the participant's current portion (MP-11)
    portion_until: int | None


@attrs.frozen(kw_only=True)
class SharedBundleGroup:
    """One group: its initiator, participants (joining order) and settings (MP-10, MP-14, MP-17)."""

    id: int
    initiator: str
    created_at: int
    extras: bool
    fee_mode: Period
    participants: tuple[str, ...]


@attrs.frozen(kw_only=True)
class SharedPackage:
    """The group's shared package of one kind: its size this period and what is left (MP-20)."""

    kind: UsageKind
    size: int
    remaining: int


@attrs.frozen(kw_only=True)
class ParticipantEntry:
    """A participant as the initiator sees it (MP-20): number, limits, use this period."""

    msisdn: str
    joined_at: int
    limits: Mapping[str, int | None]
    used: Mapping[str, int]


@attrs.frozen(kw_only=True)
class InitiatorView:
    """MP-20, initiator: participants and their numbers, shared packages, limits, use, renewal."""

    role: Role
    initiator: str
    participants: tuple[ParticipantEntry, ...]
    max_participants: int
    packages: tuple[SharedPackage, ...]
    renewal: int | None
    extras: bool
    fee_mode: Period


@attrs.frozen(kw_only=True)
class ParticipantView:
    """MP-20, participant: the initiator's number, what is available to it, its use, renewal."""

    role: Role
    initiator: str
    available: Mapping[str, int]
    used: Mapping[str, int]
    limits: Mapping[str, int | None]
    renewal: int | None


GroupView = InitiatorView | ParticipantView

# -- the tables ------------------------------------------------------------------------------------

#: The service's own schema versions (never edit a shipped one: add the next).
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE shared_bundle_groups (
            id         INTEGER PRIMARY KEY AUTOINCREMENT,
            initiator  TEXT NOT NULL UNIQUE REFERENCES subscribers (msisdn),
            created_at INTEGER NOT NULL,
            extras     INTEGER NOT NULL,                  -- MP-14: extra internet is bought
            fee_mode   TEXT NOT NULL DEFAULT 'month',     -- MP-17: month | day
            financial_block_since INTEGER                 -- MP-17: the block for lack of money
        )""",
        """CREATE TABLE shared_bundle_members (
            msisdn        TEXT PRIMARY KEY REFERENCES subscribers (msisdn),  -- MP-04: one group
            group_id      INTEGER NOT NULL REFERENCES shared_bundle_groups (id),
            role          TEXT NOT NULL,                  -- initiator | participant
            joined_at     INTEGER NOT NULL,
            portion       INTEGER NOT NULL DEFAULT 0,     -- MP-11: MB left of the portion
            portion_until INTEGER                         -- the portion's package ends then
        ) WITHOUT ROWID""",
        "CREATE INDEX shared_bundle_members_group ON shared_bundle_members (group_id, joined_at)",
        """CREATE TABLE shared_bundle_limits (
            msisdn TEXT NOT NULL,                         -- MP-12: a participant's personal limit
            kind   TEXT NOT NULL,
            amount INTEGER NOT NULL CHECK (amount >= 0),
            PRIMARY KEY (msisdn, kind)
        ) WITHOUT ROWID""",
        """CREATE TABLE shared_bundle_use (
            group_id INTEGER NOT NULL,
            msisdn   TEXT NOT NULL,
            kind     TEXT NOT NULL,
            period   INTEGER NOT NULL,                    -- the renewal time of the packages
            used     INTEGER NOT NULL DEFAULT 0,          -- MP-20: used from the shared packages
            granted  INTEGER NOT NULL DEFAULT 0,          -- MP-11, MP-12: data portions handed
            PRIMARY KEY (group_id, msisdn, kind, period)
        ) WITHOUT ROWID""",
        """CREATE TABLE shared_bundle_invitations (
            id         INTEGER PRIMARY KEY AUTOINCREMENT,
            initiator  TEXT NOT NULL,
            invitee    TEXT NOT NULL,
            sent_at    INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,                  -- MP-09
            status     TEXT NOT NULL,
            closed_at  INTEGER
        )""",
        "CREATE INDEX shared_bundle_invitations_pending"
        " ON shared_bundle_invitations (expires_at) WHERE status = 'pending'",
        "CREATE INDEX shared_bundle_invitations_invitee"
        " ON shared_bundle_invitations (invitee, status)",
        "CREATE INDEX shared_bundle_invitations_initiator"
        " ON shared_bundle_invitations (initiator, status)",
    ),
)
_INVITATION_COLUMNS: Final = "id, initiator, invitee, sent_at, expires_at, status, closed_at"
_MEMBER_COLUMNS: Final = "msisdn, group_id, role, joined_at, portion, portion_until"


def _db(world: World) -> Any:
    return world.store.connection


def _invitation(row: Sequence[Any]) -> Invitation:
    return Invitation(
        id=int(row[0]),
        initiator=str(row[1]),
        invitee=str(row[2]),
        sent_at=int(row[3]),
        expires_at=int(row[4]),
        status=InvitationStatus(row[5]),
        closed_at=None if row[6] is None else int(row[6]),
    )


def _member_of(row: Sequence[Any]) -> Member:
    return Member(
        msisdn=str(row[0]),
        group_id=int(row[1]),
        role=Role(row[2]),
        joined_at=int(row[3]),
        portion=int(row[4]),
        portion_until=None if row[5] is None else int(row[5]),
    )


def member(world: World, msisdn: str) -> Member | None:
    """The membership of ``msisdn`` (MP-04: at most one), or None."""
    row = (
        _db(world)
        .execute(f"SELECT {_MEMBER_COLUMNS} FROM shared_bundle_members WHERE msisdn = ?", (msisdn,))
        .fetchone()
    )
    return None if row is None else _member_of(row)


def _group_row(world: World, where: str, value: object) -> SharedBundleGroup | None:
    row = (
        _db(world)
        .execute(
            "SELECT id, initiator, created_at, extras, fee_mode FROM shared_bundle_groups"
            f" WHERE {where} = ?",
            (value,),
        )
        .fetchone()
    )
    if row is None:
        return None
    participants = tuple(
        str(r[0])
        for r in _db(world).execute(
            "SELECT msisdn FROM shared_bundle_members WHERE group_id = ? AND role = 'participant'"
            " ORDER BY joined_at, msisdn",
            (row[0],),
        )
    )
    return SharedBundleGroup(
        id=int(row[0]),
        initiator=str(row[1]),
        created_at=int(row[2]),
        extras=bool(row[3]),
        fee_mode=Period(row[4]),
        participants=participants,
    )


def group_of(world: World, msisdn: str) -> SharedBundleGroup | None:
    """The group ``msisdn`` belongs to (as initiator or participant), or None."""
    found = member(world, msisdn)
    return None if found is None else _group_row(world, "id", found.group_id)


def groups(world: World) -> list[SharedBundleGroup]:
    """Every group, oldest first."""
    rows = _db(world).execute("SELECT id FROM shared_bundle_groups ORDER BY id").fetchall()
    return [g for (gid,) in rows if (g := _group_row(world, "id", gid)) is not None]


def invitations(
    world: World, *, invitee: str | None = None, initiator: str | None = None, pending: bool = True
) -> list[Invitation]:
    """Invitations to or from a number, oldest first (only the pending ones by default)."""
    clauses, args = [], []
    if invitee is not None:
        clauses.append("invitee = ?")
        args.append(invitee)
    if initiator is not None:
        clauses.append("initiator = ?")
        args.append(initiator)
    if pending:
        clauses.append("status = 'pending'")
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = (
        _db(world)
        .execute(
            f"SELECT {_INVITATION_COLUMNS} FROM shared_bundle_invitations{where} ORDER BY id",
            args,
        )
        .fetchall()
    )
    return [_invitation(row) for row in rows]


def _close_invitation(world: World, invitation_id: int, status: InvitationStatus, now: int) -> None:
    _db(world).execute(
        "UPDATE shared_bundle_invitations SET status = ?, closed_at = ? WHERE id = ?",
        (str(status), now, invitation_id),
    )


def _cancel_pending(world: World, *, now: int, invitee: str = "", initiator: str = "") -> None:
    column, value = ("invitee", invitee) if invitee else ("initiator", initiator)
    _db(world).execute(
        "UPDATE shared_bundle_invitations SET status = 'cancelled', closed_at = ?"
        f" WHERE {column} = ? AND status = 'pending'",
        (now, value),
    )


def _outcome(screen: Screen | None = None, replies: Iterable[Reply] = ()) -> Outcome:
    # Outcome's ``converter=tuple`` leaves mypy without the element type; Any gets past it.
    return Outcome(screen=screen, replies=cast(Any, tuple(replies)))


# -- small helpers ---------------------------------------------------------------------------------


def _sms(s: Settings, to: str, template: str, **params: object) -> Reply:
    return Reply(to=to, sender=s.sms_number, template=template, params=params, profile=PROFILE)


def _subscriber(world: World, msisdn: str) -> Subscriber | None:
    found = world.find(msisdn)
    if found is None or found.profile != PROFILE or found.status is SubscriberStatus.TERMINATED:
        return None
    return found


def _asker(world: World, msisdn: str) -> Subscriber:
    found = _subscriber(world, msisdn)
    if found is None:
        raise UnknownMsisdn(f"no MTS subscriber {msisdn!r}", field="msisdn")
    return found


def _period(world: World, initiator: str) -> int:
    """The renewal time of the initiator's packages: the key of this period's counters."""
    charge = world.get_recurring(initiator, charging.TARIFF)
    return 0 if charge is None else charge.next_at


def _limits(world: World, msisdn: str) -> dict[str, int | None]:
    found: dict[str, int | None] = {str(kind): None for kind in _KINDS}
    for kind, amount in _db(world).execute(
        "SELECT kind, amount FROM shared_bundle_limits WHERE msisdn = ?", (msisdn,)
    ):
        found[str(kind)] = int(amount)
    return found


def _use(world: World, group_id: int, msisdn: str, kind: UsageKind, period: int) -> tuple[int, int]:
    row = (
        _db(world)
        .execute(
            "SELECT used, granted FROM shared_bundle_use WHERE group_id = ? AND msisdn = ?"
            " AND kind = ? AND period = ?",
            (group_id, msisdn, str(kind), period),
        )
        .fetchone()
    )
    return (0, 0) if row is None else (int(row[0]), int(row[1]))


def _add_use(
    world: World,
    group_id: int,
    msisdn: str,
    kind: UsageKind,
    period: int,
    *,
    used: int = 0,
    granted: int = 0,
) -> None:
    _db(world).execute(
        "INSERT INTO shared_bundle_use (group_id, msisdn, kind, period, used, granted)"
        " VALUES (?,?,?,?,?,?) ON CONFLICT (group_id, msisdn, kind, period) DO UPDATE SET"
        " used = used + excluded.used, granted = granted + excluded.granted",
        (group_id, msisdn, str(kind), period, used, granted),
    )


# -- the shared packages (MP-11 … MP-16, MP-22) ----------------------------------------------------

_HOME: Final = ("home", "everywhere")


def _take(world: World, packages: Iterable[Package], amount: int) -> tuple[int, int | None]:
    """Take up to ``amount`` from the packages in order; (taken, earliest end of those used)."""
    taken, until = 0, None
    for package in packages:
        if taken == amount:
            break
        portion = min(amount - taken, package.remaining)
        if portion <= 0:
            continue
        world.consume_package(package.id, portion)
        taken += portion
        if package.valid_until is not None:
            until = package.valid_until if until is None else min(until, package.valid_until)
    return taken, until


def _take_personal(
    world: World, s: Settings, msisdn: str, usage: Usage, amount: int
) -> list[tuple[str, int]]:
    """The member's own personal packages («Турбо-кнопка») pay data first (seed §12, §13)."""
    paid: list[tuple[str, int]] = []
    left = amount
    for package in world.usable_packages(msisdn, usage.kind, now=usage.at, zones=_HOME):
        if left == 0:
            break
        if package.source not in s.personal_sources:
            continue
        portion = min(left, package.remaining)
        world.consume_package(package.id, portion)
        paid.append((f"package:{package.id}", portion))
        left -= portion
    return paid


def _buy_extra(
    world: World, s: Settings, group: SharedBundleGroup, now: int
) -> tuple[int, list[Reply]]:
    """MP-14: when the shared internet is spent, one extra package for the initiator, shared."""
    extra = s.extra_data
    initiator = world.get(group.initiator)
    if extra is None or not group.extras or not initiator.active:
        return 0, []
    if world.spendable(initiator) < extra.fee:
        return 0, []
    replies: list[Reply] = []
    if extra.fee:
        entry = world.debit(
            initiator.msisdn, extra.fee, now=now, reason="extra_package", reference=EXTRA_SOURCE
        )
        replies.extend(world.notices_for(entry))
    renewal = _period(world, initiator.msisdn)
    world.grant_package(
        initiator.msisdn,
        kind=UsageKind.DATA,
        amount=extra.amount,
        now=now,
        valid_until=renewal if renewal > now else None,
        source=EXTRA_SOURCE,
        label=extra.label,
    )
    replies.insert(0, _sms(s, initiator.msisdn, EXTRA_BOUGHT, package=extra.label, fee=extra.fee))
    return extra.amount, replies


def _everyone(
    s: Settings, group: SharedBundleGroup, template: str, **params: object
) -> list[Reply]:
    return [
        _sms(s, msisdn, template, **params) for msisdn in (group.initiator, *group.participants)
    ]


class _Draw:
    """One member's draw on the shared packages within one claim."""

    def __init__(
        self, world: World, s: Settings, group: SharedBundleGroup, who: Member, usage: Usage
    ) -> None:
        self.world, self.s, self.group, self.who, self.usage = world, s, group, who, usage
        self.period = _period(world, group.initiator)
        self.label = f"{SERVICE}:{group.initiator}"
        self.replies: list[Reply] = []
        self.told_everyone = False
        limit = (
            _limits(world, who.msisdn)[str(usage.kind)] if who.role is Role.PARTICIPANT else None
        )
        self.limit = limit

    def pool(self, zones: Sequence[str] = _HOME) -> list[Package]:
        return [
            p
            for p in self.world.usable_packages(
                self.group.initiator,
                self.usage.kind,
                now=self.usage.at,
                destination=self.usage.destination,
                zones=zones,
            )
            if p.source not in self.s.personal_sources
        ]

    def spent_everything(self) -> None:
        """MP-15 (and MP-14 first): the last unit of a shared package is gone."""
        kind = self.usage.kind
        if kind is UsageKind.DATA:
            bought, replies = _buy_extra(self.world, self.s, self.group, self.usage.at)
            self.replies.extend(replies)
            if bought:
                return
        self.replies.extend(
            _everyone(self.s, self.group, EXHAUSTED[kind], redirect=self.s.internet_redirect)
        )
        self.told_everyone = True

    def units(self, wanted: int, zones: Sequence[str] = _HOME) -> int:
        """Minutes or SMS: unit by unit from the pool, within the personal limit (MP-11, MP-12)."""
        kind = self.usage.kind
        used, _ = _use(self.world, self.group.id, self.who.msisdn, kind, self.period)
        allowance = wanted if self.limit is None else max(self.limit - used, 0)
        packages = self.pool(zones)
        available = sum(p.remaining for p in packages)
        taken, _ = _take(self.world, packages, min(wanted, allowance, available))
        if taken:
            _add_use(self.world, self.group.id, self.who.msisdn, kind, self.period, used=taken)
            if taken == available:
                self.spent_everything()
            if self.limit is not None and used < self.limit <= used + taken:
                self.replies.append(
                    _sms(
                        self.s,
                        self.who.msisdn,
                        LIMIT_REACHED[kind],
                        redirect=self.s.internet_redirect,
                    )
                )
        return taken

    def data_for_initiator(self, wanted: int) -> tuple[int, str | None]:
        """The initiator uses the shared internet directly (portions are for participants)."""
        total = 0
        while total < wanted:
            packages = self.pool()
            available = sum(p.remaining for p in packages)
            if available == 0:
                bought, replies = _buy_extra(self.world, self.s, self.group, self.usage.at)
                self.replies.extend(replies)
                if not bought:
                    break
                continue
            taken, _ = _take(self.world, packages, min(wanted - total, available))
            _add_use(
                self.world, self.group.id, self.who.msisdn, UsageKind.DATA, self.period, used=taken
            )
            total += taken
            if taken == available:
                self.spent_everything()
                if self.told_everyone:
                    break
        return total, None if total == wanted else "shared_internet_exhausted"

    def data_for_participant(self, wanted: int) -> tuple[int, str | None]:
        """MP-11: from the participant's 100 MB portion, a new portion when it is spent."""
        world, s, usage = self.world, self.s, self.usage
        portion = self.who.portion
        until = self.who.portion_until
        if until is not None and until <= usage.at:
            portion = 0
        paid = 0
        reason: str | None = None
        while paid < wanted:
            if portion:
                step = min(portion, wanted - paid)
                portion -= step
                paid += step
                continue
            _, granted = _use(world, self.group.id, self.who.msisdn, UsageKind.DATA, self.period)
            room = None if self.limit is None else max(self.limit - granted, 0)
            if room == 0:
                reason = "personal_limit"
                break
            packages = self.pool()
            available = sum(p.remaining for p in packages)
            if available == 0:
                bought, replies = _buy_extra(world, s, self.group, usage.at)
                self.replies.extend(replies)
                if not bought:
                    reason = "shared_internet_exhausted"
                    break
                packages = self.pool()
                available = sum(p.remaining for p in packages)
            size = min(s.data_portion_mb, available, s.data_portion_mb if room is None else room)
            taken, until = _take(world, packages, size)
            portion = taken
            _add_use(
                world, self.group.id, self.who.msisdn, UsageKind.DATA, self.period, granted=taken
            )
            if taken == available:
                self.spent_everything()
        if paid:
            _add_use(world, self.group.id, self.who.msisdn, UsageKind.DATA, self.period, used=paid)
        _db(world).execute(
            "UPDATE shared_bundle_members SET portion = ?, portion_until = ? WHERE msisdn = ?",
            (portion, until if portion else None, self.who.msisdn),
        )
        return paid, reason


def _refusal_notice(s: Settings, to: str, reason: str) -> Reply:
    template = {
        "personal_limit": LIMIT_REACHED[UsageKind.DATA],
        "shared_internet_exhausted": NO_SHARED_INTERNET,
        "initiator_blocked": BLOCKED_INTERNET,
        "abroad_internet": ABROAD_INTERNET,
    }[reason]
    return _sms(s, to, template, redirect=s.internet_redirect)


@attrs.frozen
class SharedBundleSource:
    """The usage source of the shared packages (``charging``'s protocol, MP-11 … MP-16, MP-22)."""

    name: str = SERVICE

    def claim(self, world: World, usage: Usage, remaining: int) -> Claim | None:
        if usage.subscriber.profile != PROFILE:
            return None
        who = member(world, usage.subscriber.msisdn)
        if who is None:
            return None
        group = _group_row(world, "id", who.group_id)
        if group is None:
            return None
        return _claim(world, settings_of(world), group, who, usage, remaining)


def _claim(
    world: World,
    s: Settings,
    group: SharedBundleGroup,
    who: Member,
    usage: Usage,
    remaining: int,
) -> Claim | None:
    initiator = world.get(group.initiator)
    participant = who.role is Role.PARTICIPANT
    if usage.abroad:
        if not participant:
            return None  # the initiator's own roaming terms: the core's («Забугорище» there too)
        return _claim_abroad(world, s, group, who, initiator, usage, remaining)
    paid: list[tuple[str, int]] = []
    if usage.kind is UsageKind.DATA:
        paid = _take_personal(world, s, who.msisdn, usage, remaining)
    left = remaining - sum(n for _, n in paid)
    if participant and not initiator.active:
        # MP-16: the shared packages are closed; minutes and SMS go to the own tariff.
        if usage.kind is not UsageKind.DATA:
            return None
        if not left:
            return Claim(paid=tuple(paid))
        return Claim(
            paid=tuple(paid),
            then=Then.REFUSE,
            reason="initiator_blocked",
            replies=(_refusal_notice(s, who.msisdn, "initiator_blocked"),),
        )
    draw = _Draw(world, s, group, who, usage)
    if left and usage.kind is not UsageKind.DATA:
        taken = draw.units(left)
        if taken:
            paid.append((draw.label, taken))
        return Claim(paid=tuple(paid), replies=tuple(draw.replies))
    reason: str | None = None
    if left:
        taken, reason = (
            draw.data_for_participant(left) if participant else draw.data_for_initiator(left)
        )
        if taken:
            paid.append((draw.label, taken))
        left -= taken
    if not left:
        return Claim(paid=tuple(paid), replies=tuple(draw.replies))
    reason = reason or "shared_internet_exhausted"
    if not (draw.told_everyone and reason == "shared_internet_exhausted"):
        draw.replies.append(_refusal_notice(s, who.msisdn, reason))
    # MP-13/MP-15: the own internet stays suspended while in the group.
    return Claim(paid=tuple(paid), then=Then.REFUSE, reason=reason, replies=tuple(draw.replies))


def _claim_abroad(
    world: World,
    s: Settings,
    group: SharedBundleGroup,
    who: Member,
    initiator: Subscriber,
    usage: Usage,
    remaining: int,
) -> Claim | None:
    """MP-22: internet suspended; minutes shared in the initiator's «Забугорище» countries."""
    if usage.kind is UsageKind.DATA:
        return Claim(
            then=Then.REFUSE,
            reason="abroad_internet",
            replies=(_refusal_notice(s, who.msisdn, "abroad_internet"),),
        )
    if usage.kind is not UsageKind.VOICE or not initiator.active:
        return None
    option = world.profile_of(initiator).options[s.roaming_option]
    covered = option.roaming is not None and usage.country in option.roaming.countries
    if not covered or not initiator.has_option(s.roaming_option):
        return None
    draw = _Draw(world, s, group, who, usage)
    used, _ = _use(world, group.id, who.msisdn, usage.kind, draw.period)
    room = remaining if draw.limit is None else max(draw.limit - used, 0)
    if not room or not sum(p.remaining for p in draw.pool()):
        return None
    day_paid, notices = charging.charge_roaming_day(world, initiator.msisdn, option, now=usage.at)
    if not day_paid:
        return None
    taken = draw.units(remaining)
    paid = ((draw.label, taken),) if taken else ()
    return Claim(paid=paid, replies=(*notices, *draw.replies))


# -- joining (MP-01 … MP-10, MP-17) ----------------------------------------------------------------


def _check_initiator(world: World, s: Settings, initiator: Subscriber) -> None:
    if not initiator.active:
        raise NotActive(f"{initiator.msisdn} is not active")
    if initiator.tariff not in s.initiator_tariffs:
        raise InitiatorTariff(
            f"{initiator.msisdn} is on {initiator.tariff}, not an initiator tariff"
        )
    found = member(world, initiator.msisdn)
    if found is not None and found.role is Role.PARTICIPANT:
        raise InviterIsParticipant(f"{initiator.msisdn} is a participant of another group")


def _check_invitee(world: World, s: Settings, initiator: Subscriber, msisdn: str) -> Subscriber:
    if msisdn == initiator.msisdn:
        raise SelfInvite("an initiator cannot invite itself")
    invitee = _subscriber(world, msisdn)
    if invitee is None:
        raise NotMtsSubscriber(f"{msisdn} is not an MTS subscriber", msisdn=msisdn)
    if invitee.region != initiator.region:
        raise OtherRegion(f"{msisdn} is of region {invitee.region}", msisdn=msisdn)
    if invitee.tariff in s.excluded_participant_tariffs:
        tariff = world.tariff_of(invitee).name
        raise ParticipantTariff(f"{msisdn} is on {tariff}", msisdn=msisdn, tariff=tariff)
    if member(world, msisdn) is not None:
        raise InviteeInGroup(f"{msisdn} is in a group", msisdn=msisdn)
    return invitee


def _check_room(s: Settings, group: SharedBundleGroup | None) -> None:
    if group is not None and len(group.participants) >= s.max_participants:
        raise GroupFull(
            f"the group of {group.initiator} is full",
            max_members=s.max_members,
            max_participants=s.max_participants,
        )


def _joins_at_once(world: World, s: Settings, invitee: Subscriber) -> bool:
    """MP-06: no monthly fee and none of the internet options → no invitation needed."""
    codes = {option.code for option in invitee.options}
    return world.tariff_of(invitee).no_monthly_fee and not codes & s.invitation_required_options


def _join(world: World, s: Settings, initiator: str, invitee: str, now: int) -> list[Reply]:
    """MP-10: add a participant, creating the group on the first join; SMS to both."""
    group = _group_row(world, "initiator", initiator)
    replies: list[Reply] = []
    setup: list[Reply] = []
    if group is None:
        gid = (
            _db(world)
            .execute(
                "INSERT INTO shared_bundle_groups (initiator, created_at, extras) VALUES (?,?,?)"
                " RETURNING id",
                (initiator, now, int(s.extras_by_default)),
            )
            .fetchone()[0]
        )
        _db(world).execute(
            "INSERT INTO shared_bundle_members (msisdn, group_id, role, joined_at)"
            " VALUES (?,?,'initiator',?)",
            (initiator, gid, now),
        )
        setup += world.set_option(initiator, s.initiator_option, now=now)
        setup += _start_fee(world, s, initiator, now)
        group = _group_row(world, "id", gid)
        assert group is not None
    _check_room(s, group)
    _db(world).execute(
        "INSERT INTO shared_bundle_members (msisdn, group_id, role, joined_at)"
        " VALUES (?,?,'participant',?)",
        (invitee, group.id, now),
    )
    # MP-04: a participant neither creates a group nor waits for another one.
    _cancel_pending(world, now=now, invitee=invitee)
    _cancel_pending(world, now=now, initiator=invitee)
    setup += world.set_option(invitee, s.participant_option, now=now)
    count = len(group.participants) + 1
    replies.append(
        _sms(
            s,
            initiator,
            JOINED_INITIATOR,
            participant=invitee,
            count=count,
            max_participants=s.max_participants,
        )
    )
    replies.append(_sms(s, invitee, JOINED_PARTICIPANT, initiator=initiator))
    return replies + setup


def invite(world: World, initiator: str, invitee: str, *, now: int) -> Outcome:
    """MP-05, MP-06: invite a number; it joins at once or gets an SMS invitation from 434."""
    s = settings_of(world)
    with world.transaction():
        asker = _asker(world, initiator)
        _check_initiator(world, s, asker)
        target = _check_invitee(world, s, asker, invitee)
        _check_room(s, _group_row(world, "initiator", initiator))
        for waiting in invitations(world, invitee=invitee, initiator=initiator):
            if waiting.expires_at > now:
                raise AlreadyInvited(
                    f"{invitee} has been invited", msisdn=invitee, until=waiting.expires_at
                )
            # Its hour is over but the clock has not fired yet: the new invitation replaces it.
            _close_invitation(world, waiting.id, InvitationStatus.EXPIRED, waiting.expires_at)
        if _joins_at_once(world, s, target):
            replies = _join(world, s, initiator, invitee, now)
            return _outcome(screen=Screen(template=JOINED_AT_ONCE, params={"invitee": invitee}),
                           replies=replies)  # fmt: skip
        until = now + s.invitation_ttl
        _db(world).execute(
            "INSERT INTO shared_bundle_invitations (initiator, invitee, sent_at, expires_at,"
            " status) VALUES (?,?,?,?,'pending')",
            (initiator, invitee, now, until),
        )
        sms = _sms(
            s,
            invitee,
            INVITATION,
            initiator=initiator,
            number=s.sms_number,
            suffix=initiator[-s.suffix_digits :],
            until=until,
        )
        screen = Screen(template=INVITATION_SENT, params={"invitee": invitee, "until": until})
        return _outcome(screen=screen, replies=[sms])


def _shortest_suffixes(numbers: Sequence[str], minimum: int) -> dict[str, str]:
    """The shortest ending (at least ``minimum`` digits) that tells each number from the rest."""
    result = {}
    for number in numbers:
        for length in range(min(minimum, len(number)), len(number) + 1):
            ending = number[-length:]
            if sum(other.endswith(ending) for other in numbers) == 1 or length == len(number):
                result[number] = ending
                break
    return result


def _choices(world: World, s: Settings, pending: Sequence[Invitation], word: str) -> str:
    profile = world.profiles.profile(PROFILE)
    numbers = [i.initiator for i in pending]
    suffixes = _shortest_suffixes(numbers, s.suffix_digits)
    word_text = render_template(profile, word, {})
    return "; ".join(
        render_template(
            profile, CHOICE_ITEM, {"inviter": n, "word": word_text, "suffix": suffixes[n]}
        )
        for n in numbers
    )


def _pick_invitation(
    world: World,
    s: Settings,
    invitee: str,
    now: int,
    *,
    suffix: str | None,
    inviter: str | None,
    word: str,
) -> Invitation | Screen:
    """Which pending invitation «ДА»/«НЕТ» (or the API) means, or the screen asking which."""
    pending = [i for i in invitations(world, invitee=invitee) if i.expires_at > now]
    if inviter is not None:
        pending = [i for i in pending if i.initiator == inviter]
        if not pending:
            raise NoInvitation(f"no invitation from {inviter} to {invitee}")
        return pending[-1]
    if not pending:
        raise NoInvitation(f"no invitation pending for {invitee}")
    if suffix is None:
        if len(pending) == 1:
            return pending[0]
        return Screen(
            template=CHOOSE_INVITATION, params={"choices": _choices(world, s, pending, word)}
        )
    matching = [i for i in pending if i.initiator.endswith(suffix)]
    if len({i.initiator for i in matching}) == 1:
        return matching[-1]
    if not matching:
        choices = _choices(world, s, pending, word)
        return Screen(template=UNKNOWN_SUFFIX, params={"suffix": suffix, "choices": choices})
    choices = _choices(world, s, matching, word)
    return Screen(template=AMBIGUOUS_SUFFIX, params={"suffix": suffix, "choices": choices})


def accept_invitation(
    world: World,
    invitee: str,
    *,
    now: int,
    suffix: str | None = None,
    inviter: str | None = None,
) -> Outcome:
    """MP-07: «ДА» / «ДА#XXXX» (or the API with the inviter's number); free of charge."""
    s = settings_of(world)
    with world.transaction():
        who = _asker(world, invitee)
        picked = _pick_invitation(
            world, s, invitee, now, suffix=suffix, inviter=inviter, word=WORD_YES
        )
        if isinstance(picked, Screen):
            return _outcome(screen=picked)
        if member(world, invitee) is not None:
            raise AlreadyInGroup(f"{invitee} is already in a group")
        initiator = _subscriber(world, picked.initiator)
        try:
            if initiator is None:
                raise InviterUnavailable(f"{picked.initiator} left MTS", msisdn=picked.initiator)
            try:
                _check_initiator(world, s, initiator)
            except SharedBundleRefused:
                raise InviterUnavailable(
                    f"{picked.initiator} cannot be an initiator now", msisdn=picked.initiator
                ) from None
            _check_invitee(world, s, initiator, who.msisdn)
            _check_room(s, _group_row(world, "initiator", initiator.msisdn))
        except SharedBundleRefused as refusal:
            _close_invitation(world, picked.id, InvitationStatus.REFUSED, now)
            return _outcome(screen=refusal.screen())
        _close_invitation(world, picked.id, InvitationStatus.ACCEPTED, now)
        return _outcome(replies=_join(world, s, picked.initiator, invitee, now))


def decline_invitation(
    world: World,
    invitee: str,
    *,
    now: int,
    suffix: str | None = None,
    inviter: str | None = None,
) -> Outcome:
    """MP-08: «НЕТ» / «НЕТ#XXXX» (or the API); the initiator is told."""
    s = settings_of(world)
    with world.transaction():
        _asker(world, invitee)
        picked = _pick_invitation(
            world, s, invitee, now, suffix=suffix, inviter=inviter, word=WORD_NO
        )
        if isinstance(picked, Screen):
            return _outcome(screen=picked)
        _close_invitation(world, picked.id, InvitationStatus.DECLINED, now)
        return _outcome(
            screen=Screen(template=DECLINED_INVITEE, params={"initiator": picked.initiator}),
            replies=[_sms(s, picked.initiator, DECLINED_INITIATOR, invitee=invitee)],
        )


def cancel_invitation(world: World, initiator: str, invitee: str, *, now: int) -> Outcome:
    """The inviter withdraws a pending invitation (self-care); the invitee is told."""
    s = settings_of(world)
    with world.transaction():
        _asker(world, initiator)
        pending = [
            i
            for i in invitations(world, invitee=invitee, initiator=initiator)
            if i.expires_at > now
        ]
        if not pending:
            raise NotInvited(f"no pending invitation from {initiator} to {invitee}", msisdn=invitee)
        for found in pending:
            _close_invitation(world, found.id, InvitationStatus.CANCELLED, now)
        return _outcome(
            screen=Screen(template=CANCELLED, params={"invitee": invitee}),
            replies=[_sms(s, invitee, INVITATION_CANCELLED, initiator=initiator)],
        )


def _next_expiry(world: World) -> int | None:
    row = (
        _db(world)
        .execute("SELECT min(expires_at) FROM shared_bundle_invitations WHERE status = 'pending'")
        .fetchone()
    )
    return None if row[0] is None else int(row[0])


def expire_invitations(world: World, due: int) -> list[Reply]:
    """MP-09: invitations unanswered for an hour are annulled; the initiator is told."""
    s = settings_of(world)
    rows = (
        _db(world)
        .execute(
            "UPDATE shared_bundle_invitations SET status = 'expired', closed_at = expires_at"
            f" WHERE status = 'pending' AND expires_at <= ? RETURNING {_INVITATION_COLUMNS}",
            (due,),
        )
        .fetchall()
    )
    expired = sorted((_invitation(row) for row in rows), key=lambda i: (i.expires_at, i.id))
    return [_sms(s, i.initiator, INVITATION_EXPIRED, invitee=i.invitee) for i in expired]


# -- leaving (MP-18, MP-19, MP-21) -----------------------------------------------------------------


def _drop_participant(
    world: World, s: Settings, group: SharedBundleGroup, msisdn: str, now: int
) -> list[Reply]:
    """Take a participant out; the last one out disbands the group (seed: «исключите всех»)."""
    _db(world).execute("DELETE FROM shared_bundle_members WHERE msisdn = ?", (msisdn,))
    _db(world).execute("DELETE FROM shared_bundle_limits WHERE msisdn = ?", (msisdn,))
    _db(world).execute(
        "DELETE FROM shared_bundle_use WHERE group_id = ? AND msisdn = ?", (group.id, msisdn)
    )
    replies: list[Reply] = []
    if _subscriber(world, msisdn) is not None:
        replies += world.remove_option(msisdn, s.participant_option, now=now)
    rest = _group_row(world, "id", group.id)
    if rest is not None and not rest.participants:
        replies += _dissolve(world, s, rest, now)
    return replies


def _dissolve(world: World, s: Settings, group: SharedBundleGroup, now: int) -> list[Reply]:
    """The group ends: the fee stops and the markers go (MP-17, MP-19, MP-21)."""
    replies: list[Reply] = []
    for msisdn in group.participants:
        _db(world).execute("DELETE FROM shared_bundle_limits WHERE msisdn = ?", (msisdn,))
        if _subscriber(world, msisdn) is not None:
            replies += world.remove_option(msisdn, s.participant_option, now=now)
    _db(world).execute("DELETE FROM shared_bundle_members WHERE group_id = ?", (group.id,))
    _db(world).execute("DELETE FROM shared_bundle_use WHERE group_id = ?", (group.id,))
    _db(world).execute("DELETE FROM shared_bundle_groups WHERE id = ?", (group.id,))
    world.cancel_recurring(group.initiator, FEE_CODE)
    if _subscriber(world, group.initiator) is not None:
        replies += world.remove_option(group.initiator, s.initiator_option, now=now)
    return replies


def _initiator_group(world: World, msisdn: str) -> SharedBundleGroup:
    found = member(world, msisdn)
    if found is None:
        raise NotInGroup(f"{msisdn} is in no group")
    if found.role is not Role.INITIATOR:
        raise NotInitiator(f"{msisdn} is not the initiator of its group")
    group = _group_row(world, "id", found.group_id)
    assert group is not None
    return group


def remove_member(world: World, initiator: str, participant: str, *, now: int) -> Outcome:
    """MP-18: the initiator removes a participant; both get an SMS."""
    s = settings_of(world)
    with world.transaction():
        _asker(world, initiator)
        group = _initiator_group(world, initiator)
        if participant not in group.participants:
            raise NotParticipant(f"{participant} is not in the group", msisdn=participant)
        replies = [
            _sms(s, initiator, REMOVED_INITIATOR, participant=participant),
            _sms(s, participant, REMOVED_PARTICIPANT, initiator=initiator),
        ]
        replies += _drop_participant(world, s, group, participant, now)
        return _outcome(
            screen=Screen(template=REMOVED_INITIATOR, params={"participant": participant}),
            replies=replies,
        )


def leave_group(world: World, msisdn: str, *, now: int) -> Outcome:
    """MP-19: a participant leaves; the initiator disbands the group.  SMS to those concerned."""
    s = settings_of(world)
    with world.transaction():
        _asker(world, msisdn)
        found = member(world, msisdn)
        if found is None:
            raise NotInGroup(f"{msisdn} is in no group")
        group = _group_row(world, "id", found.group_id)
        assert group is not None
        if found.role is Role.PARTICIPANT:
            replies = [
                _sms(s, msisdn, LEFT_PARTICIPANT, initiator=group.initiator),
                _sms(s, group.initiator, LEFT_INITIATOR, participant=msisdn),
            ]
            replies += _drop_participant(world, s, group, msisdn, now)
            screen = Screen(template=SCREEN_LEFT, params={"initiator": group.initiator})
            return _outcome(screen=screen, replies=replies)
        replies = [_sms(s, msisdn, DISBANDED_INITIATOR)]
        replies += [_sms(s, p, DISBANDED_PARTICIPANT, initiator=msisdn) for p in group.participants]
        _cancel_pending(world, now=now, initiator=msisdn)
        replies += _dissolve(world, s, group, now)
        return _outcome(screen=Screen(template=SCREEN_DISBANDED), replies=replies)


# -- managing (MP-12, MP-14) -----------------------------------------------------------------------

#: Sentinel of ``set_personal_limits``: this kind's limit stays as it is.
UNCHANGED: Final = object()


def set_personal_limits(
    world: World,
    initiator: str,
    participant: str,
    limits: Mapping[str, object],
    *,
    now: int,
) -> Outcome:
    """MP-12: the initiator sets, raises or clears (None) a participant's limit per package.

    ``limits`` maps ``data`` (MB), ``voice`` (minutes), ``sms`` to a whole number or None.
    Raising the data limit of a participant whose internet it had suspended restores it.
    """
    s = settings_of(world)
    unknown = sorted(set(limits) - {str(kind) for kind in _KINDS})
    if unknown:
        raise UnknownField(
            f"no package {unknown[0]!r}; packages: data, voice, sms", field=unknown[0]
        )
    for kind, value in limits.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise WrongType(f"limits.{kind} must be a whole number or null", field=f"limits.{kind}")
        if isinstance(value, int) and value < 0:
            raise InvalidValue(f"limits.{kind} must not be negative", field=f"limits.{kind}")
    with world.transaction():
        _asker(world, initiator)
        group = _initiator_group(world, initiator)
        if participant not in group.participants:
            raise NotParticipant(f"{participant} is not in the group", msisdn=participant)
        before = _limits(world, participant)
        period = _period(world, initiator)
        _, granted = _use(world, group.id, participant, UsageKind.DATA, period)
        portion = member(world, participant)
        replies: list[Reply] = []
        for kind, value in limits.items():
            if value is None:
                _db(world).execute(
                    "DELETE FROM shared_bundle_limits WHERE msisdn = ? AND kind = ?",
                    (participant, kind),
                )
            else:
                _db(world).execute(
                    "INSERT INTO shared_bundle_limits (msisdn, kind, amount) VALUES (?,?,?)"
                    " ON CONFLICT (msisdn, kind) DO UPDATE SET amount = excluded.amount",
                    (participant, kind, value),
                )
        after = _limits(world, participant)
        old, new = before["data"], after["data"]
        suspended = old is not None and granted >= old and (portion is None or not portion.portion)
        if suspended and (new is None or new > granted):
            replies.append(_sms(s, participant, LIMIT_RESTORED))
        profile = world.profiles.profile(PROFILE)
        no_limit = render_template(profile, INFO_NO_LIMIT, {})
        shown = {k: no_limit if v is None else str(v) for k, v in after.items()}
        replies.insert(0, _sms(s, participant, LIMITS_CHANGED, initiator=initiator, **shown))
        return _outcome(
            screen=Screen(template=LIMITS_SAVED, params={"participant": participant}),
            replies=replies,
        )


def set_extras(world: World, initiator: str, enabled: bool, *, now: int) -> Outcome:
    """MP-14: the initiator takes or declines extra internet packages for the group."""
    if not isinstance(enabled, bool):
        raise WrongType("enabled must be true or false", field="enabled")
    with world.transaction():
        _asker(world, initiator)
        group = _initiator_group(world, initiator)
        _db(world).execute(
            "UPDATE shared_bundle_groups SET extras = ? WHERE id = ?", (int(enabled), group.id)
        )
        return _outcome(screen=Screen(template=EXTRAS_ON if enabled else EXTRAS_OFF))


# -- group info (MP-20) ----------------------------------------------------------------------------


def _sizes(world: World, s: Settings, initiator: str, now: int) -> dict[UsageKind, SharedPackage]:
    sizes = {kind: [0, 0] for kind in _KINDS}
    for package in world.packages(initiator):
        if package.source in s.personal_sources or package.zone not in _HOME:
            continue
        if package.valid_from > now or (
            package.valid_until is not None and package.valid_until <= now
        ):
            continue
        sizes[package.kind][0] += package.initial
        sizes[package.kind][1] += package.remaining
    return {k: SharedPackage(kind=k, size=v[0], remaining=v[1]) for k, v in sizes.items()}


def view_group(world: World, msisdn: str, *, now: int) -> GroupView:
    """MP-20: what the initiator, or a participant, sees of its group."""
    s = settings_of(world)
    with world.transaction():
        _asker(world, msisdn)
        found = member(world, msisdn)
        if found is None:
            raise NotInGroup(f"{msisdn} is in no group")
        group = _group_row(world, "id", found.group_id)
        assert group is not None
        period = _period(world, group.initiator)
        sizes = _sizes(world, s, group.initiator, now)
        renewal = period or None
        if found.role is Role.INITIATOR:
            entries = tuple(
                ParticipantEntry(
                    msisdn=p,
                    joined_at=m.joined_at if (m := member(world, p)) is not None else 0,
                    limits=_limits(world, p),
                    used={str(k): _use(world, group.id, p, k, period)[0] for k in _KINDS},
                )
                for p in group.participants
            )
            return InitiatorView(
                role=Role.INITIATOR,
                initiator=msisdn,
                participants=entries,
                max_participants=s.max_participants,
                packages=tuple(sizes.values()),
                renewal=renewal,
                extras=group.extras,
                fee_mode=group.fee_mode,
            )
        limits = _limits(world, msisdn)
        available = {
            str(k): sizes[k].size if limits[str(k)] is None else int(limits[str(k)] or 0)
            for k in _KINDS
        }
        return ParticipantView(
            role=Role.PARTICIPANT,
            initiator=group.initiator,
            available=available,
            used={str(k): _use(world, group.id, msisdn, k, period)[0] for k in _KINDS},
            limits=limits,
            renewal=renewal,
        )


def group_info(world: World, msisdn: str, *, now: int) -> Outcome:
    """MP-20 on the phone: the screen says an SMS follows; the SMS lists what the seed lists."""
    s = settings_of(world)
    view = view_group(world, msisdn, now=now)
    profile = world.profiles.profile(PROFILE)
    if isinstance(view, InitiatorView):
        no_limit = render_template(profile, INFO_NO_LIMIT, {})

        def shown(value: int | None) -> str:
            return no_limit if value is None else str(value)

        lines = [
            render_template(
                profile,
                INFO_MEMBER_LINE,
                {
                    "msisdn": entry.msisdn,
                    **{f"{k}_used": entry.used[k] for k in entry.used},
                    **{f"{k}_limit": shown(entry.limits[k]) for k in entry.limits},
                },
            )
            for entry in view.participants
        ]
        packages = {str(p.kind): p for p in view.packages}
        sms = _sms(
            s,
            msisdn,
            INFO_INITIATOR,
            count=len(view.participants),
            max_participants=view.max_participants,
            members="; ".join(lines) or render_template(profile, INFO_NO_MEMBERS, {}),
            data_size=packages["data"].size,
            data_left=packages["data"].remaining,
            voice_size=packages["voice"].size,
            voice_left=packages["voice"].remaining,
            sms_size=packages["sms"].size,
            sms_left=packages["sms"].remaining,
            renewal=view.renewal or now,
        )
    else:
        sms = _sms(
            s,
            msisdn,
            INFO_PARTICIPANT,
            initiator=view.initiator,
            **{f"{k}_size": v for k, v in view.available.items()},
            **{f"{k}_used": v for k, v in view.used.items()},
            renewal=view.renewal or now,
        )
    return _outcome(screen=Screen(template=INFO_SENT), replies=[sms])


# -- the fee (MP-17) -------------------------------------------------------------------------------


def _fee_name(world: World, s: Settings) -> str:
    return world.profiles.profile(PROFILE).options[s.initiator_option].name


def _set_fee_mode(world: World, initiator: str, mode: Period) -> None:
    _db(world).execute(
        "UPDATE shared_bundle_groups SET fee_mode = ? WHERE initiator = ?", (str(mode), initiator)
    )


def _utc_offset(world: World) -> int:
    return world.profiles.profile(PROFILE).settings.utc_offset


def _charge_month(
    world: World, s: Settings, initiator: str, at: int, anchor: int, *, tell: bool
) -> tuple[bool, list[Reply]]:
    """One full monthly fee at ``at`` and the next due date a month on (anchored)."""
    end = add_months(at, 1, day=anchor, utc_offset=_utc_offset(world))
    result = charging.collect_fee(
        world, initiator, code=FEE_CODE, amount=s.fee_monthly, now=at, period_start=at,
        period_end=end, name=_fee_name(world, s), notify_unpaid=False,
    )  # fmt: skip
    if not result.paid:
        return False, []
    world.schedule_recurring(
        initiator, FEE_CODE, amount=s.fee_monthly, period=Period.MONTH, next_at=end, now=at,
        owner=SERVICE, anchor_day=anchor,
    )  # fmt: skip
    _set_fee_mode(world, initiator, Period.MONTH)
    replies = list(result.replies)
    if not tell:
        replies = [r for r in replies if r.template != FEE_CHARGED_KEY]
    return True, replies


def _charge_day(world: World, s: Settings, initiator: str, at: int) -> list[Reply]:
    """One day of the daily regime (2,10 ₽), the next check a day on."""
    end = at + DAY
    replies: list[Reply] = []
    if world.spendable(initiator) >= s.fee_daily:
        result = charging.collect_fee(
            world, initiator, code=FEE_CODE, amount=s.fee_daily, now=at, period_start=at,
            period_end=end, name=_fee_name(world, s), notify_unpaid=False,
        )  # fmt: skip
        # The switch was told by SMS; every day's 2,10 ₽ is not.
        replies += [r for r in result.replies if r.template != FEE_CHARGED_KEY]
    else:
        world.record_fee(
            initiator, code=FEE_CODE, period_start=at, period_end=end, part=1,
            amount_due=s.fee_daily, amount_charged=0, status=FeeStatus.UNPAID, at=at,
            detail="daily: not enough money",
        )  # fmt: skip
    world.schedule_recurring(
        initiator, FEE_CODE, amount=s.fee_daily, period=Period.DAY, next_at=end, now=at,
        owner=SERVICE,
    )  # fmt: skip
    _set_fee_mode(world, initiator, Period.DAY)
    return replies


def _go_daily(world: World, s: Settings, initiator: str, at: int) -> list[Reply]:
    name = _fee_name(world, s)
    notice = _sms(s, initiator, FEE_DAILY, name=name, monthly=s.fee_monthly, daily=s.fee_daily)
    return [notice, *_charge_day(world, s, initiator, at)]


def _start_fee(world: World, s: Settings, initiator: str, now: int) -> list[Reply]:
    """MP-17: charged on the day the first participant joins, then monthly on that date."""
    anchor = day_of_month(now, _utc_offset(world))
    if world.spendable(initiator) >= s.fee_monthly:
        paid, replies = _charge_month(world, s, initiator, now, anchor, tell=True)
        if paid:
            return replies
    return _go_daily(world, s, initiator, now)


def bill(world: World, charge: RecurringCharge, due: int) -> list[Reply]:
    """The recurring handler of the fee (MP-17): monthly, daily fallback, blocked numbers."""
    s = settings_of(world)
    group = _group_row(world, "initiator", charge.msisdn)
    subscriber = world.find(charge.msisdn)
    if group is None or subscriber is None or subscriber.status is SubscriberStatus.TERMINATED:
        world.cancel_recurring(charge.msisdn, charge.code)
        return []
    if not subscriber.active:
        if charge.period is Period.MONTH:
            end = add_months(due, 1, day=charge.anchor_day, utc_offset=_utc_offset(world))
            world.record_fee(
                charge.msisdn, code=FEE_CODE, period_start=due, period_end=end, part=1,
                amount_due=s.fee_monthly, amount_charged=0, status=FeeStatus.SKIPPED, at=due,
                detail=_DEFERRED,
            )  # fmt: skip
        else:
            end = due + DAY
            world.record_fee(
                charge.msisdn, code=FEE_CODE, period_start=due, period_end=end, part=1,
                amount_due=s.fee_daily, amount_charged=0, status=FeeStatus.SKIPPED, at=due,
                detail="blocked",
            )  # fmt: skip
        world.reschedule(charge, next_at=end)
        return []
    fits = world.spendable(subscriber) >= s.fee_monthly
    if charge.period is Period.MONTH:
        if fits:
            paid, replies = _charge_month(
                world, s, charge.msisdn, due, charge.anchor_day, tell=True
            )
            if paid:
                return replies
        return _go_daily(world, s, charge.msisdn, due)
    if fits:
        anchor = day_of_month(due, _utc_offset(world))
        paid, replies = _charge_month(world, s, charge.msisdn, due, anchor, tell=False)
        if paid:
            next_at = add_months(due, 1, day=anchor, utc_offset=_utc_offset(world))
            notice = _sms(
                s,
                charge.msisdn,
                FEE_MONTHLY_AGAIN,
                name=_fee_name(world, s),
                monthly=s.fee_monthly,
                next=next_at,
            )
            return [notice, *replies]
    return _charge_day(world, s, charge.msisdn, due)


def _month_bounds(at: int, utc_offset: int) -> tuple[int, int]:
    zone = _dt.timezone(_dt.timedelta(seconds=utc_offset))
    local = _dt.datetime.fromtimestamp(at, zone)
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return int(start.timestamp()), add_months(
        int(start.timestamp()), 1, day=1, utc_offset=utc_offset
    )


def _resume_fees(
    world: World, s: Settings, initiator: str, financial_since: int | None, now: int
) -> list[Reply]:
    """MP-17 at the unblock: deferred monthly fees are charged now unless waived."""
    replies: list[Reply] = []
    deferred = [
        r
        for r in world.fee_records(initiator, code=FEE_CODE, status=FeeStatus.SKIPPED)
        if r.detail == _DEFERRED
    ]
    daily = False
    for record in deferred:
        start, end = _month_bounds(record.period_start, _utc_offset(world))
        waived = financial_since is not None and financial_since <= start and end <= now
        if waived or daily:
            world.record_fee(
                initiator, code=FEE_CODE, period_start=record.period_start,
                period_end=record.period_end, part=1, amount_due=record.amount_due,
                amount_charged=0, status=FeeStatus.SKIPPED, at=now,
                detail=_WAIVED if waived else _DAILY_INSTEAD,
            )  # fmt: skip
            continue
        if world.spendable(initiator) >= record.amount_due:
            result = charging.collect_fee(
                world, initiator, code=FEE_CODE, amount=record.amount_due, now=now,
                period_start=record.period_start, period_end=record.period_end,
                name=_fee_name(world, s), notify_unpaid=False,
            )  # fmt: skip
            replies += result.replies
            if result.paid:
                continue
        daily = True
        world.record_fee(
            initiator, code=FEE_CODE, period_start=record.period_start,
            period_end=record.period_end, part=1, amount_due=record.amount_due,
            amount_charged=0, status=FeeStatus.SKIPPED, at=now, detail=_DAILY_INSTEAD,
        )  # fmt: skip
        replies += _go_daily(world, s, initiator, now)
    return replies


# -- changes of the subscribers (MP-16, MP-17, MP-21) ----------------------------------------------


def on_change(world: World, event: SubscriberChanged) -> list[Reply]:
    """MP-16, MP-17 (blocks), MP-21 (tariff, owner, termination) for group members."""
    if event.field not in ("tariff", "owner_id", "status"):
        return []
    found = member(world, event.msisdn)
    terminated = event.field == "status" and event.new == SubscriberStatus.TERMINATED
    if terminated:
        _cancel_pending(world, now=event.at, invitee=event.msisdn)
        _cancel_pending(world, now=event.at, initiator=event.msisdn)
    if found is None:
        return []
    s = settings_of(world)
    group = _group_row(world, "id", found.group_id)
    assert group is not None
    if found.role is Role.INITIATOR:
        if event.field == "status" and not terminated:
            return _initiator_status(world, s, group, event)
        replies = [
            _sms(s, p, DISBANDED_BY_CHANGE, initiator=group.initiator) for p in group.participants
        ]
        if not terminated:
            replies.append(_sms(s, group.initiator, DISBANDED_BY_CHANGE_INITIATOR))
        _cancel_pending(world, now=event.at, initiator=group.initiator)
        return replies + _dissolve(world, s, group, event.at)
    if event.field == "status" and not terminated:
        return []
    if event.field == "tariff" and event.new not in s.excluded_participant_tariffs:
        return []
    replies = []
    if not terminated:
        if event.field == "tariff":
            tariff = world.profiles.profile(PROFILE).tariff(str(event.new)).name
            replies.append(
                _sms(s, event.msisdn, LEFT_BY_TARIFF, initiator=group.initiator, tariff=tariff)
            )
        else:
            replies.append(_sms(s, event.msisdn, LEFT_BY_OWNER, initiator=group.initiator))
    replies.append(_sms(s, group.initiator, MEMBER_LEFT_BY_CHANGE, participant=event.msisdn))
    return replies + _drop_participant(world, s, group, event.msisdn, event.at)


def _initiator_status(
    world: World, s: Settings, group: SharedBundleGroup, event: SubscriberChanged
) -> list[Reply]:
    financial = str(SubscriberStatus.BLOCKED_FINANCIAL)
    if event.new == financial:
        _db(world).execute(
            "UPDATE shared_bundle_groups SET financial_block_since = ? WHERE id = ?",
            (event.at, group.id),
        )
    elif event.old == financial:
        since = (
            _db(world)
            .execute(
                "SELECT financial_block_since FROM shared_bundle_groups WHERE id = ?", (group.id,)
            )
            .fetchone()[0]
        )
        _db(world).execute(
            "UPDATE shared_bundle_groups SET financial_block_since = NULL WHERE id = ?",
            (group.id,),
        )
        if event.new == SubscriberStatus.ACTIVE:
            return _unblocked(world, s, group, None if since is None else int(since), event.at)
    if event.new == SubscriberStatus.ACTIVE:
        return _unblocked(world, s, group, None, event.at)
    if event.old == SubscriberStatus.ACTIVE:
        return [
            _sms(s, p, INITIATOR_BLOCKED, initiator=group.initiator, redirect=s.internet_redirect)
            for p in group.participants
        ]
    return []


def _unblocked(
    world: World, s: Settings, group: SharedBundleGroup, financial_since: int | None, now: int
) -> list[Reply]:
    replies = [
        _sms(s, p, INITIATOR_UNBLOCKED, initiator=group.initiator) for p in group.participants
    ]
    return replies + _resume_fees(world, s, group.initiator, financial_since, now)


# -- the phone: commands and menu actions ----------------------------------------------------------


def _answer(call: Callable[[], Outcome]) -> Outcome:
    """A handler's outcome, with a refusal turned into its reply (never an exception)."""
    try:
        return call()
    except SharedBundleRefused as refusal:
        return _outcome(screen=refusal.screen())
    except UnknownMsisdn:
        return _outcome(screen=Screen(template="parse_error.unknown_service"))
    except DomainError:
        return _outcome(screen=Screen(template=FAILED))


def _typed_number(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    if is_wire(value, PROFILE):
        return value
    try:
        return normalize(value, PROFILE, context="ussd")
    except ParseError:
        return None


def _remove_action(world: World, context: Context, params: Mapping[str, object]) -> Outcome:
    """``*434#`` → 2 → 1: a number from a prompt, or a pick list of the participants."""
    if "msisdn" in params:
        number = _typed_number(params["msisdn"])
        if number is None:
            return _outcome(screen=Screen(template="parse_error.bad_msisdn"))
        return remove_member(world, context.msisdn, number, now=context.now)
    group = _initiator_group(world, context.msisdn)
    if not group.participants:
        raise NotInGroup(f"{context.msisdn} has no participants")
    answer = params.get("answer")
    if isinstance(answer, str):
        text = answer.strip()
        if text.isdigit() and 1 <= int(text) <= len(group.participants):
            return remove_member(
                world, context.msisdn, group.participants[int(text) - 1], now=context.now
            )
        number = _typed_number(text)
        if number is not None:
            return remove_member(world, context.msisdn, number, now=context.now)
    profile = world.profiles.profile(PROFILE)
    choices = "\n".join(
        render_template(profile, PICK_ITEM, {"number": i, "msisdn": p})
        for i, p in enumerate(group.participants, start=1)
    )
    return _outcome(screen=Screen(template=PICK_MEMBER, params={"choices": choices}, end=False))


def install(world: World, directory: ServiceDirectory) -> SelfCare | None:
    """Create the tables and plug the service into the world and the directory (mts only).

    Returns the handle of the self-care actions (``add_routes``), None without the profile.
    """
    if PROFILE not in world.profiles:
        return None
    s = settings_of(world)
    world.migrate_service(SERVICE, MIGRATIONS)
    world.add_usage_source(SharedBundleSource(), priority=50)
    world.on_change(lambda event: on_change(world, event))
    world.set_recurring_handler(SERVICE, lambda charge, due: bill(world, charge, due))
    world.timeline.register(
        "shared_bundle_invitations",
        lambda: _next_expiry(world),
        lambda due: expire_invitations(world, due),
    )
    directory.register_sms_number(PROFILE, s.sms_number)

    def command(handler: Callable[[Context, Any], Outcome]) -> Callable[[Context, Any], Outcome]:
        return lambda context, cmd: _answer(lambda: handler(context, cmd))

    directory.register_command(
        PROFILE,
        InviteMember,
        command(lambda c, cmd: invite(world, c.msisdn, cmd.msisdn, now=c.now)),
    )
    directory.register_command(
        PROFILE,
        RemoveMember,
        command(lambda c, cmd: remove_member(world, c.msisdn, cmd.msisdn, now=c.now)),
    )
    directory.register_command(
        PROFILE, LeaveGroup, command(lambda c, cmd: leave_group(world, c.msisdn, now=c.now))
    )
    directory.register_command(
        PROFILE, GroupInfo, command(lambda c, cmd: group_info(world, c.msisdn, now=c.now))
    )
    directory.register_command(
        PROFILE,
        AcceptInvitation,
        command(lambda c, cmd: accept_invitation(world, c.msisdn, now=c.now, suffix=cmd.suffix)),
    )
    directory.register_command(
        PROFILE,
        DeclineInvitation,
        command(lambda c, cmd: decline_invitation(world, c.msisdn, now=c.now, suffix=cmd.suffix)),
    )

    def invite_action(context: Context, params: Mapping[str, object]) -> Outcome:
        number = _typed_number(params.get("msisdn"))
        if number is None:
            return _outcome(screen=Screen(template="parse_error.bad_msisdn"))
        return _answer(lambda: invite(world, context.msisdn, number, now=context.now))

    directory.register_action(PROFILE, "shared_bundle.invite", invite_action)
    directory.register_action(
        PROFILE,
        "shared_bundle.remove",
        lambda c, params: _answer(lambda: _remove_action(world, c, params)),
    )
    directory.register_action(
        PROFILE,
        "shared_bundle.leave",
        lambda c, params: _answer(lambda: leave_group(world, c.msisdn, now=c.now)),
    )
    directory.register_action(
        PROFILE,
        "shared_bundle.info",
        lambda c, params: _answer(lambda: group_info(world, c.msisdn, now=c.now)),
    )
    return SelfCare(world=world)


# -- the self-care API («Личный кабинет», «Мой МТС») -----------------------------------------------

#: ``handler(world, path_params, body, now) -> (json_body, replies)``; the HTTP layer delivers
#: the replies through the outbox in the same transaction and answers with the JSON.
ApiHandler = Callable[
    ["World", Mapping[str, str], Mapping[str, object], int], tuple[object, list[Reply]]
]


def _api_number(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise WrongType(f"{field} must be a phone number in a string", field=field)
    try:
        return normalize(value, PROFILE, context="api")
    except ParseError as error:
        raise InvalidValue(
            f"{field}: {error.reason}: expected {error.expected}", field=field
        ) from None


def _body(body: Mapping[str, object], allowed: Iterable[str]) -> Mapping[str, object]:
    if not isinstance(body, Mapping):
        raise WrongType("the body must be a JSON object", field="body")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise UnknownField(f"unknown field {unknown[0]!r}", field=unknown[0])
    return body


def _result(world: World, outcome: Outcome, **extra: object) -> tuple[object, list[Reply]]:
    body: dict[str, object] = dict(extra)
    if outcome.screen is not None:
        body["message"] = render_template(
            world.profiles.profile(PROFILE), outcome.screen.template, outcome.screen.params
        )
    return body, list(outcome.replies)


def _api_view(world: World, msisdn: str, now: int) -> object:
    try:
        return to_json(view_group(world, msisdn, now=now))
    except NotInGroup:
        return None


def _api_invitations(world: World, msisdn: str, now: int) -> object:
    return {
        "received": [to_json(i) for i in invitations(world, invitee=msisdn) if i.expires_at > now],
        "sent": [to_json(i) for i in invitations(world, initiator=msisdn) if i.expires_at > now],
    }


def api_view(
    world: World, path: Mapping[str, str], body: Mapping[str, object], now: int
) -> tuple[object, list[Reply]]:
    """GET …/{msisdn}: the group as its member sees it (MP-20) and the pending invitations."""
    msisdn = _api_number(path.get("msisdn"), "msisdn")
    _asker(world, msisdn)
    return {
        "group": _api_view(world, msisdn, now),
        "invitations": _api_invitations(world, msisdn, now),
    }, []


def api_invite(
    world: World, path: Mapping[str, str], body: Mapping[str, object], now: int
) -> tuple[object, list[Reply]]:
    """POST …/{msisdn}/invitations {"msisdn": invitee}: MP-05 «Начать делиться»."""
    initiator = _api_number(path.get("msisdn"), "msisdn")
    invitee = _api_number(_body(body, ("msisdn",)).get("msisdn"), "msisdn")
    outcome = invite(world, initiator, invitee, now=now)
    joined = member(world, invitee) is not None
    return _result(world, outcome, result="joined" if joined else "invited", invitee=invitee)


def api_accept(
    world: World, path: Mapping[str, str], body: Mapping[str, object], now: int
) -> tuple[object, list[Reply]]:
    """POST …/{msisdn}/invitations/{inviter}/accept: MP-07 «Принять приглашение»."""
    invitee = _api_number(path.get("msisdn"), "msisdn")
    inviter = _api_number(path.get("inviter"), "inviter")
    _body(body, ())
    outcome = accept_invitation(world, invitee, now=now, inviter=inviter)
    joined = member(world, invitee) is not None
    return _result(
        world,
        outcome,
        result="joined" if joined else "refused",
        group=_api_view(world, invitee, now),
    )


def api_decline(
    world: World, path: Mapping[str, str], body: Mapping[str, object], now: int
) -> tuple[object, list[Reply]]:
    """POST …/{msisdn}/invitations/{inviter}/decline: MP-08 «Отклонить»."""
    invitee = _api_number(path.get("msisdn"), "msisdn")
    inviter = _api_number(path.get("inviter"), "inviter")
    _body(body, ())
    return _result(
        world, decline_invitation(world, invitee, now=now, inviter=inviter), result="declined"
    )


def api_cancel(
    world: World, path: Mapping[str, str], body: Mapping[str, object], now: int
) -> tuple[object, list[Reply]]:
    """DELETE …/{msisdn}/invitations/{invitee}: withdraw a pending invitation."""
    initiator = _api_number(path.get("msisdn"), "msisdn")
    invitee = _api_number(path.get("invitee"), "invitee")
    return _result(world, cancel_invitation(world, initiator, invitee, now=now), result="cancelled")


def api_remove(
    world: World, path: Mapping[str, str], body: Mapping[str, object], now: int
) -> tuple[object, list[Reply]]:
    """DELETE …/{msisdn}/members/{participant}: MP-18 «Исключить из группы»."""
    initiator = _api_number(path.get("msisdn"), "msisdn")
    participant = _api_number(path.get("participant"), "participant")
    return _result(world, remove_member(world, initiator, participant, now=now), result="removed")


def api_leave(
    world: World, path: Mapping[str, str], body: Mapping[str, object], now: int
) -> tuple[object, list[Reply]]:
    """POST …/{msisdn}/leave: MP-19 «Прекратить использование» (the initiator disbands)."""
    msisdn = _api_number(path.get("msisdn"), "msisdn")
    _body(body, ())
    return _result(world, leave_group(world, msisdn, now=now), result="left")


def api_limits(
    world: World, path: Mapping[str, str], body: Mapping[str, object], now: int
) -> tuple[object, list[Reply]]:
    """PUT …/{msisdn}/members/{participant}/limits {"data": MB or null, "voice", "sms"}: MP-12."""
    initiator = _api_number(path.get("msisdn"), "msisdn")
    participant = _api_number(path.get("participant"), "participant")
    limits = _body(body, ("data", "voice", "sms"))
    outcome = set_personal_limits(world, initiator, participant, limits, now=now)
    return _result(world, outcome, result="saved", limits=_limits(world, participant))


def api_extras(
    world: World, path: Mapping[str, str], body: Mapping[str, object], now: int
) -> tuple[object, list[Reply]]:
    """PUT …/{msisdn}/extras {"enabled": bool}: MP-14."""
    initiator = _api_number(path.get("msisdn"), "msisdn")
    enabled = _body(body, ("enabled",)).get("enabled")
    if not isinstance(enabled, bool):
        raise WrongType("enabled must be true or false", field="enabled")
    return _result(world, set_extras(world, initiator, enabled, now=now), result="saved")


_BASE: Final = "/api/v1/mts/shared-bundle/{msisdn}"

#: The self-care actions, ``(method, path pattern, handler)``; ``add_routes`` mounts them.
ROUTES: Final[tuple[tuple[str, str, ApiHandler], ...]] = (
    ("GET", _BASE, api_view),
    ("POST", f"{_BASE}/invitations", api_invite),
    ("POST", f"{_BASE}/invitations/{{inviter}}/accept", api_accept),
    ("POST", f"{_BASE}/invitations/{{inviter}}/decline", api_decline),
    ("DELETE", f"{_BASE}/invitations/{{invitee}}", api_cancel),
    ("DELETE", f"{_BASE}/members/{{participant}}", api_remove),
    ("PUT", f"{_BASE}/members/{{participant}}/limits", api_limits),
    ("POST", f"{_BASE}/leave", api_leave),
    ("PUT", f"{_BASE}/extras", api_extras),
)
_CREATED: Final = frozenset({api_invite})


@attrs.frozen(kw_only=True)
class SelfCare:
    """What ``install`` returns: the handle ``add_routes`` mounts the self-care actions with."""

    world: World


#: The self-care answer and route registry are the dispatch contract's (shared by services).
SelfCareAnswer = ActionAnswer


def add_routes(api: ActionRegistry, service: SelfCare) -> None:
    """Mount ``ROUTES`` on the control API (``gateway.http.ControlApi.add_action``)."""
    mount_routes(api, service.world, ROUTES, created=_CREATED)
