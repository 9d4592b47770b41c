"""Tests of services/charging.py: usage (CU-01, CU-02), fees and billing days on the clock."""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import pytest
from twisted.internet import task

from services import charging
from services.charging import Claim, FeeContext, FeeResult, Then, Usage, UsageResult
from services.clock import DAY, HOUR, SimClock
from services.model import (
    FeeAdjustment,
    FeeStatus,
    InvalidValue,
    Package,
    Period,
    RecurringCharge,
    UsageKind,
    WrongType,
)
from services.outbox import Reply, render
from services.profiles import Profiles, load_profiles
from services.store import SqliteStore
from services.world import World

START = int(dt.datetime(2024, 1, 31, 9, 0, tzinfo=dt.UTC).timestamp())  # 12:00 in Moscow
PROFILES: Profiles = load_profiles()


def make_world() -> tuple[World, task.Clock]:
    source = task.Clock()
    source.advance(START)
    return World(SqliteStore(), PROFILES, SimClock(source)), source


@pytest.fixture
def world() -> World:
    return make_world()[0]


def create(world: World, msisdn: str, tariff: str, balance: int = 0, **kw: Any) -> None:
    profile = {"7916": "mts", "7952": "tele2ru", "3598": "telenor", "7701": "tele2kz"}[msisdn[:4]]
    world.create_subscriber(
        msisdn=msisdn, profile=profile, tariff=tariff, now=START, balance=balance, **kw
    )


def use(world: World, msisdn: str, kind: str, amount: int, **kw: object) -> UsageResult:
    return charging.record_usage(world, msisdn, kind, amount, now=START, **kw)  # type: ignore[arg-type]


def texts(world: World, replies: tuple[Reply, ...] | list[Reply]) -> list[str]:
    return [render(r, world.profiles) for r in replies]


def ledger_sum(world: World, msisdn: str) -> int:
    return sum(e.amount for e in world.ledger(msisdn))


# -- usage (CU-01) --------------------------------------------------------------------------------


def test_cu_01_own_packages_pay_first_then_the_tariff_rate_from_the_balance(world: World) -> None:
    """Minutes come from the package until it is spent, then at the tariff's rate."""
    create(world, "79160000001", "nash_smart", balance=10_000)
    first = use(world, "79160000001", "voice", 590)
    assert first.billed == 0 and first.refused == 0 and first.paid_by[0][1] == 590
    second = use(world, "79160000001", "voice", 30)
    package = second.paid_by[0][0]
    assert second.paid_by == ((package, 10), ("tariff", 20))
    assert second.billed == 20 * 250
    assert texts(world, second.replies) == ["Пакет «600 минут» израсходован."]
    sub = world.get("79160000001")
    assert sub.balance == 5_000 == ledger_sum(world, sub.msisdn)
    log = world.usage_log(sub.msisdn)
    assert [(r.kind, r.amount, r.billed) for r in log] == [("voice", 590, 0), ("voice", 30, 5000)]


def test_cu_01_a_destination_package_pays_only_its_destination(world: World) -> None:
    """Telenor «network» minutes pay network calls, not calls to other networks."""
    create(world, "359881000001", "prepaid_7", balance=1_000)
    network = use(world, "359881000001", "voice", 10, destination="network")
    assert network.billed == 0 and network.paid_by[0][0].startswith("package:")
    other = use(world, "359881000001", "voice", 10)
    assert other.paid_by == (("tariff", 10),) and other.billed == 360
    with pytest.raises(InvalidValue):
        use(world, "359881000001", "voice", 1, destination="moon")


def test_cu_01_data_without_a_package_or_per_mb_rate_is_refused(world: World) -> None:
    """«Наш Smart» has no pay-per-use internet: past the package it is suspended."""
    create(world, "79160000001", "nash_smart", balance=100_000)
    result = use(world, "79160000001", "data", 15_400)
    assert result.refused == 40 and result.refusal == "internet_suspended" and result.billed == 0
    assert texts(world, result.replies)[-1].startswith("Доступ в интернет приостановлен")
    assert world.get("79160000001").balance == 100_000


def test_cu_01_billing_stops_where_the_money_ends_with_notices(world: World) -> None:
    """Pay-per-use goes as far as the balance, then refuses; low balance is told once."""
    create(world, "79160000011", "super_mts", balance=6_000)
    result = use(world, "79160000011", "data", 10)
    assert result.paid_by == (("tariff", 6),) and result.billed == 5_940 and result.refused == 4
    assert result.refusal == "insufficient_funds"
    assert [r.template for r in result.replies] == ["low_balance", "insufficient_funds"]
    assert world.get("79160000011").balance == 60
    postpaid = "359881000032"
    create(world, postpaid, "unlimited_postpaid", balance=0)
    world.take_from_packages(postpaid, "data", 20480, now=START)
    over = use(world, postpaid, "data", 2_000)
    assert over.billed == 10_000 and over.refused == 1_000
    assert world.get(postpaid).balance == -10_000


