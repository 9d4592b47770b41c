"""The dialogue state machine (GW-10, GW-11, SE-01 … SE-05, TS-02, TS-07): the transition table
against every (state, event) and every (state, input) pair, and the pure ``step`` along the
menu paths of My Menu *123# and the *434# menu."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessions.dialogue import (
    TRANSITIONS,
    WAITING,
    Action,
    Answer,
    Call,
    Closed,
    Dial,
    Dialogue,
    EndReason,
    Event,
    Expire,
    IllegalTransition,
    Input,
    Release,
    ServiceResult,
    Show,
    State,
    Supersede,
    step,
    transition,
)
from tests.sessions.support import (
    MTS_INITIATOR,
    MTS_MEMBER,
    TELENOR_RECIPIENT,
    TELENOR_RECIPIENT_TYPED,
    drive,
    fresh,
    rules,
)

TELENOR = rules("telenor")
MTS = rules("mts")
LONG = "\n".join(f"Ред {n}: мрежата на Теленор, остават {n * 10} мин." for n in range(1, 9))

# -- the table ---------------------------------------------------------------------------------

#: What each state accepts, said independently of the module: the kinds of input.
ACCEPTS: dict[State, frozenset[type]] = {
    State.START: frozenset({Dial}),
    State.MENU: frozenset({Answer, Release, Expire, Supersede}),
    State.PROMPT: frozenset({Answer, Release, Expire, Supersede}),
    State.SERVICE_PROMPT: frozenset({Answer, Release, Expire, Supersede}),
    State.FINAL_PAGES: frozenset({Answer, Release, Expire, Supersede}),
    State.CALLING: frozenset({ServiceResult}),
    State.ENDED: frozenset(),
}


@settings(max_examples=400)
@given(st.sampled_from(State), st.sampled_from(Event))
def test_se_01_the_table_answers_every_state_and_event_pair(state: State, event: Event) -> None:
    """SE-01 … SE-05: every (state, event) is either a transition of the table, consistent with
    the machine's rules, or refused with IllegalTransition — never anything else."""
    if (state, event) not in TRANSITIONS:
        with pytest.raises(IllegalTransition) as caught:
            transition(state, event)
        assert caught.value.code == "illegal_transition"
        return
    action, after = transition(state, event)
    assert state is not State.ENDED  # nothing leaves the end
    if event in (Event.RELEASE, Event.EXPIRE, Event.SUPERSEDE):
        assert (action, after) == (Action.CLOSE, State.ENDED)
    assert (action is Action.CALL) == (after is State.CALLING)
    if action in (Action.FINISH, Action.FINISH_LAST_PAGE, Action.CLOSE):
        assert after is State.ENDED
    else:
        assert after is not State.ENDED
    if event.name.startswith("DIAL_"):
        assert state is State.START
    if event.name.startswith("RESULT_"):
        assert state is State.CALLING


def test_se_01_every_waiting_state_can_be_aborted_expired_and_superseded() -> None:
    """GW-10, SE-01, SE-02: wherever the dialogue waits for the subscriber, op 32 / an empty
    answer, the timeout and a new dial all end it silently."""
    for state in WAITING:
        for event in (Event.RELEASE, Event.EXPIRE, Event.SUPERSEDE):
            assert transition(state, event) == (Action.CLOSE, State.ENDED)


def _in_state(state: State) -> Dialogue:
    """A real telenor dialogue brought into ``state`` by real inputs."""
    paths: dict[State, tuple[Input, ...]] = {
        State.START: (),
        State.MENU: (Dial("*123#"),),
        State.PROMPT: (Dial("*123#"), Answer("5"), Answer("3")),
        State.CALLING: (Dial("*123#"), Answer("4")),
        State.SERVICE_PROMPT: (
            Dial("*123#"),
            Answer("5"),
            Answer("3"),
            Answer(TELENOR_RECIPIENT_TYPED),
            Answer("1"),
            Answer("30"),
            ServiceResult(text="Потвърдете: 1 Да, 2 Не", end=False),
        ),
        State.FINAL_PAGES: (Dial("*123#"), Answer("1"), ServiceResult(text=LONG)),
        State.ENDED: (Dial("*123#"), Answer("4"), ServiceResult(text="Баланс: 10,00 лв.")),
    }
    dialogue, _ = drive(fresh(TELENOR), *paths[state], now=100)
    assert dialogue.state is state
    return dialogue


INPUTS: list[Input] = [
    Dial("*123#"),
    Dial("*999#"),
    Answer("1"),
    Answer("0"),
    Answer("zzz"),
    Answer(""),
    Answer("   "),
    Release(),
    Expire(),
    Supersede(),
    ServiceResult(text="Готово."),
    ServiceResult(text="Още?", end=False),
    ServiceResult(text=LONG),
]


