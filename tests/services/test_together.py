"""Tests of services/together.py: «Выгодно вместе» (TV-01 … TV-14) through the service API and
the USSD command handlers, on a World driven by a task.Clock, and its self-care routes
rendered by the control API in-process."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest
from twisted.internet import task
from twisted.internet.testing import MemoryReactorClock
from twisted.web.test.requesthelper import DummyRequest

from gateway.app import Gateway
from gateway.config import GatewayConfig
from parsers import parse_ussd
from services import together
from services.clock import DAY, SimClock, add_months
from services.dispatch import Context, Outcome, ServiceDirectory
from services.model import FeeStatus, LedgerEntry, UnknownMsisdn
from services.outbox import Reply, check_templates, render, render_template
from services.profiles import ProfileError, Profiles, load_profiles
from services.store import SqliteStore
from services.together import (
    REFUSALS,
    TogetherRefused,
    TogetherService,
    read_terms,
)
from services.world import World

START = 1_700_000_000  # 2023-11-14 22:13:20 UTC
PROFILES: Profiles = load_profiles()
TELE2 = PROFILES["tele2ru"]
MOY_ONLINE_FEE = 50_000
ORG, A, B, C, D, E = (f"7952100000{i}" for i in range(1, 7))


@attrs.define
class Env:
    world: World
    source: task.Clock
    directory: ServiceDirectory
    service: TogetherService

    def now(self) -> int:
        return self.world.now()


def make_env(path: str = ":memory:", *, demo: bool = False) -> Env:
    source = task.Clock()
    source.advance(START)
    world = World(SqliteStore(path), PROFILES, SimClock(source))
    if demo:
        world.load_demo(now=START)
    directory = ServiceDirectory()
    service = together.install(world, directory)
    return Env(world, source, directory, service)


@pytest.fixture
def env() -> Env:
    return make_env()


def person(
    env: Env,
    msisdn: str,
    *,
    tariff: str = "moy_online",
    balance: int = 500_000,
    autopay: bool = True,
    visa_at: int | None = None,
    options: Mapping[str, Mapping[str, object] | None] | None = None,
    **fields: Any,
) -> str:
    """A tele2ru subscriber created now (its billing day a month from now)."""
    chosen: dict[str, Mapping[str, object] | None] = dict(options or {})
    if autopay:
        params: dict[str, object] = {}
        if visa_at is not None:
            params = {"visa": True, "card_registered_at": visa_at}
        chosen["avtoplatezh"] = params
    env.world.create_subscriber(
        msisdn=msisdn,
        profile="tele2ru",
        tariff=tariff,
        now=env.now(),
        balance=balance,
        options=chosen,
        **fields,
    )
    return msisdn


def group(env: Env, organizer: str, *members: str) -> None:
    """``organizer`` creates a group and ``members`` join it, now."""
    env.service.create_group(organizer, now=env.now())
    for member in members:
        env.service.join_group(member, organizer, now=env.now())


def people_in_group(env: Env, size: int, **kw: Any) -> list[str]:
    numbers = [person(env, msisdn, **kw) for msisdn in (ORG, A, B, C, D, E)[:size]]
    group(env, numbers[0], *numbers[1:])
    return numbers


def ussd(env: Env, msisdn: str, text: str) -> Outcome:
    """Dial ``text`` as ``msisdn``: parsed and handed to the registered command handler."""
    command = parse_ussd(text, "tele2ru")
    handler = env.directory.command_handler("tele2ru", command)
    assert handler is not None, f"no handler for {command!r}"
    context = Context(msisdn=msisdn, profile="tele2ru", now=env.now(), channel="ussd")
    with env.world.transaction():
        return handler(context, command)


def screen_text(outcome: Outcome) -> str:
    assert outcome.screen is not None
    return render_template(TELE2, outcome.screen.template, outcome.screen.params)


def advance_to(env: Env, when: int) -> list[Reply]:
    assert when >= env.now()
    return env.world.advance(when - env.now())


def next_charge(env: Env, msisdn: str) -> int:
    charge = env.world.get_recurring(msisdn, "tariff")
    assert charge is not None
    return charge.next_at


def fees(env: Env, msisdn: str) -> list[LedgerEntry]:
    return [e for e in env.world.ledger(msisdn) if e.reason == "fee" and e.reference == "tariff"]


def last_fee(env: Env, msisdn: str) -> int:
    return -fees(env, msisdn)[-1].amount


def after_discount(fee: int, percent: int) -> int:
    return fee - fee * percent // 100


def texts_to(replies: list[Reply] | tuple[Reply, ...], msisdn: str) -> list[str]:
    return [render(r, PROFILES) for r in replies if r.to == msisdn]


# -- terms and texts ------------------------------------------------------------------------------


def test_tv_05_terms_are_read_from_the_profile_facts() -> None:
    """TV-05, TV-09, TV-10: the profile's services.together facts give the programme's terms."""
    terms = read_terms(TELE2)
    assert terms is not None
    assert terms.eligible_tariffs >= {"moy_razgovor", "moy_online", "moy_online_plus"}
    assert [terms.percent_for(n) for n in range(1, 6)] == [0, 0, 5, 10, 15]
    assert (terms.visa_bonus_percent, terms.visa_lag) == (5, 3 * DAY)
    assert terms.disband_after_months == 6 and terms.sender == "985"
    assert read_terms(PROFILES["mts"]) is None


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"discounts": [{"members": 3, "percent": 5}, {"members": 5, "percent": 15}]}, "discounts"),
        ({"eligible_tariffs": ["moy_online", "vip"]}, "eligible_tariffs"),
        ({"visa_lag": "three days"}, "visa_lag"),
        ({"autopay_option": "personal_offer"}, "autopay_option"),
        ({"colour": "red"}, "colour"),
        ({"min_members": "3"}, "min_members"),
    ],
)
def test_tv_broken_terms_are_refused_with_the_file_and_the_field(
    change: dict[str, object], where: str
) -> None:
    """A broken services.together fact is a ProfileError naming the file and the field."""
    facts = {**TELE2.services["together"], **change}
    broken = attrs.evolve(TELE2, services={**TELE2.services, "together": facts})
    with pytest.raises(ProfileError) as raised:
        read_terms(broken)
    assert f"services.together.{where}" in str(raised.value)
    assert "tele2ru.yaml" in str(raised.value)


def test_tv_every_text_the_programme_sends_is_in_the_profile() -> None:
    """Every template the module declares exists in tele2ru with the placeholders it supplies."""
    problems = [p for p in check_templates(PROFILES) if "together." in p]
    assert problems == []
    for code in REFUSALS:
        text = render_template(
            TELE2, f"together.refused.{code}", {"number": "79520000001", "tariff": "Классический"}
        )
        assert text and "{" not in text


SCREENS = ("together.created", "together.joined", "together.left", "together.disbanded_by_you")


@pytest.mark.parametrize("key", [*SCREENS, *(f"together.refused.{code}" for code in REFUSALS)])
def test_tv_screens_fit_one_ussd_page(key: str) -> None:
    """GW-11: every screen of *985* fits one UCS2 USSD page (80 characters), longest values."""
    params = {
        "organizer": "79520000001",
        "number": "79520000001",
        "size": 5,
        "percent": 15,
        "tariff": "Мой онлайн (рассрочка)",
    }
    assert len(render_template(TELE2, key, params)) <= 80


# -- TV-01: creating a group ----------------------------------------------------------------------


def test_tv_01_create_by_ussd_makes_the_caller_organizer(env: Env) -> None:
    """TV-01: *985*2# creates a group; the caller is its organizer and only member."""
    person(env, ORG)
    outcome = ussd(env, ORG, "*985*2#")
    assert outcome.screen is not None and outcome.screen.template == "together.created"
    assert "*985*79521000001*2#" in screen_text(outcome)
    view = env.service.group_view(ORG, now=env.now())
    assert view.organizer == ORG and [m.msisdn for m in view.members] == [ORG]
    assert view.members[0].role == "organizer" and view.size == 1 and view.percent == 0


