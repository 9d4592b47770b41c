"""Stateful property tests of the family-sharing groups: MTS «Общий пакет» (MP-03, MP-04, MP-09,
MP-17) and Tele2 KZ «Делитесь ресурсами» (SR-04), over any order of invitations, answers,
expiries, removals and clock moves — including two invitees answering at the same instant."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from twisted.internet import task

from services import charging
from services import share_resources as sr
from services import shared_bundle as sb
from services.clock import DAY, HOUR, MINUTE, SimClock, local_day
from services.dispatch import ServiceDirectory
from services.model import DomainError, FeeStatus, SubscriberStatus
from services.profiles import Profiles, load_profiles
from services.store import SqliteStore
from services.world import World

START = 1_700_000_000
PROFILES: Profiles = load_profiles()
STATEFUL = settings(
    max_examples=20,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

INITIATORS = ("79160000001", "79260000001")  # both end in 0001: suffixes must be longer
AUTO = tuple(f"7916000010{i}" for i in range(5))  # «Супер МТС»: join at once (MP-06)
INVITED = ("79160000015", "79160000016", "79160000017")  # «Smart»: SMS invitation
MTS_NUMBERS = INITIATORS + AUTO + INVITED


def new_world() -> World:
    source = task.Clock()
    source.advance(START)
    return World(SqliteStore(), PROFILES, SimClock(source))


def ledger_matches_balances(world: World, numbers: tuple[str, ...]) -> None:
    for msisdn in numbers:
        assert sum(e.amount for e in world.ledger(msisdn)) == world.get(msisdn).balance


class SharedBundleGroups(RuleBasedStateMachine):
    """MP-03/MP-04/MP-09: whatever happens, a group holds at most 6 and a number one group."""

    @initialize()
    def build(self) -> None:
        self.world = new_world()
        sb.install(self.world, ServiceDirectory())
        for msisdn in INITIATORS:
            self._add(msisdn, "nash_smart", 500_000)
        for msisdn in AUTO:
            self._add(msisdn, "super_mts", 50_000)
        for msisdn in INVITED:
            self._add(msisdn, "smart", 100_000)

    def _add(self, msisdn: str, tariff: str, balance: int) -> None:
        self.world.create_subscriber(msisdn=msisdn, profile="mts", tariff=tariff, now=START,
                                     balance=balance)  # fmt: skip

    def _try(self, call: Callable[[], object]) -> None:
        try:
            call()
        except sb.SharedBundleRefused:
            pass

    @rule(inviter=st.sampled_from(INITIATORS), invitee=st.sampled_from(MTS_NUMBERS))
    def invite(self, inviter: str, invitee: str) -> None:
        self._try(lambda: sb.invite(self.world, inviter, invitee, now=self.world.now()))

    @rule(inviter=st.sampled_from(AUTO + INVITED), invitee=st.sampled_from(MTS_NUMBERS))
    def stray_invite(self, inviter: str, invitee: str) -> None:
        """Participants and others on the wrong tariff try to invite (MP-01, MP-04)."""
        self._try(lambda: sb.invite(self.world, inviter, invitee, now=self.world.now()))

    @rule(inviter=st.sampled_from(INITIATORS), first=st.integers(0, len(AUTO) - 1))
    def fill(self, inviter: str, first: int) -> None:
        """Invite every candidate in turn: the joiners at once fill the group quickly."""
        for invitee in (*AUTO[first:], *AUTO[:first], *INVITED):
            self._try(
                functools.partial(sb.invite, self.world, inviter, invitee, now=self.world.now())
            )

    @rule(
        invitee=st.sampled_from(INVITED + AUTO),
        suffix=st.sampled_from([None, "0001", "160000001", "260000001", "9"]),
    )
    def accept(self, invitee: str, suffix: str | None) -> None:
        self._try(
            lambda: sb.accept_invitation(self.world, invitee, now=self.world.now(), suffix=suffix)
        )

    @rule(first=st.sampled_from(INVITED), second=st.sampled_from(INVITED))
    def two_accept_at_once(self, first: str, second: str) -> None:
        """Two invitees answer «ДА» at the same instant (the last place goes to one)."""
        now = self.world.now()
        for invitee in (first, second):
            self._try(
                functools.partial(
                    sb.accept_invitation, self.world, invitee, now=now, inviter=INITIATORS[0]
                )
            )

    @rule(invitee=st.sampled_from(INVITED), inviter=st.sampled_from(INITIATORS))
    def decline(self, invitee: str, inviter: str) -> None:
        self._try(
            lambda: sb.decline_invitation(
                self.world, invitee, now=self.world.now(), inviter=inviter
            )
        )

    @rule(initiator=st.sampled_from(INITIATORS), participant=st.sampled_from(MTS_NUMBERS))
    def remove(self, initiator: str, participant: str) -> None:
        self._try(
            lambda: sb.remove_member(self.world, initiator, participant, now=self.world.now())
        )

    @rule(msisdn=st.sampled_from(MTS_NUMBERS))
    def leave(self, msisdn: str) -> None:
        self._try(lambda: sb.leave_group(self.world, msisdn, now=self.world.now()))

    @rule(msisdn=st.sampled_from(MTS_NUMBERS), kind=st.sampled_from(["data", "voice", "sms"]),
          amount=st.integers(1, 400))  # fmt: skip
    def consume(self, msisdn: str, kind: str, amount: int) -> None:
        result = charging.record_usage(self.world, msisdn, kind, amount, now=self.world.now())
        assert sum(n for _, n in result.paid_by) + result.refused == amount

    @rule(seconds=st.sampled_from([MINUTE, 30 * MINUTE, HOUR, 3 * HOUR, DAY]))
    def advance(self, seconds: int) -> None:
        self.world.advance(seconds)

    @rule(msisdn=st.sampled_from(MTS_NUMBERS), tariff=st.sampled_from(["smart", "hype"]))
    def change_tariff(self, msisdn: str, tariff: str) -> None:
        try:
            self.world.change_tariff(msisdn, tariff, now=self.world.now())
        except DomainError:
            pass

    @invariant()
    def a_group_never_holds_more_than_six(self) -> None:
        if not hasattr(self, "world"):
            return
        for group in sb.groups(self.world):
            assert 1 <= 1 + len(group.participants) <= 6
            assert group.participants, "a group without participants is disbanded"

    @invariant()
    def a_subscriber_is_never_in_two_groups(self) -> None:
        if not hasattr(self, "world"):
            return
        seen = Counter(
            msisdn for g in sb.groups(self.world) for msisdn in (g.initiator, *g.participants)
        )
        assert all(count == 1 for count in seen.values())
        for msisdn in MTS_NUMBERS:
            group = sb.group_of(self.world, msisdn)
            assert (group is not None) == (msisdn in seen)

    @invariant()
    def initiators_are_on_nash_smart_and_no_answer_outlives_its_hour(self) -> None:
        if not hasattr(self, "world"):
            return
        for group in sb.groups(self.world):
            assert self.world.get(group.initiator).tariff == "nash_smart"
            for participant in group.participants:
                assert self.world.get(participant).tariff != "hype"
        for invitation in sb.invitations(self.world):
            assert invitation.expires_at > self.world.now()
            assert invitation.expires_at - invitation.sent_at == HOUR

    @invariant()
    def money_and_packages_stay_consistent(self) -> None:
        if not hasattr(self, "world"):
            return
        ledger_matches_balances(self.world, MTS_NUMBERS)
        for msisdn in INITIATORS:
            assert all(p.remaining >= 0 for p in self.world.packages(msisdn))


def test_mp_03_mp_04_a_group_never_exceeds_six_and_nobody_is_in_two_groups() -> None:
    """MP-03/MP-04/MP-09: any order of invites, answers (two at once), expiries and removals."""
    run_state_machine_as_test(SharedBundleGroups, settings=STATEFUL)


OWNERS = {"77010000001": "tele2_doma_duo", "77010000002": "tele2_doma_family"}
CANDIDATES = tuple(f"7701000001{i}" for i in range(1, 7))
KZ_NUMBERS = (*OWNERS, *CANDIDATES)


class ShareResourcesGroups(RuleBasedStateMachine):
    """SR-04: members plus pending invitations never exceed the tariff's places."""

    @initialize()
    def build(self) -> None:
        self.world = new_world()
        sr.install(self.world, ServiceDirectory())
        for msisdn, tariff in OWNERS.items():
            self.world.create_subscriber(msisdn=msisdn, profile="tele2kz", tariff=tariff,
                                         now=START, balance=5_000_000)  # fmt: skip
        for msisdn in CANDIDATES:
            self.world.create_subscriber(msisdn=msisdn, profile="tele2kz", tariff="bez_abonplaty",
                                         now=START, balance=100_000)  # fmt: skip
        self.requests: list[tuple[str, str]] = []

    def _try(self, call: Callable[[], object]) -> object:
        try:
            return call()
        except sr.ShareRefused:
            return None

    @rule(owner=st.sampled_from(KZ_NUMBERS), invitee=st.sampled_from(KZ_NUMBERS))
    def invite(self, owner: str, invitee: str) -> None:
        self._try(lambda: sr.invite(self.world, owner, invitee, now=self.world.now()))

    @rule(owner=st.sampled_from(tuple(OWNERS)), invitee=st.sampled_from(CANDIDATES))
    def cancel(self, owner: str, invitee: str) -> None:
        self._try(lambda: sr.cancel_invitation(self.world, owner, invitee, now=self.world.now()))

    @rule(invitee=st.sampled_from(KZ_NUMBERS))
    def accept(self, invitee: str) -> None:
        self._try(lambda: sr.accept_invitation(self.world, invitee, now=self.world.now()))

    @rule(first=st.sampled_from(CANDIDATES), second=st.sampled_from(CANDIDATES))
    def two_accept_at_once(self, first: str, second: str) -> None:
        now = self.world.now()
        for invitee in (first, second):
            self._try(functools.partial(sr.accept_invitation, self.world, invitee, now=now))

    @rule(owner=st.sampled_from(tuple(OWNERS)), member=st.sampled_from(CANDIDATES))
    def request_removal(self, owner: str, member: str) -> None:
        try:
            request, _ = sr.request_removal(self.world, owner, member, now=self.world.now())
        except sr.ShareRefused:
            return
        self.requests.append((owner, request.token))

    @rule(data=st.data())
    def confirm_removal(self, data: st.DataObject) -> None:
        if self.requests:
            owner, token = data.draw(st.sampled_from(self.requests))
            self._try(lambda: sr.confirm_removal(self.world, owner, token, now=self.world.now()))

    @rule(seconds=st.sampled_from([30, MINUTE, 5 * MINUTE, HOUR, DAY]))
    def advance(self, seconds: int) -> None:
        self.world.advance(seconds)

    @rule(owner=st.sampled_from(tuple(OWNERS)),
          tariff=st.sampled_from(["tele2_doma_duo", "tele2_doma_family", "standart"]))  # fmt: skip
    def change_tariff(self, owner: str, tariff: str) -> None:
        try:
            self.world.change_tariff(owner, tariff, now=self.world.now())
        except DomainError:
            pass  # the new tariff's first fee does not fit: the change is refused

    @invariant()
    def pending_invitations_count_toward_the_places(self) -> None:
        if not hasattr(self, "world"):
            return
        now = self.world.now()
        for owner in OWNERS:
            tariff = self.world.tariff_of(owner)
            places = 0 if tariff.sharing is None else tariff.sharing.members
            active = len(sr.members(self.world, owner))
            pending = len([i for i in sr.invitations(self.world, owner=owner)
                           if i.expires_at is None or i.expires_at > now])  # fmt: skip
            assert active + pending <= places
            view = sr.view_group(self.world, owner, now=now)
            assert view.free_places == places - active - pending

    @invariant()
    def a_number_is_in_one_group(self) -> None:
        if not hasattr(self, "world"):
            return
        seen = Counter(m.msisdn for owner in OWNERS for m in sr.members(self.world, owner))
        assert all(count == 1 for count in seen.values())
        for msisdn in seen:
            assert not sr.members(self.world, msisdn)

    @invariant()
    def invitation_sms_leave_within_five_minutes(self) -> None:
        if not hasattr(self, "world"):
            return
        for invitation in sr.invitations(self.world, pending=False):
            assert invitation.deliver_at - invitation.created_at <= 5 * MINUTE
            if invitation.status == "pending" and invitation.deliver_at <= self.world.now():
                assert invitation.delivered


