"""The open USSD dialogues of a gateway, one per MSISDN (SPEC SE-01), their inactivity
timeouts (SE-02) and the calls they make into the services (``services.dispatch``).

``DialogueManager.handle`` takes one USSD message of a subscriber — the text, the
``ussd_service_op`` as the gateway's dialect normalised it to GW-10 (1 dial, 18 answer,
32 abort; ``None`` when the ESME sent none), the number it was sent to — and returns a
:class:`Turn`: the screens for the handset, the SMS the services want sent, and the
dialogues that ended. It steps the pure machine of ``sessions.dialogue`` and carries out its
``Call`` effects: a menu action through ``ServiceDirectory.action``, a dialled command
through its command handler, each inside ``transaction()`` (the world's), feeding the result
back as a ``ServiceResult``. A service that is not installed (yet) answers with the
profile's ``service_unavailable`` text; one that fails is logged and answers the same —
the handset always gets a screen. A service's outcome without a screen is told with
``request_accepted`` (its SMS follow).

Without an op (a dialect that sends none), an empty text is an abort, a string that looks
dialled (``*…#``) or any text while no dialogue is open is a dial, anything else an answer.
A dial while a dialogue is open ends that one silently first (SE-01). An answer with no
open dialogue — typically a late one, after the timeout — gets the profile's final
``session_expired`` text (SE-02). The gateway owns the timers: it asks
:meth:`DialogueManager.next_deadline` and calls :meth:`DialogueManager.expire`; a dialogue
past its deadline is also expired when its next message comes, so the answer does not
depend on when the timer ran. An expired dialogue ends silently, as on a network, where the
handset learns it only when it answers.

Deadlines are kept per timeout value in insertion-ordered dicts (a step moves its dialogue
to the end), so a step and an expiry cost O(1) and 100k open dialogues cost their values.
"""

from __future__ import annotations

import contextlib
import enum
import itertools
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any, Final

import attrs
import structlog

from services.dispatch import Context, Outcome, ServiceDirectory
from services.outbox import Reply, TemplateError, require_template
from services.profiles import Profile
from sessions.dialogue import (
    WAITING,
    Answer,
    Call,
    Closed,
    Dial,
    Dialogue,
    EndReason,
    Expire,
    Input,
    Release,
    Rules,
    ServiceResult,
    Show,
    State,
    Supersede,
    step,
)
from sessions.menus import MenuError, load_menus
from sessions.paging import Fits, fits_ussd

SESSION_EXPIRED: Final = require_template("session_expired").key
SERVICE_UNAVAILABLE: Final = require_template("service_unavailable").key
REQUEST_ACCEPTED: Final = require_template("request_accepted").key

#: ussd_service_op values of GW-10 (SMPP 3.4 §5.3.2.44; 32 is the simulator's abort).
PSSR_INDICATION: Final = 1
USSR_CONFIRM: Final = 18
RELEASE: Final = 32


class Kind(enum.Enum):
    """What a USSD message from a handset is, before any dialogue sees it."""

    DIAL = "dial"
    ANSWER = "answer"
    RELEASE = "release"


def classify(op: int | None, text: str, *, dialogue_open: bool) -> Kind:
    """GW-10: op 1 dials, op 18 answers, op 32 aborts; without a known op, an empty text
    aborts, a ``*…#`` string or any text with no dialogue open dials, anything else answers."""
    if op == PSSR_INDICATION:
        return Kind.DIAL
    if op == USSR_CONFIRM:
        return Kind.ANSWER
    if op == RELEASE:
        return Kind.RELEASE
    stripped = text.strip()
    if not stripped:
        return Kind.RELEASE
    if not dialogue_open or (stripped[:1] in ("*", "#") and stripped.endswith("#")):
        return Kind.DIAL
    return Kind.ANSWER


@attrs.frozen(kw_only=True)
class UssdScreen:
    """A text for a handset: a USSR request (``end=False``) or a PSSR response (``end``)."""

    to: str
    sender: str
    text: str
    end: bool
    dialogue: int | None  # None: the answer to a message no open dialogue took