def test_tv_01_create_through_the_service_api(env: Env) -> None:
    """TV-01: the self-care API creates the group and returns the member view."""
    person(env, ORG)
    change = env.service.create_group(ORG, now=env.now())
    assert change.view is not None and change.view.organizer == ORG
    assert change.view.disband_at == add_months(START, 6, utc_offset=3 * 3600)


def test_tv_01_a_second_group_is_refused(env: Env) -> None:
    """TV-01: one group per subscriber: creating again is refused on the screen."""
    person(env, ORG)
    ussd(env, ORG, "*985*2#")
    outcome = ussd(env, ORG, "*985*2#")
    assert outcome.screen is not None
    assert outcome.screen.template == "together.refused.already_in_group"


# -- TV-02: joining, adding, leaving --------------------------------------------------------------


def test_tv_02_join_by_ussd_with_the_organizers_number(env: Env) -> None:
    """TV-02: *985*7XXXXXXXXXX*2# joins; the others learn it by SMS with the new size."""
    person(env, ORG), person(env, A), person(env, B)
    ussd(env, ORG, "*985*2#")
    ussd(env, A, f"*985*{ORG}*2#")
    outcome = ussd(env, B, f"*985*{ORG}*2#")
    assert outcome.screen is not None and outcome.screen.template == "together.joined"
    assert "Участников: 3" in screen_text(outcome) and "5 %" in screen_text(outcome)
    assert {r.to for r in outcome.replies} == {ORG, A}
    assert all(r.sender == "985" for r in outcome.replies)
    assert "79521000003" in texts_to(outcome.replies, ORG)[0]
    assert [m.msisdn for m in env.service.group_view(B, now=env.now()).members] == [ORG, A, B]


