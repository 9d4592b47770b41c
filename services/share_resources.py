"""Tele2 Kazakhstan «Делитесь ресурсами» (SPEC §4, SR-01 … SR-06; seed 000): sharing a tariff.

This module owns the groups (an owner and the numbers it added), the invitations, and the
removal confirmations (tables ``share_resources_*``, created by ``install``).  The tariff
says whether it includes the service and how many numbers it takes and what each gets
(``Tariff.sharing``, SR-01).

**Theory of operation.** The owner invites a number in the app (the self-care API, SR-02).
The invitation takes a place at once (SR-04) and its SMS from 2221 leaves on the clock a
little later — within the five minutes the seed promises (``invitation_delay``, a
``Timeline`` item).  The invitee answers «1» to 2221 (SR-03) and becomes a member: it is
granted the tariff's per-member packages for the owner's current period, and again at each
of the owner's paid billing days (an ``on_fee`` hook), until it leaves the group.  The owner
sees active members, sent invitations and the free places (SR-04), cancels a pending
invitation (SR-05), and removes a member in two steps — a removal request answered with a
question, then its confirmation (SR-06).

Choices where the seed is open (SPEC: "choose what a real operator would do"):

* The invitation SMS leaves ``invitation_delay`` (1 minute) after the request; an invitation
  not accepted within ``invitation_ttl`` (24 hours) expires, its place is freed and the
  owner told.  A cancelled invitation whose SMS had left is announced to the invitee.
* «1» accepts the invitation whose SMS came last (several owners may have invited the same
  number); an invitation whose SMS has not yet left cannot be accepted.
* A number is in one group at a time: a member or an owner with members cannot be invited
  elsewhere, and a member cannot invite.  Only numbers of Tele2 Kazakhstan can be invited.
* The per-member packages are granted whole whatever the day of the period (the operator
  gives the volume «на период»), and end with the period, the membership or the group.
* An owner moving to a tariff without the service loses the group (members told); to one
  with fewer places, the newest invitations and then the newest members go first.
* A removal request is valid ``removal_confirmation_ttl`` (5 minutes) and only for its owner.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Final, cast

import attrs

from parsers import SHORT_NUMBERS, ParseError, format_sms, normalize
from parsers.commands import AcceptShareInvitation
from services import charging
from services.charging import FeeResult
from services.clock import parse_duration
from services.dispatch import (
    ActionAnswer,
    ActionRegistry,
    Outcome,
    Screen,
    ServiceDirectory,
    mount_routes,
)
from services.model import (
    DomainError,
    InvalidValue,
    Subscriber,
    SubscriberChanged,
    SubscriberStatus,
    UnknownField,
    UnknownMsisdn,
    WrongType,
    to_json,
)
from services.outbox import Params, Reply, render_template, require_template
from services.profiles import Profile, ProfileError, Tariff

if TYPE_CHECKING:
    from services.world import World

PROFILE: Final = "tele2kz"
SERVICE: Final = "share_resources"
#: The ``source`` of the packages a member gets from the owner's tariff.
SOURCE: Final = "share_resources"


# -- the facts of the profile (services.share_resources) -------------------------------------------


@attrs.frozen(kw_only=True)
class Settings:
    """``services.share_resources`` of the profile, checked (seed 000 facts, SR-01 … SR-06)."""

    sms_number: str  # SR-02, SR-03: 2221
    accept_text: str  # SR-03: «1»
    invitation_delivery_within: int  # SR-02: «в течении 5 минут»
    invitation_delay: int  # when the SMS really leaves (at most the above)
    invitation_ttl: int | None  # our choice: pending invitations expire
    removal_confirmation_ttl: int  # SR-06


def _fail(profile: Profile, key: str, reason: str) -> ProfileError:
    return ProfileError(profile.source, None, f"services.{SERVICE}.{key}: {reason}")


def _duration(profile: Profile, facts: Mapping[str, Any], key: str, default: object) -> Any:
    value = facts.get(key, default)
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise _fail(profile, key, str(exc)) from None


_KEYS: Final = frozenset(
    {
        "sms_number",
        "accept_text",
        "invitation_delivery_within",
        "invitation_delay",
        "invitation_ttl",
        "removal_confirmation_ttl",
    }
)


@functools.cache
def read_settings(profile: Profile) -> Settings:
    """The service's facts of ``profile``, or ``ProfileError`` naming the field and reason."""
    facts = profile.services.get(SERVICE)
    if not isinstance(facts, Mapping):
        raise ProfileError(profile.source, None, f"services.{SERVICE}: expected a mapping")
    for key in facts:
        if key not in _KEYS:
            raise _fail(profile, str(key), "unknown field")
    number = facts.get("sms_number")
    if not isinstance(number, str) or number not in profile.short_numbers.values():
        raise _fail(profile, "sms_number", f"{number!r} is not among the profile's short_numbers")
    if SHORT_NUMBERS.get(profile.name, number) != number:
        raise _fail(
            profile, "sms_number", f"the SMS parser takes «1» at {SHORT_NUMBERS[profile.name]}"
        )
    accept = facts.get("accept_text", "1")
    if accept != format_sms(AcceptShareInvitation(), profile.name)[0]:
        raise _fail(profile, "accept_text", f"the SMS parser accepts «1», not {accept!r}")
    within = _duration(profile, facts, "invitation_delivery_within", "5m")
    delay = _duration(profile, facts, "invitation_delay", "1m")
    if within is None or delay is None or delay > within:
        raise _fail(profile, "invitation_delay", f"must be at most {within} s (SR-02)")
    confirmation = _duration(profile, facts, "removal_confirmation_ttl", "5m")
    if not confirmation:
        raise _fail(profile, "removal_confirmation_ttl", "must be a positive duration")
    return Settings(
        sms_number=number,
        accept_text=str(accept),
        invitation_delivery_within=within,
        invitation_delay=delay,
        invitation_ttl=_duration(profile, facts, "invitation_ttl", None),
        removal_confirmation_ttl=confirmation,
    )


