"""One USSD dialogue as an explicit state machine: its states, the events its inputs amount
to, the transition table ``(state, event) -> (action, next_state)`` and the pure
``step(dialogue, input, now) -> (dialogue, effects)`` (SPEC GW-10, GW-11, SE-01 … SE-05).

Theory of operation
-------------------

A subscriber's handset (an ESME playing it, GW-10) **dials** a string: a PSSR indication.
The manager (``sessions.manager``) makes a :class:`Dialogue` in ``START`` and steps it with
:class:`Dial`. The string is parsed (``parsers.ussd.parse_ussd``) and resolved against the
profile's menus (``sessions.menus``): an entry of the menus puts the dialogue on a menu, on a
prompt of a flow (the command's fields fill the prompts they name, SE-04), or straight at the
flow's action; a command no entry names goes to the service registered for it; a string the
parser refuses ends the dialogue with the reason.

While the dialogue waits (``MENU``, ``PROMPT``, ``SERVICE_PROMPT``, ``FINAL_PAGES``), each
screen goes out as a USSR request (it stays open) and the subscriber's **answer** (USSR
confirm) is interpreted against what is on screen: a menu item (SE-03: anything else re-shows
the menu under an error line), a prompt's value (SE-05: a bad one re-asks under the reason,
the last of ``tries`` bad ones ends the dialogue), or — at a screen a service put up itself —
text handed back to that service as ``params["answer"]``. A screen longer than one USSD
message (GW-11) is cut into pages, each but the last ending with the paging item; that item
shows the next page, and on a menu or prompt any other answer still counts as the answer to
the whole screen.

When the dialogue reaches an action it emits :class:`Call` and waits in ``CALLING``; the
manager runs the service and steps it again with the :class:`ServiceResult`: a final text
(PSSR response, the dialogue ends — paged first if long) or a further prompt of the service.

The dialogue ends exactly once, in ``ENDED``, with a :class:`Closed` effect saying why:
``COMPLETED`` (its final text was shown), ``REFUSED`` (the dialled string was refused),
``GAVE_UP`` (too many bad answers), ``RELEASED`` (the subscriber aborted: ussd_service_op 32
or an empty answer), ``EXPIRED`` (no answer within the profile's ``ussd_timeout``, SE-02) or
``SUPERSEDED`` (a new string was dialled, SE-01). The last three end silently: the handset
has gone or moved on. Nothing leaves a dialogue after its end; a late answer finds no
dialogue and the manager answers it «session expired».

Every input is first *interpreted* into an :class:`Event` (pure: parsing, menu lookup,
paging); the table then says what to do and where to go. Anything not in the table is
invalid and raises :class:`IllegalTransition` — the manager never asks for one (the tests
drive every pair). A dialogue is a small frozen value; ``step`` returns a new one.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Final

import attrs

from parsers.commands import (
    Command,
    CountAnswer,
    DestinationAnswer,
    MenuChoice,
    MinutesAnswer,
    PhoneNumberAnswer,
)
from parsers.errors import ParseError
from parsers.ussd import parse_menu_answer, parse_ussd
from services.outbox import Params, render_template, require_template
from services.profiles import Profile
from sessions.menus import ANSWER_PARAM, Flow, Menu, MenuSet, Node
from sessions.paging import Fits, fits_ussd, paginate

#: SE-02: the inactivity timeout when a profile does not set ``ussd_timeout``.
DEFAULT_TIMEOUT: Final = 120

# Templates every profile words for its dialogues (checked by outbox.check_templates).
TOO_MANY_ATTEMPTS: Final = require_template("too_many_attempts", "reason").key
PARSE_ERROR_FALLBACK: Final = "parse_error.bad_format"
#: Optional, shorter words of a refusal for the screen (``ussd_error.bad_msisdn``).
USSD_ERROR_PREFIX: Final = "ussd_error."
#: ParseError reasons a dialled string or a typed answer can carry (parsers.errors).
DIALOGUE_PARSE_REASONS: Final = (
    "empty",
    "spaces_not_allowed",
    "bad_format",
    "unknown_code",
    "missing_msisdn",
    "bad_msisdn",
    "msisdn_with_8",
    "bad_destination_letter",
    "minutes_out_of_range",
    "minutes_not_multiple_of_10",
    "not_a_number",
    "bad_choice",
    "count_out_of_range",
)
for _reason in DIALOGUE_PARSE_REASONS:
    require_template(f"parse_error.{_reason}")


class State(enum.Enum):
    """Where a dialogue is (one at a time)."""

    START = "start"  # made by a dial; nothing shown yet
    MENU = "menu"  # a menu (a page of it) is on screen, awaiting an item number
    PROMPT = "prompt"  # a prompt of a flow is on screen, awaiting a value
    SERVICE_PROMPT = "service_prompt"  # a service's own question, awaiting any text
    CALLING = "calling"  # a service is being called (inside one manager call)
    FINAL_PAGES = "final_pages"  # a long final text, shown page by page
    ENDED = "ended"  # over; nothing more is sent


class Event(enum.Enum):
    """What an input amounts to, given what is on screen."""

    DIAL_MENU = "dial_menu"  # the dialled string opens a menu
    DIAL_PROMPT = "dial_prompt"  # ... a flow that asks first
    DIAL_CALL = "dial_call"  # ... a service at once (a full shortcut, a command, SE-04)
    DIAL_REFUSED = "dial_refused"  # ... is refused (ParseError): the reason, final
    DIAL_REFUSED_PAGED = "dial_refused_paged"  # ... with a reason longer than a message
    CHOOSE_MENU = "choose_menu"  # a menu item that is a submenu
    CHOOSE_PROMPT = "choose_prompt"  # a menu item whose flow asks first
    CHOOSE_CALL = "choose_call"  # a menu item that calls a service at once
    VALUE_NEXT = "value_next"  # a valid value; another prompt follows
    VALUE_CALL = "value_call"  # a valid value, the flow's last: call the service
    SERVICE_ANSWER = "service_answer"  # an answer to the service's own question
    BAD_ANSWER = "bad_answer"  # invalid: re-show (under an error line, SE-03, SE-05)
    GIVE_UP = "give_up"  # invalid for the last allowed time (SE-05): the reason, final
    GIVE_UP_PAGED = "give_up_paged"
    MORE = "more"  # the paging item: the next page (GW-11)
    MORE_LAST = "more_last"  # the paging item, reaching the last page of a final text
    RESULT_PROMPT = "result_prompt"  # the service asks something more
    RESULT_FINAL = "result_final"  # the service's final text
    RESULT_FINAL_PAGED = "result_final_paged"
    RELEASE = "release"  # the subscriber aborts (op 32 or an empty answer, GW-10)
    EXPIRE = "expire"  # no answer within the timeout (SE-02)
    SUPERSEDE = "supersede"  # a new string was dialled (SE-01)


class Action(enum.Enum):
    """What a transition does."""

    SHOW = "show"  # put a new screen up (its first page), awaiting an answer
    TURN_PAGE = "turn_page"  # the next page of the screen
    RESHOW_PAGE = "reshow_page"  # the same page again
    CALL = "call"  # ask the manager to run a service
    FINISH = "finish"  # a final text (PSSR response); the dialogue ends
    FINISH_LAST_PAGE = "finish_last_page"  # the last page of a final text; it ends
    CLOSE = "close"  # end without a word


class EndReason(enum.Enum):
    """Why a dialogue ended (``Closed.reason``)."""

    COMPLETED = "completed"
    REFUSED = "refused"
    GAVE_UP = "gave_up"
    RELEASED = "released"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"


_S, _E, _A = State, Event, Action
_CLOSE: Final = {
    _E.RELEASE: (_A.CLOSE, _S.ENDED),
    _E.EXPIRE: (_A.CLOSE, _S.ENDED),
    _E.SUPERSEDE: (_A.CLOSE, _S.ENDED),
}

#: The whole machine. Anything not in this map is invalid.
TRANSITIONS: Final[Mapping[tuple[State, Event], tuple[Action, State]]] = {
    (_S.START, _E.DIAL_MENU): (_A.SHOW, _S.MENU),
    (_S.START, _E.DIAL_PROMPT): (_A.SHOW, _S.PROMPT),
    (_S.START, _E.DIAL_CALL): (_A.CALL, _S.CALLING),
    (_S.START, _E.DIAL_REFUSED): (_A.FINISH, _S.ENDED),
    (_S.START, _E.DIAL_REFUSED_PAGED): (_A.SHOW, _S.FINAL_PAGES),
    (_S.MENU, _E.CHOOSE_MENU): (_A.SHOW, _S.MENU),
    (_S.MENU, _E.CHOOSE_PROMPT): (_A.SHOW, _S.PROMPT),
    (_S.MENU, _E.CHOOSE_CALL): (_A.CALL, _S.CALLING),
    (_S.MENU, _E.MORE): (_A.TURN_PAGE, _S.MENU),
    (_S.MENU, _E.BAD_ANSWER): (_A.SHOW, _S.MENU),
    **{(_S.MENU, event): result for event, result in _CLOSE.items()},
    (_S.PROMPT, _E.VALUE_NEXT): (_A.SHOW, _S.PROMPT),
    (_S.PROMPT, _E.VALUE_CALL): (_A.CALL, _S.CALLING),
    (_S.PROMPT, _E.MORE): (_A.TURN_PAGE, _S.PROMPT),
    (_S.PROMPT, _E.BAD_ANSWER): (_A.SHOW, _S.PROMPT),
    (_S.PROMPT, _E.GIVE_UP): (_A.FINISH, _S.ENDED),
    (_S.PROMPT, _E.GIVE_UP_PAGED): (_A.SHOW, _S.FINAL_PAGES),
    **{(_S.PROMPT, event): result for event, result in _CLOSE.items()},
    (_S.SERVICE_PROMPT, _E.SERVICE_ANSWER): (_A.CALL, _S.CALLING),
    (_S.SERVICE_PROMPT, _E.MORE): (_A.TURN_PAGE, _S.SERVICE_PROMPT),
    **{(_S.SERVICE_PROMPT, event): result for event, result in _CLOSE.items()},
    (_S.CALLING, _E.RESULT_PROMPT): (_A.SHOW, _S.SERVICE_PROMPT),
    (_S.CALLING, _E.RESULT_FINAL): (_A.FINISH, _S.ENDED),
    (_S.CALLING, _E.RESULT_FINAL_PAGED): (_A.SHOW, _S.FINAL_PAGES),
    (_S.FINAL_PAGES, _E.MORE): (_A.TURN_PAGE, _S.FINAL_PAGES),
    (_S.FINAL_PAGES, _E.MORE_LAST): (_A.FINISH_LAST_PAGE, _S.ENDED),
    (_S.FINAL_PAGES, _E.BAD_ANSWER): (_A.RESHOW_PAGE, _S.FINAL_PAGES),
    **{(_S.FINAL_PAGES, event): result for event, result in _CLOSE.items()},
}

#: States in which the dialogue is open and waits for the subscriber (its timer runs).
WAITING: Final = frozenset({_S.MENU, _S.PROMPT, _S.SERVICE_PROMPT, _S.FINAL_PAGES})


class IllegalTransition(Exception):
    """An input the dialogue's state does not accept: a caller's mistake, never a subscriber's."""

    code: Final = "illegal_transition"

    def __init__(self, state: State, event: Event) -> None:
        self.state, self.event = state, event
        super().__init__(f"{event.value} is not accepted in state {state.value}")