def test_sr_04_pending_invitations_count_and_places_are_never_exceeded() -> None:
    """SR-04: members plus pending invitations stay within the tariff's places, whatever happens."""
    run_state_machine_as_test(ShareResourcesGroups, settings=STATEFUL)


class SharedBundleFee(RuleBasedStateMachine):
    """MP-17 over simulated months: 52 ₽ or 2,10 ₽ only, never while blocked, at most one
    daily charge a day, and the ledger equal to the fee records to the kopeck."""

    initiator = INITIATORS[0]

    @initialize(balance=st.integers(0, 20_000))
    def build(self, balance: int) -> None:
        self.world = new_world()
        sb.install(self.world, ServiceDirectory())
        self.world.create_subscriber(msisdn=self.initiator, profile="mts", tariff="nash_smart",
                                     now=START, balance=balance)  # fmt: skip
        self.world.create_subscriber(msisdn=AUTO[0], profile="mts", tariff="super_mts", now=START)
        sb.invite(self.world, self.initiator, AUTO[0], now=START)
        self.blocked: list[list[int]] = []

    @rule(days=st.integers(1, 45))
    def advance(self, days: int) -> None:
        self.world.advance(days * DAY)

    @rule(hours=st.integers(1, 23))
    def advance_hours(self, hours: int) -> None:
        self.world.advance(hours * HOUR)

    @rule(amount=st.sampled_from([100, 210, 5000, 5200, 70_000]))
    def top_up(self, amount: int) -> None:
        if self.world.get(self.initiator).active:
            self.world.top_up(self.initiator, amount, now=self.world.now())

    @rule(how=st.sampled_from(["blocked_financial", "blocked_voluntary", "active"]))
    def set_status(self, how: str) -> None:
        before = self.world.get(self.initiator).status
        self.world.set_status(self.initiator, how, now=self.world.now())
        now = self.world.now()
        if before is SubscriberStatus.ACTIVE and how != "active":
            self.blocked.append([now, 2**62])
        elif before is not SubscriberStatus.ACTIVE and how == "active":
            self.blocked[-1][1] = now

    @invariant()
    def the_fee_is_52_or_2_10_and_never_charged_while_blocked(self) -> None:
        if not hasattr(self, "world"):
            return
        fees = [e for e in self.world.ledger(self.initiator)
                if e.reason == "fee" and e.reference == sb.FEE_CODE]  # fmt: skip
        assert all(-e.amount in (5200, 210) for e in fees)
        for entry in fees:
            assert not any(start < entry.at < end for start, end in self.blocked)
        days = Counter(local_day(e.at, 3 * HOUR) for e in fees if e.amount == -210)
        assert all(count == 1 for count in days.values())
        records = self.world.fee_records(self.initiator, code=sb.FEE_CODE)
        assert -sum(e.amount for e in fees) == sum(
            r.amount_charged for r in records if r.status is FeeStatus.PAID
        )
        ledger_matches_balances(self.world, (self.initiator,))


def test_mp_17_the_fee_over_simulated_months_matches_the_ledger_to_the_kopeck() -> None:
    """MP-17: monthly, daily fallback and blocks in any order; the ledger checked to the kopeck."""
    run_state_machine_as_test(
        SharedBundleFee, settings=settings(STATEFUL, max_examples=20, stateful_step_count=15)
    )
