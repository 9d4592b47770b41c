"""Character-level helpers shared by the grammar modules: digits (any Unicode decimal digit,
normalised to ASCII) and the first whitespace in a span.

Digits: a subscriber's phone may send full-width (``０８９８``) or Arabic-Indic (``٠٨٩٨``) digits
in a UCS2 message; they are unambiguous, so every digit rule of the package accepts any Unicode
decimal digit (category Nd, ``str.isdecimal``) and normalises it to ASCII. Superscripts, circled
digits and other "digit-like" characters that are not decimal digits are not digits.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

_WHITESPACE: Final = re.compile(r"\s")
# For str patterns, \d is exactly the Unicode decimal digits (category Nd), as str.isdecimal.
_NON_DIGIT: Final = re.compile(r"\D")


def ascii_digits(span: str) -> str | None:
    """``digits = 1*DIGIT``, DIGIT being any Unicode decimal digit: the span in ASCII digits, or
    ``None`` if it is empty or holds anything else."""
    if span.isascii():
        # For ASCII, isdigit() is exactly 0-9 and is False for the empty string.
        return span if span.isdigit() else None
    if not span.isdecimal():
        return None
    return "".join(chr(48 + unicodedata.decimal(char)) for char in span)


def first_non_digit(text: str, start: int, end: int) -> int:
    """Index of the first character of ``text[start:end]`` that is not a decimal digit, or
    ``end``."""
    found = _NON_DIGIT.search(text, start, end)
    return end if found is None else found.start()


def first_space(text: str, start: int = 0, end: int | None = None) -> int:
    """Index of the first whitespace character in ``text[start:end]``, or -1."""
    if end is None:
        end = len(text)
    span = text[start:end]
    # Every whitespace character but U+0020 is unprintable (categories Cc, Zs, Zl, Zp), so this
    # cheap test settles the usual case without the regular expression.
    if span.isprintable() and " " not in span:
        return -1
    found = _WHITESPACE.search(text, start, end)
    return -1 if found is None else found.start()


def strip_span(text: str) -> tuple[int, int]:
    """``(start, end)`` of ``text`` without its leading and trailing whitespace (any Unicode
    whitespace, as ``str.strip``); ``(len(text), len(text))`` if nothing else is left."""
    start = len(text) - len(text.lstrip())
    if start == len(text):
        return start, start
    return start, len(text.rstrip())
