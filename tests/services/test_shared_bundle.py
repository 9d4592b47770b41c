"""Tests of services/shared_bundle.py: MTS «Общий пакет», MP-01 … MP-22, through the service API
on a World driven by task.Clock (and through the directory's handlers where the phone matters)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from twisted.internet import task

from parsers import SHORT_NUMBERS, ParseError, parse_sms
from parsers.commands import (
    AcceptInvitation,
    DeclineInvitation,
    GroupInfo,
    InviteMember,
    LeaveGroup,
    RemoveMember,
)
from services import charging
from services import shared_bundle as sb
from services.clock import DAY, HOUR, SimClock, add_months
from services.dispatch import Context, Outcome, ServiceDirectory
from services.model import FeeStatus, InvalidValue, Period, UnknownField, UsageKind, WrongType
from services.outbox import Reply, check_templates, render, render_template
from services.profiles import ProfileError, Profiles, load_profile, load_profiles
from services.store import SqliteStore
from services.world import World

START = 1_700_000_000  # 15.11.2023 01:13 in Moscow
PROFILES: Profiles = load_profiles()
MTS = PROFILES["mts"]
INITIATOR = "79160000001"
OTHER_INITIATOR = "79160000002"
SAME_ENDING = "79260000001"  # ends like INITIATOR: ДА#0001 is ambiguous
AUTO = "79161234567"  # «Супер МТС», no options: joins at once (MP-06)
AUTO2 = "79160000011"
INVITED = "79160000015"  # «Smart»: SMS invitation
WITH_BIT = "79160000013"


def make_world() -> tuple[World, ServiceDirectory]:
    source = task.Clock()
    source.advance(START)
    world = World(SqliteStore(), PROFILES, SimClock(source))
    directory = ServiceDirectory()
    sb.install(world, directory)
    return world, directory


@pytest.fixture
def setup() -> tuple[World, ServiceDirectory]:
    return make_world()


@pytest.fixture
def world(setup: tuple[World, ServiceDirectory]) -> World:
    return setup[0]


def add(world: World, msisdn: str, tariff: str, *, balance: int = 100_000, **kw: Any) -> None:
    world.create_subscriber(
        msisdn=msisdn, profile="mts", tariff=tariff, now=world.now(), balance=balance, **kw
    )


def group_ready(world: World, *participants: str, balance: int = 200_000) -> None:
    """An initiator on «Наш Smart» with the given auto-joining participants."""
    add(world, INITIATOR, "nash_smart", balance=balance)
    for msisdn in participants:
        if not world.exists(msisdn):
            add(world, msisdn, "super_mts")
        sb.invite(world, INITIATOR, msisdn, now=world.now())


def templates(replies: Iterable[Reply], to: str | None = None) -> list[str]:
    return [r.template for r in replies if to is None or r.to == to]


def text(outcome: Outcome) -> str:
    assert outcome.screen is not None
    return render_template(MTS, outcome.screen.template, outcome.screen.params)


def use(world: World, msisdn: str, kind: str, amount: int, **kw: Any) -> charging.UsageResult:
    return charging.record_usage(world, msisdn, kind, amount, now=world.now(), **kw)


def remaining(world: World, msisdn: str, kind: UsageKind) -> int:
    return sum(p.remaining for p in world.packages(msisdn, now=world.now()) if p.kind is kind)


def fee_entries(world: World, msisdn: str = INITIATOR) -> list[int]:
    return [
        -e.amount for e in world.ledger(msisdn) if e.reason == "fee" and e.reference == sb.FEE_CODE
    ]


def context(msisdn: str, world: World, channel: str = "ussd") -> Context:
    number = "434" if channel == "sms" else "*434#"
    return Context(msisdn=msisdn, profile="mts", now=world.now(), channel=channel,  # type: ignore[arg-type]
                   service_number=number)  # fmt: skip


# -- the facts and the wiring ----------------------------------------------------------------------


def test_mp_07_invitations_come_from_the_number_the_sms_parser_listens_on() -> None:
    """MP-07: «ДА» goes to the number the invitation came from: fixture and parser agree (434)."""
    settings = sb.read_settings(MTS)
    assert settings.sms_number == SHORT_NUMBERS["mts"] == MTS.short_numbers["shared_bundle"]
    assert isinstance(parse_sms("ДА#4567", settings.sms_number, "mts"), AcceptInvitation)
    assert check_templates(PROFILES) == []


def test_the_facts_schema_refuses_unknown_fields_and_dangling_codes(tmp_path: Any) -> None:
    """A misspelt or dangling fact in services.shared_bundle is refused at start with its path."""
    source = MTS.source
    original = open(source, encoding="utf-8").read()
    for old, new, reason in (
        ("    suffix_digits: 4\n", "    suffix_digits: 4\n    colour: red\n", "colour: unknown"),
        ("initiator_tariffs: [nash_smart]", "initiator_tariffs: [nash]", "unknown tariff"),
        ("roaming_option: zabugorishche", "roaming_option: bit", "no roaming terms"),
        ("    sms_number: '434'", "    sms_number: '111'", "the SMS parser takes"),
    ):
        assert old in original
        profile = load_profile(original.replace(old, new), source, expected_name="mts")
        with pytest.raises(ProfileError, match=reason):
            sb.read_settings(profile)


def test_install_registers_the_commands_actions_and_number(
    setup: tuple[World, ServiceDirectory],
) -> None:
    """The dialogue engine's four actions and the six commands of MP-05 … MP-20 are registered."""
    _, directory = setup
    assert directory.actions("mts") == {
        "shared_bundle.invite", "shared_bundle.remove", "shared_bundle.leave",
        "shared_bundle.info",
    }  # fmt: skip
    for command in (InviteMember(msisdn=AUTO), RemoveMember(msisdn=AUTO), LeaveGroup(),
                    GroupInfo(), AcceptInvitation(), DeclineInvitation()):  # fmt: skip
        assert directory.command_handler("mts", command) is not None
    assert directory.sms_numbers("mts") == {"434"}


def test_the_sms_grammar_refusals_have_reply_texts() -> None:
    """Every ParseError reason of the SMS to 434 and 2221 has a text in its profile."""
    reasons = set()
    for sms, number, profile in (
        ("ДАЖЕ", "434", "mts"), ("ДА 4567", "434", "mts"), ("ДА#45a", "434", "mts"),
        ("", "434", "mts"), ("2", "2221", "tele2kz"), ("", "2221", "tele2kz"),
    ):  # fmt: skip
        with pytest.raises(ParseError) as caught:
            parse_sms(sms, number, profile)
        reasons.add(caught.value.reason)
        assert f"parse_error.{caught.value.reason}" in PROFILES[profile].templates
    assert {"unknown_command", "bad_separator", "bad_suffix", "empty"} <= reasons


