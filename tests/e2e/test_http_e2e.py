"""End to end over real HTTP on 127.0.0.1: the control API and its CLI against a live gateway
(in-process on the real reactor, and a real ``ussdsim serve`` subprocess that is killed with
SIGKILL and restarted), with python-smpplib as the handsets (CU-01, CU-02, GW-06)."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_twisted

from gateway.app import Gateway
from gateway.cli import main
from gateway.client import SmppClient
from services.profiles import Profiles, load_profiles
from tests.e2e.conftest import e2e_config, in_thread

pytestmark = pytest.mark.e2e

SMART = "79160000001"  # MTS «Наш Smart»: 600 SMS in its package
SUPER = "79161234567"  # MTS «Супер МТС»: no packages, 2 ₽ an SMS from the balance
NEW = "79169990001"
STARTUP_SECONDS = 30.0
PROFILES: Profiles = load_profiles()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    """The e2e gateway of conftest, on profiles loaded once for the module (they are values)."""
    from twisted.internet import reactor

    gw = Gateway(e2e_config(tmp_path), reactor, profiles=PROFILES)
    gw.start()
    yield gw
    pytest_twisted.blockon(gw.stop())


def call(
    base: str, method: str, path: str, body: object = None, token: str | None = None
) -> tuple[int, Any]:
    """One real HTTP request (no proxies); the status and the decoded JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def base_of(gateway: Gateway) -> str:
    host, port = gateway.http_address
    return f"http://{host}:{port}"


def handset(address: tuple[str, int]) -> SmppClient:
    return SmppClient(address[0], address[1], timeout=5)


# -- a real `ussdsim serve` -------------------------------------------------------------------


@attrs.define
class Served:
    """A ``ussdsim serve`` subprocess and what it printed about itself."""

    process: subprocess.Popen[str]
    smpp: tuple[str, int]
    api: str
    token: str


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("USSDSIM_")}


