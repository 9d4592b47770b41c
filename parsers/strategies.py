"""Hypothesis strategies for the USSD strings, SMS texts, dialogue answers, phone numbers and
commands of the four operator profiles — public: testers import them into their own property
tests to drive an application under test, or ussdsim, with what subscribers type.

    from hypothesis import given
    from parsers import strategies as ussd_st

    @given(ussd_st.sms_texts("telenor", valid=False))
    def test_every_refusal_gets_a_reply(text_and_number):
        text, short_number = text_and_number
        ...

Contract: a ``valid=True`` strategy only produces texts the parsers of this package accept, a
``valid=False`` one only texts they refuse (with a ``ParseError``); ussdsim's own tests hold them
to it. Importing this module imports hypothesis and nothing heavier, and registers nothing.

* ``msisdns(profile, form='wire'|'national')`` — mobile numbers of the profile's country.
* ``commands(profile, channel=None|'ussd'|'sms'|'answer')`` — command values;
  ``commands_of(cls, profile)`` — values of one command class.
* ``ussd_strings(profile, valid=True, *, canonical=True)`` — dialled strings (``str``).
* ``sms_texts(profile, valid=True, *, canonical=True)`` — ``(text, short_number)`` pairs: the
  SMS and the number it is sent to (a refused pair may be refused for the number alone).
* ``answer_texts(profile, expect, valid=True)`` — what is typed at a dialogue step expecting a
  ``'choice'``, ``'msisdn'``, ``'count'``, ``'minutes'`` or ``'destination'``.
* ``near_misses(texts)`` — each text of ``texts`` (``str`` or ``(text, number)``) with one slip:
  a character changed, dropped, doubled or inserted, a digit dropped, two neighbours swapped, a
  separator (``*``, ``#``, ``,``) replaced by a wrong one, or a space inserted. A near miss is
  usually refused but may happen to be valid (``*434*2#`` → ``*434*0#``); filter, or use
  ``valid=False``, when refusal matters.

``canonical=False`` adds the spellings the parsers tolerate besides the printed form: «да»,
«Да», ``DA``, ``NET``, surrounding whitespace, a lower-case Time Share letter, and full-width or
Arabic-Indic digits (see ``parsers.sms`` and ``parsers.ussd``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, TypeVar

from hypothesis import strategies as st

from parsers.commands import (
    ANSWER_CLASSES,
    COMMAND_CLASSES,
    COUNT_MAX,
    AcceptInvitation,
    Command,
    CountAnswer,
    DeclineInvitation,
    Destination,
    DestinationAnswer,
    InviteMember,
    JoinTogetherGroup,
    MenuChoice,
    MinutesAnswer,
    PhoneNumberAnswer,
    RemoveMember,
    TransferMinutes,
)
from parsers.errors import ParseError, ParserUsageError
from parsers.msisdn import national
from parsers.profiles import PROFILES, check_profile
from parsers.sms import SHORT_NUMBERS, format_sms, parse_sms
from parsers.ussd import (
    format_menu_answer,
    format_ussd,
    parse_menu_answer,
    parse_ussd,
)

_T = TypeVar("_T", str, tuple[str, str])
_C = TypeVar("_C", bound=Command)

_MINUTES = (10, 20, 30, 40, 50)
# What a slip on a keypad or keyboard most often puts in: digits, the separators of the
# grammars, and letters of the commands (Latin and Cyrillic).
_SLIP_CHARACTERS = "0123456789*#,;. FGXfgДАНЕТдаAHET"
_WRONG_SEPARATORS = {"*": "#,.;+", "#": "*,.;", ",": ";.*#/-:"}
# Full-width and Arabic-Indic digits: the decimal digits other phones send.
_OTHER_DIGITS = ("０１２３４５６７８９", "٠١٢٣٤٥٦٧٨٩")


# --- Numbers and commands ------------------------------------------------------------------------


def msisdns(profile: str, form: Literal["wire", "national"] = "wire") -> st.SearchStrategy[str]:
    """Mobile numbers of ``profile``'s country (``parsers.msisdn``): the wire MSISDN, or what a
    subscriber types (``08XXXXXXXX`` in Bulgaria, the same digits in Russia and Kazakhstan)."""
    check_profile(profile)
    if form not in ("wire", "national"):
        raise ParserUsageError(f"unknown number form {form!r}; expected 'wire' or 'national'")
    wire: st.SearchStrategy[str]
    if profile == "telenor":
        wire = st.builds("3598{}{:07d}".format, st.sampled_from("789"), st.integers(0, 10**7 - 1))
    else:
        prefix = "77" if profile == "tele2kz" else "79"
        wire = st.integers(0, 10**9 - 1).map(f"{prefix}{{:09d}}".format)
    if form == "national":
        return wire.map(lambda number: national(number, profile))
    return wire


def _suffixes() -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=1, max_size=11)


def _command_strategy(cls: type[Command], profile: str) -> st.SearchStrategy[Command]:
    """Values of one command class, built from strategies that satisfy its validators."""
    fields: dict[type[Command], Callable[[], st.SearchStrategy[Command]]] = {
        InviteMember: lambda: st.builds(InviteMember, msisdn=msisdns("mts")),
        RemoveMember: lambda: st.builds(RemoveMember, msisdn=msisdns("mts")),
        AcceptInvitation: lambda: st.builds(AcceptInvitation, suffix=st.none() | _suffixes()),
        DeclineInvitation: lambda: st.builds(DeclineInvitation, suffix=st.none() | _suffixes()),
        JoinTogetherGroup: lambda: st.builds(
            JoinTogetherGroup, organizer_msisdn=msisdns("tele2ru")
        ),
        TransferMinutes: lambda: st.builds(
            TransferMinutes,
            recipient_msisdn=msisdns("telenor"),
            destination=st.sampled_from(Destination),
            minutes=st.sampled_from(_MINUTES),
        ),
        MenuChoice: lambda: st.builds(MenuChoice, number=st.integers(0, 99)),
        PhoneNumberAnswer: lambda: st.builds(PhoneNumberAnswer, msisdn=msisdns(profile)),
        CountAnswer: lambda: st.builds(CountAnswer, count=st.integers(0, COUNT_MAX)),
        MinutesAnswer: lambda: st.builds(MinutesAnswer, minutes=st.sampled_from(_MINUTES)),
        DestinationAnswer: lambda: st.builds(
            DestinationAnswer, destination=st.sampled_from(Destination)
        ),
    }
    build = fields.get(cls)
    return build() if build is not None else st.just(cls())


def commands_of(cls: type[_C], profile: str) -> st.SearchStrategy[_C]:
    """Values of the one command class ``cls`` in ``profile`` (``ParserUsageError`` if the class
    is not a command of that profile)."""
    check_profile(profile)
    if cls not in COMMAND_CLASSES or profile not in cls.profiles:
        raise ParserUsageError(f"{cls.__name__} is not a command of profile {profile!r}")
    return _command_strategy(cls, profile)  # type: ignore[return-value]


def commands(
    profile: str, channel: Literal["ussd", "sms", "answer"] | None = None
) -> st.SearchStrategy[Command]:
    """Command values of ``profile`` (``parsers.commands``), all of them or those of one
    ``channel``. ``ParserUsageError`` if the profile has none on that channel (Tele2 Kazakhstan
    has no USSD command, Tele2 Russia no SMS command)."""
    check_profile(profile)
    classes = [
        cls
        for cls in COMMAND_CLASSES
        if profile in cls.profiles and (channel is None or cls.channel == channel)
    ]
    if not classes:
        raise ParserUsageError(f"profile {profile!r} has no {channel} commands")
    return st.one_of([_command_strategy(cls, profile) for cls in classes])


# --- Slips ---------------------------------------------------------------------------------------


@st.composite
def _slipped(draw: st.DrawFn, text: str) -> str:
    """``text`` with one slip of a person typing it."""
    slips = ["replace", "drop", "insert", "duplicate", "space", "swap", "drop_digit", "separator"]
    slip = draw(st.sampled_from(slips))
    if not text or slip == "insert":
        position = draw(st.integers(0, len(text)))
        return text[:position] + draw(st.sampled_from(_SLIP_CHARACTERS)) + text[position:]
    position = draw(st.integers(0, len(text) - 1))
    if slip == "drop_digit":
        digits = [index for index, char in enumerate(text) if char.isdecimal()]
        if digits:
            position = draw(st.sampled_from(digits))
        return text[:position] + text[position + 1 :]
    if slip == "separator":
        separators = [index for index, char in enumerate(text) if char in _WRONG_SEPARATORS]
        if separators:
            position = draw(st.sampled_from(separators))
            wrong = draw(st.sampled_from(_WRONG_SEPARATORS[text[position]]))
            return text[:position] + wrong + text[position + 1 :]
        slip = "replace"
    if slip == "replace":
        others = [char for char in _SLIP_CHARACTERS if char != text[position]]
        return text[:position] + draw(st.sampled_from(others)) + text[position + 1 :]
    if slip == "drop":
        return text[:position] + text[position + 1 :]
    if slip == "duplicate":
        return text[:position] + text[position] + text[position:]
    if slip == "space":
        return text[:position] + " " + text[position:]
    # swap
    if len(text) < 2:
        return text + text
    position = min(position, len(text) - 2)
    return text[:position] + text[position + 1] + text[position] + text[position + 2 :]


def _slipped_value(value: _T) -> st.SearchStrategy[_T]:
    if isinstance(value, tuple):
        text, number = value
        return _slipped(text).map(lambda slipped: (slipped, number))
    return _slipped(value)


def near_misses(texts: st.SearchStrategy[_T]) -> st.SearchStrategy[_T]:
    """Each value of ``texts`` (a ``str``, or a ``(text, short_number)`` pair whose text is
    changed) with one slip (see the module docstring). Not guaranteed to be refused."""
    return texts.flatmap(_slipped_value)


# --- Tolerated spellings -------------------------------------------------------------------------


@st.composite
def _other_digits(draw: st.DrawFn, text: str) -> str:
    """``text`` with its ASCII digits written in another decimal script."""
    script = draw(st.sampled_from(_OTHER_DIGITS))
    return "".join(script[int(char)] if "0" <= char <= "9" else char for char in text)


# Spellings of the invitation replies that parsers.sms accepts (the Latin letters of "ДA" and
# "НEТ" are look-alikes typed on a Latin keyboard).
_REPLY_SPELLINGS = {
    "ДА": ["ДА", "да", "Да", "дА", "DA", "da", "Da", "ДA"],
    "НЕТ": ["НЕТ", "нет", "Нет", "NET", "net", "Net", "HET", "het", "НEТ"],
}
_WHITESPACE = st.text(alphabet=" \t\n\u00a0", max_size=2)


@st.composite
def _tolerated_sms(draw: st.DrawFn, value: tuple[str, str]) -> tuple[str, str]:
    """Another spelling of a valid SMS that the parser accepts as the same command."""
    text, number = value
    if number == SHORT_NUMBERS["telenor"]:
        if draw(st.booleans()):
            text = text[0].lower() + text[1:]
        if draw(st.booleans()):
            text = draw(_other_digits(text))
        return text, number
    word, hash_sign, suffix = text.partition("#")
    if word in ("ДА", "НЕТ"):
        word = draw(st.sampled_from(_REPLY_SPELLINGS[word]))
    return draw(_WHITESPACE) + word + hash_sign + suffix + draw(_WHITESPACE), number


# --- Texts ---------------------------------------------------------------------------------------


def _ussd_refused(profile: str) -> Callable[[str], bool]:
    def refused(text: str) -> bool:
        try:
            parse_ussd(text, profile)
        except ParseError:
            return True
        return False

    return refused


def _sms_refused(profile: str) -> Callable[[tuple[str, str]], bool]:
    def refused(value: tuple[str, str]) -> bool:
        try:
            parse_sms(value[0], value[1], profile)
        except ParseError:
            return True
        return False

    return refused


def _answer_refused(profile: str, expect: str) -> Callable[[str], bool]:
    def refused(text: str) -> bool:
        try:
            parse_menu_answer(text, expect, profile)
        except ParseError:
            return True
        return False

    return refused


def _profile_with_ussd(profile: str) -> bool:
    return any(cls.channel == "ussd" and profile in cls.profiles for cls in COMMAND_CLASSES)


def _classic_ussd_mistakes(profile: str) -> st.SearchStrategy[str]:
    """The mistakes the seeds warn about: the number with the leading 8, spaces, no ``#``."""
    if profile == "mts":
        return st.one_of(
            msisdns("mts").map(lambda number: f"*434*1*8{number[1:]}#"),
            msisdns("mts").map(lambda number: f"*434*3*8{number[1:]}#"),
            msisdns("mts").map(lambda number: f"*434*1*{number[1:]}#"),
            st.sampled_from(["*434*1*#", "*434 #", "*434*2", "434#", "*434*3#", "*434*9#"]),
        )
    if profile == "tele2ru":
        return st.one_of(
            msisdns("tele2ru").map(lambda number: f"*985*8{number[1:]}*2#"),
            msisdns("tele2ru").map(lambda number: f"*985*{number}#"),
            st.sampled_from(["*985#", "*985*0#", "*985*2", "*985 *2#", "*985*1#"]),
        )
    return st.sampled_from(["*123", "123#", "*123*#", "* 123#", "*124#", "*123*5#", "*434#"])


