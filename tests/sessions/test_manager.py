"""The dialogue manager (SE-01 … SE-05, GW-10, TS-07): one dialogue per MSISDN, timeouts from the
profile, service calls through the directory, and a stateful property test driving random
dials, answers, aborts and clock moves for several handsets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import structlog
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from parsers.commands import CreateTogetherGroup
from services.dispatch import Context, Outcome, Screen, ServiceDirectory
from services.outbox import Reply
from services.profiles import Profiles
from sessions.dialogue import EndReason, State
from sessions.manager import DialogueManager, Kind, Turn, classify
from sessions.menus import MenuError
from tests.sessions.support import (
    MTS_INITIATOR,
    MTS_MEMBER,
    PROFILES,
    TELENOR_RECIPIENT,
    TELENOR_RECIPIENT_TYPED,
    TELENOR_SENDER,
    Recorder,
    directory_with,
    profile,
)

DIAL, ANSWER, RELEASE = 1, 18, 32
TIME_SHARE = "time_share.transfer"
SHARED = (
    "shared_bundle.invite",
    "shared_bundle.remove",
    "shared_bundle.leave",
    "shared_bundle.info",
)


def manager(
    directory: ServiceDirectory | None = None,
    profiles: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> DialogueManager:
    return DialogueManager(
        directory if directory is not None else ServiceDirectory(),
        profiles if profiles is not None else PROFILES,
        **kwargs,
    )


def send(m: DialogueManager, msisdn: str, text: str, op: int | None, now: int = 0) -> Turn:
    profile_name = "mts" if msisdn.startswith("7") else "telenor"
    return m.handle(
        msisdn=msisdn,
        profile=profile_name,
        text=text,
        op=op,
        service_number="123" if op == DIAL else "USSD",
        now=now,
    )


# -- classification (GW-10) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "text", "is_open", "kind"),
    [
        (1, "5", True, Kind.DIAL),
        (18, "*123#", True, Kind.ANSWER),
        (32, "", True, Kind.RELEASE),
        (None, "*123#", True, Kind.DIAL),
        (None, "5", True, Kind.ANSWER),
        (None, "5", False, Kind.DIAL),
        (2, "5", True, Kind.ANSWER),
        (None, "", True, Kind.RELEASE),
        (None, " ", False, Kind.RELEASE),
    ],
)
def test_gw_10_ops_1_18_32_and_no_op_are_read_as_dial_answer_abort(
    op: int | None, text: str, is_open: bool, kind: Kind
) -> None:
    """GW-10: 1 dials, 18 answers, 32 aborts; without an op, the text and the open dialogue
    decide."""
    assert classify(op, text, dialogue_open=is_open) is kind


# -- SE-01 … SE-02 ---------------------------------------------------------------------------------


def test_se_01_dialling_while_a_dialogue_is_open_ends_the_old_one() -> None:
    """SE-01: a new string while a dialogue is open ends it (silently) and opens the new one."""
    m = manager()
    first = send(m, TELENOR_SENDER, "*123#", DIAL)
    old = first.screens[0].dialogue
    second = send(m, TELENOR_SENDER, "*123#", DIAL, now=1)
    assert second.closed == ((old, EndReason.SUPERSEDED),)
    assert [s.dialogue for s in second.screens] == [old + 1]  # type: ignore[operator]
    assert len(m) == 1 and m.dialogue(TELENOR_SENDER).id == old + 1  # type: ignore[union-attr]


def test_se_02_the_timeout_comes_from_the_profile_and_defaults_to_120_s() -> None:
    """SE-02: the inactivity timeout is the profile's ussd_timeout (120 s in the bundled ones)."""
    assert all(manager().rules(name).timeout == 120 for name in PROFILES)
    short = Profiles([profile("telenor", ussd_timeout=30)])
    m = manager(profiles=short)
    send(m, TELENOR_SENDER, "*123#", DIAL, now=1000)
    assert m.next_deadline() == 1030


