"""USSD strings of the seeds and the answers typed into a dialogue: what parses, what is
refused, with which reason and where."""

from __future__ import annotations

import pickle

import pytest

from parsers.commands import (
    Command,
    CountAnswer,
    CreateTogetherGroup,
    Destination,
    DestinationAnswer,
    GroupInfo,
    InviteMember,
    JoinTogetherGroup,
    LeaveGroup,
    LeaveTogetherGroup,
    MenuChoice,
    MinutesAnswer,
    OpenInvitePrompt,
    OpenMyMenu,
    OpenSharedBundleMenu,
    PhoneNumberAnswer,
    RemoveMember,
    TransferMinutes,
)
from parsers.errors import ParseError, ParserUsageError
from parsers.ussd import (
    answer_kind,
    format_menu_answer,
    format_ussd,
    parse_menu_answer,
    parse_ussd,
)


def _refusal(text: str, profile: str) -> ParseError:
    with pytest.raises(ParseError) as caught:
        parse_ussd(text, profile)
    assert caught.value.text == text
    return caught.value


def _answer_refusal(text: str, expect: str, profile: str = "telenor", **kw: int) -> ParseError:
    with pytest.raises(ParseError) as caught:
        parse_menu_answer(text, expect, profile, **kw)
    return caught.value


# --- Seed strings ----------------------------------------------------------------------------

SEED_STRINGS: list[tuple[str, str, Command]] = [
    ("*434*1*79161234567#", "mts", InviteMember(msisdn="79161234567")),
    ("*434*1#", "mts", OpenInvitePrompt()),
    ("*434#", "mts", OpenSharedBundleMenu()),
    ("*434*3*79161234567#", "mts", RemoveMember(msisdn="79161234567")),
    ("*434*0#", "mts", LeaveGroup()),
    ("*434*2#", "mts", GroupInfo()),
    ("*985*2#", "tele2ru", CreateTogetherGroup()),
    ("*985*79161234567*2#", "tele2ru", JoinTogetherGroup(organizer_msisdn="79161234567")),
    ("*985*0*2#", "tele2ru", LeaveTogetherGroup()),
    ("*123#", "telenor", OpenMyMenu()),
]


def test_mp_05_invite_by_number_and_by_prompt() -> None:
    """MP-05: *434*1*79161234567# invites that number; *434*1# opens the prompt."""
    assert parse_ussd("*434*1*79161234567#", "mts") == InviteMember(msisdn="79161234567")
    assert parse_ussd("*434*1#", "mts") == OpenInvitePrompt()


def test_mp_18_remove_member_by_number_and_the_menu() -> None:
    """MP-18: *434*3*79161234567# removes that participant; *434# opens the menu."""
    assert parse_ussd("*434*3*79161234567#", "mts") == RemoveMember(msisdn="79161234567")
    assert parse_ussd("*434#", "mts") == OpenSharedBundleMenu()


def test_mp_19_leave_or_disband() -> None:
    """MP-19: *434*0# leaves (or disbands, for the initiator: the service decides)."""
    assert parse_ussd("*434*0#", "mts") == LeaveGroup()


def test_mp_20_group_info() -> None:
    """MP-20: *434*2# asks for the group's information."""
    assert parse_ussd("*434*2#", "mts") == GroupInfo()


def test_tv_01_create_group() -> None:
    """TV-01: *985*2# creates a «Выгодно вместе» group."""
    assert parse_ussd("*985*2#", "tele2ru") == CreateTogetherGroup()


def test_tv_02_join_with_organizer_number_and_leave() -> None:
    """TV-02: *985*7XXXXXXXXXX*2# joins the organizer's group; *985*0*2# leaves."""
    assert parse_ussd("*985*79161234567*2#", "tele2ru") == JoinTogetherGroup(
        organizer_msisdn="79161234567"
    )
    assert parse_ussd("*985*0*2#", "tele2ru") == LeaveTogetherGroup()


def test_ts_02_my_menu() -> None:
    """TS-02: *123# opens Telenor My Menu."""
    assert parse_ussd("*123#", "telenor") == OpenMyMenu()


@pytest.mark.parametrize(("text", "profile", "command"), SEED_STRINGS)
def test_mp_05_tv_02_ts_02_format_gives_the_seed_string_back(
    text: str, profile: str, command: Command
) -> None:
    """MP-05, TV-02, TS-02: format_ussd writes each seed string exactly as printed."""
    assert format_ussd(command, profile) == text


# --- Refusals --------------------------------------------------------------------------------