def settings_of(world: World) -> Settings:
    return read_settings(world.profiles.profile(PROFILE))


# -- refusals --------------------------------------------------------------------------------------


class ShareRefused(DomainError):
    """A request the «Делитесь ресурсами» rules refuse; ``code`` is the reason and its reply."""

    code: ClassVar[str] = "share_resources_refused"
    http_status: ClassVar[int] = 409
    template_params: ClassVar[tuple[str, ...]] = ()

    def __init__(self, message: str, **params: object) -> None:
        super().__init__(message)
        self.params = Params(params)

    @classmethod
    def template(cls) -> str:
        return f"share_resources.refused.{cls.code}"

    def screen(self) -> Screen:
        return Screen(template=self.template(), params=self.params)


class NoSharingTariff(ShareRefused):
    """SR-01: the owner's tariff does not include the service."""

    code = "no_sharing_tariff"
    template_params = ("tariff",)


class NoFreePlaces(ShareRefused):
    """SR-04: members and pending invitations fill the tariff's places."""

    code = "no_free_places"
    template_params = ("places",)


class NotTele2Subscriber(ShareRefused):
    """SR-02: only numbers of Tele2 Kazakhstan can be invited."""

    code = "not_tele2_subscriber"
    template_params = ("msisdn",)


class SelfInvite(ShareRefused):
    code = "self_invite"


class InviteeInGroup(ShareRefused):
    """A number is in one group at a time."""

    code = "invitee_in_group"
    template_params = ("msisdn",)


class AlreadyInvited(ShareRefused):
    code = "already_invited"
    template_params = ("msisdn",)


class OwnerIsMember(ShareRefused):
    """A member of another group cannot share its own tariff at the same time."""

    code = "owner_is_member"


class NotActive(ShareRefused):
    code = "not_active"


class NoInvitation(ShareRefused):
    """SR-03: «1» with no invitation received."""

    code = "no_invitation"
    http_status = 404


class OwnerUnavailable(ShareRefused):
    """SR-03 at acceptance: the owner can no longer share (tariff changed, blocked)."""

    code = "owner_unavailable"
    template_params = ("msisdn",)


class NotInvited(ShareRefused):
    """SR-05: no pending invitation to that number."""

    code = "not_invited"
    template_params = ("msisdn",)
    http_status = 404


class NotMember(ShareRefused):
    """SR-06: the number is not a member of the owner's group."""

    code = "not_member"
    template_params = ("msisdn",)
    http_status = 404


class UnknownConfirmation(ShareRefused):
    """SR-06: no such removal request of this owner, or it was used or has expired."""

    code = "unknown_confirmation"
    http_status = 404