def test_se_02_no_answer_within_the_timeout_ends_the_dialogue_silently() -> None:
    """SE-02: expire() at the deadline ends the dialogue without a screen; a late answer then
    gets the final «session expired» text."""
    m = manager()
    send(m, TELENOR_SENDER, "*123#", DIAL, now=1000)
    assert m.expire(1119).closed == ()
    turn = m.expire(1120)
    assert [reason for _, reason in turn.closed] == [EndReason.EXPIRED] and turn.screens == ()
    assert m.next_deadline() is None and len(m) == 0
    late = send(m, TELENOR_SENDER, "5", ANSWER, now=1121)
    assert [(s.text, s.end, s.dialogue) for s in late.screens] == [
        ("Времето за отговор изтече. Наберете *123# отново.", True, None)
    ]


def test_se_02_an_answer_after_the_deadline_is_late_even_before_the_timer_ran() -> None:
    """SE-02: a dialogue past its deadline is expired when its answer comes, whatever the timer."""
    m = manager()
    send(m, TELENOR_SENDER, "*123#", DIAL, now=0)
    late = send(m, TELENOR_SENDER, "5", ANSWER, now=500)
    assert [reason for _, reason in late.closed] == [EndReason.EXPIRED]
    assert late.screens[0].text.startswith("Времето за отговор изтече") and late.screens[0].end


def test_se_02_each_answer_moves_the_deadline() -> None:
    """SE-02: the timeout counts from the last message of the dialogue, not from the dial."""
    m = manager()
    send(m, TELENOR_SENDER, "*123#", DIAL, now=0)
    send(m, TELENOR_SENDER, "5", ANSWER, now=100)
    assert m.next_deadline() == 220
    assert m.expire(150).closed == ()


def test_gw_10_an_abort_ends_without_a_reply_and_a_stray_abort_is_ignored() -> None:
    """GW-10: op 32 or an empty answer ends the open dialogue silently; with none open, nothing."""
    m = manager()
    send(m, TELENOR_SENDER, "*123#", DIAL)
    turn = send(m, TELENOR_SENDER, "", RELEASE)
    assert turn.screens == () and [r for _, r in turn.closed] == [EndReason.RELEASED]
    assert send(m, TELENOR_SENDER, "", RELEASE) == Turn()
    send(m, TELENOR_SENDER, "*123#", DIAL)
    turn = send(m, TELENOR_SENDER, "", ANSWER)
    assert turn.screens == () and [r for _, r in turn.closed] == [EndReason.RELEASED]
    assert send(m, TELENOR_SENDER, "", ANSWER) == Turn()


# -- calling services (TS-07, SE-04) ------------------------------------------------------------


def test_ts_07_the_time_share_path_calls_the_action_and_shows_its_refusal() -> None:
    """TS-07: through *123# the action gets the wire recipient, the letter and the minutes; a
    refusal it returns is the final screen; its SMS are handed on."""
    recorder = Recorder()
    recorder.answers[TIME_SHARE] = Outcome(
        screen=Screen(template="parse_error.minutes_out_of_range"),
        replies=(
            Reply(
                to=TELENOR_SENDER,
                sender="125",
                template="low_balance",
                params={"balance": 100},
                profile="telenor",
            ),
        ),
    )
    m = manager(directory_with(recorder, {"telenor": (TIME_SHARE,)}))
    for text, op in [
        ("*123#", DIAL),
        ("5", ANSWER),
        ("3", ANSWER),
        (TELENOR_RECIPIENT_TYPED, ANSWER),
        ("1", ANSWER),
    ]:
        send(m, TELENOR_SENDER, text, op, now=10)
    turn = send(m, TELENOR_SENDER, "20", ANSWER, now=11)
    ((name, context, params),) = recorder.calls
    assert (name, params) == (
        TIME_SHARE,
        {"recipient": TELENOR_RECIPIENT, "destination": "F", "minutes": 20},
    )
    assert (context.msisdn, context.profile, context.channel, context.now) == (
        TELENOR_SENDER,
        "telenor",
        "ussd",
        11,
    )
    assert context.service_number == "123"  # the dialled code answers, not "USSD"
    assert [(s.text, s.end, s.sender) for s in turn.screens] == [
        ("Броят минути трябва да е от 10 до 50.", True, "123")
    ]
    assert [r.template for r in turn.replies] == ["low_balance"]
    assert m.dialogue(TELENOR_SENDER) is None


