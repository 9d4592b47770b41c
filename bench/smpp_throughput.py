"""Gateway throughput and latency against the bare-Twisted ceiling, measured in one run.

Starts each server as a subprocess on a free 127.0.0.1 port, drives it with
``bench/loadgen.py`` (a warm-up, then the median of ``--repeat`` runs) and reports the
rate, the latency and the server's CPU seconds (from /proc) beside each figure:

    python bench/gateway.py                      # the issue's targets: N=4, W=50, M=200k
    python bench/gateway.py --messages 20000     # a quick look

Scenarios: ``bare`` (trivial Twisted SMSC), ``p2p`` (ussdsim raw path: submit → durable
store → submit_sm_resp), ``deliver`` (one deliver_sm per submit), ``latency`` (W=1, one
bind: p50 for a single message).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import loadgen  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


@contextmanager
def server(kind: str, state_dir: str) -> Iterator[tuple[int, int]]:
    port = free_port()
    if kind == "bare":
        cmd = [sys.executable, str(HERE / "bare_smsc.py"), str(port)]
    else:
        cmd = [
            sys.executable,
            "-m",
            "gateway.cli",
            "serve",
            "--port",
            str(port),
            "--http-port",
            "0",
            "--state",
            str(Path(state_dir) / f"bench-{port}.sqlite3"),
            "--log-level",
            "warning",
        ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"{kind} server did not start") from None
                time.sleep(0.05)
        yield port, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def measure(
    kind: str, scenario: str, args: argparse.Namespace, binds: int, window: int
) -> dict[str, Any]:
    runs = []
    with tempfile.TemporaryDirectory() as state_dir, server(kind, state_dir) as (port, pid):
        common = [
            "--port",
            str(port),
            "--binds",
            str(binds),
            "--window",
            str(window),
            "--scenario",
            scenario,
            "--timeout",
            "600",
        ]
        loadgen_run = lambda m: loadgen.main([*common, "--messages", str(m)])  # noqa: E731
        _quiet(loadgen_run, max(1000, args.messages // 10))  # warm-up
        for _ in range(args.repeat):
            before = cpu_seconds(pid)
            result = _quiet(loadgen_run, args.messages)
            result["server_cpu_s"] = round(cpu_seconds(pid) - before, 2)
            runs.append(result)
    key = "p50_ms" if scenario == "latency" else "resp_per_s"
    runs.sort(key=lambda r: r[key])
    median = dict(runs[len(runs) // 2])
    median["server"] = kind
    median["runs"] = [r[key] for r in runs]
    return median


def _quiet(fn: Any, arg: Any) -> dict[str, Any]:
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        result: dict[str, Any] = fn(arg)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--binds", type=int, default=4)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument(
        "--only",
        nargs="*",
        default=["bare", "p2p", "deliver", "latency"],
        help="which measurements: bare p2p deliver latency",
    )
    args = parser.parse_args()
    results = []
    if "bare" in args.only:
        results.append(measure("bare", "p2p", args, args.binds, args.window))
    if "p2p" in args.only:
        results.append(measure("ussdsim", "p2p", args, args.binds, args.window))
    if "deliver" in args.only:
        results.append(measure("ussdsim", "deliver", args, args.binds, args.window))
    if "latency" in args.only:
        lat_args = argparse.Namespace(**{**vars(args), "messages": min(args.messages, 20_000)})
        result = measure("ussdsim", "p2p", lat_args, 1, 1)
        result["scenario"] = "latency W=1"
        results.append(result)
    for r in results:
        print(json.dumps(r))
    print()
    print(
        "| server | scenario | N | W | M | resp/s | deliver_sm/s | p50 ms | p99 ms | server CPU s | runs |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['server']} | {r['scenario']} | {r['binds']} | {r['window']} | {r['messages']} |"
            f" {r['resp_per_s']} | {r['deliver_per_s']} | {r['p50_ms']} | {r['p99_ms']} |"
            f" {r['server_cpu_s']} | {r['runs']} |"
        )


if __name__ == "__main__":
    main()
