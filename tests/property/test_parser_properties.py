"""Property tests of the parsers: format then parse gives every command back, any text gives a
command or a ParseError (never another exception), the fast paths agree with the grammar, and
the Time Share and MTS rules hold for every value, not just the seed examples."""

from __future__ import annotations

import pathlib
import re

import attrs
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from parsers import strategies as ussd_st
from parsers.commands import COMMAND_CLASSES, Command, MinutesAnswer, TransferMinutes
from parsers.errors import REASONS, ParseError
from parsers.msisdn import normalize
from parsers.profiles import PROFILES
from parsers.sms import SHORT_NUMBERS, format_sms, parse_sms, parse_sms_by_grammar
from parsers.ussd import (
    answer_kind,
    format_menu_answer,
    format_ussd,
    parse_menu_answer,
    parse_menu_answer_by_grammar,
    parse_ussd,
    parse_ussd_by_grammar,
)

_SETTINGS = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
_FEWER = settings(_SETTINGS, max_examples=100)
_EXPECTS = ("choice", "msisdn", "count", "minutes", "destination")
# Texts a handset is likely to send, and anything at all.
_TEXTS = st.one_of(
    st.text(),
    st.text(alphabet="0123456789*#,;FGfgXДАНЕТдаAHET \n０８", max_size=24),
)


def _round_trip(command: Command, profile: str) -> Command:
    if command.channel == "ussd":
        return parse_ussd(format_ussd(command, profile), profile)
    if command.channel == "sms":
        return parse_sms(*format_sms(command, profile), profile)
    return parse_menu_answer(format_menu_answer(command, profile), answer_kind(command), profile)


def _outcome(parse: object, text: str, *args: str) -> tuple[str, object]:
    """``('command', c)`` or ``('refused', error.args)``, checking what every result owes."""
    try:
        command = parse(text, *args)  # type: ignore[operator]
    except ParseError as error:
        assert error.reason in REASONS
        assert error.text == text
        assert 0 <= error.position <= len(text)
        assert error.expected
        return "refused", error.args
    assert isinstance(command, Command)
    attrs.validate(command)  # the fast paths build without the validators; prove they hold
    return "command", command


# --- parse(format(c)) == c ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "profile"),
    [(cls, profile) for cls in COMMAND_CLASSES for profile in PROFILES if profile in cls.profiles],
    ids=lambda value: value if isinstance(value, str) else value.__name__,
)
def test_mp_05_mp_07_mp_08_mp_18_mp_19_mp_20_tv_01_tv_02_sr_03_ts_01_ts_02_round_trip(
    cls: type[Command], profile: str
) -> None:
    """MP-05 … TS-02: for every command class, parse(format(c)) == c in each of its profiles."""

    @_FEWER
    @given(ussd_st.commands_of(cls, profile))
    def check(command: Command) -> None:
        assert _round_trip(command, profile) == command

    check()


@_FEWER
@given(st.sampled_from(PROFILES).flatmap(lambda p: st.tuples(st.just(p), ussd_st.commands(p))))
def test_se_03_se_05_any_command_round_trips(case: tuple[str, Command]) -> None:
    """SE-03 / SE-05 and the service rules: any command of any profile round-trips."""
    profile, command = case
    assert _round_trip(command, profile) == command


# --- Any text: a command or a ParseError --------------------------------------------------------


@_SETTINGS
@given(_TEXTS, st.sampled_from(PROFILES))
def test_gw_10_any_text_as_ussd_gives_a_command_or_parse_error(text: str, profile: str) -> None:
    """GW-10: parse_ussd of any text returns a command or raises ParseError, nothing else,
    and its fast paths give exactly what the grammar gives."""
    assert _outcome(parse_ussd, text, profile) == _outcome(parse_ussd_by_grammar, text, profile)


@_SETTINGS
@given(_TEXTS, st.sampled_from(["125", "2221", "434", "1", ""]), st.sampled_from(PROFILES))
def test_gw_05_any_text_as_sms_gives_a_command_or_parse_error(
    text: str, destination: str, profile: str
) -> None:
    """GW-05: parse_sms of any text to any number returns a command or raises ParseError, and
    its fast paths agree with the grammar."""
    assert _outcome(parse_sms, text, destination, profile) == _outcome(
        parse_sms_by_grammar, text, destination, profile
    )


@_SETTINGS
@given(_TEXTS, st.sampled_from(_EXPECTS), st.sampled_from(PROFILES))
def test_se_05_any_text_as_an_answer_gives_a_command_or_parse_error(
    text: str, expect: str, profile: str
) -> None:
    """SE-05: parse_menu_answer of any text returns an answer or raises ParseError, and its
    fast paths agree with the grammar."""
    assert _outcome(parse_menu_answer, text, expect, profile) == _outcome(
        parse_menu_answer_by_grammar, text, expect, profile
    )


@_SETTINGS
@given(_TEXTS, st.sampled_from(PROFILES), st.sampled_from(["ussd", "sms", "api"]))
def test_mp_05_any_text_as_a_number_gives_a_number_or_parse_error(
    text: str, profile: str, context: str
) -> None:
    """MP-05 / SPEC §0: normalize() of any text is a wire MSISDN or a ParseError."""
    try:
        wire = normalize(text, profile, context=context)  # type: ignore[arg-type]
    except ParseError as error:
        assert error.reason in REASONS and 0 <= error.position <= len(text)
    else:
        assert wire.isascii() and wire.isdigit()


