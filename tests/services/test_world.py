"""Tests of services/world.py: subscribers, changes, hooks, money and persistence in the store."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from twisted.internet import task

from services.clock import DAY, SimClock
from services.model import (
    DomainError,
    DuplicateMsisdn,
    InsufficientFunds,
    InvalidTransition,
    InvalidValue,
    SubscriberChanged,
    SubscriberStatus,
    UnknownField,
    UnknownMsisdn,
    UnknownOption,
    UnknownProfile,
    UnknownTariff,
    UsageKind,
    WrongType,
    to_json,
)
from services.outbox import Reply
from services.profiles import Profiles, load_profiles
from services.store import SqliteStore
from services.world import World

START = 1_700_000_000
PROFILES: Profiles = load_profiles()


def make_world(path: str = ":memory:", offset: int = 0) -> tuple[World, task.Clock]:
    source = task.Clock()
    source.advance(START)
    return World(SqliteStore(path), PROFILES, SimClock(source, offset)), source


@pytest.fixture
def world() -> World:
    return make_world()[0]


def smart(world: World, msisdn: str = "79160000001", balance: int = 100_000, **kw: Any) -> None:
    world.create_subscriber(
        msisdn=msisdn, profile="mts", tariff="nash_smart", now=START, balance=balance, **kw
    )


def ledger_sum(world: World, msisdn: str) -> int:
    return sum(entry.amount for entry in world.ledger(msisdn))


def test_create_subscriber_with_defaults_and_current_period(world: World) -> None:
    """A new subscriber keeps its balance, gets its tariff's packages and a paid period."""
    sub = world.create_subscriber(
        msisdn="79160000001", profile="mts", tariff="Наш Smart", now=START, balance=50_000
    )
    assert sub.tariff == "nash_smart" and sub.status is SubscriberStatus.ACTIVE
    assert sub.region == "moscow" and sub.owner_id == "owner-79160000001"
    assert sub.balance == 50_000 == ledger_sum(world, sub.msisdn)
    packages = {p.kind: p.remaining for p in world.packages(sub.msisdn, now=START)}
    assert packages == {UsageKind.DATA: 15360, UsageKind.VOICE: 600, UsageKind.SMS: 600}
    assert world.has_paid_fee(sub.msisdn, now=START)
    charge = world.get_recurring(sub.msisdn, "tariff")
    assert charge is not None and charge.amount == 65000 and charge.next_at > START + 27 * DAY


@pytest.mark.parametrize(
    ("changes", "error", "field"),
    [
        ({"profile": "vodafone"}, UnknownProfile, "profile"),
        ({"tariff": "Безлимит"}, UnknownTariff, "tariff"),
        ({"msisdn": "89160000001"}, InvalidValue, "msisdn"),
        ({"msisdn": 79160000001}, WrongType, "msisdn"),
        ({"balance": "100"}, WrongType, "balance"),
        ({"balance": -1}, InvalidValue, "balance"),
        ({"status": "sleeping"}, InvalidValue, "status"),
        ({"region": "kazan"}, InvalidValue, "region"),
        ({"segment": "government"}, InvalidValue, "segment"),
        ({"options": {"no_such": None}}, UnknownOption, "options"),
        ({"options": {"zabugorishche": {"colour": "red"}}}, UnknownField, None),
        ({"options": "bit"}, WrongType, "options"),
    ],
)
def test_create_subscriber_refuses_bad_input_with_stable_codes(
    world: World, changes: dict[str, object], error: type[DomainError], field: str | None
) -> None:
    """Each bad input is its own DomainError with a stable code for the control API."""
    arguments: dict[str, object] = {
        "msisdn": "79160000001", "profile": "mts", "tariff": "nash_smart", "now": START,
    }  # fmt: skip
    arguments.update(changes)
    with pytest.raises(error) as caught:
        world.create_subscriber(**arguments)  # type: ignore[arg-type]
    assert caught.value.code == error.code
    if field is not None:
        assert caught.value.field == field
    assert world.find("79160000001") is None