def test_cu_01_blocked_subscribers_cannot_use_anything(world: World) -> None:
    """A blocked number's use is refused outright, and still recorded."""
    create(world, "79160000004", "nash_smart", balance=50_000, status="blocked_financial")
    result = use(world, "79160000004", "sms", 1)
    assert result.refused == 1 and result.refusal == "not_active" and result.paid_by == ()
    assert world.usage_log("79160000004")[0].refused == 1


def test_cu_01_bad_usage_input_is_refused_with_codes(world: World) -> None:
    """Kind, amount, abroad and country are checked before anything is charged."""
    create(world, "79160000001", "nash_smart")
    for kwargs, error in (
        ({"kind": "fax", "amount": 1}, InvalidValue),
        ({"kind": "sms", "amount": 0}, InvalidValue),
        ({"kind": "sms", "amount": 1.5}, WrongType),
        ({"kind": "sms", "amount": 1, "abroad": True}, InvalidValue),
        ({"kind": "sms", "amount": 1, "abroad": "yes", "country": "TR"}, WrongType),
    ):
        with pytest.raises(error):
            use(world, "79160000001", **kwargs)  # type: ignore[arg-type]
    assert world.usage_log("79160000001") == []


@attrs.define
class SharedPool:
    """A test usage source: pays voice from a pool, then says what happens to the rest."""

    name: str
    pool: int
    then: Then
    members: tuple[str, ...]
    calls: list[int] = attrs.field(factory=list)

    def claim(self, world: World, usage: Usage, remaining: int) -> Claim | None:
        if usage.subscriber.msisdn not in self.members or usage.kind is not UsageKind.VOICE:
            return None
        self.calls.append(remaining)
        portion = min(self.pool, remaining)
        self.pool -= portion
        return Claim(
            paid=((self.name, portion),) if portion else (), then=self.then, reason="limit"
        )


@pytest.mark.parametrize(
    ("then", "paid_by", "refused"),
    [
        (Then.CONTINUE, [("pool", 50), ("package", 100), ("tariff", 50)], 0),
        (Then.BILL, [("pool", 50), ("tariff", 150)], 0),
        (Then.REFUSE, [("pool", 50)], 150),
    ],
)
def test_cu_01_usage_sources_pay_first_and_decide_the_rest(
    world: World, then: Then, paid_by: list[tuple[str, int]], refused: int
) -> None:
    """A service's source pays before the own packages; CONTINUE/BILL/REFUSE route the rest."""
    create(world, "79160000011", "super_mts", balance=100_000)
    world.grant_package("79160000011", kind="voice", amount=100, now=START, valid_until=None)
    source = SharedPool("pool", pool=50, then=then, members=("79160000011",))
    world.add_usage_source(source)
    result = use(world, "79160000011", "voice", 200)
    got = [(name.split(":")[0], n) for name, n in result.paid_by]
    assert got == paid_by and result.refused == refused
    assert sum(n for _, n in result.paid_by) + result.refused == 200
    if then is Then.REFUSE:
        assert result.refusal == "limit"
    create(world, "79160000012", "super_mts", balance=1000)
    assert use(world, "79160000012", "voice", 1).paid_by == (("tariff", 1),)
    assert source.calls == [200]


def test_cu_01_usage_sources_are_asked_in_priority_order(world: World) -> None:
    """Lower priority goes first, whatever the registration order."""
    create(world, "79160000011", "super_mts", balance=0)
    late = SharedPool("late", pool=10, then=Then.CONTINUE, members=("79160000011",))
    early = SharedPool("early", pool=10, then=Then.CONTINUE, members=("79160000011",))
    world.add_usage_source(late, priority=50)
    world.add_usage_source(early, priority=10)
    result = use(world, "79160000011", "voice", 15)
    assert result.paid_by == (("early", 10), ("late", 5))


