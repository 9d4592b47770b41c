"""USSD dialogue benchmark (issue 5): dialogue steps per second through SMPP, and the memory of
100k open dialogues.

Steps through SMPP: a ussdsim gateway runs in a subprocess (``serve`` mode below: the bundled
profiles plus ``--handsets`` Telenor prepaid subscribers made before it listens); an asyncio
load generator binds ``--binds`` transceivers, each playing ``--per-bind`` handsets that run the
Time Share path of My Menu again and again — ``*123#`` → 5 → 3 → recipient → destination →
minutes — each handset sending its next step when the screen of the last one arrived, all
handsets in parallel. A step is one submit_sm (op 1 or 18) answered by its USSD deliver_sm; the
last step calls the real ``time_share.transfer`` (a committed transfer and two confirmation SMS,
or a refusal once a sender's 31-day limit is used up). Reported: steps/s, dialogues/s, the
latency of a step (submit → screen), the server's CPU seconds; a warm-up, then the median of
``--repeat`` runs.

In process (no SMPP): ``DialogueManager.handle`` steps/s over the same path with a stub action,
and the resident memory of ``--open`` dialogues each left waiting at the destination prompt
(*123# → 5 → 3 → number), measured as the RSS growth after a garbage collection.

    python bench/dialogues.py                       # everything, the issue's sizes
    python bench/dialogues.py --steps 60000 --repeat 1 --only smpp
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# bench/ holds a parsers.py of its own: the project's packages must come first, bench/ last.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))
sys.path.append(str(HERE))

import loadgen  # noqa: E402

HEADER = struct.Struct(">IIII")
SUBMIT_SM, SUBMIT_SM_RESP = 0x00000004, 0x80000004
DELIVER_SM, DELIVER_SM_RESP = 0x00000005, 0x80000005
BIND_TRANSCEIVER_RESP = 0x80000009
ENQUIRE_LINK, ENQUIRE_LINK_RESP = 0x00000015, 0x80000015
TAG_USSD_SERVICE_OP = 0x0501
FIRST_HANDSET = 359870000000  # 0870000000 typed; outside the demo's 0881…/0898…


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc (as bench/smpp_throughput.py)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def handset_msisdn(index: int) -> str:
    return str(FIRST_HANDSET + index)


def national(msisdn: str) -> str:
    return "0" + msisdn[3:]


# -- the server ------------------------------------------------------------------------------


def serve(args: argparse.Namespace) -> None:
    """A gateway on the real reactor with ``--handsets`` Telenor prepaid subscribers."""
    import logging

    from twisted.internet import reactor as the_reactor

    from gateway.app import Gateway, configure_logging
    from gateway.config import EsmeAccount, GatewayConfig

    reactor: Any = the_reactor
    configure_logging(level=logging.WARNING)
    config = GatewayConfig(
        smpp_port=args.port,
        http_port=0,
        state_path=args.state,
        accounts=(
            EsmeAccount(system_id="tester", password="secret", window=100, deliver_window=100),
        ),
    )
    gateway = Gateway(config, reactor)
    now = gateway.now()
    with gateway.world.transaction():
        for index in range(args.handsets):
            msisdn = handset_msisdn(index)
            if gateway.world.find(msisdn) is None:
                gateway.world.create_subscriber(
                    msisdn=msisdn, profile="telenor", tariff="prepaid_12", now=now, balance=5000
                )
                gateway.world.top_up(msisdn, 1500, now=now, method="card")
    gateway.store.commit()
    gateway.start()
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    print(f"READY {gateway.smpp_address[1]}", flush=True)

    def stop(*_: object) -> None:
        reactor.callFromThread(reactor.stop)

    signal.signal(signal.SIGTERM, stop)
    reactor.run()
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)


@contextmanager
def server(handsets: int, state_dir: str, profile: str | None = None) -> Iterator[tuple[int, int]]:
    port = free_port()
    state = str(Path(state_dir) / "dialogues.sqlite3")
    cmd = [sys.executable, str(Path(__file__)), "serve", "--port", str(port)]
    cmd += ["--handsets", str(handsets), "--state", state]
    if profile:
        cmd += ["--profile", profile]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("READY"):
            raise RuntimeError(f"the gateway did not start: {line!r}")
        yield port, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


# -- the handsets ---------------------------------------------------------------------------------


def ussd_submit(source: str, destination: str, text: str, op: int) -> bytearray:
    body = loadgen.submit_body(source, destination, text.encode("ascii"), 0, service_type="USSD")
    body += struct.pack(">HHB", TAG_USSD_SERVICE_OP, 1, op)
    return bytearray(loadgen.pdu(SUBMIT_SM, 0, body))


def scripts(first: int, count: int, total: int) -> list[list[bytearray]]:
    """Per handset, the six pre-built submits of the Time Share path of *123#."""
    out = []
    for index in range(first, first + count):
        me = handset_msisdn(index)
        recipient = national(handset_msisdn((index + 1) % total))
        out.append(
            [
                ussd_submit(me, "123", "*123#", 1),
                ussd_submit(me, "USSD", "5", 18),
                ussd_submit(me, "USSD", "3", 18),
                ussd_submit(me, "USSD", recipient, 18),
                ussd_submit(me, "USSD", "2", 18),
                ussd_submit(me, "USSD", "10", 18),
            ]
        )
    return out