def test_duplicate_and_unknown_msisdns_are_refused(world: World) -> None:
    """A second subscriber with the same MSISDN, or an unknown one, has its own code."""
    smart(world)
    with pytest.raises(DuplicateMsisdn) as caught:
        smart(world)
    assert caught.value.code == "duplicate_msisdn" and caught.value.http_status == 409
    with pytest.raises(UnknownMsisdn) as unknown:
        world.get("79169999999")
    assert unknown.value.code == "unknown_msisdn" and unknown.value.http_status == 404


def test_postpaid_balance_may_start_below_zero_within_the_credit_limit(world: World) -> None:
    """Only a tariff's credit limit lets a balance be negative."""
    world.create_subscriber(
        msisdn="359881000032", profile="telenor", tariff="unlimited_postpaid", now=START,
        balance=-5000,
    )  # fmt: skip
    assert world.spendable("359881000032") == 5000
    with pytest.raises(InvalidValue):
        world.create_subscriber(
            msisdn="359881000033", profile="telenor", tariff="unlimited_postpaid", now=START,
            balance=-10001,
        )  # fmt: skip


def test_a_subscriber_survives_closing_and_reopening_the_store(tmp_path: Path) -> None:
    """Persistence: what was committed is there when the state file is opened again."""
    path = str(tmp_path / "state.sqlite3")
    world, _ = make_world(path)
    smart(world, options={"zabugorishche": {}})
    world.top_up("79160000001", 5000, now=START + 10)
    world.store.close()  # type: ignore[attr-defined]
    again, _ = make_world(path)
    sub = again.get("79160000001")
    assert sub.balance == 105_000 == ledger_sum(again, sub.msisdn)
    assert sub.has_option("zabugorishche")
    assert [t.amount for t in again.topups(sub.msisdn)] == [5000]
    assert again.get_recurring(sub.msisdn, "tariff") is not None


def test_the_clock_offset_survives_a_restart(tmp_path: Path) -> None:
    """Time a tester moved forward stays moved after the gateway restarts."""
    path = str(tmp_path / "state.sqlite3")
    world, _ = make_world(path)
    world.advance(3 * DAY)
    assert world.now() == START + 3 * DAY
    world.store.close()  # type: ignore[attr-defined]
    again, _ = make_world(path)
    assert again.now() == START + 3 * DAY


def test_patch_applies_everything_or_nothing(world: World) -> None:
    """A PATCH whose last change fails leaves the subscriber exactly as it was."""
    smart(world, balance=1000)
    with pytest.raises(UnknownTariff):
        world.patch(
            "79160000001", {"top_up": 5000, "owner_id": "someone", "tariff": "x"}, now=START
        )
    sub = world.get("79160000001")
    assert sub.balance == 1000 and sub.owner_id == "owner-79160000001"
    assert world.topups(sub.msisdn) == [] and world.changes(sub.msisdn) == []


def test_patch_refuses_unknown_fields_and_wrong_types(world: World) -> None:
    """Unknown keys and wrong types get their own codes."""
    smart(world)
    with pytest.raises(UnknownField) as caught:
        world.patch("79160000001", {"balance": 5}, now=START)
    assert caught.value.field == "balance"
    for changes in ({"top_up": "5"}, {"status": 1}, {"options": ["bit"]}, {"options": {"bit": 1}}):
        with pytest.raises(WrongType):
            world.patch("79160000001", changes, now=START)


def test_patch_tops_up_before_changing_tariff_and_turns_options_on_and_off(world: World) -> None:
    """Money first, then the tariff (its fee paid by the top-up), then options."""
    world.create_subscriber(
        msisdn="79160000011", profile="mts", tariff="super_mts", now=START, balance=0
    )
    replies = world.patch(
        "79160000011",
        {"top_up": 80_000, "tariff": "smart", "options": {"bit": True}, "owner_id": "new"},
        now=START + 60,
    )
    sub = world.get("79160000011")
    assert sub.tariff == "smart" and sub.owner_id == "new" and sub.has_option("bit")
    assert sub.balance == 80_000 - 55_000 - 20_000
    assert {r.template for r in replies} >= {"topup_received", "tariff_changed", "option_on"}
    assert [c.field for c in world.changes(sub.msisdn)] == ["owner_id", "tariff", "option:bit"]
    world.patch("79160000011", {"options": {"bit": False}}, now=START + 120)
    assert not world.get("79160000011").has_option("bit")