REFUSALS: Final[tuple[type[ShareRefused], ...]] = (
    NoSharingTariff,
    NoFreePlaces,
    NotTele2Subscriber,
    SelfInvite,
    InviteeInGroup,
    AlreadyInvited,
    OwnerIsMember,
    NotActive,
    NoInvitation,
    OwnerUnavailable,
    NotInvited,
    NotMember,
    UnknownConfirmation,
)


def _need(key: str, *params: str) -> str:
    return require_template(f"share_resources.{key}", *params, profiles=[PROFILE]).key


for _refusal in REFUSALS:
    require_template(_refusal.template(), *_refusal.template_params, profiles=[PROFILE])

INVITATION: Final = _need("invitation", "owner", "gift", "number", "answer")
INVITATION_SENT: Final = _need("invitation_sent", "invitee", "minutes", "free")
JOINED_MEMBER: Final = _need("joined_member", "owner", "gift")
JOINED_OWNER: Final = _need("joined_owner", "member", "free")
INVITATION_CANCELLED: Final = _need("invitation_cancelled", "owner")
CANCELLED: Final = _need("cancelled", "invitee", "free")
INVITATION_EXPIRED: Final = _need("invitation_expired", "invitee")
CONFIRM_REMOVAL: Final = _need("confirm_removal", "member")
REMOVED: Final = _need("removed", "member", "free")
REMOVED_MEMBER: Final = _need("removed_member", "owner")
DISBANDED: Final = _need("disbanded", "owner")
GIFT_SEPARATOR: Final = _need("gift_separator")
FAILED: Final = _need("failed")


# -- values ----------------------------------------------------------------------------------------


class InvitationStatus(enum.StrEnum):
    """What became of an invitation (SR-02 … SR-05)."""

    PENDING = "pending"  # holds a place (SR-04); its SMS may not have left yet
    ACCEPTED = "accepted"
    CANCELLED = "cancelled"  # SR-05, or another group's invitation was accepted
    EXPIRED = "expired"


@attrs.frozen(kw_only=True)
class Invitation:
    id: int
    owner: str
    invitee: str
    created_at: int
    deliver_at: int
    delivered_at: int | None
    expires_at: int | None
    status: InvitationStatus
    closed_at: int | None

    @property
    def delivered(self) -> bool:
        return self.delivered_at is not None


@attrs.frozen(kw_only=True)
class ShareMember:
    msisdn: str
    joined_at: int


@attrs.frozen(kw_only=True)
class ShareView:
    """SR-04, the «Участники» tab: members, sent invitations and the free places."""

    owner: str
    tariff: str
    places: int
    members: tuple[ShareMember, ...]
    invitations: tuple[Invitation, ...]
    free_places: int


@attrs.frozen(kw_only=True)
class RemovalRequest:
    """SR-06's first step: the question to confirm and the token that confirms it."""

    token: str
    owner: str
    member: str
    expires_at: int


# -- the tables ------------------------------------------------------------------------------------

#: The service's own schema versions (never edit a shipped one: add the next).
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE share_resources_members (
            msisdn    TEXT PRIMARY KEY REFERENCES subscribers (msisdn),   -- one group per number
            owner     TEXT NOT NULL REFERENCES subscribers (msisdn),
            joined_at INTEGER NOT NULL
        ) WITHOUT ROWID""",
        "CREATE INDEX share_resources_members_owner ON share_resources_members (owner, joined_at)",
        """CREATE TABLE share_resources_invitations (
            id           INTEGER PRIMARY KEY AUTOINCREMENT,
            owner        TEXT NOT NULL,
            invitee      TEXT NOT NULL,
            created_at   INTEGER NOT NULL,
            deliver_at   INTEGER NOT NULL,              -- SR-02: the SMS from 2221 leaves then
            delivered_at INTEGER,
            expires_at   INTEGER,
            status       TEXT NOT NULL,
            closed_at    INTEGER
        )""",
        "CREATE INDEX share_resources_invitations_pending"
        " ON share_resources_invitations (owner, invitee) WHERE status = 'pending'",
        """CREATE TABLE share_resources_removals (
            id         INTEGER PRIMARY KEY AUTOINCREMENT,   -- SR-06's confirmation token
            owner      TEXT NOT NULL,
            member     TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            status     TEXT NOT NULL                      -- pending | confirmed
        )""",
    ),
)
_INVITATION_COLUMNS: Final = (
    "id, owner, invitee, created_at, deliver_at, delivered_at, expires_at, status, closed_at"
)


def _db(world: World) -> Any:
    return world.store.connection


def _invitation(row: Sequence[Any]) -> Invitation:
    return Invitation(
        id=int(row[0]),
        owner=str(row[1]),
        invitee=str(row[2]),
        created_at=int(row[3]),
        deliver_at=int(row[4]),
        delivered_at=None if row[5] is None else int(row[5]),
        expires_at=None if row[6] is None else int(row[6]),
        status=InvitationStatus(row[7]),
        closed_at=None if row[8] is None else int(row[8]),
    )


def invitations(
    world: World, *, owner: str | None = None, invitee: str | None = None, pending: bool = True
) -> list[Invitation]:
    """Invitations of an owner or to a number, oldest first (the pending ones by default)."""
    clauses, args = [], []
    for column, value in (("owner", owner), ("invitee", invitee)):
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    if pending:
        clauses.append("status = 'pending'")
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = _db(world).execute(
        f"SELECT {_INVITATION_COLUMNS} FROM share_resources_invitations{where} ORDER BY id", args
    )
    return [_invitation(row) for row in rows.fetchall()]


def members(world: World, owner: str) -> tuple[ShareMember, ...]:
    """The owner's members, by joining time."""
    rows = _db(world).execute(
        "SELECT msisdn, joined_at FROM share_resources_members WHERE owner = ?"
        " ORDER BY joined_at, msisdn",
        (owner,),
    )
    return tuple(ShareMember(msisdn=str(m), joined_at=int(j)) for m, j in rows.fetchall())