def test_tv_02_join_names_the_organizer_not_a_member(env: Env) -> None:
    """TV-02: the number in the join must be the organizer's: a member's is refused."""
    person(env, ORG), person(env, A), person(env, B)
    group(env, ORG, A)
    outcome = ussd(env, B, f"*985*{A}*2#")
    assert outcome.screen is not None
    assert outcome.screen.template == "together.refused.group_not_found"
    assert env.service.group_of(B) is None


def test_tv_02_organizer_adds_a_member_through_the_api(env: Env) -> None:
    """TV-02: the organizer adds a number; the new member is told how to leave by SMS."""
    person(env, ORG), person(env, A)
    group(env, ORG)
    change = env.service.add_member(ORG, A, now=env.now())
    assert change.view is not None and change.view.size == 2
    (text,) = texts_to(change.outcome.replies, A)
    assert "*985*0*2#" in text and ORG in text


def test_tv_02_only_the_organizer_adds_or_removes(env: Env) -> None:
    """TV-02: a member cannot add or remove numbers (not_organizer)."""
    person(env, ORG), person(env, A), person(env, B)
    group(env, ORG, A)
    with pytest.raises(together.NotOrganizer):
        env.service.add_member(A, B, now=env.now())
    with pytest.raises(together.NotOrganizer):
        env.service.remove_member(A, ORG, now=env.now())


def test_tv_02_leave_by_ussd(env: Env) -> None:
    """TV-02: *985*0*2# leaves the group; the others are told the new size."""
    person(env, ORG), person(env, A), person(env, B)
    group(env, ORG, A, B)
    outcome = ussd(env, B, "*985*0*2#")
    assert outcome.screen is not None and outcome.screen.template == "together.left"
    assert {r.to for r in outcome.replies} == {ORG, A}
    assert "Участников: 2" in texts_to(outcome.replies, A)[0]
    assert env.service.group_of(B) is None
    refused = ussd(env, B, "*985*0*2#")
    assert refused.screen is not None
    assert refused.screen.template == "together.refused.not_in_group"


def test_tv_02_organizer_leaving_disbands_the_group(env: Env) -> None:
    """TV-02 (choice): *985*0*2# from the organizer ends the group; every member is told."""
    person(env, ORG), person(env, A), person(env, B)
    group(env, ORG, A, B)
    outcome = ussd(env, ORG, "*985*0*2#")
    assert outcome.screen is not None and outcome.screen.template == "together.disbanded_by_you"
    assert {r.to for r in outcome.replies} == {A, B}
    assert all(env.service.group_of(n) is None for n in (ORG, A, B))
    ussd(env, A, "*985*2#")  # free to organize a group of its own now
    assert env.service.group_view(A, now=env.now()).organizer == A


def test_tv_02_organizer_removes_a_member(env: Env) -> None:
    """TV-02: the organizer removes a member through the API; the member gets an SMS."""
    person(env, ORG), person(env, A), person(env, B)
    group(env, ORG, A, B)
    change = env.service.remove_member(ORG, A, now=env.now())
    assert texts_to(change.outcome.replies, A) and change.view is not None
    assert [m.msisdn for m in change.view.members] == [ORG, B]
    with pytest.raises(together.NotAMember):
        env.service.remove_member(ORG, A, now=env.now())
    with pytest.raises(together.OrganizerNotRemovable):
        env.service.remove_member(ORG, ORG, now=env.now())


# -- TV-03: eligibility ---------------------------------------------------------------------------


@pytest.mark.parametrize("tariff", ["moy_razgovor", "moy_online", "moy_online_plus"])
def test_tv_03_the_three_tariffs_may_join(env: Env, tariff: str) -> None:
    """TV-03: «Мой разговор», «Мой онлайн» and «Мой онлайн+» subscribers may join."""
    person(env, ORG), person(env, A, tariff=tariff)
    group(env, ORG, A)
    assert env.service.group_of(A) is not None


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ({"tariff": "klassicheskiy"}, "tariff_not_eligible"),
        ({"tariff": "moy_biznes"}, "tariff_not_eligible"),
        ({"segment": "business", "company": "vektor"}, "not_private_person"),
        ({"status": "blocked_financial"}, "subscriber_not_active"),
    ],
)
def test_tv_03_ineligible_subscribers_are_refused_each_with_its_reason(
    env: Env, setup: dict[str, Any], code: str
) -> None:
    """TV-03: a tariff outside the programme, a business customer, a blocked number: refused."""
    person(env, ORG)
    group(env, ORG)
    person(env, A, **setup)
    for text in (f"*985*{ORG}*2#", "*985*2#"):
        outcome = ussd(env, A, text)
        assert outcome.screen is not None
        assert outcome.screen.template == f"together.refused.{code}"
        assert screen_text(outcome)
    with pytest.raises(TogetherRefused) as raised:
        env.service.add_member(ORG, A, now=env.now())
    assert raised.value.code == code
    assert env.service.group_of(A) is None