def serve(state: Path) -> Served:
    """Start ``python -m gateway.cli serve`` on free ports; wait until it says where it is."""
    log = (state.parent / "serve.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", "0", "--http-port", "0",
         "--state", str(state)],
        stdout=subprocess.PIPE, stderr=log, text=True, cwd=state.parent, env=_clean_env(),
    )  # fmt: skip
    log.close()
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:  # keeps reading so that a chatty server never blocks on its pipe
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    found: dict[str, str] = {}
    patterns = {
        "smpp": re.compile(r"SMPP 3\.4 on ([\d.]+:\d+)"),
        "api": re.compile(r"control API on (http://[\d.]+:\d+)/api/v1/"),
        "token": re.compile(r"API token (\S+)"),
    }
    deadline = time.monotonic() + STARTUP_SECONDS
    while len(found) < len(patterns):
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            process.kill()
            raise AssertionError(f"serve said {found} within {STARTUP_SECONDS} s") from None
        if line is None:
            raise AssertionError(f"serve exited with {process.wait()}: {found}")
        for name, pattern in patterns.items():
            if match := pattern.search(line):
                found[name] = match.group(1)
    host, port = found["smpp"].split(":")
    return Served(process, (host, int(port)), found["api"], found["token"])


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Every serve started by a test, killed (by its own pid) if the test left it running."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_cu_01_gw_06_changes_over_http_survive_kill_9_and_restart(
    tmp_path: Path,
    processes: list[subprocess.Popen[str]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CU-01, GW-06: what the API acknowledged — a new subscriber, a top-up, a use, a clock
    move and the queued notification — is all there after SIGKILL and a restart."""
    monkeypatch.delenv("USSDSIM_TOKEN", raising=False)
    state = tmp_path / "state.sqlite3"
    first = serve(state)
    processes.append(first.process)
    created = {"msisdn": NEW, "profile": "mts", "tariff": "super_mts", "balance": 1000}
    assert call(first.api, "POST", "/api/v1/subscribers", created, first.token)[0] == 201
    top_up = call(first.api, "PATCH", f"/api/v1/subscribers/{SUPER}", {"top_up": 5000}, first.token)
    assert top_up[1]["balance"] == 35000
    used = call(
        first.api, "POST", f"/api/v1/subscribers/{SMART}/usage",
        {"kind": "sms", "amount": 600}, first.token,
    )  # fmt: skip
    [notice] = used[1]["notifications"]
    # The CLI, as a tester runs it beside the state file: the token comes from <state>.token.
    argv = ["clock", "advance", "1h30m", "--api", first.api, "--token-file", f"{state}.token"]
    assert main(argv) == 0
    assert "offset=5400" in capsys.readouterr().out
    first.process.kill()  # SIGKILL: no unbind, no flush, no close
    assert first.process.wait(timeout=10) == -9

    second = serve(state)
    processes.append(second.process)
    assert second.token == first.token
    status, subscriber = call(second.api, "GET", f"/api/v1/subscribers/{NEW}")
    assert (status, subscriber["balance"], subscriber["tariff"]) == (200, 1000, "super_mts")
    assert call(second.api, "GET", f"/api/v1/subscribers/{SUPER}")[1]["balance"] == 35000
    packages = call(second.api, "GET", f"/api/v1/subscribers/{SMART}/packages")[1]["packages"]
    assert [p["remaining"] for p in packages if p["label"] == "600 SMS"] == [0]
    assert call(second.api, "GET", "/api/v1/clock")[1]["offset"] >= 5400
    log = call(second.api, "GET", f"/api/v1/messages?msisdn={SMART}")[1]["messages"]
    assert [(m["text"], m["status"]) for m in log] == [(notice["text"], "ENROUTE")]

    # GW-06: the notification held for a number no ESME served is delivered on the next bind.
    with handset(second.smpp) as client:
        received = client.wait_for(lambda r: r.destination == SMART)
    assert received.text == notice["text"]
    second.process.terminate()
    assert second.process.wait(timeout=15) == 0


# -- the API against an in-process gateway ----------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_cu_01_usage_notification_arrives_as_deliver_sm(gateway: Gateway) -> Any:
    """CU-01: a use recorded over HTTP sends its notification SMS through SMPP to the handset."""
    base, token = base_of(gateway), gateway.api_token

    def run() -> tuple[Any, str]:
        with handset(gateway.smpp_address) as client:
            body = {"kind": "sms", "amount": 600}
            status, answer = call(base, "POST", f"/api/v1/subscribers/{SMART}/usage", body, token)
            assert status == 200
            received = client.wait_for(lambda r: r.destination == SMART)
            return answer, received.text

    answer, text = yield in_thread(run)
    assert answer["paid_by"][0]["label"] == "600 SMS"
    assert text == answer["notifications"][0]["text"]
    assert "600 SMS" in text


@pytest_twisted.inlineCallbacks
def test_cu_02_p2p_sms_through_smpp_is_charged_as_one_sms(gateway: Gateway) -> Any:
    """CU-02: an SMS between two demo subscribers costs the sender one SMS: from the package
    of «Наш Smart», from the balance of «Супер МТС» — visible through the API."""
    base = base_of(gateway)

    def run() -> dict[str, Any]:
        with handset(gateway.smpp_address) as client:
            client.submit(SMART, SUPER, "hello")
            client.submit(SUPER, SMART, "hi")
            client.wait_for(lambda r: r.destination == SUPER and r.text == "hello")
            client.wait_for(lambda r: r.destination == SMART and r.text == "hi")
        return {
            "packages": call(base, "GET", f"/api/v1/subscribers/{SMART}/packages")[1],
            "ledger": call(base, "GET", f"/api/v1/subscribers/{SUPER}/ledger")[1],
            "smart_usage": call(base, "GET", f"/api/v1/subscribers/{SMART}/usage")[1],
            "super_usage": call(base, "GET", f"/api/v1/subscribers/{SUPER}/usage")[1],
            "messages": call(base, "GET", f"/api/v1/messages?msisdn={SMART}")[1],
        }

    seen = yield in_thread(run)
    sms = [p for p in seen["packages"]["packages"] if p["label"] == "600 SMS"]
    assert [p["remaining"] for p in sms] == [599]
    last = seen["ledger"]["entries"][-1]
    assert (last["amount"], last["reason"], seen["ledger"]["balance"]) == (-200, "usage:sms", 29800)
    for usage in (seen["smart_usage"]["usage"], seen["super_usage"]["usage"]):
        assert [(u["kind"], u["amount"]) for u in usage] == [("sms", 1)]
    log = [(m["direction"], m["kind"], m["text"]) for m in seen["messages"]["messages"]]
    assert log == [("mo", "p2p", "hello"), ("mt", "p2p", "hi")]


@pytest_twisted.inlineCallbacks
def test_the_api_over_real_http_answers_json_errors(gateway: Gateway) -> Any:
    """Over a real socket: JSON errors with their status, the token rule, no HTML pages."""
    base, token = base_of(gateway), gateway.api_token

    def run() -> list[tuple[int, Any]]:
        return [
            call(base, "GET", "/nowhere"),
            call(base, "POST", "/api/v1/clock/advance", {"seconds": 1}),
            call(base, "POST", "/api/v1/clock/advance", {"seconds": 1}, "not-the-token"),
            call(base, "DELETE", "/api/v1/clock", None, token),
            call(base, "GET", "/api/v1/subscribers/70000000000"),
            call(base, "POST", "/api/v1/clock/advance", {"seconds": 1}, token),
        ]

    answers = yield in_thread(run)
    assert [(status, body.get("error")) for status, body in answers] == [
        (404, "not_found"),
        (401, "unauthorized"),
        (401, "unauthorized"),
        (405, "method_not_allowed"),
        (404, "unknown_msisdn"),
        (200, None),
    ]
    assert gateway.world.clock.offset == 1


# -- the CLI ------------------------------------------------------------------------------------


class _Silent:
    """A logger that says nothing: the CLI's own output is what these tests read."""

    def info(self, event: str, **kw: object) -> None:
        pass

    def error(self, event: str, **kw: object) -> None:
        pass


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """No token or API address from the environment; no token file in the working directory;
    a gateway (when the test has one) that logs nothing to the captured stdout."""
    if "gateway" in request.fixturenames:
        request.getfixturevalue("gateway").api.log = _Silent()
    monkeypatch.delenv("USSDSIM_TOKEN", raising=False)
    monkeypatch.delenv("USSDSIM_API", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest_twisted.inlineCallbacks
def test_cli_clock_advance_1h30m_moves_the_clock_by_5400_seconds(
    gateway: Gateway, cli_env: None, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> Any:
    """`ussdsim clock advance 1h30m` against a live gateway moves its clock by 5400 s."""
    base = base_of(gateway)
    before = gateway.now()
    code = yield in_thread(
        main, ["clock", "advance", "1h30m", "--api", base, "--token", gateway.api_token]
    )
    assert code == 0
    assert gateway.world.clock.offset == 5400
    assert gateway.now() - before >= 5400
    assert "offset=5400" in capsys.readouterr().out

    # The token from the environment and from the token file do as well.
    monkeypatch.setenv("USSDSIM_TOKEN", gateway.api_token)
    assert (yield in_thread(main, ["clock", "advance", "60", "--api", base])) == 0
    monkeypatch.delenv("USSDSIM_TOKEN")
    Path("lab.token").write_text(gateway.api_token + "\n")
    assert (
        yield in_thread(
            main, ["clock", "advance", "1m", "--api", base, "--token-file", "lab.token"]
        )
    ) == 0
    assert gateway.world.clock.offset == 5520
    capsys.readouterr()
    assert (yield in_thread(main, ["clock", "show", "--api", base, "--json"])) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["offset"] == 5520 and shown["now"] == gateway.now()


@pytest_twisted.inlineCallbacks
def test_cli_subscriber_create_show_and_usage(
    gateway: Gateway, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> Any:
    """`ussdsim subscriber create|show` and `ussdsim usage` are thin clients of the API."""
    options = ["--api", base_of(gateway), "--token", gateway.api_token]
    create = ["subscriber", "create", "--msisdn", NEW, "--profile", "mts", "--tariff", "super_mts",
              "--balance", "1000", "--option", "bit", *options]  # fmt: skip
    assert (yield in_thread(main, create)) == 0
    made = json.loads(capsys.readouterr().out)
    summary = (made["msisdn"], made["balance"], [o["code"] for o in made["options"]])
    assert summary == (NEW, 1000, ["bit"])  # an option given at creation is not charged now
    assert (yield in_thread(main, ["subscriber", "show", NEW, *options])) == 0
    assert json.loads(capsys.readouterr().out) == made
    assert (yield in_thread(main, ["usage", SUPER, "voice", "2", *options])) == 0
    used = json.loads(capsys.readouterr().out)
    assert (used["billed"], used["paid_by"]) == (580, [{"source": "tariff", "amount": 2}])
    assert gateway.world.get(SUPER).balance == 30000 - 580


@pytest_twisted.inlineCallbacks
def test_cli_failures_are_one_line_with_their_exit_status(
    gateway: Gateway, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> Any:
    """A refusal of the API: one line on stderr, exit status 1; an unreachable API: 3."""
    base = base_of(gateway)
    runs = [
        ["clock", "advance", "1h", "--api", base],  # no token anywhere
        ["subscriber", "show", "70000000000", "--api", base],
        ["clock", "show", "--api", "http://127.0.0.1:1"],
        ["usage", SMART, "sms", "0", "--api", base, "--token", gateway.api_token],
    ]
    expected = [
        "unauthorized: ",
        "unknown_msisdn: ",
        "cannot reach the control API",
        "invalid_value: ",
    ]
    statuses = [1, 1, 3, 1]
    for argv, start, status in zip(runs, expected, statuses, strict=True):
        assert (yield in_thread(main, argv)) == status, argv
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.count("\n") == 1 and start in captured.err, captured.err
        assert "Traceback" not in captured.err
    assert gateway.world.clock.offset == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["clock", "advance", "1x"],
        ["clock", "advance"],
        ["clock"],
        ["clock", "rewind", "1h"],
        ["subscriber", "create", "--msisdn", NEW],
        [
            "subscriber",
            "create",
            "--msisdn",
            NEW,
            "--profile",
            "mts",
            "--tariff",
            "t",
            "--balance",
            "1.5",
        ],
        ["usage", SMART, "fax", "1"],
        ["usage", SMART, "sms", "many"],
        [],
    ],
)
def test_cli_bad_arguments_are_one_line_with_exit_2(
    argv: list[str], cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad arguments: one line on stderr naming the problem, exit status 2, nothing sent."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "error: " in captured.err, captured.err