def test_change_hooks_run_inside_the_transaction_and_return_replies(world: World) -> None:
    """on_change sees each change (MP-21, TV-11 react); a hook's refusal undoes the change."""
    seen: list[SubscriberChanged] = []

    def hook(event: SubscriberChanged) -> list[Reply]:
        seen.append(event)
        if event.field == "owner_id" and event.new == "forbidden":
            raise InvalidTransition("not this owner")
        return [Reply(to=event.msisdn, sender="434", template="x", profile="mts")]

    world.on_change(hook)
    smart(world)
    replies = world.change_tariff("79160000001", "smart", now=START + 5)
    assert seen[-1] == SubscriberChanged(
        msisdn="79160000001", field="tariff", old="nash_smart", new="smart", at=START + 5
    )
    assert replies[-1].template == "x"
    with pytest.raises(InvalidTransition):
        world.change_owner("79160000001", "forbidden", now=START + 6)
    assert world.get("79160000001").owner_id == "owner-79160000001"
    assert [c.field for c in world.changes("79160000001")] == ["tariff"]


def test_a_caller_groups_operations_and_a_failed_one_is_undone_alone(world: World) -> None:
    """Operations join the caller's transaction; a refused one rolls back only itself."""
    with pytest.raises(RuntimeError), world.transaction():
        smart(world)
        world.top_up("79160000001", 1000, now=START)
        raise RuntimeError("the caller changes its mind")
    assert world.find("79160000001") is None

    with world.transaction():
        smart(world, balance=1000)
        with pytest.raises(InsufficientFunds):
            world.set_option("79160000001", "internet_vip", now=START)  # 1200 ₽ > 10 ₽
        world.top_up("79160000001", 500, now=START)
    sub = world.get("79160000001")
    assert sub.balance == 1500 and not sub.has_option("internet_vip")
    assert world.packages(sub.msisdn, now=START) and all(
        p.source == "tariff" for p in world.packages(sub.msisdn)
    )


def test_tariff_change_charges_the_new_fee_and_replaces_the_packages(world: World) -> None:
    """A new tariff: first fee now, old packages end, new period from the change."""
    smart(world, balance=60_000)
    old = world.packages("79160000001")
    world.change_tariff("79160000001", "smart", now=START + DAY)
    sub = world.get("79160000001")
    assert sub.balance == 5_000 and sub.tariff_since == START + DAY
    live = world.packages(sub.msisdn, now=START + DAY)
    assert {p.label for p in live} == {"Интернет 10 ГБ", "500 минут", "500 SMS"}
    ended = {p.id: p.expired_at for p in world.packages(sub.msisdn, include_expired=True)}
    assert old and all(ended[p.id] == START + DAY for p in old)
    with pytest.raises(InsufficientFunds):
        world.change_tariff("79160000001", "hype", now=START + 2 * DAY)
    assert world.get("79160000001").tariff == "smart"


def test_status_transitions_and_terminated_is_final(world: World) -> None:
    """Block, unblock and terminate are recorded; a terminated number cannot change."""
    smart(world)
    world.set_status("79160000001", "blocked_voluntary", now=START + 1)
    world.set_status("79160000001", SubscriberStatus.ACTIVE, now=START + 2)
    world.set_status("79160000001", "terminated", now=START + 3)
    assert [(c.old, c.new) for c in world.changes("79160000001")] == [
        ("active", "blocked_voluntary"),
        ("blocked_voluntary", "active"),
        ("active", "terminated"),
    ]
    assert world.recurring("79160000001") == []
    assert world.packages("79160000001", now=START + 3) == []
    with pytest.raises(InvalidTransition):
        world.set_status("79160000001", "active", now=START + 4)
    with pytest.raises(InvalidTransition):
        world.top_up("79160000001", 100, now=START + 4)
    with pytest.raises(InvalidTransition):
        world.change_tariff("79160000001", "smart", now=START + 4)


