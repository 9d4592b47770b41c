"""Shared helpers of the interop tests (issue 2's independent clients, issue 8 item 3): the
rule that skips a missing third-party tool on a workstation but fails it in CI, bounded
subprocesses and thread calls, and a recording TCP relay whose byte streams become a pcap
file (hand-built Ethernet/IPv4/TCP framing) for Wireshark's own SMPP dissector to judge.

The relay records every chunk in the order the reactor saw it, so a reply is always
recorded after the request that caused it; the pcap therefore carries consistent sequence
and acknowledgement numbers and tshark's TCP analysis has nothing to warn about.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, TypeVar, cast

import attrs
import pytest
import pytest_twisted  # type: ignore[import-untyped]
from twisted.internet import defer, threads
from twisted.internet import reactor as _installed_reactor
from twisted.protocols import portforward

#: The real reactor pytest-twisted runs; typed loosely (zope interfaces are not mypy types).
_reactor: Any = _installed_reactor

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

#: Subscribers no demo profile knows: their USSD dials meet the gateway's default answer.
STRANGER_A: Final = "79990000001"
STRANGER_B: Final = "79990000002"
#: A service code and a short number nothing registers: the gateway answers "unknown
#: service" (GW-05) on the channel the subscriber used (GW-10 for USSD).
UNKNOWN_USSD: Final = "*999*1#"
UNKNOWN_SHORT_NUMBER: Final = "9999"
#: SMPP 3.4 §5.3.2.44 ussd_service_op values the README's convention uses (GW-10).
PSSR_INDICATION: Final = 1
PSSR_RESPONSE: Final = 17
#: A 300-character Cyrillic text: five UCS2 parts with an 8-bit UDH, or one message_payload.
LONG_CYRILLIC: Final = ("Съешь же ещё этих мягких французских булок, да выпей чаю. " * 6)[:300]


def in_ci() -> bool:
    """The ``CI`` environment variable is set (GitHub Actions, GitLab CI and most runners set
    ``CI=true``; whoever calls .ci/run in CI must too)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_tool(probe: Sequence[str], *, package: str) -> None:
    """Skip when ``probe`` fails on a workstation; fail in CI, where .ci/run installs it."""
    reason = ""
    if shutil.which(probe[0]) is None:
        reason = f"{probe[0]} is not installed"
    else:
        try:
            done = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False)
        except subprocess.TimeoutExpired:
            reason = f"{' '.join(probe)} did not finish in 30 s"
        else:
            if done.returncode != 0:
                first_line = (done.stderr.strip().splitlines() or ["no message"])[0]
                reason = f"{' '.join(probe)} failed: {first_line[:160]}"
    if not reason:
        return
    message = f"{reason}; install the Debian package {package} (apt-get install -y {package})"
    if in_ci():
        pytest.fail(f"CI must run this interop test: {message}", pytrace=False)
    pytest.skip(message)


