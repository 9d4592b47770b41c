"""``ussdsim serve`` as a user runs it: a real process that prints where it listens, serves
SMPP, and on SIGTERM unbinds its sessions, flushes the store and exits (GW-01, GW-02, GW-06)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.client import ClientError, SmppClient

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


class Served:
    def __init__(self, proc: subprocess.Popen[str], host: str, port: int, lines: list[str]) -> None:
        self.proc, self.host, self.port, self.lines = proc, host, port, lines


def start(state: Path) -> Served:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "serve",
            "--port",
            "0",
            "--http-port",
            "0",
            "--state",
            str(state),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        found = re.search(r"SMPP 3\.4 on ([\d.]+):(\d+)", line)
        if found:
            return Served(proc, found.group(1), int(found.group(2)), lines)
    proc.kill()
    raise AssertionError(f"serve did not say where it listens: {lines}")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    server = start(tmp_path / "state.sqlite3")
    yield server
    if server.proc.poll() is None:
        server.proc.kill()
        server.proc.wait(10)


def test_gw_01_serve_prints_address_and_credentials_and_accepts_a_bind(served: Served) -> None:
    """GW-01: serve listens on 127.0.0.1, prints the default credentials, and they bind."""
    assert served.host == "127.0.0.1"
    assert served.proc.stdout is not None
    while not any("system_id='tester'" in line for line in served.lines):
        line = served.proc.stdout.readline()
        assert line, f"no credentials printed: {served.lines}"
        served.lines.append(line)
    assert any("system_id='tester'" in ln and "password='secret'" in ln for ln in served.lines)
    with SmppClient(served.host, served.port) as client:
        client.enquire_link()


def test_gw_02_sigterm_unbinds_sessions_then_exits_cleanly(served: Served) -> None:
    """GW-02: on SIGTERM the server sends unbind to bound sessions, closes, and exits 0."""
    client = SmppClient(served.host, served.port, timeout=10)
    client.connect()
    served.proc.send_signal(signal.SIGTERM)
    with pytest.raises(ClientError, match="unbound"):
        client.wait_for(timeout=10)
    client._client.disconnect()
    assert served.proc.wait(timeout=20) == 0


def test_gw_06_acknowledged_message_survives_sigkill(tmp_path: Path) -> None:
    """GW-06: a submit acknowledged by submit_sm_resp is delivered after kill -9 and a restart."""
    state = tmp_path / "state.sqlite3"
    first = start(state)
    try:
        with SmppClient(first.host, first.port, address_range="^79160000001$") as sender:
            sender.submit("79160000001", "79160000003", "kill -9 proof")
    finally:
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
    second = start(state)
    try:
        with SmppClient(second.host, second.port, address_range="^79160000003$") as receiver:
            got = receiver.wait_for(lambda r: r.destination == "79160000003", timeout=10)
        assert got.text == "kill -9 proof"
    finally:
        second.proc.kill()
        second.proc.wait(10)