def test_options_turn_on_with_their_fee_and_packages_and_off_without(world: World) -> None:
    """«Интернет-Mini»: 350 ₽ now, 3 GB until the renewal; off ends both."""
    smart(world, balance=100_000)
    replies = world.set_option("79160000001", "Интернет-Mini", now=START + 10)
    assert world.get("79160000001").balance == 65_000
    assert [r.template for r in replies] == ["option_on", "fee_charged"]
    assert world.available("79160000001", "data", now=START + 10) == 15360 + 3072
    assert world.get_recurring("79160000001", "option:internet_mini") is not None
    world.remove_option("79160000001", "internet_mini", now=START + 20)
    assert world.available("79160000001", "data", now=START + 20) == 15360
    assert world.get_recurring("79160000001", "option:internet_mini") is None
    with pytest.raises(UnknownOption):
        world.set_option("79160000001", "no_such_option", now=START)


def test_option_parameters_are_typed_and_can_be_changed_later(world: World) -> None:
    """«Автоплатеж» with a Visa card and its registration time (TV-09's facts)."""
    world.create_subscriber(
        msisdn="79520000001", profile="tele2ru", tariff="moy_online", now=START,
        options={"avtoplatezh": {"activated_at": START - 10 * DAY}},
    )  # fmt: skip
    state = world.get("79520000001").option("avtoplatezh")
    assert state is not None and state.activated_at == START - 10 * DAY and dict(state.params) == {}
    world.set_option(
        "79520000001", "avtoplatezh", now=START, params={"visa": True, "card_registered_at": START}
    )
    state = world.get("79520000001").option("avtoplatezh")
    assert state is not None and dict(state.params) == {"visa": True, "card_registered_at": START}
    assert state.activated_at == START - 10 * DAY
    with pytest.raises(WrongType):
        world.set_option("79520000001", "avtoplatezh", now=START, params={"visa": "yes"})


def test_top_up_is_kept_in_history_and_pays_an_unpaid_fee(world: World) -> None:
    """A top-up credits the ledger, joins the history (TS-09 reads it) and pays the period."""
    world.create_subscriber(
        msisdn="79520000007", profile="tele2ru", tariff="moy_online", now=START, balance=10_000,
        fee_paid=False,
    )  # fmt: skip
    assert not world.has_paid_fee("79520000007", now=START)
    assert world.packages("79520000007", now=START) == []
    replies = world.top_up("79520000007", 45_000, now=START + DAY, method="card")
    assert world.has_paid_fee("79520000007", now=START + DAY)
    assert world.get("79520000007").balance == 5_000 == ledger_sum(world, "79520000007")
    assert world.available("79520000007", "data", now=START + DAY) == 15360
    assert [r.template for r in replies] == ["topup_received", "fee_charged"]
    last = world.last_topup("79520000007")
    assert last is not None and (last.amount, last.at, last.method) == (45_000, START + DAY, "card")


def test_transfer_and_adjustments_go_through_the_ledger(world: World) -> None:
    """Money moves only by ledger entries; balances never drop below what is allowed."""
    smart(world, "79160000001", balance=10_000)
    smart(world, "79160000002", balance=0)
    out, into = world.transfer("79160000001", "79160000002", 2_500, now=START, reason="gift")
    assert out.amount + into.amount == 0
    world.adjust_balance("79160000002", -500, now=START)
    with pytest.raises(InsufficientFunds):
        world.transfer("79160000002", "79160000001", 2_001, now=START, reason="gift")
    with pytest.raises(InsufficientFunds):
        world.debit("79160000001", 7_501, now=START, reason="test")
    for msisdn, balance in (("79160000001", 7_500), ("79160000002", 2_000)):
        assert world.get(msisdn).balance == balance == ledger_sum(world, msisdn)