# -- the rules a dialogue follows (one per profile, shared) ----------------------------------------


@attrs.frozen(kw_only=True, eq=False)
class Rules:
    """What a profile's dialogues follow: its menus, texts, timeout and message capacity."""

    profile: Profile
    menus: MenuSet
    timeout: int = DEFAULT_TIMEOUT
    fits: Fits = fits_ussd
    name: str = attrs.field(init=False)
    more: str = attrs.field(init=False)  # the paging line, «0 още»
    more_key: str = attrs.field(init=False)  # what the subscriber types for the next page

    @name.default
    def _name(self) -> str:
        return self.profile.name

    @more.default
    def _more(self) -> str:
        return self.menus.paging.line

    @more_key.default
    def _more_key(self) -> str:
        return str(self.menus.paging.key)

    def pages(self, text: str) -> tuple[str, ...]:
        return paginate(text, self.more, self.fits)

    def text(self, key: str, params: Mapping[str, object] | None = None) -> str:
        return render_template(self.profile, key, params or {})

    def error_line(self, reason: str) -> str:
        """The profile's words for a parser's refusal on a screen: ``ussd_error.<reason>`` when
        the profile has shorter words for USSD (80 Cyrillic characters), else those of its SMS
        replies, ``parse_error.<reason>``."""
        templates = self.profile.templates
        for key in (USSD_ERROR_PREFIX + reason, f"parse_error.{reason}"):
            if key in templates:
                return self.text(key)
        return self.text(PARSE_ERROR_FALLBACK)


