"""Wireshark's SMPP dissector (Debian ``tshark``) as an independent judge of our bytes
(issue 8 item 3): a whole session through a recording relay — binds, a USSD dial and its
answer, a long UCS2 SMS in UDH parts, delivery receipts, unbinds — is written to a pcap and
every PDU must decode as SMPP with the right command ids and decoded TLVs, without one
malformed packet or expert warning (GW-01, GW-02, GW-06, GW-07, GW-09, GW-10)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import pytest

from gateway.app import Gateway
from gateway.client import Received, SmppClient
from tests.e2e.interop import (
    LONG_CYRILLIC,
    PSSR_INDICATION,
    PSSR_RESPONSE,
    STRANGER_A,
    STRANGER_B,
    UNKNOWN_USSD,
    RecordingRelay,
    bounded,
    off_reactor,
    pcap_of,
    reactor_test,
    require_tool,
    run_bounded,
)

pytestmark = [pytest.mark.e2e, pytest.mark.interop]

ITS_SESSION_INFO = 0x1234  # session number 0x12, sequence 0x1a, end bit clear
TSHARK_TIMEOUT = 60.0

#: SMPP 3.4 §5.3.2 fixed TLV value sizes. Wireshark reads these values by their type and
#: silently tolerates a wrong length field, so the lengths are checked here.
FIXED_TLV_SIZES = {
    "0x0204": 2,  # user_message_reference
    "0x020c": 2,  # sar_msg_ref_num
    "0x020e": 1,  # sar_total_segments
    "0x020f": 1,  # sar_segment_seqnum
    "0x0427": 1,  # message_state
    "0x0501": 1,  # ussd_service_op
    "0x1383": 2,  # its_session_info
}

# SMPP 3.4 §5.1.2 command ids, spelled as tshark prints them.
BIND_TRX, BIND_TRX_RESP = "0x00000009", "0x80000009"
SUBMIT, SUBMIT_RESP = "0x00000004", "0x80000004"
DELIVER, DELIVER_RESP = "0x00000005", "0x80000005"
UNBIND, UNBIND_RESP = "0x00000006", "0x80000006"


@attrs.frozen(kw_only=True)
class Pdu:
    """One SMPP PDU as tshark decoded it: its TCP stream, direction and every field shown."""

    stream: int
    from_client: bool
    fields: dict[str, list[str]]

    def first(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None


def ucs2_parts(text: str) -> list[bytes]:
    """The text as UCS2 parts behind an 8-bit concatenation UDH (reference 0x2A)."""
    units = text.encode("utf-16-be")
    chunks = [units[i : i + 134] for i in range(0, len(units), 134)]
    return [bytes([5, 0, 3, 0x2A, len(chunks), n + 1]) + c for n, c in enumerate(chunks)]


def play_session(address: tuple[str, int]) -> dict[str, Any]:
    """A handset dials, then sends a long SMS to another ESME's subscriber with receipts."""
    host, port = address
    parts = ucs2_parts(LONG_CYRILLIC)
    with (
        SmppClient(host, port, address_range=STRANGER_A, timeout=5) as a,
        SmppClient(
            host, port, system_id="other", password="other", address_range=STRANGER_B, timeout=5
        ) as b,
    ):
        screen = a.dial(STRANGER_A, UNKNOWN_USSD, its_session_info=ITS_SESSION_INFO)
        ids = [
            a.submit(
                STRANGER_A, STRANGER_B, part, data_coding=8, esm_class=0x40, registered_delivery=1
            )
            for part in parts
        ]
        delivered: list[Received] = [
            b.wait_for(lambda r: r.destination == STRANGER_B) for _ in parts
        ]
        receipts = [a.wait_for(lambda r: r.is_receipt) for _ in parts]
    return {"screen": screen, "ids": ids, "delivered": delivered, "receipts": receipts}


def decoded_pdus(pdml: str, server_port: int) -> tuple[list[Pdu], dict[tuple[int, bool], int]]:
    """Every SMPP PDU tshark found, and the TCP payload bytes per (stream, direction).

    A PDU's fields include those of the protocols dissected inside it (``gsm_sms_ud`` for a
    short_message with a UDH), which PDML lists right after it.
    """
    pdus: list[Pdu] = []
    payload: Counter[tuple[int, bool]] = Counter()
    for packet in ET.fromstring(pdml).iter("packet"):
        tcp = packet.find("proto[@name='tcp']")
        assert tcp is not None
        shown = {f.get("name"): f.get("show") for f in tcp.iter("field")}
        stream = int(shown["tcp.stream"] or 0)
        from_client = int(shown["tcp.dstport"] or 0) == server_port
        payload[stream, from_client] += int(shown["tcp.len"] or 0)
        fields: dict[str, list[str]] | None = None
        for proto in packet.findall("proto"):
            if proto.get("name") == "smpp":
                fields = {}
                pdus.append(Pdu(stream=stream, from_client=from_client, fields=fields))
            elif fields is None:
                continue  # frame, eth, ip, tcp
            for field in proto.iter("field"):
                fields.setdefault(field.get("name") or "", []).append(field.get("show") or "")
    return pdus, dict(payload)


