"""USSD strings and the answers typed into an open USSD dialogue: ``parse_ussd(text, profile)``
and its inverse ``format_ussd(command, profile)``, ``parse_menu_answer(text, expect, profile)``
and ``format_menu_answer(answer, profile)``; one small function per grammar rule (the rule in
its docstring), refusals as ``ParseError`` (reasons in ``parsers.errors``).

=========  =========================  ================================================  ========
profile    string                     command                                           rule
=========  =========================  ================================================  ========
mts        ``*434#``                  ``OpenSharedBundleMenu``                          MP-18
mts        ``*434*1#``                ``OpenInvitePrompt``                              MP-05
mts        ``*434*1*7XXXXXXXXXX#``    ``InviteMember(msisdn)``                          MP-05
mts        ``*434*2#``                ``GroupInfo``                                     MP-20
mts        ``*434*3*7XXXXXXXXXX#``    ``RemoveMember(msisdn)``                          MP-18
mts        ``*434*0#``                ``LeaveGroup``                                    MP-19
tele2ru    ``*985*2#``                ``CreateTogetherGroup``                           TV-01
tele2ru    ``*985*7XXXXXXXXXX*2#``    ``JoinTogetherGroup(organizer_msisdn)``           TV-02
tele2ru    ``*985*0*2#``              ``LeaveTogetherGroup``                            TV-02
telenor    ``*123#``                  ``OpenMyMenu``                                    TS-02
tele2kz    (none: the service lives in the app and SMS to 2221)
=========  =========================  ================================================  ========

USSD strings are exact, as the operators print them: no whitespace anywhere
(``spaces_not_allowed``), ``*`` and ``#`` only where the table has them (``bad_format``), the
number without the leading 8 (``msisdn_with_8``, MP-05 «без восьмерки»). The seeds' trailing
«С» (``*434*1#С``) is the handset's call key, not part of the string. The one tolerance is the
package's: digits may be any Unicode decimal digits, normalised to ASCII (``parsers._text``).

Answers in a dialogue (``expect``): ``'choice'`` — a menu item number, one or two digits without
a leading zero (SE-03; ``max_choice`` refuses items past the menu's last with ``bad_choice``);
``'msisdn'`` — a number as typed on a handset of the profile (SE-05, MP-05, TS-02);
``'count'`` — up to nine digits (SE-05); ``'minutes'`` — Time Share minutes (TS-03);
``'destination'`` — ``1`` (За приятели) or ``2`` (мрежата на Теленор) in the seed's order, or
the letter ``F`` / ``G`` (TS-02). Answers are typed by people, so whitespace around them is
ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final, Literal

from parsers._text import ascii_digits, first_non_digit, first_space, strip_span
from parsers.commands import (
    ANSWER_CLASSES,
    CHOICE_MAX,
    Command,
    CountAnswer,
    CreateTogetherGroup,
    Destination,
    DestinationAnswer,
    GroupInfo,
    InviteMember,
    JoinTogetherGroup,
    LeaveGroup,
    LeaveTogetherGroup,
    MenuChoice,
    MinutesAnswer,
    OpenInvitePrompt,
    OpenMyMenu,
    OpenSharedBundleMenu,
    PhoneNumberAnswer,
    RemoveMember,
    prevalidated_one,
)
from parsers.errors import ParseError, ParserUsageError
from parsers.msisdn import is_wire, national, russian_number, typed_number, typed_number_fast
from parsers.profiles import check_profile, unknown_profile
from parsers.sms import destination_letter, time_share_minutes

Expect = Literal["choice", "msisdn", "minutes", "count", "destination"]
_Span = tuple[int, int]
_ServiceRule = Callable[[str, list[_Span], int], Command]

_SERVICE_CODES_EXPECTED: Final[dict[str, str]] = {
    "mts": "the service code 434 (*434…#)",
    "tele2ru": "the service code 985 (*985…#)",
    "tele2kz": "nothing: Tele2 Kazakhstan has no USSD code (the app, and SMS to 2221)",
    "telenor": "the service code 123 (*123#)",
}


# --- The string as a whole ----------------------------------------------------------------------


def ussd_string(text: str) -> tuple[str, list[_Span], int]:
    """``ussd-string = "*" service-code *( "*" parameter ) "#"`` — the MMI form every code of
    SPEC uses (MP-05, TV-01, TS-02), with no spaces; ``service-code = 1*DIGIT``,
    ``parameter = 1*( any character but "*" and "#" )``. Returns the service code, the spans of
    the parameters and the index of the ``#``."""
    if not text:
        raise ParseError("empty", text, 0, "a USSD string such as *123#")
    # Every whitespace character but U+0020 is unprintable: the usual case costs no search.
    if not text.isprintable() or " " in text:
        space = first_space(text)
        if space != -1:
            raise ParseError("spaces_not_allowed", text, space, "the USSD string without spaces")
    if text[0] != "*":
        raise ParseError("bad_format", text, 0, "'*' to start the USSD string")
    end = text.find("#")
    if end == -1:
        raise ParseError("bad_format", text, len(text), "'#' to end the USSD string")
    if end != len(text) - 1:
        raise ParseError("bad_format", text, end + 1, "nothing after '#'")
    spans: list[_Span] = []
    start = 1
    for field in text[1:end].split("*"):
        stop = start + len(field)
        if stop == start:
            raise ParseError(
                "bad_format", text, start, "digits between '*' and the next '*' or '#'"
            )
        spans.append((start, stop))
        start = stop + 1
    code = text[1 : spans[0][1]]
    if not (code.isascii() and code.isdigit()):
        code = service_code(text, *spans[0])
    return code, spans[1:], end