def owner_of(world: World, msisdn: str) -> str | None:
    """The owner of the group ``msisdn`` is a member of, or None."""
    row = (
        _db(world)
        .execute("SELECT owner FROM share_resources_members WHERE msisdn = ?", (msisdn,))
        .fetchone()
    )
    return None if row is None else str(row[0])


def owners(world: World) -> list[str]:
    """Every owner with at least one member or pending invitation."""
    rows = _db(world).execute(
        "SELECT owner FROM share_resources_members UNION"
        " SELECT owner FROM share_resources_invitations WHERE status = 'pending' ORDER BY 1"
    )
    return [str(row[0]) for row in rows.fetchall()]


# -- helpers ---------------------------------------------------------------------------------------


def _outcome(screen: Screen | None = None, replies: Iterable[Reply] = ()) -> Outcome:
    # Outcome's ``converter=tuple`` leaves mypy without the element type; Any gets past it.
    return Outcome(screen=screen, replies=cast(Any, tuple(replies)))


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
        raise UnknownMsisdn(f"no Tele2 Kazakhstan subscriber {msisdn!r}", field="msisdn")
    return found


def _places(tariff: Tariff) -> int:
    return 0 if tariff.sharing is None else tariff.sharing.members


def _pending(world: World, owner: str, now: int) -> list[Invitation]:
    return [
        i for i in invitations(world, owner=owner) if i.expires_at is None or i.expires_at > now
    ]


def free_places(world: World, owner: str, *, now: int) -> int:
    """SR-04: the tariff's places less members and pending invitations (never negative)."""
    tariff = world.tariff_of(owner)
    used = len(members(world, owner)) + len(_pending(world, owner, now))
    return max(_places(tariff) - used, 0)


def _gift(world: World, owner: str) -> str:
    """The per-member packages of the owner's tariff, as the SMS names them (SR-01)."""
    tariff = world.tariff_of(owner)
    profile = world.profiles.profile(PROFILE)
    separator = render_template(profile, GIFT_SEPARATOR, {})
    specs = () if tariff.sharing is None else tariff.sharing.per_member
    return separator.join(spec.label or f"{spec.amount} {spec.kind}" for spec in specs)


def _grant(world: World, owner: str, member: str, now: int, until: int) -> None:
    """The tariff's per-member packages to a member, until the end of the owner's period."""
    tariff = world.tariff_of(owner)
    world.expire_packages(member, now=now, source=SOURCE)
    if tariff.sharing is None or until <= now:
        return
    world.grant_packages(
        member, tariff.sharing.per_member, now=now, valid_until=until, source=SOURCE
    )


def _period_end(world: World, owner: str) -> int:
    charge = world.get_recurring(owner, charging.TARIFF)
    return 0 if charge is None else charge.next_at


