"""Parser throughput: parses per second over a mixed corpus of USSD strings, SMS commands and
dialogue answers of all four profiles, about half of them valid and half refused (near misses:
a character changed, a digit dropped, a wrong separator, a space, the leading 8).

Run from the project root: ``.venv/bin/python bench/parsers.py [--size N] [--runs R]`` (or
``-m bench.parsers``). It
prints the median rate of R timed runs (after one warm-up run) and the command that produced
it; the target of the Parsers issue is 300 000 parses/s on the reference 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

if not __package__:
    # Run as a script, this file's directory comes first on sys.path and its name would shadow
    # the ``parsers`` package; put the project root there instead.
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [path for path in sys.path if os.path.abspath(path or ".") != _here]
    sys.path.insert(0, os.path.dirname(_here))

from parsers import ParseError, format_menu_answer, format_sms, format_ussd
from parsers.commands import (
    AcceptInvitation,
    AcceptShareInvitation,
    CountAnswer,
    CreateTogetherGroup,
    DeclineInvitation,
    Destination,
    DestinationAnswer,
    GroupInfo,
    InviteMember,
    JoinTogetherGroup,
    LeaveGroup,
    LeaveTogetherGroup,
    MenuChoice,
    MinutesAnswer,
    OpenInvitePrompt,
    OpenSharedBundleMenu,
    PhoneNumberAnswer,
    RemoveMember,
    TransferMinutes,
)
from parsers.sms import parse_sms
from parsers.ussd import answer_kind, parse_menu_answer, parse_ussd

Call = tuple[Callable[..., Any], tuple[Any, ...]]


def _ru(rng: random.Random) -> str:
    return f"79{rng.randrange(10**9):09d}"


def _bg(rng: random.Random) -> str:
    return f"3598{rng.choice('789')}{rng.randrange(10**7):07d}"


def _valid(rng: random.Random) -> Call:
    """One valid input, drawn over every command of every profile."""
    kind = rng.randrange(14)
    if kind == 0:
        command: Any = rng.choice(
            [OpenSharedBundleMenu(), OpenInvitePrompt(), GroupInfo(), LeaveGroup()]
        )
        return parse_ussd, (format_ussd(command, "mts"), "mts")
    if kind in (1, 2):
        command = rng.choice([InviteMember, RemoveMember])(msisdn=_ru(rng))
        return parse_ussd, (format_ussd(command, "mts"), "mts")
    if kind == 3:
        command = rng.choice([CreateTogetherGroup(), LeaveTogetherGroup()])
        return parse_ussd, (format_ussd(command, "tele2ru"), "tele2ru")
    if kind == 4:
        command = JoinTogetherGroup(organizer_msisdn=_ru(rng))
        return parse_ussd, (format_ussd(command, "tele2ru"), "tele2ru")
    if kind == 5:
        return parse_ussd, ("*123#", "telenor")
    if kind in (6, 7):
        suffix = rng.choice([None, f"{rng.randrange(10**4):04d}"])
        command = rng.choice([AcceptInvitation, DeclineInvitation])(suffix=suffix)
        return parse_sms, (*format_sms(command, "mts"), "mts")
    if kind == 8:
        return parse_sms, (*format_sms(AcceptShareInvitation(), "tele2kz"), "tele2kz")
    if kind in (9, 10, 11):
        command = TransferMinutes(
            recipient_msisdn=_bg(rng),
            destination=rng.choice(list(Destination)),
            minutes=rng.choice([10, 20, 30, 40, 50]),
        )
        return parse_sms, (*format_sms(command, "telenor"), "telenor")
    answer: Any = rng.choice(
        [
            MenuChoice(number=rng.randrange(10)),
            PhoneNumberAnswer(msisdn=_bg(rng)),
            CountAnswer(count=rng.randrange(1000)),
            MinutesAnswer(minutes=rng.choice([10, 20, 30, 40, 50])),
            DestinationAnswer(destination=rng.choice(list(Destination))),
        ]
    )
    text = format_menu_answer(answer, "telenor")
    return parse_menu_answer, (text, answer_kind(answer), "telenor")


def _near_miss(rng: random.Random, text: str) -> str:
    """``text`` with one slip a person makes on a keypad."""
    position = rng.randrange(len(text))
    slip = rng.randrange(5)
    if slip == 0:
        return text[:position] + rng.choice("0123456789*#,;. XОA") + text[position + 1 :]
    if slip == 1:
        return text[:position] + text[position + 1 :]
    if slip == 2:
        return text[:position] + " " + text[position:]
    if slip == 3:
        return text.replace(",", ";", 1).replace("*7", "*8", 1)
    return text + rng.choice("#,1")


def build_corpus(size: int, seed: int = 20240) -> list[Call]:
    """``size`` calls, alternately valid inputs and near misses of valid inputs."""
    rng = random.Random(seed)
    corpus: list[Call] = []
    while len(corpus) < size:
        function, args = _valid(rng)
        if len(corpus) % 2:
            args = (_near_miss(rng, args[0]), *args[1:])
        corpus.append((function, args))
    return corpus


def run(corpus: list[Call]) -> tuple[float, float, int]:
    """Parse the whole corpus once: wall seconds, CPU seconds of this process, and how many
    inputs were refused."""
    refused = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    for function, args in corpus:
        try:
            function(*args)
        except ParseError:
            refused += 1
    return time.perf_counter() - started, time.process_time() - cpu_started, refused


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=200_000, help="inputs in the corpus")
    parser.add_argument("--runs", type=int, default=3, help="timed runs (median reported)")
    options = parser.parse_args(argv)
    corpus = build_corpus(options.size)
    run(corpus)  # warm-up
    timings = [run(corpus) for _ in range(options.runs)]
    seconds = statistics.median(wall for wall, _, _ in timings)
    cpu = statistics.median(cpu for _, cpu, _ in timings)
    refused = timings[0][2]
    command = shlex.join([sys.executable, *sys.argv])
    print(
        f"parsers: {len(corpus) / seconds:,.0f} parses/s "
        f"(median of {options.runs} runs of {len(corpus):,} inputs, {refused / len(corpus):.0%} "
        f"refused; {seconds * 1e6 / len(corpus):.2f} µs/parse; CPU {cpu:.2f} s per run)"
    )
    accepted, refused_inputs = split_by_outcome(corpus)
    for label, part in (("accepted", accepted), ("refused", refused_inputs)):
        wall = statistics.median(run(part)[0] for _ in range(options.runs))
        print(f"  {label} inputs alone: {len(part) / wall:,.0f} parses/s ({len(part):,} inputs)")
    print(f"command: {command}")


def split_by_outcome(corpus: list[Call]) -> tuple[list[Call], list[Call]]:
    """The corpus's accepted inputs and its refused ones, in corpus order."""
    accepted: list[Call] = []
    refused: list[Call] = []
    for function, args in corpus:
        try:
            function(*args)
        except ParseError:
            refused.append((function, args))
        else:
            accepted.append((function, args))
    return accepted, refused


if __name__ == "__main__":
    main()