def test_tv_03_only_tele2_subscribers(env: Env) -> None:
    """TV-03: a number that is not a Tele2 subscriber neither organizes nor is added."""
    person(env, A)
    env.world.create_subscriber(
        msisdn="79160000009", profile="mts", tariff="nash_smart", now=env.now()
    )
    outcome = ussd(env, A, "*985*79160000009*2#")
    assert outcome.screen is not None
    assert outcome.screen.template == "together.refused.not_tele2_subscriber"
    person(env, ORG)
    group(env, ORG)
    for outsider in ("79160000009", "79999999999"):
        with pytest.raises(together.NotTele2Subscriber):
            env.service.add_member(ORG, outsider, now=env.now())


def test_tv_03_the_demo_population_is_admitted_and_refused_as_its_notes_say() -> None:
    """TV-03: the demo's «Классический» and business numbers are refused, the others admitted."""
    env = make_env(demo=True)
    env.service.create_group("79520000001", now=env.now())
    for msisdn in ("79520000002", "79520000003", "79520000004"):
        env.service.join_group(msisdn, "79520000001", now=env.now())
    for msisdn, error in (
        ("79520000013", together.TariffNotEligible),
        ("79520000014", together.NotPrivatePerson),
    ):
        with pytest.raises(error):
            env.service.join_group(msisdn, "79520000001", now=env.now())


# -- TV-04: what members see ----------------------------------------------------------------------


def test_tv_04_every_member_sees_numbers_joins_leaves_autopay_and_payment(env: Env) -> None:
    """TV-04: numbers, joins and leaves, «Автоплатеж» and the fee's payment of each member."""
    person(env, ORG), person(env, A, autopay=False), person(env, B, visa_at=START)
    person(env, C, balance=1_000, fee_paid=False)
    group(env, ORG, A, B, C)
    env.source.advance(3600)
    env.service.leave_group(B, now=env.now())
    view = env.service.group_view(A, now=env.now())
    members = {m.msisdn: m for m in view.members}
    assert list(members) == [ORG, A, C]
    assert (members[ORG].autopay, members[A].autopay, members[C].autopay) == (True, False, True)
    assert members[ORG].fee_paid and not members[C].fee_paid and not view.all_paid
    events = [(e.msisdn, e.event) for e in view.history]
    assert events == [(ORG, "joined"), (A, "joined"), (B, "joined"), (C, "joined"), (B, "left")]
    assert view.history[-1].at == START + 3600
    assert view == attrs.evolve(
        env.service.group_view(ORG, now=env.now()),
        viewer=A,
        viewer_discount=view.viewer_discount,
        viewer_charges=view.viewer_charges,
    )


def test_tv_04_outsiders_see_nothing(env: Env) -> None:
    """TV-04: only members see the group; another subscriber gets not_in_group."""
    person(env, ORG), person(env, A)
    group(env, ORG)
    with pytest.raises(together.NotInGroup):
        env.service.group_view(A, now=env.now())
    with pytest.raises(UnknownMsisdn):
        env.service.group_view("79529999999", now=env.now())


def test_tv_04_the_visa_card_shows(env: Env) -> None:
    """TV-04, TV-09: the member view says who pays by a Visa card."""
    person(env, ORG, visa_at=START)
    group(env, ORG)
    (member,) = env.service.group_view(ORG, now=env.now()).members
    assert member.autopay and member.visa


# -- TV-05: the discount by size ------------------------------------------------------------------


@pytest.mark.parametrize(("size", "percent"), [(1, 0), (2, 0), (3, 5), (4, 10), (5, 15)])
def test_tv_05_discount_by_group_size_at_the_next_fee(env: Env, size: int, percent: int) -> None:
    """TV-05: 3 → 5 %, 4 → 10 %, 5 → 15 %, fewer than 3 → none, on every member's fee."""
    numbers = people_in_group(env, size)
    advance_to(env, next_charge(env, ORG))
    for msisdn in numbers:
        assert last_fee(env, msisdn) == after_discount(MOY_ONLINE_FEE, percent)
        assert env.world.has_paid_fee(msisdn, now=env.now())
    if percent:
        assert f"{percent} %" in fees(env, ORG)[-1].detail


def test_tv_05_a_sixth_member_is_refused(env: Env) -> None:
    """TV-05: at most 5 members including the organizer."""
    people_in_group(env, 5)
    person(env, "79521000009")
    outcome = ussd(env, "79521000009", f"*985*{ORG}*2#")
    assert outcome.screen is not None and outcome.screen.template == "together.refused.group_full"
    assert env.service.group_view(ORG, now=env.now()).size == 5


def test_tv_05_the_discount_is_in_the_ledger_and_in_the_fee_notice(env: Env) -> None:
    """TV-05: the member pays 475 ₽ instead of 500 ₽, and the fee SMS says so."""
    people_in_group(env, 3)
    replies = advance_to(env, next_charge(env, ORG))
    entry = fees(env, A)[-1]
    assert entry.amount == -47_500 and "«Выгодно вместе»: 5 %" in entry.detail
    assert any("475,00 ₽" in text for text in texts_to(replies, A))
    (record,) = env.service.charges(A)
    assert (record.decision.members, record.decision.percent, record.decision.discount) == (
        3,
        5,
        2_500,
    )