# -- values: the dialogue, its inputs, its effects -------------------------------------------------

Collected = tuple[tuple[str, object], ...]


@attrs.frozen(kw_only=True)
class Dialogue:
    """One open dialogue: who, where in the menus, what is on screen, until when."""

    id: int
    msisdn: str
    service_number: str
    rules: Rules = attrs.field(eq=False, repr=False)
    state: State = State.START
    node: Node | None = attrs.field(default=None, eq=False, repr=lambda n: getattr(n, "path", "-"))
    step: int = 0  # the prompt of the flow on screen
    params: Collected = ()
    screen: str = ""
    page: int = 0
    tries: int = 0  # bad answers given to the prompt on screen
    reason: EndReason | None = None  # set while a final text is paged
    deadline: int = 0

    @property
    def pages(self) -> tuple[str, ...]:
        return self.rules.pages(self.screen)


@attrs.frozen
class Dial:
    """The subscriber dialled ``text`` (PSSR indication, ussd_service_op 1)."""

    text: str


@attrs.frozen
class Answer:
    """The subscriber typed ``text`` at the screen (USSR confirm, ussd_service_op 18)."""

    text: str


@attrs.frozen
class Release:
    """The subscriber aborted (ussd_service_op 32, GW-10)."""


@attrs.frozen
class Expire:
    """The inactivity timeout passed (SE-02)."""