@_FEWER
@given(
    st.sampled_from(["mts", "tele2ru", "telenor"]).flatmap(
        lambda p: st.tuples(st.just(p), ussd_st.near_misses(ussd_st.ussd_strings(p)))
    )
)
def test_gw_10_near_miss_ussd_strings_give_a_command_or_parse_error(case: tuple[str, str]) -> None:
    """GW-10: a USSD string with one slip is a command or a ParseError, as the grammar says."""
    profile, text = case
    assert _outcome(parse_ussd, text, profile) == _outcome(parse_ussd_by_grammar, text, profile)


@_FEWER
@given(
    st.sampled_from(["mts", "tele2kz", "telenor"]).flatmap(
        lambda p: st.tuples(st.just(p), ussd_st.near_misses(ussd_st.sms_texts(p, canonical=False)))
    )
)
def test_ts_07_near_miss_sms_give_a_command_or_parse_error(
    case: tuple[str, tuple[str, str]],
) -> None:
    """TS-07: an SMS with one slip is a command or a ParseError, as the grammar says."""
    profile, (text, destination) = case
    assert _outcome(parse_sms, text, destination, profile) == _outcome(
        parse_sms_by_grammar, text, destination, profile
    )


# --- The rules, for every value ------------------------------------------------------------------


@_SETTINGS
@given(
    ussd_st.msisdns("telenor", "national"),
    st.sampled_from("FG"),
    # Every value near the boundaries and the tens, then anything.
    st.one_of(st.integers(0, 70), st.integers(0, 10**12)),
)
def test_ts_03_minutes_are_accepted_exactly_from_10_to_50_by_tens(
    recipient: str, letter: str, minutes: int
) -> None:
    """TS-03: any count is accepted iff 10 ≤ YY ≤ 50 and YY % 10 == 0, else refused with the
    range reason first, then the multiple reason."""
    text = f"{letter},{recipient},{minutes}"
    if minutes in (10, 20, 30, 40, 50):
        assert parse_sms(text, "125", "telenor").minutes == minutes  # type: ignore[attr-defined]
        assert parse_menu_answer(str(minutes), "minutes", "telenor") == MinutesAnswer(
            minutes=minutes
        )
        return
    with pytest.raises(ParseError) as caught:
        parse_sms(text, "125", "telenor")
    expected = "minutes_out_of_range" if not 10 <= minutes <= 50 else "minutes_not_multiple_of_10"
    assert (caught.value.reason, caught.value.position) == (expected, len(text) - len(str(minutes)))


@_SETTINGS
@given(ussd_st.commands("telenor", "sms"), st.data())
def test_ts_01_a_space_anywhere_is_spaces_not_allowed(
    command: Command, data: st.DataObject
) -> None:
    """TS-01: «без интервали» — whitespace inserted anywhere in a valid Time Share SMS is
    refused as spaces_not_allowed at that place."""
    assert isinstance(command, TransferMinutes)
    text, number = format_sms(command, "telenor")
    position = data.draw(st.integers(0, len(text)))
    space = data.draw(st.sampled_from([" ", "\t", "\n", "\u00a0", "\u3000"]))
    with pytest.raises(ParseError) as caught:
        parse_sms(text[:position] + space + text[position:], number, "telenor")
    assert (caught.value.reason, caught.value.position) == ("spaces_not_allowed", position)


@_SETTINGS
@given(ussd_st.msisdns("mts"), st.sampled_from(["*434*1*{}#", "*434*3*{}#", "*985*{}*2#"]))
def test_mp_05_any_number_with_8_is_msisdn_with_8(number: str, template: str) -> None:
    """MP-05 / MP-18 / TV-02: any number written with 8 for 7 is msisdn_with_8 at the 8."""
    profile = "tele2ru" if template.startswith("*985") else "mts"
    text = template.format("8" + number[1:])
    with pytest.raises(ParseError) as caught:
        parse_ussd(text, profile)
    assert (caught.value.reason, caught.value.position) == ("msisdn_with_8", template.index("{"))


@_SETTINGS
@given(st.sampled_from(["ДА", "НЕТ"]), st.text(alphabet="0123456789", min_size=1, max_size=20))
def test_mp_07_mp_08_suffix_is_any_one_to_eleven_digits(word: str, digits: str) -> None:
    """MP-07 / MP-08: «ДА#XXXX» takes 1 … 11 digits as the suffix; more is bad_suffix."""
    text = f"{word}#{digits}"
    if len(digits) <= 11:
        assert parse_sms(text, "434", "mts").suffix == digits  # type: ignore[attr-defined]
        return
    with pytest.raises(ParseError) as caught:
        parse_sms(text, "434", "mts")
    assert caught.value.reason == "bad_suffix"


@_SETTINGS
@given(st.sampled_from(PROFILES), st.text(alphabet="0123456789", min_size=1, max_size=5))
def test_gw_05_only_the_profile_short_number_takes_commands(profile: str, number: str) -> None:
    """GW-05: an SMS command to any number but the profile's service number is refused."""
    assume(number != SHORT_NUMBERS.get(profile))
    with pytest.raises(ParseError) as caught:
        parse_sms("1", number, profile)
    assert caught.value.reason == "wrong_short_number"


def test_gw_05_every_reason_raised_is_registered_and_every_registered_one_is_raised() -> None:
    """GW-05: the reasons table in parsers.errors is exactly the set of reasons the parsers
    raise, so each maps to a reply text in the profile fixtures."""
    source = "".join(
        path.read_text(encoding="utf-8")
        for path in pathlib.Path(__file__).parents[2].joinpath("parsers").glob("*.py")
    )
    raised = set(re.findall(r'ParseError\(\s*"(\w+)"', source))
    raised |= set(re.findall(r'reason = "(\w+)" if .* else "(\w+)"', source)[0])
    assert raised == set(REASONS)
