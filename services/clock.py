"""The simulator's clock and the registry of due work (DESIGN.md: "the clock is injected").

``SimClock`` is the one notion of "now" in the operator core: the integer seconds of an
injected time source (the reactor in ``serve``, ``twisted.internet.task.Clock`` in tests;
anything with ``seconds()``) plus an offset that a tester moves forward through the control
API.  It never goes backward, even if the wall clock behind the source is stepped back.
``Timeline`` answers "what falls due next?": services register a pair of functions — when is
your next work due, and do the work due at that instant — and ``run_due(now)`` fires every
due item strictly in time order across services, each with its own timestamp, so that
advancing a month charges each billing day, expires each validity and processes each
request in the order it would have happened.  The due work itself lives in the database
(``next_at``, ``valid_until``, ``expires_at`` columns), so a restart loses nothing: the
Timeline only asks.  Calendar helpers (months of unequal length, local days) live here too
because billing days and "once a day" rules are questions about the clock.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final, Protocol

import attrs

if TYPE_CHECKING:
    from services.outbox import Reply

MINUTE: Final = 60
HOUR: Final = 60 * MINUTE
DAY: Final = 24 * HOUR
WEEK: Final = 7 * DAY


class TimeSource(Protocol):
    """Anything that tells the time in seconds: ``IReactorTime`` and ``task.Clock`` do."""

    def seconds(self) -> float: ...


class SimClock:
    """Simulated time: the source's whole seconds plus a tester-controlled offset."""

    def __init__(self, source: TimeSource, offset: int = 0) -> None:
        if offset < 0:
            raise ValueError(f"clock offset must not be negative, got {offset}")
        self._source = source
        self._offset = int(offset)
        self._last = 0

    @property
    def offset(self) -> int:
        """Seconds the tester has moved the clock ahead of its source."""
        return self._offset

    def now(self) -> int:
        """The current simulated time in whole seconds; never less than a previous answer."""
        # A wall clock stepped back (NTP) must not make billing days or expiries run twice.
        current = max(int(self._source.seconds()) + self._offset, self._last)
        self._last = current
        return current

    def advance(self, seconds: int) -> None:
        """Move simulated time forward; moving it backward is refused with ``ValueError``."""
        if isinstance(seconds, bool) or not isinstance(seconds, int):
            raise ValueError(f"advance takes whole seconds, got {seconds!r}")
        if seconds < 0:
            raise ValueError(f"the clock only moves forward, got {seconds} s")
        self._offset += seconds


class TimelineError(Exception):
    """A registered item misbehaves (fires without consuming its due work, duplicate name)."""


@attrs.frozen
class _Item:
    name: str
    next_due: Callable[[], int | None]
    fire: Callable[[int], Sequence[Reply]]


class Timeline:
    """The registry of due work; ``run_due`` fires it in time order (ties: registration order).

    ``fire(due)`` must do the work due at ``due`` (and anything earlier it finds) so that
    ``next_due()`` moves past it; an item that keeps answering the same instant after
    firing ``max_repeats`` times is a bug and raises ``TimelineError`` instead of looping.
    Atomicity is the caller's: wrap ``run_due`` in one store transaction and queue the
    replies it returns inside it (``World.run_due`` does).
    """

    def __init__(self, *, max_repeats: int = 1000) -> None:
        self._items: list[_Item] = []
        self._max_repeats = max_repeats

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(item.name for item in self._items)

    def register(
        self,
        name: str,
        next_due: Callable[[], int | None],
        fire: Callable[[int], Sequence[Reply]],
    ) -> None:
        """Add a source of due work under a unique ``name``."""
        if any(item.name == name for item in self._items):
            raise TimelineError(f"timeline item {name!r} is already registered")
        self._items.append(_Item(name, next_due, fire))

    def _earliest(self) -> tuple[int, _Item] | None:
        best: tuple[int, _Item] | None = None
        for item in self._items:
            due = item.next_due()
            # Strict "<" keeps registration order among items due at the same instant.
            if due is not None and (best is None or due < best[0]):
                best = (due, item)
        return best

    def next_due(self) -> int | None:
        """When the earliest registered work falls due, or None when nothing is pending."""
        earliest = self._earliest()
        return None if earliest is None else earliest[0]

    def run_due(self, now: int) -> list[Reply]:
        """Fire every item due at or before ``now``, earliest first; return all replies."""
        replies: list[Reply] = []
        last: tuple[str, int] | None = None
        repeats = 0
        while (earliest := self._earliest()) is not None and earliest[0] <= now:
            due, item = earliest
            if last == (item.name, due):
                repeats += 1
                if repeats >= self._max_repeats:
                    raise TimelineError(
                        f"timeline item {item.name!r} fired {repeats} times at {due} "
                        "without consuming its due work"
                    )
            else:
                last, repeats = (item.name, due), 0
            replies.extend(item.fire(due))
        return replies