@attrs.frozen
class Supersede:
    """The subscriber dialled a new string while this dialogue was open (SE-01)."""


@attrs.frozen(kw_only=True)
class ServiceResult:
    """What the called service answered, as text: final (``end``) or a further question."""

    text: str
    end: bool = True


Input = Dial | Answer | Release | Expire | Supersede | ServiceResult


@attrs.frozen(kw_only=True)
class Show:
    """A screen for the subscriber: a USSR request (``end=False``) or PSSR response."""

    text: str
    end: bool


@attrs.frozen(kw_only=True)
class Call:
    """Run a service: a menu action with its parameters, or the handler of a command."""

    action: str | None = None
    command: Command | None = None
    params: Params = attrs.field(factory=Params)


@attrs.frozen(kw_only=True)
class Closed:
    """The dialogue ended, once."""

    reason: EndReason


Effect = Show | Call | Closed


# -- interpreting inputs ---------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Move:
    """An interpreted input: the event and what the transition needs to carry it out."""

    event: Event
    node: Node | None = None
    step: int = 0
    params: Collected = ()
    screen: str = ""
    tries: int = 0
    reason: EndReason | None = None
    call: Call | None = None


def interpret(dialogue: Dialogue, given: Input) -> Move:
    """What ``given`` amounts to for ``dialogue`` (pure)."""
    match given:
        case Answer(text=text):
            if not text.strip():
                return Move(event=Event.RELEASE, reason=EndReason.RELEASED)
            return _answered(dialogue, text)
        case Dial(text=text):
            return _dialled(dialogue, text)
        case ServiceResult():
            return _result(dialogue, given)
        case Release():
            return Move(event=Event.RELEASE, reason=EndReason.RELEASED)
        case Expire():
            return Move(event=Event.EXPIRE, reason=EndReason.EXPIRED)
        case Supersede():
            return Move(event=Event.SUPERSEDE, reason=EndReason.SUPERSEDED)
    raise TypeError(f"not a dialogue input: {given!r}")  # pragma: no cover - typed callers


