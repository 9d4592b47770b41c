"""Pure parsers: USSD strings and SMS texts in, typed commands out (or ``ParseError``)."""

from parsers.commands import COMMAND_CLASSES, Command, Destination
from parsers.errors import REASONS, ParseError, ParserUsageError
from parsers.msisdn import national, normalize
from parsers.profiles import PROFILES, Profile
from parsers.sms import SHORT_NUMBERS, format_sms, parse_sms
from parsers.ussd import format_menu_answer, format_ussd, parse_menu_answer, parse_ussd

__all__ = [
    "COMMAND_CLASSES",
    "PROFILES",
    "REASONS",
    "SHORT_NUMBERS",
    "Command",
    "Destination",
    "ParseError",
    "ParserUsageError",
    "Profile",
    "format_menu_answer",
    "format_sms",
    "format_ussd",
    "national",
    "normalize",
    "parse_menu_answer",
    "parse_sms",
    "parse_ussd",
]