@attrs.frozen(kw_only=True)
class Turn:
    """What one message (or one expiry run) brought: screens, SMS, ended dialogues."""

    screens: tuple[UssdScreen, ...] = ()
    replies: tuple[Reply, ...] = ()
    closed: tuple[tuple[int, EndReason], ...] = ()


@attrs.define
class _Collector:
    screens: list[UssdScreen] = attrs.Factory(list)
    replies: list[Reply] = attrs.Factory(list)
    closed: list[tuple[int, EndReason]] = attrs.Factory(list)

    def turn(self) -> Turn:
        return Turn(
            screens=tuple(self.screens), replies=tuple(self.replies), closed=tuple(self.closed)
        )


Transaction = Callable[[], AbstractContextManager[Any]]


class DialogueManager:
    """One open dialogue per MSISDN; see the module docstring."""

    def __init__(
        self,
        directory: ServiceDirectory,
        profiles: Mapping[str, Profile],
        *,
        fits: Fits = fits_ussd,
        transaction: Transaction | None = None,
        log: Any = None,
    ) -> None:
        self._directory = directory
        self._rules: dict[str, Rules] = {}
        for name, profile in profiles.items():
            timeout = profile.settings.ussd_timeout
            if timeout < 1:
                raise MenuError(profile.source, "settings.ussd_timeout", "must be at least 1 s")
            self._rules[name] = Rules(
                profile=profile, menus=load_menus(profile), timeout=timeout, fits=fits
            )
        self._open: dict[str, Dialogue] = {}
        #: per timeout value, MSISDN → deadline in the order the deadlines fall
        self._deadlines: dict[int, dict[str, int]] = {}
        self._ids = itertools.count(1)
        self._transaction: Transaction = transaction or contextlib.nullcontext
        self._log = log if log is not None else structlog.get_logger("ussdsim.sessions")

    # -- looking -------------------------------------------------------------------------------

    def rules(self, profile: str) -> Rules:
        return self._rules[profile]

    def dialogue(self, msisdn: str) -> Dialogue | None:
        """The open dialogue of ``msisdn``, if any."""
        return self._open.get(msisdn)

    def profile_of(self, msisdn: str) -> str | None:
        """The profile of ``msisdn`` if it has an open dialogue (spares the caller a lookup)."""
        open_dialogue = self._open.get(msisdn)
        return None if open_dialogue is None else open_dialogue.rules.name

    def __len__(self) -> int:
        return len(self._open)

    def __iter__(self) -> Iterator[Dialogue]:
        return iter(list(self._open.values()))

    def missing_actions(self) -> dict[str, frozenset[str]]:
        """Menu actions no installed service provides yet, by profile."""
        missing = {}
        for name, rules in self._rules.items():
            absent = frozenset(
                a for a in rules.menus.actions() if not self._directory.has_action(name, a)
            )
            if absent:
                missing[name] = absent
        return missing

    # -- messages ------------------------------------------------------------------------------

    def handle(
        self,
        *,
        msisdn: str,
        profile: str,
        text: str,
        op: int | None,
        service_number: str,
        now: int,
    ) -> Turn:
        """One USSD message from ``msisdn`` (a subscriber of ``profile``)."""
        rules = self._rules[profile]
        out = _Collector()
        current = self._open.get(msisdn)
        if current is not None and current.deadline <= now:
            self._run(current, Expire(), now, out)
            current = None
        kind = classify(op, text, dialogue_open=current is not None)
        if kind is Kind.RELEASE:
            if current is not None:
                self._run(current, Release(), now, out)
        elif kind is Kind.ANSWER:
            if current is not None:
                self._run(current, Answer(text), now, out)
            elif text.strip():
                out.screens.append(
                    UssdScreen(
                        to=msisdn,
                        sender=service_number,
                        text=rules.text(SESSION_EXPIRED),
                        end=True,
                        dialogue=None,
                    )
                )
        else:
            if current is not None:
                self._run(current, Supersede(), now, out)
            opened = Dialogue(
                id=next(self._ids), msisdn=msisdn, service_number=service_number, rules=rules
            )
            self._run(opened, Dial(text), now, out)
        return out.turn()

    # -- time ---------------------------------------------------------------------------------

    def next_deadline(self) -> int | None:
        """When the next open dialogue times out (SE-02), if any is open."""
        firsts = [next(iter(queue.values())) for queue in self._deadlines.values() if queue]
        return min(firsts) if firsts else None

    def expire(self, now: int) -> Turn:
        """End every dialogue whose deadline has come (SE-02); nothing is sent for them."""
        out = _Collector()
        for queue in self._deadlines.values():
            while queue:
                msisdn, deadline = next(iter(queue.items()))
                if deadline > now:
                    break
                dialogue = self._open.get(msisdn)
                if dialogue is None:  # pragma: no cover - the two maps change together
                    del queue[msisdn]
                    continue
                self._run(dialogue, Expire(), now, out)
        return out.turn()

    # -- the machine and the services -------------------------------------------------------

    def _run(self, dialogue: Dialogue, given: Input, now: int, out: _Collector) -> None:
        """Step ``dialogue`` with ``given``, then with each service result it asks for."""
        pending: Input | None = given
        while pending is not None:
            dialogue, effects = step(dialogue, pending, now)
            pending = None
            for effect in effects:
                if isinstance(effect, Show):
                    out.screens.append(
                        UssdScreen(
                            to=dialogue.msisdn,
                            sender=dialogue.service_number,
                            text=effect.text,
                            end=effect.end,
                            dialogue=dialogue.id,
                        )
                    )
                elif isinstance(effect, Call):
                    pending = self._call(dialogue, effect, now, out)
                elif isinstance(effect, Closed):
                    out.closed.append((dialogue.id, effect.reason))
                    self._log.info(
                        "dialogue_expired"
                        if effect.reason is EndReason.EXPIRED
                        else "dialogue_ended",
                        msisdn=dialogue.msisdn,
                        dialogue=dialogue.id,
                        reason=effect.reason.value,
                    )
        self._keep(dialogue)

    def _keep(self, dialogue: Dialogue) -> None:
        msisdn = dialogue.msisdn
        queue = self._deadlines.setdefault(dialogue.rules.timeout, {})
        if dialogue.state in WAITING:
            self._open[msisdn] = dialogue
            queue.pop(msisdn, None)
            queue[msisdn] = dialogue.deadline
            return
        assert dialogue.state is State.ENDED, dialogue.state
        held = self._open.get(msisdn)
        if held is not None and held.id == dialogue.id:
            del self._open[msisdn]
            queue.pop(msisdn, None)

    def _call(self, dialogue: Dialogue, call: Call, now: int, out: _Collector) -> ServiceResult:
        """Run the service a dialogue reached and turn its outcome into a ServiceResult."""
        rules = dialogue.rules
        profile = rules.name
        context = Context(
            msisdn=dialogue.msisdn,
            profile=profile,
            now=now,
            channel="ussd",
            service_number=dialogue.service_number,
        )
        run: Callable[[], Outcome] | None = None
        if call.action is not None:
            if self._directory.has_action(profile, call.action):
                action = self._directory.action(profile, call.action)
                params = call.params
                run = lambda: action(context, params)  # noqa: E731
            what = call.action
        else:
            command = call.command
            handler = self._directory.command_handler(profile, command)
            if handler is not None:
                run = lambda: handler(context, command)  # noqa: E731
            what = type(command).__name__
        if run is None:
            self._log.warning("service_unavailable", msisdn=dialogue.msisdn, service=what)
            return ServiceResult(text=rules.text(SERVICE_UNAVAILABLE))
        try:
            with self._transaction():
                outcome = run()
        except Exception:
            self._log.error(
                "dialogue_service_failed", msisdn=dialogue.msisdn, service=what, exc_info=True
            )
            return ServiceResult(text=rules.text(SERVICE_UNAVAILABLE))
        out.replies.extend(outcome.replies)
        screen = outcome.screen
        try:
            if screen is None:
                text, end = rules.text(REQUEST_ACCEPTED), True
            else:
                text, end = rules.text(screen.template, screen.params), screen.end
        except TemplateError:
            self._log.error(
                "dialogue_screen_failed", msisdn=dialogue.msisdn, service=what, exc_info=True
            )
            return ServiceResult(text=rules.text(SERVICE_UNAVAILABLE))
        # A command's handler has no action to take an answer back: its screen is final.
        return ServiceResult(text=text, end=end or call.action is None)