def ussd_strings(
    profile: str, valid: bool = True, *, canonical: bool = True
) -> st.SearchStrategy[str]:
    """USSD strings a subscriber of ``profile`` dials: accepted by ``parse_ussd`` if ``valid``
    (the printed forms, plus other decimal digits unless ``canonical``), refused otherwise.
    ``ParserUsageError`` for ``valid=True`` in a profile without USSD commands (tele2kz)."""
    check_profile(profile)
    if not _profile_with_ussd(profile):
        if valid:
            raise ParserUsageError(f"profile {profile!r} has no USSD commands")
        others = st.sampled_from([p for p in PROFILES if _profile_with_ussd(p)])
        printed = others.flatmap(ussd_strings)
        return st.one_of(printed, near_misses(printed), st.text())
    printed = commands(profile, "ussd").map(lambda command: format_ussd(command, profile))
    if valid:
        return printed if canonical else st.one_of(printed, printed.flatmap(_other_digits))
    refused = _ussd_refused(profile)
    return st.one_of(
        near_misses(printed), _classic_ussd_mistakes(profile), st.text(max_size=24)
    ).filter(refused)


def _classic_sms_mistakes(profile: str) -> st.SearchStrategy[tuple[str, str]]:
    """The mistakes the seeds warn about, with the right short number."""
    number = SHORT_NUMBERS.get(profile, "")
    if profile == "telenor":
        recipient = msisdns("telenor", "national")
        texts = st.one_of(
            st.builds("G,{},{}".format, recipient, st.sampled_from([35, 60, 0, 5, 100, 15])),
            st.builds("{}, {},30".format, st.sampled_from("FG"), recipient),
            st.builds("X,{},30".format, recipient),
            st.builds("G;{};30".format, recipient),
            st.builds("G,+359{},30".format, recipient.map(lambda n: n[1:])),
            st.builds("G,{},30 ".format, recipient),
        )
    elif profile == "mts":
        texts = st.sampled_from(["ДА#", "ДА 4567", "ДА#45x7", "ДАА", "ДА#123456789012", "YES"])
    else:
        texts = st.sampled_from(["2", "11", "да", "1.", "0"])
    return texts.map(lambda text: (text, number))


