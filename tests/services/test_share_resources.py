"""Tests of services/share_resources.py: Tele2 Kazakhstan «Делитесь ресурсами», SR-01 … SR-06,
through the service API on a World driven by task.Clock (and the «1» to 2221 handler)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from twisted.internet import task

from parsers import SHORT_NUMBERS, parse_sms
from parsers.commands import AcceptShareInvitation
from services import share_resources as sr
from services.clock import DAY, HOUR, MINUTE, SimClock
from services.dispatch import Context, ServiceDirectory
from services.model import InvalidValue, UnknownField, UsageKind, WrongType
from services.outbox import Reply, render, render_template
from services.profiles import ProfileError, Profiles, load_profile, load_profiles
from services.store import SqliteStore
from services.world import World

START = 1_700_000_000
PROFILES: Profiles = load_profiles()
KZ = PROFILES["tele2kz"]
DUO = "77010000001"  # «Tele2 Дома Duo»: 2 places
FAMILY = "77010000002"  # «Tele2 Дома Family»: 4 places
STANDART = "77010000003"  # no «Делитесь ресурсами»
A, B, C = "77010000011", "77010000012", "77010000013"


def make_world() -> tuple[World, ServiceDirectory]:
    source = task.Clock()
    source.advance(START)
    world = World(SqliteStore(), PROFILES, SimClock(source))
    directory = ServiceDirectory()
    sr.install(world, directory)
    for msisdn, tariff in ((DUO, "tele2_doma_duo"), (FAMILY, "tele2_doma_family"),
                           (STANDART, "standart")):  # fmt: skip
        world.create_subscriber(msisdn=msisdn, profile="tele2kz", tariff=tariff, now=START,
                                balance=2_000_000)  # fmt: skip
    for msisdn in (A, B, C):
        world.create_subscriber(msisdn=msisdn, profile="tele2kz", tariff="bez_abonplaty",
                                now=START, balance=100_000)  # fmt: skip
    return world, directory


@pytest.fixture
def setup() -> tuple[World, ServiceDirectory]:
    return make_world()


@pytest.fixture
def world(setup: tuple[World, ServiceDirectory]) -> World:
    return setup[0]


def templates(replies: Iterable[Reply], to: str | None = None) -> list[str]:
    return [r.template for r in replies if to is None or r.to == to]


def say_one(setup: tuple[World, ServiceDirectory], msisdn: str) -> Any:
    """The invitee sends «1» to 2221 (SR-03) through the directory, as the gateway does."""
    world, directory = setup
    command = parse_sms("1", "2221", "tele2kz")
    handler = directory.command_handler("tele2kz", command)
    assert handler is not None
    ctx = Context(msisdn=msisdn, profile="tele2kz", now=world.now(), channel="sms",
                  service_number="2221")  # fmt: skip
    return handler(ctx, command)


def joined(world: World, owner: str, *invitees: str) -> None:
    for invitee in invitees:
        sr.invite(world, owner, invitee, now=world.now())
    world.advance(MINUTE)
    for invitee in invitees:
        sr.accept_invitation(world, invitee, now=world.now())


def share_packages(world: World, msisdn: str) -> list[tuple[UsageKind, int]]:
    return sorted(
        (p.kind, p.remaining)
        for p in world.packages(msisdn, now=world.now())
        if p.source == sr.SOURCE
    )


# -- the facts -------------------------------------------------------------------------------------


def test_sr_03_the_fixture_and_the_sms_parser_agree_on_2221_and_1() -> None:
    """SR-02/SR-03: invitations come from 2221, the parser takes «1» there; the delay ≤ 5 min."""
    settings = sr.read_settings(KZ)
    assert settings.sms_number == SHORT_NUMBERS["tele2kz"] == KZ.short_numbers["share_resources"]
    assert settings.accept_text == "1"
    assert isinstance(parse_sms(settings.accept_text, "2221", "tele2kz"), AcceptShareInvitation)
    assert 0 < settings.invitation_delay <= settings.invitation_delivery_within == 5 * MINUTE


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ("    invitation_delay: 1m", "    invitation_delay: 6m", "at most 300"),
        ("    accept_text: '1'", "    accept_text: 'ДА'", "accepts «1»"),
        ("    removal_confirmation_ttl: 5m", "    removal_confirmation_ttl: 5m\n    x: 1",
         "x: unknown field"),
    ],
)  # fmt: skip
def test_the_facts_schema_refuses_what_the_service_cannot_honour(
    old: str, new: str, reason: str
) -> None:
    """A delay beyond SR-02's five minutes, another accept word, an unknown key are refused."""
    original = open(KZ.source, encoding="utf-8").read()
    assert old in original
    profile = load_profile(original.replace(old, new), KZ.source, expected_name="tele2kz")
    with pytest.raises(ProfileError, match=reason):
        sr.read_settings(profile)