@pytest.mark.parametrize(
    ("shortcut", "path", "action", "params"),
    [
        ("*434*2#", ["*434#", "2", "3"], "shared_bundle.info", {}),
        ("*434*0#", ["*434#", "2", "2"], "shared_bundle.leave", {}),
        (
            f"*434*1*{MTS_MEMBER}#",
            ["*434#", "1", MTS_MEMBER],
            "shared_bundle.invite",
            {"msisdn": MTS_MEMBER},
        ),
        (
            f"*434*3*{MTS_MEMBER}#",
            ["*434#", "2", "1", MTS_MEMBER],
            "shared_bundle.remove",
            {"msisdn": MTS_MEMBER},
        ),
    ],
)
def test_se_04_shortcut_and_menu_path_give_the_same_result(
    shortcut: str, path: list[str], action: str, params: dict[str, object]
) -> None:
    """SE-04 (MP-05, MP-18, MP-19, MP-20): the shortcut and the menu path call the same action
    with the same parameters and show the same final screen."""
    results = []
    for texts in ([shortcut], path):
        recorder = Recorder()
        recorder.answers[action] = Outcome(screen=Screen(template="request_accepted"))
        m = manager(directory_with(recorder, {"mts": SHARED}))
        turn = Turn()
        for i, text in enumerate(texts):
            turn = send(m, MTS_INITIATOR, text, DIAL if i == 0 else ANSWER)
        assert [(n, p) for n, _, p in recorder.calls] == [(action, params)]
        results.append([(s.text, s.end) for s in turn.screens])
    assert results[0] == results[1] == [("Запрос принят. Ожидайте SMS с результатом.", True)]


def test_gw_10_an_action_no_service_provides_answers_service_unavailable() -> None:
    """GW-10: until a service registers its action, the dialogue ends with a clear screen."""
    m = manager()
    send(m, MTS_INITIATOR, "*434#", DIAL)
    turn = send(m, MTS_INITIATOR, "1", ANSWER)
    turn = send(m, MTS_INITIATOR, MTS_MEMBER, ANSWER)
    assert [(s.text, s.end) for s in turn.screens] == [
        ("Услуга временно недоступна. Попробуйте позже.", True)
    ]
    assert m.dialogue(MTS_INITIATOR) is None
    assert m.missing_actions()["mts"] == frozenset(SHARED)


def test_gw_10_a_failing_service_is_logged_and_the_handset_still_gets_a_screen() -> None:
    """GW-10: an exception in a service never escapes: it is logged, the screen says unavailable."""
    directory = ServiceDirectory()

    def broken(context: Context, params: Mapping[str, object]) -> Outcome:
        raise RuntimeError("boom")

    directory.register_action("telenor", "info.balance", broken)
    with structlog.testing.capture_logs() as logs:
        m = manager(directory, log=structlog.get_logger())
        send(m, TELENOR_SENDER, "*123#", DIAL)
        turn = send(m, TELENOR_SENDER, "4", ANSWER)
    assert [(s.text, s.end) for s in turn.screens] == [
        ("Услугата временно не е достъпна. Моля, опитайте по-късно.", True)
    ]
    assert any(e["event"] == "dialogue_service_failed" for e in logs)