# -- TV-06: from the next charge, and changes at the next charge ----------------------------------


def test_tv_06_discount_starts_and_changes_at_the_next_charge(env: Env) -> None:
    """TV-06: the group's size at each charge decides; joins and leaves act at the next one."""
    person(env, ORG), person(env, A), person(env, B), person(env, C)
    env.source.advance(DAY)
    group(env, ORG, A)
    first = next_charge(env, ORG)
    advance_to(env, first)
    assert last_fee(env, ORG) == MOY_ONLINE_FEE  # two members: nothing yet
    env.source.advance(DAY)
    env.service.join_group(B, ORG, now=env.now())
    assert last_fee(env, ORG) == MOY_ONLINE_FEE  # nothing is recharged on joining
    advance_to(env, next_charge(env, ORG))
    assert last_fee(env, ORG) == last_fee(env, B) == after_discount(MOY_ONLINE_FEE, 5)
    env.source.advance(DAY)
    env.service.join_group(C, ORG, now=env.now())
    advance_to(env, next_charge(env, ORG))
    assert last_fee(env, ORG) == after_discount(MOY_ONLINE_FEE, 10)
    env.source.advance(DAY)
    env.service.leave_group(C, now=env.now())
    env.service.leave_group(B, now=env.now())
    advance_to(env, next_charge(env, ORG))
    assert last_fee(env, ORG) == last_fee(env, A) == MOY_ONLINE_FEE
    assert last_fee(env, C) == MOY_ONLINE_FEE  # out of the group: its own fee, undiscounted


# -- TV-07: «Автоплатеж» --------------------------------------------------------------------------


def test_tv_07_without_autopay_no_discount_but_the_member_stays(env: Env) -> None:
    """TV-07: a member that turns «Автоплатеж» off loses its discount; the others keep theirs."""
    people_in_group(env, 3)
    env.world.remove_option(B, "avtoplatezh", now=env.now())
    advance_to(env, next_charge(env, ORG))
    assert last_fee(env, B) == MOY_ONLINE_FEE
    assert last_fee(env, ORG) == last_fee(env, A) == after_discount(MOY_ONLINE_FEE, 5)
    assert env.service.group_view(B, now=env.now()).size == 3
    assert env.service.charges(B)[-1].decision.reason == "no_autopay"
    env.world.set_option(B, "avtoplatezh", now=env.now())
    advance_to(env, next_charge(env, B))
    assert last_fee(env, B) == after_discount(MOY_ONLINE_FEE, 5)


# -- TV-08: everybody must have paid --------------------------------------------------------------


def test_tv_08_an_unpaid_member_stops_the_discount_for_all_until_everyone_pays(env: Env) -> None:
    """TV-08: one unpaid fee: nobody gets the discount; it resumes at the next charge."""
    person(env, ORG), person(env, A)
    person(env, B, balance=10_000, fee_paid=False)
    group(env, ORG, A, B)
    assert not env.service.group_view(ORG, now=env.now()).all_paid
    advance_to(env, next_charge(env, ORG))
    assert last_fee(env, ORG) == last_fee(env, A) == MOY_ONLINE_FEE
    assert env.world.fee_status(B, now=env.now())[0].status is FeeStatus.UNPAID
    env.source.advance(2 * DAY)
    env.world.top_up(B, 100_000, now=env.now())  # pays the period late, at the full price
    assert last_fee(env, B) == MOY_ONLINE_FEE
    assert env.service.charges(B)[-1].decision.reason == "late_payment"
    assert env.service.group_view(ORG, now=env.now()).all_paid
    advance_to(env, next_charge(env, ORG))
    for msisdn in (ORG, A, B):
        assert last_fee(env, msisdn) == after_discount(MOY_ONLINE_FEE, 5)


def test_tv_08_the_demo_debtor_switches_the_discount_off() -> None:
    """TV-08: demo 79520000007 has not paid this period: its group's members pay in full."""
    env = make_env(demo=True)
    group(env, "79520000001", "79520000002", "79520000007")
    decision = env.service.group_view("79520000002", now=env.now()).viewer_discount
    assert (decision.percent, decision.reason) == (0, "not_all_paid")


# -- TV-09: Visa ----------------------------------------------------------------------------------