def service_code(text: str, start: int, end: int) -> str:
    """``service-code = 1*DIGIT`` — the code after the first ``*`` (434, 985, 123)."""
    code = ascii_digits(text[start:end])
    if code is None:
        raise ParseError("bad_format", text, first_non_digit(text, start, end), "a digit")
    return code


def _item(text: str, span: _Span) -> str | None:
    return ascii_digits(text[span[0] : span[1]])


def _end_here(text: str, params: list[_Span], count: int, expected: str) -> None:
    """Refuse parameters after the first ``count`` ones: a longer string is a shortcut the
    operator does not have."""
    if len(params) > count:
        raise ParseError("unknown_code", text, params[count][0] - 1, expected)


# --- MTS «Общий пакет»: *434… (seed 002) ---------------------------------------------------------


def shared_bundle_code(text: str, params: list[_Span], end: int) -> Command:
    """``shared-bundle = "*434" [ "*" ( leave / invite / info / remove ) ] "#"`` — seed 002:
    «наберите с телефона команду *434#», MP-18 … MP-20."""
    if not params:
        return OpenSharedBundleMenu()
    rule = _SHARED_BUNDLE_ACTIONS.get(_item(text, params[0]) or "")
    if rule is None:
        raise ParseError("unknown_code", text, params[0][0], "0, 1, 2 or 3 after *434*")
    return rule(text, params, end)


def leave_action(text: str, params: list[_Span], end: int) -> Command:
    """``leave = "0"`` — MP-19: «наберите с телефона команду *434*0#»."""
    _end_here(text, params, 1, "'#' after *434*0")
    return LeaveGroup()


def invite_action(text: str, params: list[_Span], end: int) -> Command:
    """``invite = "1" [ "*" ru-msisdn ]`` — MP-05: «*434*1#С, введите номер» or
    «*434*1*7XXXXXXXXXX#С … (без «восьмерки»)»."""
    if len(params) == 1:
        return OpenInvitePrompt()
    _end_here(text, params, 2, "'#' after the number")
    return InviteMember(msisdn=russian_number(text, *params[1]))


def info_action(text: str, params: list[_Span], end: int) -> Command:
    """``info = "2"`` — MP-20: «наберите с телефона команду *434*2#»."""
    _end_here(text, params, 1, "'#' after *434*2")
    return GroupInfo()