# -- eligibility (MP-01 … MP-04) -------------------------------------------------------------------


def test_mp_01_only_nash_smart_subscribers_can_invite(world: World) -> None:
    """MP-01: a «Smart» subscriber's invitation is refused with its reason."""
    add(world, INVITED, "smart")
    add(world, AUTO, "super_mts")
    with pytest.raises(sb.InitiatorTariff):
        sb.invite(world, INVITED, AUTO, now=world.now())
    assert sb.group_of(world, AUTO) is None


@pytest.mark.parametrize(
    "tariff",
    ["smart_bezlimitishche_052016", "smart_bezlimitishche_092016",
     "smart_bezlimitishche_plus_092016", "hype", "dlya_plansheta"],
)  # fmt: skip
def test_mp_02_excluded_tariffs_cannot_be_participants(world: World, tariff: str) -> None:
    """MP-02: the five excluded tariffs are refused, the reply names the tariff."""
    add(world, INITIATOR, "nash_smart")
    add(world, "79160000021", tariff)
    with pytest.raises(sb.ParticipantTariff) as caught:
        sb.invite(world, INITIATOR, "79160000021", now=world.now())
    assert caught.value.params["tariff"] == MTS.tariffs[tariff].name
    assert not sb.invitations(world, invitee="79160000021")


def test_mp_03_other_region_and_non_mts_numbers_are_refused(world: World) -> None:
    """MP-03: a Санкт-Петербург number and a number outside MTS cannot be invited."""
    add(world, INITIATOR, "nash_smart")
    add(world, "79160000031", "super_mts", region="spb")
    with pytest.raises(sb.OtherRegion):
        sb.invite(world, INITIATOR, "79160000031", now=world.now())
    with pytest.raises(sb.NotMtsSubscriber):
        sb.invite(world, INITIATOR, "79169999999", now=world.now())
    world.create_subscriber(msisdn="77010000011", profile="tele2kz", tariff="bez_abonplaty",
                            now=world.now())  # fmt: skip
    with pytest.raises(sb.NotMtsSubscriber):
        sb.invite(world, INITIATOR, "77010000011", now=world.now())


def test_mp_03_a_group_holds_six_the_sixth_participant_is_refused(world: World) -> None:
    """MP-03: the initiator and five participants; a sixth invitation is refused."""
    five = [f"7916000010{i}" for i in range(5)]
    group_ready(world, *five)
    group = sb.group_of(world, INITIATOR)
    assert group is not None and group.participants == tuple(five)
    add(world, "79160000199", "super_mts")
    with pytest.raises(sb.GroupFull) as caught:
        sb.invite(world, INITIATOR, "79160000199", now=world.now())
    assert text(sb._outcome(caught.value.screen())).startswith("В группе уже 6 абонентов")


def test_mp_03_the_last_place_goes_to_whoever_accepts_first(world: World) -> None:
    """MP-03: two invitees answer for the last place at the same instant; one is refused."""
    group_ready(world, *[f"7916000010{i}" for i in range(4)])
    add(world, INVITED, "smart")
    add(world, WITH_BIT, "super_mts", options=["bit"])
    sb.invite(world, INITIATOR, INVITED, now=world.now())
    sb.invite(world, INITIATOR, WITH_BIT, now=world.now())
    first = sb.accept_invitation(world, INVITED, now=world.now())
    second = sb.accept_invitation(world, WITH_BIT, now=world.now())
    assert "shared_bundle.joined_participant" in templates(first.replies, INVITED)
    assert second.screen is not None and second.screen.template == sb.GroupFull.template()
    group = sb.group_of(world, INITIATOR)
    assert group is not None and len(group.participants) == 5
    assert sb.group_of(world, WITH_BIT) is None


def test_mp_04_one_group_per_subscriber(world: World) -> None:
    """MP-04: a member cannot be invited elsewhere; a participant cannot create a group."""
    group_ready(world, AUTO)
    add(world, OTHER_INITIATOR, "nash_smart")
    with pytest.raises(sb.InviteeInGroup):
        sb.invite(world, OTHER_INITIATOR, AUTO, now=world.now())
    with pytest.raises(sb.InviteeInGroup):
        sb.invite(world, OTHER_INITIATOR, INITIATOR, now=world.now())
    add(world, "79160000101", "nash_smart")
    sb.invite(world, INITIATOR, "79160000101", now=world.now())  # a «Наш Smart» participant
    sb.accept_invitation(world, "79160000101", now=world.now())
    add(world, AUTO2, "super_mts")
    with pytest.raises(sb.InviterIsParticipant):
        sb.invite(world, "79160000101", AUTO2, now=world.now())


def test_mp_04_joining_one_group_annuls_the_other_invitations(world: World) -> None:
    """MP-04: accepting one invitation cancels the others, and the joiner's own invitations."""
    add(world, INITIATOR, "nash_smart")
    add(world, OTHER_INITIATOR, "nash_smart")
    add(world, INVITED, "smart")
    sb.invite(world, INITIATOR, INVITED, now=world.now())
    sb.invite(world, OTHER_INITIATOR, INVITED, now=world.now())
    sb.accept_invitation(world, INVITED, now=world.now(), suffix="0001")
    assert sb.invitations(world, invitee=INVITED) == []
    statuses = {
        i.initiator: i.status for i in sb.invitations(world, invitee=INVITED, pending=False)
    }
    assert statuses == {INITIATOR: "accepted", OTHER_INITIATOR: "cancelled"}


# -- inviting and answering (MP-05 … MP-10) --------------------------------------------------------


def test_mp_05_invite_by_ussd_command_sends_an_sms_invitation_from_434(
    setup: tuple[World, ServiceDirectory],
) -> None:
    """MP-05: *434*1*7…# → a screen for the initiator and an SMS invitation from 434."""
    world, directory = setup
    add(world, INITIATOR, "nash_smart")
    add(world, INVITED, "smart")
    command = InviteMember(msisdn=INVITED)
    handler = directory.command_handler("mts", command)
    assert handler is not None
    outcome = handler(context(INITIATOR, world), command)
    assert outcome.screen is not None and outcome.screen.end
    assert text(outcome).startswith(f"Приглашение отправлено абоненту {INVITED}")
    (sms,) = outcome.replies
    assert (sms.to, sms.sender, sms.template) == (INVITED, "434", "shared_bundle.invitation")
    words = render(sms, PROFILES)
    assert f"Абонент {INITIATOR} приглашает" in words and "ДА#0001" in words


