"""Phone numbers per country (SPEC §0): typed forms ⇄ wire MSISDN, and the refusals."""

from __future__ import annotations

import pytest

from parsers.errors import ParseError, ParserUsageError
from parsers.msisdn import is_wire, national, normalize


def _refusal(typed: str, profile: str, context: str = "ussd") -> ParseError:
    with pytest.raises(ParseError) as caught:
        normalize(typed, profile, context=context)  # type: ignore[arg-type]
    return caught.value


@pytest.mark.parametrize("profile", ["mts", "tele2ru"])
def test_mp_05_tv_02_russian_number_is_typed_as_the_wire_form(profile: str) -> None:
    """MP-05 / TV-02: a Russian number is typed 7XXXXXXXXXX, which is also its wire form."""
    assert normalize("79161234567", profile) == "79161234567"
    assert normalize("79161234567", profile, context="sms") == "79161234567"
    assert national("79161234567", profile) == "79161234567"


@pytest.mark.parametrize("profile", ["mts", "tele2ru"])
def test_mp_05_number_with_leading_8_is_refused_with_its_hint(profile: str) -> None:
    """MP-05: «без восьмерки» — 89161234567 is msisdn_with_8 at the 8, with the hint."""
    error = _refusal("89161234567", profile)
    assert (error.reason, error.position) == ("msisdn_with_8", 0)
    assert "без восьмерки" in error.expected


@pytest.mark.parametrize(
    ("typed", "reason", "position"),
    [
        ("", "bad_msisdn", 0),
        ("9161234567", "bad_msisdn", 0),  # no country code
        ("7916123456", "bad_msisdn", 10),  # a digit short: missing at the end
        ("791612345678", "bad_msisdn", 11),  # a digit too many
        ("74951234567", "bad_msisdn", 1),  # Moscow landline, not a 9XX mobile range
        ("77011234567", "bad_msisdn", 1),  # a Kazakh number
        ("+79161234567", "bad_msisdn", 0),  # no '+' on a handset
        ("7916123456x", "bad_msisdn", 10),
        ("7916 1234567", "spaces_not_allowed", 4),
        ("8916123456", "bad_msisdn", 0),  # an 8 but not eleven digits
    ],
)
def test_mp_05_bad_russian_numbers_are_refused_where_they_go_wrong(
    typed: str, reason: str, position: int
) -> None:
    """MP-05: a bad Russian number names its reason and the first wrong character."""
    error = _refusal(typed, "mts")
    assert (error.reason, error.position, error.text) == (reason, position, typed)


def test_ts_01_bulgarian_national_number_maps_to_3598_wire_form() -> None:
    """TS-01: 08XXXXXXXX ⇄ 3598XXXXXXXX (087, 088 and 089 are the mobile ranges)."""
    for typed, wire in [
        ("0898123456", "359898123456"),
        ("0878123456", "359878123456"),
        ("0888123456", "359888123456"),
    ]:
        assert normalize(typed, "telenor", context="sms") == wire
        assert national(wire, "telenor") == typed


@pytest.mark.parametrize(
    ("typed", "reason", "position"),
    [
        ("0828123456", "bad_msisdn", 2),  # 082 is Ruse, a landline
        ("0988123456", "bad_msisdn", 1),  # 098: outside SPEC §0's 3598… wire form
        ("089812345", "bad_msisdn", 9),
        ("08981234567", "bad_msisdn", 10),
        ("359898123456", "bad_msisdn", 0),  # international form in an SMS
        ("+359898123456", "bad_msisdn", 0),
        ("898123456", "bad_msisdn", 0),
        ("0898 123456", "spaces_not_allowed", 4),
    ],
)
def test_ts_01_bad_bulgarian_numbers_are_refused(typed: str, reason: str, position: int) -> None:
    """TS-01: only 08XXXXXXXX (087/088/089) is a recipient; the rest is refused in place."""
    error = _refusal(typed, "telenor", "sms")
    assert (error.reason, error.position) == (reason, position)


def test_sr_02_kazakh_numbers_start_with_77() -> None:
    """SR-02: Kazakh mobile numbers (700…708, 747, 771…778) are 77XXXXXXXXX on the wire."""
    assert normalize("77071234567", "tele2kz") == "77071234567"
    assert normalize("+7 747 123 45 67", "tele2kz", context="api") == "77471234567"
    assert _refusal("79161234567", "tele2kz").reason == "bad_msisdn"
    assert _refusal("87071234567", "tele2kz").reason == "msisdn_with_8"


@pytest.mark.parametrize(
    ("typed", "profile", "wire"),
    [
        ("+79161234567", "mts", "79161234567"),
        ("79161234567", "tele2ru", "79161234567"),
        ("+7 (916) 123-45-67", "mts", "79161234567"),
        ("+359 898 123 456", "telenor", "359898123456"),
        ("359898123456", "telenor", "359898123456"),
        ("77011234567", "tele2kz", "77011234567"),
    ],
)
def test_sr_02_tv_02_api_takes_wire_form_with_optional_plus(
    typed: str, profile: str, wire: str
) -> None:
    """SR-02 / TV-02: the control API takes the wire form, '+' and phone-field separators."""
    assert normalize(typed, profile, context="api") == wire


@pytest.mark.parametrize(
    ("typed", "profile", "reason", "position"),
    [
        ("89161234567", "mts", "msisdn_with_8", 0),
        ("+8 916 123 45 67", "mts", "msisdn_with_8", 1),
        ("0898123456", "telenor", "bad_msisdn", 0),  # the API wants the wire form
        ("++79161234567", "mts", "bad_msisdn", 1),
        ("7916x234567", "mts", "bad_msisdn", 4),
        ("", "mts", "bad_msisdn", 0),
        (" - ", "mts", "bad_msisdn", 3),
    ],
)
def test_tv_02_api_refusals_point_into_the_original_text(
    typed: str, profile: str, reason: str, position: int
) -> None:
    """TV-02: API refusals keep positions in the text as given, separators included."""
    error = _refusal(typed, profile, "api")
    assert (error.reason, error.position) == (reason, position)


def test_mp_05_other_decimal_digits_are_normalised_to_ascii() -> None:
    """MP-05: full-width and Arabic-Indic digits are digits; the wire form is ASCII."""
    assert normalize("７９１６１２３４５６７", "mts") == "79161234567"
    assert normalize("٠٨٩٨١٢٣٤٥٦", "telenor") == "359898123456"
    # A superscript two looks like a digit but is not a decimal digit.
    assert _refusal("7916123456²", "mts").reason == "bad_msisdn"


def test_ts_01_is_wire_checks_the_profile_form() -> None:
    """TS-01: is_wire knows each profile's wire form and nothing else."""
    assert is_wire("359898123456", "telenor")
    assert not is_wire("0898123456", "telenor")
    assert is_wire("79161234567", "mts") and not is_wire("79161234567", "tele2kz")


def test_ts_01_national_refuses_a_number_of_another_profile() -> None:
    """TS-01: national() of a non-wire number is a bad_msisdn refusal, not a wrong string."""
    with pytest.raises(ParseError) as caught:
        national("79161234567", "telenor")
    assert caught.value.reason == "bad_msisdn"


def test_mp_05_unknown_profile_or_context_is_a_usage_error() -> None:
    """MP-05: an unknown profile or context is the caller's mistake, not a ParseError."""
    with pytest.raises(ParserUsageError):
        normalize("79161234567", "megafon")
    with pytest.raises(ParserUsageError):
        normalize("79161234567", "mts", context="fax")  # type: ignore[arg-type]