# -- SR-01 … SR-06 ---------------------------------------------------------------------------------


def test_sr_01_only_tariffs_that_include_the_service_can_share(world: World) -> None:
    """SR-01: «Стандарт» cannot invite; the reply names the tariff."""
    with pytest.raises(sr.NoSharingTariff) as caught:
        sr.invite(world, STANDART, A, now=world.now())
    words = render_template(KZ, caught.value.template(), caught.value.params)
    assert "недоступна на тарифе «Стандарт»" in words


def test_sr_01_the_tariff_sets_the_places_and_what_each_member_gets(world: World) -> None:
    """SR-01: Duo has 2 places, Family 4; a member gets the tariff's 5 GB and 100 minutes."""
    assert sr.view_group(world, DUO, now=world.now()).places == 2
    assert sr.view_group(world, FAMILY, now=world.now()).free_places == 4
    joined(world, DUO, A)
    assert share_packages(world, A) == [(UsageKind.DATA, 5120), (UsageKind.VOICE, 100)]
    charge = world.get_recurring(DUO, "tariff")
    assert charge is not None
    assert all(
        p.valid_until == charge.next_at for p in world.packages(A) if p.source == "share_resources"
    )


def test_sr_01_members_get_their_packages_again_at_each_paid_billing_day(world: World) -> None:
    """SR-01: the owner's paid billing day renews the members' packages for the new period."""
    joined(world, DUO, A)
    charge = world.get_recurring(DUO, "tariff")
    assert charge is not None
    world.advance(charge.next_at - world.now())
    assert share_packages(world, A) == [(UsageKind.DATA, 5120), (UsageKind.VOICE, 100)]
    # an unpaid period gives the members nothing
    world.adjust_balance(DUO, -world.get(DUO).balance, now=world.now())
    charge = world.get_recurring(DUO, "tariff")
    assert charge is not None
    world.advance(charge.next_at - world.now())
    assert share_packages(world, A) == []


def test_sr_02_the_invitation_sms_from_2221_arrives_within_five_minutes(world: World) -> None:
    """SR-02: nothing at once; the SMS from 2221 leaves on the clock within 5 minutes."""
    outcome = sr.invite(world, DUO, A, now=world.now())
    assert outcome.replies == ()
    assert outcome.screen is not None
    assert "придет в течение 5 минут" in render_template(KZ, outcome.screen.template,
                                                         outcome.screen.params)  # fmt: skip
    assert world.advance(MINUTE - 1) == []
    (sms,) = world.advance(1)
    assert (sms.to, sms.sender, sms.template) == (A, "2221", "share_resources.invitation")
    assert render(sms, PROFILES) == (
        f"Абонент {DUO} приглашает вас в группу «Делитесь ресурсами» и делится с вами "
        "ресурсами своего тарифа: Интернет 5 ГБ от владельца, 100 минут от владельца. "
        "Чтобы принять приглашение, отправьте 1 на номер 2221."
    )
    assert world.advance(5 * MINUTE) == []


def test_sr_02_invitations_are_checked(world: World) -> None:
    """SR-02: self, a stranger, a member elsewhere and a repeated invitation are refused."""
    with pytest.raises(sr.SelfInvite):
        sr.invite(world, DUO, DUO, now=world.now())
    with pytest.raises(sr.NotTele2Subscriber):
        sr.invite(world, DUO, "77019999999", now=world.now())
    sr.invite(world, DUO, A, now=world.now())
    with pytest.raises(sr.AlreadyInvited):
        sr.invite(world, DUO, A, now=world.now())
    joined(world, FAMILY, B)
    with pytest.raises(sr.InviteeInGroup):
        sr.invite(world, DUO, B, now=world.now())
    with pytest.raises(sr.InviteeInGroup):
        sr.invite(world, DUO, FAMILY, now=world.now())


