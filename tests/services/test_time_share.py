"""Tests of services/time_share.py: Telenor «Time Share», rule by rule (SPEC TS-01 … TS-10)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import task

from gateway.app import SERVICE_MODULES, Gateway
from gateway.config import GatewayConfig
from gateway.routing import MobileOriginated
from parsers import Destination
from parsers.commands import TransferMinutes
from services import time_share
from services.clock import DAY, HOUR, SimClock
from services.dispatch import Context, Outcome, ServiceDirectory
from services.model import UsageKind
from services.outbox import check_templates, render, render_template
from services.profiles import ProfileError, Profiles, load_profile, load_profiles
from services.store import SqliteStore
from services.time_share import Refusal, Side, TimeShare, read_terms
from services.world import World

START = 1_700_000_000
PROFILES: Profiles = load_profiles()
TELENOR = PROFILES["telenor"]
WINDOW = 31 * DAY

SENDER = "359881000001"  # meets every condition, topped up 15 лв. 5 days ago: no fee
PAYING = "359881000002"  # meets every condition, topped up 5 лв.: pays 0,50 лв.
RECIPIENT = "359898123456"  # the seed's 0898123456, own network minutes valid ~30 days
BARE = "359881000011"  # recipient with no minutes of its own


class Sim:
    """A world with the demo, Time Share installed, and a hand on the clock."""

    def __init__(self, path: str = ":memory:", *, demo: bool = True) -> None:
        self.source = task.Clock()
        self.source.advance(START)
        self.store = SqliteStore(path)
        self.world = World(self.store, PROFILES, SimClock(self.source))
        self.directory = ServiceDirectory()
        service = time_share.install(self.world, self.directory)
        assert service is not None
        self.service: TimeShare = service
        if demo:
            self.world.load_demo(now=self.now)

    @property
    def now(self) -> int:
        return self.world.now()

    def advance(self, seconds: int) -> None:
        self.world.advance(seconds)

    def sms(self, sender: str, letter: str, recipient: str, minutes: int) -> Outcome:
        command = TransferMinutes(
            recipient_msisdn=recipient, destination=Destination(letter), minutes=minutes
        )
        handler = self.directory.command_handler("telenor", command)
        assert handler is not None
        context = Context(
            msisdn=sender, profile="telenor", now=self.now, channel="sms", service_number="125"
        )
        with self.world.transaction():
            return handler(context, command)

    def menu(self, sender: str, params: dict[str, object]) -> Outcome:
        context = Context(
            msisdn=sender, profile="telenor", now=self.now, channel="ussd", service_number="123"
        )
        return self.directory.action("telenor", time_share.ACTION)(context, params)

    def minutes(self, msisdn: str, destination: str) -> int:
        return self.world.available(
            msisdn, UsageKind.VOICE, now=self.now, destination=destination, exact=True
        )

    def prepaid(
        self,
        msisdn: str,
        *,
        balance: int = 1000,
        network: int = 100,
        friends: int = 100,
        topups: tuple[tuple[int, int], ...] = ((2 * DAY, 1500),),
        tariff: str = "prepaid_start",
        **kw: Any,
    ) -> str:
        """A prepaid subscriber with long-lived minutes and top-ups ``(ago, amount)``."""
        now = self.now
        self.world.create_subscriber(
            msisdn=msisdn, profile="telenor", tariff=tariff, now=now, balance=balance, **kw
        )
        for destination, amount in (("network", network), ("friends", friends)):
            if amount:
                self.world.grant_package(
                    msisdn,
                    kind="voice",
                    amount=amount,
                    now=now,
                    valid_until=now + 400 * DAY,
                    destination=destination,
                )
        for ago, amount in topups:
            self.world.record_topup_history(msisdn, at=now - ago, amount=amount)
        return msisdn


@pytest.fixture
def sim() -> Sim:
    return Sim()


def text_of(outcome: Outcome) -> str:
    assert outcome.screen is not None
    return render_template(TELENOR, outcome.screen.template, outcome.screen.params)


def refusal_text(reason: Refusal, **params: object) -> str:
    return render_template(TELENOR, reason.template, params)


def made(sim: Sim) -> list[time_share.Transfer]:
    return [t for t in sim.service.transfers() if t.side is Side.BOTH]


def national(msisdn: str) -> str:
    return "0" + msisdn[3:]


# -- installation, terms, templates ------------------------------------------------------------


def test_ts_01_install_registers_125_the_command_and_the_my_menu_action(sim: Sim) -> None:
    """TS-01/TS-02: SMS to 125 are Time Share commands; *123# → 5 → 3 ends in the action."""
    assert sim.directory.sms_numbers("telenor") == frozenset({"125"})
    assert sim.directory.has_action("telenor", "time_share.transfer")
    assert "services.time_share" in SERVICE_MODULES


