"""Property tests of services/together.py: whatever the order of joins, leaves, «Автоплатеж»
switches, Visa cards and billing days, every fee discount is 0, 5, 10 or 15 % (+5 % Visa)
and matches the group's size at the charge (TV-05 … TV-09); nobody is in two groups and no
group exceeds five (TV-05)."""

from __future__ import annotations

from typing import Any

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import task

from services import together
from services.charging import FeeResult
from services.clock import DAY, SimClock
from services.dispatch import ServiceDirectory
from services.outbox import Reply
from services.profiles import Profiles, load_profiles
from services.store import SqliteStore
from services.world import World

START = 1_700_000_000
PROFILES: Profiles = load_profiles()
TABLE = {3: 5, 4: 10, 5: 15}
ORGANIZERS = ("79530000001", "79530000002")
FIRST = {
    "79530000001": ("79530000011", "79530000012"),
    "79530000002": ("79530000021", "79530000022"),
}
POOL = tuple(f"7953000010{i}" for i in range(6))
EVERYONE = (*ORGANIZERS, *FIRST[ORGANIZERS[0]], *FIRST[ORGANIZERS[1]], *POOL)
#: Hours between a Visa card and the next charge: around the 72 h lag of TV-09.
VISA_HOURS = (0, 24, 48, 60, 71, 72, 73, 96, 120)
TARIFFS = ("moy_online", "moy_razgovor", "moy_online_plus")


@attrs.define
class Model:
    """What the test expects: who is in which group, who pays by autopay and Visa since when."""

    group_of: dict[str, str] = attrs.Factory(dict)
    autopay: dict[str, bool] = attrs.Factory(dict)
    visa_at: dict[str, int] = attrs.Factory(dict)

    def members(self, organizer: str) -> list[str]:
        return [m for m, g in self.group_of.items() if g == organizer]

    def expected_percent(self, msisdn: str, at: int) -> int:
        organizer = self.group_of.get(msisdn)
        if organizer is None or not self.autopay[msisdn]:
            return 0
        size = len(self.members(organizer))
        if size < 3:
            return 0
        visa = msisdn in self.visa_at and self.visa_at[msisdn] + 3 * DAY <= at
        return TABLE[size] + (5 if visa else 0)


def build() -> tuple[World, task.Clock, together.TogetherService, Model, list[FeeResult]]:
    source = task.Clock()
    source.advance(START)
    world = World(SqliteStore(":memory:"), PROFILES, SimClock(source))
    service = together.install(world, ServiceDirectory())
    charged: list[FeeResult] = []

    def keep(result: FeeResult) -> list[Reply]:
        charged.append(result)
        return []

    world.on_fee(keep)
    model = Model()
    for index, msisdn in enumerate(EVERYONE):
        # Different connection days, so billing days interleave with the changes.
        source.advance(index * 3 * 3600 + DAY)
        world.create_subscriber(
            msisdn=msisdn,
            profile="tele2ru",
            tariff=TARIFFS[index % 3],
            now=world.now(),
            balance=10_000_000,
            options={"avtoplatezh": {}},
        )
        model.autopay[msisdn] = True
    for organizer in ORGANIZERS:
        service.create_group(organizer, now=world.now())
        model.group_of[organizer] = organizer
        for member in FIRST[organizer]:
            service.join_group(member, organizer, now=world.now())
            model.group_of[member] = organizer
    return world, source, service, model, charged


steps = st.lists(
    st.one_of(
        st.tuples(st.just("join"), st.sampled_from(POOL), st.sampled_from(ORGANIZERS)),
        st.tuples(st.just("leave"), st.sampled_from(EVERYONE[2:])),
        st.tuples(st.just("autopay"), st.sampled_from(EVERYONE), st.booleans()),
        st.tuples(st.just("visa"), st.sampled_from(EVERYONE), st.sampled_from(VISA_HOURS)),
        st.tuples(st.just("advance"), st.integers(min_value=1, max_value=20)),
    ),
    max_size=25,
)


def check_charges(charged: list[FeeResult], model: Model) -> None:
    """Each tariff fee charged since the last step has the discount the model predicts."""
    for result in charged:
        if result.code != "tariff" or result.amount_due == 0:
            continue
        discount = result.amount_due - result.amount
        percent = discount * 100 // result.amount_due
        assert percent in (0, 5, 10, 15, 20), result
        assert discount == result.amount_due * percent // 100, result
        assert percent == model.expected_percent(result.msisdn, result.at), (result, model)
    charged.clear()


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(steps)
def test_tv_05_discounts_match_the_group_size_at_every_charge(actions: list[Any]) -> None:
    """TV-05 … TV-09: every discount is 0/5/10/15 (+5) % and matches the size at the charge."""
    world, _source, service, model, charged = build()
    check_charges(charged, model)
    for action in actions:
        kind, *args = action
        now = world.now()
        if kind == "join":
            msisdn, organizer = args
            full = len(model.members(organizer)) >= 5
            busy = msisdn in model.group_of
            try:
                service.join_group(msisdn, organizer, now=now)
            except together.AlreadyInGroup:
                assert busy
            except together.GroupFull:
                assert full and not busy
            else:
                assert not busy and not full
                model.group_of[msisdn] = organizer
        elif kind == "leave":
            (msisdn,) = args
            try:
                service.leave_group(msisdn, now=now)
            except together.NotInGroup:
                assert msisdn not in model.group_of
            else:
                del model.group_of[msisdn]
        elif kind == "autopay":
            msisdn, on = args
            if on:
                world.set_option(msisdn, "avtoplatezh", now=now)
            else:
                world.remove_option(msisdn, "avtoplatezh", now=now)
                model.visa_at.pop(msisdn, None)
            model.autopay[msisdn] = on
        elif kind == "visa":
            msisdn, hours_before = args
            if model.autopay[msisdn] and msisdn not in model.visa_at:
                # Wait until ``hours_before`` the number's next charge, then give the card.
                charge = world.get_recurring(msisdn, "tariff")
                assert charge is not None
                wait = charge.next_at - hours_before * 3600 - now
                if wait > 0:
                    world.advance(wait)
                    check_charges(charged, model)
                now = world.now()
                params = {"visa": True, "card_registered_at": now}
                world.set_option(msisdn, "avtoplatezh", now=now, params=params)
                model.visa_at[msisdn] = now
        else:
            (days,) = args
            world.advance(days * DAY)
        check_charges(charged, model)
        for organizer in ORGANIZERS:
            live = service.members(service.group_of(organizer).id)  # type: ignore[union-attr]
            assert sorted(live) == sorted(model.members(organizer))
            assert len(live) <= 5
        seen = [m for o in ORGANIZERS for m in model.members(o)]
        assert len(seen) == len(set(seen))
    world.advance(40 * DAY)  # at least one more billing day for everyone
    check_charges(charged, model)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(POOL), min_size=1, max_size=12))
def test_tv_05_groups_never_exceed_five_whatever_the_order_of_joins(joiners: list[str]) -> None:
    """TV-05: however many try to join one group, it holds at most five."""
    world, _source, service, _model, _charged = build()
    organizer = ORGANIZERS[0]
    for msisdn in joiners:
        try:
            service.join_group(msisdn, organizer, now=world.now())
        except (together.AlreadyInGroup, together.GroupFull):
            pass
    size = len(service.members(service.group_of(organizer).id))  # type: ignore[union-attr]
    assert size == min(5, 3 + len(set(joiners)))
