"""SMS commands to service short numbers: ``parse_sms(text, destination, profile)`` and its inverse
``format_sms(command, profile)``, one small function per grammar rule (the rule in its
docstring), refusals as ``ParseError`` (reasons in ``parsers.errors``).

=========  ============  ==========================================  =============================
profile    short number  texts                                       rules
=========  ============  ==========================================  =============================
mts        ``434``       ``ДА``, ``ДА#XXXX``, ``НЕТ``, ``НЕТ#XXXX``  MP-07, MP-08
tele2kz    ``2221``      ``1``                                       SR-03
telenor    ``125``       ``F,08XXXXXXXX,YY``, ``G,08XXXXXXXX,YY``    TS-01, TS-03, TS-07
tele2ru    (none)        —                                           —
=========  ============  ==========================================  =============================

MTS's number: the seed says only «на номер, с которого пришло приглашение» and gives none, so
the simulator sends «Общий пакет» invitations from ``434``, the service's own USSD code, as MTS
does for other services (``*111#`` and 111); the profile fixtures must use the same number.

Tolerance, decided where real people are sloppy and the operator is not exact:

* «ДА» and «НЕТ» in any case (``да``, ``Да``, ``дА``), with whitespace (any Unicode whitespace,
  newlines included) before and after; the Latin transliterations ``DA`` and ``NET`` of handsets
  without Cyrillic, and spellings with Latin look-alike letters (``ДA``, ``HET``, ``НEТ``), in
  any case. Nothing may stand between the word and ``#`` or between ``#`` and the suffix
  (``ДА 4567`` is ``bad_separator``); ``ДА#`` with no digits is ``bad_suffix``.
* The suffix is 1 … 11 digits (the seed says «последние цифры», not how many).
* «1» to 2221 with whitespace around it.
* Time Share is exact, as TS-01 is: whitespace anywhere in the message, even at its ends, is
  ``spaces_not_allowed``; the only separator is ``,`` (``;``, ``.``, a full-width comma … are
  ``bad_separator``); the recipient is the national ``08XXXXXXXX`` (``+359…`` is
  ``bad_msisdn``). The destination letter may be lower case (``g,0898123456,30``): unambiguous,
  and handsets that do not capitalise the first letter would otherwise be refused for nothing.
  Minutes are a decimal number (leading zeros are harmless) checked for range, then multiple.
* Digits anywhere may be any Unicode decimal digits (full-width, Arabic-Indic …), normalised to
  ASCII (``parsers._text``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final, NoReturn

from parsers._text import ascii_digits, first_non_digit, first_space, strip_span
from parsers.commands import (
    MINUTES_MAX,
    MINUTES_MIN,
    MINUTES_STEP,
    AcceptInvitation,
    AcceptShareInvitation,
    Command,
    DeclineInvitation,
    Destination,
    TransferMinutes,
    prevalidated_one,
    prevalidated_transfer,
)
from parsers.errors import ParseError, ParserUsageError
from parsers.msisdn import bulgarian_national_number, national
from parsers.profiles import check_profile

#: The service short number of each profile that takes SMS commands (GW-05, MP-07, SR-03,
#: TS-01). Tele2 Russia has none: its services are USSD and the control API.
SHORT_NUMBERS: Final[Mapping[str, str]] = MappingProxyType(
    {"mts": "434", "tele2kz": "2221", "telenor": "125"}
)

_REPLY_EXPECTED: Final = "«ДА» or «НЕТ», optionally followed by #XXXX"
_SUFFIX_EXPECTED: Final = "1 to 11 digits: the last digits of the inviter's number"
_MINUTES_EXPECTED: Final = "the minutes: 10, 20, 30, 40 or 50"
_LETTER_EXPECTED: Final = "the destination letter F (За приятели) or G (мрежата на Теленор)"

_YES_WORDS: Final = frozenset({"да", "дa", "da"})
# НЕТ with any of its letters typed as the Latin look-alike (H, E, T), and the transliteration.
_NO_WORDS: Final = frozenset(
    {"".join(letters) for letters in itertools.product("нh", "еe", "тt")} | {"net"}
)
_REPLY_WORDS: Final[Mapping[str, type[AcceptInvitation] | type[DeclineInvitation]]] = (
    MappingProxyType(
        {word: AcceptInvitation for word in _YES_WORDS}
        | {word: DeclineInvitation for word in _NO_WORDS}
    )
)
_MINUTES: Final[dict[str, int]] = {
    str(minutes): minutes for minutes in range(MINUTES_MIN, MINUTES_MAX + 1, MINUTES_STEP)
}
_LETTERS: Final[dict[str, Destination]] = {
    "F": Destination.FRIENDS,
    "f": Destination.FRIENDS,
    "G": Destination.NETWORK,
    "g": Destination.NETWORK,
}


# --- MTS: replies to an invitation (MP-07, MP-08) ------------------------------------------------


def invitation_reply(text: str) -> AcceptInvitation | DeclineInvitation:
    """``invitation-reply = *WSP reply-word [ "#" suffix ] *WSP`` — MP-07: «отправьте SMS с
    текстом ДА … ДА#XXXX»; MP-08: «НЕТ … НЕТ#XXXX»."""
    start, end = strip_span(text)
    if start == end:
        raise ParseError("empty", text, len(text), _REPLY_EXPECTED)
    word_end = start
    while word_end < end and text[word_end].isalpha():
        word_end += 1
    reply = reply_word(text, start, word_end)
    if word_end == end:
        return reply(suffix=None)
    if text[word_end] != "#":
        raise ParseError("bad_separator", text, word_end, "'#' right after the word, then digits")
    return reply(suffix=invitation_suffix(text, word_end + 1, end))