def test_ts_07_every_time_share_text_exists_in_the_telenor_profile() -> None:
    """TS-07: every refusal, confirmation and SMS parse reason has its Bulgarian text."""
    problems = [p for p in check_templates(PROFILES) if "time_share" in p]
    assert problems == []
    texts = [TELENOR.templates[r.template] for r in Refusal]
    assert len(set(texts)) == len(texts)
    for reason in time_share.SMS_PARSE_REASONS:
        assert f"parse_error.{reason}" in TELENOR.templates


def test_ts_terms_are_read_with_their_schema() -> None:
    """The seed's facts: 10…50 step 10, 31 days, 50 minutes, 72 h, 0,50 лв., 10 лв., 2 лв."""
    terms = read_terms(TELENOR)
    assert (terms.minutes_min, terms.minutes_max, terms.minutes_step) == (10, 50, 10)
    assert terms.window == terms.last_topup_within == 31 * DAY
    assert (terms.send_limit, terms.receive_limit, terms.validity) == (50, 50, 72 * HOUR)
    assert (terms.fee, terms.free_after_topups_of, terms.min_credit_after_fee) == (50, 1000, 200)
    assert terms.excluded_tariff_tags == frozenset({"visitor"})


@pytest.mark.parametrize(
    ("old", "new", "where", "reason"),
    [
        ("    window: 31d\n", "    window: 31 days\n", "services.time_share.window", "duration"),
        ("    fee: 50\n", "    fee: -5\n", "services.time_share.fee", "whole number"),
        ("    fee: 50\n", "    fee: 50\n    fees: 50\n", "services.time_share.fees", "unknown"),
        ("    send_limit: 50\n", "", "services.time_share.send_limit", "required"),
        ("    sms_number: '125'\n", "    sms_number: '126'\n", "sms_number", "125"),
    ],
)
def test_ts_broken_terms_are_refused_with_file_line_and_reason(
    tmp_path: Path, old: str, new: str, where: str, reason: str
) -> None:
    """A broken ``services.time_share`` stops the start with the file, the line and why."""
    text = Path(TELENOR.source).read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "telenor.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    profile = load_profile(path.read_text(encoding="utf-8"), str(path), expected_name="telenor")
    with pytest.raises(ProfileError) as caught:
        read_terms(profile)
    message = str(caught.value)
    assert message.startswith(f"{path}:") and where in message and reason in message
    line = int(message.split(":")[1])
    if new:
        assert new.splitlines()[-1].split(":")[0] in path.read_text().splitlines()[line - 1]


# -- TS-01, TS-06: the transfer ------------------------------------------------------------------


def test_ts_01_ts_06_g_moves_network_minutes_and_both_are_confirmed(sim: Sim) -> None:
    """TS-01/TS-06: «G,0898123456,30» moves 30 network minutes; both get a confirmation."""
    before = (sim.minutes(SENDER, "network"), sim.minutes(RECIPIENT, "network"))
    outcome = sim.sms(SENDER, "G", RECIPIENT, 30)
    assert text_of(outcome) == (
        "Успешно изпратихте 30 мин. към мрежата на Теленор на 0898123456. "
        "Услугата е безплатна за вас. Наличен кредит: 10,00 лв."
    )
    (received,) = outcome.replies
    assert (received.to, received.sender) == (RECIPIENT, "125")
    assert render(received, PROFILES).startswith(
        "Получихте 30 мин. към мрежата на Теленор от 0881000001 с услугата Time Share."
    )
    assert sim.minutes(SENDER, "network") == before[0] - 30
    assert sim.minutes(RECIPIENT, "network") == before[1] + 30
    (transfer,) = made(sim)
    assert (transfer.sender, transfer.recipient, transfer.minutes, transfer.fee) == (
        SENDER,
        RECIPIENT,
        30,
        0,
    )


