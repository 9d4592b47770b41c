"""Errors of the parsers package: ``ParseError`` (a subscriber typed something the operator would
refuse) with its stable ``reason`` codes, listed once here for the whole package, and
``ParserUsageError`` (a caller's mistake, such as an unknown profile).

Every refusal a parser makes is a ``ParseError(reason, text, position, expected)``: ``reason`` is
one of the codes below and never changes meaning (the profile fixtures map each one to a reply
text in the operator's language); ``text`` is the text exactly as given to the parser;
``position`` is the index in ``text`` of the first character that breaks the rule, or
``len(text)`` when something is missing at the end; ``expected`` says, in English, what the rule
wanted there.

==============================  ====================================================  ============
reason                          raised when                                           rule
==============================  ====================================================  ============
``empty``                       the text is empty (or only whitespace)                GW-05, SE-05
``spaces_not_allowed``          whitespace inside a USSD string, a Time Share SMS or  TS-01, MP-05
                                a number typed on a handset
``bad_format``                  not the shape of a command: no leading ``*`` or       GW-10, TS-07
                                closing ``#``, an empty field, text after ``#``, a
                                Time Share field missing or extra
``unknown_code``                a well-formed USSD string whose service code or item  GW-05
                                the profile does not know (``*435#``, ``*434*9#``)
``unknown_command``             an SMS that is no command of the short number it was  MP-07, SR-03
                                sent to (``ДАЖЕ``, ``2`` to 2221)
``wrong_short_number``          an SMS to a number that has no service in the profile GW-05
``missing_msisdn``              a command that needs a phone number has none          MP-18
                                (``*434*3#``)
``bad_msisdn``                  not a mobile number of the profile's country in the   SPEC §0
                                form this channel expects
``msisdn_with_8``               a Russian or Kazakh number written with the domestic  MP-05
                                ``8`` instead of ``7`` («без восьмерки»)
``bad_destination_letter``      the Time Share destination is not ``F`` or ``G``      TS-01
``bad_separator``               a separator other than the grammar's: not ``,``       TS-01, MP-07
                                between Time Share fields, not ``#`` before an
                                invitation suffix
``minutes_out_of_range``        minutes outside 10 … 50                               TS-03
``minutes_not_multiple_of_10``  minutes within 10 … 50 but not a multiple of 10       TS-03
``not_a_number``                a number was expected and there is none               TS-03, SE-05
``bad_choice``                  a menu answer that is not an item number (three or    SE-03
                                more digits, a leading zero, past the last item)
``bad_suffix``                  what follows ``ДА#`` / ``НЕТ#`` is not 1 … 11 digits  MP-07, MP-08
``count_out_of_range``          a count of more than nine digits                      SE-05
==============================  ====================================================  ============

Minutes are checked for range before multiple, so ``5`` and ``55`` are ``minutes_out_of_range``
and ``35`` is ``minutes_not_multiple_of_10``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

#: Every reason code a ``ParseError`` can carry, with a short English description (the module
#: docstring has the full table with the SPEC rules).  The profile fixtures map each key to a
#: reply text in the operator's language.
REASONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "empty": "the text is empty",
        "spaces_not_allowed": "spaces are not allowed here",
        "bad_format": "the text does not have the command's format",
        "unknown_code": "this USSD code is not known",
        "unknown_command": "this SMS text is not a command of this number",
        "wrong_short_number": "this number has no SMS service",
        "missing_msisdn": "a phone number is missing",
        "bad_msisdn": "this is not a valid mobile number",
        "msisdn_with_8": "write the number with 7, without the leading 8",
        "bad_destination_letter": "the destination must be F or G",
        "bad_separator": "wrong separator",
        "minutes_out_of_range": "minutes must be from 10 to 50",
        "minutes_not_multiple_of_10": "minutes must be a multiple of 10",
        "not_a_number": "a number was expected",
        "bad_choice": "no such menu item",
        "bad_suffix": "the suffix must be the last digits of the inviter's number",
        "count_out_of_range": "the number is too large",
    }
)


class ParseError(Exception):
    """A subscriber's text that the operator would refuse: ``reason`` (a key of ``REASONS``),
    ``text`` (as given), ``position`` (index into ``text``) and ``expected`` (what the grammar
    rule wanted there). Built positionally: ``ParseError(reason, text, position, expected)``."""

    # No Python-level __init__: BaseException keeps the four values in ``args`` (so the error
    # pickles and copies whole) at C speed, which matters because refusals are half the traffic
    # of a negative test run. The signature below is for the type checker only.
    if TYPE_CHECKING:

        def __init__(self, reason: str, text: str, position: int, expected: str, /) -> None: ...

    @property
    def reason(self) -> str:
        """The stable reason code, a key of ``REASONS``."""
        reason: str = self.args[0]
        return reason

    @property
    def text(self) -> str:
        """The text exactly as the parser was given it."""
        text: str = self.args[1]
        return text

    @property
    def position(self) -> int:
        """Index in ``text`` of the first character that breaks the rule (``len(text)`` when
        something is missing at the end)."""
        position: int = self.args[2]
        return position

    @property
    def expected(self) -> str:
        """What the grammar rule wanted at ``position``, in English."""
        expected: str = self.args[3]
        return expected

    def __str__(self) -> str:
        return (
            f"{self.reason} at position {self.position} of {self.text!r}: expected {self.expected}"
        )


class ParserUsageError(ValueError):
    """The caller asked for something the parsers do not do: an unknown profile, an unknown
    menu-answer kind, or formatting a command in a profile it does not belong to."""