def _final(dialogue: Dialogue, fits: Event, paged: Event, text: str, reason: EndReason) -> Move:
    event = fits if len(dialogue.rules.pages(text)) == 1 else paged
    return Move(event=event, screen=text, reason=reason, params=dialogue.params)


def _dialled(dialogue: Dialogue, text: str) -> Move:
    """A dialled string: where the menus' entries put it, or the command's service (SE-04)."""
    rules = dialogue.rules
    try:
        command = parse_ussd(text, rules.name)
    except ParseError as error:
        line = rules.error_line(error.reason)
        return _final(
            dialogue, Event.DIAL_REFUSED, Event.DIAL_REFUSED_PAGED, line, EndReason.REFUSED
        )
    entry = rules.menus.entries.get(type(command))
    if entry is None:
        return Move(event=Event.DIAL_CALL, call=Call(command=command))
    node = entry.node
    if isinstance(node, Menu):
        return Move(event=Event.DIAL_MENU, node=node, screen=node.text)
    filled = tuple((name, getattr(command, name)) for name in entry.fields)
    return _enter_flow(node, filled, 0, Event.DIAL_PROMPT, Event.DIAL_CALL)


def _enter_flow(flow: Flow, filled: Collected, start: int, ask: Event, call: Event) -> Move:
    index = flow.next_prompt(filled, start)
    if index is None:
        params = Params({**flow.params, **dict(filled)})
        return Move(
            event=call, node=flow, params=filled, call=Call(action=flow.action, params=params)
        )
    return Move(event=ask, node=flow, step=index, params=filled, screen=flow.prompts[index].text)


def _answered(dialogue: Dialogue, text: str) -> Move:
    state = dialogue.state
    pages = dialogue.pages
    if dialogue.page + 1 < len(pages) and text.strip() == dialogue.rules.more_key:
        last = state is State.FINAL_PAGES and dialogue.page + 2 == len(pages)
        return Move(event=Event.MORE_LAST if last else Event.MORE, reason=dialogue.reason)
    if state is State.MENU:
        return _chosen(dialogue, text)
    if state is State.PROMPT:
        return _valued(dialogue, text)
    if state is State.SERVICE_PROMPT:
        flow = dialogue.node
        assert isinstance(flow, Flow)
        params = Params({**flow.params, **dict(dialogue.params), ANSWER_PARAM: text})
        return Move(
            event=Event.SERVICE_ANSWER,
            node=flow,
            params=dialogue.params,
            call=Call(action=flow.action, params=params),
        )
    # A final text's page, or a state that takes no answer (the table refuses those).
    return Move(event=Event.BAD_ANSWER)