def test_sr_03_one_to_2221_accepts_and_both_are_told(setup: tuple[World, ServiceDirectory]) -> None:
    """SR-03: «1» to 2221 after the SMS: the invitee joins; invitee and owner get an SMS."""
    world, _ = setup
    sr.invite(world, DUO, A, now=world.now())
    early = say_one(setup, A)
    assert early.screen is not None and early.screen.template == sr.NoInvitation.template()
    world.advance(MINUTE)
    outcome = say_one(setup, A)
    assert templates(outcome.replies, A) == ["share_resources.joined_member"]
    assert templates(outcome.replies, DUO) == ["share_resources.joined_owner"]
    assert sr.owner_of(world, A) == DUO
    again = say_one(setup, A)
    assert again.screen is not None and again.screen.template == sr.NoInvitation.template()


def test_sr_03_one_accepts_the_invitation_whose_sms_came_last(world: World) -> None:
    """SR-03: two owners invited the same number: «1» means the last SMS; the other is freed."""
    sr.invite(world, DUO, A, now=world.now())
    world.advance(10 * MINUTE)
    sr.invite(world, FAMILY, A, now=world.now())
    world.advance(MINUTE)
    sr.accept_invitation(world, A, now=world.now())
    assert sr.owner_of(world, A) == FAMILY
    assert sr.view_group(world, DUO, now=world.now()).free_places == 2


def test_sr_04_pending_invitations_take_places(world: World) -> None:
    """SR-04: the view lists members and invitations; a third number finds no free place."""
    joined(world, DUO, A)
    sr.invite(world, DUO, B, now=world.now())
    view = sr.view_group(world, DUO, now=world.now())
    assert [m.msisdn for m in view.members] == [A]
    assert [i.invitee for i in view.invitations] == [B]
    assert view.free_places == 0
    with pytest.raises(sr.NoFreePlaces) as caught:
        sr.invite(world, DUO, C, now=world.now())
    assert caught.value.params["places"] == 2


def test_sr_05_cancelling_frees_the_place_and_the_sms_never_leaves(world: World) -> None:
    """SR-05: cancelled before its SMS: no SMS ever; the place is free again."""
    sr.invite(world, DUO, A, now=world.now())
    sr.invite(world, DUO, B, now=world.now())
    outcome = sr.cancel_invitation(world, DUO, A, now=world.now())
    assert outcome.replies == ()
    assert sr.view_group(world, DUO, now=world.now()).free_places == 1
    sent = world.advance(10 * MINUTE)
    assert [r.to for r in sent] == [B]
    told = sr.cancel_invitation(world, DUO, B, now=world.now())
    assert templates(told.replies, B) == ["share_resources.invitation_cancelled"]
    with pytest.raises(sr.NotInvited):
        sr.cancel_invitation(world, DUO, B, now=world.now())
    with pytest.raises(sr.NoInvitation):
        sr.accept_invitation(world, B, now=world.now())


def test_sr_06_removal_needs_a_confirmation(world: World) -> None:
    """SR-06: «Удалить» only asks; the confirmation removes and ends the member's packages."""
    joined(world, DUO, A, B)
    request, question = sr.request_removal(world, DUO, A, now=world.now())
    assert question.screen is not None
    assert render_template(KZ, question.screen.template, question.screen.params) == (
        f"Удалить номер {A} из группы «Делитесь ресурсами»? Подтвердите удаление."
    )
    assert sr.owner_of(world, A) == DUO
    with pytest.raises(sr.UnknownConfirmation):
        sr.confirm_removal(world, FAMILY, request.token, now=world.now())
    with pytest.raises(sr.UnknownConfirmation):
        sr.confirm_removal(world, DUO, request.token, now=world.now(), member=B)
    done = sr.confirm_removal(world, DUO, request.token, now=world.now())
    assert templates(done.replies, A) == ["share_resources.removed_member"]
    assert sr.owner_of(world, A) is None and share_packages(world, A) == []
    with pytest.raises(sr.UnknownConfirmation):
        sr.confirm_removal(world, DUO, request.token, now=world.now())
    assert sr.view_group(world, DUO, now=world.now()).free_places == 1