def remove_action(text: str, params: list[_Span], end: int) -> Command:
    """``remove = "3" "*" ru-msisdn`` — MP-18: «*434*3*7XXXXXXXXXX#С … (без «восьмерки»)»."""
    if len(params) == 1:
        raise ParseError("missing_msisdn", text, end, "*434*3*7XXXXXXXXXX#: the member's number")
    _end_here(text, params, 2, "'#' after the number")
    return RemoveMember(msisdn=russian_number(text, *params[1]))


_SHARED_BUNDLE_ACTIONS: Final[dict[str, _ServiceRule]] = {
    "0": leave_action,
    "1": invite_action,
    "2": info_action,
    "3": remove_action,
}


# --- Tele2 Russia «Выгодно вместе»: *985… (seed 003) ---------------------------------------------

_TOGETHER_EXPECTED: Final = "*985*2#, *985*7XXXXXXXXXX*2# or *985*0*2#"


def together_code(text: str, params: list[_Span], end: int) -> Command:
    """``together = "*985*" ( create / leave / join ) "#"`` — seed 003: «Команды для управления
    группой с телефона», TV-01, TV-02."""
    if not params:
        raise ParseError("unknown_code", text, end, _TOGETHER_EXPECTED)
    first = params[0]
    if first[1] - first[0] > 1:
        return join_group(text, params, end)
    rule = _TOGETHER_ACTIONS.get(_item(text, first) or "")
    if rule is None:
        raise ParseError("unknown_code", text, first[0], _TOGETHER_EXPECTED)
    return rule(text, params, end)


def create_group(text: str, params: list[_Span], end: int) -> Command:
    """``create = "2"`` — TV-01: «Создать группу *985*2#»."""
    _end_here(text, params, 1, "'#' after *985*2")
    return CreateTogetherGroup()


def leave_together_group(text: str, params: list[_Span], end: int) -> Command:
    """``leave = "0" group-tag`` — TV-02: «Выйти из группы *985*0*2#»."""
    group_tag(text, params, end)
    return LeaveTogetherGroup()


def join_group(text: str, params: list[_Span], end: int) -> Command:
    """``join = ru-msisdn group-tag`` — TV-02: «Добавиться в группу *985*7XXXXXXXXXX*2#, где
    7XXXXXXXXX – номер организатора»."""
    organizer = russian_number(text, *params[0])
    group_tag(text, params, end)
    return JoinTogetherGroup(organizer_msisdn=organizer)


def group_tag(text: str, params: list[_Span], end: int) -> None:
    """``group-tag = "*2"`` — the closing ``*2`` of TV-02's join and leave strings."""
    if len(params) < 2:
        raise ParseError("bad_format", text, end, "'*2' before '#'")
    if _item(text, params[1]) != "2":
        raise ParseError("unknown_code", text, params[1][0], "2 before '#'")
    _end_here(text, params, 2, "'#' after '*2'")


_TOGETHER_ACTIONS: Final[dict[str, _ServiceRule]] = {"2": create_group, "0": leave_together_group}


# --- Telenor My Menu: *123# (seed 004) -----------------------------------------------------------


def my_menu_code(text: str, params: list[_Span], end: int) -> Command:
    """``my-menu = "*123#"`` — TS-02: «Въведете *123# на своя телефон»."""
    _end_here(text, params, 0, "'#' right after *123")
    return OpenMyMenu()


# --- Entry points --------------------------------------------------------------------------------

_SERVICES: Final[dict[str, dict[str, _ServiceRule]]] = {
    "mts": {"434": shared_bundle_code},
    "tele2ru": {"985": together_code},
    "tele2kz": {},
    "telenor": {"123": my_menu_code},
}