def test_mp_05_the_menu_actions_invite_and_refuse_a_bad_number(
    setup: tuple[World, ServiceDirectory],
) -> None:
    """MP-05: *434# → 1 → number reaches shared_bundle.invite; a bad number gets its reason."""
    world, directory = setup
    add(world, INITIATOR, "nash_smart")
    add(world, INVITED, "smart")
    action = directory.action("mts", "shared_bundle.invite")
    assert templates(action(context(INITIATOR, world), {"msisdn": INVITED}).replies) == [
        "shared_bundle.invitation"
    ]
    bad = action(context(INITIATOR, world), {"msisdn": "89160000015"})
    assert bad.screen is not None and bad.screen.template == "parse_error.bad_msisdn"
    refused = action(context(INITIATOR, world), {"msisdn": INVITED})
    assert refused.screen is not None and refused.screen.template == sb.AlreadyInvited.template()


def test_mp_05_the_self_care_api_invites_and_checks_its_input(world: World) -> None:
    """MP-05: POST …/invitations invites; bad numbers, unknown fields get stable codes."""
    add(world, INITIATOR, "nash_smart")
    add(world, AUTO, "super_mts")
    body, replies = sb.api_invite(world, {"msisdn": INITIATOR}, {"msisdn": "+7 916 123-45-67"},
                                  world.now())  # fmt: skip
    assert body == {"result": "joined", "invitee": AUTO, "message": f"Абонент {AUTO} "
                    "присоединился к вашей группе «Общий пакет»."}  # fmt: skip
    assert "shared_bundle.joined_initiator" in templates(replies, INITIATOR)
    with pytest.raises(InvalidValue):
        sb.api_invite(world, {"msisdn": INITIATOR}, {"msisdn": "89161234567"}, world.now())
    with pytest.raises(UnknownField):
        sb.api_invite(world, {"msisdn": INITIATOR}, {"number": AUTO}, world.now())
    with pytest.raises(WrongType):
        sb.api_invite(world, {"msisdn": INITIATOR}, {"msisdn": 79161234567}, world.now())
    view, _ = sb.api_view(world, {"msisdn": INITIATOR}, {}, world.now())
    assert view["group"]["participants"][0]["msisdn"] == AUTO  # type: ignore[index]


def test_mp_06_no_fee_and_no_internet_option_joins_at_once(world: World) -> None:
    """MP-06: «Супер МТС» without options joins at once; with «БИТ» or on «Smart» it is invited."""
    add(world, INITIATOR, "nash_smart")
    add(world, AUTO, "super_mts")
    add(world, WITH_BIT, "super_mts", options=["bit"])
    add(world, INVITED, "smart")
    joined = sb.invite(world, INITIATOR, AUTO, now=world.now())
    assert joined.screen is not None and joined.screen.template == "shared_bundle.joined_at_once"
    assert sb.member(world, AUTO) is not None
    for invitee in (WITH_BIT, INVITED):
        outcome = sb.invite(world, INITIATOR, invitee, now=world.now())
        assert templates(outcome.replies) == ["shared_bundle.invitation"]
        assert sb.member(world, invitee) is None


def test_mp_07_da_accepts_and_costs_nothing(setup: tuple[World, ServiceDirectory]) -> None:
    """MP-07: «ДА» to 434 joins; the answer is free (no ledger entry for the invitee)."""
    world, directory = setup
    add(world, INITIATOR, "nash_smart")
    add(world, INVITED, "smart")
    sb.invite(world, INITIATOR, INVITED, now=world.now())
    entries = len(world.ledger(INVITED))
    command = parse_sms("ДА", "434", "mts")
    handler = directory.command_handler("mts", command)
    assert handler is not None
    outcome = handler(context(INVITED, world, "sms"), command)
    assert outcome.screen is None
    assert templates(outcome.replies, INVITED)[0] == "shared_bundle.joined_participant"
    assert templates(outcome.replies, INITIATOR)[0] == "shared_bundle.joined_initiator"
    assert len(world.ledger(INVITED)) == entries


def test_mp_07_a_suffix_picks_one_of_several_invitations(world: World) -> None:
    """MP-07: with two inviters pending, «ДА#XXXX» picks the one whose number ends so."""
    add(world, INITIATOR, "nash_smart")
    add(world, OTHER_INITIATOR, "nash_smart")
    add(world, INVITED, "smart")
    sb.invite(world, INITIATOR, INVITED, now=world.now())
    sb.invite(world, OTHER_INITIATOR, INVITED, now=world.now())
    outcome = sb.accept_invitation(world, INVITED, now=world.now(), suffix="0002")
    assert outcome.screen is None
    group = sb.group_of(world, INVITED)
    assert group is not None and group.initiator == OTHER_INITIATOR


def test_mp_07_bare_da_with_several_invitations_asks_for_the_suffix(world: World) -> None:
    """MP-07: «ДА» with two pending gets a reply listing both inviters with their suffixes."""
    add(world, INITIATOR, "nash_smart")
    add(world, OTHER_INITIATOR, "nash_smart")
    add(world, INVITED, "smart")
    sb.invite(world, INITIATOR, INVITED, now=world.now())
    sb.invite(world, OTHER_INITIATOR, INVITED, now=world.now())
    outcome = sb.accept_invitation(world, INVITED, now=world.now())
    words = text(outcome)
    assert "несколько приглашений" in words
    assert f"{INITIATOR} — ДА#0001; {OTHER_INITIATOR} — ДА#0002" in words
    assert sb.member(world, INVITED) is None


def test_mp_07_inviters_ending_alike_are_told_apart_by_longer_suffixes(world: World) -> None:
    """MP-07: 79160000001 and 79260000001 share ДА#0001; the reply offers ДА#160000001 etc."""
    add(world, INITIATOR, "nash_smart")
    add(world, SAME_ENDING, "nash_smart")
    add(world, INVITED, "smart")
    sb.invite(world, INITIATOR, INVITED, now=world.now())
    sb.invite(world, SAME_ENDING, INVITED, now=world.now())
    ambiguous = sb.accept_invitation(world, INVITED, now=world.now(), suffix="0001")
    assert ambiguous.screen is not None
    assert ambiguous.screen.template == "shared_bundle.ambiguous_suffix"
    assert f"{INITIATOR} — ДА#160000001; {SAME_ENDING} — ДА#260000001" in text(ambiguous)
    sb.accept_invitation(world, INVITED, now=world.now(), suffix="260000001")
    group = sb.group_of(world, INVITED)
    assert group is not None and group.initiator == SAME_ENDING