def run_bounded(args: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a third-party program to completion within ``timeout`` seconds, output captured."""
    try:
        return subprocess.run(
            list(args), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"{args[0]} did not finish in {timeout} s; stdout={exc.stdout!r} stderr={exc.stderr!r}"
        ) from None


def reactor_test(test: F) -> F:
    """Run an ``async def`` test on the real reactor (pytest-twisted's decorator, typed)."""
    return cast(F, pytest_twisted.ensureDeferred(test))


def bounded(deferred: defer.Deferred[T], timeout: float) -> defer.Deferred[T]:
    """The same Deferred, failed with ``TimeoutError`` after ``timeout`` seconds."""
    deferred.addTimeout(timeout, _reactor)
    return deferred


def off_reactor(function: Callable[..., T], *args: Any, timeout: float = 30.0) -> defer.Deferred[T]:
    """Call a blocking client in a thread so the reactor keeps serving; bounded in time.

    ``timeout`` bounds the wait even if the client library itself hangs.
    """
    return bounded(threads.deferToThread(function, *args), timeout)


# -- the recording relay --------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Chunk:
    """Bytes one side of one relayed connection sent (empty: that side closed)."""

    connection: int
    from_client: bool
    data: bytes


class _RelayFactory(portforward.ProxyFactory):
    """Accepts clients of the relay; knows the relay that records their bytes."""

    def __init__(self, target: tuple[str, int], relay: RecordingRelay) -> None:
        super().__init__(*target)
        self.relay = relay


class _RecordingClient(portforward.ProxyClient):
    """The gateway-facing half: records what the gateway sends."""

    def _record(self, data: bytes) -> None:
        server = cast(_RecordingServer, self.peer)
        server.relay.record(server.connection_number, False, data)

    def dataReceived(self, data: bytes) -> None:
        self._record(data)
        super().dataReceived(data)  # type: ignore[no-untyped-call]

    def connectionLost(self, reason: Any = None) -> None:
        self._record(b"")
        super().connectionLost(reason)  # type: ignore[no-untyped-call]


class _RecordingClientFactory(portforward.ProxyClientFactory):
    protocol = _RecordingClient


class _RecordingServer(portforward.ProxyServer):
    """The client-facing half: records what the client sends."""

    clientProtocolFactory = _RecordingClientFactory

    @property
    def relay(self) -> RecordingRelay:
        return cast(_RelayFactory, self.factory).relay

    def connectionMade(self) -> None:
        self.connection_number = self.relay.open_connection()
        super().connectionMade()

    def dataReceived(self, data: bytes) -> None:
        self.relay.record(self.connection_number, True, data)
        super().dataReceived(data)  # type: ignore[no-untyped-call]

    def connectionLost(self, reason: Any = None) -> None:
        self.relay.record(self.connection_number, True, b"")
        super().connectionLost(reason)  # type: ignore[no-untyped-call]


class RecordingRelay:
    """A TCP relay on 127.0.0.1 in front of the gateway that keeps every byte it forwards."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.chunks: list[Chunk] = []
        self._connections = 0
        self._closed: set[tuple[int, bool]] = set()
        self._waiting: list[tuple[int, defer.Deferred[None]]] = []
        factory = _RelayFactory(target, self)
        factory.protocol = _RecordingServer
        self._port: Any = _reactor.listenTCP(0, factory, interface="127.0.0.1")

    @property
    def address(self) -> tuple[str, int]:
        host = self._port.getHost()
        return str(host.host), int(host.port)

    def open_connection(self) -> int:
        self._connections += 1
        return self._connections

    def record(self, connection: int, from_client: bool, data: bytes) -> None:
        if not data:
            if (connection, from_client) in self._closed:
                return
            self._closed.add((connection, from_client))
        self.chunks.append(Chunk(connection=connection, from_client=from_client, data=data))
        self._wake()

    def closed(self, connections: int) -> defer.Deferred[None]:
        """Fires once ``connections`` connections were closed on both sides."""
        waiter: defer.Deferred[None] = defer.Deferred()
        self._waiting.append((connections, waiter))
        self._wake()
        return waiter

    def _wake(self) -> None:
        both = sum(
            1
            for number in range(1, self._connections + 1)
            if (number, True) in self._closed and (number, False) in self._closed
        )
        for entry in list(self._waiting):
            if both >= entry[0]:
                self._waiting.remove(entry)
                entry[1].callback(None)

    def stop(self) -> defer.Deferred[None]:
        """A Deferred that fires when the relay no longer listens."""
        return cast(defer.Deferred[None], self._port.stopListening())


# -- pcap with hand-built framing -------------------------------------------------------------

_LOOPBACK: Final = bytes([127, 0, 0, 1])
_CLIENT_MAC: Final = bytes.fromhex("020000000001")
_SERVER_MAC: Final = bytes.fromhex("020000000002")
_MSS: Final = 1460  # so that larger PDUs cross segments and the dissector must reassemble them
_FIN, _SYN, _PSH, _ACK = 0x01, 0x02, 0x08, 0x10
_EPOCH: Final = 1_700_000_000  # fixed timestamps: the file is the same on every run


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class _Flow:
    """One TCP connection's numbering while its packets are written."""

    def __init__(self, client_port: int, server_port: int, isn: int) -> None:
        self.ports = {True: (client_port, server_port), False: (server_port, client_port)}
        self.next_seq = {True: isn, False: isn + 0x1000_0000}


class PcapWriter:
    """Ethernet/IPv4/TCP packets in the classic libpcap format (linktype 1)."""

    def __init__(self) -> None:
        self._records: list[bytes] = []
        self._ip_id = 0

    def packet(self, flow: _Flow, from_client: bool, flags: int, payload: bytes = b"") -> None:
        source_port, destination_port = flow.ports[from_client]
        seq = flow.next_seq[from_client]
        ack = flow.next_seq[not from_client] if flags & _ACK else 0
        pseudo_length = 20 + len(payload)
        header = struct.pack(
            "!HHIIBBHHH", source_port, destination_port, seq, ack, 5 << 4, flags, 65535, 0, 0
        )
        pseudo = _LOOPBACK + _LOOPBACK + struct.pack("!BBH", 0, 6, pseudo_length)
        checksum = _checksum(pseudo + header + payload)
        tcp = header[:16] + struct.pack("!H", checksum) + header[18:] + payload
        self._ip_id = (self._ip_id + 1) & 0xFFFF
        ip = struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(tcp),
            self._ip_id,
            0x4000,
            64,
            6,
            0,
            _LOOPBACK,
            _LOOPBACK,
        )
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        macs = (_SERVER_MAC + _CLIENT_MAC) if from_client else (_CLIENT_MAC + _SERVER_MAC)
        frame = macs + b"\x08\x00" + ip + tcp
        when = len(self._records)  # one millisecond per packet
        self._records.append(
            struct.pack(
                "!IIII", _EPOCH + when // 1000, (when % 1000) * 1000, len(frame), len(frame)
            )
            + frame
        )
        advance = len(payload) + (1 if flags & (_SYN | _FIN) else 0)
        flow.next_seq[from_client] = (seq + advance) & 0xFFFF_FFFF

    def data(self, flow: _Flow, from_client: bool, data: bytes) -> None:
        for start in range(0, len(data), _MSS):
            self.packet(flow, from_client, _PSH | _ACK, data[start : start + _MSS])
            self.packet(flow, not from_client, _ACK)

    def to_bytes(self) -> bytes:
        header = struct.pack("!IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
        return header + b"".join(self._records)


def pcap_of(chunks: Iterable[Chunk], *, server_port: int) -> bytes:
    """The recorded connections as a capture: handshake, data, and the closes as seen."""
    writer = PcapWriter()
    flows: dict[int, _Flow] = {}
    finished: dict[int, set[bool]] = {}
    for chunk in chunks:
        flow = flows.get(chunk.connection)
        if flow is None:
            flow = flows[chunk.connection] = _Flow(
                40000 + chunk.connection, server_port, 0x1000 * chunk.connection
            )
            finished[chunk.connection] = set()
            writer.packet(flow, True, _SYN)
            writer.packet(flow, False, _SYN | _ACK)
            writer.packet(flow, True, _ACK)
        if chunk.data:
            writer.data(flow, chunk.from_client, chunk.data)
        elif chunk.from_client not in finished[chunk.connection]:
            finished[chunk.connection].add(chunk.from_client)
            writer.packet(flow, chunk.from_client, _FIN | _ACK)
            writer.packet(flow, not chunk.from_client, _ACK)
    for number, flow in flows.items():
        for side in (False, True):
            if side not in finished[number]:
                writer.packet(flow, side, _FIN | _ACK)
                writer.packet(flow, not side, _ACK)
    return writer.to_bytes()