REFUSALS = [
    # text, profile, reason, position
    ("*434*1*89161234567#", "mts", "msisdn_with_8", 7),
    ("*434*3*89161234567#", "mts", "msisdn_with_8", 7),
    ("*985*89161234567*2#", "tele2ru", "msisdn_with_8", 5),
    ("*434*1*9161234567#", "mts", "bad_msisdn", 7),
    ("*434*1*+79161234567#", "mts", "bad_msisdn", 7),
    ("*434*1*7916123456#", "mts", "bad_msisdn", 17),
    ("*434*1*79161234567", "mts", "bad_format", 18),
    ("434#", "mts", "bad_format", 0),
    ("*434**1#", "mts", "bad_format", 5),
    ("*434#1#", "mts", "bad_format", 5),
    ("*43a#", "mts", "bad_format", 3),
    ("", "mts", "empty", 0),
    ("*434*1 *79161234567#", "mts", "spaces_not_allowed", 6),
    (" *434#", "mts", "spaces_not_allowed", 0),
    ("*434#\n", "mts", "spaces_not_allowed", 5),
    ("*435#", "mts", "unknown_code", 1),
    ("*434*9#", "mts", "unknown_code", 5),
    ("*434*2*1#", "mts", "unknown_code", 6),
    ("*434*1*79161234567*5#", "mts", "unknown_code", 18),
    ("*434*3#", "mts", "missing_msisdn", 6),
    ("*985#", "tele2ru", "unknown_code", 4),
    ("*985*1#", "tele2ru", "unknown_code", 5),
    ("*985*79161234567#", "tele2ru", "bad_format", 16),
    ("*985*0#", "tele2ru", "bad_format", 6),
    ("*985*79161234567*3#", "tele2ru", "unknown_code", 17),
    ("*985*2*2#", "tele2ru", "unknown_code", 6),
    ("*123*5*3#", "telenor", "unknown_code", 4),
    ("*434#", "telenor", "unknown_code", 1),
    ("*123#", "tele2kz", "unknown_code", 1),
]


@pytest.mark.parametrize(("text", "profile", "reason", "position"), REFUSALS)
def test_mp_05_tv_02_ts_02_refusals_name_reason_and_position(
    text: str, profile: str, reason: str, position: int
) -> None:
    """MP-05, TV-02, TS-02: a bad string is refused with its reason at the first bad place."""
    error = _refusal(text, profile)
    assert (error.reason, error.position) == (reason, position)
    assert error.expected


def test_mp_05_leading_8_refusal_hints_without_the_eight() -> None:
    """MP-05: the msisdn_with_8 refusal says to write the number «без восьмерки»."""
    error = _refusal("*434*1*89161234567#", "mts")
    assert "без восьмерки" in error.expected
    assert "msisdn_with_8" in str(error) and "position 7" in str(error)


def test_mp_05_ussd_strings_take_other_decimal_digits() -> None:
    """MP-05: full-width digits in a UCS2 USSD string are digits (normalised to ASCII)."""
    assert parse_ussd("*４３４*1*７９１６１２３４５６７#", "mts") == InviteMember(
        msisdn="79161234567"
    )
    assert parse_ussd("*٤٣٤*٢#", "mts") == GroupInfo()


def test_mp_05_unknown_profile_is_a_usage_error() -> None:
    """MP-05: a profile SPEC §0 does not have is a caller's mistake, never a ParseError."""
    with pytest.raises(ParserUsageError):
        parse_ussd("*434#", "beeline")
    with pytest.raises(ParserUsageError):
        format_ussd(GroupInfo(), "telenor")
    with pytest.raises(ParserUsageError):
        format_ussd(
            TransferMinutes(recipient_msisdn="359898123456", destination="G", minutes=10),
            "telenor",
        )


# --- Answers inside a dialogue -----------------------------------------------------------------


def test_se_03_menu_choice_is_one_or_two_digits() -> None:
    """SE-03: a menu answer is an item number; whitespace around it is forgiven."""
    assert parse_menu_answer("5", "choice", "telenor") == MenuChoice(number=5)
    assert parse_menu_answer(" 12\n", "choice", "mts") == MenuChoice(number=12)
    assert parse_menu_answer("0", "choice", "mts") == MenuChoice(number=0)
    assert parse_menu_answer("３", "choice", "mts") == MenuChoice(number=3)


@pytest.mark.parametrize(
    ("text", "reason", "position"),
    [
        ("", "empty", 0),
        ("  ", "empty", 2),
        ("x", "not_a_number", 0),
        ("1a", "not_a_number", 1),
        ("1 2", "not_a_number", 1),
        ("01", "bad_choice", 0),
        ("100", "bad_choice", 0),
    ],
)
def test_se_03_bad_menu_choices_are_refused(text: str, reason: str, position: int) -> None:
    """SE-03: a non-number or a malformed item number is refused (the menu is re-shown)."""
    error = _answer_refusal(text, "choice")
    assert (error.reason, error.position) == (reason, position)