def test_gw_10_an_outcome_without_a_screen_says_the_request_is_accepted() -> None:
    """GW-10: a service that only sends SMS still closes the dialogue with a final screen."""
    recorder = Recorder()
    recorder.answers["shared_bundle.leave"] = Outcome()
    m = manager(directory_with(recorder, {"mts": SHARED}))
    turn = send(m, MTS_INITIATOR, "*434*0#", DIAL)
    assert [(s.text, s.end) for s in turn.screens] == [
        ("Запрос принят. Ожидайте SMS с результатом.", True)
    ]


def test_gw_10_a_command_handler_answers_a_dialled_command_once() -> None:
    """GW-10: *985*2# goes to the command's handler with the USSD channel; its screen is final
    even if it asks to stay open (a command has no action to take an answer)."""
    directory = ServiceDirectory()
    seen: list[tuple[Context, object]] = []

    def create(context: Context, command: Any) -> Outcome:
        seen.append((context, command))
        return Outcome(screen=Screen(template="request_accepted", end=False))

    directory.register_command("tele2ru", CreateTogetherGroup, create)
    m = manager(directory)
    turn = m.handle(
        msisdn="79520000001",
        profile="tele2ru",
        text="*985*2#",
        op=DIAL,
        service_number="985",
        now=0,
    )
    assert [(c.channel, type(cmd).__name__) for c, cmd in seen] == [("ussd", "CreateTogetherGroup")]
    assert [s.end for s in turn.screens] == [True]
    assert len(m) == 0


def test_gw_10_a_service_question_keeps_the_dialogue_open_for_its_answer() -> None:
    """GW-10: a non-final screen is a USSR request; the answer comes back as params['answer']."""
    recorder = Recorder()
    recorder.answers["shared_bundle.leave"] = Outcome(
        screen=Screen(template="request_accepted", end=False)
    )
    m = manager(directory_with(recorder, {"mts": SHARED}))
    turn = send(m, MTS_INITIATOR, "*434*0#", DIAL)
    assert [s.end for s in turn.screens] == [False]
    recorder.answers["shared_bundle.leave"] = Outcome(screen=Screen(template="service_unavailable"))
    turn = send(m, MTS_INITIATOR, "1", ANSWER)
    assert [p for _, _, p in recorder.calls] == [{}, {"answer": "1"}]
    assert [s.end for s in turn.screens] == [True]


def test_se_03_a_broken_menu_stops_the_manager_at_start() -> None:
    """SE-03: a profile with a broken menu is refused when the manager (the gateway) starts."""
    broken = Profiles([profile("telenor", menus={"trees": {"x": {"title": "t"}}})])
    with pytest.raises(MenuError, match=r"telenor\.yaml: menus\.trees\.x\.items"):
        manager(profiles=broken)


# -- the stateful property test --------------------------------------------------------------------

HANDSETS = (TELENOR_SENDER, "359881000002", MTS_INITIATOR, "79160000002")
TEXTS = (
    "*123#",
    "*434#",
    "*434*2#",
    "*434*1#",
    "*999#",
    "1",
    "2",
    "3",
    "5",
    "0",
    "9",
    "x",
    "",
    "0898123456",
    MTS_MEMBER,
    "30",
)


