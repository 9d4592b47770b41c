"""Command values: frozen, keyword-only, validated, and declared per channel and profile."""

from __future__ import annotations

import attrs
import pytest

from parsers.commands import (
    ANSWER_CLASSES,
    COMMAND_CLASSES,
    AcceptInvitation,
    Command,
    CountAnswer,
    Destination,
    DestinationAnswer,
    GroupInfo,
    InviteMember,
    JoinTogetherGroup,
    MenuChoice,
    MinutesAnswer,
    PhoneNumberAnswer,
    RemoveMember,
    TransferMinutes,
    prevalidated_one,
    prevalidated_transfer,
)
from parsers.profiles import PROFILES


@pytest.mark.parametrize("cls", COMMAND_CLASSES, ids=lambda cls: cls.__name__)
def test_gw_05_every_command_is_a_frozen_keyword_only_value(cls: type[Command]) -> None:
    """GW-05: commands are frozen attrs values with keyword-only fields, dispatched by type."""
    assert cls.channel in ("ussd", "sms", "answer")
    assert cls.profiles and cls.profiles <= set(PROFILES)
    assert attrs.has(cls)
    assert all(field.kw_only for field in attrs.fields(cls))


def test_gw_05_commands_cannot_be_changed_or_built_positionally() -> None:
    """GW-05: a parsed command cannot be mutated, and fields are named at construction."""
    command = InviteMember(msisdn="79161234567")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        command.msisdn = "79160000000"  # type: ignore[misc]
    with pytest.raises(TypeError):
        InviteMember("79161234567")  # type: ignore[call-arg]


def test_gw_05_every_profile_has_commands_on_its_channels() -> None:
    """GW-05: the classes cover the seeds: USSD for mts/tele2ru/telenor, SMS for the others."""
    channels = {
        profile: {cls.channel for cls in COMMAND_CLASSES if profile in cls.profiles}
        for profile in PROFILES
    }
    assert channels == {
        "mts": {"ussd", "sms", "answer"},
        "tele2ru": {"ussd", "answer"},
        "tele2kz": {"sms", "answer"},
        "telenor": {"ussd", "sms", "answer"},
    }
    assert set(ANSWER_CLASSES) == {"choice", "msisdn", "count", "minutes", "destination"}


@pytest.mark.parametrize(
    "msisdn",
    [
        "89161234567",
        "9161234567",
        "+79161234567",
        "77011234567",
        79161234567,
        "７９１６１２３４５６７",
    ],
)
def test_mp_05_mp_18_members_are_russian_wire_msisdns(msisdn: object) -> None:
    """MP-05 / MP-18: InviteMember and RemoveMember hold 79XXXXXXXXX and nothing else."""
    for cls in (InviteMember, RemoveMember):
        with pytest.raises(ValueError):
            cls(msisdn=msisdn)  # type: ignore[arg-type]


def test_tv_02_organizer_is_a_russian_wire_msisdn() -> None:
    """TV-02: JoinTogetherGroup holds the organizer's wire MSISDN."""
    assert JoinTogetherGroup(organizer_msisdn="79161234567").organizer_msisdn == "79161234567"
    with pytest.raises(ValueError):
        JoinTogetherGroup(organizer_msisdn="89161234567")


@pytest.mark.parametrize("suffix", ["", "45a7", "123456789012", " 4567", 4567])
def test_mp_07_suffix_is_one_to_eleven_ascii_digits(suffix: object) -> None:
    """MP-07: the suffix of «ДА#XXXX» is None or 1 … 11 digits."""
    assert AcceptInvitation().suffix is None
    assert AcceptInvitation(suffix="4567").suffix == "4567"
    with pytest.raises(ValueError):
        AcceptInvitation(suffix=suffix)  # type: ignore[arg-type]


@pytest.mark.parametrize("minutes", [0, 5, 35, 60, 100, -10, True, 30.0, "30"])
def test_ts_03_transfer_minutes_refuses_counts_outside_the_rule(minutes: object) -> None:
    """TS-03: minutes are an int from 10 to 50, a multiple of 10 (a bool is not an int)."""
    with pytest.raises(ValueError):
        TransferMinutes(recipient_msisdn="359898123456", destination="G", minutes=minutes)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        MinutesAnswer(minutes=minutes)  # type: ignore[arg-type]


def test_ts_01_transfer_minutes_holds_the_bulgarian_wire_number_and_a_destination() -> None:
    """TS-01: the recipient is 3598XXXXXXXX; the letter converts to a Destination."""
    command = TransferMinutes(recipient_msisdn="359898123456", destination="F", minutes=20)
    assert command.destination is Destination.FRIENDS
    with pytest.raises(ValueError):
        TransferMinutes(recipient_msisdn="0898123456", destination="F", minutes=20)
    with pytest.raises(ValueError):
        TransferMinutes(recipient_msisdn="359898123456", destination="X", minutes=20)


def test_se_03_se_05_answers_validate_their_ranges() -> None:
    """SE-03 / SE-05: choices are 0 … 99, counts 0 … 999 999 999, numbers wire MSISDNs."""
    assert MenuChoice(number=99).number == 99
    assert CountAnswer(count=999_999_999).count == 999_999_999
    assert PhoneNumberAnswer(msisdn="77011234567").msisdn == "77011234567"
    assert DestinationAnswer(destination="G").destination is Destination.NETWORK
    for build in (
        lambda: MenuChoice(number=100),
        lambda: MenuChoice(number=-1),
        lambda: CountAnswer(count=10**9),
        lambda: PhoneNumberAnswer(msisdn="0898123456"),
        lambda: DestinationAnswer(destination="F,"),
    ):
        with pytest.raises(ValueError):
            build()


def test_ts_01_prevalidated_constructors_build_equal_values() -> None:
    """TS-01: the fast paths' constructors give values equal to validated ones."""
    built = prevalidated_transfer("359898123456", Destination.NETWORK, 30)
    assert built == TransferMinutes(recipient_msisdn="359898123456", destination="G", minutes=30)
    assert hash(built) == hash(
        TransferMinutes(recipient_msisdn="359898123456", destination="G", minutes=30)
    )
    attrs.validate(built)
    invite = prevalidated_one(InviteMember, "msisdn")("79161234567")
    assert invite == InviteMember(msisdn="79161234567")
    assert repr(invite) == "InviteMember(msisdn='79161234567')"
    commands: list[Command] = [GroupInfo(), GroupInfo(), invite]
    assert commands[0] == commands[1] and commands[0] != commands[2]