def reply_word(text: str, start: int, end: int) -> type[AcceptInvitation] | type[DeclineInvitation]:
    """``reply-word = "ДА" / "НЕТ"`` — any case; also ``DA`` / ``NET`` and Latin look-alike
    letters, for handsets without Cyrillic."""
    reply = _REPLY_WORDS.get(text[start:end].casefold())
    if reply is None:
        raise ParseError("unknown_command", text, start, _REPLY_EXPECTED)
    return reply


def invitation_suffix(text: str, start: int, end: int) -> str:
    """``suffix = 1*11DIGIT`` — MP-07: «XXXX – последние цифры номера абонента, приглашение
    которого надо принять»."""
    digits = ascii_digits(text[start:end])
    if digits is None:
        raise ParseError("bad_suffix", text, first_non_digit(text, start, end), _SUFFIX_EXPECTED)
    if len(digits) > 11:
        raise ParseError("bad_suffix", text, start + 11, _SUFFIX_EXPECTED)
    return digits


# --- Tele2 Kazakhstan: accepting an invitation (SR-03) ------------------------------------------


def share_acceptance(text: str) -> AcceptShareInvitation:
    """``share-acceptance = *WSP "1" *WSP`` — SR-03: «Приглашенный номер должен отправить в ответ
    1»."""
    start, end = strip_span(text)
    if start == end:
        raise ParseError("empty", text, len(text), "«1» to accept the invitation")
    if ascii_digits(text[start:end]) != "1":
        raise ParseError("unknown_command", text, start, "«1» to accept the invitation")
    return AcceptShareInvitation()


# --- Telenor Time Share by SMS to 125 (TS-01, TS-03, TS-07) -------------------------------------