@settings(max_examples=300)
@given(st.sampled_from(State), st.sampled_from(INPUTS))
def test_se_01_step_answers_every_state_and_input_pair(state: State, given_input: Input) -> None:
    """GW-10, SE-01 … SE-05: for every (state, input) pair ``step`` either refuses with
    IllegalTransition (exactly when the state does not take that kind of input) or moves by
    the table, with effects that agree: a final screen iff Closed iff ENDED, Call iff
    CALLING, one screen at most, and a refreshed deadline while open."""
    dialogue = _in_state(state)
    if type(given_input) not in ACCEPTS[state]:
        with pytest.raises(IllegalTransition):
            step(dialogue, given_input, 200)
        return
    after, effects = step(dialogue, given_input, 200)
    shows = [e for e in effects if isinstance(e, Show)]
    closed = [e for e in effects if isinstance(e, Closed)]
    calls = [e for e in effects if isinstance(e, Call)]
    assert len(shows) <= 1 and len(closed) <= 1 and len(calls) <= 1
    assert bool(closed) == (after.state is State.ENDED)
    assert bool(calls) == (after.state is State.CALLING)
    assert any(s.end for s in shows) == (bool(closed) and bool(shows))
    if after.state in WAITING:
        assert shows and not shows[0].end
        assert after.deadline == 200 + TELENOR.timeout
    if isinstance(given_input, Release | Expire | Supersede) or given_input == Answer("   "):
        assert effects == (Closed(reason=closed[0].reason),)  # silent end
    for show in shows:
        assert TELENOR.fits(show.text)  # GW-11


# -- My Menu *123# (TS-02, TS-07) -----------------------------------------------------------------


def test_ts_02_dialling_123_shows_my_menu_as_a_ussr_request() -> None:
    """TS-02, GW-10: *123# puts My Menu up and keeps the dialogue open."""
    dialogue, effects = step(fresh(TELENOR), Dial("*123#"), 0)
    assert dialogue.state is State.MENU
    assert effects == (Show(text=TELENOR.menus.trees["my_menu"].text, end=False),)


def test_ts_07_the_time_share_path_collects_number_destination_minutes() -> None:
    """TS-02, TS-07: 5 → 3 → number → destination → minutes calls time_share.transfer with the
    wire recipient, the destination letter and whole minutes."""
    dialogue, effects = drive(
        fresh(TELENOR),
        Dial("*123#"),
        Answer("5"),
        Answer("3"),
        Answer(TELENOR_RECIPIENT_TYPED),
        Answer("2"),
        Answer("30"),
    )
    screens = [e.text for e in effects if isinstance(e, Show)]
    assert screens[1].startswith("Uslugi\n1 Aktivni uslugi")
    assert "Номер на получател" in screens[2]
    assert "1 За приятели\n2 мрежата на Теленор" in screens[3]
    assert "Брой минути" in screens[4]
    assert dialogue.state is State.CALLING
    assert effects[-1] == Call(
        action="time_share.transfer",
        params={"recipient": TELENOR_RECIPIENT, "destination": "G", "minutes": 30},
    )


def test_ts_07_a_refusal_is_the_final_screen() -> None:
    """TS-07: what the service answers ends the dialogue on screen (PSSR response)."""
    dialogue, _ = drive(fresh(TELENOR), Dial("*123#"), Answer("4"))
    after, effects = step(
        dialogue, ServiceResult(text="Отказ: последното презареждане е преди 40 дни."), 5
    )
    assert effects == (
        Show(text="Отказ: последното презареждане е преди 40 дни.", end=True),
        Closed(reason=EndReason.COMPLETED),
    )
    assert after.state is State.ENDED


# -- SE-03: menus ----------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["9", "abc", "05", "100", "*", "1 2"])
def test_se_03_an_invalid_choice_reshows_the_menu_under_an_error_line(typed: str) -> None:
    """SE-03: an item the menu lacks (or no number) re-shows the menu with the profile's error
    line; the dialogue stays open, as often as it takes."""
    dialogue, _ = step(fresh(TELENOR), Dial("*123#"), 0)
    for attempt in range(5):
        dialogue, effects = step(dialogue, Answer(typed), attempt)
        assert dialogue.state is State.MENU
        (show,) = effects
        assert not show.end
        assert show.text == "Nevaliden izbor.\n" + TELENOR.menus.trees["my_menu"].text
    dialogue, effects = step(dialogue, Answer("5"), 9)
    assert effects[0].text.startswith("Uslugi")  # type: ignore[union-attr]


# -- SE-05: prompts --------------------------------------------------------------------------------


def _at_recipient_prompt() -> Dialogue:
    dialogue, _ = drive(fresh(TELENOR), Dial("*123#"), Answer("5"), Answer("3"))
    return dialogue