def test_packages_are_taken_earliest_expiry_first_and_never_below_zero(world: World) -> None:
    """take_from_packages drains the package that ends first; consume never overdraws."""
    world.create_subscriber(
        msisdn="359881000027", profile="telenor", tariff="prepaid_start", now=START
    )
    late = world.grant_package(
        "359881000027", kind="voice", amount=30, destination="network", now=START,
        valid_until=START + 10 * DAY,
    )  # fmt: skip
    early = world.grant_package(
        "359881000027", kind="voice", amount=20, destination="network", now=START,
        valid_until=START + 3 * DAY,
    )  # fmt: skip
    world.grant_package(
        "359881000027", kind="voice", amount=40, destination="friends", now=START, valid_until=None
    )
    assert world.available("359881000027", "voice", now=START, destination="network") == 50
    taken = world.take_from_packages("359881000027", "voice", 25, now=START, destination="network")
    assert [(p.id, n) for p, n in taken] == [(early.id, 20), (late.id, 5)]
    with pytest.raises(InvalidValue):
        world.consume_package(late.id, 26)
    assert world.available("359881000027", "voice", now=START, destination="network") == 25
    with pytest.raises(InvalidValue):
        world.grant_package("359881000027", kind="fax", amount=1, now=START, valid_until=None)
    with pytest.raises(InvalidValue):
        world.grant_package(
            "359881000027", kind="voice", amount=1, now=START, valid_until=None, destination="moon"
        )


def test_subscribers_are_listed_by_profile_company_and_account(world: World) -> None:
    """Listing filters (BQ-02 lists a company's numbers)."""
    world.load_demo(now=START)
    romashka = world.subscribers(company="romashka")
    assert [s.msisdn for s in romashka] == ["79520000100", "79520000101", "79520000102"]
    assert all(s.profile == "tele2ru" for s in romashka)
    assert {s.msisdn for s in world.subscribers(account="els-1001")} == {
        "79520000011",
        "79520000012",
    }
    telenor = world.subscribers(profile="telenor")
    assert len(telenor) == len(PROFILES["telenor"].demo)
    assert world.subscribers(status="blocked_financial", profile="mts")[0].msisdn == "79160000004"


def test_demo_is_loaded_once_with_relative_times(tmp_path: Path) -> None:
    """load_demo seeds the store on first start only; «40d ago» is 40 days before then."""
    path = str(tmp_path / "state.sqlite3")
    world, _ = make_world(path)
    created = world.load_demo(now=START)
    assert len(created) == sum(len(p.demo) for p in PROFILES.values())
    last = world.last_topup("359881000024")
    assert last is not None and last.at == START - 40 * DAY
    visa = world.get("79520000004").option("avtoplatezh")
    assert visa is not None and visa.params["card_registered_at"] == START - 10 * DAY
    assert visa.activated_at == START - 30 * DAY
    assert world.get("79520000001").balance == 80_000 == ledger_sum(world, "79520000001")
    world.store.close()  # type: ignore[attr-defined]
    again, _ = make_world(path)
    assert again.load_demo(now=START + DAY) == []
    assert len(again.subscribers()) == len(created)


def test_core_values_serialise_to_plain_json(world: World) -> None:
    """to_json gives the control API plain data: enums as values, options as objects."""
    world.create_subscriber(
        msisdn="79520000004", profile="tele2ru", tariff="moy_online", now=START,
        options={"avtoplatezh": {"visa": True, "card_registered_at": START}},
    )  # fmt: skip
    data = to_json(world.get("79520000004"))
    assert json.loads(json.dumps(data)) == data
    assert isinstance(data, dict) and data["status"] == "active" and data["segment"] == "private"
    assert data["options"] == [
        {"code": "avtoplatezh", "activated_at": START,
         "params": {"visa": True, "card_registered_at": START}},
    ]  # fmt: skip
    package = to_json(world.packages("79520000004")[0])
    assert isinstance(package, dict) and package["kind"] in ("voice", "data", "sms")


# -- the read cache: what the World answers equals what SQLite holds ----------------------------

CACHED = ("359870000001", "359870000002", "359870000003")


