"""Property tests of charging and money (SPEC CU-01, CU-02): whatever happens, in any order.

A state machine drives a small world through usage (at home and abroad, through a
service's usage source), person-to-person SMS, top-ups, transfers, service charges,
options, tariff changes, blocks and the passing of months, and checks after every step
that balances stay within what their tariffs allow, that every balance is the sum of its
ledger (money is neither made nor lost), and that no package goes below zero.
"""

from __future__ import annotations

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from twisted.internet import task

from services import charging
from services.charging import Claim, Then, Usage
from services.clock import DAY, HOUR, SimClock
from services.model import DomainError, SubscriberStatus, UsageKind
from services.profiles import Profiles, load_profiles
from services.store import SqliteStore
from services.world import World

START = 1_700_000_000
PROFILES: Profiles = load_profiles()

#: (msisdn, profile, tariff, opening balance): prepaid with packages, pay-as-you-go,
#: postpaid in debt within its credit limit, an instalment tariff.
CAST = (
    ("79160000001", "mts", "nash_smart", 70_000),
    ("79160000011", "mts", "super_mts", 3_000),
    ("359881000032", "telenor", "unlimited_postpaid", -4_000),
    ("359881000001", "telenor", "prepaid_7", 900),
    ("79520000008", "tele2ru", "moy_online_rassrochka", 60_000),
)
NUMBERS = [c[0] for c in CAST]
OTHER_TARIFFS = {
    "mts": ["nash_smart", "super_mts", "smart", "hype"],
    "telenor": ["prepaid_7", "prepaid_start", "unlimited_postpaid", "visitor"],
    "tele2ru": ["moy_online", "moy_online_rassrochka", "klassicheskiy", "moy_biznes"],
}
OPTIONS = {
    "mts": ["bit", "internet_mini", "turbo_6h", "zabugorishche"],
    "telenor": ["minutes_network_100"],
    "tele2ru": ["avtoplatezh"],
}


@attrs.define
class Pool:
    """A usage source like a shared bundle: pays from a pool, then routes the rest."""

    name: str = "pool"
    remaining: int = 300
    then: Then = Then.CONTINUE

    def claim(self, world: World, usage: Usage, remaining: int) -> Claim | None:
        if usage.subscriber.msisdn != "79160000011" or usage.kind is UsageKind.DATA:
            return None
        portion = min(self.remaining, remaining)
        self.remaining -= portion
        return Claim(paid=((self.name, portion),) if portion else (), then=self.then)


def make_world() -> tuple[World, task.Clock]:
    source = task.Clock()
    source.advance(START)
    world = World(SqliteStore(), PROFILES, SimClock(source))
    for msisdn, profile, tariff, balance in CAST:
        world.create_subscriber(
            msisdn=msisdn, profile=profile, tariff=tariff, now=START, balance=balance
        )
    return world, source