class Handsets(RuleBasedStateMachine):
    """Random dials, answers, aborts and clock moves by several handsets; the manager must keep
    one open dialogue per MSISDN, end each dialogue exactly once and say nothing after."""

    @initialize()
    def start(self) -> None:
        recorder = Recorder()
        self.directory = directory_with(
            recorder,
            {"telenor": (TIME_SHARE, "info.balance", "info.packages"), "mts": SHARED[:2]},
        )
        recorder.answers["info.packages"] = Outcome(
            screen=Screen(
                template="info.packages",
                params={"lines": "\n".join(["Пакет 600 минути в мрежата"] * 6)},
            )
        )
        recorder.answers["shared_bundle.invite"] = Outcome(
            screen=Screen(template="request_accepted", end=False)
        )
        self.m = manager(self.directory)
        self.now = 0
        self.opened: dict[int, str] = {}  # dialogue id → msisdn
        self.ended: dict[int, int] = {}  # dialogue id → times it ended
        self.open_of: dict[str, int] = {}

    def _absorb(self, msisdn: str, turn: Turn) -> None:
        closed_now = [d for d, _ in turn.closed]
        for screen in turn.screens:
            assert screen.to == msisdn
            if screen.dialogue is not None and screen.dialogue not in self.opened:
                self.opened[screen.dialogue] = msisdn
                other = self.open_of.get(msisdn)
                assert other is None or other in closed_now, "two dialogues open for one MSISDN"
        for dialogue_id in closed_now:
            assert dialogue_id in self.opened, "a dialogue ended that never showed anything"
            self.ended[dialogue_id] = self.ended.get(dialogue_id, 0) + 1
            assert self.ended[dialogue_id] == 1, "a dialogue ended twice"
            if self.open_of.get(self.opened[dialogue_id]) == dialogue_id:
                del self.open_of[self.opened[dialogue_id]]
        for screen in turn.screens:
            if screen.dialogue is None:
                assert screen.end  # «session expired» for a message no dialogue took
                continue
            # no reply after the end: only a dialogue ending in this very turn may have ended
            assert self.ended.get(screen.dialogue, 0) == (screen.dialogue in closed_now)
            # a final screen comes with the dialogue's end, a USSR request never does
            assert screen.end == (screen.dialogue in closed_now)
            if not screen.end:
                self.open_of[msisdn] = screen.dialogue

    @rule(msisdn=st.sampled_from(HANDSETS), text=st.sampled_from(TEXTS))
    def dial(self, msisdn: str, text: str) -> None:
        self._absorb(msisdn, send(self.m, msisdn, text or "*123#", DIAL, self.now))

    @rule(msisdn=st.sampled_from(HANDSETS), text=st.sampled_from(TEXTS))
    def answer(self, msisdn: str, text: str) -> None:
        self._absorb(msisdn, send(self.m, msisdn, text, ANSWER, self.now))

    @rule(msisdn=st.sampled_from(HANDSETS), text=st.sampled_from(TEXTS))
    def without_op(self, msisdn: str, text: str) -> None:
        self._absorb(msisdn, send(self.m, msisdn, text or "x", None, self.now))

    @rule(msisdn=st.sampled_from(HANDSETS))
    def release(self, msisdn: str) -> None:
        self._absorb(msisdn, send(self.m, msisdn, "", RELEASE, self.now))

    @rule(seconds=st.sampled_from([1, 30, 119, 120, 121, 500]), run_timer=st.booleans())
    def advance(self, seconds: int, run_timer: bool) -> None:
        self.now += seconds
        if run_timer:
            turn = self.m.expire(self.now)
            assert turn.screens == ()
            self._absorb("", turn)

    @invariant()
    def one_open_dialogue_per_msisdn(self) -> None:
        if not hasattr(self, "m"):
            return
        open_dialogues = list(self.m)
        assert len({d.msisdn for d in open_dialogues}) == len(open_dialogues)
        for d in open_dialogues:
            assert d.state in (State.MENU, State.PROMPT, State.SERVICE_PROMPT, State.FINAL_PAGES)
            assert self.open_of.get(d.msisdn) == d.id
            assert d.id not in self.ended

    @invariant()
    def the_timer_knows_every_open_dialogue(self) -> None:
        if not hasattr(self, "m"):
            return
        deadlines = [d.deadline for d in self.m]
        assert self.m.next_deadline() == (min(deadlines) if deadlines else None)

    def teardown(self) -> None:
        if not hasattr(self, "m"):
            return
        self.now += 10_000
        self._absorb("", self.m.expire(self.now))
        assert len(self.m) == 0
        assert set(self.ended) == set(self.opened) | set(self.ended)
        assert all(self.ended.get(i) == 1 for i in self.opened), "every dialogue ends exactly once"


Handsets.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
test_se_01_se_02_handsets_dialling_answering_aborting_and_waiting = Handsets.TestCase