class Bind(asyncio.Protocol):
    """One transceiver playing many handsets, each sending its next step on its screen."""

    def __init__(self, runner: Runner, handsets: list[list[bytearray]], msisdns: list[str]) -> None:
        self.runner = runner
        self.handsets = handsets
        self.index_of = {m.encode("ascii"): i for i, m in enumerate(msisdns)}
        self.position = [0] * len(handsets)
        self.sent_at = [0.0] * len(handsets)
        self.buffer = bytearray()
        self.sequence = 1
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.bound = loop.create_future()
        self.running = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(loadgen.pdu(0x00000009, 1, loadgen.bind_body("tester", "secret", "")))

    def _send(self, handset: int, out: list[bytes], now: float) -> None:
        script = self.handsets[handset]
        template = script[self.position[handset]]
        self.sequence += 1
        struct.pack_into(">I", template, 12, self.sequence)
        out.append(bytes(template))
        self.sent_at[handset] = now
        self.runner.sent += 1

    def start(self) -> None:
        self.running = True
        out: list[bytes] = []
        now = time.perf_counter()
        for handset in range(len(self.handsets)):
            self._send(handset, out, now)
        assert self.transport is not None
        self.transport.write(b"".join(out))

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        offset, end = 0, len(buffer)
        out: list[bytes] = []
        now = time.perf_counter()
        runner = self.runner
        while end - offset >= 16:
            length, command_id, status, sequence = HEADER.unpack_from(buffer, offset)
            if end - offset < length:
                break
            if command_id == DELIVER_SM:
                out.append(HEADER.pack(17, DELIVER_SM_RESP, 0, sequence) + b"\0")
                body = bytes(buffer[offset + 16 : offset + length])
                service_type, rest = body.split(b"\0", 1)
                if service_type == b"USSD":
                    source_end = rest.index(b"\0", 2)
                    destination = rest[source_end + 3 : rest.index(b"\0", source_end + 3)]
                    handset = self.index_of.get(destination)
                    if handset is not None and self.running:
                        runner.steps += 1
                        runner.latencies.append(now - self.sent_at[handset])
                        position = (self.position[handset] + 1) % 6
                        if position == 0:
                            runner.dialogues += 1
                        self.position[handset] = position
                        if runner.sent < runner.target:
                            self._send(handset, out, now)
                else:
                    runner.sms += 1
            elif command_id == SUBMIT_SM_RESP:
                if status:
                    runner.errors += 1
            elif command_id == ENQUIRE_LINK:
                out.append(HEADER.pack(16, ENQUIRE_LINK_RESP, 0, sequence))
            elif command_id == BIND_TRANSCEIVER_RESP:
                if status:
                    self.bound.set_exception(RuntimeError(f"bind refused: {status:#x}"))
                else:
                    self.bound.set_result(None)
            offset += length
        del buffer[:offset]
        if out and self.transport is not None:
            self.transport.write(b"".join(out))
        if runner.steps >= runner.target and not runner.done.done():
            runner.done.set_result(None)


class Runner:
    def __init__(self, target: int) -> None:
        self.target = target
        self.sent = 0
        self.steps = 0
        self.dialogues = 0
        self.sms = 0
        self.errors = 0
        self.latencies: list[float] = []
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()