def test_ts_06_f_minutes_arrive_as_friends_minutes_and_network_ones_stay(sim: Sim) -> None:
    """TS-06: «F,…» takes «За приятели» minutes and gives them as «За приятели» minutes."""
    network = (sim.minutes(SENDER, "network"), sim.minutes(BARE, "network"))
    sim.sms(SENDER, "F", BARE, 20)
    assert sim.minutes(BARE, "friends") == 20
    assert sim.minutes(SENDER, "network") == network[0]
    assert sim.minutes(BARE, "network") == network[1] == 0
    (package,) = [p for p in sim.world.packages(BARE) if p.source == "time_share"]
    assert package.destination == "friends" and package.kind is UsageKind.VOICE
    assert package.label == "20 минути към група За приятели от 0881000001 (Time Share)"


def test_ts_06_minutes_are_taken_earliest_expiry_first_from_the_destination_only(sim: Sim) -> None:
    """TS-06: the sender's minutes of that destination leave, soonest-ending first."""
    sender = sim.prepaid("359871000001", network=0, friends=0)
    now = sim.now
    soon = sim.world.grant_package(
        sender, kind="voice", amount=15, now=now, valid_until=now + DAY, destination="network"
    )
    later = sim.world.grant_package(
        sender, kind="voice", amount=50, now=now, valid_until=now + 9 * DAY, destination="network"
    )
    sim.world.grant_package(sender, kind="voice", amount=500, now=now, valid_until=None)
    sim.sms(sender, "G", BARE, 30)
    remaining = {p.id: p.remaining for p in sim.world.packages(sender)}
    assert (remaining[soon.id], remaining[later.id]) == (0, 35)
    assert sim.world.available(sender, "voice", now=now) == 500  # the 'any' minutes stay


def test_ts_02_the_my_menu_action_shows_the_result_and_sends_both_sms(sim: Sim) -> None:
    """TS-02/TS-06: the *123# path ends on the result screen, and both still get an SMS."""
    outcome = sim.menu(SENDER, {"recipient": RECIPIENT, "destination": "G", "minutes": 20})
    assert outcome.screen is not None and outcome.screen.end
    assert text_of(outcome).startswith("Успешно изпратихте 20 мин. към мрежата на Теленор")
    assert [(r.to, r.sender, r.channel) for r in outcome.replies] == [
        (SENDER, "125", "sms"),
        (RECIPIENT, "125", "sms"),
    ]
    assert render(outcome.replies[0], PROFILES) == text_of(outcome)


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"recipient": RECIPIENT, "destination": "G", "minutes": 35}, "minutes_not_multiple_of_10"),
        ({"recipient": RECIPIENT, "destination": "G", "minutes": 60}, "minutes_out_of_range"),
        ({"recipient": RECIPIENT, "destination": "X", "minutes": 10}, "bad_destination_letter"),
        ({"recipient": "0123", "destination": "G", "minutes": 10}, "bad_msisdn"),
        ({"recipient": RECIPIENT, "destination": "G", "minutes": "десет"}, "not_a_number"),
        ({"recipient": RECIPIENT, "minutes": 10}, "bad_format"),
    ],
)
def test_ts_07_bad_menu_answers_are_refused_on_the_screen(
    sim: Sim, params: dict[str, object], reason: str
) -> None:
    """TS-03/TS-07: a bad value in the My Menu steps is refused on the screen, nothing moves."""
    outcome = sim.menu(SENDER, params)
    assert outcome.screen is not None and outcome.screen.template == f"parse_error.{reason}"
    assert outcome.replies == () and made(sim) == []


def test_ts_02_a_typed_national_number_is_taken_by_the_menu_action(sim: Sim) -> None:
    """TS-02: the menu may hand over the number as typed (08XXXXXXXX) or in the wire form."""
    outcome = sim.menu(SENDER, {"recipient": "0881000011", "destination": "f", "minutes": "10"})
    assert text_of(outcome).startswith("Успешно изпратихте 10 мин. към група За приятели")
    assert made(sim)[0].recipient == BARE


# -- TS-04, TS-05: one case per condition ---------------------------------------------------------