def test_mp_07_an_unknown_or_ambiguous_suffix_lists_the_inviters(world: World) -> None:
    """MP-07: ДА#9999 (nobody) and ДА#0001 (two numbers) get replies listing the inviters."""
    add(world, INITIATOR, "nash_smart")
    add(world, SAME_ENDING, "nash_smart")
    add(world, INVITED, "smart")
    sb.invite(world, INITIATOR, INVITED, now=world.now())
    sb.invite(world, SAME_ENDING, INVITED, now=world.now())
    unknown = sb.accept_invitation(world, INVITED, now=world.now(), suffix="9999")
    assert unknown.screen is not None and unknown.screen.template == "shared_bundle.unknown_suffix"
    assert INITIATOR in text(unknown) and SAME_ENDING in text(unknown)
    ambiguous = sb.decline_invitation(world, INVITED, now=world.now(), suffix="0001")
    assert ambiguous.screen is not None
    assert ambiguous.screen.template == "shared_bundle.ambiguous_suffix"
    assert "НЕТ#" in text(ambiguous)
    assert len(sb.invitations(world, invitee=INVITED)) == 2


def test_mp_07_da_without_an_invitation_is_told_so(setup: tuple[World, ServiceDirectory]) -> None:
    """MP-07: «ДА» from someone never invited gets the no-invitation reply, not an error."""
    world, directory = setup
    add(world, INVITED, "smart")
    handler = directory.command_handler("mts", AcceptInvitation())
    assert handler is not None
    outcome = handler(context(INVITED, world, "sms"), AcceptInvitation())
    assert outcome.screen is not None and outcome.screen.template == sb.NoInvitation.template()


def test_mp_07_the_api_accepts_an_invitation_by_the_inviters_number(world: World) -> None:
    """MP-07: «Принять приглашение» in the self-care API names the inviter."""
    add(world, INITIATOR, "nash_smart")
    add(world, INVITED, "smart")
    sb.invite(world, INITIATOR, INVITED, now=world.now())
    body, replies = sb.api_accept(world, {"msisdn": INVITED, "inviter": INITIATOR}, {},
                                  world.now())  # fmt: skip
    assert body["result"] == "joined"  # type: ignore[index]
    assert "shared_bundle.joined_initiator" in templates(replies, INITIATOR)


def test_mp_08_net_declines_and_tells_the_initiator(setup: tuple[World, ServiceDirectory]) -> None:
    """MP-08: «НЕТ» declines; the initiator is told; the API declines by inviter."""
    world, directory = setup
    add(world, INITIATOR, "nash_smart")
    add(world, OTHER_INITIATOR, "nash_smart")
    add(world, INVITED, "smart")
    sb.invite(world, INITIATOR, INVITED, now=world.now())
    sb.invite(world, OTHER_INITIATOR, INVITED, now=world.now())
    command = parse_sms("НЕТ#0002", "434", "mts")
    handler = directory.command_handler("mts", command)
    assert handler is not None
    outcome = handler(context(INVITED, world, "sms"), command)
    assert templates(outcome.replies, OTHER_INITIATOR) == ["shared_bundle.declined_initiator"]
    body, replies = sb.api_decline(world, {"msisdn": INVITED, "inviter": INITIATOR}, {},
                                   world.now())  # fmt: skip
    assert body["result"] == "declined"  # type: ignore[index]
    assert templates(replies, INITIATOR) == ["shared_bundle.declined_initiator"]
    assert sb.invitations(world, invitee=INVITED) == []


def test_mp_09_an_invitation_expires_after_one_hour(world: World) -> None:
    """MP-09: at 59:59 «ДА» still works elsewhere; after the hour it is annulled, initiator told."""
    add(world, INITIATOR, "nash_smart")
    add(world, INVITED, "smart")
    add(world, WITH_BIT, "super_mts", options=["bit"])
    sb.invite(world, INITIATOR, INVITED, now=world.now())
    sb.invite(world, INITIATOR, WITH_BIT, now=world.now())
    assert world.advance(HOUR - 1) == []
    sb.accept_invitation(world, WITH_BIT, now=world.now())
    replies = world.advance(1)
    assert [(r.to, r.template) for r in replies] == [
        (INITIATOR, "shared_bundle.invitation_expired")
    ]
    with pytest.raises(sb.NoInvitation):
        sb.accept_invitation(world, INVITED, now=world.now())
    sb.invite(world, INITIATOR, INVITED, now=world.now())  # the initiator must invite again
    assert len(sb.invitations(world, invitee=INVITED)) == 1


def test_mp_10_the_first_join_creates_the_group_and_shares_the_packages(world: World) -> None:
    """MP-10: the inviter becomes initiator, its packages the group's; both confirmed by SMS."""
    add(world, INITIATOR, "nash_smart")
    add(world, INVITED, "smart")
    sb.invite(world, INITIATOR, INVITED, now=world.now())
    assert sb.group_of(world, INITIATOR) is None
    outcome = sb.accept_invitation(world, INVITED, now=world.now())
    group = sb.group_of(world, INITIATOR)
    assert group is not None and group.initiator == INITIATOR
    assert group.participants == (INVITED,)
    assert templates(outcome.replies, INITIATOR)[0] == "shared_bundle.joined_initiator"
    assert templates(outcome.replies, INVITED)[0] == "shared_bundle.joined_participant"
    view = sb.view_group(world, INITIATOR, now=world.now())
    assert isinstance(view, sb.InitiatorView)
    assert {(p.kind, p.size) for p in view.packages} == {
        (UsageKind.DATA, 15360), (UsageKind.VOICE, 600), (UsageKind.SMS, 600)
    }  # fmt: skip
    assert world.get(INITIATOR).has_option("shared_bundle_initiator")
    assert world.get(INVITED).has_option("shared_bundle_participant")


# -- consumption (MP-11 … MP-16) -------------------------------------------------------------------


def test_mp_11_minutes_and_sms_are_shared_with_no_priority(world: World) -> None:
    """MP-11: participant and initiator draw on the same minutes and SMS."""
    group_ready(world, AUTO)
    result = use(world, AUTO, "voice", 30)
    assert result.paid_by == ((f"shared_bundle:{INITIATOR}", 30),) and result.billed == 0
    use(world, INITIATOR, "voice", 20)
    use(world, AUTO, "sms", 5)
    assert remaining(world, INITIATOR, UsageKind.VOICE) == 550
    assert remaining(world, INITIATOR, UsageKind.SMS) == 595