# Fast paths, tried before the grammar: the field-less strings by dict, the canonical strings
# with a number by one precompiled pattern each. They only ever accept what the grammar accepts
# (the tests compare both on valid, invalid and random strings); anything they miss, valid or
# not, goes through the grammar, which alone decides refusals and their positions.
_FIXED: Final[dict[str, dict[str, Command]]] = {
    "mts": {
        "*434#": OpenSharedBundleMenu(),
        "*434*1#": OpenInvitePrompt(),
        "*434*2#": GroupInfo(),
        "*434*0#": LeaveGroup(),
    },
    "tele2ru": {"*985*2#": CreateTogetherGroup(), "*985*0*2#": LeaveTogetherGroup()},
    "tele2kz": {},
    "telenor": {"*123#": OpenMyMenu()},
}
_MTS_NUMBERED: Final = re.compile(r"\*434\*([13])\*(79[0-9]{9})#").fullmatch
_TELE2RU_JOIN: Final = re.compile(r"\*985\*(79[0-9]{9})\*2#").fullmatch


_NUMBERED_MTS: Final = {
    "1": prevalidated_one(InviteMember, "msisdn"),
    "3": prevalidated_one(RemoveMember, "msisdn"),
}
_JOIN: Final = prevalidated_one(JoinTogetherGroup, "organizer_msisdn")


def _mts_fast(text: str) -> Command | None:
    # Both numbered strings are 19 characters long; the length spares most misses the match.
    match = _MTS_NUMBERED(text) if len(text) == 19 else None
    return None if match is None else _NUMBERED_MTS[match[1]](match[2])


def _tele2ru_fast(text: str) -> Command | None:
    match = _TELE2RU_JOIN(text) if len(text) == 19 else None
    return None if match is None else _JOIN(match[1])


_FAST: Final[dict[str, Callable[[str], Command | None]]] = {
    "mts": _mts_fast,
    "tele2ru": _tele2ru_fast,
}


def parse_ussd(text: str, profile: str) -> Command:
    """The command a subscriber of ``profile`` dials with USSD string ``text``, or
    ``ParseError``."""
    fixed = _FIXED.get(profile)
    if fixed is None:
        unknown_profile(profile)
    command = fixed.get(text)
    if command is not None:
        return command
    fast = _FAST.get(profile)
    if fast is not None:
        command = fast(text)
        if command is not None:
            return command
    # The grammar, as parse_ussd_by_grammar (inlined: a refusal unwinds one frame fewer).
    code, params, end = ussd_string(text)
    rule = _SERVICES[profile].get(code)
    if rule is None:
        raise ParseError("unknown_code", text, 1, _SERVICE_CODES_EXPECTED[profile])
    return rule(text, params, end)


def parse_ussd_by_grammar(text: str, profile: str) -> Command:
    """``parse_ussd`` without its fast paths: the grammar rules alone (the reference the tests
    hold the fast paths to)."""
    services = _SERVICES.get(profile)
    if services is None:
        unknown_profile(profile)
    code, params, end = ussd_string(text)
    rule = services.get(code)
    if rule is None:
        raise ParseError("unknown_code", text, 1, _SERVICE_CODES_EXPECTED[profile])
    return rule(text, params, end)


def _no_field(string: str) -> Callable[[Command, str], str]:
    return lambda command, profile: string


def _format_invite(command: Command, profile: str) -> str:
    assert isinstance(command, InviteMember)
    return f"*434*1*{national(command.msisdn, profile)}#"


def _format_remove(command: Command, profile: str) -> str:
    assert isinstance(command, RemoveMember)
    return f"*434*3*{national(command.msisdn, profile)}#"


def _format_join(command: Command, profile: str) -> str:
    assert isinstance(command, JoinTogetherGroup)
    return f"*985*{national(command.organizer_msisdn, profile)}*2#"


_FORMATTERS: Final[dict[type[Command], Callable[[Command, str], str]]] = {
    OpenSharedBundleMenu: _no_field("*434#"),
    OpenInvitePrompt: _no_field("*434*1#"),
    InviteMember: _format_invite,
    GroupInfo: _no_field("*434*2#"),
    RemoveMember: _format_remove,
    LeaveGroup: _no_field("*434*0#"),
    CreateTogetherGroup: _no_field("*985*2#"),
    JoinTogetherGroup: _format_join,
    LeaveTogetherGroup: _no_field("*985*0*2#"),
    OpenMyMenu: _no_field("*123#"),
}