SENDER_CASES = [
    ("359881000031", "G", 10, Refusal.SENDER_NOT_ACTIVE, {}),
    ("359881000032", "G", 10, Refusal.SENDER_NOT_PREPAID, {}),
    ("359881000021", "G", 10, Refusal.SENDER_VISITOR, {}),
    ("359881000022", "G", 10, Refusal.SENDER_CASH_IN_TIME_DEBT, {"amount": 300}),
    ("359881000023", "G", 10, Refusal.SENDER_CASH_IN_TIME_FEE, {"amount": 30}),
    ("359881000024", "G", 10, Refusal.SENDER_NO_RECENT_TOPUP, {"days": 31}),
    ("359881000025", "G", 10, Refusal.SENDER_LOW_CREDIT,
     {"balance": 220, "fee": 50, "minimum": 200}),
    ("359881000027", "G", 10, Refusal.SENDER_TOO_FEW_MINUTES, {"available": 5, "minimum": 10}),
    ("359881000027", "F", 10, Refusal.SENDER_TOO_FEW_MINUTES, {"available": 0, "minimum": 10}),
    ("359881000028", "G", 30, Refusal.SENDER_NOT_ENOUGH_MINUTES, {"available": 20}),
    ("359881000029", "G", 10, Refusal.SENDER_SEND_LIMIT,
     {"sent": 50, "limit": 50, "days": 31, "left": 0}),
    ("359881000099", "G", 10, Refusal.SENDER_UNKNOWN, {}),
]  # fmt: skip


@pytest.mark.parametrize(("sender", "letter", "minutes", "reason", "extra"), SENDER_CASES)
def test_ts_04_each_sender_condition_is_refused_with_its_own_text(
    sim: Sim, sender: str, letter: str, minutes: int, reason: Refusal, extra: dict[str, object]
) -> None:
    """TS-04/TS-07: a sender failing one condition gets that condition's text; nothing moves."""
    balance = sim.world.find(sender).balance if sim.world.exists(sender) else None  # type: ignore[union-attr]
    outcome = sim.sms(sender, letter, BARE, minutes)
    destination = TELENOR.destinations["network" if letter == "G" else "friends"]
    base = {"recipient": "0881000011", "minutes": minutes, "destination": destination}
    assert outcome.screen is not None and outcome.screen.template == reason.template
    assert text_of(outcome) == refusal_text(reason, **base, **extra)
    assert outcome.replies == ()
    assert made(sim) == [] and sim.minutes(BARE, "network") == 0
    if balance is not None:
        assert sim.world.get(sender).balance == balance


RECIPIENT_CASES = [
    ("359881000099", Refusal.RECIPIENT_UNKNOWN, {}),
    (SENDER, Refusal.RECIPIENT_IS_SENDER, {}),
    ("359881000031", Refusal.RECIPIENT_NOT_ACTIVE, {}),
    ("359881000032", Refusal.RECIPIENT_NOT_PREPAID, {}),
    ("359881000021", Refusal.RECIPIENT_VISITOR, {}),
    ("359881000022", Refusal.RECIPIENT_CASH_IN_TIME_DEBT, {}),
    ("359881000023", Refusal.RECIPIENT_CASH_IN_TIME_FEE, {}),
    ("359881000030", Refusal.RECIPIENT_RECEIVE_LIMIT, {"limit": 50, "days": 31, "left": 0}),
]


@pytest.mark.parametrize(("recipient", "reason", "extra"), RECIPIENT_CASES)
def test_ts_05_each_recipient_condition_is_refused_with_its_own_text(
    sim: Sim, recipient: str, reason: Refusal, extra: dict[str, object]
) -> None:
    """TS-05/TS-07: a recipient failing one condition: that condition's text; nothing moves."""
    minutes = sim.minutes(SENDER, "network")
    outcome = sim.sms(SENDER, "G", recipient, 10)
    base = {"recipient": national(recipient), "minutes": 10, "destination": "мрежата на Теленор"}
    assert outcome.screen is not None and outcome.screen.template == reason.template
    assert text_of(outcome) == refusal_text(reason, **base, **extra)
    assert made(sim) == [] and sim.minutes(SENDER, "network") == minutes