def test_mp_11_internet_goes_to_participants_in_portions_of_100_mb(world: World) -> None:
    """MP-11: 1 MB used takes a 100 MB portion from the pool; the rest of it stays the user's."""
    group_ready(world, AUTO)
    use(world, AUTO, "data", 1)
    assert remaining(world, INITIATOR, UsageKind.DATA) == 15360 - 100
    use(world, AUTO, "data", 99)
    assert remaining(world, INITIATOR, UsageKind.DATA) == 15360 - 100
    use(world, AUTO, "data", 150)
    assert remaining(world, INITIATOR, UsageKind.DATA) == 15360 - 300
    # the initiator spends the pool; the participant's portion is still its own
    sb.set_extras(world, INITIATOR, False, now=world.now())
    use(world, INITIATOR, "data", 15360 - 300)
    last = use(world, AUTO, "data", 50)
    assert last.refused == 0 and last.paid_by == ((f"shared_bundle:{INITIATOR}", 50),)
    assert use(world, AUTO, "data", 1).refused == 1


def test_mp_12_a_minute_limit_sends_an_sms_and_the_rest_is_billed_by_the_own_tariff(
    world: World,
) -> None:
    """MP-12: over a 10-minute limit the participant is told and pays by «Супер МТС»."""
    group_ready(world, AUTO)
    sb.set_personal_limits(world, INITIATOR, AUTO, {"voice": 10}, now=world.now())
    result = use(world, AUTO, "voice", 15)
    assert result.paid_by == ((f"shared_bundle:{INITIATOR}", 10), ("tariff", 5))
    assert result.billed == 5 * 290
    assert "shared_bundle.limit_reached.voice" in templates(result.replies, AUTO)
    again = use(world, AUTO, "voice", 1)
    assert again.paid_by == (("tariff", 1),) and again.replies == ()
    # the initiator itself may use the whole package
    assert use(world, INITIATOR, "voice", 590).paid_by[0][1] == 590


def test_mp_12_an_internet_limit_suspends_and_raising_it_restores(world: World) -> None:
    """MP-12: internet stops at the limit with an SMS; raising the limit restores it."""
    group_ready(world, AUTO)
    sb.set_personal_limits(world, INITIATOR, AUTO, {"data": 150}, now=world.now())
    first = use(world, AUTO, "data", 200)
    assert first.refused == 50 and first.refusal == "personal_limit"
    assert "shared_bundle.limit_reached.data" in templates(first.replies, AUTO)
    assert remaining(world, INITIATOR, UsageKind.DATA) == 15360 - 150
    raised = sb.set_personal_limits(world, INITIATOR, AUTO, {"data": 500}, now=world.now())
    assert "shared_bundle.limit_restored" in templates(raised.replies, AUTO)
    assert use(world, AUTO, "data", 50).refused == 0
    cleared = sb.set_personal_limits(world, INITIATOR, AUTO, {"data": None}, now=world.now())
    assert "shared_bundle.limit_restored" not in templates(cleared.replies)


def test_mp_12_limits_are_set_only_by_the_initiator_on_its_participants(world: World) -> None:
    """MP-12: a participant cannot set limits; a stranger is not a participant; values checked."""
    group_ready(world, AUTO, AUTO2)
    with pytest.raises(sb.NotInitiator):
        sb.set_personal_limits(world, AUTO, AUTO2, {"voice": 1}, now=world.now())
    with pytest.raises(sb.NotParticipant):
        sb.set_personal_limits(world, INITIATOR, INITIATOR, {"voice": 1}, now=world.now())
    with pytest.raises(InvalidValue):
        sb.set_personal_limits(world, INITIATOR, AUTO, {"voice": -1}, now=world.now())
    with pytest.raises(UnknownField):
        sb.set_personal_limits(world, INITIATOR, AUTO, {"mms": 1}, now=world.now())
    body, replies = sb.api_limits(world, {"msisdn": INITIATOR, "participant": AUTO},
                                  {"sms": 20}, world.now())  # fmt: skip
    assert body["limits"] == {"data": None, "voice": None, "sms": 20}  # type: ignore[index]
    assert templates(replies, AUTO) == ["shared_bundle.limits_changed"]


def test_mp_13_own_minutes_after_the_shared_ones_own_internet_suspended(world: World) -> None:
    """MP-13: own minutes pay after the shared limit; own internet waits until leaving."""
    group_ready(world)
    add(world, "79160000014", "super_mts", options=["internet_mini"])
    sb.invite(world, INITIATOR, "79160000014", now=world.now())
    sb.accept_invitation(world, "79160000014", now=world.now())
    world.grant_package("79160000014", kind="voice", amount=50, now=world.now(), valid_until=None)
    sb.set_personal_limits(world, INITIATOR, "79160000014", {"voice": 10}, now=world.now())
    call = use(world, "79160000014", "voice", 30)
    assert [n for _, n in call.paid_by] == [10, 20] and call.paid_by[1][0].startswith("package:")
    own_data = remaining(world, "79160000014", UsageKind.DATA)
    use(world, "79160000014", "data", 10)
    assert remaining(world, "79160000014", UsageKind.DATA) == own_data
    sb.leave_group(world, "79160000014", now=world.now())
    after = use(world, "79160000014", "data", 10)
    assert after.paid_by[0][0].startswith("package:")
    assert remaining(world, "79160000014", UsageKind.DATA) == own_data - 10


def test_mp_14_an_extra_package_is_bought_for_the_initiator_and_shared(world: World) -> None:
    """MP-14: the shared internet spent, one extra 1 GB is bought (150 ₽) and shared."""
    group_ready(world, AUTO)
    balance = world.get(INITIATOR).balance
    result = use(world, INITIATOR, "data", 15360 + 10)
    assert result.refused == 0
    assert templates(result.replies, INITIATOR) == ["shared_bundle.extra_bought"]
    assert world.get(INITIATOR).balance == balance - 15000
    extra = [p for p in world.packages(INITIATOR) if p.source == sb.EXTRA_SOURCE]
    assert [(p.initial, p.remaining) for p in extra] == [(1024, 1014)]
    assert use(world, AUTO, "data", 100).refused == 0
    assert remaining(world, INITIATOR, UsageKind.DATA) == 1014 - 100


def test_mp_14_declined_extras_leave_everyone_without_internet(world: World) -> None:
    """MP-14/MP-15: extras declined — the spent internet suspends all; everyone gets an SMS."""
    group_ready(world, AUTO, AUTO2)
    sb.set_extras(world, INITIATOR, False, now=world.now())
    result = use(world, AUTO, "data", 15360 + 5)
    assert result.refused == 5 and result.refusal == "shared_internet_exhausted"
    told = {r.to for r in result.replies if r.template == "shared_bundle.exhausted.data"}
    assert told == {INITIATOR, AUTO, AUTO2}
    assert not [p for p in world.packages(INITIATOR) if p.source == sb.EXTRA_SOURCE]
    later = use(world, INITIATOR, "data", 1)
    assert later.refused == 1 and templates(later.replies) == ["shared_bundle.no_shared_internet"]


