"""End to end: the handset commands of the CLI (``ussdsim dial``, ``sms``, ``watch``) against a
live gateway on 127.0.0.1 (in-process on the real reactor; ``gateway.cli.main`` in a thread,
and once as a real process sent SIGINT): the Time Share path through My Menu (TS-02, TS-07,
GW-10), SMS replies from 125, the message log streamed, and every failure as one line with
its exit status."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import structlog
from twisted.internet import reactor

from gateway import cli
from gateway.app import Gateway
from gateway.cli import main
from gateway.client import SmppClient
from gateway.config import EsmeAccount
from services.model import UsageKind
from services.profiles import Profiles, load_profiles
from tests.e2e.conftest import ACCOUNTS, e2e_config, in_thread

pytestmark = pytest.mark.e2e

SENDER = "359881000001"  # Time Share sender meeting every condition, no fee (seed 004)
OTHER = "359881000002"  # Time Share sender with no active options: 5 → 1 ends at once
RECIPIENT = "359898123456"  # the seed's 0898123456
PROFILES: Profiles = load_profiles()
SLOW = EsmeAccount(system_id="slow", password="slow", max_tps=1)
MY_MENU = [
    "MyMenu",
    "1 Telenor paketi",
    "2 Internet",
    "3 Paketi kam opredeleni strani",
    "4 Balans",
    "5 Uslugi",
    "6 Oferta za vas",
    "7 Promo oferti",
]
USLUGI = ["Uslugi", "1 Aktivni uslugi", "2 Cash in Time", "3 Time Share"]
CONFIRMATION = (
    "[SMS from 125] Успешно изпратихте 30 мин. към мрежата на Теленор на 0898123456. "
    "Услугата е безплатна за вас. Наличен кредит: 10,00 лв."
)
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    """The e2e gateway, with one more account that takes a submit a second, logging nothing
    (the CLI's own output on the captured stdout is what these tests read)."""
    silent = structlog.wrap_logger(
        structlog.ReturnLogger(),
        processors=[],
        wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL),
    )
    config = e2e_config(tmp_path, accounts=(*ACCOUNTS, SLOW))
    gw = Gateway(config, reactor, profiles=PROFILES, log=silent)
    gw.api.log = silent
    gw.start()
    yield gw
    pytest_twisted.blockon(gw.stop())


@pytest.fixture(autouse=True)
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The USSDSIM_* variables of whoever runs the tests must not steer these."""
    for name in ("USSDSIM_SMPP", "USSDSIM_SYSTEM_ID", "USSDSIM_PASSWORD", "USSDSIM_API"):
        monkeypatch.delenv(name, raising=False)


def smpp(gateway: Gateway) -> list[str]:
    host, port = gateway.smpp_address
    return ["--smpp", f"{host}:{port}"]


def api(gateway: Gateway) -> list[str]:
    host, port = gateway.http_address
    return ["--api", f"http://{host}:{port}"]


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (just freed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def one_line_error(captured: Any, *pieces: str) -> None:
    assert captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith("ussdsim"), captured.err
    assert "Traceback" not in captured.err
    for piece in pieces:
        assert piece in captured.err, captured.err


def without_sms(out: str) -> tuple[list[str], list[str]]:
    """The transcript's lines apart from the SMS lines (whose place depends on timing)."""
    lines = out.splitlines()
    return [x for x in lines if not x.startswith("[SMS ")], [
        x for x in lines if x.startswith("[SMS ")
    ]


# -- dial -------------------------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_ts_02_ts_07_dial_scripted_walks_time_share_and_shows_the_confirmation_sms(
    gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> Any:
    """TS-02, TS-07, GW-10: `dial 359881000001 '*123#' --answers 5,3,0898123456,G,30,0`
    shows every screen, the paged result, the end, and the sender's confirmation from 125
    rejoined from its two UCS2 parts; the minutes have moved."""
    before = gateway.world.available(
        RECIPIENT, UsageKind.VOICE, now=gateway.now(), destination="network", exact=True
    )
    argv = ["dial", SENDER, "*123#", "--answers", "5,3,0898123456,G,30,0", *smpp(gateway)]
    assert (yield in_thread(main, argv)) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    screens, sms = without_sms(captured.out)
    assert screens == [
        "[USSD from 123, menu]",
        *MY_MENU,
        "> 5",
        "[USSD from 123, menu]",
        *USLUGI,
        "> 3",
        "[USSD from 123, menu]",
        "Time Share",
        "Номер на получател (08XXXXXXXX):",
        "> 0898123456",
        "[USSD from 123, menu]",
        "Дестинация:",
        "1 За приятели",
        "2 мрежата на Теленор",
        "> G",
        "[USSD from 123, menu]",
        "Брой минути (10, 20, 30, 40 или 50):",
        "> 30",
        "[USSD from 123, menu]",
        "Успешно изпратихте 30 мин. към мрежата на Теленор на 0898123456. Услугата",
        "0 още",
        "> 0",
        "[USSD from 123, final]",
        "е безплатна за вас. Наличен кредит: 10,00 лв.",
        "[dialogue ended by the gateway]",
    ]
    # Only the sender's SMS: the handset binds for its own number, not the recipient's.
    assert sms == [CONFIRMATION]
    after = gateway.world.available(
        RECIPIENT, UsageKind.VOICE, now=gateway.now(), destination="network", exact=True
    )
    assert after == before + 30
    assert gateway.dialogues.dialogue(SENDER) is None