def format_ussd(command: Command, profile: str) -> str:
    """The USSD string a subscriber of ``profile`` dials for ``command``; the inverse of
    ``parse_ussd``. ``ParserUsageError`` for a command that is no USSD string of the profile."""
    check_profile(profile)
    formatter = _FORMATTERS.get(type(command))
    if formatter is None or profile not in command.profiles:
        raise ParserUsageError(f"{type(command).__name__} is not a USSD command of {profile!r}")
    return formatter(command, profile)


# --- Answers inside a dialogue (SE-03, SE-05, TS-02) --------------------------------------------


def menu_choice(text: str, start: int, end: int, max_choice: int | None) -> MenuChoice:
    """``choice = "0" / %x31-39 [ DIGIT ]`` — SE-03: the number of a menu item (``max_choice``,
    when given, is the last item)."""
    digits = ascii_digits(text[start:end])
    if digits is None:
        raise ParseError("not_a_number", text, first_non_digit(text, start, end), "a menu item")
    last = CHOICE_MAX if max_choice is None else max_choice
    if len(digits) > 2 or (len(digits) == 2 and digits[0] == "0") or int(digits) > last:
        raise ParseError("bad_choice", text, start, f"a menu item number from 0 to {last}")
    return MenuChoice(number=int(digits))


def phone_number_answer(text: str, start: int, end: int, profile: str) -> PhoneNumberAnswer:
    """``phone-answer = typed-msisdn`` — SE-05, MP-05 («введите номер абонента»), TS-02
    («номер на получател»)."""
    return PhoneNumberAnswer(msisdn=typed_number(text, start, end, profile))


def count_answer(text: str, start: int, end: int) -> CountAnswer:
    """``count = 1*9DIGIT`` — SE-05: a count typed at a prompt."""
    digits = ascii_digits(text[start:end])
    if digits is None:
        raise ParseError("not_a_number", text, first_non_digit(text, start, end), "a number")
    if len(digits) > 9:
        raise ParseError("count_out_of_range", text, start + 9, "at most nine digits")
    return CountAnswer(count=int(digits))


def minutes_answer(text: str, start: int, end: int) -> MinutesAnswer:
    """``minutes-answer = minutes`` — TS-02 («брой на минутите»), TS-03."""
    return MinutesAnswer(minutes=time_share_minutes(text, start, end))


_DESTINATION_ITEMS: Final[dict[str, Destination]] = {
    "1": Destination.FRIENDS,
    "2": Destination.NETWORK,
}


def destination_answer(text: str, start: int, end: int) -> DestinationAnswer:
    """``destination-answer = "1" / "2" / destination-letter`` — TS-02: the destinations in the
    seed's order, «Към група За приятели» then «Към мрежата на Теленор»."""
    span = text[start:end]
    digits = ascii_digits(span)
    if digits is not None:
        destination = _DESTINATION_ITEMS.get(digits)
        if destination is None:
            raise ParseError("bad_choice", text, start, "1 (За приятели) or 2 (мрежата на Теленор)")
        return DestinationAnswer(destination=destination)
    if end - start != 1:
        raise ParseError("bad_destination_letter", text, start, "1, 2, F or G")
    return DestinationAnswer(destination=destination_letter(text, start))


# Fast paths for answers, tried before the grammar: every valid canonical answer of the
# field-only kinds is a small, fixed set of frozen values.
_ANSWER_FAST: Final[dict[str, dict[str, Command]]] = {
    "choice": {str(number): MenuChoice(number=number) for number in range(CHOICE_MAX + 1)},
    "count": {str(count): CountAnswer(count=count) for count in range(CHOICE_MAX + 1)},
    "minutes": {str(minutes): MinutesAnswer(minutes=minutes) for minutes in (10, 20, 30, 40, 50)},
    "destination": {
        "1": DestinationAnswer(destination=Destination.FRIENDS),
        "2": DestinationAnswer(destination=Destination.NETWORK),
        "F": DestinationAnswer(destination=Destination.FRIENDS),
        "G": DestinationAnswer(destination=Destination.NETWORK),
    },
    "msisdn": {},
}
_PROFILE_NAMES: Final = frozenset(_SERVICES)
_PHONE_NUMBER_ANSWER: Final = prevalidated_one(PhoneNumberAnswer, "msisdn")