def test_mp_15_spent_shared_minutes_tell_every_member_then_own_tariffs(world: World) -> None:
    """MP-15: the last shared minute sends an SMS to all; later calls go to own tariffs."""
    group_ready(world, AUTO, AUTO2)
    use(world, INITIATOR, "voice", 590)
    result = use(world, AUTO, "voice", 15)
    assert result.paid_by == ((f"shared_bundle:{INITIATOR}", 10), ("tariff", 5))
    told = {r.to for r in result.replies if r.template == "shared_bundle.exhausted.voice"}
    assert told == {INITIATOR, AUTO, AUTO2}
    assert use(world, AUTO2, "voice", 1).paid_by == (("tariff", 1),)
    assert use(world, INITIATOR, "voice", 1).paid_by == (("tariff", 1),)


def test_mp_15_spent_shared_sms_tell_every_member(world: World) -> None:
    """MP-15: the same for the shared SMS package."""
    group_ready(world, AUTO)
    result = use(world, INITIATOR, "sms", 601)
    assert {r.to for r in result.replies if r.template == "shared_bundle.exhausted.sms"} == {
        INITIATOR, AUTO
    }  # fmt: skip
    assert result.paid_by[-1] == ("tariff", 1)


def test_mp_16_initiator_blocked_closes_the_shared_packages_until_unblocked(
    world: World,
) -> None:
    """MP-16: while blocked participants pay by own tariffs, internet is off; then it resumes."""
    group_ready(world, AUTO)
    blocked = world.set_status(INITIATOR, "blocked_voluntary", now=world.now())
    assert templates(blocked, AUTO) == ["shared_bundle.initiator_blocked"]
    call = use(world, AUTO, "voice", 3)
    assert call.paid_by == (("tariff", 3),)
    data = use(world, AUTO, "data", 3)
    assert data.refused == 3 and data.refusal == "initiator_blocked"
    assert templates(data.replies) == ["shared_bundle.blocked_internet"]
    assert use(world, INITIATOR, "voice", 1).refusal == "not_active"
    unblocked = world.set_status(INITIATOR, "active", now=world.now())
    assert "shared_bundle.initiator_unblocked" in templates(unblocked, AUTO)
    assert use(world, AUTO, "data", 3).paid_by == ((f"shared_bundle:{INITIATOR}", 3),)


def test_mp_16_a_turbo_button_is_used_first_and_only_by_who_bought_it(world: World) -> None:
    """Seed §12/§13: «Турбо-кнопка» is personal — its owner uses it first, even when blocked."""
    group_ready(world, AUTO)
    world.set_option(AUTO, "turbo_500mb", now=world.now())
    world.set_status(INITIATOR, "blocked_voluntary", now=world.now())
    data = use(world, AUTO, "data", 20)
    assert data.refused == 0 and data.paid_by[0][0].startswith("package:")
    world.set_status(INITIATOR, "active", now=world.now())
    world.set_option(INITIATOR, "turbo_2gb", now=world.now())
    use(world, AUTO, "data", 480)  # the rest of its own turbo
    pool = remaining(world, INITIATOR, UsageKind.DATA) - 2048
    use(world, INITIATOR, "data", 100)
    assert remaining(world, INITIATOR, UsageKind.DATA) - 1948 == pool  # its turbo paid
    assert use(world, AUTO, "data", 10).paid_by == ((f"shared_bundle:{INITIATOR}", 10),)


# -- the fee (MP-17) -------------------------------------------------------------------------------


def test_mp_17_the_fee_is_charged_on_joining_and_monthly_on_that_date(world: World) -> None:
    """MP-17: 52 ₽ when the first participant joins, not again for more, then a month later."""
    group_ready(world, AUTO)
    assert fee_entries(world) == [5200]
    sb.invite(world, INITIATOR, AUTO2 if world.exists(AUTO2) else _add(world, AUTO2),
              now=world.now())  # fmt: skip
    assert fee_entries(world) == [5200]
    charge = world.get_recurring(INITIATOR, sb.FEE_CODE)
    assert charge is not None and charge.period is Period.MONTH
    assert charge.next_at == add_months(START, 1, day=15, utc_offset=3 * HOUR)
    world.advance(charge.next_at - world.now())
    assert fee_entries(world) == [5200, 5200]
    assert world.get(AUTO).has_option("shared_bundle_participant")
    assert not [e for e in world.ledger(AUTO) if e.reason == "fee"]


def _add(world: World, msisdn: str) -> str:
    add(world, msisdn, "super_mts")
    return msisdn


def test_mp_17_daily_fallback_and_back_to_monthly_to_the_kopeck(world: World) -> None:
    """MP-17: too little money → 2,10 ₽ a day (SMS); enough → 52 ₽ and monthly again (SMS)."""
    add(world, INITIATOR, "nash_smart", balance=1000)
    add(world, AUTO, "super_mts")
    outcome = sb.invite(world, INITIATOR, AUTO, now=world.now())
    assert "shared_bundle.fee_daily" in templates(outcome.replies, INITIATOR)
    assert fee_entries(world) == [210]
    world.advance(2 * DAY)
    assert fee_entries(world) == [210, 210, 210]
    world.top_up(INITIATOR, 10_000, now=world.now())
    replies = world.advance(DAY)
    assert "shared_bundle.fee_monthly_again" in templates(replies, INITIATOR)
    assert fee_entries(world) == [210, 210, 210, 5200]
    switched = START + 3 * DAY
    charge = world.get_recurring(INITIATOR, sb.FEE_CODE)
    assert charge is not None and charge.period is Period.MONTH
    assert charge.next_at == add_months(switched, 1, day=18, utc_offset=3 * HOUR)
    assert world.get(INITIATOR).balance == 1000 + 10_000 - 3 * 210 - 5200
    world.advance(charge.next_at - world.now())
    assert fee_entries(world) == [210, 210, 210, 5200, 210]  # 41,70 ₽ left: daily again
    paid = sum(r.amount_charged for r in world.fee_records(INITIATOR, code=sb.FEE_CODE))
    assert paid == sum(fee_entries(world)) == 6040