def test_tv_09_visa_adds_five_percent_after_three_days(env: Env) -> None:
    """TV-09: a Visa card registered 3 days or more before the charge: +5 %; within: ordinary."""
    person(env, ORG, visa_at=START - 10 * DAY)
    person(env, A)
    person(env, B)
    group(env, ORG, A, B)
    charge = next_charge(env, ORG)
    env.world.set_option(A, "avtoplatezh", now=env.now(), params={"visa": True})
    env.world.set_option(
        A, "avtoplatezh", now=env.now(), params={"card_registered_at": charge - 3 * DAY}
    )
    env.world.set_option(
        B, "avtoplatezh", now=env.now(), params={"visa": True, "card_registered_at": charge - DAY}
    )
    advance_to(env, charge)
    assert last_fee(env, ORG) == after_discount(MOY_ONLINE_FEE, 10)
    assert last_fee(env, A) == after_discount(MOY_ONLINE_FEE, 10)  # exactly 3 days: raised
    assert last_fee(env, B) == after_discount(MOY_ONLINE_FEE, 5)  # 1 day: the ordinary one
    assert env.service.charges(B)[-1].decision.reason == "visa_lag"
    advance_to(env, next_charge(env, B))
    assert last_fee(env, B) == after_discount(MOY_ONLINE_FEE, 10)


def test_tv_09_visa_alone_gives_nothing_below_three_members(env: Env) -> None:
    """TV-09: the Visa bonus comes on top of a group discount, not instead of one."""
    person(env, ORG, visa_at=START - 10 * DAY), person(env, A)
    group(env, ORG, A)
    advance_to(env, next_charge(env, ORG))
    assert last_fee(env, ORG) == MOY_ONLINE_FEE


# -- TV-10: disbanding ----------------------------------------------------------------------------


def test_tv_10_a_group_under_three_for_six_months_is_disbanded(env: Env) -> None:
    """TV-10: fewer than 3 members for 6 months from creation: disbanded, members told by SMS."""
    person(env, ORG), person(env, A)
    group(env, ORG, A)
    deadline = add_months(START, 6, utc_offset=3 * 3600)
    advance_to(env, deadline - 1)
    assert env.service.group_of(A) is not None
    replies = env.world.advance(1)
    assert env.service.group_of(ORG) is None and env.service.group_of(A) is None
    for msisdn in (ORG, A):
        (text,) = [t for t in texts_to(replies, msisdn) if "расформирована" in t]
        assert "3 участников" in text
    assert env.world.timeline.next_due() != deadline


def test_tv_10_a_group_that_reached_three_is_kept(env: Env) -> None:
    """TV-10: a group that had 3 members within the 6 months is not disbanded by the rule."""
    person(env, ORG), person(env, A), person(env, B)
    group(env, ORG, A)
    env.source.advance(100 * DAY)
    env.service.join_group(B, ORG, now=env.now())
    env.source.advance(DAY)
    env.service.leave_group(B, now=env.now())
    advance_to(env, add_months(START, 7, utc_offset=3 * 3600))
    assert env.service.group_view(ORG, now=env.now()).size == 2


def test_tv_10_the_disband_check_survives_a_restart(tmp_path: Path) -> None:
    """TV-10: the 6-month check is kept in the store: a restarted world still disbands."""
    path = str(tmp_path / "state.sqlite3")
    first = make_env(path)
    person(first, ORG)
    group(first, ORG)
    first.world.store.close()  # type: ignore[attr-defined]
    second = make_env(path)
    assert second.service.group_of(ORG) is not None
    advance_to(second, add_months(START, 6, utc_offset=3 * 3600))
    assert second.service.group_of(ORG) is None


# -- TV-11: tariff change, SIM re-registration ----------------------------------------------------


def test_tv_11_a_tariff_outside_the_programme_makes_the_member_leave(env: Env) -> None:
    """TV-11: moving to «Классический» leaves the group at once, with an SMS to everyone."""
    people_in_group(env, 3)
    replies = env.world.change_tariff(A, "klassicheskiy", now=env.now())
    assert env.service.group_of(A) is None
    assert any("Классический" in t for t in texts_to(replies, A))
    assert any("вышел" in t for t in texts_to(replies, ORG))
    assert env.service.group_view(ORG, now=env.now()).history[-1].reason == "tariff_changed"


def test_tv_11_a_tariff_inside_the_programme_keeps_the_member(env: Env) -> None:
    """TV-11: «Мой онлайн» → «Мой онлайн+» stays in the group."""
    people_in_group(env, 3)
    env.world.change_tariff(A, "moy_online_plus", now=env.now())
    assert env.service.group_of(A) is not None


def test_tv_11_sim_reregistration_makes_the_member_leave(env: Env) -> None:
    """TV-11: a new owner of the SIM leaves the group."""
    people_in_group(env, 3)
    replies = env.world.change_owner(B, "someone-else", now=env.now())
    assert env.service.group_of(B) is None
    assert any("переоформлена" in t for t in texts_to(replies, B))


def test_tv_11_the_organizer_leaving_disbands_the_group(env: Env) -> None:
    """TV-11: when the organizer's tariff leaves the programme, the group ends for all."""
    people_in_group(env, 3)
    replies = env.world.change_tariff(ORG, "klassicheskiy", now=env.now())
    assert all(env.service.group_of(n) is None for n in (ORG, A, B))
    assert any("расформирована" in t for t in texts_to(replies, A))