def test_ts_04_ts_05_the_first_failing_condition_in_the_documented_order_wins(sim: Sim) -> None:
    """TS-04/TS-05: conditions are checked in the module's order; the first failure answers."""
    many = sim.prepaid(
        "359871000002",
        tariff="visitor",
        topups=(),
        options={"cash_in_time": {"debt": 100, "fee": 10}},
    )
    assert sim.sms(many, "G", "359881000031", 10).screen.template == Refusal.SENDER_VISITOR.template  # type: ignore[union-attr]
    debtor = sim.prepaid("359871000003", topups=(), options={"cash_in_time": {"debt": 100}})
    assert (
        sim.sms(debtor, "G", BARE, 10).screen.template  # type: ignore[union-attr]
        == Refusal.SENDER_CASH_IN_TIME_DEBT.template
    )
    # A good sender with a blocked Visitor recipient: «not active» comes before «Visitor».
    sim.world.set_status("359881000021", "blocked_voluntary", now=sim.now)
    outcome = sim.sms(SENDER, "G", "359881000021", 10)
    assert outcome.screen is not None
    assert outcome.screen.template == Refusal.RECIPIENT_NOT_ACTIVE.template
    # Sender's own limits come before anything about the recipient.
    outcome = sim.sms("359881000029", "G", "359881000099", 10)
    assert outcome.screen is not None
    assert outcome.screen.template == Refusal.SENDER_SEND_LIMIT.template


# -- TS-04 boundaries ------------------------------------------------------------------------------


def test_ts_04_a_last_top_up_exactly_31_days_ago_is_still_recent(sim: Sim) -> None:
    """TS-04 boundary: a top-up exactly 31 days old counts; one second older does not."""
    late = sim.prepaid("359871000004", topups=((WINDOW + 1, 1200),))
    outcome = sim.sms(late, "G", BARE, 10)
    assert outcome.screen is not None
    assert outcome.screen.template == Refusal.SENDER_NO_RECENT_TOPUP.template
    outcome = sim.sms("359881000033", "G", BARE, 10)  # top-up exactly 31 days before the load
    assert text_of(outcome).startswith("Успешно изпратихте 10 мин.")
    assert made(sim)[0].fee == 0  # TS-09: the 12 лв. of that same instant make it free


def test_ts_04_credit_of_exactly_2_leva_after_the_fee_is_enough(sim: Sim) -> None:
    """TS-04 boundary: 2,50 лв. with a 0,50 лв. fee leaves exactly 2 лв.: accepted."""
    outcome = sim.sms("359881000026", "G", BARE, 10)
    assert outcome.screen is not None and outcome.screen.template == "time_share.sent_with_fee"
    assert sim.world.get("359881000026").balance == 200
    outcome = sim.sms("359881000025", "G", BARE, 10)  # 2,20 лв.: 1,70 лв. would be left
    assert outcome.screen is not None
    assert outcome.screen.template == Refusal.SENDER_LOW_CREDIT.template


def test_ts_04_free_senders_need_2_leva_of_credit_too(sim: Sim) -> None:
    """TS-04: with no fee the credit itself must be at least 2 лв. (199 is refused)."""
    poor = sim.prepaid("359871000005", balance=199)
    assert sim.sms(poor, "G", BARE, 10).screen.template == Refusal.SENDER_LOW_CREDIT.template  # type: ignore[union-attr]
    enough = sim.prepaid("359871000006", balance=200)
    assert sim.sms(enough, "G", BARE, 10).screen.template == "time_share.sent_free"  # type: ignore[union-attr]


def test_ts_04_exactly_10_and_exactly_yy_minutes_are_enough(sim: Sim) -> None:
    """TS-04 boundary: 10 minutes may send 10; 20 minutes may send 20, not 30."""
    ten = sim.prepaid("359871000007", network=10)
    assert sim.sms(ten, "G", BARE, 10).screen.template == "time_share.sent_free"  # type: ignore[union-attr]
    assert sim.minutes(ten, "network") == 0
    nine = sim.prepaid("359871000008", network=9)
    outcome = sim.sms(nine, "G", BARE, 10)
    assert outcome.screen is not None
    assert outcome.screen.template == Refusal.SENDER_TOO_FEW_MINUTES.template
    outcome = sim.sms("359881000028", "G", BARE, 20)
    assert outcome.screen is not None and outcome.screen.template == "time_share.sent_free"