def test_se_05_a_bad_number_is_asked_again_with_the_reason() -> None:
    """SE-05: a bad phone number re-asks the same prompt under the parser's reason."""
    dialogue, effects = step(_at_recipient_prompt(), Answer("0812"), 1)
    assert dialogue.state is State.PROMPT and dialogue.tries == 1
    (show,) = effects
    assert show.text == "Невалиден номер.\nTime Share\nНомер на получател (08XXXXXXXX):"
    assert not show.end


def test_se_05_three_bad_answers_end_the_dialogue_with_the_reason() -> None:
    """SE-05: the third bad answer ends the dialogue, saying why (up to 3 tries)."""
    dialogue = _at_recipient_prompt()
    dialogue, _ = drive(dialogue, Answer("12"), Answer("0812"))
    assert dialogue.state is State.PROMPT
    dialogue, effects = step(dialogue, Answer("x"), 3)
    shows = [e for e in effects if isinstance(e, Show)]
    assert "Твърде много невалидни опити" in "".join(s.text for s in shows) or (
        dialogue.state is State.FINAL_PAGES
    )
    pages: list[str] = [s.text for s in shows]
    while dialogue.state is State.FINAL_PAGES:
        dialogue, effects = step(dialogue, Answer("0"), 4)
        pages.extend(e.text for e in effects if isinstance(e, Show))
    assert dialogue.state is State.ENDED
    whole = "".join(p.replace("\n0 още", "") for p in pages)
    assert whole.startswith("Не")
    assert "Твърде много невалидни опити" in whole
    assert effects[-1] == Closed(reason=EndReason.GAVE_UP)


def test_se_05_a_good_answer_after_a_bad_one_goes_on() -> None:
    """SE-05: a valid value on the second try moves to the next prompt."""
    dialogue, _ = drive(_at_recipient_prompt(), Answer("12"), Answer(TELENOR_RECIPIENT_TYPED))
    assert dialogue.state is State.PROMPT and dialogue.step == 1 and dialogue.tries == 0
    assert dialogue.params == (("recipient", TELENOR_RECIPIENT),)


@pytest.mark.parametrize(
    ("typed", "line"),
    [("35", "кратен на 10"), ("60", "от 10 до 50"), ("пет", "цяло число")],
)
def test_ts_07_minutes_outside_ts_03_are_asked_again_with_their_own_reason(
    typed: str, line: str
) -> None:
    """TS-07: minutes outside 10 … 50 or not a multiple of 10 are refused with their reason."""
    dialogue, _ = drive(_at_recipient_prompt(), Answer(TELENOR_RECIPIENT_TYPED), Answer("1"))
    dialogue, effects = step(dialogue, Answer(typed), 2)
    assert dialogue.state is State.PROMPT
    assert line in effects[0].text  # type: ignore[union-attr]


# -- SE-04: shortcuts ≡ menu paths (MP-05, MP-18 … MP-20) ------------------------------------------


def _call_of(*inputs: Input) -> Call:
    dialogue, effects = drive(fresh(MTS, msisdn=MTS_INITIATOR), *inputs)
    assert dialogue.state is State.CALLING, dialogue.state
    call = effects[-1]
    assert isinstance(call, Call)
    return call


@pytest.mark.parametrize(
    ("shortcut", "path"),
    [
        ("*434*2#", ("2", "3")),  # MP-20
        ("*434*0#", ("2", "2")),  # MP-19
        (f"*434*1*{MTS_MEMBER}#", ("1", MTS_MEMBER)),  # MP-05
        (f"*434*3*{MTS_MEMBER}#", ("2", "1", MTS_MEMBER)),  # MP-18
    ],
)
def test_se_04_a_shortcut_and_its_menu_path_make_the_same_call(
    shortcut: str, path: tuple[str, ...]
) -> None:
    """SE-04 (MP-05, MP-18, MP-19, MP-20): *434*2# and *434# → 2 → 3 (and the others) reach the
    same action with the same parameters."""
    direct = _call_of(Dial(shortcut))
    through_menu = _call_of(Dial("*434#"), *(Answer(a) for a in path))
    assert direct == through_menu
    assert direct.action is not None and direct.action.startswith("shared_bundle.")


def test_mp_05_434_1_opens_the_invite_prompt_and_the_number_invites() -> None:
    """MP-05: *434*1# asks for the number; the number typed invites it."""
    dialogue, effects = step(fresh(MTS, msisdn=MTS_INITIATOR), Dial("*434*1#"), 0)
    assert dialogue.state is State.PROMPT
    assert "7XXXXXXXXXX" in effects[0].text  # type: ignore[union-attr]
    dialogue, effects = step(dialogue, Answer(MTS_MEMBER), 1)
    assert effects == (Call(action="shared_bundle.invite", params={"msisdn": MTS_MEMBER}),)


