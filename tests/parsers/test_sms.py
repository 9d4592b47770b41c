"""SMS commands to service short numbers: the seeds' examples, their refusals with the exact
reason, and the documented tolerance."""

from __future__ import annotations

import pytest

from parsers.commands import (
    AcceptInvitation,
    AcceptShareInvitation,
    Command,
    DeclineInvitation,
    Destination,
    GroupInfo,
    TransferMinutes,
)
from parsers.errors import ParseError, ParserUsageError
from parsers.sms import SHORT_NUMBERS, format_sms, parse_sms


def _transfer(letter: str, minutes: int, recipient: str = "359898123456") -> TransferMinutes:
    return TransferMinutes(recipient_msisdn=recipient, destination=letter, minutes=minutes)


def _refusal(text: str, destination: str, profile: str) -> ParseError:
    with pytest.raises(ParseError) as caught:
        parse_sms(text, destination, profile)
    assert caught.value.text == text
    return caught.value


# --- MTS: ДА / НЕТ (MP-07, MP-08) ---------------------------------------------------------------


def test_mp_07_accept_with_and_without_suffix() -> None:
    """MP-07: «ДА» and «ДА#4567» to the number the invitation came from."""
    assert parse_sms("ДА", "434", "mts") == AcceptInvitation()
    assert parse_sms("ДА#4567", "434", "mts") == AcceptInvitation(suffix="4567")


def test_mp_08_decline_with_and_without_suffix() -> None:
    """MP-08: «НЕТ» and «НЕТ#4567»."""
    assert parse_sms("НЕТ", "434", "mts") == DeclineInvitation()
    assert parse_sms("НЕТ#4567", "434", "mts") == DeclineInvitation(suffix="4567")


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("да", AcceptInvitation()),
        ("Да", AcceptInvitation()),
        ("дА", AcceptInvitation()),
        ("  ДА\n", AcceptInvitation()),
        ("\u00a0да#12 ", AcceptInvitation(suffix="12")),
        ("DA", AcceptInvitation()),
        ("da#4567", AcceptInvitation(suffix="4567")),
        ("ДA", AcceptInvitation()),  # Latin A typed on a Latin keyboard
        ("нет", DeclineInvitation()),
        ("NET", DeclineInvitation()),
        ("HET", DeclineInvitation()),  # Latin look-alikes of Н, Е, Т
        ("НEТ#1", DeclineInvitation(suffix="1")),
        ("ДА#７９１６１２３４５６７", AcceptInvitation(suffix="79161234567")),
    ],
)
def test_mp_07_mp_08_tolerated_spellings(text: str, command: Command) -> None:
    """MP-07 / MP-08: any case, whitespace around, Latin DA/NET and look-alikes are accepted."""
    assert parse_sms(text, "434", "mts") == command


@pytest.mark.parametrize(
    ("text", "reason", "position"),
    [
        ("", "empty", 0),
        (" \n", "empty", 2),
        ("ДАЖЕ", "unknown_command", 0),
        ("YES", "unknown_command", 0),
        ("#4567", "unknown_command", 0),
        ("ДА 4567", "bad_separator", 2),
        ("ДА4567", "bad_separator", 2),
        ("ДА # 4567", "bad_separator", 2),
        ("ДА#", "bad_suffix", 3),
        ("НЕТ#45x7", "bad_suffix", 6),
        ("НЕТ#4567#", "bad_suffix", 8),
        ("ДА#123456789012", "bad_suffix", 14),
    ],
)
def test_mp_07_mp_08_malformed_replies_are_refused(text: str, reason: str, position: int) -> None:
    """MP-07 / MP-08: a reply that is not ДА/НЕТ[#digits] is refused with its reason."""
    error = _refusal(text, "434", "mts")
    assert (error.reason, error.position) == (reason, position)


# --- Tele2 Kazakhstan: «1» to 2221 (SR-03) -------------------------------------------------------


def test_sr_03_one_to_2221_accepts_the_invitation() -> None:
    """SR-03: «1» to 2221 accepts; whitespace around it is forgiven."""
    assert parse_sms("1", "2221", "tele2kz") == AcceptShareInvitation()
    assert parse_sms(" 1\n", "2221", "tele2kz") == AcceptShareInvitation()
    assert parse_sms("１", "2221", "tele2kz") == AcceptShareInvitation()


@pytest.mark.parametrize(
    ("text", "reason"), [("2", "unknown_command"), ("11", "unknown_command"), ("", "empty")]
)
def test_sr_03_anything_but_one_is_refused(text: str, reason: str) -> None:
    """SR-03: any other text to 2221 is refused."""
    assert _refusal(text, "2221", "tele2kz").reason == reason


# --- Telenor Time Share to 125 (TS-01, TS-03, TS-07) ----------------------------------------------


def test_ts_01_seed_examples_transfer_minutes() -> None:
    """TS-01: the seed's «G,0898123456,30» and «F,0898123456,20» to 125."""
    assert parse_sms("G,0898123456,30", "125", "telenor") == _transfer("G", 30)
    assert parse_sms("F,0898123456,20", "125", "telenor") == _transfer("F", 20)