def test_cu_01_abroad_the_roaming_option_opens_home_packages_for_a_fee_once_a_day(
    world: World,
) -> None:
    """«Забугорище»: home minutes work in Turkey after 200 ₽, charged once per local day."""
    create(world, "79160000002", "nash_smart", balance=100_000, options={"zabugorishche": None})
    first = use(world, "79160000002", "voice", 10, abroad=True, country="TR")
    assert first.billed == 0 and first.paid_by[0][0].startswith("package:")
    assert "roaming_day_charged" in [r.template for r in first.replies]
    again = charging.record_usage(
        world, "79160000002", "voice", 5, abroad=True, country="TR", now=START + 2 * HOUR
    )
    assert "roaming_day_charged" not in [r.template for r in again.replies]
    assert world.get("79160000002").balance == 80_000
    next_day = charging.record_usage(
        world, "79160000002", "voice", 5, abroad=True, country="TR", now=START + DAY
    )
    assert "roaming_day_charged" in [r.template for r in next_day.replies]
    elsewhere = use(world, "79160000002", "voice", 2, abroad=True, country="US")
    assert elsewhere.paid_by == (("tariff", 2),) and elsewhere.billed == 2 * 4900


def test_cu_01_abroad_without_roaming_terms_is_billed_at_roaming_rates(world: World) -> None:
    """Without an option, use abroad is billed by the tariff's abroad rates or refused."""
    create(world, "79160000001", "nash_smart", balance=10_000)
    sms = use(world, "79160000001", "sms", 1, abroad=True, country="DE")
    assert sms.billed == 1900 and sms.paid_by == (("tariff", 1),)
    data = use(world, "79160000001", "data", 5, abroad=True, country="DE")
    assert data.refused == 5 and data.refusal == "internet_suspended"


def test_cu_02_a_person_to_person_sms_is_charged_as_one_sms(world: World) -> None:
    """An SMS through the gateway takes one SMS from the package, or its price."""
    create(world, "79160000001", "nash_smart", balance=1_000)
    result = charging.charge_p2p_sms(world, "79160000001", START)
    assert result is not None and result.kind is UsageKind.SMS and result.amount == 1
    assert result.paid_by[0][0].startswith("package:")
    assert world.available("79160000001", "sms", now=START) == 599
    create(world, "79160000011", "super_mts", balance=250)
    paid = charging.charge_p2p_sms(world, "79160000011", START)
    assert paid is not None and paid.billed == 200 and world.get("79160000011").balance == 50
    refused = charging.charge_p2p_sms(world, "79160000011", START)
    assert refused is not None and refused.refused == 1
    assert charging.charge_p2p_sms(world, "79991234567", START) is None


# -- fees and billing days ------------------------------------------------------------------------


def test_the_billing_day_charges_the_fee_and_renews_the_packages(world: World) -> None:
    """On the monthly date the fee is debited, and the next period's packages replace the old."""
    create(world, "79160000001", "nash_smart", balance=100_000)
    use(world, "79160000001", "voice", 100)
    replies = world.advance(29 * DAY)  # 31 Jan + 1 month = 29 Feb 2024 (clamped)
    assert texts(world, replies) == [
        "Списана абонентская плата «Наш Smart»: 650,00 ₽. Баланс: 350,00 ₽."
    ]
    assert world.get("79160000001").balance == 35_000 == ledger_sum(world, "79160000001")
    assert world.available("79160000001", "voice", now=world.now()) == 600
    charge = world.get_recurring("79160000001", "tariff")
    assert charge is not None
    march_31 = dt.datetime.fromtimestamp(charge.next_at, dt.UTC)
    assert (march_31.month, march_31.day) == (3, 31)
    assert world.has_paid_fee("79160000001", now=world.now())


def test_a_month_of_billing_days_fires_in_order_with_their_own_times() -> None:
    """Advancing two months charges each subscriber on its own date, in time order."""
    world, source = make_world()
    create(world, "79160000001", "nash_smart", balance=500_000)
    source.advance(10 * DAY)
    world.create_subscriber(
        msisdn="79160000015", profile="mts", tariff="smart", now=world.now(), balance=500_000
    )
    assert world.run_due() == []
    world.advance(60 * DAY)
    fees = [e for e in world.ledger() if e.reason == "fee"]
    dates = [(e.msisdn, dt.datetime.fromtimestamp(e.at, dt.UTC).isoformat()) for e in fees]
    assert dates == [
        ("79160000001", "2024-02-29T09:00:00+00:00"),
        ("79160000015", "2024-03-10T09:00:00+00:00"),
        ("79160000001", "2024-03-31T09:00:00+00:00"),
        ("79160000015", "2024-04-10T09:00:00+00:00"),
    ]