def test_sr_06_an_old_removal_request_is_not_confirmed(world: World) -> None:
    """SR-06: a confirmation after its five minutes, or of a non-member, is refused."""
    joined(world, DUO, A)
    request, _ = sr.request_removal(world, DUO, A, now=world.now())
    world.advance(5 * MINUTE)
    with pytest.raises(sr.UnknownConfirmation):
        sr.confirm_removal(world, DUO, request.token, now=world.now())
    with pytest.raises(sr.NotMember):
        sr.request_removal(world, DUO, B, now=world.now())


def test_sr_06_the_api_removes_in_two_steps(world: World) -> None:
    """SR-06 through the self-care API: removal → token and question, confirm → removed."""
    joined(world, DUO, A)
    path = {"msisdn": DUO, "member": A}
    body, replies = sr.api_request_removal(world, path, {}, world.now())
    assert replies == [] and body["result"] == "confirmation_required"  # type: ignore[index]
    token = body["confirmation"]  # type: ignore[index]
    with pytest.raises(WrongType):
        sr.api_confirm_removal(world, path, {"confirmation": 1}, world.now())
    done, replies = sr.api_confirm_removal(world, path, {"confirmation": token}, world.now())
    assert done["result"] == "removed" and templates(replies) == [  # type: ignore[index]
        "share_resources.removed_member"
    ]


def test_the_api_invites_views_cancels_and_checks_input(world: World) -> None:
    """SR-02/SR-04/SR-05 through the self-care API, with the core's error codes for bad input."""
    body, _ = sr.api_invite(world, {"msisdn": DUO}, {"msisdn": "+7 701 000 00 11"}, world.now())
    assert body["group"]["free_places"] == 1  # type: ignore[index]
    view, _ = sr.api_view(world, {"msisdn": DUO}, {}, world.now())
    assert view["invitations"][0]["invitee"] == A  # type: ignore[index]
    with pytest.raises(InvalidValue):
        sr.api_invite(world, {"msisdn": DUO}, {"msisdn": "87010000011"}, world.now())
    with pytest.raises(UnknownField):
        sr.api_invite(world, {"msisdn": DUO}, {"phone": A}, world.now())
    cancelled, _ = sr.api_cancel(world, {"msisdn": DUO, "invitee": A}, {}, world.now())
    assert cancelled["result"] == "cancelled"  # type: ignore[index]
    sr.api_invite(world, {"msisdn": DUO}, {"msisdn": B}, world.now())
    world.advance(MINUTE)
    accepted, replies = sr.api_accept(world, {"msisdn": B}, {"owner": DUO}, world.now())
    assert accepted["owner"] == DUO and "share_resources.joined_owner" in templates(replies)  # type: ignore[index]


def test_an_unanswered_invitation_expires_after_a_day_and_frees_its_place(world: World) -> None:
    """Our choice (the seed is silent): 24 h without «1» — the place is freed, the owner told."""
    sr.invite(world, DUO, A, now=world.now())
    world.advance(DAY - 1)
    assert sr.view_group(world, DUO, now=world.now()).free_places == 1
    replies = world.advance(1)
    assert templates(replies, DUO) == ["share_resources.invitation_expired"]
    assert sr.view_group(world, DUO, now=world.now()).free_places == 2


def test_an_owner_leaving_the_sharing_tariffs_loses_the_group(world: World) -> None:
    """SR-01: the owner moves to «Стандарт»: members leave (SMS), invitations are cancelled."""
    joined(world, FAMILY, A)
    sr.invite(world, FAMILY, B, now=world.now())
    world.advance(MINUTE)
    replies = world.change_tariff(FAMILY, "standart", now=world.now())
    assert "share_resources.disbanded" in templates(replies, A)
    assert "share_resources.invitation_cancelled" in templates(replies, B)
    assert sr.owner_of(world, A) is None and share_packages(world, A) == []
    assert sr.owners(world) == []


def test_an_owner_on_a_smaller_tariff_keeps_the_oldest_members(world: World) -> None:
    """SR-01: Family (4) → Duo (2): the newest invitation, then the newest member, go."""
    joined(world, FAMILY, A)
    world.advance(HOUR)
    joined(world, FAMILY, B)
    sr.invite(world, FAMILY, C, now=world.now())
    world.change_tariff(FAMILY, "tele2_doma_duo", now=world.now())
    view = sr.view_group(world, FAMILY, now=world.now())
    assert [m.msisdn for m in view.members] == [A, B] and view.invitations == ()
    assert share_packages(world, A) == [(UsageKind.DATA, 5120), (UsageKind.VOICE, 100)]