def sms_texts(
    profile: str, valid: bool = True, *, canonical: bool = True
) -> st.SearchStrategy[tuple[str, str]]:
    """``(text, short_number)`` of SMS commands a subscriber of ``profile`` sends: accepted by
    ``parse_sms`` if ``valid`` (the printed forms, plus the tolerated spellings unless
    ``canonical``), refused otherwise (a bad text to the right number, or a text to a number
    with no service). ``ParserUsageError`` for ``valid=True`` in a profile without SMS commands
    (tele2ru)."""
    check_profile(profile)
    numbers = st.text(alphabet="0123456789", min_size=1, max_size=5)
    if profile not in SHORT_NUMBERS:
        if valid:
            raise ParserUsageError(f"profile {profile!r} has no SMS commands")
        return st.tuples(st.text(), numbers)
    printed = commands(profile, "sms").map(lambda command: format_sms(command, profile))
    if valid:
        return printed if canonical else st.one_of(printed, printed.flatmap(_tolerated_sms))
    wrong_number = st.tuples(
        printed.map(lambda value: value[0]),
        numbers.filter(lambda number: number != SHORT_NUMBERS[profile]),
    )
    right_number = st.tuples(st.text(max_size=24), st.just(SHORT_NUMBERS[profile]))
    refused = _sms_refused(profile)
    return st.one_of(
        near_misses(printed), _classic_sms_mistakes(profile), right_number, wrong_number
    ).filter(refused)