async def drive(port: int, binds: int, per_bind: int, steps: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    total = binds * per_bind
    runner = Runner(steps)
    protocols: list[Bind] = []
    for b in range(binds):
        first = b * per_bind
        msisdns = [handset_msisdn(i) for i in range(first, first + per_bind)]
        handsets = scripts(first, per_bind, total)
        _, proto = await loop.create_connection(
            functools.partial(Bind, runner, handsets, msisdns), "127.0.0.1", port
        )
        protocols.append(proto)
    await asyncio.gather(*(p.bound for p in protocols))
    started = time.perf_counter()
    for p in protocols:
        p.start()
    await asyncio.wait_for(runner.done, timeout=600)
    elapsed = time.perf_counter() - started
    for p in protocols:
        p.running = False
        assert p.transport is not None
        p.transport.write(loadgen.pdu(0x00000006, 0x7FFFFFFF, b""))
        p.transport.close()
    lat = sorted(runner.latencies)
    return {
        "binds": binds,
        "handsets": total,
        "steps": runner.steps,
        "seconds": round(elapsed, 3),
        "steps_per_s": round(runner.steps / elapsed),
        "dialogues_per_s": round(runner.dialogues / elapsed),
        "sms_parts": runner.sms,
        "errors": runner.errors,
        "step_p50_ms": round(lat[len(lat) // 2] * 1000, 2),
        "step_p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 2),
    }


def measure_smpp(args: argparse.Namespace) -> dict[str, Any]:
    handsets = args.binds * args.per_bind
    runs = []
    with (
        tempfile.TemporaryDirectory() as state_dir,
        server(handsets, state_dir, args.server_profile) as (port, pid),
    ):
        asyncio.run(drive(port, args.binds, args.per_bind, max(6000, args.steps // 10)))
        for _ in range(args.repeat):
            before = cpu_seconds(pid)
            result = asyncio.run(drive(port, args.binds, args.per_bind, args.steps))
            result["server_cpu_s"] = round(cpu_seconds(pid) - before, 2)
            runs.append(result)
    runs.sort(key=lambda r: r["steps_per_s"])
    median = dict(runs[len(runs) // 2])
    median["runs"] = [r["steps_per_s"] for r in runs]
    return median


# -- in process -----------------------------------------------------------------------------------


def _rss() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def _manager() -> Any:
    from services.dispatch import Context, Outcome, Screen, ServiceDirectory
    from services.profiles import load_profiles
    from sessions.manager import DialogueManager

    directory = ServiceDirectory()

    def transfer(context: Context, params: Mapping[str, object]) -> Outcome:
        return Outcome(screen=Screen(template="request_accepted"))

    directory.register_action("telenor", "time_share.transfer", transfer)
    return DialogueManager(directory, load_profiles())


def measure_in_process(args: argparse.Namespace) -> dict[str, Any]:
    import logging

    from gateway.app import configure_logging

    configure_logging(level=logging.WARNING)  # a dialogue's end is an info event
    manager = _manager()
    path = [("*123#", 1), ("5", 18), ("3", 18), ("0898123456", 18), ("2", 18), ("10", 18)]
    handsets = [handset_msisdn(i) for i in range(1000)]
    steps = 0
    started = time.perf_counter()
    while steps < args.steps:
        for text, op in path:
            for msisdn in handsets:
                manager.handle(
                    msisdn=msisdn, profile="telenor", text=text, op=op, service_number="123", now=0
                )
            steps += len(handsets)
    elapsed = time.perf_counter() - started
    return {
        "steps": steps,
        "steps_per_s": round(steps / elapsed),
        "us_per_step": round(1e6 * elapsed / steps, 2),
    }


def measure_memory(args: argparse.Namespace) -> dict[str, Any]:
    manager = _manager()
    gc.collect()
    before = _rss()
    for i in range(args.open):
        msisdn = handset_msisdn(i)
        for text, op in (("*123#", 1), ("5", 18), ("3", 18), ("0898123456", 18)):
            manager.handle(
                msisdn=msisdn,
                profile="telenor",
                text=text,
                op=op,
                service_number="123",
                now=i // 100,
            )
    gc.collect()
    grown = _rss() - before
    assert len(manager) == args.open
    return {
        "open_dialogues": len(manager),
        "rss_growth_mb": round(grown / 2**20, 1),
        "bytes_per_dialogue": round(grown / args.open),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="mode")
    srv = sub.add_parser("serve")
    srv.add_argument("--port", type=int, required=True)
    srv.add_argument("--handsets", type=int, required=True)
    srv.add_argument("--state", required=True)
    srv.add_argument("--profile", help="write a cProfile of the serving (not the start) here")
    parser.add_argument("--binds", type=int, default=4)
    parser.add_argument("--per-bind", type=int, default=50, help="handsets per bind")
    parser.add_argument("--steps", type=int, default=300_000)
    parser.add_argument("--open", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=["smpp", "process", "memory"])
    parser.add_argument(
        "--server-profile",
        metavar="FILE",
        help="run the SMPP server under cProfile (warm-up included) and dump its stats here",
    )
    args = parser.parse_args(argv)
    if args.mode == "serve":
        serve(args)
        return
    results: dict[str, Any] = {}
    if "memory" in args.only:
        results["memory"] = measure_memory(args)
    if "process" in args.only:
        results["in_process"] = measure_in_process(args)
    if "smpp" in args.only:
        results["smpp"] = measure_smpp(args)
    print(json.dumps(results, indent=2))
    if "smpp" in results:
        r = results["smpp"]
        print(
            f"\n| N binds | handsets | steps | steps/s | dialogues/s | p50 ms | p99 ms |"
            f" server CPU s | runs |\n|---|---|---|---|---|---|---|---|---|\n"
            f"| {r['binds']} | {r['handsets']} | {r['steps']} | {r['steps_per_s']} |"
            f" {r['dialogues_per_s']} | {r['step_p50_ms']} | {r['step_p99_ms']} |"
            f" {r['server_cpu_s']} | {r['runs']} |"
        )


if __name__ == "__main__":
    main()