def test_mp_05_a_number_with_8_is_asked_again_without_the_8() -> None:
    """MP-05: «без восьмерки» — 8916… at the prompt is refused with its own reason."""
    dialogue, _ = step(fresh(MTS, msisdn=MTS_INITIATOR), Dial("*434*1#"), 0)
    dialogue, effects = step(dialogue, Answer("89161234567"), 1)
    assert "без «восьмерки»" in effects[0].text  # type: ignore[union-attr]


def test_gw_10_a_refused_string_ends_at_once_with_the_reason() -> None:
    """GW-10, SE-01: a string the profile does not know ends with the parser's reason."""
    after, effects = step(fresh(TELENOR), Dial("*124#"), 0)
    assert effects == (
        Show(text="Непознат код. Наберете *123# за My Menu.", end=True),
        Closed(reason=EndReason.REFUSED),
    )
    assert after.state is State.ENDED


def test_gw_10_a_command_without_a_menu_entry_goes_to_its_service() -> None:
    """GW-10: a dialled command no menu entry names (*985*2#) is a Call of its handler."""
    after, effects = step(fresh(rules("tele2ru"), msisdn="79520000001"), Dial("*985*2#"), 0)
    (call,) = effects
    assert isinstance(call, Call) and call.action is None
    assert type(call.command).__name__ == "CreateTogetherGroup"
    assert after.state is State.CALLING


# -- service prompts, paging -----------------------------------------------------------------------


def test_gw_10_a_service_question_takes_the_answer_back_to_the_same_action() -> None:
    """GW-10 / services.dispatch: a non-final screen keeps the dialogue open and the answer goes
    back to the same action as params['answer'], with the flow's values."""
    dialogue = _in_state(State.SERVICE_PROMPT)
    dialogue, effects = step(dialogue, Answer("1"), 300)
    assert effects == (
        Call(
            action="time_share.transfer",
            params={
                "recipient": TELENOR_RECIPIENT,
                "destination": "F",
                "minutes": 30,
                "answer": "1",
            },
        ),
    )


def test_gw_11_a_long_final_text_is_paged_with_the_paging_item() -> None:
    """GW-11: a final text longer than one message goes page by page (USSR requests ending in
    «0 още»); «0» turns the page; the last page is the PSSR response."""
    dialogue = _in_state(State.FINAL_PAGES)
    pages = dialogue.pages
    assert len(pages) >= 2
    shown = [pages[0]]
    dialogue, effects = step(dialogue, Answer("5"), 1)  # not the paging item: same page
    assert effects == (Show(text=pages[0], end=False),)
    while dialogue.state is State.FINAL_PAGES:
        dialogue, effects = step(dialogue, Answer("0"), 2)
        shown.extend(e.text for e in effects if isinstance(e, Show))
    assert effects[-2:] == (Show(text=pages[-1], end=True), Closed(reason=EndReason.COMPLETED))
    assert all(p.endswith("\n0 още") for p in shown[:-1])
    assert "".join(p.removesuffix("\n0 още") for p in shown).replace("\n", "") == LONG.replace(
        "\n", ""
    )


def test_gw_11_a_long_menu_is_paged_and_any_item_is_taken_from_any_page() -> None:
    """GW-11, SE-03: a menu too long for one message is paged; «0 далее» shows the rest; an item
    listed on a later page can be chosen from the first."""
    items = {
        n: {"label": f"Пункт номер {n} с длинным названием", "action": f"t.a{n}"}
        for n in range(1, 9)
    }
    menus = {
        "paging": {"key": 0, "label": "далее"},
        "trees": {"long": {"title": "Длинное меню", "items": items}},
        "entries": {"OpenSharedBundleMenu": ["long"]},
    }
    long_rules = rules("mts", menus=menus)
    dialogue, effects = step(fresh(long_rules, msisdn=MTS_INITIATOR), Dial("*434#"), 0)
    first = effects[0]
    assert isinstance(first, Show) and first.text.endswith("\n0 далее") and not first.end
    assert "8 Пункт" not in first.text
    paged, effects = step(dialogue, Answer("0"), 1)
    assert paged.state is State.MENU and paged.page == 1
    _, effects = step(dialogue, Answer("8"), 1)
    assert effects == (Call(action="t.a8", params={}),)


ABORTS: list[Callable[[], Input]] = [Release, lambda: Answer("")]


@pytest.mark.parametrize("abort", ABORTS)
def test_gw_10_an_abort_ends_silently(abort: Callable[[], Input]) -> None:
    """GW-10: op 32 or an empty answer ends the dialogue without a reply."""
    dialogue, _ = step(fresh(TELENOR), Dial("*123#"), 0)
    after, effects = step(dialogue, abort(), 1)
    assert effects == (Closed(reason=EndReason.RELEASED),)
    assert after.state is State.ENDED
