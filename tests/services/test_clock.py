"""Tests of services/clock.py: simulated time, the timeline of due work, calendar helpers."""

from __future__ import annotations

import ast
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from twisted.internet import task

from services.clock import (
    DAY,
    HOUR,
    SimClock,
    Timeline,
    TimelineError,
    add_months,
    day_of_month,
    format_time,
    local_day,
    next_day_of_month,
    parse_duration,
)
from services.outbox import Reply

SERVICES = Path(__file__).resolve().parents[2] / "services"
JAN_31_2024 = int(dt.datetime(2024, 1, 31, 10, 0, tzinfo=dt.UTC).timestamp())


def _reply(text: str) -> Reply:
    return Reply(to="79160000001", sender="111", template=text, profile="mts")


def test_simclock_reads_a_twisted_clock_plus_offset() -> None:
    """SimClock is whole seconds of its source (task.Clock satisfies TimeSource) plus offset."""
    source = task.Clock()
    source.advance(1000.7)
    clock = SimClock(source, offset=50)
    assert clock.now() == 1050
    source.advance(10)
    assert clock.now() == 1060
    clock.advance(3600)
    assert clock.offset == 3650
    assert clock.now() == 4660


def test_simclock_refuses_to_move_backward() -> None:
    """A tester moves time forward only; negative or non-integer advances are refused."""
    clock = SimClock(task.Clock())
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.advance(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SimClock(task.Clock(), offset=-5)


def test_simclock_never_answers_less_than_before() -> None:
    """A wall clock stepped back (NTP) does not make simulated time run backward."""

    class Steppable:
        value = 500.0

        def seconds(self) -> float:
            return self.value

    source = Steppable()
    clock = SimClock(source)
    assert clock.now() == 500
    source.value = 400.0
    assert clock.now() == 500


def test_timeline_fires_in_time_order_across_services_each_with_its_own_time() -> None:
    """run_due interleaves the due work of several sources strictly by time."""
    fired: list[tuple[str, int]] = []

    def source(
        name: str, times: list[int]
    ) -> tuple[Callable[[], int | None], Callable[[int], list[Reply]]]:
        pending = sorted(times)

        def next_due() -> int | None:
            return pending[0] if pending else None

        def fire(due: int) -> list[Reply]:
            while pending and pending[0] <= due:
                pending.pop(0)
            fired.append((name, due))
            return [_reply(f"{name}@{due}")]

        return next_due, fire

    timeline = Timeline()
    for name, times in (("billing", [30, 10, 50]), ("expiry", [20, 40]), ("requests", [35])):
        next_due, fire = source(name, times)
        timeline.register(name, next_due, fire)
    assert timeline.next_due() == 10
    replies = timeline.run_due(40)
    assert fired == [
        ("billing", 10),
        ("expiry", 20),
        ("billing", 30),
        ("requests", 35),
        ("expiry", 40),
    ]
    assert [r.template for r in replies] == [f"{n}@{t}" for n, t in fired]
    assert timeline.next_due() == 50
    assert timeline.run_due(49) == []


def test_timeline_ties_go_in_registration_order() -> None:
    """Two items due at the same instant fire in the order they were registered."""
    order: list[str] = []

    def item(name: str) -> tuple[Callable[[], int | None], Callable[[int], list[Reply]]]:
        def next_due() -> int | None:
            return None if name in order else 100

        def fire(due: int) -> list[Reply]:
            order.append(name)
            return []

        return next_due, fire

    timeline = Timeline()
    for name in ("first", "second", "third"):
        timeline.register(name, *item(name))
    timeline.run_due(100)
    assert order == ["first", "second", "third"]


def test_timeline_refuses_an_item_that_never_consumes_its_work() -> None:
    """A fire() that leaves next_due() unchanged is reported instead of looping forever."""
    timeline = Timeline(max_repeats=5)
    timeline.register("stuck", lambda: 10, lambda due: [])
    with pytest.raises(TimelineError, match="stuck"):
        timeline.run_due(10)


def test_timeline_refuses_duplicate_names() -> None:
    """Each item is registered once, under a unique name."""
    timeline = Timeline()
    timeline.register("billing", lambda: None, lambda due: [])
    with pytest.raises(TimelineError):
        timeline.register("billing", lambda: None, lambda due: [])


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1h30m", 5400), ("40d", 40 * DAY), ("72h", 72 * HOUR), ("90s", 90), ("120", 120), (7, 7),
     ("2w1d", 15 * DAY), ("1d2h3m4s", DAY + 2 * HOUR + 184)],
)  # fmt: skip
def test_parse_duration_reads_units(text: str | int, seconds: int) -> None:
    """Durations are whole seconds or w/d/h/m/s units in order."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "1x", "30m1h", "1h 30m", "-5", "1.5h", True, -3])
def test_parse_duration_refuses_nonsense(text: str | int) -> None:
    """Anything else is a ValueError that says what was expected."""
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(text)


def test_add_months_clamps_to_short_months_and_keeps_the_anchor() -> None:
    """The 31st billing day becomes Feb 29 (2024), then the 31st again in March."""
    feb = add_months(JAN_31_2024, 1, day=31)
    assert dt.datetime.fromtimestamp(feb, dt.UTC).date() == dt.date(2024, 2, 29)
    march = add_months(feb, 1, day=31)
    assert dt.datetime.fromtimestamp(march, dt.UTC) == dt.datetime(2024, 3, 31, 10, tzinfo=dt.UTC)
    december_to_january = add_months(int(dt.datetime(2023, 12, 15, tzinfo=dt.UTC).timestamp()), 1)
    assert dt.datetime.fromtimestamp(december_to_january, dt.UTC).date() == dt.date(2024, 1, 15)


def test_calendar_helpers_use_the_profile_offset() -> None:
    """Local days and dates follow the profile's UTC offset (Moscow: +3 h)."""
    late_evening_utc = int(dt.datetime(2024, 1, 31, 22, 30, tzinfo=dt.UTC).timestamp())
    assert day_of_month(late_evening_utc) == 31
    assert day_of_month(late_evening_utc, 3 * HOUR) == 1
    assert local_day(late_evening_utc, 3 * HOUR) == local_day(late_evening_utc) + 1
    assert format_time(late_evening_utc, 3 * HOUR) == "01.02.2024 01:30"
    assert format_time(late_evening_utc, with_time=False) == "31.01.2024"
    first = next_day_of_month(JAN_31_2024, 1)
    assert dt.datetime.fromtimestamp(first, dt.UTC) == dt.datetime(2024, 2, 1, tzinfo=dt.UTC)


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    forbidden_calls = {
        ("time", "time"),
        ("time", "monotonic"),
        ("time", "perf_counter"),
        ("datetime", "now"),
        ("datetime", "utcnow"),
        ("datetime", "today"),
        ("date", "today"),
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "twisted":
                    found.append(f"{path.name}:{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module.split(".")[0] == "twisted":
                found.append(f"{path.name}:{node.lineno}: from {module} import")
            if module == "time" and any(a.name in ("time", "monotonic") for a in node.names):
                found.append(f"{path.name}:{node.lineno}: from time import time")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name | ast.Attribute):
            owner = node.value.id if isinstance(node.value, ast.Name) else node.value.attr
            if (owner, node.attr) in forbidden_calls or (
                owner.lstrip("_"),
                node.attr,
            ) in forbidden_calls:
                found.append(f"{path.name}:{node.lineno}: {owner}.{node.attr}")
    return found


def test_services_import_no_twisted_and_never_read_the_wall_clock() -> None:
    """DESIGN: only gateway/ imports Twisted, and domain time is passed in, never read."""
    files = sorted(SERVICES.rglob("*.py"))
    assert any(path.name == "clock.py" for path in files)
    problems = [problem for path in files for problem in _violations(path)]
    assert problems == []


def test_the_purity_scan_catches_what_it_looks_for(tmp_path: Path) -> None:
    """The scan above really flags Twisted imports and wall-clock reads."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import time\nimport datetime as _dt\nfrom twisted.internet import reactor\n"
        "a = time.time()\nb = _dt.datetime.now()\nc = _dt.date.today()\n"
        "from datetime import datetime\nd = datetime.utcnow()\n"
    )
    assert len(_violations(bad)) == 5


def test_nothing_outside_app_reads_the_wall_clock() -> None:
    """DESIGN: only gateway/app.py touches the wall clock (through the reactor); parsers and
    sessions import no Twisted either. gateway/client.py and the CLI's handset commands
    (gateway/cli.py) are the subscriber's side, not the simulator: their waits and
    timeouts are exempt."""
    root = SERVICES.parent
    pure = [*sorted((root / "parsers").rglob("*.py")), *sorted((root / "sessions").rglob("*.py"))]
    assert [p for path in pure for p in _violations(path)] == []
    exempt = {"app.py", "client.py", "cli.py"}
    gateway = [path for path in sorted((root / "gateway").rglob("*.py")) if path.name not in exempt]
    clock_reads = [
        problem
        for path in gateway
        for problem in _violations(path)
        if "twisted" not in problem  # gateway/ is where Twisted belongs
    ]
    assert clock_reads == []