def time_share_request(text: str) -> TransferMinutes:
    """``time-share = destination-letter "," bg-national "," minutes`` — TS-01: «F,08XXXXXXXX,YY»,
    «G,08XXXXXXXX,YY», «отделени само със запетая, без интервали между тях»."""
    if not text:
        raise ParseError("empty", text, 0, "F,08XXXXXXXX,YY or G,08XXXXXXXX,YY")
    # Every whitespace character but U+0020 is unprintable: the usual case costs no search.
    if not text.isprintable() or " " in text:
        space = first_space(text)
        if space != -1:
            raise ParseError("spaces_not_allowed", text, space, "the message without spaces")
    destination = destination_letter(text, 0)
    field_separator(text, 1, "',' after the destination letter")
    number_end = first_non_digit(text, 2, len(text))
    recipient = bulgarian_national_number(text, 2, number_end)
    field_separator(text, number_end, "',' after the recipient's number")
    minutes = time_share_minutes(text, number_end + 1, len(text))
    return TransferMinutes(recipient_msisdn=recipient, destination=destination, minutes=minutes)


def destination_letter(text: str, position: int) -> Destination:
    """``destination-letter = "F" / "G"`` — TS-01: «Буквите F и G обозначават дестинацията»;
    lower case accepted."""
    destination = _LETTERS.get(text[position])
    if destination is None:
        raise ParseError("bad_destination_letter", text, position, _LETTER_EXPECTED)
    return destination


def field_separator(text: str, position: int, expected: str) -> None:
    """``separator = ","`` — TS-01: «отделени само със запетая»."""
    if position >= len(text):
        raise ParseError("bad_format", text, len(text), expected)
    char = text[position]
    if char == ",":
        return
    # Punctuation where the comma belongs is a wrong separator; a letter or digit is a wrong field.
    reason = "bad_format" if char.isalnum() else "bad_separator"
    raise ParseError(reason, text, position, expected)


def time_share_minutes(text: str, start: int, end: int) -> int:
    """``minutes = 1*DIGIT`` with 10 ≤ minutes ≤ 50 and minutes a multiple of 10 — TS-03: «цяло
    число от 10 до 50, кратно на 10»."""
    digits = ascii_digits(text[start:end])
    if digits is None:
        bad = first_non_digit(text, start, end)
        if bad < end and text[bad] == ",":
            raise ParseError("bad_format", text, bad, "the end of the message after the minutes")
        raise ParseError("not_a_number", text, bad, _MINUTES_EXPECTED)
    # A long run of digits is out of range whatever it says (and int() of it would be slow).
    minutes = _MINUTES.get(digits) or (int(digits) if len(digits) <= 9 else MINUTES_MAX + 1)
    if not MINUTES_MIN <= minutes <= MINUTES_MAX:
        raise ParseError("minutes_out_of_range", text, start, _MINUTES_EXPECTED)
    if minutes % MINUTES_STEP:
        raise ParseError("minutes_not_multiple_of_10", text, start, _MINUTES_EXPECTED)
    return minutes


# --- Entry points -------------------------------------------------------------------------------

# Fast paths, tried before the grammar: the canonical texts by dict or one precompiled pattern.
# They only ever accept what the grammar accepts (the tests compare both); anything they miss
# goes through the grammar, which alone decides refusals and their positions.
_REPLY_FAST: Final[dict[str, Command]] = {
    word: reply()
    for reply, words in (
        (AcceptInvitation, ("ДА", "Да", "да")),
        (DeclineInvitation, ("НЕТ", "Нет", "нет")),
    )
    for word in words
}
_REPLY_WITH_SUFFIX: Final = re.compile(r"(ДА|НЕТ)#([0-9]{1,11})").fullmatch
_REPLY_WITH_SUFFIX_BUILDERS: Final = {
    "ДА": prevalidated_one(AcceptInvitation, "suffix"),
    "НЕТ": prevalidated_one(DeclineInvitation, "suffix"),
}
_TIME_SHARE: Final = re.compile(r"([FG]),0(8[789][0-9]{7}),([1-5]0)").fullmatch
_ACCEPT_SHARE: Final = AcceptShareInvitation()