def parse_menu_answer(
    text: str, expect: Expect | str, profile: str, *, max_choice: int | None = None
) -> Command:
    """The answer a subscriber of ``profile`` typed at a dialogue step that ``expect``s a
    ``'choice'``, ``'msisdn'``, ``'minutes'``, ``'count'`` or ``'destination'``, or
    ``ParseError``; ``ParserUsageError`` for another ``expect``."""
    fast = _ANSWER_FAST.get(expect)
    if fast is None or profile not in _PROFILE_NAMES:
        check_profile(profile)
        raise ParserUsageError(f"unknown answer kind {expect!r}; expected {tuple(ANSWER_CLASSES)}")
    if max_choice is None or expect != "choice":
        command = fast.get(text)
        if command is not None:
            return command
    if expect == "msisdn":
        wire = typed_number_fast(text, profile)
        if wire is not None:
            return _PHONE_NUMBER_ANSWER(wire)
    return _answer_rule(text, expect, profile, max_choice)


def parse_menu_answer_by_grammar(
    text: str, expect: Expect | str, profile: str, *, max_choice: int | None = None
) -> Command:
    """``parse_menu_answer`` without its fast paths: the grammar rules alone."""
    check_profile(profile)
    if expect not in ANSWER_CLASSES:
        raise ParserUsageError(f"unknown answer kind {expect!r}; expected {tuple(ANSWER_CLASSES)}")
    return _answer_rule(text, expect, profile, max_choice)


def _answer_rule(text: str, expect: str, profile: str, max_choice: int | None) -> Command:
    """``answer = *WSP ( choice / phone-answer / count / minutes / destination-answer ) *WSP``
    by ``expect`` — SE-03, SE-05, TS-02: whitespace around an answer is forgiven."""
    start, end = strip_span(text)
    if start == end:
        raise ParseError("empty", text, len(text), f"an answer ({expect})")
    if expect == "choice":
        return menu_choice(text, start, end, max_choice)
    if expect == "msisdn":
        return phone_number_answer(text, start, end, profile)
    if expect == "count":
        return count_answer(text, start, end)
    if expect == "minutes":
        return minutes_answer(text, start, end)
    return destination_answer(text, start, end)


def answer_kind(answer: Command) -> str:
    """The ``expect`` value under which ``parse_menu_answer`` gives answers of this class."""
    for kind, cls in ANSWER_CLASSES.items():
        if type(answer) is cls:
            return kind
    raise ParserUsageError(f"{type(answer).__name__} is not a dialogue answer")


def format_menu_answer(answer: Command, profile: str) -> str:
    """What a subscriber of ``profile`` types for ``answer``; the inverse of
    ``parse_menu_answer`` (with ``expect=answer_kind(answer)``)."""
    check_profile(profile)
    match answer:
        case MenuChoice(number=number):
            return str(number)
        case PhoneNumberAnswer(msisdn=msisdn):
            if not is_wire(msisdn, profile):
                raise ParserUsageError(f"{msisdn} is not a number of profile {profile!r}")
            return national(msisdn, profile)
        case CountAnswer(count=count):
            return str(count)
        case MinutesAnswer(minutes=minutes):
            return str(minutes)
        case DestinationAnswer(destination=destination):
            return "1" if destination is Destination.FRIENDS else "2"
    raise ParserUsageError(f"{type(answer).__name__} is not a dialogue answer")


__all__ = [
    "Expect",
    "answer_kind",
    "count_answer",
    "destination_answer",
    "format_menu_answer",
    "format_ussd",
    "menu_choice",
    "minutes_answer",
    "parse_menu_answer",
    "parse_menu_answer_by_grammar",
    "parse_ussd",
    "parse_ussd_by_grammar",
    "phone_number_answer",
    "ussd_string",
]
