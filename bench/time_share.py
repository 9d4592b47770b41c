"""Telenor «Time Share» transactions per second through SMPP (issue 7's service-path target).

One transaction: an SMS ``G,087XXXXXXX,10`` to 125 from one of many senders → the transfer
committed in SQLite → submit_sm_resp → the two confirmation SMS (sender and recipient) sent as
deliver_sm and answered by the generator.  The state is prepared first: every sender may send
50 minutes in 31 days and every recipient receive 50 (TS-04, TS-05), so M transactions of 10
minutes need M/5 senders and M/5 recipients; one subscriber of each kind is made through the
World and cloned row by row (through the World, 80k subscribers take minutes).  The server is
``ussdsim serve`` as a subprocess, driven by ``bench/loadgen.py``'s binds; its CPU seconds come
from /proc.  After the run the server is killed with SIGKILL and the state file is opened
again: every acknowledged transfer must be in it.

    python bench/time_share.py                                # M=200k, N=4, W=50, UDH replies
    python bench/time_share.py --transactions 20000           # a quick look
    python bench/time_share.py --long-messages payload        # one deliver_sm per confirmation
    python bench/time_share.py --profile 5000                 # in-process: where the time goes

The confirmations are Bulgarian (UCS2) and longer than 70 characters, so with the default
``udh`` each is two concatenated deliver_sm (four per transaction); an ESME configured with
``long_messages: payload`` gets one deliver_sm per confirmation.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import io
import json
import os
import pstats
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# bench/ goes last: bench/parsers.py must not hide the parsers package.
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != HERE), str(HERE)]

import loadgen  # noqa: E402

DAY = 86_400


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a process (from /proc, as bench/smpp_throughput.py)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


SENDER_TEMPLATE = "359879999998"
RECIPIENT_TEMPLATE = "359879999999"


def sender_msisdn(run: int, j: int) -> str:
    return f"35987{run}{j:06d}"


def recipient_msisdn(run: int, j: int, binds: int) -> str:
    # Recipients of bind i share the prefix 35987(5+i), which that bind's address_range serves.
    return f"35987{5 + j % binds}{run * 500_000 + j // binds:06d}"


# -- the state ----------------------------------------------------------------------------


def prepare_state(path: str, runs: list[int], binds: int) -> None:
    """Senders (balance 10 лв., 100 network minutes, a 15 лв. top-up yesterday) and recipients."""
    from twisted.internet import reactor

    from services.clock import SimClock
    from services.profiles import load_profiles
    from services.store import SqliteStore
    from services.world import World

    world = World(SqliteStore(path), load_profiles(), SimClock(reactor))
    now = world.now()
    with world.transaction():
        for msisdn in (SENDER_TEMPLATE, RECIPIENT_TEMPLATE):
            world.create_subscriber(
                msisdn=msisdn, profile="telenor", tariff="prepaid_start", now=now, balance=1000
            )
        world.grant_package(
            SENDER_TEMPLATE, kind="voice", amount=100, now=now, valid_until=now + 60 * DAY,
            destination="network", label="bench minutes",
        )  # fmt: skip
        world.record_topup_history(SENDER_TEMPLATE, at=now - DAY, amount=1500)
    db = world.store.connection
    clones: dict[str, list[str]] = {SENDER_TEMPLATE: [], RECIPIENT_TEMPLATE: []}
    for run, count in enumerate(runs):
        clones[SENDER_TEMPLATE] += [sender_msisdn(run, j) for j in range(count)]
        clones[RECIPIENT_TEMPLATE] += [recipient_msisdn(run, j, binds) for j in range(count)]
    tables = [
        name
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if any(col[1] == "msisdn" for col in db.execute(f"PRAGMA table_info({name})"))
    ]
    # subscribers first: the other tables refer to it.
    tables.sort(key=lambda name: name != "subscribers")
    with world.transaction():
        for table in tables:
            columns = [c[1] for c in db.execute(f"PRAGMA table_info({table})") if c[1] != "id"]
            select = ", ".join("?" if c == "msisdn" else c for c in columns)
            sql = (
                f"INSERT INTO {table} ({', '.join(columns)})"
                f" SELECT {select} FROM {table} WHERE msisdn = ?"
            )
            for template, numbers in clones.items():
                db.executemany(sql, ((n, template) for n in numbers))
    world.store.close()  # type: ignore[attr-defined]


def count_transfers(path: str) -> int:
    with sqlite3.connect(path) as db:
        row = db.execute("SELECT count(*) FROM time_share_transfers WHERE side = 'both'").fetchone()
        return int(row[0])


def parts_per_transaction() -> int:
    """How many deliver_sm the two confirmations of one transfer make with UDH splitting."""
    from gateway import coding
    from services.outbox import render_template
    from services.profiles import load_profiles

    profile = load_profiles()["telenor"]
    common = {"minutes": 10, "destination": profile.destinations["network"]}
    sent = render_template(
        profile, "time_share.sent_free", {**common, "recipient": "0875000000", "balance": 1000}
    )
    received = render_template(
        profile,
        "time_share.received",
        {**common, "sender": "0870000000", "until": int(time.time()) + 3 * DAY},
    )
    return sum(len(coding.split_text(text, reference=1)) for text in (sent, received))


# -- the load ------------------------------------------------------------------------------


class TimeShareRunner(loadgen.Runner):
    """``loadgen.Runner`` with the senders and recipients of one run, each bind serving its own
    recipients (address_range), and the expected number of deliver_sm."""

    def __init__(self, args: argparse.Namespace, run: int, count: int) -> None:
        args.scenario = "p2p"  # the parent builds throw-away templates for it
        super().__init__(args)
        self.templates = []
        for j in range(count):
            recipient = recipient_msisdn(run, j, args.binds)
            text = f"G,0{recipient[3:]},10".encode("ascii")
            body = loadgen.submit_body(sender_msisdn(run, j), "125", text, 0)
            self.templates.append(bytearray(loadgen.pdu(loadgen.SUBMIT_SM, 0, body)))

    def address_range(self, index: int) -> str:
        return f"^35987{5 + index}[0-9]{{6}}$"


async def drive(args: argparse.Namespace, port: int, run: int, count: int, delivers: int) -> Any:
    loop = asyncio.get_running_loop()
    args.port = port
    runner = TimeShareRunner(args, run, count)
    binds: list[loadgen.Bind] = []
    for i in range(args.binds):
        _, proto = await loop.create_connection(
            functools.partial(loadgen.Bind, runner, i), "127.0.0.1", port
        )
        binds.append(proto)
    await asyncio.gather(*(b.bound for b in binds))
    messages = count * 5
    per_bind = messages // args.binds
    started = time.perf_counter()
    for b in binds:
        b.start(per_bind)
    await asyncio.wait_for(asyncio.gather(*(b.done for b in binds)), timeout=args.timeout)
    responded = time.perf_counter() - started
    expected = per_bind * args.binds * delivers
    deadline = time.perf_counter() + args.timeout
    while runner.delivers < expected and time.perf_counter() < deadline:
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - started
    for b in binds:
        assert b.transport is not None
        b.transport.write(loadgen.pdu(loadgen.UNBIND, 0x7FFFFFFF, b""))
        b.transport.close()
    lat = sorted(runner.latencies)
    done = per_bind * args.binds
    return {
        "transactions": done,
        "seconds": round(elapsed, 3),
        "tx_per_s": round(done / elapsed),
        "resp_per_s": round(runner.responses / responded),
        "deliver_sm": runner.delivers,
        "deliver_sm_expected": expected,
        "submit_errors": runner.errors,
        "p50_ms": round(lat[len(lat) // 2] * 1000, 3) if lat else None,
        "p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 3) if lat else None,
    }


def write_config(path: Path, args: argparse.Namespace) -> None:
    path.write_text(
        "accounts:\n"
        "  - system_id: tester\n"
        "    password: secret\n"
        f"    window: {args.window}\n"
        f"    deliver_window: {args.window}\n"
        f"    long_messages: {args.long_messages}\n",
        encoding="utf-8",
    )


def measure(args: argparse.Namespace) -> dict[str, Any]:
    warm = max(args.binds * 50, args.transactions // 10) // 5
    main_senders = args.transactions // 5
    delivers = 2 if args.long_messages == "payload" else parts_per_transaction()
    with tempfile.TemporaryDirectory() as folder:
        state = str(Path(folder) / "state.sqlite3")
        started = time.perf_counter()
        prepare_state(state, [warm, main_senders], args.binds)
        setup_s = time.perf_counter() - started
        config = Path(folder) / "config.yaml"
        write_config(config, args)
        port = free_port()
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "gateway.cli", "serve", "--port", str(port),
                "--http-port", "0", "--state", state, "--config", str(config),
                "--log-level", "warning",
            ],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            proc.stdout.readline()  # "ussdsim: SMPP 3.4 on …": listening
            asyncio.run(drive(args, port, 0, warm, delivers))
            before = cpu_seconds(proc.pid)
            result: dict[str, Any] = asyncio.run(drive(args, port, 1, main_senders, delivers))
            result["server_cpu_s"] = round(cpu_seconds(proc.pid) - before, 2)
        finally:
            proc.send_signal(signal.SIGKILL)  # no clean shutdown: what was acknowledged stays
            proc.wait()
        committed = count_transfers(state)
    result.update(
        binds=args.binds,
        window=args.window,
        long_messages=args.long_messages,
        deliver_sm_per_tx=delivers,
        cpu_us_per_tx=round(result["server_cpu_s"] / result["transactions"] * 1e6),
        committed_after_kill_9=committed,
        acknowledged=warm * 5 + result["transactions"],
        setup_s=round(setup_s, 1),
    )
    return result


# -- in-process profile --------------------------------------------------------------------


def profile(count: int) -> None:
    """The service path without sockets: where the CPU of one transaction goes.

    One batch is timed phase by phase in CPU time (``process_time``: other processes on the
    machine do not count), a second one runs under cProfile (which slows every
    Python call, so its absolute times are inflated; read it for the shares)."""
    from twisted.internet import task

    from gateway.app import Gateway
    from gateway.config import GatewayConfig
    from parsers import parse_sms
    from services.dispatch import Context

    with tempfile.TemporaryDirectory() as folder:
        state = str(Path(folder) / "state.sqlite3")
        senders = count // 5 + 1
        prepare_state(state, [senders, senders], 1)
        clock = task.Clock()
        clock.advance(time.time())
        gateway = Gateway(GatewayConfig(state_path=state), clock)
        handler = gateway.directory.command_handler(
            "telenor", parse_sms("G,0875000000,10", "125", "telenor")
        )
        assert handler is not None
        phases = dict.fromkeys(("parse", "service", "render", "queue", "commit"), 0.0)

        def batch(run: int) -> None:
            for n in range(count):
                j = n % senders
                sender = sender_msisdn(run, j)
                text = f"G,0{recipient_msisdn(run, j, 1)[3:]},10"
                t0 = time.process_time()
                command = parse_sms(text, "125", "telenor")
                t1 = time.process_time()
                context = Context(
                    msisdn=sender, profile="telenor", now=gateway.now(), channel="sms",
                    service_number="125",
                )  # fmt: skip
                # As the gateway does (_on_service_sms): the transfer joins the batch's commit.
                gateway.store.begin()
                with gateway.world.transaction():
                    outcome = handler(context, command)
                t2 = time.process_time()
                outgoing = gateway.outgoing(outcome, context)
                t3 = time.process_time()
                for out in outgoing:
                    gateway.router.send(out, gateway.now())
                t4 = time.process_time()
                if n % 50 == 49:
                    gateway.router.flush()
                t5 = time.process_time()
                if run == 0:
                    spent = (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)
                    for name, value in zip(phases, spent, strict=True):
                        phases[name] += value
            gateway.router.flush()

        batch(0)
        profiler = cProfile.Profile()
        profiler.enable()
        batch(1)
        profiler.disable()
        done = count_transfers(state)
        gateway.store.close()
    print(f"{done} transfers committed of {2 * count}")
    total = sum(phases.values())
    for name, spent in phases.items():
        print(f"{name:8s} {spent / count * 1e6:8.1f} µs/tx  ({spent / total:5.1%})")
    print(f"{'total':8s} {total / count * 1e6:8.1f} µs/tx  (~{count / total:,.0f} tx/s, one core)")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
    print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transactions", type=int, default=200_000)
    parser.add_argument("--binds", type=int, default=4)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--long-messages", choices=["udh", "payload"], default="udh")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--profile", type=int, metavar="N", help="profile N in-process instead")
    args = parser.parse_args()
    args.host, args.system_id, args.password = "127.0.0.1", "tester", "secret"
    args.senders = args.recipients = ""
    if args.profile:
        profile(args.profile)
        return
    result = measure(args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
