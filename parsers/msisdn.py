"""Phone numbers per country (SPEC §0): the grammar rules for a number as a subscriber types it
on a handset (USSD string, SMS, menu answer) or as a tester sends it to the control API, and the
conversion between that and the wire MSISDN (international digits, no ``+``, TON=1 NPI=1).

==========  =================  ===============================  ===============================
profile     wire MSISDN        typed on a handset (ussd, sms)   control API (api)
==========  =================  ===============================  ===============================
mts         ``79XXXXXXXXX``    ``79XXXXXXXXX`` (MP-05)          ``[+]79XXXXXXXXX``
tele2ru     ``79XXXXXXXXX``    ``79XXXXXXXXX`` (TV-02)          ``[+]79XXXXXXXXX``
tele2kz     ``77XXXXXXXXX``    ``77XXXXXXXXX``                  ``[+]77XXXXXXXXX``
telenor     ``3598[789]X{7}``  ``08[789]X{7}`` (TS-01)          ``[+]3598[789]X{7}``
==========  =================  ===============================  ===============================

Decisions (a real operator's): Russian mobile numbers are the DEF ranges 9XX, so a Russian wire
number is ``7`` ``9`` and nine digits; ``7`` followed by anything else is a landline or a
Kazakh number and is refused with ``bad_msisdn``. Every Kazakh mobile range (700 … 708 of
Altel/Kcell/Tele2, 747 of Tele2, 771 … 778 of Beeline/Kcell) starts with 7, so a Kazakh wire
number is ``77`` and nine digits; which operator it belongs to is the service's question.
Bulgarian mobile numbers are ``087``, ``088`` and ``089`` (``081`` … ``086`` are geographic,
``080`` is free-phone); SPEC §0 fixes the wire form as ``3598…``, so the ``098``/``099`` ranges
are not taken. On a handset a number is exactly the digits the seed shows: a Russian or Kazakh
number written with the domestic ``8`` (``89161234567``) is ``msisdn_with_8`` («без
восьмерки»), a ``+`` or the Bulgarian international form in a Time Share SMS is ``bad_msisdn``,
and whitespace is ``spaces_not_allowed``. The control API takes the wire form with an optional
``+`` (so ``+79161234567`` is accepted there) and ignores spaces, hyphens and parentheses, as a
phone field of an app does; the domestic ``8`` is refused there too. Digits may be any Unicode
decimal digits (see ``parsers._text``); the result is always ASCII.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal

from parsers._text import ascii_digits, first_non_digit, first_space
from parsers.errors import ParseError, ParserUsageError
from parsers.profiles import PROFILES, check_profile

Context = Literal["ussd", "sms", "api"]

#: The wire MSISDN of each profile, as a pattern to ``fullmatch`` (SPEC §0).
WIRE_PATTERNS: Final[Mapping[str, re.Pattern[str]]] = MappingProxyType(
    {
        "mts": re.compile(r"79[0-9]{9}"),
        "tele2ru": re.compile(r"79[0-9]{9}"),
        "tele2kz": re.compile(r"77[0-9]{9}"),
        "telenor": re.compile(r"3598[789][0-9]{7}"),
    }
)

#: Any profile's wire MSISDN (for values, such as a menu answer, that do not carry a profile).
ANY_WIRE_PATTERN: Final = re.compile("|".join(f"(?:{p.pattern})" for p in WIRE_PATTERNS.values()))

_RU_EXPECTED: Final = "a Russian mobile number of 11 digits, 79XXXXXXXXX"
_KZ_EXPECTED: Final = "a Kazakh mobile number of 11 digits, 77XXXXXXXXX"
_WITH_8_EXPECTED: Final = (
    "the number with 7 instead of the leading 8 (7XXXXXXXXXX, «без восьмерки»)"
)
_BG_EXPECTED: Final = "a Bulgarian mobile number 08XXXXXXXX (087, 088 or 089 and seven digits)"
_API_EXPECTED: Final[Mapping[str, str]] = MappingProxyType(
    {
        "mts": "an international number 79XXXXXXXXX, optionally with a leading '+'",
        "tele2ru": "an international number 79XXXXXXXXX, optionally with a leading '+'",
        "tele2kz": "an international number 77XXXXXXXXX, optionally with a leading '+'",
        "telenor": "an international number 3598XXXXXXXX, optionally with a leading '+'",
    }
)
# The rules' usual case, ASCII digits already in shape, in one C call; everything else (other
# digits, every fault and its position) goes through the rule's own checks.
_RU_ASCII: Final = re.compile(r"79[0-9]{9}").fullmatch
_KZ_ASCII: Final = re.compile(r"77[0-9]{9}").fullmatch
_BG_ASCII: Final = re.compile(r"0(8[789][0-9]{7})").fullmatch
# Characters a phone-number field of an app lets people type between digits.
_VISUAL_SEPARATORS: Final = frozenset(" -()\t\u00a0")


def _digit_span(text: str, start: int, end: int, expected: str) -> str:
    """``number = 1*DIGIT``: the span's digits in ASCII, or the error at the first character that
    is not one (whitespace has its own reason)."""
    digits = ascii_digits(text[start:end])
    if digits is not None:
        return digits
    if start == end:
        raise ParseError("bad_msisdn", text, start, expected)
    space = first_space(text, start, end)
    if space != -1:
        raise ParseError("spaces_not_allowed", text, space, expected)
    raise ParseError("bad_msisdn", text, first_non_digit(text, start, end), expected)


def _seven_prefixed(text: str, start: int, end: int, second: str, expected: str) -> str:
    """``msisdn = "7" second 9DIGIT`` — the shape shared by Russia and Kazakhstan (country code
    7, no trunk prefix), with the domestic ``8`` refused by its own reason."""
    digits = _digit_span(text, start, end, expected)
    if len(digits) == 11 and digits[0] == "8":
        raise ParseError("msisdn_with_8", text, start, _WITH_8_EXPECTED)
    if digits[0] != "7":
        raise ParseError("bad_msisdn", text, start, expected)
    if len(digits) > 1 and digits[1] != second:
        raise ParseError("bad_msisdn", text, start + 1, expected)
    if len(digits) != 11:
        raise ParseError("bad_msisdn", text, min(end, start + 11), expected)
    return digits


def russian_number(text: str, start: int, end: int) -> str:
    """``ru-msisdn = "7" "9" 9DIGIT`` — SPEC §0, MP-05, TV-02: «7XXXXXXXXXX … (без
    «восьмерки»)»; the mobile DEF ranges are 9XX. Returns the wire MSISDN."""
    if _RU_ASCII(text, start, end) is not None:
        return text[start:end]
    return _seven_prefixed(text, start, end, "9", _RU_EXPECTED)


def kazakh_number(text: str, start: int, end: int) -> str:
    """``kz-msisdn = "7" "7" 9DIGIT`` — SPEC §0: every Kazakh mobile range starts with 7.
    Returns the wire MSISDN."""
    if _KZ_ASCII(text, start, end) is not None:
        return text[start:end]
    return _seven_prefixed(text, start, end, "7", _KZ_EXPECTED)


def bulgarian_national_number(text: str, start: int, end: int) -> str:
    """``bg-national = "0" "8" ( "7" / "8" / "9" ) 7DIGIT`` — TS-01: «08XXXXXXXX е номерът на
    получателя». Returns the wire MSISDN ``3598…``."""
    match = _BG_ASCII(text, start, end)
    if match is not None:
        return "359" + match[1]
    digits = _digit_span(text, start, end, _BG_EXPECTED)
    if digits[0] != "0":
        raise ParseError("bad_msisdn", text, start, _BG_EXPECTED)
    if len(digits) > 1 and digits[1] != "8":
        raise ParseError("bad_msisdn", text, start + 1, _BG_EXPECTED)
    if len(digits) > 2 and digits[2] not in "789":
        raise ParseError("bad_msisdn", text, start + 2, _BG_EXPECTED)
    if len(digits) != 10:
        raise ParseError("bad_msisdn", text, min(end, start + 10), _BG_EXPECTED)
    return "359" + digits[1:]


_TYPED_RULES: Final = MappingProxyType(
    {
        "mts": russian_number,
        "tele2ru": russian_number,
        "tele2kz": kazakh_number,
        "telenor": bulgarian_national_number,
    }
)


def typed_number(text: str, start: int, end: int, profile: str) -> str:
    """``typed-msisdn = ru-msisdn / kz-msisdn / bg-national`` by profile — a number as typed on a
    handset inside a USSD string, an SMS or a menu answer. Returns the wire MSISDN."""
    return _TYPED_RULES[profile](text, start, end)


def typed_number_fast(text: str, profile: str) -> str | None:
    """The wire MSISDN if ``text`` is exactly the profile's typed form in ASCII digits (the usual
    case, in one C call), else ``None``: then ``typed_number`` decides."""
    if profile == "telenor":
        match = _BG_ASCII(text)
        return None if match is None else "359" + match[1]
    fast = _RU_ASCII if profile != "tele2kz" else _KZ_ASCII
    return text if fast(text) is not None else None


def api_number(text: str, profile: str) -> str:
    """``api-msisdn = [ "+" ] wire-msisdn`` with spaces, hyphens and parentheses ignored — a
    number given to the control API (the operators' apps and «Личный кабинет»)."""
    expected = _API_EXPECTED[profile]
    kept: list[tuple[int, str]] = [
        (index, char) for index, char in enumerate(text) if char not in _VISUAL_SEPARATORS
    ]
    if kept and kept[0][1] == "+":
        kept = kept[1:]
    if not kept:
        raise ParseError("bad_msisdn", text, len(text), expected)
    chars = "".join(char for _, char in kept)
    digits = ascii_digits(chars)
    if digits is None:
        bad = next(index for index, char in kept if not char.isdecimal())
        raise ParseError("bad_msisdn", text, bad, expected)
    if profile != "telenor" and len(digits) == 11 and digits[0] == "8":
        raise ParseError("msisdn_with_8", text, kept[0][0], _WITH_8_EXPECTED)
    if WIRE_PATTERNS[profile].fullmatch(digits) is None:
        raise ParseError("bad_msisdn", text, kept[0][0], expected)
    return digits


def normalize(typed: str, profile: str, *, context: Context = "ussd") -> str:
    """The wire MSISDN of a number as typed in ``context`` (``'ussd'`` or ``'sms'``: on a
    handset; ``'api'``: given to the control API), or ``ParseError`` (``bad_msisdn``,
    ``msisdn_with_8``, ``spaces_not_allowed``) with the position in ``typed``."""
    check_profile(profile)
    if context == "api":
        return api_number(typed, profile)
    if context in ("ussd", "sms"):
        return typed_number(typed, 0, len(typed), profile)
    raise ParserUsageError(f"unknown number context {context!r}; expected 'ussd', 'sms' or 'api'")


def is_wire(msisdn: str, profile: str) -> bool:
    """Whether ``msisdn`` is a wire MSISDN of ``profile`` (SPEC §0)."""
    return WIRE_PATTERNS[check_profile(profile)].fullmatch(msisdn) is not None


def national(wire: str, profile: str) -> str:
    """What a subscriber of ``profile`` types for the wire MSISDN ``wire``: ``08XXXXXXXX`` in
    Bulgaria, the same 11 digits in Russia and Kazakhstan. ``ParseError`` (``bad_msisdn``) if
    ``wire`` is not a wire MSISDN of the profile."""
    if not is_wire(wire, profile):
        raise ParseError("bad_msisdn", wire, 0, f"a wire MSISDN of profile {profile!r}")
    if profile == "telenor":
        return "0" + wire[3:]
    return wire


__all__ = [
    "ANY_WIRE_PATTERN",
    "PROFILES",
    "WIRE_PATTERNS",
    "Context",
    "api_number",
    "bulgarian_national_number",
    "is_wire",
    "kazakh_number",
    "national",
    "normalize",
    "russian_number",
    "typed_number",
    "typed_number_fast",
]