def _mts_fast(text: str) -> Command | None:
    command = _REPLY_FAST.get(text)
    if command is not None:
        return command
    match = _REPLY_WITH_SUFFIX(text)
    return None if match is None else _REPLY_WITH_SUFFIX_BUILDERS[match[1]](match[2])


def _tele2kz_fast(text: str) -> Command | None:
    return _ACCEPT_SHARE if text == "1" else None


def _telenor_fast(text: str) -> Command | None:
    # A canonical request is 15 characters long; the length spares most misses the match.
    match = _TIME_SHARE(text) if len(text) == 15 else None
    if match is None:
        return None
    letter, number, minutes = match.groups()
    return prevalidated_transfer("359" + number, _LETTERS[letter], _MINUTES[minutes])


_SMS_SERVICES: Final[
    dict[str, tuple[str, Callable[[str], Command | None], Callable[[str], Command]]]
] = {
    "mts": (SHORT_NUMBERS["mts"], _mts_fast, invitation_reply),
    "tele2kz": (SHORT_NUMBERS["tele2kz"], _tele2kz_fast, share_acceptance),
    "telenor": (SHORT_NUMBERS["telenor"], _telenor_fast, time_share_request),
}


def parse_sms(text: str, destination: str, profile: str) -> Command:
    """The command in SMS ``text`` sent to short number ``destination`` by a subscriber of
    ``profile``, or ``ParseError`` (``wrong_short_number`` if the number has no service)."""
    service = _SMS_SERVICES.get(profile)
    if service is None or destination != service[0]:
        _refuse_destination(text, destination, profile)
    command = service[1](text)
    if command is not None:
        return command
    return service[2](text)


def parse_sms_by_grammar(text: str, destination: str, profile: str) -> Command:
    """``parse_sms`` without its fast paths: the grammar rules alone."""
    service = _SMS_SERVICES.get(profile)
    if service is None or destination != service[0]:
        _refuse_destination(text, destination, profile)
    return service[2](text)


def _refuse_destination(text: str, destination: str, profile: str) -> NoReturn:
    number = SHORT_NUMBERS.get(check_profile(profile))
    expected = f"an SMS to {number}" if number else f"no SMS service in profile {profile!r}"
    raise ParseError("wrong_short_number", text, 0, expected)


def _format_reply(command: Command, profile: str) -> str:
    assert isinstance(command, AcceptInvitation | DeclineInvitation)
    word = "ДА" if isinstance(command, AcceptInvitation) else "НЕТ"
    return word if command.suffix is None else f"{word}#{command.suffix}"


def _format_transfer(command: Command, profile: str) -> str:
    assert isinstance(command, TransferMinutes)
    recipient = national(command.recipient_msisdn, profile)
    return f"{command.destination.value},{recipient},{command.minutes}"


_FORMATTERS: Final[Mapping[type[Command], Callable[[Command, str], str]]] = MappingProxyType(
    {
        AcceptInvitation: _format_reply,
        DeclineInvitation: _format_reply,
        AcceptShareInvitation: lambda command, profile: "1",
        TransferMinutes: _format_transfer,
    }
)


def format_sms(command: Command, profile: str) -> tuple[str, str]:
    """``(text, destination)`` of the SMS a subscriber of ``profile`` sends for ``command``; the
    inverse of ``parse_sms``. ``ParserUsageError`` for a command that is no SMS of the profile."""
    check_profile(profile)
    formatter = _FORMATTERS.get(type(command))
    if formatter is None or profile not in command.profiles:
        raise ParserUsageError(f"{type(command).__name__} is not an SMS command of {profile!r}")
    return formatter(command, profile), SHORT_NUMBERS[profile]


__all__ = [
    "SHORT_NUMBERS",
    "destination_letter",
    "field_separator",
    "format_sms",
    "invitation_reply",
    "invitation_suffix",
    "parse_sms",
    "parse_sms_by_grammar",
    "reply_word",
    "share_acceptance",
    "time_share_minutes",
    "time_share_request",
]