def _close(world: World, invitation_id: int, status: InvitationStatus, now: int) -> None:
    _db(world).execute(
        "UPDATE share_resources_invitations SET status = ?, closed_at = ? WHERE id = ?",
        (str(status), now, invitation_id),
    )


def _check_owner(world: World, owner: Subscriber) -> Tariff:
    if not owner.active:
        raise NotActive(f"{owner.msisdn} is not active")
    tariff = world.tariff_of(owner)
    if tariff.sharing is None:
        raise NoSharingTariff(f"{tariff.name} does not include the service", tariff=tariff.name)
    if owner_of(world, owner.msisdn) is not None:
        raise OwnerIsMember(f"{owner.msisdn} is a member of another group")
    return tariff


# -- SR-02 … SR-06 ---------------------------------------------------------------------------------


def invite(world: World, owner: str, invitee: str, *, now: int) -> Outcome:
    """SR-02: the owner invites a number; the place is taken now, the SMS leaves shortly."""
    s = settings_of(world)
    with world.transaction():
        asker = _asker(world, owner)
        tariff = _check_owner(world, asker)
        if invitee == owner:
            raise SelfInvite("an owner cannot invite itself")
        if _subscriber(world, invitee) is None:
            raise NotTele2Subscriber(f"{invitee} is not a Tele2 subscriber", msisdn=invitee)
        if owner_of(world, invitee) is not None or members(world, invitee):
            raise InviteeInGroup(f"{invitee} is in a group", msisdn=invitee)
        if any(i.invitee == invitee for i in _pending(world, owner, now)):
            raise AlreadyInvited(f"{invitee} is invited already", msisdn=invitee)
        if free_places(world, owner, now=now) == 0:
            raise NoFreePlaces(f"no free place in {owner}'s group", places=_places(tariff))
        expires = None if s.invitation_ttl is None else now + s.invitation_ttl
        _db(world).execute(
            "INSERT INTO share_resources_invitations (owner, invitee, created_at, deliver_at,"
            " expires_at, status) VALUES (?,?,?,?,?,'pending')",
            (owner, invitee, now, now + s.invitation_delay, expires),
        )
        screen = Screen(
            template=INVITATION_SENT,
            params={
                "invitee": invitee,
                "minutes": s.invitation_delivery_within // 60,
                "free": free_places(world, owner, now=now),
            },
        )
        return _outcome(screen=screen)


def _next_due(world: World) -> int | None:
    row = (
        _db(world)
        .execute(
            "SELECT min(t) FROM (SELECT min(deliver_at) AS t FROM share_resources_invitations"
            " WHERE status = 'pending' AND delivered_at IS NULL UNION ALL"
            " SELECT min(expires_at) FROM share_resources_invitations WHERE status = 'pending')"
        )
        .fetchone()
    )
    return None if row[0] is None else int(row[0])


def run_due(world: World, due: int) -> list[Reply]:
    """SR-02 on the clock: send the invitation SMS that fell due, then expire the old ones."""
    s = settings_of(world)
    replies: list[Reply] = []
    rows = (
        _db(world)
        .execute(
            "UPDATE share_resources_invitations SET delivered_at = deliver_at"
            " WHERE status = 'pending' AND delivered_at IS NULL AND deliver_at <= ?"
            f" RETURNING {_INVITATION_COLUMNS}",
            (due,),
        )
        .fetchall()
    )
    for sent in sorted((_invitation(r) for r in rows), key=lambda i: (i.deliver_at, i.id)):
        replies.append(
            _sms(
                s,
                sent.invitee,
                INVITATION,
                owner=sent.owner,
                gift=_gift(world, sent.owner),
                number=s.sms_number,
                answer=s.accept_text,
            )
        )
    rows = (
        _db(world)
        .execute(
            "UPDATE share_resources_invitations SET status = 'expired', closed_at = expires_at"
            f" WHERE status = 'pending' AND expires_at <= ? RETURNING {_INVITATION_COLUMNS}",
            (due,),
        )
        .fetchall()
    )
    for old in sorted((_invitation(r) for r in rows), key=lambda i: (i.expires_at or 0, i.id)):
        replies.append(_sms(s, old.owner, INVITATION_EXPIRED, invitee=old.invitee))
    return replies


