"""The public hypothesis strategies keep their contract: valid texts are accepted, invalid ones
refused, numbers have the profile's shape, and importing them is light."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers import strategies as ussd_st
from parsers.errors import ParseError, ParserUsageError
from parsers.msisdn import is_wire
from parsers.profiles import PROFILES
from parsers.sms import parse_sms
from parsers.ussd import parse_menu_answer, parse_ussd

_FAST = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
_USSD_PROFILES = ["mts", "tele2ru", "telenor"]
_SMS_PROFILES = ["mts", "tele2kz", "telenor"]
_EXPECTS = ["choice", "msisdn", "count", "minutes", "destination"]


def _accepted(parse: object, *args: str) -> bool:
    try:
        parse(*args)  # type: ignore[operator]
    except ParseError:
        return False
    return True


@pytest.mark.parametrize("profile", _USSD_PROFILES)
@pytest.mark.parametrize("canonical", [True, False])
def test_gw_10_valid_ussd_strings_are_accepted(profile: str, canonical: bool) -> None:
    """GW-10: ussd_strings(valid=True) only yields strings parse_ussd accepts."""

    @_FAST
    @given(ussd_st.ussd_strings(profile, canonical=canonical))
    def check(text: str) -> None:
        assert _accepted(parse_ussd, text, profile), text

    check()


@pytest.mark.parametrize("profile", PROFILES)
def test_gw_10_invalid_ussd_strings_are_refused(profile: str) -> None:
    """GW-10: ussd_strings(valid=False) only yields strings parse_ussd refuses."""

    @_FAST
    @given(ussd_st.ussd_strings(profile, valid=False))
    def check(text: str) -> None:
        assert not _accepted(parse_ussd, text, profile), text

    check()


@pytest.mark.parametrize("profile", _SMS_PROFILES)
@pytest.mark.parametrize("canonical", [True, False])
def test_gw_05_valid_sms_texts_are_accepted(profile: str, canonical: bool) -> None:
    """GW-05: sms_texts(valid=True) only yields (text, number) pairs parse_sms accepts."""

    @_FAST
    @given(ussd_st.sms_texts(profile, canonical=canonical))
    def check(value: tuple[str, str]) -> None:
        assert _accepted(parse_sms, value[0], value[1], profile), value

    check()


@pytest.mark.parametrize("profile", PROFILES)
def test_ts_07_invalid_sms_texts_are_refused(profile: str) -> None:
    """TS-07: sms_texts(valid=False) only yields pairs parse_sms refuses."""

    @_FAST
    @given(ussd_st.sms_texts(profile, valid=False))
    def check(value: tuple[str, str]) -> None:
        assert not _accepted(parse_sms, value[0], value[1], profile), value

    check()


@pytest.mark.parametrize("expect", _EXPECTS)
@pytest.mark.parametrize("profile", ["mts", "telenor"])
def test_se_05_answer_texts_keep_their_contract(profile: str, expect: str) -> None:
    """SE-05: answer_texts yields accepted answers when valid, refused ones otherwise."""

    @_FAST
    @given(ussd_st.answer_texts(profile, expect), ussd_st.answer_texts(profile, expect, False))
    def check(good: str, bad: str) -> None:
        assert _accepted(parse_menu_answer, good, expect, profile), good
        assert not _accepted(parse_menu_answer, bad, expect, profile), bad

    check()


@pytest.mark.parametrize("profile", PROFILES)
def test_sr_02_ts_01_msisdns_have_the_profile_shape(profile: str) -> None:
    """SR-02 / TS-01: msisdns() are wire MSISDNs of the profile; national ones as typed."""

    @_FAST
    @given(ussd_st.msisdns(profile), ussd_st.msisdns(profile, "national"))
    def check(wire: str, typed: str) -> None:
        assert is_wire(wire, profile)
        if profile == "telenor":
            assert typed.startswith("08") and len(typed) == 10
        else:
            assert is_wire(typed, profile)

    check()


@_FAST
@given(st.data())
def test_ts_07_near_misses_are_one_slip_away(data: st.DataObject) -> None:
    """TS-07: a near miss differs from its text by one slip and keeps the short number."""
    original = data.draw(ussd_st.sms_texts("telenor"))
    slipped = data.draw(ussd_st.near_misses(st.just(original)))
    assert slipped[1] == original[1]
    assert abs(len(slipped[0]) - len(original[0])) <= 1
    text = data.draw(ussd_st.ussd_strings("mts"))
    assert abs(len(data.draw(ussd_st.near_misses(st.just(text)))) - len(text)) <= 1


def test_ts_07_near_misses_mostly_break_the_text() -> None:
    """TS-07: most near misses of valid Time Share texts are refused (they are for negative
    tests), though the contract lets a few stay valid."""
    refused: list[bool] = []

    @settings(max_examples=200, database=None, deadline=None)
    @given(ussd_st.near_misses(ussd_st.sms_texts("telenor")))
    def collect(value: tuple[str, str]) -> None:
        refused.append(not _accepted(parse_sms, value[0], value[1], "telenor"))

    collect()
    assert sum(refused) > 0.8 * len(refused)


def test_gw_05_commands_strategy_keeps_to_profile_and_channel() -> None:
    """GW-05: commands(profile, channel) draws only that profile's commands of that channel."""

    @_FAST
    @given(ussd_st.commands("telenor", "sms"), ussd_st.commands("mts"))
    def check(telenor: object, mts: object) -> None:
        assert type(telenor).__name__ == "TransferMinutes"
        assert "mts" in type(mts).profiles  # type: ignore[attr-defined]

    check()


def test_gw_05_impossible_requests_are_usage_errors() -> None:
    """GW-05: no valid USSD in tele2kz, no SMS in tele2ru; unknown names are usage errors."""
    with pytest.raises(ParserUsageError):
        ussd_st.ussd_strings("tele2kz")
    with pytest.raises(ParserUsageError):
        ussd_st.sms_texts("tele2ru")
    with pytest.raises(ParserUsageError):
        ussd_st.msisdns("mts", "e164")  # type: ignore[arg-type]
    with pytest.raises(ParserUsageError):
        ussd_st.answer_texts("mts", "colour")
    with pytest.raises(ParserUsageError):
        ussd_st.commands("beeline")


def test_gw_05_strategies_import_is_light() -> None:
    """GW-05: importing parsers.strategies pulls in no network, Twisted or service code, and
    importing parsers does not import hypothesis."""
    code = (
        "import sys, parsers; assert 'hypothesis' not in sys.modules; "
        "import parsers.strategies; "
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('twisted', 'gateway', 'services', 'sessions', 'smpplib', 'structlog')]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