def test_se_03_choice_past_the_last_item_is_bad_choice() -> None:
    """SE-03: with max_choice, an item past the menu's last one is bad_choice."""
    assert parse_menu_answer("7", "choice", "telenor", max_choice=7) == MenuChoice(number=7)
    assert _answer_refusal("8", "choice", max_choice=7).reason == "bad_choice"


def test_se_05_phone_number_answer_uses_the_profile_typed_form() -> None:
    """SE-05: a number at a prompt is typed as on a handset of the profile."""
    assert parse_menu_answer("0898123456", "msisdn", "telenor") == PhoneNumberAnswer(
        msisdn="359898123456"
    )
    assert parse_menu_answer(" 79161234567 ", "msisdn", "mts") == PhoneNumberAnswer(
        msisdn="79161234567"
    )
    assert _answer_refusal("89161234567", "msisdn", "mts").reason == "msisdn_with_8"
    assert _answer_refusal("0898 123456", "msisdn").reason == "spaces_not_allowed"


def test_se_05_count_answer_is_up_to_nine_digits() -> None:
    """SE-05: a count is a decimal number of at most nine digits."""
    assert parse_menu_answer("500", "count", "mts") == CountAnswer(count=500)
    assert parse_menu_answer("007", "count", "mts") == CountAnswer(count=7)
    error = _answer_refusal("1234567890", "count", "mts")
    assert (error.reason, error.position) == ("count_out_of_range", 9)
    assert _answer_refusal("-3", "count", "mts").reason == "not_a_number"


def test_ts_03_minutes_answer_follows_the_time_share_rule() -> None:
    """TS-03: minutes typed at the My Menu prompt are 10 … 50 in steps of 10."""
    assert parse_menu_answer("30", "minutes", "telenor") == MinutesAnswer(minutes=30)
    assert _answer_refusal("35", "minutes").reason == "minutes_not_multiple_of_10"
    assert _answer_refusal("60", "minutes").reason == "minutes_out_of_range"
    assert _answer_refusal("5", "minutes").reason == "minutes_out_of_range"
    assert _answer_refusal("3O", "minutes").reason == "not_a_number"


def test_ts_02_destination_answer_by_item_or_letter() -> None:
    """TS-02: 1 is «За приятели» (F), 2 «мрежата на Теленор» (G); the letters work too."""
    friends = DestinationAnswer(destination=Destination.FRIENDS)
    network = DestinationAnswer(destination=Destination.NETWORK)
    assert parse_menu_answer("1", "destination", "telenor") == friends
    assert parse_menu_answer("2", "destination", "telenor") == network
    assert parse_menu_answer("g", "destination", "telenor") == network
    assert parse_menu_answer(" F ", "destination", "telenor") == friends
    assert _answer_refusal("3", "destination").reason == "bad_choice"
    assert _answer_refusal("X", "destination").reason == "bad_destination_letter"
    assert _answer_refusal("FG", "destination").reason == "bad_destination_letter"


def test_se_05_answers_format_back_to_what_is_typed() -> None:
    """SE-05: format_menu_answer writes what a subscriber types; answer_kind names the step."""
    answer = PhoneNumberAnswer(msisdn="359898123456")
    assert format_menu_answer(answer, "telenor") == "0898123456"
    assert answer_kind(answer) == "msisdn"
    assert format_menu_answer(DestinationAnswer(destination=Destination.NETWORK), "telenor") == "2"
    with pytest.raises(ParserUsageError):
        format_menu_answer(answer, "mts")  # a Bulgarian number is not typed in the MTS world
    with pytest.raises(ParserUsageError):
        answer_kind(GroupInfo())


def test_se_05_unknown_answer_kind_is_a_usage_error() -> None:
    """SE-05: an expect value the parser does not know is the caller's mistake."""
    with pytest.raises(ParserUsageError):
        parse_menu_answer("1", "colour", "mts")
    with pytest.raises(ParserUsageError):
        parse_menu_answer("1", "choice", "beeline")


def test_gw_05_parse_error_carries_its_fields_through_pickling() -> None:
    """GW-05: a refusal keeps reason, text, position and expected, even pickled (for logs and
    across processes)."""
    error = _refusal("*434*1*89161234567#", "mts")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.reason, copy.text, copy.position, copy.expected) == (
        error.reason,
        error.text,
        error.position,
        error.expected,
    )
    assert str(copy) == str(error)
