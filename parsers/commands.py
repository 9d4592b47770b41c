"""The commands subscribers give, as frozen values: one class per USSD string, SMS command and
menu answer of SPEC (MP-05 … MP-20, TV-01, TV-02, SR-03, TS-01 … TS-03, SE-03, SE-05), named
as the operator names the action.

Every class says on which ``channel`` it travels (``'ussd'``: a dialled string; ``'sms'``: a
text to a short number; ``'answer'``: a reply typed into an open USSD dialogue) and in which
``profiles`` it exists. Phone numbers are held in the wire form (international digits, no
``+``, ``parsers.msisdn``); the validators refuse anything a parser could not have produced, so
a command value is always one the operator accepts at the grammar level. Whether it is allowed
(eligibility, limits, which inviter a suffix means) is the services' question.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Final, TypeVar

import attrs

from parsers.msisdn import ANY_WIRE_PATTERN, WIRE_PATTERNS
from parsers.profiles import PROFILES

_C = TypeVar("_C", bound="Command")
_SUFFIX: Final = re.compile(r"[0-9]{1,11}")
#: TS-03: «цяло число от 10 до 50, кратно на 10».
MINUTES_MIN: Final = 10
MINUTES_MAX: Final = 50
MINUTES_STEP: Final = 10
#: SE-03: a menu item number is one or two digits.
CHOICE_MAX: Final = 99
#: SE-05: a count is at most nine digits.
COUNT_MAX: Final = 999_999_999


class Destination(enum.StrEnum):
    """Where transferred Time Share minutes are valid (TS-01), by the letter of the SMS."""

    FRIENDS = "F"  # «Към група За приятели»
    NETWORK = "G"  # «Към мрежата на Теленор»


_Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def _strict_int(low: int, high: int, step: int = 1) -> _Validator:
    """attrs validator: an ``int`` (not a ``bool``) in ``low … high`` and a multiple of ``step``."""

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if type(value) is not int or not low <= value <= high or value % step:
            raise ValueError(
                f"{attribute.name} must be an int in {low}…{high}, step {step}: {value!r}"
            )

    return check


def _fullmatch(pattern: re.Pattern[str], *, optional: bool = False) -> _Validator:
    """attrs validator: a ``str`` that fully matches ``pattern`` (or ``None`` if ``optional``).
    One plain function rather than composed attrs validators: commands are built on every parse."""
    match = pattern.fullmatch

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None and optional:
            return
        if type(value) is not str or match(value) is None:
            raise ValueError(f"{attribute.name} must match {pattern.pattern!r}: {value!r}")

    return check


def _destination(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """attrs validator: a ``Destination``."""
    if type(value) is not Destination:
        raise ValueError(f"{attribute.name} must be a Destination: {value!r}")


_RU_WIRE: Final = _fullmatch(WIRE_PATTERNS["mts"])
_BG_WIRE: Final = _fullmatch(WIRE_PATTERNS["telenor"])
_ANY_WIRE: Final = _fullmatch(ANY_WIRE_PATTERN)
_OPTIONAL_SUFFIX: Final = _fullmatch(_SUFFIX, optional=True)
_ALL_PROFILES: Final = frozenset(PROFILES)


@attrs.frozen
class Command:
    """Base of every command value; ``channel`` and ``profiles`` are set by each class."""

    channel: ClassVar[str]
    profiles: ClassVar[frozenset[str]]


# --- MTS «Общий пакет» (profile mts, seed 002) -------------------------------------------------


@attrs.frozen(kw_only=True)
class OpenSharedBundleMenu(Command):
    """``*434#`` — the «Общий пакет» menu (MP-18, MP-19, MP-20 reach their actions from it)."""

    channel: ClassVar[str] = "ussd"
    profiles: ClassVar[frozenset[str]] = frozenset({"mts"})


@attrs.frozen(kw_only=True)
class OpenInvitePrompt(Command):
    """``*434*1#`` — the invitation dialogue, which then asks for the number (MP-05)."""

    channel: ClassVar[str] = "ussd"
    profiles: ClassVar[frozenset[str]] = frozenset({"mts"})


@attrs.frozen(kw_only=True)
class InviteMember(Command):
    """``*434*1*7XXXXXXXXXX#`` — invite ``msisdn`` into the initiator's group (MP-05)."""

    channel: ClassVar[str] = "ussd"
    profiles: ClassVar[frozenset[str]] = frozenset({"mts"})
    msisdn: str = attrs.field(validator=_RU_WIRE)


@attrs.frozen(kw_only=True)
class GroupInfo(Command):
    """``*434*2#`` — the group's members, packages, limits and use (MP-20)."""

    channel: ClassVar[str] = "ussd"
    profiles: ClassVar[frozenset[str]] = frozenset({"mts"})