class ChargingMachine(RuleBasedStateMachine):
    """Random sequences of everything that moves money or packages."""

    def __init__(self) -> None:
        super().__init__()
        self.world, self.source = make_world()
        self.pool = Pool()

    @initialize(then=st.sampled_from(Then))
    def install_pool(self, then: Then) -> None:
        self.pool.then = then
        self.world.add_usage_source(self.pool)

    def now(self) -> int:
        return self.world.now()

    @rule(
        msisdn=st.sampled_from(NUMBERS),
        kind=st.sampled_from(UsageKind),
        amount=st.integers(1, 3000),
        destination=st.sampled_from(["any", "network"]),
        abroad=st.sampled_from([None, "TR", "US"]),
    )
    def use(
        self, msisdn: str, kind: UsageKind, amount: int, destination: str, abroad: str | None
    ) -> None:
        before = self.world.get(msisdn).balance
        result = charging.record_usage(
            self.world, msisdn, kind, amount, destination=destination,
            abroad=abroad is not None, country=abroad, now=self.now(),
        )  # fmt: skip
        assert sum(n for _, n in result.paid_by) + result.refused == amount
        assert all(n > 0 for _, n in result.paid_by)
        assert result.billed >= 0
        spent = before - self.world.get(msisdn).balance
        assert spent >= result.billed  # plus a roaming day's fee, at most
        if result.refused == 0:
            assert result.refusal is None

    @rule(msisdn=st.sampled_from(NUMBERS))
    def p2p_sms(self, msisdn: str) -> None:
        result = charging.charge_p2p_sms(self.world, msisdn, self.now())
        assert result is not None and result.amount == 1

    @rule(msisdn=st.sampled_from(NUMBERS), amount=st.integers(1, 100_000))
    def top_up(self, msisdn: str, amount: int) -> None:
        if self.world.get(msisdn).status is SubscriberStatus.TERMINATED:
            return
        self.world.top_up(msisdn, amount, now=self.now())

    @rule(
        source=st.sampled_from(NUMBERS),
        destination=st.sampled_from(NUMBERS),
        amount=st.integers(1, 50_000),
    )
    def transfer(self, source: str, destination: str, amount: int) -> None:
        total = sum(self.world.get(m).balance for m in NUMBERS)
        try:
            self.world.transfer(source, destination, amount, now=self.now(), reason="transfer")
        except DomainError:
            pass
        assert sum(self.world.get(m).balance for m in NUMBERS) == total

    @rule(msisdn=st.sampled_from(NUMBERS), amount=st.integers(1, 20_000))
    def service_charge(self, msisdn: str, amount: int) -> None:
        try:
            self.world.debit(msisdn, amount, now=self.now(), reason="service", reference="test")
        except DomainError:
            pass

    @rule(msisdn=st.sampled_from(NUMBERS), data=st.data())
    def toggle_option(self, msisdn: str, data: st.DataObject) -> None:
        profile = self.world.get(msisdn).profile
        code = data.draw(st.sampled_from(OPTIONS[profile]))
        try:
            if self.world.get(msisdn).has_option(code):
                self.world.remove_option(msisdn, code, now=self.now())
            else:
                self.world.set_option(msisdn, code, now=self.now())
        except DomainError:
            pass

    @rule(msisdn=st.sampled_from(NUMBERS), data=st.data())
    def change_tariff(self, msisdn: str, data: st.DataObject) -> None:
        profile = self.world.get(msisdn).profile
        tariff = data.draw(st.sampled_from(OTHER_TARIFFS[profile]))
        try:
            self.world.change_tariff(msisdn, tariff, now=self.now())
        except DomainError:
            pass

    @rule(msisdn=st.sampled_from(NUMBERS), status=st.sampled_from(SubscriberStatus))
    def set_status(self, msisdn: str, status: SubscriberStatus) -> None:
        try:
            self.world.set_status(msisdn, status, now=self.now())
        except DomainError:
            pass

    @rule(seconds=st.integers(1, 40 * DAY))
    def time_passes(self, seconds: int) -> None:
        self.world.advance(seconds)
        assert self.world.timeline.next_due() is None or self.world.timeline.next_due() > self.now()  # type: ignore[operator]

    @precondition(lambda self: self.source.seconds() < START + 400 * DAY)
    @rule(seconds=st.integers(1, 6 * HOUR))
    def real_time_passes(self, seconds: int) -> None:
        self.source.advance(seconds)
        self.world.run_due()

    @invariant()
    def balances_stay_within_what_the_tariff_allows(self) -> None:
        for subscriber in self.world.subscribers():
            assert subscriber.balance >= -self.world.tariff_of(subscriber).credit_limit

    @invariant()
    def money_is_conserved_every_balance_is_its_ledger(self) -> None:
        for subscriber in self.world.subscribers():
            assert subscriber.balance == sum(e.amount for e in self.world.ledger(subscriber.msisdn))

    @invariant()
    def packages_never_go_negative(self) -> None:
        for msisdn in NUMBERS:
            for package in self.world.packages(msisdn, include_expired=True):
                assert 0 <= package.remaining <= package.initial

    @invariant()
    def fees_charged_never_exceed_what_was_due(self) -> None:
        for msisdn in NUMBERS:
            for record in self.world.fee_records(msisdn):
                assert 0 <= record.amount_charged <= record.amount_due


TestCharging = ChargingMachine.TestCase
TestCharging.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)


@settings(max_examples=80, deadline=None)
@given(
    balance=st.integers(0, 20_000),
    amounts=st.lists(st.tuples(st.sampled_from(UsageKind), st.integers(1, 2_000)), max_size=8),
)
def test_cu_01_every_unit_is_paid_once_or_refused(
    balance: int, amounts: list[tuple[UsageKind, int]]
) -> None:
    """CU-01: each unit is paid by exactly one source or refused; billing is units × rate."""
    world, _ = make_world()
    world.adjust_balance("79160000011", balance, now=START)
    rates = PROFILES["mts"].tariffs["super_mts"].rates
    for kind, amount in amounts:
        before = world.get("79160000011").balance
        result = charging.record_usage(world, "79160000011", kind, amount, now=START)
        billed_units = sum(n for source, n in result.paid_by if source == "tariff")
        assert result.billed == billed_units * (rates.price(kind) or 0)
        assert before - world.get("79160000011").balance == result.billed
        assert sum(n for _, n in result.paid_by) + result.refused == amount
        assert world.get("79160000011").balance >= 0