def observe(world: World, now: int) -> list[object]:
    """Everything the cache answers for, per MSISDN of ``CACHED`` and one unknown."""
    seen: list[object] = []
    for msisdn in (*CACHED, "359870000009"):
        seen += [world.find(msisdn), world.exists(msisdn)]
        if world.exists(msisdn):
            seen += [
                world.packages(msisdn),
                world.packages(msisdn, now=now),
                world.usable_packages(msisdn, UsageKind.VOICE, now=now, destination="network"),
                world.usable_packages(
                    msisdn, UsageKind.VOICE, now=now, destination="network", exact=True
                ),
                world.available(msisdn, "voice", now=now, destination="friends"),
                world.topups(msisdn),
                world.topups(msisdn, since=now - 31 * DAY),
                world.spendable(msisdn),
            ]
    return seen


class WorldCacheMachine(RuleBasedStateMachine):
    """Any sequence of World operations (some refused, some rolled back) leaves the cached World
    answering exactly what a World reading SQLite afresh answers."""

    def __init__(self) -> None:
        super().__init__()
        self.world, self.source = make_world()
        # A second World over the same connection, emptied before every look: SQLite's truth.
        self.truth = World(self.world.store, PROFILES, SimClock(self.source))

    def now(self) -> int:
        return self.world.now()

    @rule(index=st.integers(0, 2), balance=st.integers(-500, 3000))
    def create(self, index: int, balance: int) -> None:
        try:
            self.world.create_subscriber(
                msisdn=CACHED[index], profile="telenor", tariff="prepaid_12", now=self.now(),
                balance=balance,
            )  # fmt: skip
        except DomainError:
            pass

    @rule(index=st.integers(0, 2), op=st.sampled_from(["top_up", "debit", "credit", "history"]),
          amount=st.integers(1, 2000))  # fmt: skip
    def money(self, index: int, op: str, amount: int) -> None:
        msisdn, now = CACHED[index], self.now()
        try:
            if op == "top_up":
                self.world.top_up(msisdn, amount, now=now)
            elif op == "debit":
                self.world.debit(msisdn, amount, now=now, reason="test")
            elif op == "credit":
                self.world.credit(msisdn, amount, now=now, reason="test")
            else:
                self.world.record_topup_history(msisdn, at=now - amount * 60, amount=amount)
        except (DomainError, sqlite3.IntegrityError):
            pass

    @rule(index=st.integers(0, 2), destination=st.sampled_from(["any", "network", "friends"]),
          amount=st.integers(1, 60), hours=st.none() | st.integers(1, 200))  # fmt: skip
    def grant(self, index: int, destination: str, amount: int, hours: int | None) -> None:
        now = self.now()
        try:
            self.world.grant_package(
                CACHED[index], kind="voice", amount=amount, now=now,
                valid_until=None if hours is None else now + hours * 3600,
                destination=destination,
            )  # fmt: skip
        except DomainError:
            pass

    @rule(index=st.integers(0, 2), amount=st.integers(1, 40), pick=st.integers(0, 5))
    def consume(self, index: int, amount: int, pick: int) -> None:
        msisdn = CACHED[index]
        if not self.world.exists(msisdn):
            return
        live = self.world.packages(msisdn)
        # Sometimes an id the cache has never seen, or one of another subscriber.
        ids = [p.id for p in live] + [p.id + 1000 for p in live[:1]]
        if not ids:
            return
        try:
            self.world.consume_package(ids[pick % len(ids)], amount)
        except DomainError:
            pass

    @rule(index=st.integers(0, 2), amount=st.integers(0, 80), exact=st.booleans())
    def take(self, index: int, amount: int, exact: bool) -> None:
        try:
            self.world.take_from_packages(
                CACHED[index], "voice", amount, now=self.now(), destination="network", exact=exact
            )
        except DomainError:
            pass

    @rule(index=st.integers(0, 2), what=st.sampled_from(["expire", "block", "unblock", "option",
          "no_option", "tariff", "note"]))  # fmt: skip
    def change(self, index: int, what: str) -> None:
        msisdn, now = CACHED[index], self.now()
        try:
            if what == "expire":
                self.world.expire_packages(msisdn, now=now)
            elif what == "block":
                self.world.set_status(msisdn, "blocked_financial", now=now)
            elif what == "unblock":
                self.world.set_status(msisdn, "active", now=now)
            elif what == "option":
                self.world.set_option(msisdn, "cash_in_time", now=now, params={"debt": 5})
            elif what == "no_option":
                self.world.remove_option(msisdn, "cash_in_time", now=now)
            elif what == "tariff":
                self.world.change_tariff(msisdn, "prepaid_7", now=now)
            else:
                self.world.set_field(msisdn, "note", f"n{now}", now=now)
        except DomainError:
            pass

    @rule(hours=st.integers(1, 100))
    def advance(self, hours: int) -> None:
        self.world.advance(hours * 3600)  # packages expire on the clock

    @rule(index=st.integers(0, 2), nested=st.booleans())
    def rolled_back(self, index: int, nested: bool) -> None:
        """Changes inside a transaction (or a savepoint of one) that then fails are undone."""
        msisdn, now = CACHED[index], self.now()

        def changes() -> None:
            with self.world.transaction():
                self.world.grant_package(
                    msisdn, kind="voice", amount=5, now=now, valid_until=None, destination="network"
                )
                self.world.top_up(msisdn, 100, now=now)
                for package in self.world.packages(msisdn)[:1]:
                    self.world.consume_package(package.id, 1)
                raise InsufficientFunds("undo", field="amount")

        try:
            if nested:
                with self.world.transaction():
                    self.world.credit(msisdn, 7, now=now, reason="kept")
                    with pytest.raises(DomainError):
                        changes()
            else:
                changes()
        except DomainError:
            pass

    @invariant()
    def cache_equals_sqlite(self) -> None:
        self.truth.forget()
        now = self.now()
        assert observe(self.world, now) == observe(self.truth, now)