def test_ts_04_exactly_50_minutes_may_be_sent_in_31_days_whatever_the_destination(
    sim: Sim,
) -> None:
    """TS-04 boundary: 30 G + 20 F = 50 is allowed; 10 more are refused until 31 days pass."""
    sender = sim.prepaid("359871000009")
    first = sim.now
    assert sim.sms(sender, "G", BARE, 30).screen.template == "time_share.sent_free"  # type: ignore[union-attr]
    assert sim.sms(sender, "F", RECIPIENT, 20).screen.template == "time_share.sent_free"  # type: ignore[union-attr]
    assert sim.service.sent_minutes(sender, now=sim.now) == 50
    outcome = sim.sms(sender, "G", "359881000030", 10)
    assert text_of(outcome) == refusal_text(
        Refusal.SENDER_SEND_LIMIT,
        recipient="0881000030",
        minutes=10,
        destination="мрежата на Теленор",
        sent=50,
        limit=50,
        days=31,
        left=0,
    )
    sim.world.record_topup_history(sender, at=first + 30 * DAY, amount=1000)
    sim.advance(WINDOW)  # exactly 31 days after both: they are still in the window
    outcome = sim.sms(sender, "G", BARE, 10)
    assert outcome.screen is not None
    assert outcome.screen.template == Refusal.SENDER_SEND_LIMIT.template
    sim.advance(1)
    assert sim.service.sent_minutes(sender, now=sim.now) == 0
    assert sim.sms(sender, "G", BARE, 10).screen.template == "time_share.sent_free"  # type: ignore[union-attr]


def test_ts_05_exactly_50_minutes_may_be_received_in_31_days(sim: Sim) -> None:
    """TS-05 boundary: a recipient takes 50 in 31 days from several senders, not 60."""
    senders = [sim.prepaid(f"35987100002{i}") for i in range(3)]
    recipient = sim.prepaid("359871000030", network=0, friends=0)
    assert sim.sms(senders[0], "G", recipient, 30).screen.template == "time_share.sent_free"  # type: ignore[union-attr]
    assert sim.sms(senders[1], "F", recipient, 20).screen.template == "time_share.sent_free"  # type: ignore[union-attr]
    outcome = sim.sms(senders[2], "G", recipient, 10)
    assert outcome.screen is not None
    assert outcome.screen.template == Refusal.RECIPIENT_RECEIVE_LIMIT.template
    assert sim.service.received_minutes(recipient, now=sim.now) == 50
    assert sim.service.sent_minutes(senders[2], now=sim.now) == 0


def test_ts_04_ts_05_demo_history_counts_toward_its_own_side_only(sim: Sim) -> None:
    """TS-04/TS-05: the demo's past transfers fill 029's send and 030's receive window only."""
    now = sim.now
    assert sim.service.sent_minutes("359881000029", now=now) == 50
    assert sim.service.received_minutes("359881000030", now=now) == 50
    assert sim.service.sent_minutes(SENDER, now=now) == 0  # 030's sender meets every condition
    assert sim.service.received_minutes(BARE, now=now) == 0


def test_ts_04_the_demo_history_is_seeded_once_when_the_demo_came_first(tmp_path: Path) -> None:
    """The gateway loads the demo before services install: the history is caught up, once."""
    path = str(tmp_path / "state.sqlite3")
    source = task.Clock()
    source.advance(START)
    world = World(SqliteStore(path), PROFILES, SimClock(source))
    world.load_demo(now=world.now())
    service = time_share.install(world, ServiceDirectory())
    assert service is not None
    assert service.sent_minutes("359881000029", now=world.now()) == 50
    world.store.close()  # type: ignore[attr-defined]
    again = World(SqliteStore(path), PROFILES, SimClock(source))
    again.load_demo(now=again.now())
    service = time_share.install(again, ServiceDirectory())
    assert service is not None
    assert service.sent_minutes("359881000029", now=again.now()) == 50


# -- TS-08: validity ------------------------------------------------------------------------


def test_ts_08_received_minutes_last_72_hours_then_expire_on_the_clock(sim: Sim) -> None:
    """TS-08: with no minutes of its own, the recipient's are valid 72 h, then lost."""
    now = sim.now
    outcome = sim.sms(SENDER, "G", BARE, 20)
    (transfer,) = made(sim)
    assert transfer.valid_until == now + 72 * HOUR
    assert render(outcome.replies[0], PROFILES).endswith("Валидни до 18.11.2023 00:13.")
    sim.advance(72 * HOUR - 1)
    assert sim.minutes(BARE, "network") == 20
    sim.advance(1)
    assert sim.minutes(BARE, "network") == 0
    (package,) = sim.world.packages(BARE, include_expired=True)
    assert package.expired_at == now + 72 * HOUR and package.remaining == 20