def _chosen(dialogue: Dialogue, text: str) -> Move:
    """SE-03: an item of the menu on screen, or the menu again under an error line."""
    menu = dialogue.node
    assert isinstance(menu, Menu)
    rules = dialogue.rules
    try:
        choice = parse_menu_answer(text, "choice", rules.name)
    except ParseError:
        choice = None
    item = menu.items.get(choice.number) if isinstance(choice, MenuChoice) else None
    if item is None:
        screen = f"{rules.error_line('bad_choice')}\n{menu.text}"
        return Move(event=Event.BAD_ANSWER, node=menu, screen=screen)
    if isinstance(item, Menu):
        return Move(event=Event.CHOOSE_MENU, node=item, screen=item.text)
    return _enter_flow(item, (), 0, Event.CHOOSE_PROMPT, Event.CHOOSE_CALL)


def _valued(dialogue: Dialogue, text: str) -> Move:
    """SE-05: the prompt's value, the prompt again under the reason, or the end after the last
    allowed try."""
    flow = dialogue.node
    assert isinstance(flow, Flow)
    prompt = flow.prompts[dialogue.step]
    rules = dialogue.rules
    try:
        answer = parse_menu_answer(text, prompt.expect, rules.name)
    except ParseError as error:
        line = rules.error_line(error.reason)
        tries = dialogue.tries + 1
        if tries >= prompt.tries:
            final = rules.text(TOO_MANY_ATTEMPTS, {"reason": line})
            return _final(dialogue, Event.GIVE_UP, Event.GIVE_UP_PAGED, final, EndReason.GAVE_UP)
        return Move(
            event=Event.BAD_ANSWER,
            node=flow,
            step=dialogue.step,
            params=dialogue.params,
            screen=f"{line}\n{prompt.text}",
            tries=tries,
        )
    filled = (*dialogue.params, (prompt.param, answer_value(answer)))
    return _enter_flow(flow, filled, dialogue.step + 1, Event.VALUE_NEXT, Event.VALUE_CALL)


def answer_value(answer: Command) -> object:
    """The value a prompt's parsed answer gives its action (see ``sessions.menus``)."""
    match answer:
        case PhoneNumberAnswer(msisdn=msisdn):
            return msisdn
        case MinutesAnswer(minutes=minutes):
            return minutes
        case DestinationAnswer(destination=destination):
            return destination.value
        case CountAnswer(count=count):
            return count
        case MenuChoice(number=number):
            return number
    raise TypeError(f"not a dialogue answer: {answer!r}")  # pragma: no cover - parser's classes


def _result(dialogue: Dialogue, result: ServiceResult) -> Move:
    # Only a flow's action can take an answer back; a command's service answers once.
    if result.end or not isinstance(dialogue.node, Flow):
        return _final(
            dialogue,
            Event.RESULT_FINAL,
            Event.RESULT_FINAL_PAGED,
            result.text,
            EndReason.COMPLETED,
        )
    return Move(
        event=Event.RESULT_PROMPT, node=dialogue.node, params=dialogue.params, screen=result.text
    )


# -- carrying transitions out ----------------------------------------------------------------------

Step = tuple[Dialogue, tuple[Effect, ...]]


def _moved(
    dialogue: Dialogue,
    *,
    state: State,
    node: Node | None,
    step: int,
    params: Collected,
    screen: str,
    page: int,
    tries: int,
    reason: EndReason | None,
    deadline: int,
) -> Dialogue:
    # Spelled out rather than attrs.evolve: a step is hot, and evolve introspects each call.
    return Dialogue(
        id=dialogue.id,
        msisdn=dialogue.msisdn,
        service_number=dialogue.service_number,
        rules=dialogue.rules,
        state=state,
        node=node,
        step=step,
        params=params,
        screen=screen,
        page=page,
        tries=tries,
        reason=reason,
        deadline=deadline,
    )


def _show(dialogue: Dialogue, move: Move, state: State, now: int) -> Step:
    shown = _moved(
        dialogue,
        state=state,
        node=move.node if move.node is not None else dialogue.node,
        step=move.step,
        params=move.params,
        screen=move.screen,
        page=0,
        tries=move.tries,
        reason=move.reason,
        deadline=now + dialogue.rules.timeout,
    )
    return shown, (Show(text=shown.pages[0], end=False),)