def test_an_unpaid_fee_is_recorded_and_charged_at_the_next_top_up() -> None:
    """Too little money on the billing day: unpaid, no packages, charged when topped up."""
    world, _ = make_world()
    create(world, "79520000007", "moy_online", balance=60_000)
    world.advance(30 * DAY)
    assert world.get("79520000007").balance == 10_000
    replies = world.advance(31 * DAY)
    assert [r.template for r in replies] == ["fee_not_paid"]
    now = world.now()
    assert not world.has_paid_fee("79520000007", now=now)
    assert world.available("79520000007", "data", now=now) == 0
    assert world.fee_status("79520000007", now=now)[0].status is FeeStatus.UNPAID
    world.top_up("79520000007", 40_000, now=now + HOUR)
    assert world.has_paid_fee("79520000007", now=now + HOUR)
    assert world.get("79520000007").balance == 0
    assert world.available("79520000007", "data", now=now + HOUR) == 15360


def test_a_blocked_number_pays_no_fee_and_pays_it_when_unblocked() -> None:
    """Blocked on the billing day: the period is skipped; unblocking charges it."""
    world, _ = make_world()
    create(world, "79160000001", "nash_smart", balance=100_000)
    world.set_status("79160000001", "blocked_voluntary", now=START + DAY)
    world.advance(30 * DAY)
    assert world.get("79160000001").balance == 100_000
    record = world.fee_status("79160000001", now=world.now())[0]
    assert record.status is FeeStatus.SKIPPED
    replies = world.set_status("79160000001", "active", now=world.now())
    assert [r.template for r in replies] == ["fee_charged"]
    assert world.get("79160000001").balance == 35_000
    assert world.has_paid_fee("79160000001", now=world.now())


def test_a_fixed_billing_day_charges_on_that_day_of_the_month() -> None:
    """«Мой бизнес» bills on the 1st (postpaid: within its credit limit)."""
    world, _ = make_world()
    create(world, "79520000100", "moy_biznes", balance=0, segment="business", company="romashka")
    charge = world.get_recurring("79520000100", "tariff")
    assert charge is not None
    first = dt.datetime.fromtimestamp(charge.next_at, dt.UTC)
    assert (first.month, first.day, first.hour) == (1, 31, 21)  # 1 Feb 00:00 in Moscow
    world.advance(DAY)
    assert world.get("79520000100").balance == -60_000


def test_an_instalment_tariff_charges_the_fee_in_two_parts() -> None:
    """«Мой онлайн (рассрочка)»: half on the billing day, the other half mid-period."""
    world, _ = make_world()
    create(world, "79520000008", "moy_online_rassrochka", balance=100_000)

    def charged() -> list[tuple[int, int, int]]:
        return [
            (r.part, r.amount_charged, r.period_start)
            for r in world.fee_records("79520000008")
            if r.amount_charged
        ]

    world.advance(14 * DAY)
    assert charged() == []
    world.advance(DAY)  # the middle of the opening period (29 days long)
    assert charged() == [(2, 25_000, START)]
    world.advance(14 * DAY)  # 29 Feb: the next period, its first part
    assert charged() == [(2, 25_000, START), (1, 25_000, START + 29 * DAY)]
    assert not world.fee_records("79520000008", status=FeeStatus.UNPAID)
    assert world.get("79520000008").balance == 50_000 == ledger_sum(world, "79520000008")


def test_a_promo_defers_the_first_fee_until_it_ends() -> None:
    """«2 недели бесплатно»: no fee for 14 days from its activation, then monthly."""
    world, _ = make_world()
    create(
        world, "79520000009", "moy_online", balance=100_000,
        options={"promo_2_weeks": {"activated_at": START - 3 * DAY}},
    )  # fmt: skip
    charge = world.get_recurring("79520000009", "tariff")
    assert charge is not None and charge.next_at == START + 11 * DAY
    assert world.has_paid_fee("79520000009", now=START)
    world.advance(11 * DAY)
    assert world.get("79520000009").balance == 50_000
    charge = world.get_recurring("79520000009", "tariff")
    assert charge is not None and charge.next_at > START + 39 * DAY