def test_ts_08_received_minutes_take_the_longer_validity_of_the_same_destination(sim: Sim) -> None:
    """TS-08: the recipient's own network minutes end later, so the received ones do too."""
    own = max(
        p.valid_until or 0
        for p in sim.world.packages(RECIPIENT)
        if p.destination == "network" and p.kind is UsageKind.VOICE
    )
    assert own > sim.now + 72 * HOUR
    sim.sms(SENDER, "G", RECIPIENT, 10)
    assert made(sim)[0].valid_until == own
    recipient = sim.prepaid("359871000040", network=0, friends=0)
    sim.world.grant_package(
        recipient, kind="voice", amount=5, now=sim.now, valid_until=sim.now + 10 * DAY,
        destination="friends",
    )  # fmt: skip
    sim.sms(SENDER, "G", recipient, 10)  # friends minutes do not lengthen network ones
    assert made(sim)[1].valid_until == sim.now + 72 * HOUR


def test_ts_08_own_minutes_without_an_end_give_the_received_ones_none(sim: Sim) -> None:
    """TS-08: when the recipient's own minutes of that destination never end, nor do these."""
    recipient = sim.prepaid("359871000041", network=0, friends=0)
    sim.world.grant_package(
        recipient, kind="voice", amount=5, now=sim.now, valid_until=None, destination="network"
    )
    outcome = sim.sms(SENDER, "G", recipient, 10)
    assert made(sim)[0].valid_until is None
    assert outcome.replies[0].template == "time_share.received_no_end"


# -- TS-09: the fee ------------------------------------------------------------------------------


def test_ts_09_without_10_leva_of_top_ups_the_fee_is_taken_and_said(sim: Sim) -> None:
    """TS-09/TS-06: 0,50 лв. leaves the credit through the ledger; the SMS says so."""
    outcome = sim.sms(PAYING, "G", BARE, 10)
    assert text_of(outcome) == (
        "Успешно изпратихте 10 мин. към мрежата на Теленор на 0881000011. "
        "Приспадната такса: 0,50 лв. Наличен кредит: 7,50 лв."
    )
    (transfer,) = made(sim)
    entry = sim.world.ledger(PAYING)[-1]
    assert (entry.amount, entry.reason, entry.reference) == (
        -50,
        "fee",
        f"time_share:{transfer.id}",
    )
    assert transfer.fee == 50 and sim.world.get(PAYING).balance == 750


def test_ts_09_top_ups_adding_up_to_10_leva_in_31_days_make_it_free(sim: Sim) -> None:
    """TS-09: two top-ups of 5 лв. add up to 10 лв.; one that left the window no longer counts."""
    sender = sim.prepaid("359871000050", topups=((3 * DAY, 500), (WINDOW, 500)))
    assert sim.sms(sender, "G", BARE, 10).screen.template == "time_share.sent_free"  # type: ignore[union-attr]
    sim.advance(1)
    assert sim.sms(sender, "G", RECIPIENT, 10).screen.template == "time_share.sent_with_fee"  # type: ignore[union-attr]
    assert [t.fee for t in made(sim)] == [0, 50]


# -- TS-03, TS-07, TS-10 through the gateway's SMS path -------------------------------------


@pytest.fixture
def gateway() -> Gateway:
    clock = task.Clock()
    clock.advance(START)
    return Gateway(GatewayConfig(state_path=":memory:"), clock, profiles=PROFILES)


def to_125(gateway: Gateway, sender: str, text: str) -> list[tuple[str, str, str]]:
    mo = MobileOriginated(
        source=sender, destination="125", text=text, channel="sms", now=gateway.now()
    )
    return [(out.to, out.sender, out.text) for out in gateway._on_service_sms(mo)]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("G,0898123456,35", "minutes_not_multiple_of_10"),
        ("G,0898123456,60", "minutes_out_of_range"),
        ("G,0898123456,5", "minutes_out_of_range"),
        ("G, 0898123456,30", "spaces_not_allowed"),
        ("X,0898123456,30", "bad_destination_letter"),
        ("G;0898123456;30", "bad_separator"),
        ("G,0898123456", "bad_format"),
        ("G,+359898123456,30", "bad_msisdn"),
        ("G,0898123456,тридесет", "not_a_number"),
    ],
)
def test_ts_03_ts_07_a_malformed_sms_gets_its_reason_by_sms_from_125(
    gateway: Gateway, text: str, reason: str
) -> None:
    """TS-03/TS-07: the refusal of a malformed request comes by SMS from 125, with its reason."""
    replies = to_125(gateway, SENDER, text)
    assert replies == [(SENDER, "125", TELENOR.templates[f"parse_error.{reason}"])]