@attrs.frozen(kw_only=True)
class RemoveMember(Command):
    """``*434*3*7XXXXXXXXXX#`` — the initiator removes participant ``msisdn`` (MP-18)."""

    channel: ClassVar[str] = "ussd"
    profiles: ClassVar[frozenset[str]] = frozenset({"mts"})
    msisdn: str = attrs.field(validator=_RU_WIRE)


@attrs.frozen(kw_only=True)
class LeaveGroup(Command):
    """``*434*0#`` — a participant leaves; the initiator disbands the group (MP-19)."""

    channel: ClassVar[str] = "ussd"
    profiles: ClassVar[frozenset[str]] = frozenset({"mts"})


@attrs.frozen(kw_only=True)
class AcceptInvitation(Command):
    """SMS «ДА» or «ДА#XXXX» — accept an invitation (MP-07); ``suffix`` is the last digits of
    the inviter's number as typed, or ``None``; which inviter it means is the service's
    question."""

    channel: ClassVar[str] = "sms"
    profiles: ClassVar[frozenset[str]] = frozenset({"mts"})
    suffix: str | None = attrs.field(default=None, validator=_OPTIONAL_SUFFIX)


@attrs.frozen(kw_only=True)
class DeclineInvitation(Command):
    """SMS «НЕТ» or «НЕТ#XXXX» — decline an invitation (MP-08); ``suffix`` as in
    ``AcceptInvitation``."""

    channel: ClassVar[str] = "sms"
    profiles: ClassVar[frozenset[str]] = frozenset({"mts"})
    suffix: str | None = attrs.field(default=None, validator=_OPTIONAL_SUFFIX)


# --- Tele2 Russia «Выгодно вместе» (profile tele2ru, seed 003) ----------------------------------


@attrs.frozen(kw_only=True)
class CreateTogetherGroup(Command):
    """``*985*2#`` — the organizer creates a «Выгодно вместе» group (TV-01)."""

    channel: ClassVar[str] = "ussd"
    profiles: ClassVar[frozenset[str]] = frozenset({"tele2ru"})


@attrs.frozen(kw_only=True)
class JoinTogetherGroup(Command):
    """``*985*7XXXXXXXXXX*2#`` — join the group of ``organizer_msisdn`` (TV-02)."""

    channel: ClassVar[str] = "ussd"
    profiles: ClassVar[frozenset[str]] = frozenset({"tele2ru"})
    organizer_msisdn: str = attrs.field(validator=_RU_WIRE)


@attrs.frozen(kw_only=True)
class LeaveTogetherGroup(Command):
    """``*985*0*2#`` — a member leaves the group (TV-02)."""

    channel: ClassVar[str] = "ussd"
    profiles: ClassVar[frozenset[str]] = frozenset({"tele2ru"})


# --- Tele2 Kazakhstan «Делитесь ресурсами» (profile tele2kz, seed 000) ---------------------------


@attrs.frozen(kw_only=True)
class AcceptShareInvitation(Command):
    """SMS «1» to 2221 — accept the invitation that came from 2221 (SR-03)."""

    channel: ClassVar[str] = "sms"
    profiles: ClassVar[frozenset[str]] = frozenset({"tele2kz"})


# --- Telenor Bulgaria (profile telenor, seed 004) ----------------------------------------------


@attrs.frozen(kw_only=True)
class TransferMinutes(Command):
    """SMS ``F,08XXXXXXXX,YY`` / ``G,08XXXXXXXX,YY`` to 125 — send ``minutes`` valid to
    ``destination`` to ``recipient_msisdn`` (TS-01, TS-03). The letter may be given as a
    ``str`` (``destination="G"``)."""

    channel: ClassVar[str] = "sms"
    profiles: ClassVar[frozenset[str]] = frozenset({"telenor"})
    recipient_msisdn: str = attrs.field(validator=_BG_WIRE)
    destination: Destination = attrs.field(converter=Destination, validator=_destination)
    minutes: int = attrs.field(validator=_strict_int(MINUTES_MIN, MINUTES_MAX, MINUTES_STEP))


@attrs.frozen(kw_only=True)
class OpenMyMenu(Command):
    """``*123#`` — Telenor My Menu (TS-02)."""

    channel: ClassVar[str] = "ussd"
    profiles: ClassVar[frozenset[str]] = frozenset({"telenor"})


# --- Answers typed into an open USSD dialogue (every profile) -----------------------------------


