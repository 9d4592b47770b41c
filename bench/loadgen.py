"""ussdsim's own SMPP load generator: N binds, a window of W requests each, M messages.

Raw asyncio sockets and pre-built PDUs (only the sequence number is patched), so the
generator costs far less than the server it measures.  It answers every deliver_sm with
deliver_sm_resp, counts them, and measures the latency of each submit_sm (send →
submit_sm_resp).  Used by ``bench/gateway.py``; runnable alone against any SMSC:

    python bench/loadgen.py --port 2775 --binds 4 --window 50 --messages 200000

Scenarios (``--scenario``):
  p2p      person-to-person SMS to numbers no ESME serves (stored, acknowledged) — raw path
  receipt  the same with registered_delivery=1 to numbers the generator's own binds serve:
           every submit brings one deliver_sm (the message) and one receipt
  deliver  P2P to numbers the generator serves, no receipt: one deliver_sm per submit
  ts       Time Share SMS ``G,<recipient>,10`` to 125 from many senders (needs the demo
           population: --senders/--recipients files)
Output: one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import struct
import time
from collections.abc import Sequence
from typing import Any

HEADER = struct.Struct(">IIII")
BIND_TRANSCEIVER = 0x00000009
SUBMIT_SM = 0x00000004
SUBMIT_SM_RESP = 0x80000004
DELIVER_SM = 0x00000005
DELIVER_SM_RESP = 0x80000005
ENQUIRE_LINK = 0x00000015
ENQUIRE_LINK_RESP = 0x80000015
UNBIND = 0x00000006


def cstr(value: str) -> bytes:
    return value.encode("latin-1") + b"\0"


def pdu(command_id: int, sequence: int, body: bytes, status: int = 0) -> bytes:
    return HEADER.pack(16 + len(body), command_id, status, sequence) + body


def bind_body(system_id: str, password: str, address_range: str) -> bytes:
    return cstr(system_id) + cstr(password) + cstr("") + bytes([0x34, 1, 1]) + cstr(address_range)


def submit_body(
    source: str, destination: str, text: bytes, registered_delivery: int, service_type: str = ""
) -> bytes:
    return (
        cstr(service_type)
        + bytes([1, 1])
        + cstr(source)
        + bytes([1 if len(destination) > 6 else 0, 1])
        + cstr(destination)
        + bytes([0, 0, 0])
        + cstr("")
        + cstr("")
        + bytes([registered_delivery, 0, 0, 0, len(text)])
        + text
    )


class Bind(asyncio.Protocol):
    """One bound transceiver that keeps ``window`` submits in flight."""

    def __init__(self, runner: Runner, index: int) -> None:
        self.runner = runner
        self.index = index
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.bound = asyncio.get_running_loop().create_future()
        self.done = asyncio.get_running_loop().create_future()
        self.sent_at: dict[int, float] = {}
        self.sequence = 1
        self.to_send = 0
        self.outstanding = 0
        self.started = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        r = self.runner
        address_range = r.address_range(self.index)
        transport.write(pdu(BIND_TRANSCEIVER, 1, bind_body(r.system_id, r.password, address_range)))

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        offset = 0
        out: list[bytes] = []
        now = time.perf_counter()
        latencies = self.runner.latencies
        end = len(buffer)
        while end - offset >= 16:
            length, command_id, status, sequence = HEADER.unpack_from(buffer, offset)
            if end - offset < length:
                break
            if command_id == SUBMIT_SM_RESP:
                started = self.sent_at.pop(sequence, None)
                if started is not None:
                    latencies.append(now - started)
                self.outstanding -= 1
                if status:
                    self.runner.errors += 1
                self.runner.responses += 1
            elif command_id == DELIVER_SM:
                self.runner.delivers += 1
                out.append(HEADER.pack(17, DELIVER_SM_RESP, 0, sequence) + b"\0")
            elif command_id == ENQUIRE_LINK:
                out.append(HEADER.pack(16, ENQUIRE_LINK_RESP, 0, sequence))
            elif command_id == 0x80000009:
                if status:
                    self.bound.set_exception(RuntimeError(f"bind refused: {status:#x}"))
                    return
                self.bound.set_result(None)
            offset += length
        del buffer[:offset]
        self._fill(out, now)
        if out and self.transport is not None:
            self.transport.write(b"".join(out))
        self._check_done()

    def start(self, count: int) -> None:
        self.started = True
        self.to_send = count
        out: list[bytes] = []
        self._fill(out, time.perf_counter())
        assert self.transport is not None
        self.transport.write(b"".join(out))

    def _fill(self, out: list[bytes], now: float) -> None:
        runner = self.runner
        while self.to_send > 0 and self.outstanding < runner.window:
            self.sequence += 1
            sequence = self.sequence
            out.append(runner.next_submit(self.index, sequence))
            self.sent_at[sequence] = now
            self.outstanding += 1
            self.to_send -= 1

    def _check_done(self) -> None:
        if self.started and self.to_send == 0 and self.outstanding == 0 and not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(RuntimeError(f"connection lost: {exc}"))
        if not self.bound.done():
            self.bound.set_exception(RuntimeError(f"connection lost: {exc}"))


class Runner:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.system_id, self.password = args.system_id, args.password
        self.window = args.window
        self.latencies: list[float] = []
        self.responses = 0
        self.delivers = 0
        self.errors = 0
        self._counter = 0
        scenario = args.scenario
        self.templates: list[bytearray] = []
        if scenario == "ts":
            senders: Sequence[str] = args.senders.split(",")
            recipients: Sequence[str] = args.recipients.split(",")
            for i, sender in enumerate(senders):
                recipient = recipients[i % len(recipients)]
                text = f"G,{recipient},10".encode("ascii")
                self.templates.append(
                    bytearray(pdu(SUBMIT_SM, 0, submit_body(sender, "125", text, 0)))
                )
        else:
            receipts = 1 if scenario == "receipt" else 0
            for i in range(max(1, args.binds) * 8):
                source = f"7900{i:07d}"
                if scenario == "p2p":
                    destination = f"7999{i:07d}"  # nobody serves 7999…: stored and held
                else:
                    destination = f"7900{(i + 1) % (max(1, args.binds) * 8):07d}"
                self.templates.append(
                    bytearray(
                        pdu(
                            SUBMIT_SM,
                            0,
                            submit_body(source, destination, b"load test message", receipts),
                        )
                    )
                )

    def address_range(self, index: int) -> str:
        if self.args.scenario in ("receipt", "deliver"):
            return "7900.*"  # every bind may receive; the router prefers the last submitter
        return "^$"  # receive nothing

    def next_submit(self, index: int, sequence: int) -> bytes:
        self._counter += 1
        template = self.templates[self._counter % len(self.templates)]
        struct.pack_into(">I", template, 12, sequence)
        return bytes(template)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    runner = Runner(args)
    binds: list[Bind] = []
    for i in range(args.binds):
        _, proto = await loop.create_connection(lambda i=i: Bind(runner, i), args.host, args.port)
        binds.append(proto)
    await asyncio.gather(*(b.bound for b in binds))
    per_bind = args.messages // args.binds
    started = time.perf_counter()
    for b in binds:
        b.start(per_bind)
    await asyncio.wait_for(asyncio.gather(*(b.done for b in binds)), timeout=args.timeout)
    expected_delivers = (
        {"p2p": 0, "ts": 0, "deliver": 1, "receipt": 2}[args.scenario] * per_bind * args.binds
    )
    if args.scenario == "ts":
        expected_delivers = 0  # confirmations go to the binds too; counted as they come
    deadline = time.perf_counter() + args.timeout
    while runner.delivers < expected_delivers and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    for b in binds:
        assert b.transport is not None
        b.transport.write(pdu(UNBIND, 0x7FFFFFFF, b""))
        b.transport.close()
    lat = sorted(runner.latencies)
    return {
        "scenario": args.scenario,
        "binds": args.binds,
        "window": args.window,
        "messages": per_bind * args.binds,
        "seconds": round(elapsed, 3),
        "resp_per_s": round(runner.responses / elapsed),
        "deliver_per_s": round(runner.delivers / elapsed),
        "delivers": runner.delivers,
        "errors": runner.errors,
        "p50_ms": round(lat[len(lat) // 2] * 1000, 3) if lat else None,
        "p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 3) if lat else None,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2775)
    parser.add_argument("--system-id", default="tester")
    parser.add_argument("--password", default="secret")
    parser.add_argument("--binds", type=int, default=4)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--scenario", choices=["p2p", "receipt", "deliver", "ts"], default="p2p")
    parser.add_argument("--senders", default="")
    parser.add_argument("--recipients", default="")
    parser.add_argument("--timeout", type=float, default=300.0)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    result = asyncio.run(run(parse_args(argv)))
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