def accept_invitation(world: World, invitee: str, *, now: int, owner: str | None = None) -> Outcome:
    """SR-03: «1» to 2221 accepts the invitation whose SMS came last (or the owner's given)."""
    s = settings_of(world)
    with world.transaction():
        _asker(world, invitee)
        received = [
            i
            for i in invitations(world, invitee=invitee)
            if i.delivered
            and (i.expires_at is None or i.expires_at > now)
            and (owner is None or i.owner == owner)
        ]
        if not received:
            raise NoInvitation(f"no invitation received by {invitee}")
        chosen = max(received, key=lambda i: (i.delivered_at or 0, i.id))
        if owner_of(world, invitee) is not None or members(world, invitee):
            raise InviteeInGroup(f"{invitee} is in a group", msisdn=invitee)
        host = _subscriber(world, chosen.owner)
        try:
            if host is None:
                raise OwnerUnavailable(f"{chosen.owner} left", msisdn=chosen.owner)
            _check_owner(world, host)
        except ShareRefused:
            _close(world, chosen.id, InvitationStatus.CANCELLED, now)
            raise OwnerUnavailable(
                f"{chosen.owner} cannot share now", msisdn=chosen.owner
            ) from None
        _close(world, chosen.id, InvitationStatus.ACCEPTED, now)
        # One group per number: the other invitations free their places.
        for other in invitations(world, invitee=invitee):
            _close(world, other.id, InvitationStatus.CANCELLED, now)
        for own in invitations(world, owner=invitee):
            _close(world, own.id, InvitationStatus.CANCELLED, now)
        _db(world).execute(
            "INSERT INTO share_resources_members (msisdn, owner, joined_at) VALUES (?,?,?)",
            (invitee, chosen.owner, now),
        )
        if world.has_paid_fee(chosen.owner, now=now):
            _grant(world, chosen.owner, invitee, now, _period_end(world, chosen.owner))
        gift = _gift(world, chosen.owner)
        free = free_places(world, chosen.owner, now=now)
        return _outcome(
            replies=[
                _sms(s, invitee, JOINED_MEMBER, owner=chosen.owner, gift=gift),
                _sms(s, chosen.owner, JOINED_OWNER, member=invitee, free=free),
            ]
        )


def cancel_invitation(world: World, owner: str, invitee: str, *, now: int) -> Outcome:
    """SR-05: the owner cancels a pending invitation; its place is free again."""
    s = settings_of(world)
    with world.transaction():
        _asker(world, owner)
        found = [i for i in _pending(world, owner, now) if i.invitee == invitee]
        if not found:
            raise NotInvited(f"no pending invitation from {owner} to {invitee}", msisdn=invitee)
        replies = []
        for invitation in found:
            _close(world, invitation.id, InvitationStatus.CANCELLED, now)
            if invitation.delivered:
                replies.append(_sms(s, invitee, INVITATION_CANCELLED, owner=owner))
        screen = Screen(
            template=CANCELLED,
            params={"invitee": invitee, "free": free_places(world, owner, now=now)},
        )
        return _outcome(screen=screen, replies=replies)


def request_removal(
    world: World, owner: str, member: str, *, now: int
) -> tuple[RemovalRequest, Outcome]:
    """SR-06, step one: «Удалить» asks to confirm; nothing changes yet."""
    s = settings_of(world)
    with world.transaction():
        _asker(world, owner)
        if owner_of(world, member) != owner:
            raise NotMember(f"{member} is not a member of {owner}'s group", msisdn=member)
        expires = now + s.removal_confirmation_ttl
        token = (
            _db(world)
            .execute(
                "INSERT INTO share_resources_removals"
                " (owner, member, created_at, expires_at, status)"
                " VALUES (?,?,?,?,'pending') RETURNING id",
                (owner, member, now, expires),
            )
            .fetchone()[0]
        )
        request = RemovalRequest(token=str(token), owner=owner, member=member, expires_at=expires)
        return request, _outcome(screen=Screen(template=CONFIRM_REMOVAL, params={"member": member}))