def _turn_page(dialogue: Dialogue, move: Move, state: State, now: int) -> Step:
    d = dialogue
    turned = _moved(
        d,
        state=state,
        node=d.node,
        step=d.step,
        params=d.params,
        screen=d.screen,
        page=d.page + 1,
        tries=d.tries,
        reason=d.reason,
        deadline=now + d.rules.timeout,
    )
    return turned, (Show(text=turned.pages[turned.page], end=False),)


def _reshow_page(dialogue: Dialogue, move: Move, state: State, now: int) -> Step:
    d = dialogue
    again = _moved(
        d,
        state=state,
        node=d.node,
        step=d.step,
        params=d.params,
        screen=d.screen,
        page=d.page,
        tries=d.tries,
        reason=d.reason,
        deadline=now + d.rules.timeout,
    )
    return again, (Show(text=again.pages[again.page], end=False),)


def _call(dialogue: Dialogue, move: Move, state: State, now: int) -> Step:
    assert move.call is not None
    calling = _moved(
        dialogue,
        state=state,
        node=move.node if move.node is not None else dialogue.node,
        step=dialogue.step,
        params=move.params,
        screen=dialogue.screen,
        page=0,
        tries=0,
        reason=dialogue.reason,
        deadline=dialogue.deadline,
    )
    return calling, (move.call,)


def _finish(dialogue: Dialogue, move: Move, state: State, now: int) -> Step:
    assert move.reason is not None
    d = dialogue
    ended = _moved(
        d,
        state=state,
        node=d.node,
        step=d.step,
        params=d.params,
        screen=move.screen,
        page=0,
        tries=d.tries,
        reason=move.reason,
        deadline=d.deadline,
    )
    return ended, (Show(text=move.screen, end=True), Closed(reason=move.reason))


def _finish_last_page(dialogue: Dialogue, move: Move, state: State, now: int) -> Step:
    d = dialogue
    reason = d.reason or EndReason.COMPLETED
    ended = _moved(
        d,
        state=state,
        node=d.node,
        step=d.step,
        params=d.params,
        screen=d.screen,
        page=d.page + 1,
        tries=d.tries,
        reason=reason,
        deadline=d.deadline,
    )
    return ended, (Show(text=ended.pages[ended.page], end=True), Closed(reason=reason))


def _close(dialogue: Dialogue, move: Move, state: State, now: int) -> Step:
    assert move.reason is not None
    d = dialogue
    closed = _moved(
        d,
        state=state,
        node=d.node,
        step=d.step,
        params=d.params,
        screen=d.screen,
        page=d.page,
        tries=d.tries,
        reason=move.reason,
        deadline=d.deadline,
    )
    return closed, (Closed(reason=move.reason),)


_ACTIONS: Final[Mapping[Action, Callable[[Dialogue, Move, State, int], Step]]] = {
    Action.SHOW: _show,
    Action.TURN_PAGE: _turn_page,
    Action.RESHOW_PAGE: _reshow_page,
    Action.CALL: _call,
    Action.FINISH: _finish,
    Action.FINISH_LAST_PAGE: _finish_last_page,
    Action.CLOSE: _close,
}


def transition(state: State, event: Event) -> tuple[Action, State]:
    """The table's answer for ``(state, event)``, or ``IllegalTransition``."""
    try:
        return TRANSITIONS[state, event]
    except KeyError:
        raise IllegalTransition(state, event) from None


def step(dialogue: Dialogue, given: Input, now: int) -> Step:
    """Feed one input to a dialogue: the dialogue after it and what to do (pure)."""
    move = interpret(dialogue, given)
    action, next_state = transition(dialogue.state, move.event)
    return _ACTIONS[action](dialogue, move, next_state, now)