@attrs.frozen(kw_only=True)
class MenuChoice(Command):
    """The number of a menu item (SE-03); whether the menu has it is the dialogue's question."""

    channel: ClassVar[str] = "answer"
    profiles: ClassVar[frozenset[str]] = _ALL_PROFILES
    number: int = attrs.field(validator=_strict_int(0, CHOICE_MAX))


@attrs.frozen(kw_only=True)
class PhoneNumberAnswer(Command):
    """A phone number typed at a prompt (SE-05, MP-05 ``*434*1#``, TS-02 recipient)."""

    channel: ClassVar[str] = "answer"
    profiles: ClassVar[frozenset[str]] = _ALL_PROFILES
    msisdn: str = attrs.field(validator=_ANY_WIRE)


@attrs.frozen(kw_only=True)
class CountAnswer(Command):
    """A count typed at a prompt (SE-05), e.g. a personal limit."""

    channel: ClassVar[str] = "answer"
    profiles: ClassVar[frozenset[str]] = _ALL_PROFILES
    count: int = attrs.field(validator=_strict_int(0, COUNT_MAX))


@attrs.frozen(kw_only=True)
class MinutesAnswer(Command):
    """Time Share minutes typed at the My Menu prompt (TS-02, TS-03)."""

    channel: ClassVar[str] = "answer"
    profiles: ClassVar[frozenset[str]] = _ALL_PROFILES
    minutes: int = attrs.field(validator=_strict_int(MINUTES_MIN, MINUTES_MAX, MINUTES_STEP))


@attrs.frozen(kw_only=True)
class DestinationAnswer(Command):
    """The Time Share destination chosen at the My Menu prompt (TS-02)."""

    channel: ClassVar[str] = "answer"
    profiles: ClassVar[frozenset[str]] = _ALL_PROFILES
    destination: Destination = attrs.field(converter=Destination, validator=_destination)


# --- Building values a grammar has already checked ------------------------------------------------

# attrs' __init__ runs the validators again, which is two thirds of what a canonical Time Share
# SMS costs to parse. The parsers' fast paths, whose patterns are stricter than the validators,
# build through these instead, writing each slot through its descriptor (the classes are
# slotted, as ``attrs.frozen`` makes them); the property tests run ``attrs.validate`` over every
# command a parser returns, so a fast path that let through a value the validators refuse fails.
_new = object.__new__


def _slot_setter(cls: type[Command], name: str) -> Callable[[Command, Any], None]:
    slot = cls.__dict__[name]
    assert type(slot).__name__ == "member_descriptor", f"{cls.__name__}.{name} is not a slot"
    setter: Callable[[Command, Any], None] = slot.__set__
    return setter


def prevalidated_one(cls: type[_C], name: str) -> Callable[[Any], _C]:
    """A constructor of ``cls`` from the value of its single field ``name``, without the
    validators: only for values a grammar rule has just checked."""
    set_field = _slot_setter(cls, name)

    def build(value: Any) -> _C:
        command = _new(cls)
        set_field(command, value)
        return command

    return build


_set_recipient = _slot_setter(TransferMinutes, "recipient_msisdn")
_set_destination = _slot_setter(TransferMinutes, "destination")
_set_minutes = _slot_setter(TransferMinutes, "minutes")


def prevalidated_transfer(
    recipient_msisdn: str, destination: Destination, minutes: int
) -> TransferMinutes:
    """``TransferMinutes`` without the validators: only for values a grammar rule has just
    checked."""
    command = _new(TransferMinutes)
    _set_recipient(command, recipient_msisdn)
    _set_destination(command, destination)
    _set_minutes(command, minutes)
    return command


#: Every command class, USSD and SMS commands first, then the dialogue answers.
COMMAND_CLASSES: Final[tuple[type[Command], ...]] = (
    OpenSharedBundleMenu,
    OpenInvitePrompt,
    InviteMember,
    GroupInfo,
    RemoveMember,
    LeaveGroup,
    AcceptInvitation,
    DeclineInvitation,
    CreateTogetherGroup,
    JoinTogetherGroup,
    LeaveTogetherGroup,
    AcceptShareInvitation,
    TransferMinutes,
    OpenMyMenu,
    MenuChoice,
    PhoneNumberAnswer,
    CountAnswer,
    MinutesAnswer,
    DestinationAnswer,
)

#: The kinds of answer ``parsers.ussd.parse_menu_answer`` knows, and the class each gives.
ANSWER_CLASSES: Final[Mapping[str, type[Command]]] = MappingProxyType(
    {
        "choice": MenuChoice,
        "msisdn": PhoneNumberAnswer,
        "count": CountAnswer,
        "minutes": MinutesAnswer,
        "destination": DestinationAnswer,
    }
)
