"""Micro-benchmark of the SMPP 3.4 codec (gateway/pdu.py); issue 2 target: encode+decode of a
~100-octet submit_sm with USSD TLVs in at most 5 µs.

Run ``python bench/codec.py`` (the project's venv). Each figure is µs per PDU: the median
(and the best) of several ``timeit`` repeats of a loop over a list of PDUs. "warm" repeats
one PDU, so its TLV section is served from the codec's section cache; "cold" gives every
PDU its own its_session_info, so the cache misses (its worst case).
"""

from __future__ import annotations

import platform
import statistics
import sys
import timeit
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway import pdu as P
from gateway.pdu import Tag, Tlv, UssdOp

REPEATS = 9
COUNT = 8192  # more than the TLV section cache holds, so "cold" really misses


def ussd_submit(session: int) -> P.SubmitSm:
    """A handset's USSD request as GW-10 describes it: 100 octets on the wire."""
    return P.SubmitSm(
        sequence=0x01020304,
        service_type="USSD",
        source_addr_ton=P.Ton.INTERNATIONAL,
        source_addr_npi=P.Npi.ISDN,
        source_addr="79161234567",
        destination_addr="*434#",
        short_message=b"*434*1*79161234567*79167654321*12#",
        tlvs=(
            Tlv.u8(Tag.USSD_SERVICE_OP, UssdOp.PSSR_INDICATION),
            Tlv.u16(Tag.ITS_SESSION_INFO, session),
        ),
    )


def menu_deliver(session: int) -> P.DeliverSm:
    """The simulator's menu answer (USSR request) echoing its_session_info."""
    return P.DeliverSm(
        sequence=0x0A0B0C0D,
        service_type="USSD",
        source_addr="434",
        dest_addr_ton=P.Ton.INTERNATIONAL,
        dest_addr_npi=P.Npi.ISDN,
        destination_addr="79161234567",
        short_message=b"1 Invite\n2 Manage\n3 Info\n0 Back",
        tlvs=(
            Tlv.u8(Tag.USSD_SERVICE_OP, UssdOp.USSR_REQUEST),
            Tlv.u16(Tag.ITS_SESSION_INFO, session),
        ),
    )


def per_item(run: Callable[[], Any], n: int) -> tuple[float, float]:
    """(median, best) µs per item of ``run``, which handles ``n`` items."""
    times = timeit.repeat(run, number=1, repeat=REPEATS)
    return statistics.median(times) / n * 1e6, min(times) / n * 1e6


def measure(pdus: Sequence[Any]) -> dict[str, tuple[float, float]]:
    wires = [P.encode(p) for p in pdus]
    encode, decode = P.encode, P.decode

    def run_encode() -> None:
        for p in pdus:
            encode(p)

    def run_decode() -> None:
        for w in wires:
            decode(w)

    def run_both() -> None:
        for p in pdus:
            decode(encode(p))

    n = len(pdus)
    return {
        "encode": per_item(run_encode, n),
        "decode": per_item(run_decode, n),
        "encode+decode": per_item(run_both, n),
    }


def main() -> None:
    cases: list[tuple[str, list[Any]]] = [
        ("submit_sm + USSD TLVs, warm", [ussd_submit(0x1234)] * COUNT),
        ("submit_sm + USSD TLVs, cold", [ussd_submit(i) for i in range(COUNT)]),
        ("deliver_sm + USSD TLVs, warm", [menu_deliver(0x1234)] * COUNT),
        ("deliver_sm + USSD TLVs, cold", [menu_deliver(i) for i in range(COUNT)]),
        (
            "deliver_sm, plain SMS",
            [
                P.DeliverSm(
                    sequence=7,
                    source_addr="79161234567",
                    destination_addr="79169876543",
                    short_message=b"Hello there",
                )
            ]
            * COUNT,
        ),
        ("submit_sm_resp", [P.SubmitSmResp(sequence=7, message_id="0000A1B2")] * COUNT),
        ("enquire_link", [P.EnquireLink(sequence=7)] * COUNT),
    ]
    print(f"ussdsim codec benchmark — Python {platform.python_version()}, {platform.machine()}")
    print(f"µs per PDU, median (best) of {REPEATS} runs over {COUNT} PDUs\n")
    print(f"{'PDU':32s} {'octets':>6s} {'encode':>15s} {'decode':>15s} {'encode+decode':>15s}")
    for name, pdus in cases:
        result = measure(pdus)
        cells = " ".join(f"{m:7.2f} ({b:5.2f})" for m, b in result.values())
        print(f"{name:32s} {len(P.encode(pdus[0])):6d} {cells}")

    stream = P.PduStream()
    wire = P.encode(ussd_submit(0x1234))

    def run_stream() -> None:
        for _ in range(COUNT):
            stream.feed(wire)

    median, best = per_item(run_stream, COUNT)
    print(f"\nPduStream.feed of one whole submit_sm per chunk: {median:.2f} ({best:.2f}) µs")
    request = ussd_submit(0x1234)

    def run_response() -> None:
        for _ in range(COUNT):
            request.response(message_id="0000A1B2")

    median, best = per_item(run_response, COUNT)
    print(f"submit_sm.response(message_id=...):              {median:.2f} ({best:.2f}) µs")
    print("\ntarget (issue 2): encode+decode of the USSD submit_sm <= 5 µs")


if __name__ == "__main__":
    main()