TestWorldCache = WorldCacheMachine.TestCase
TestWorldCache.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)


def test_cache_after_restart_is_what_was_committed(tmp_path: Path) -> None:
    """A restart (kill -9: the open transaction never commits) reads back exactly what was
    committed; nothing the cache held of the lost transaction survives."""
    path = str(tmp_path / "state.sqlite3")
    world, _ = make_world(path)
    msisdn = CACHED[0]
    world.create_subscriber(msisdn=msisdn, profile="telenor", tariff="prepaid_12", now=START)
    world.top_up(msisdn, 1500, now=START)
    world.grant_package(
        msisdn, kind="voice", amount=30, now=START, valid_until=None, destination="network"
    )
    committed = observe(world, START)
    world.store.begin()  # type: ignore[attr-defined]
    world.top_up(msisdn, 700, now=START)
    world.consume_package(world.packages(msisdn)[0].id, 10)
    assert observe(world, START) != committed  # the cache follows the open transaction
    again, _ = make_world(path)  # a second process: only committed rows are on disk
    assert observe(again, START) == committed


def test_a_services_schema_versions_apply_once_each_and_a_failed_one_not_at_all(
    world: World,
) -> None:
    """A service's own tables: each version applied once, recorded in ``schema.<name>``; a
    version whose statement fails leaves neither its tables nor its bump."""
    v1 = ("CREATE TABLE demo_a (id INTEGER PRIMARY KEY)",)
    v2 = ("CREATE TABLE demo_b (id INTEGER PRIMARY KEY)", "INSERT INTO demo_b VALUES (1)")
    world.migrate_service("demo", (v1,))
    world.migrate_service("demo", (v1,))  # again: nothing to do (a CREATE would fail)
    world.migrate_service("demo", (v1, v2))
    assert world.get_setting("schema.demo") == "2"
    db = world.store.connection
    assert db.execute("SELECT id FROM demo_b").fetchall() == [(1,)]
    broken = ("CREATE TABLE demo_c (id INTEGER)", "INSERT INTO no_such_table VALUES (1)")
    with pytest.raises(sqlite3.OperationalError):
        world.migrate_service("demo", (v1, v2, broken))
    assert world.get_setting("schema.demo") == "2"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "demo_c" not in tables
