"""Property tests of services/time_share.py: whatever the order of transfers, top-ups and clock
moves, minutes and money are conserved and the 50-minute windows hold (SPEC TS-04 … TS-09)."""

from __future__ import annotations

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from twisted.internet import task

from parsers import Destination
from services import time_share
from services.clock import DAY, HOUR, SimClock
from services.dispatch import Context, ServiceDirectory
from services.model import UsageKind
from services.profiles import Profiles, load_profiles
from services.store import SqliteStore
from services.time_share import Side, TimeShare
from services.world import World

START = 1_700_000_000
PROFILES: Profiles = load_profiles()
WINDOW = 31 * DAY
PEOPLE = tuple(f"35987000000{i}" for i in range(4))
STRANGER = "359870000099"  # no subscriber: every transfer to it is refused

minutes_st = st.sampled_from([10, 20, 30, 40, 50])
steps_st = st.sampled_from([1, HOUR, DAY, 72 * HOUR - 1, 72 * HOUR, 10 * DAY, WINDOW, WINDOW + 1])


class TimeShareMachine(RuleBasedStateMachine):
    """Four prepaid subscribers sending minutes to each other while the clock runs."""

    def __init__(self) -> None:
        super().__init__()
        source = task.Clock()
        source.advance(START)
        self.world = World(SqliteStore(), PROFILES, SimClock(source))
        service = time_share.install(self.world, ServiceDirectory())
        assert service is not None
        self.service: TimeShare = service
        self.opening = 0
        self.topped_up = 0
        self.granted = 0

    @initialize(
        balances=st.lists(st.integers(150, 3000), min_size=4, max_size=4),
        minutes=st.lists(
            st.tuples(st.integers(0, 200), st.integers(0, 200), st.integers(1, 60)),
            min_size=4,
            max_size=4,
        ),
        topups=st.lists(
            st.tuples(st.integers(0, 35), st.sampled_from([200, 300, 500, 1000])),
            min_size=4,
            max_size=8,
        ),
    )
    def people(
        self,
        balances: list[int],
        minutes: list[tuple[int, int, int]],
        topups: list[tuple[int, int]],
    ) -> None:
        now = self.world.now()
        for msisdn, balance, (network, friends, days) in zip(
            PEOPLE, balances, minutes, strict=True
        ):
            self.world.create_subscriber(
                msisdn=msisdn, profile="telenor", tariff="prepaid_start", now=now, balance=balance
            )
            self.opening += balance
            for destination, amount in (("network", network), ("friends", friends)):
                if amount:
                    self.world.grant_package(
                        msisdn,
                        kind="voice",
                        amount=amount,
                        now=now,
                        valid_until=now + days * DAY,
                        destination=destination,
                    )
                    self.granted += amount
        for n, (days_ago, amount) in enumerate(topups):
            self.world.record_topup_history(
                PEOPLE[n % len(PEOPLE)], at=now - days_ago * DAY, amount=amount
            )

    @rule(
        sender=st.sampled_from(PEOPLE),
        recipient=st.sampled_from((*PEOPLE, STRANGER)),
        letter=st.sampled_from(Destination),
        minutes=minutes_st,
    )
    def transfer(self, sender: str, recipient: str, letter: Destination, minutes: int) -> None:
        context = Context(msisdn=sender, profile="telenor", now=self.world.now(), channel="sms")
        with self.world.transaction():
            outcome = self.service.request(
                context, recipient=recipient, destination=letter, minutes=minutes
            )
        assert outcome.screen is not None
        event(outcome.screen.template.rsplit(".", 1)[-1])

    @rule(seconds=steps_st)
    def advance(self, seconds: int) -> None:
        self.world.advance(seconds)

    @rule(who=st.sampled_from(PEOPLE), amount=st.sampled_from([100, 500, 1000]))
    def top_up(self, who: str, amount: int) -> None:
        self.world.top_up(who, amount, now=self.world.now())
        self.topped_up += amount

    # -- invariants ------------------------------------------------------------------------

    def _made(self) -> list[time_share.Transfer]:
        return [t for t in self.service.transfers() if t.side is Side.BOTH]

    @invariant()
    def money_is_conserved_in_the_ledger(self) -> None:
        """TS-09: balances are their ledgers; all that left is the fees of the journal."""
        total = 0
        for msisdn in PEOPLE:
            if not self.world.exists(msisdn):
                return
            entries = self.world.ledger(msisdn)
            balance = self.world.get(msisdn).balance
            assert balance == sum(e.amount for e in entries)
            for entry in entries:
                if entry.reason == "fee":
                    assert entry.amount == -50 and entry.balance_after >= 200  # TS-04
            total += balance
        fees = sum(t.fee for t in self._made())
        assert all(t.fee in (0, 50) for t in self._made())
        assert total == self.opening + self.topped_up - fees

    @invariant()
    def minutes_are_conserved_across_transfers_and_expiry(self) -> None:
        """TS-06/TS-08: minutes only move (or expire where they are); none made or lost."""
        packages = [
            p
            for msisdn in PEOPLE
            for p in self.world.packages(msisdn, include_expired=True)
            if p.kind is UsageKind.VOICE
        ]
        assert sum(p.remaining for p in packages) == self.granted
        received = {p.id: p for p in packages if p.source == "time_share"}
        made = self._made()
        assert sum(p.initial for p in received.values()) == sum(t.minutes for t in made)
        now = self.world.now()
        for transfer in made:
            package = received[transfer.package_id]  # type: ignore[index]
            assert package.msisdn == transfer.recipient and package.initial == transfer.minutes
            assert package.destination == transfer.destination  # TS-06: same category
            assert transfer.valid_until is None or transfer.valid_until >= transfer.at + 72 * HOUR
            if package.valid_until is not None and package.valid_until <= now:
                assert not package.usable(now)  # TS-08: expired on the clock

    @invariant()
    def no_31_day_window_holds_more_than_50_minutes(self) -> None:
        """TS-04/TS-05: sent and received minutes in any 31 days stay within 50 each.

        The sums only grow at a transfer, so the windows ending at each transfer are the
        worst ones."""
        made = self._made()
        for transfer in made:
            window = [t for t in made if transfer.at - WINDOW <= t.at <= transfer.at]
            assert sum(t.minutes for t in window if t.sender == transfer.sender) <= 50
            assert sum(t.minutes for t in window if t.recipient == transfer.recipient) <= 50
            assert transfer.sender != transfer.recipient


def test_ts_04_ts_09_any_sequence_conserves_minutes_and_money_and_keeps_the_limits() -> None:
    """TS-04 … TS-09: transfers, top-ups and clock moves in any order keep every invariant."""
    run_state_machine_as_test(
        TimeShareMachine,
        settings=settings(
            max_examples=40,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