@pytest_twisted.inlineCallbacks
def test_gw_10_dial_scripted_answers_run_out_or_are_left_over(
    gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> Any:
    """GW-10: answers used up with the menu still open → released (op 32), exit 0; the
    dialogue ending with answers left → exit 1 naming them, one line."""
    argv = ["dial", OTHER, "*123#", "--answers", "5", "--wait", "0", *smpp(gateway)]
    assert (yield in_thread(main, argv)) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-2:] == [
        "3 Time Share",
        "[dialogue released: no answers left]",
    ]
    assert gateway.dialogues.dialogue(OTHER) is None

    argv = ["dial", OTHER, "*123#", "--answers", "5,1,4,2", "--wait", "0", *smpp(gateway)]
    assert (yield in_thread(main, argv)) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-3:] == [
        "[USSD from 123, final]",
        "Нямате активни услуги.",
        "[dialogue ended by the gateway]",
    ]
    one_line_error(captured, "the dialogue ended with 2 answer(s) unused: 4,2")


@pytest_twisted.inlineCallbacks
def test_gw_10_dial_interactive_reads_answers_from_stdin_and_releases_at_eof(
    gateway: Gateway, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Any:
    """GW-10: with no --answers the answers come from stdin (a pipe, waited on with select
    beside the socket); an empty line is not sent; EOF releases the dialogue, exit 0."""
    read_end, write_end = os.pipe()
    os.write(write_end, b"5\n\n")
    os.close(write_end)
    with os.fdopen(read_end, encoding="utf-8") as stdin:
        monkeypatch.setattr(sys, "stdin", stdin)
        assert (yield in_thread(main, ["dial", OTHER, "*123#", "--wait", "0", *smpp(gateway)])) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.splitlines() == [
        "[USSD from 123, menu]",
        *MY_MENU,
        "> 5",  # echoed: no terminal did
        "[USSD from 123, menu]",
        *USLUGI,
        "[dialogue released: end of input]",
    ]
    assert gateway.dialogues.dialogue(OTHER) is None


class CtrlCAfter:
    """A keyboard that types its lines, then Ctrl-C (readline only: nothing to select on)."""

    def __init__(self, text: str) -> None:
        self._lines = io.StringIO(text)

    def readline(self) -> str:
        line = self._lines.readline()
        if not line:
            raise KeyboardInterrupt
        return line


@pytest_twisted.inlineCallbacks
def test_gw_10_dial_interactive_ctrl_c_releases_the_dialogue(
    gateway: Gateway, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Any:
    """GW-10: Ctrl-C at the prompt releases the dialogue (op 32) and exits 0, no traceback."""
    monkeypatch.setattr(sys, "stdin", CtrlCAfter("5\n"))
    assert (yield in_thread(main, ["dial", OTHER, "*123#", "--wait", "0", *smpp(gateway)])) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.splitlines()[-2:] == ["3 Time Share", "[dialogue released: interrupted]"]
    assert gateway.dialogues.dialogue(OTHER) is None


def read_until(process: subprocess.Popen[bytes], marker: bytes, seconds: float) -> bytes:
    """What the process printed up to and including ``marker`` (bounded)."""
    assert process.stdout is not None
    seen = b""
    deadline = time.monotonic() + seconds
    while marker not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, seen
        if select.select([process.stdout], [], [], remaining)[0]:
            chunk = os.read(process.stdout.fileno(), 4096)
            assert chunk, seen
            seen += chunk
    return seen


@pytest_twisted.inlineCallbacks
def test_gw_10_a_real_sigint_releases_the_dialogue_of_a_real_process(gateway: Gateway) -> Any:
    """GW-10: `python -m gateway.cli dial` in its own process, SIGINT while it waits for the
    keyboard: the dialogue is released, exit 0, nothing on stderr."""
    command = [sys.executable, "-m", "gateway.cli", "dial", OTHER, "*123#", "--wait", "0"]

    def run() -> tuple[int, bytes, bytes]:
        with subprocess.Popen(
            [*command, *smpp(gateway)],
            stdin=subprocess.PIPE,  # open and silent: it waits for an answer
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ) as process:
            assert process.stdout is not None and process.stderr is not None
            try:
                seen = read_until(process, b"7 Promo oferti\n", 30)
                process.send_signal(signal.SIGINT)  # stdin stays open: no EOF to race it
                code = process.wait(timeout=15)
            finally:
                process.kill()
            return code, seen + process.stdout.read(), process.stderr.read()

    code, out, err = yield in_thread(run)
    assert (code, err) == (0, b"")
    assert out.decode().splitlines()[-2:] == ["7 Promo oferti", "[dialogue released: interrupted]"]
    assert gateway.dialogues.dialogue(OTHER) is None


# -- sms --------------------------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_ts_07_sms_prints_the_reply_of_125(
    gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> Any:
    """TS-03, TS-07: `sms 359881000001 125 G,0898123456,35 --count 1` prints the refusal that
    125 sends back, exit 0; asking for 2 replies when 1 comes is exit 1, one line."""
    argv = ["sms", SENDER, "125", "G,0898123456,35", "--count", "1", *smpp(gateway)]
    assert (yield in_thread(main, argv)) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    submitted, reply = captured.out.splitlines()
    assert re.fullmatch(r"\[submitted 359881000001 -> 125: 1 part, id \w+\]", submitted)
    assert reply == "[SMS from 125] Броят минути трябва да е кратен на 10."

    argv = [*argv[:4], "--count", "2", "--wait", "0.5", *smpp(gateway)]
    assert (yield in_thread(main, argv)) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1] == reply
    one_line_error(captured, "1 of 2 replies within 0.5 s")


@pytest_twisted.inlineCallbacks
def test_gw_04_sms_refused_by_the_gateway_names_the_status(
    gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> Any:
    """GW-04: an account allowed one submit a second, a text of seven parts: the gateway
    throttles a part and `sms` says ESME_RTHROTTLED in one line, exit 1."""
    argv = ["sms", OTHER, SENDER, "x" * 1000, "--system-id", "slow", "--password", "slow"]
    assert (yield in_thread(main, [*argv, "--wait", "0", *smpp(gateway)])) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    one_line_error(captured, "the gateway refused the SMS: ESME_RTHROTTLED")


# -- watch ------------------------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_watch_streams_the_mo_and_mt_that_happen_after_it_starts(
    gateway: Gateway, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Any:
    """`watch --msisdn N --count 2` shows nothing of the past, then the MO to 125 and 125's
    reply as they happen, one line each; `--after 0 --json` replays the log as JSON lines."""
    argv = ["dial", SENDER, "*123#", "--answers", "", "--wait", "0", *smpp(gateway)]
    assert (yield in_thread(main, argv)) == 0  # the past: *123#, My Menu, released
    capsys.readouterr()

    polled = threading.Event()
    real_call = cli._call

    def call(*args: Any, **kwargs: Any) -> Any:
        answer = real_call(*args, **kwargs)
        polled.set()  # watch knows where the log ends now
        return answer

    monkeypatch.setattr(cli, "_call", call)
    watch = ["watch", "--msisdn", SENDER, "--count", "2", "--for", "20", "--interval", "0.05"]
    watching = in_thread(main, [*watch, *api(gateway)])
    assert (yield in_thread(polled.wait, 20))

    def send() -> None:
        host, port = gateway.smpp_address
        with SmppClient(host, port, address_range=SENDER, timeout=5) as phone:
            phone.submit(SENDER, "125", "G,0898123456,35")
            phone.wait_for(lambda r: r.source == "125")

    yield in_thread(send)
    assert (yield watching) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    mo, mt = captured.out.splitlines()
    assert re.fullmatch(rf"{STAMP}  MO  {SENDER} -> 125  SMS  G,0898123456,35", mo), mo
    assert re.fullmatch(
        rf"{STAMP}  MT  125 -> {SENDER}  SMS  Броят минути трябва да е кратен на 10.", mt
    ), mt

    replay = ["watch", "--after", "0", "--msisdn", SENDER, "--count", "3", "--json"]
    assert (yield in_thread(main, [*replay, *api(gateway)])) == 0
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    shown = [(e["direction"], e["channel"], e["ussd_op"], e["text"]) for e in entries]
    assert shown == [
        ("mo", "ussd", None, "*123#"),
        ("mt", "ussd", 2, "\n".join(MY_MENU)),
        ("mo", "ussd", None, ""),  # the release
    ]
    plain = ["watch", "--after", str(entries[0]["id"]), "--count", "1"]
    assert (yield in_thread(main, [*plain, *api(gateway)])) == 0
    line = capsys.readouterr().out
    menu = "\\n".join(MY_MENU)  # one line: the menu's breaks shown as \n
    assert line == f"{line[:20]}  MT  123 -> {SENDER}  USSD menu  {menu}\n"


@pytest_twisted.inlineCallbacks
def test_watch_for_seconds_ends_quietly_when_nothing_happens(
    gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> Any:
    """`watch --for 0.3` with no traffic prints nothing and exits 0."""
    argv = ["watch", "--for", "0.3", "--interval", "0.05", *api(gateway)]
    assert (yield in_thread(main, argv)) == 0
    assert capsys.readouterr() == ("", "")


# -- failures -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["dial", "35988x", "*123#"],
        ["dial", "+359881000001", "*123#"],
        ["dial", "3598", "*123#"],
        ["dial", SENDER, "123"],
        ["dial", SENDER, "*123"],
        ["dial", SENDER, "*123#", "--smpp", "localhost"],
        ["dial", SENDER, "*123#", "--smpp", "127.0.0.1:70000"],
        ["dial", SENDER, "*123#", "--smpp", "127.0.0.1:port"],
        ["dial", SENDER, "*123#", "--timeout", "0"],
        ["dial", SENDER, "*123#", "--wait", "-1"],
        ["dial", SENDER],
        ["sms", "abc", "125", "hello"],
        ["sms", SENDER, "12a", "hello"],
        ["sms", SENDER, "125"],
        ["sms", SENDER, "125", "hello", "--count", "0"],
        ["watch", "--count", "-1"],
        ["watch", "--for", "soon"],
        ["watch", "--after", "x"],
        ["watch", "--msisdn", "me"],
    ],
)
def test_bad_arguments_are_one_line_with_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A malformed MSISDN, USSD code, HOST:PORT, count or duration: one line, exit 2."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    one_line_error(captured, "error: ")


def test_a_bad_ussdsim_smpp_variable_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """$USSDSIM_SMPP is checked like --smpp: one line naming the option, exit 2."""
    monkeypatch.setenv("USSDSIM_SMPP", "nowhere")
    assert main(["dial", SENDER, "*123#"]) == 2
    one_line_error(capsys.readouterr(), "--smpp", "'nowhere'")


def test_nothing_listening_is_exit_3_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """dial and sms to a port nothing listens on, watch of an API that is not there: exit 3."""
    port = closed_port()
    runs = [
        ["dial", SENDER, "*123#", "--smpp", f"127.0.0.1:{port}"],
        ["sms", SENDER, "125", "hello", "--smpp", f"127.0.0.1:{port}"],
        ["watch", "--api", f"http://127.0.0.1:{port}", "--for", "1"],
    ]
    for argv, said in zip(runs, ["cannot connect", "cannot connect", "cannot reach"], strict=True):
        assert main(argv) == 3, argv
        captured = capsys.readouterr()
        assert captured.out == ""
        one_line_error(captured, said, str(port))


@pytest_twisted.inlineCallbacks
def test_gw_01_a_refused_bind_is_exit_3_naming_the_status(
    gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> Any:
    """GW-01: a wrong password, and an account that may not bind as a transceiver: one line
    with the SMPP status by name, exit 3."""
    runs = [
        ["dial", SENDER, "*123#", "--password", "wrong"],
        ["sms", SENDER, "125", "hi", "--system-id", "rxonly", "--password", "rxonly"],
    ]
    for argv, status in zip(runs, ["ESME_RINVPASWD", "ESME_R"], strict=True):
        assert (yield in_thread(main, [*argv, *smpp(gateway)])) == 3, argv
        captured = capsys.readouterr()
        assert captured.out == ""
        one_line_error(captured, "bind refused", status)