@reactor_test
async def test_gw_01_gw_07_gw_09_gw_10_tshark_decodes_every_pdu_of_a_session(
    gateway: Gateway, tmp_path: Path
) -> None:
    """GW-01, GW-02, GW-06, GW-07, GW-09, GW-10: tshark decodes every PDU, TLVs included."""
    require_tool(["tshark", "--version"], package="tshark")
    relay = RecordingRelay(gateway.smpp_address)
    try:
        result = await off_reactor(play_session, relay.address)
        await bounded(relay.closed(2), 10)
    finally:
        await bounded(relay.stop(), 10)
    assert result["screen"].ussd_service_op == PSSR_RESPONSE
    server_port = gateway.smpp_address[1]
    capture = tmp_path / "session.pcap"
    capture.write_bytes(pcap_of(relay.chunks, server_port=server_port))
    decode_as = ["-d", f"tcp.port=={server_port},smpp"]

    done = await off_reactor(
        run_bounded,
        ["tshark", "-n", "-r", str(capture), *decode_as, "-T", "pdml"],
        TSHARK_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    pdus, payload = decoded_pdus(done.stdout, server_port)

    # Every byte on the wire belongs to a PDU tshark decoded as SMPP.
    lengths: Counter[tuple[int, bool]] = Counter()
    for pdu in pdus:
        lengths[pdu.stream, pdu.from_client] += int(pdu.first("smpp.command_length") or 0)
    assert lengths == Counter(payload), (lengths, payload)
    assert all(len(pdu.fields["smpp.command_id"]) == 1 for pdu in pdus)

    streams = {pdu.stream for pdu in pdus}
    assert len(streams) == 2
    (a_stream,) = {p.stream for p in pdus if p.from_client and p.first("smpp.command_id") == SUBMIT}
    a = [p for p in pdus if p.stream == a_stream]
    b = [p for p in pdus if p.stream != a_stream]
    commands = Counter((p.from_client, p.first("smpp.command_id")) for p in a)
    assert commands == Counter(
        {
            (True, BIND_TRX): 1,
            (False, BIND_TRX_RESP): 1,
            (True, SUBMIT): 6,
            (False, SUBMIT_RESP): 6,
            (False, DELIVER): 6,
            (True, DELIVER_RESP): 6,
            (True, UNBIND): 1,
            (False, UNBIND_RESP): 1,
        }
    )
    assert Counter((p.from_client, p.first("smpp.command_id")) for p in b) == Counter(
        {
            (True, BIND_TRX): 1,
            (False, BIND_TRX_RESP): 1,
            (False, DELIVER): 5,
            (True, DELIVER_RESP): 5,
            (True, UNBIND): 1,
            (False, UNBIND_RESP): 1,
        }
    )
    for side in (a, b):
        assert side[0].first("smpp.command_id") == BIND_TRX
        assert side[-1].first("smpp.command_id") == UNBIND_RESP
        # tshark shows a status on responses only; every one of ours is ESME_ROK.
        responses = [p for p in side if int(p.first("smpp.command_id") or "0", 16) >> 31]
        assert {p.first("smpp.command_status") for p in responses} == {"0x00000000"}

    # Every TLV of a fixed size says so in its length field.
    for pdu in pdus:
        tags = [t.lower() for t in pdu.fields.get("smpp.opt_param_tag", [])]
        sizes = [int(n) for n in pdu.fields.get("smpp.opt_param_len", [])]
        assert len(tags) == len(sizes)
        for tag, size in zip(tags, sizes, strict=True):
            assert FIXED_TLV_SIZES.get(tag, size) == size, (tag, size, pdu.fields)

    # GW-10: the USSD TLVs decode by name in both directions.
    dial = [p for p in a if p.first("smpp.ussd_service_op") is not None and p.from_client]
    answer = [p for p in a if p.first("smpp.ussd_service_op") is not None and not p.from_client]
    assert [p.first("smpp.ussd_service_op") for p in dial] == [str(PSSR_INDICATION)]
    assert [p.first("smpp.ussd_service_op") for p in answer] == [str(PSSR_RESPONSE)]
    assert answer[0].first("smpp.command_id") == DELIVER
    assert answer[0].first("smpp.its_session.number") == "18"  # 0x12, echoed
    assert answer[0].first("smpp.its_session.sequence") == "0x1a"  # 0x34 >> 1
    assert answer[0].first("smpp.its_session.ind") == "0x00"
    assert answer[0].first("smpp.service_type") == "USSD"

    # GW-09: the five UCS2 parts keep their concatenation UDH on the way to B.
    parts = [p for p in b if p.first("smpp.command_id") == DELIVER]
    assert [p.first("smpp.data_coding") for p in parts] == ["0x08"] * 5
    assert sorted(p.first("gsm_sms.udh.mm.msg_part") or "" for p in parts) == list("12345")
    assert {p.first("gsm_sms.udh.mm.msg_parts") for p in parts} == {"5"}
    ordered = sorted(parts, key=lambda p: p.first("gsm_sms.udh.mm.msg_part") or "")
    assert "".join(p.first("smpp.message_text") or "" for p in ordered) == LONG_CYRILLIC

    # GW-07: receipts carry receipted_message_id and message_state DELIVERED as TLVs.
    receipts = [
        p
        for p in a
        if p.first("smpp.command_id") == DELIVER and p.first("smpp.receipted_message_id")
    ]
    assert sorted(p.first("smpp.receipted_message_id") or "" for p in receipts) == sorted(
        result["ids"]
    )
    assert {p.first("smpp.message_state") for p in receipts} == {"2"}

    expert = await off_reactor(
        run_bounded,
        ["tshark", "-n", "-r", str(capture), *decode_as, "-q", "-z", "expert"],
        TSHARK_TIMEOUT,
    )
    assert expert.returncode == 0, expert.stderr
    report = expert.stdout
    assert "Errors (" not in report and "Warns (" not in report, report
    assert "Malformed" not in report, report