# -- durations ------------------------------------------------------------------------------

_DURATION: Final = re.compile(r"(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_UNIT_SECONDS: Final = (WEEK, DAY, HOUR, MINUTE, 1)


def parse_duration(text: str | int) -> int:
    """Seconds in ``"1h30m"``, ``"40d"``, ``"72h"``, ``"90s"`` or a plain whole number.

    Units w, d, h, m, s, each at most once and in that order, no spaces.  Anything else
    raises ``ValueError`` saying what was expected (the CLI and the profile loader reuse it).
    """
    if isinstance(text, int) and not isinstance(text, bool) and text >= 0:
        return text
    if isinstance(text, str):
        stripped = text.strip()
        if stripped.isdigit():
            return int(stripped)
        match = _DURATION.fullmatch(stripped)
        if stripped and match:
            return sum(
                int(n) * unit for n, unit in zip(match.groups(), _UNIT_SECONDS, strict=True) if n
            )
    raise ValueError(f"expected a duration like '1h30m', '40d' or whole seconds, got {text!r}")


# -- calendar ---------------------------------------------------------------------------------


def _zone(utc_offset: int) -> _dt.timezone:
    return _dt.timezone(_dt.timedelta(seconds=utc_offset))


def local_day(at: int, utc_offset: int = 0) -> int:
    """The number of the local calendar day containing ``at`` (for "once a day" rules)."""
    return (at + utc_offset) // DAY


def day_of_month(at: int, utc_offset: int = 0) -> int:
    """The local day of the month of ``at`` (1–31)."""
    return _dt.datetime.fromtimestamp(at, _zone(utc_offset)).day


def add_months(at: int, months: int, *, day: int | None = None, utc_offset: int = 0) -> int:
    """``at`` moved by whole calendar months, keeping the local time of day.

    The day of the month is ``day`` (the billing anchor: 31 stays 31 in the months that
    have it) or ``at``'s own, clamped to the length of the target month, so the 31st of
    January is followed by the 28th/29th of February and then the 31st of March.
    """
    local = _dt.datetime.fromtimestamp(at, _zone(utc_offset))
    month_index = local.year * 12 + (local.month - 1) + months
    year, month = divmod(month_index, 12)
    month += 1
    wanted = local.day if day is None else day
    if month == 12:
        length = 31
    else:
        length = (_dt.date(year, month + 1, 1) - _dt.date(year, month, 1)).days
    target = local.replace(year=year, month=month, day=min(wanted, length))
    return int(target.timestamp())


def next_day_of_month(at: int, day: int, *, utc_offset: int = 0) -> int:
    """The first local midnight strictly after ``at`` that falls on ``day`` (clamped)."""
    local = _dt.datetime.fromtimestamp(at, _zone(utc_offset))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    candidate = add_months(int(midnight.timestamp()), 0, day=day, utc_offset=utc_offset)
    if candidate <= at:
        candidate = add_months(candidate, 1, day=day, utc_offset=utc_offset)
    return candidate


#: Local minute (``(at + utc_offset) // 60``) and whether the time is shown → the text: every
#: confirmation of one minute says the same, and strftime costs more than the lookup.
_FORMATTED: dict[tuple[int, bool], str] = {}


def format_time(at: int, utc_offset: int = 0, *, with_time: bool = True) -> str:
    """``dd.mm.yyyy HH:MM`` (or the date alone) in the profile's local time."""
    key = ((at + utc_offset) // 60, with_time)
    text = _FORMATTED.get(key)
    if text is None:
        local = _dt.datetime.fromtimestamp(at, _zone(utc_offset))
        text = local.strftime("%d.%m.%Y %H:%M" if with_time else "%d.%m.%Y")
        if len(_FORMATTED) >= 4096:
            _FORMATTED.clear()
        _FORMATTED[key] = text
    return text
