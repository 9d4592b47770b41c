"""Shared helpers of the dialogue tests: the bundled profiles, rules made from them (or from
a profile with other menus or settings), and a small directory of test actions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from services.dispatch import Context, Outcome, Screen, ServiceDirectory
from services.profiles import Profile, Profiles, load_profiles
from sessions.dialogue import Dialogue, Effect, Input, Rules, step
from sessions.menus import load_menus

PROFILES: Profiles = load_profiles()
TELENOR_SENDER = "359881000001"
TELENOR_RECIPIENT_TYPED = "0898123456"
TELENOR_RECIPIENT = "359898123456"
MTS_INITIATOR = "79160000001"
MTS_MEMBER = "79161234567"


def profile(name: str, *, menus: Mapping[str, Any] | None = None, **settings: Any) -> Profile:
    """A bundled profile, optionally with other menus or settings (``ussd_timeout=30``)."""
    base = PROFILES[name]
    changes: dict[str, Any] = {}
    if menus is not None:
        changes["menus"] = menus
    if settings:
        changes["settings"] = attrs.evolve(base.settings, **settings)
    return attrs.evolve(base, **changes) if changes else base


def rules(name: str = "telenor", **kwargs: Any) -> Rules:
    chosen = profile(name, **kwargs)
    return Rules(profile=chosen, menus=load_menus(chosen), timeout=chosen.settings.ussd_timeout)


def fresh(rule: Rules, msisdn: str = TELENOR_SENDER, ident: int = 1) -> Dialogue:
    return Dialogue(id=ident, msisdn=msisdn, service_number="123", rules=rule)


def drive(dialogue: Dialogue, *inputs: Input, now: int = 0) -> tuple[Dialogue, list[Effect]]:
    """Step through ``inputs``; the dialogue after the last and every effect on the way."""
    effects: list[Effect] = []
    for given in inputs:
        dialogue, produced = step(dialogue, given, now)
        effects.extend(produced)
    return dialogue, effects


@attrs.define
class Recorder:
    """Test actions: each call is recorded; the answer is what the test set for the action."""

    calls: list[tuple[str, Context, dict[str, object]]] = attrs.Factory(list)
    answers: dict[str, Outcome] = attrs.Factory(dict)

    def action(self, name: str) -> Any:
        def run(context: Context, params: Mapping[str, object]) -> Outcome:
            self.calls.append((name, context, dict(params)))
            return self.answers.get(name, Outcome(screen=Screen(template="request_accepted")))

        return run


def directory_with(recorder: Recorder, names: Mapping[str, tuple[str, ...]]) -> ServiceDirectory:
    """A directory whose actions (by profile) are the recorder's."""
    directory = ServiceDirectory()
    for profile_name, actions in names.items():
        for action in actions:
            directory.register_action(profile_name, action, recorder.action(action))
    return directory
