"""Tests of services/outbox.py: reply values, rendering from profile templates, the key registry."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import attrs
import pytest

import services.charging
import services.world  # noqa: F401 - importing declares the templates the core emits
from services.outbox import (
    PARSE_ERROR_REASONS,
    Params,
    Reply,
    TemplateError,
    check_templates,
    parse_error_template,
    placeholders,
    render,
    render_template,
    required_templates,
)
from services.profiles import Profiles, load_profiles

SERVICES = Path(__file__).resolve().parents[2] / "services"


@pytest.fixture(scope="module")
def profiles() -> Profiles:
    return load_profiles()


def test_reply_is_a_hashable_frozen_value() -> None:
    """Replies (GW-05 answers) are values: frozen, hashable, equal by content."""
    one = Reply(to="79160000001", sender="434", template="x", params={"a": 1}, profile="mts")
    two = Reply(to="79160000001", sender="434", template="x", params=[("a", 1)], profile="mts")
    assert one == two and hash(one) == hash(two)
    assert one.channel == "sms"
    assert one.params["a"] == 1 and isinstance(one.params, Params)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        one.to = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        one.params["a"] = 2  # type: ignore[index]
    with pytest.raises(TypeError):
        Reply(to="1", sender="2", template="x", params={"a": [1]}, profile="mts")


def test_render_fills_money_and_dates_in_the_profile_style(profiles: Profiles) -> None:
    """{fee:money} is minor units in the operator's currency; {x:date} its local date."""
    reply = Reply(
        to="79160000001",
        sender="111",
        template="fee_charged",
        params={"name": "Наш Smart", "fee": 5200, "balance": 123456},
        profile="mts",
    )
    assert render(reply, profiles) == (
        "Списана абонентская плата «Наш Smart»: 52,00 ₽. Баланс: 1 234,56 ₽."
    )
    telenor = profiles["telenor"]
    assert telenor.format_money(50) == "0,50 лв."
    assert profiles["tele2kz"].format_money(590000) == "5 900 ₸"
    assert profiles["tele2kz"].format_money(590050) == "5 900,50 ₸"
    assert telenor.format_money(-250) == "-2,50 лв."
    midnight_sofia = int(dt.datetime(2024, 3, 1, 22, 0, tzinfo=dt.UTC).timestamp())
    text = render_template(
        attrs.evolve(telenor, templates={"t": "до {until:datetime} / {until:date}"}),
        "t",
        {"until": midnight_sofia},
    )
    assert text == "до 02.03.2024 00:00 / 02.03.2024"


def test_render_names_a_missing_template(profiles: Profiles) -> None:
    """A template key the profile lacks is a TemplateError naming the key and profile."""
    reply = Reply(to="1", sender="2", template="no_such_key", profile="telenor")
    with pytest.raises(TemplateError, match="no_such_key") as caught:
        render(reply, profiles)
    assert "telenor" in str(caught.value)
    with pytest.raises(TemplateError, match="unknown profile"):
        render(attrs.evolve(reply, profile="nope"), profiles)


def test_render_names_a_missing_placeholder(profiles: Profiles) -> None:
    """A reply without a parameter its template needs is a TemplateError naming it."""
    reply = Reply(to="1", sender="2", template="low_balance", params={}, profile="mts")
    with pytest.raises(TemplateError, match="'balance'"):
        render(reply, profiles)
    money_of_text = Reply(
        to="1", sender="2", template="low_balance", params={"balance": "lots"}, profile="mts"
    )
    with pytest.raises(TemplateError, match="whole number"):
        render(money_of_text, profiles)


def test_placeholders_are_named_only() -> None:
    """Templates use named placeholders; positional ones or broken braces are refused."""
    assert placeholders("{a} and {b:money} {a}") == {"a", "b"}
    for bad in ("{}", "{0}", "{a", "a}"):
        with pytest.raises(ValueError):
            placeholders(bad)


def test_every_declared_template_exists_in_every_profile_that_needs_it(
    profiles: Profiles,
) -> None:
    """Each key the code emits is worded in each profile, with no unsupplied placeholder."""
    assert check_templates(profiles) == []
    keys = required_templates()
    for reason in PARSE_ERROR_REASONS:
        assert parse_error_template(reason) in keys
    for needed in ("low_balance", "fee_charged", "fee_not_paid", "topup_received"):
        assert needed in keys


def test_check_templates_reports_a_missing_or_overreaching_template(profiles: Profiles) -> None:
    """The check really fails on a missing key and on a placeholder the code never supplies."""
    mts = profiles["mts"]
    broken = dict(mts.templates)
    del broken["low_balance"]
    broken["fee_charged"] = "{name} {fee:money} {balance:money} {surprise}"
    problems = check_templates({"mts": attrs.evolve(mts, templates=broken)})
    assert any("'low_balance' is missing" in p for p in problems)
    assert any("surprise" in p for p in problems)


def _literal_template_keys() -> set[tuple[str, str]]:
    """Template keys written as literals in services/: Reply(template=...), notice(..., key)."""
    found = set()
    for path in SERVICES.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            for keyword in node.keywords:
                if keyword.arg == "template" and isinstance(keyword.value, ast.Constant):
                    found.add((path.name, str(keyword.value.value)))
            name = node.func.attr if isinstance(node.func, ast.Attribute) else None
            if name in ("notice", "_notice") and len(node.args) >= 2:
                arg = node.args[1]
                if isinstance(arg, ast.Constant):
                    found.add((path.name, str(arg.value)))
    return found


def test_no_template_key_is_used_in_code_without_being_declared() -> None:
    """Literal template keys in services/ are all declared, so the check above covers them."""
    declared = required_templates()
    undeclared = sorted(f"{f}: {k}" for f, k in _literal_template_keys() if k not in declared)
    assert undeclared == []