def confirm_removal(
    world: World, owner: str, token: str, *, now: int, member: str | None = None
) -> Outcome:
    """SR-06, step two: the confirmed member leaves; its packages from the owner end now.

    ``member``, when given, must be the one the request named (the app confirms a row).
    """
    s = settings_of(world)
    with world.transaction():
        _asker(world, owner)
        row = None
        if isinstance(token, str) and token.isdigit():
            row = (
                _db(world)
                .execute(
                    "SELECT member, expires_at FROM share_resources_removals WHERE id = ?"
                    " AND owner = ? AND status = 'pending'",
                    (int(token), owner),
                )
                .fetchone()
            )
        if row is None or int(row[1]) <= now or member not in (None, str(row[0])):
            raise UnknownConfirmation(f"no removal {token!r} of {owner} to confirm")
        member = str(row[0])
        _db(world).execute(
            "UPDATE share_resources_removals SET status = 'confirmed' WHERE id = ?", (int(token),)
        )
        if owner_of(world, member) != owner:
            raise NotMember(f"{member} is no longer a member", msisdn=member)
        _drop(world, member, now)
        screen = Screen(
            template=REMOVED, params={"member": member, "free": free_places(world, owner, now=now)}
        )
        return _outcome(screen=screen, replies=[_sms(s, member, REMOVED_MEMBER, owner=owner)])


def _drop(world: World, member: str, now: int) -> None:
    _db(world).execute("DELETE FROM share_resources_members WHERE msisdn = ?", (member,))
    if _subscriber(world, member) is not None:
        world.expire_packages(member, now=now, source=SOURCE)


def view_group(world: World, owner: str, *, now: int) -> ShareView:
    """SR-04: the «Участники» tab — members, sent invitations, free places."""
    with world.transaction():
        asker = _asker(world, owner)
        tariff = world.tariff_of(asker)
        return ShareView(
            owner=owner,
            tariff=tariff.name,
            places=_places(tariff),
            members=members(world, owner),
            invitations=tuple(_pending(world, owner, now)),
            free_places=free_places(world, owner, now=now),
        )


# -- the owner's billing days and changes ----------------------------------------------------------


def on_fee(world: World, result: FeeResult) -> list[Reply]:
    """SR-01: each paid period of the owner's tariff gives its members their packages again."""
    if result.code != charging.TARIFF or not result.paid or result.part != 1:
        return []
    for member in members(world, result.msisdn):
        if _subscriber(world, member.msisdn) is not None:
            _grant(world, result.msisdn, member.msisdn, result.at, result.period_end)
    return []


def on_change(world: World, event: SubscriberChanged) -> list[Reply]:
    """The owner's tariff change or termination, a member's termination (SR-01)."""
    if event.field not in ("tariff", "status"):
        return []
    terminated = event.field == "status" and event.new == SubscriberStatus.TERMINATED
    if event.field == "status" and not terminated:
        return []
    s = settings_of(world)
    if terminated:
        for invitation in invitations(world, invitee=event.msisdn):
            _close(world, invitation.id, InvitationStatus.CANCELLED, event.at)
        if owner_of(world, event.msisdn) is not None:
            _drop(world, event.msisdn, event.at)
    group = members(world, event.msisdn)
    pending = invitations(world, owner=event.msisdn)
    if not group and not pending:
        return []
    places = 0 if terminated else _places(world.tariff_of(event.msisdn))
    replies: list[Reply] = []
    # The newest go first: pending invitations, then members.
    for invitation in reversed(pending):
        if len(group) + len(pending) <= places:
            break
        _close(world, invitation.id, InvitationStatus.CANCELLED, event.at)
        pending = pending[:-1]
        if invitation.delivered:
            replies.append(_sms(s, invitation.invitee, INVITATION_CANCELLED, owner=event.msisdn))
    for member in reversed(group):
        if len(group) <= places:
            break
        _drop(world, member.msisdn, event.at)
        group = group[:-1]
        replies.append(_sms(s, member.msisdn, DISBANDED, owner=event.msisdn))
    return replies


# -- the phone and the directory -------------------------------------------------------------------


def _answer(call: Callable[[], Outcome]) -> Outcome:
    """A handler's outcome, with a refusal turned into its reply (never an exception)."""
    try:
        return call()
    except ShareRefused as refusal:
        return _outcome(screen=refusal.screen())
    except UnknownMsisdn:
        return _outcome(screen=Screen(template="parse_error.unknown_service"))
    except DomainError:
        return _outcome(screen=Screen(template=FAILED))


def install(world: World, directory: ServiceDirectory) -> SelfCare | None:
    """Create the tables and plug the service into the world and the directory (tele2kz only).

    Returns the handle of the self-care actions (``add_routes``), None without the profile.
    """
    if PROFILE not in world.profiles:
        return None
    s = settings_of(world)
    world.migrate_service(SERVICE, MIGRATIONS)
    world.on_fee(lambda result: on_fee(world, result))
    world.on_change(lambda event: on_change(world, event))
    world.timeline.register(
        "share_resources_invitations", lambda: _next_due(world), lambda due: run_due(world, due)
    )
    directory.register_sms_number(PROFILE, s.sms_number)
    directory.register_command(
        PROFILE,
        AcceptShareInvitation,
        lambda context, command: _answer(
            lambda: accept_invitation(world, context.msisdn, now=context.now)
        ),
    )
    return SelfCare(world=world)