def test_ts_01_destination_letters_mean_friends_and_network() -> None:
    """TS-01: F is «За приятели», G «мрежата на Теленор»; lower case is accepted."""
    assert parse_sms("F,0898123456,20", "125", "telenor").destination is Destination.FRIENDS  # type: ignore[attr-defined]
    assert parse_sms("g,0878123456,10", "125", "telenor") == _transfer("G", 10, "359878123456")


@pytest.mark.parametrize("minutes", [10, 20, 30, 40, 50])
def test_ts_03_every_allowed_count_is_accepted(minutes: int) -> None:
    """TS-03: 10, 20, 30, 40 and 50 minutes are accepted."""
    assert parse_sms(f"G,0898123456,{minutes}", "125", "telenor") == _transfer("G", minutes)


@pytest.mark.parametrize(
    ("text", "reason", "position"),
    [
        ("G,0898123456,35", "minutes_not_multiple_of_10", 13),
        ("G,0898123456,60", "minutes_out_of_range", 13),
        ("G,0898123456,5", "minutes_out_of_range", 13),
        ("G,0898123456,0", "minutes_out_of_range", 13),
        ("G,0898123456,9999999999999", "minutes_out_of_range", 13),
        ("G, 0898123456,30", "spaces_not_allowed", 2),
        ("G,0898123456,30 ", "spaces_not_allowed", 15),
        ("X,0898123456,30", "bad_destination_letter", 0),
        ("Г,0898123456,30", "bad_destination_letter", 0),
        ("G;0898123456;30", "bad_separator", 1),
        ("G,0898123456.30", "bad_separator", 12),
        ("G,0898123456，30", "bad_separator", 12),
        ("G,+359898123456,30", "bad_msisdn", 2),
        ("G,0828123456,30", "bad_msisdn", 4),
        ("G,089812345,30", "bad_msisdn", 11),
        ("GG,0898123456,30", "bad_format", 1),
        ("G", "bad_format", 1),
        ("G,0898123456", "bad_format", 12),
        ("G,0898123456,", "not_a_number", 13),
        ("G,0898123456,3O", "not_a_number", 14),
        ("G,0898123456,30,40", "bad_format", 15),
        ("", "empty", 0),
    ],
)
def test_ts_07_malformed_time_share_is_refused_with_its_own_reason(
    text: str, reason: str, position: int
) -> None:
    """TS-07 (TS-01, TS-03): each fault of a Time Share SMS has its reason and position."""
    error = _refusal(text, "125", "telenor")
    assert (error.reason, error.position) == (reason, position)


def test_ts_01_spaces_are_refused_before_anything_else() -> None:
    """TS-01: «без интервали» — a message with a space is spaces_not_allowed, even if it has
    other faults too."""
    assert _refusal("X, 0898123456,35", "125", "telenor").reason == "spaces_not_allowed"


def test_ts_01_other_decimal_digits_are_accepted() -> None:
    """TS-01: full-width digits from a UCS2 handset are digits."""
    assert parse_sms("G,０８９８１２３４５６,３０", "125", "telenor") == _transfer("G", 30)


# --- Short numbers and formatting ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "destination", "profile"),
    [
        ("G,0898123456,30", "126", "telenor"),
        ("ДА", "125", "mts"),
        ("1", "434", "tele2kz"),
        ("ДА", "434", "tele2ru"),  # Tele2 Russia takes no SMS commands
    ],
)
def test_gw_05_sms_to_a_number_without_service_is_refused(
    text: str, destination: str, profile: str
) -> None:
    """GW-05: an SMS to a number that is not the profile's service number is refused."""
    error = _refusal(text, destination, profile)
    assert (error.reason, error.position) == ("wrong_short_number", 0)


def test_gw_05_short_numbers_of_the_seeds() -> None:
    """GW-05: 125 (Telenor, TS-01), 2221 (Tele2 KZ, SR-03); MTS invitations come from 434."""
    assert SHORT_NUMBERS == {"mts": "434", "tele2kz": "2221", "telenor": "125"}


@pytest.mark.parametrize(
    ("command", "profile", "sms"),
    [
        (AcceptInvitation(), "mts", ("ДА", "434")),
        (AcceptInvitation(suffix="4567"), "mts", ("ДА#4567", "434")),
        (DeclineInvitation(suffix="4567"), "mts", ("НЕТ#4567", "434")),
        (AcceptShareInvitation(), "tele2kz", ("1", "2221")),
        (_transfer("G", 30), "telenor", ("G,0898123456,30", "125")),
        (_transfer("F", 20), "telenor", ("F,0898123456,20", "125")),
    ],
)
def test_mp_07_sr_03_ts_01_format_sms_writes_the_seed_form(
    command: Command, profile: str, sms: tuple[str, str]
) -> None:
    """MP-07, SR-03, TS-01: format_sms gives the seed's text and the short number."""
    assert format_sms(command, profile) == sms


def test_ts_01_format_sms_refuses_commands_of_other_channels_or_profiles() -> None:
    """TS-01: formatting a USSD command, or another profile's command, is a usage error."""
    with pytest.raises(ParserUsageError):
        format_sms(GroupInfo(), "mts")
    with pytest.raises(ParserUsageError):
        format_sms(AcceptInvitation(), "telenor")
    with pytest.raises(ParserUsageError):
        parse_sms("ДА", "434", "vivacom")