def test_mp_17_nothing_is_charged_while_blocked_and_a_blocked_month_is_waived(
    world: World,
) -> None:
    """MP-17: blocked for lack of money over a whole calendar month — that month is not charged."""
    group_ready(world, AUTO)
    world.set_status(INITIATOR, "blocked_financial", now=world.now())
    # 15 Nov → 3 Jan: December is wholly blocked; the due dates 15 Dec and … are deferred
    world.advance(49 * DAY)
    assert fee_entries(world) == [5200]
    deferred = world.fee_records(INITIATOR, code=sb.FEE_CODE, status=FeeStatus.SKIPPED)
    assert len(deferred) == 1
    world.set_status(INITIATOR, "active", now=world.now())
    assert fee_entries(world) == [5200]
    (waived,) = world.fee_records(INITIATOR, code=sb.FEE_CODE, status=FeeStatus.SKIPPED)
    assert waived.detail.startswith("waived")


def test_mp_17_a_voluntary_block_defers_the_fee_to_the_unblock(world: World) -> None:
    """MP-17: a fee falling due in a voluntary block is charged right after the unblock."""
    group_ready(world, AUTO)
    world.set_status(INITIATOR, "blocked_voluntary", now=world.now())
    world.advance(40 * DAY)
    assert fee_entries(world) == [5200]
    world.set_status(INITIATOR, "active", now=world.now())
    assert fee_entries(world) == [5200, 5200]
    charged = world.ledger(INITIATOR)[-1]
    assert charged.at == START + 40 * DAY


# -- leaving (MP-18, MP-19, MP-21) -----------------------------------------------------------------


def test_mp_18_the_initiator_removes_a_participant_both_confirmed(
    setup: tuple[World, ServiceDirectory],
) -> None:
    """MP-18: *434*3*7…# removes; initiator and participant each get an SMS."""
    world, directory = setup
    group_ready(world, AUTO, AUTO2)
    command = RemoveMember(msisdn=AUTO)
    handler = directory.command_handler("mts", command)
    assert handler is not None
    outcome = handler(context(INITIATOR, world), command)
    assert templates(outcome.replies, INITIATOR)[0] == "shared_bundle.removed_initiator"
    assert templates(outcome.replies, AUTO)[0] == "shared_bundle.removed_participant"
    assert not world.get(AUTO).has_option("shared_bundle_participant")
    refused = handler(context(AUTO2, world), RemoveMember(msisdn=INITIATOR))
    assert refused.screen is not None and refused.screen.template == sb.NotInitiator.template()
    gone = handler(context(INITIATOR, world), command)
    assert gone.screen is not None and gone.screen.template == sb.NotParticipant.template()


def test_mp_18_the_menu_offers_a_pick_list_of_participants(
    setup: tuple[World, ServiceDirectory],
) -> None:
    """MP-18: *434# → 2 → 1 without a number lists the participants; the answer removes one."""
    world, directory = setup
    group_ready(world, AUTO, AUTO2)
    action = directory.action("mts", "shared_bundle.remove")
    prompt = action(context(INITIATOR, world), {})
    assert prompt.screen is not None and not prompt.screen.end
    # joined at the same instant: by number
    assert text(prompt) == f"Кого исключить из группы?\n1. {AUTO2}\n2. {AUTO}"
    done = action(context(INITIATOR, world), {"answer": "2"})
    assert templates(done.replies, AUTO)[0] == "shared_bundle.removed_participant"
    by_number = action(context(INITIATOR, world), {"msisdn": AUTO2})
    assert "shared_bundle.removed_initiator" in templates(by_number.replies, INITIATOR)
    assert sb.group_of(world, INITIATOR) is None  # the last one out disbands


def test_mp_19_a_participant_leaves_the_initiator_disbands(
    setup: tuple[World, ServiceDirectory],
) -> None:
    """MP-19: *434*0# — a participant leaves; the initiator's disbands, the fee stops."""
    world, directory = setup
    group_ready(world, AUTO, AUTO2)
    handler = directory.command_handler("mts", LeaveGroup())
    assert handler is not None
    left = handler(context(AUTO, world), LeaveGroup())
    assert templates(left.replies, AUTO)[0] == "shared_bundle.left_participant"
    assert templates(left.replies, INITIATOR) == ["shared_bundle.left_initiator"]
    add(world, INVITED, "smart")
    sb.invite(world, INITIATOR, INVITED, now=world.now())
    gone = directory.action("mts", "shared_bundle.leave")(context(INITIATOR, world), {})
    assert templates(gone.replies, AUTO2)[0] == "shared_bundle.disbanded_participant"
    assert "shared_bundle.disbanded_initiator" in templates(gone.replies, INITIATOR)
    assert sb.groups(world) == [] and sb.invitations(world, initiator=INITIATOR) == []
    assert world.get_recurring(INITIATOR, sb.FEE_CODE) is None
    assert not world.get(INITIATOR).has_option("shared_bundle_initiator")
    world.advance(40 * DAY)
    assert fee_entries(world) == [5200]
    alone = handler(context(AUTO, world), LeaveGroup())
    assert alone.screen is not None and alone.screen.template == sb.NotInGroup.template()


# -- group info (MP-20) ----------------------------------------------------------------------------


def test_mp_20_the_initiator_sees_members_packages_limits_use_and_renewal(
    setup: tuple[World, ServiceDirectory],
) -> None:
    """MP-20: *434*2# — the initiator's SMS lists what the seed lists."""
    world, directory = setup
    group_ready(world, AUTO, AUTO2)
    sb.set_personal_limits(world, INITIATOR, AUTO, {"voice": 100}, now=world.now())
    use(world, AUTO, "voice", 7)
    use(world, AUTO2, "data", 30)
    handler = directory.command_handler("mts", GroupInfo())
    assert handler is not None
    outcome = handler(context(INITIATOR, world), GroupInfo())
    assert text(outcome) == "Информация о группе «Общий пакет» отправлена вам в SMS."
    (sms,) = outcome.replies
    words = render(sms, PROFILES)
    assert "Участников: 2 из 5" in words
    assert f"{AUTO} — израсходовано: интернет 0 МБ, минут 7, SMS 0; лимиты: интернет без " \
           "лимита, минуты 100, SMS без лимита" in words  # fmt: skip
    assert f"{AUTO2} — израсходовано: интернет 30 МБ" in words
    assert "интернет 15360 МБ (осталось 15260 МБ), минуты 600 (осталось 593)" in words
    assert "Пакеты обновятся 15.12.2023" in words