def test_ts_01_ts_10_the_gateway_path_answers_both_and_charges_no_sms(gateway: Gateway) -> None:
    """TS-01/TS-10: an SMS to 125 is a command, answered to both parties, and costs nothing."""
    balance = gateway.world.get(SENDER).balance
    replies = to_125(gateway, SENDER, "G,0898123456,30")
    assert [(to, sender) for to, sender, _ in replies] == [(SENDER, "125"), (RECIPIENT, "125")]
    assert gateway.world.get(SENDER).balance == balance
    assert [e.reason for e in gateway.world.ledger(SENDER)] == ["opening_balance"]


def test_ts_07_a_refusal_by_sms_comes_back_by_sms_only_to_the_sender(gateway: Gateway) -> None:
    """TS-07: asked by SMS, refused by SMS from 125 — nobody else hears of it."""
    replies = to_125(gateway, "359881000024", "G,0881000011,10")
    assert replies == [
        (
            "359881000024",
            "125",
            "Time Share: отказ. Последното ви презареждане е преди повече от 31 дни.",
        )
    ]


def test_ts_07_a_refusal_asked_through_the_menu_is_shown_on_the_screen(sim: Sim) -> None:
    """TS-07: asked through *123#, the reason is the final screen, and no SMS is sent."""
    outcome = sim.menu("359881000024", {"recipient": BARE, "destination": "G", "minutes": 10})
    assert outcome.screen is not None and outcome.screen.end
    assert outcome.screen.template == Refusal.SENDER_NO_RECENT_TOPUP.template
    assert outcome.replies == ()


# -- durability -----------------------------------------------------------------------------------


def test_ts_06_a_committed_transfer_is_there_after_a_restart(tmp_path: Path) -> None:
    """An acknowledged transfer (journal, minutes, fee) survives closing and reopening the store."""
    path = str(tmp_path / "state.sqlite3")
    first = Sim(path)
    first.sms(PAYING, "G", BARE, 10)
    first.store.close()
    second = Sim(path)
    (transfer,) = made(second)
    assert (transfer.sender, transfer.recipient, transfer.minutes, transfer.fee) == (
        PAYING,
        BARE,
        10,
        50,
    )
    assert second.minutes(BARE, "network") == 10
    assert second.world.get(PAYING).balance == 750
    assert second.service.sent_minutes(PAYING, now=second.now) == 10


# -- the in-memory windows (TS-04, TS-05 limits without a query per request) ----------------


def journal_sum(sim: Sim, column: str, msisdn: str, since: int) -> int:
    """The window as the journal's SQL says it (the in-memory copy must agree)."""
    excluded = "recipient" if column == "sender" else "sender"
    row = sim.store.connection.execute(
        "SELECT coalesce(sum(minutes), 0) FROM time_share_transfers"
        f" WHERE {column} = ? AND at >= ? AND side <> ?",
        (msisdn, since, excluded),
    ).fetchone()
    return int(row[0])


@settings(max_examples=25, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(0, 2),
            st.integers(0, 2),
            st.sampled_from([10, 20, 30]),
            st.sampled_from(["G", "F"]),
            st.booleans(),
            st.integers(0, 12 * DAY),
        ),
        max_size=12,
    )
)
def test_ts_04_ts_05_windows_in_memory_equal_the_journal_through_rollbacks(
    steps: list[tuple[int, int, int, str, bool, int]],
) -> None:
    """TS-04/TS-05: after any transfers, some rolled back with their transaction, and clock
    moves, the send and receive windows equal the SUM over the journal in SQLite."""
    sim = Sim(demo=False)
    people = [sim.prepaid(f"35988700000{i}", network=200, friends=200) for i in range(3)]
    for sender, recipient, minutes, letter, undo, wait in steps:
        try:
            with sim.world.transaction():
                sim.sms(people[sender], letter, people[recipient], minutes)
                if undo:
                    raise RuntimeError("the gateway failed before its commit")
        except RuntimeError:
            pass
        sim.advance(wait)
        since = sim.now - WINDOW
        for msisdn in people:
            assert sim.service.sent_minutes(msisdn, now=sim.now) == journal_sum(
                sim, "sender", msisdn, since
            )
            assert sim.service.received_minutes(msisdn, now=sim.now) == journal_sum(
                sim, "recipient", msisdn, since
            )