_ANSWER_MISTAKES = {
    "choice": ["00", "01", "100", "1a", "#", "*", "-1", "1 2"],
    "msisdn": ["+", "0", "123", "8 916 123 45 67"],
    "count": ["1234567890", "x", "1,5", "-3", "1 0"],
    "minutes": ["5", "35", "60", "0", "100", "3O"],
    "destination": ["3", "0", "X", "FG", "12", "Г"],
}


def answer_texts(profile: str, expect: str, valid: bool = True) -> st.SearchStrategy[str]:
    """What a subscriber of ``profile`` types at a dialogue step expecting ``expect``
    (``parsers.ussd.parse_menu_answer``): accepted if ``valid``, refused otherwise."""
    check_profile(profile)
    if expect not in ANSWER_CLASSES:
        raise ParserUsageError(f"unknown answer kind {expect!r}")
    answers = _command_strategy(ANSWER_CLASSES[expect], profile)
    printed = answers.map(lambda answer: format_menu_answer(answer, profile))
    if valid:
        return printed
    refused = _answer_refused(profile, expect)
    return st.one_of(
        near_misses(printed), st.sampled_from(_ANSWER_MISTAKES[expect]), st.text(max_size=12)
    ).filter(refused)


__all__ = [
    "answer_texts",
    "commands",
    "commands_of",
    "msisdns",
    "near_misses",
    "sms_texts",
    "ussd_strings",
]