def test_mp_20_a_participant_sees_the_initiator_its_packages_use_and_renewal(world: World) -> None:
    """MP-20: the participant's SMS: the initiator's number, what is available, its use."""
    group_ready(world, AUTO)
    sb.set_personal_limits(world, INITIATOR, AUTO, {"data": 2048}, now=world.now())
    use(world, AUTO, "sms", 3)
    (sms,) = sb.group_info(world, AUTO, now=world.now()).replies
    assert render(sms, PROFILES) == (
        f"Группа «Общий пакет», инициатор {INITIATOR}. Доступно вам: интернет 2048 МБ, "
        "минуты 600, SMS 600. Израсходовано: интернет 0 МБ, минут 0, SMS 3. "
        "Пакеты обновятся 15.12.2023."
    )
    view = sb.view_group(world, AUTO, now=world.now())
    assert isinstance(view, sb.ParticipantView) and view.initiator == INITIATOR


# -- changes of the subscribers (MP-21) ------------------------------------------------------------


@pytest.mark.parametrize("change", ["tariff", "owner", "terminate"])
def test_mp_21_an_initiator_change_disbands_the_group(world: World, change: str) -> None:
    """MP-21: the initiator's tariff or owner changes, or it terminates — the group is gone."""
    group_ready(world, AUTO, AUTO2)
    if change == "tariff":
        replies = world.change_tariff(INITIATOR, "smart", now=world.now())
    elif change == "owner":
        replies = world.change_owner(INITIATOR, "someone-else", now=world.now())
    else:
        replies = world.set_status(INITIATOR, "terminated", now=world.now())
    assert templates(replies, AUTO)[0] == "shared_bundle.disbanded_by_change"
    assert sb.groups(world) == []
    assert not world.get(AUTO).has_option("shared_bundle_participant")
    assert use(world, AUTO, "voice", 1).paid_by == (("tariff", 1),)


def test_mp_21_a_participant_leaves_on_owner_change_or_an_excluded_tariff(world: World) -> None:
    """MP-21: a new owner or a move to «Хайп» takes a participant out; «Smart» does not."""
    group_ready(world, AUTO, AUTO2, "79160000101")
    replies = world.change_owner(AUTO, "new-owner", now=world.now())
    assert templates(replies, AUTO) == ["shared_bundle.left_by_owner", "option_off"]
    assert templates(replies, INITIATOR) == ["shared_bundle.member_left_by_change"]
    world.change_tariff(AUTO2, "smart", now=world.now())
    assert sb.member(world, AUTO2) is not None
    world.top_up(AUTO2, 100_000, now=world.now())
    moved = world.change_tariff(AUTO2, "hype", now=world.now())
    assert "shared_bundle.left_by_tariff" in templates(moved, AUTO2)
    assert "«Хайп»" in render(next(r for r in moved if r.template.endswith("by_tariff")), PROFILES)
    group = sb.group_of(world, INITIATOR)
    assert group is not None and group.participants == ("79160000101",)


# -- abroad (MP-22) --------------------------------------------------------------------------------


def test_mp_22_participants_minutes_abroad_with_zabugorishche_surcharge_once_a_day(
    world: World,
) -> None:
    """MP-22: in Turkey shared minutes work; 200 ₽ to the initiator at most once a day."""
    group_ready(world, AUTO, AUTO2)
    world.set_option(INITIATOR, "zabugorishche", now=world.now())
    balance = world.get(INITIATOR).balance
    first = use(world, AUTO, "voice", 5, abroad=True, country="TR")
    assert first.paid_by == ((f"shared_bundle:{INITIATOR}", 5),) and first.billed == 0
    use(world, AUTO2, "voice", 5, abroad=True, country="TR")
    use(world, INITIATOR, "voice", 5, abroad=True, country="TR")
    assert world.get(INITIATOR).balance == balance - 20000
    world.advance(DAY)
    use(world, AUTO, "voice", 1, abroad=True, country="EG")
    assert [e.amount for e in world.ledger(INITIATOR) if e.reason == "roaming_day"] == [
        -20000, -20000
    ]  # fmt: skip
    assert not [e for e in world.ledger(AUTO) if e.reason == "roaming_day"]


def test_mp_22_without_zabugorishche_or_outside_its_countries_own_tariff(world: World) -> None:
    """MP-22: no «Забугорище», or a country it does not cover: the participant's own terms."""
    group_ready(world, AUTO)
    assert use(world, AUTO, "voice", 2, abroad=True, country="TR").paid_by == (("tariff", 2),)
    world.set_option(INITIATOR, "zabugorishche", now=world.now())
    assert use(world, AUTO, "voice", 2, abroad=True, country="US").paid_by == (("tariff", 2),)


def test_mp_22_a_participants_internet_abroad_is_suspended(world: World) -> None:
    """MP-22: a participant's internet abroad is suspended (SMS: leave, «БИТ за границей»)."""
    group_ready(world, AUTO)
    world.set_option(INITIATOR, "zabugorishche", now=world.now())
    result = use(world, AUTO, "data", 10, abroad=True, country="TR")
    assert result.refused == 10 and result.refusal == "abroad_internet"
    assert "«БИТ за границей»" in render(result.replies[0], PROFILES)
    sb.leave_group(world, AUTO, now=world.now())
    assert use(world, AUTO, "data", 1, abroad=True, country="TR").refusal != "abroad_internet"


# -- cancelling, robustness ------------------------------------------------------------------------


def test_an_initiator_can_withdraw_a_pending_invitation(world: World) -> None:
    """The self-care «cancel»: the invitee is told, «ДА» then finds nothing."""
    add(world, INITIATOR, "nash_smart")
    add(world, INVITED, "smart")
    sb.invite(world, INITIATOR, INVITED, now=world.now())
    body, replies = sb.api_cancel(world, {"msisdn": INITIATOR, "invitee": INVITED}, {},
                                  world.now())  # fmt: skip
    assert body["result"] == "cancelled"  # type: ignore[index]
    assert templates(replies, INVITED) == ["shared_bundle.invitation_cancelled"]
    with pytest.raises(sb.NotInvited):
        sb.cancel_invitation(world, INITIATOR, INVITED, now=world.now())
    with pytest.raises(sb.NoInvitation):
        sb.accept_invitation(world, INVITED, now=world.now())


def test_every_refusal_has_a_stable_code_and_a_reply_text() -> None:
    """Each refusal class names its code, an HTTP status, and a template every reply can fill."""
    codes = [cls.code for cls in sb.REFUSALS]
    assert len(set(codes)) == len(codes)
    for cls in sb.REFUSALS:
        params = {name: "79160000001" for name in cls.template_params}
        if "until" in params:
            params["until"] = START  # type: ignore[assignment]
        words = render_template(MTS, cls.template(), params)
        assert words and "{" not in words and cls.http_status in (404, 409)