def test_tv_11_termination_and_business_segment_leave_too(env: Env) -> None:
    """TV-11/TV-03: a terminated number or one turned business leaves the group."""
    people_in_group(env, 4)
    env.world.set_status(B, "terminated", now=env.now())
    env.world.set_field(C, "segment", "business", now=env.now())
    assert [m.msisdn for m in env.service.group_view(ORG, now=env.now()).members] == [ORG, A]


# -- TV-12: instalments and the promo -------------------------------------------------------------


def test_tv_12_instalment_tariff_discount_starts_after_the_second_part(env: Env) -> None:
    """TV-12: on an instalment tariff the discount waits for the second part to be paid."""
    person(env, ORG), person(env, A)
    person(env, B, tariff="moy_online_rassrochka")
    group(env, ORG, A, B)
    advance_to(env, next_charge(env, B))  # the second part of the first period
    assert last_fee(env, B) == MOY_ONLINE_FEE // 2
    assert env.service.charges(B)[-1].decision.reason == "instalment_not_started"
    advance_to(env, next_charge(env, B))  # the next period's first part
    assert last_fee(env, B) == after_discount(MOY_ONLINE_FEE // 2, 5)
    advance_to(env, next_charge(env, B))
    assert last_fee(env, B) == after_discount(MOY_ONLINE_FEE // 2, 5)


def test_tv_12_promo_discount_starts_when_the_promo_ends(env: Env) -> None:
    """TV-12: «2 недели бесплатно»: no fee in the promo, the discount from its first fee on."""
    person(env, ORG), person(env, A)
    person(env, B, options={"promo_2_weeks": None})
    group(env, ORG, A, B)
    end = next_charge(env, B)
    assert end == START + 14 * DAY
    assert fees(env, B) == []
    advance_to(env, end)
    assert last_fee(env, B) == after_discount(MOY_ONLINE_FEE, 5)


def test_tv_12_promo_running_gives_no_discount(env: Env) -> None:
    """TV-12: the member view says the promo is why there is no discount yet."""
    person(env, ORG), person(env, A)
    person(env, B, options={"promo_2_weeks": None})
    group(env, ORG, A, B)
    decision = env.service.group_view(B, now=env.now()).viewer_discount
    assert (decision.percent, decision.reason) == (0, "promo_period")


# -- TV-13: personal offers -----------------------------------------------------------------------


def _offer(percent: int) -> dict[str, Mapping[str, object] | None]:
    return {"personal_offer": {"discount_percent": percent}}


def test_tv_13_the_larger_personal_offer_wins(env: Env) -> None:
    """TV-13: 10 % personal offer vs 5 % group discount: only the 10 % applies."""
    person(env, ORG), person(env, A)
    person(env, B, options=_offer(10))
    group(env, ORG, A, B)
    advance_to(env, next_charge(env, ORG))
    assert last_fee(env, B) == after_discount(MOY_ONLINE_FEE, 10)
    assert "персональное предложение" in fees(env, B)[-1].detail
    assert env.service.charges(B)[-1].decision.applied == "personal_offer"


def test_tv_13_the_larger_group_discount_wins(env: Env) -> None:
    """TV-13: 15 % for five members vs a 10 % personal offer: only the 15 % applies."""
    person(env, ORG, options=_offer(10))
    for msisdn in (A, B, C, D):
        person(env, msisdn)
    group(env, ORG, A, B, C, D)
    advance_to(env, next_charge(env, ORG))
    assert last_fee(env, ORG) == after_discount(MOY_ONLINE_FEE, 15)
    assert env.service.charges(ORG)[-1].decision.applied == "together"


def test_tv_13_a_personal_offer_outside_any_group(env: Env) -> None:
    """TV-13: the personal offer applies on its own to a subscriber in no group."""
    person(env, A, options=_offer(10))
    advance_to(env, next_charge(env, A))
    assert last_fee(env, A) == after_discount(MOY_ONLINE_FEE, 10)


# -- TV-14: ЕЛС -----------------------------------------------------------------------------------


def test_tv_14_els_numbers_need_autopay_each(env: Env) -> None:
    """TV-14: two numbers of one ЕЛС: only the one with its own «Автоплатеж» gets the discount."""
    person(env, ORG), person(env, A)
    person(env, B, account="els-42")
    person(env, C, account="els-42", autopay=False)
    group(env, ORG, A, B, C)
    advance_to(env, next_charge(env, ORG))
    assert last_fee(env, B) == after_discount(MOY_ONLINE_FEE, 10)
    assert last_fee(env, C) == MOY_ONLINE_FEE
    assert env.service.charges(C)[-1].decision.reason == "no_autopay"


# -- the self-care routes through the control API -------------------------------------------------


@attrs.frozen
class Answer:
    status: int
    body: Any


def _gateway(path: Path) -> Gateway:
    reactor: Any = MemoryReactorClock()  # type: ignore[no-untyped-call]
    reactor.advance(START)
    config = GatewayConfig(smpp_port=0, http_port=0, state_path=str(path))
    return Gateway(config, reactor, profiles=PROFILES)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state file with the demo population, made once and copied for each test."""
    path = tmp_path_factory.mktemp("together") / "state.sqlite3"
    _gateway(path).store.close()
    return path


@pytest.fixture
def gw(template: Path, tmp_path: Path) -> Gateway:
    path = tmp_path / "state.sqlite3"
    shutil.copy(template, path)
    gateway = _gateway(path)
    gateway.api.token = "t"
    return gateway


def call(gateway: Gateway, method: str, path: str, body: object = None) -> Answer:
    request: Any = DummyRequest([])
    request.method = method.encode()
    request.uri = path.encode()
    request.content = io.BytesIO(b"" if body is None else json.dumps(body).encode())
    request.requestHeaders.setRawHeaders(b"authorization", [b"Bearer t"])
    data = gateway.api.resource.render(request)
    return Answer(request.responseCode, json.loads(data))


def test_tv_01_02_04_self_care_routes(gw: Gateway) -> None:
    """TV-01, TV-02, TV-04 over HTTP: create, join, add, view, leave, remove, disband."""
    base = "/api/v1/tele2ru/together"
    made = call(gw, "POST", f"{base}/79520000001/group")
    assert made.status == 201 and made.body["group"]["organizer"] == "79520000001"
    assert call(gw, "POST", f"{base}/79520000002/join", {"organizer": "79520000001"}).status == 200
    added = call(gw, "POST", f"{base}/79520000001/members", {"msisdn": "+7 952 000-00-03"})
    assert added.status == 201 and added.body["group"]["size"] == 3
    seen = call(gw, "GET", f"{base}/79520000003/group").body["group"]
    assert [m["msisdn"] for m in seen["members"]] == ["79520000001", "79520000002", "79520000003"]
    assert {"autopay", "fee_paid", "visa", "joined_at"} <= set(seen["members"][0])
    assert seen["percent"] == 5 and seen["viewer_discount"]["percent"] == 5
    log = call(gw, "GET", "/api/v1/messages?msisdn=79520000003").body["messages"]
    assert any("добавил вас" in m["text"] for m in log)
    assert call(gw, "POST", f"{base}/79520000003/leave").body == {"group": None}
    removed = call(gw, "DELETE", f"{base}/79520000001/members/79520000002")
    assert removed.body["group"]["size"] == 1
    assert call(gw, "DELETE", f"{base}/79520000001/group").body == {"group": None}


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "79520000013/group", None, 409, "tariff_not_eligible"),
        ("POST", "79520000014/group", None, 409, "not_private_person"),
        ("POST", "79520000002/join", {"organizer": "79520000003"}, 404, "group_not_found"),
        ("POST", "79520000002/join", {"organizer": "89520000001"}, 422, "invalid_value"),
        ("POST", "79520000002/join", {}, 422, "missing_field"),
        ("POST", "79520000002/join", {"organizer": 7}, 422, "wrong_type"),
        ("POST", "79520000002/leave", {"now": 1}, 422, "unknown_field"),
        ("GET", "79520000002/group", None, 404, "not_in_group"),
        ("GET", "79529999999/group", None, 404, "unknown_msisdn"),
        ("POST", "79520000002/members", {"msisdn": "79520000003"}, 404, "not_in_group"),
    ],
)
def test_tv_self_care_refusals_have_stable_codes(
    gw: Gateway, method: str, path: str, body: object, status: int, code: str
) -> None:
    """Every refusal of the self-care API is JSON with its own stable code and status."""
    answer = call(gw, method, f"/api/v1/tele2ru/together/{path}", body)
    assert (answer.status, answer.body["error"]) == (status, code)
    assert answer.body["message"]


def test_tv_self_care_is_per_profile(gw: Gateway) -> None:
    """A subscriber of another profile is not a Tele2 subscriber here."""
    answer = call(gw, "POST", "/api/v1/tele2ru/together/79160000001/group")
    assert (answer.status, answer.body["error"]) == (404, "not_tele2_subscriber")


def test_tv_06_billing_day_through_the_gateway(gw: Gateway) -> None:
    """TV-05, TV-06: a group formed over HTTP, then a billing day moved by the clock API."""
    base = "/api/v1/tele2ru/together"
    call(gw, "POST", f"{base}/79520000001/group")
    for member in ("79520000002", "79520000003"):
        call(gw, "POST", f"{base}/{member}/join", {"organizer": "79520000001"})
    gw.advance(32 * DAY)
    ledger = call(gw, "GET", "/api/v1/subscribers/79520000002/ledger").body
    entries = ledger["entries"] if isinstance(ledger, dict) and "entries" in ledger else ledger
    fee = [e for e in entries if e["reason"] == "fee"]
    assert fee and fee[-1]["amount"] == -47_500 and "5 %" in fee[-1]["detail"]
    charges = call(gw, "GET", f"{base}/79520000002/charges").body["charges"]
    assert charges[-1]["decision"]["percent"] == 5