# -- the self-care API (the app's «Делитесь ресурсами» screens) ------------------------------------

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


def api_view(
    world: World, path: Mapping[str, str], body: Mapping[str, object], now: int
) -> tuple[object, list[Reply]]:
    """GET …/{msisdn}: SR-04's «Участники» tab."""
    owner = _api_number(path.get("msisdn"), "msisdn")
    return to_json(view_group(world, owner, now=now)), []


def api_invite(
    world: World, path: Mapping[str, str], body: Mapping[str, object], now: int
) -> tuple[object, list[Reply]]:
    """POST …/{msisdn}/invitations {"msisdn": invitee}: SR-02 «Отправить приглашение»."""
    owner = _api_number(path.get("msisdn"), "msisdn")
    invitee = _api_number(_body(body, ("msisdn",)).get("msisdn"), "msisdn")
    outcome = invite(world, owner, invitee, now=now)
    return _result(
        world, outcome, result="invited", group=to_json(view_group(world, owner, now=now))
    )


def api_cancel(
    world: World, path: Mapping[str, str], body: Mapping[str, object], now: int
) -> tuple[object, list[Reply]]:
    """DELETE …/{msisdn}/invitations/{invitee}: SR-05 «Отменить»."""
    owner = _api_number(path.get("msisdn"), "msisdn")
    invitee = _api_number(path.get("invitee"), "invitee")
    return _result(world, cancel_invitation(world, owner, invitee, now=now), result="cancelled")


def api_accept(
    world: World, path: Mapping[str, str], body: Mapping[str, object], now: int
) -> tuple[object, list[Reply]]:
    """POST …/{msisdn}/accept {"owner"?}: SR-03 as the app does it (the SMS «1» does the same)."""
    invitee = _api_number(path.get("msisdn"), "msisdn")
    given = _body(body, ("owner",)).get("owner")
    owner = None if given is None else _api_number(given, "owner")
    outcome = accept_invitation(world, invitee, now=now, owner=owner)
    return _result(world, outcome, result="joined", owner=owner_of(world, invitee))


def api_request_removal(
    world: World, path: Mapping[str, str], body: Mapping[str, object], now: int
) -> tuple[object, list[Reply]]:
    """POST …/{msisdn}/members/{member}/removal: SR-06 «Удалить» → the question to confirm."""
    owner = _api_number(path.get("msisdn"), "msisdn")
    member = _api_number(path.get("member"), "member")
    _body(body, ())
    request, outcome = request_removal(world, owner, member, now=now)
    return _result(
        world,
        outcome,
        result="confirmation_required",
        confirmation=request.token,
        expires_at=request.expires_at,
    )


def api_confirm_removal(
    world: World, path: Mapping[str, str], body: Mapping[str, object], now: int
) -> tuple[object, list[Reply]]:
    """POST …/{msisdn}/members/{member}/removal/confirm {"confirmation": token}: SR-06."""
    owner = _api_number(path.get("msisdn"), "msisdn")
    member = _api_number(path.get("member"), "member")
    token = _body(body, ("confirmation",)).get("confirmation")
    if not isinstance(token, str):
        raise WrongType(
            "confirmation must be the token of the removal request", field="confirmation"
        )
    outcome = confirm_removal(world, owner, token, now=now, member=member)
    return _result(world, outcome, result="removed")


_BASE: Final = "/api/v1/tele2kz/share/{msisdn}"

#: The self-care actions, ``(method, path pattern, handler)``; ``add_routes`` mounts them.
ROUTES: Final[tuple[tuple[str, str, ApiHandler], ...]] = (
    ("GET", _BASE, api_view),
    ("POST", f"{_BASE}/invitations", api_invite),
    ("DELETE", f"{_BASE}/invitations/{{invitee}}", api_cancel),
    ("POST", f"{_BASE}/accept", api_accept),
    ("POST", f"{_BASE}/members/{{member}}/removal", api_request_removal),
    ("POST", f"{_BASE}/members/{{member}}/removal/confirm", api_confirm_removal),
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
