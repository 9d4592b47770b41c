"""The four operator profiles the parsers know (SPEC §0), as plain strings, and the one check
every public parser entry point makes on the profile it is given.

A profile names an operator's world: which USSD strings, SMS short numbers and number formats
apply. Callers pass a ``str``; ``Profile`` is the ``Literal`` type for those who want the checker's
help.
"""

from __future__ import annotations

from typing import Final, Literal, NoReturn, cast

from parsers.errors import ParserUsageError

Profile = Literal["mts", "tele2ru", "tele2kz", "telenor"]

#: Every profile of SPEC §0, in the table's order.
PROFILES: Final[tuple[Profile, ...]] = ("mts", "tele2ru", "tele2kz", "telenor")

_KNOWN: Final[frozenset[str]] = frozenset(PROFILES)


def check_profile(profile: str) -> Profile:
    """Return ``profile`` typed as a ``Profile``, or raise ``ParserUsageError`` if SPEC §0 has no
    such profile (a caller's mistake, not a subscriber's, so not a ``ParseError``)."""
    if profile not in _KNOWN:
        unknown_profile(profile)
    return cast(Profile, profile)


def unknown_profile(profile: str) -> NoReturn:
    """Raise the ``ParserUsageError`` for a profile SPEC §0 does not have (for entry points that
    found out by a failed table lookup)."""
    raise ParserUsageError(f"unknown profile {profile!r}; expected one of {PROFILES}")