def test_fee_adjusters_discount_the_fee_and_hooks_see_the_result() -> None:
    """A service's adjuster lowers the fee before the debit; on_fee hooks see the outcome."""
    world, _ = make_world()
    create(world, "79520000001", "moy_online", balance=100_000)
    seen: list[FeeResult] = []

    def ten_percent(context: FeeContext) -> FeeAdjustment | None:
        if context.code != "tariff":
            return None
        return FeeAdjustment(amount=context.amount * 9 // 10, reason="together", detail="-10%")

    world.add_fee_adjuster(ten_percent)

    def remember(result: FeeResult) -> list[Reply]:
        seen.append(result)
        return []

    world.on_fee(remember)
    world.advance(30 * DAY)
    assert world.get("79520000001").balance == 55_000
    fee = next(e for e in world.ledger("79520000001") if e.reason == "fee")
    assert (fee.amount, fee.reference, fee.detail) == (-45_000, "tariff", "together -10%")
    assert [(r.amount_due, r.amount, r.status) for r in seen] == [(50_000, 45_000, FeeStatus.PAID)]
    record = world.fee_status("79520000001", now=world.now())[0]
    assert (record.amount_due, record.amount_charged) == (50_000, 45_000)


def test_a_service_can_own_a_recurring_charge_with_its_handler() -> None:
    """A service schedules its own charge and runs it with its handler (as MP-17 needs)."""
    world, _ = make_world()
    create(world, "79160000003", "super_mts", balance=1_000)
    handled: list[tuple[RecurringCharge, int]] = []

    def daily(charge: RecurringCharge, due: int) -> list[Reply]:
        handled.append((charge, due))
        result = charging.collect_fee(
            world, charge.msisdn, code=charge.code, amount=charge.amount, now=due,
            period_start=due, period_end=due + DAY, name="Общий пакет",
        )  # fmt: skip
        world.reschedule(charge, next_at=due + DAY)
        return list(result.replies)

    world.set_recurring_handler("shared_bundle", daily)
    world.schedule_recurring(
        "79160000003", "shared_bundle_fee", amount=210, period=Period.DAY, next_at=START + HOUR,
        now=START, owner="shared_bundle",
    )  # fmt: skip
    world.advance(3 * DAY)
    assert [due for _, due in handled] == [START + HOUR, START + HOUR + DAY, START + HOUR + 2 * DAY]
    assert world.get("79160000003").balance == 1_000 - 3 * 210
    assert world.has_paid_fee("79160000003", now=world.now(), code="shared_bundle_fee")
    assert world.cancel_recurring("79160000003", "shared_bundle_fee")
    world.advance(DAY)
    assert len(handled) == 3
    with pytest.raises(ValueError):
        world.set_recurring_handler("core", daily)


def test_an_option_renews_monthly_and_ends_when_its_fee_cannot_be_paid() -> None:
    """Options are charged on their monthly date; unpaid, they are turned off with an SMS."""
    world, _ = make_world()
    create(world, "79160000013", "super_mts", balance=50_000)
    world.set_option("79160000013", "bit", now=START)
    assert world.get("79160000013").balance == 30_000
    world.advance(29 * DAY)
    assert world.get("79160000013").balance == 10_000
    assert world.available("79160000013", "data", now=world.now()) == 3072
    replies = world.advance(31 * DAY)
    assert [r.template for r in replies] == ["fee_not_paid", "option_off"]
    assert not world.get("79160000013").has_option("bit")
    assert world.available("79160000013", "data", now=world.now()) == 0


def test_one_off_options_grant_packages_for_their_validity(world: World) -> None:
    """A «Турбо-кнопка» is paid once and its data lasts its validity, then expires."""
    create(world, "79160000001", "nash_smart", balance=20_000)
    world.set_option("79160000001", "turbo_6h", now=START)
    assert world.get("79160000001").balance == 10_500
    assert world.get_recurring("79160000001", "option:turbo_6h") is None
    assert world.available("79160000001", "data", now=START + 5 * HOUR) == 15360 + 102400
    assert world.available("79160000001", "data", now=START + 6 * HOUR) == 15360


def test_package_expiry_runs_on_the_timeline_and_tells_the_hooks() -> None:
    """Packages end at valid_until when the clock passes it; hooks may answer (TS-08 style)."""
    world, _ = make_world()
    create(world, "359881000011", "prepaid_start", balance=0)
    granted = world.grant_package(
        "359881000011", kind="voice", amount=30, destination="network", now=START,
        valid_until=START + 72 * HOUR, source="time_share",
    )  # fmt: skip
    expired: list[int] = []

    def remember(package: Package) -> list[Reply]:
        expired.append(package.id)
        return []

    world.on_package_expired(remember)
    assert world.timeline.next_due() == START + 72 * HOUR
    world.advance(72 * HOUR - 1)
    assert expired == []
    world.advance(1)
    assert expired == [granted.id]
    assert world.packages("359881000011") == []
    assert world.packages("359881000011", include_expired=True)[0].expired_at == START + 72 * HOUR
