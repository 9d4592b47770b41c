"""Examples for the SMPP 3.4 codec (gateway/pdu.py): malformed input and its status (GW-03),
the USSD TLVs (GW-10), framing, construction checks and interoperability with smpplib."""

from __future__ import annotations

import copy
import pickle
import struct
from typing import Any

import attrs
import pytest
import smpplib.consts
import smpplib.smpp

from gateway import pdu as P
from gateway.pdu import CommandId, CommandStatus, Tag, Tlv, UssdOp

# -- raw PDU builders (independent of the codec under test) --------------------------------


def raw(command_id: int, body: bytes = b"", *, status: int = 0, sequence: int = 42) -> bytes:
    """A PDU with a correct header around ``body``."""
    return struct.pack(">IIII", 16 + len(body), command_id, status, sequence) + body


def tlv(tag: int, value: bytes, length: int | None = None) -> bytes:
    """One TLV; ``length`` overrides the length field to build broken ones."""
    return struct.pack(">HH", tag, len(value) if length is None else length) + value


def sm_body(
    *,
    service_type: bytes = b"USSD\0",
    source: bytes = b"\x01\x0179161234567\0",
    dest: bytes = b"\x00\x00*434#\0",
    flags: bytes = b"\x00\x00\x00",
    times: bytes = b"\0\0",
    more: bytes = b"\x00\x00\x00\x00",
    short_message: bytes = b"*434#",
    sm_length: int | None = None,
    tlvs: bytes = b"",
) -> bytes:
    """A submit_sm/deliver_sm body built field by field, each replaceable."""
    length = len(short_message) if sm_length is None else sm_length
    return (
        service_type
        + source
        + dest
        + flags
        + times
        + more
        + bytes((length,))
        + short_message
        + tlvs
    )


SUBMIT = CommandId.SUBMIT_SM
BIND_TRX = CommandId.BIND_TRANSCEIVER


def bind_body(
    system_id: bytes = b"esme\0",
    password: bytes = b"secret\0",
    system_type: bytes = b"\0",
    rest: bytes = b"\x34\x00\x00",
    address_range: bytes = b"\0",
) -> bytes:
    return system_id + password + system_type + rest + address_range


# -- malformed input: one specific status each (GW-03) ------------------------------------

MALFORMED: list[tuple[str, bytes, type[P.PduError]]] = [
    ("fewer than 16 octets", b"\x00\x00\x00\x10\x00\x00", P.InvalidCommandLength),
    (
        "command_length not the length given",
        raw(CommandId.ENQUIRE_LINK) + b"\x00",
        P.InvalidCommandLength,
    ),
    ("unknown command_id", raw(0x00000099), P.InvalidCommandId),
    ("resp of an unknown command", raw(0x80000099), P.InvalidCommandId),
    ("enquire_link with a body", raw(CommandId.ENQUIRE_LINK, b"\x00"), P.InvalidCommandLength),
    ("generic_nack with a body", raw(CommandId.GENERIC_NACK, b"xx"), P.InvalidCommandLength),
    ("submit_sm with no body", raw(SUBMIT), P.InvalidCommandLength),
    ("submit_sm truncated after service_type", raw(SUBMIT, b"USSD\0"), P.InvalidCommandLength),
    (
        "submit_sm truncated before sm_length",
        raw(SUBMIT, sm_body()[: len(sm_body()) - 6]),
        P.InvalidCommandLength,
    ),
    ("unterminated service_type", raw(SUBMIT, b"USS"), P.InvalidServiceType),
    ("overlong service_type", raw(SUBMIT, sm_body(service_type=b"USSDXX\0")), P.InvalidServiceType),
    (
        "unterminated source_addr",
        raw(SUBMIT, b"USSD\0\x01\x0179161234567"),
        P.InvalidSourceAddress,
    ),
    (
        "overlong source_addr (21 characters)",
        raw(SUBMIT, sm_body(source=b"\x01\x01" + b"7" * 21 + b"\0")),
        P.InvalidSourceAddress,
    ),
    (
        "overlong destination_addr (21 characters)",
        raw(SUBMIT, sm_body(dest=b"\x00\x00" + b"1" * 21 + b"\0")),
        P.InvalidDestinationAddress,
    ),
    (
        "unterminated destination_addr",
        raw(SUBMIT, b"USSD\0\x01\x01791\0\x00\x00*434#"),
        P.InvalidDestinationAddress,
    ),
    ("source_addr_ton 7", raw(SUBMIT, sm_body(source=b"\x07\x01791\0")), P.InvalidSourceTon),
    ("source_addr_npi 2", raw(SUBMIT, sm_body(source=b"\x01\x02791\0")), P.InvalidSourceNpi),
    ("dest_addr_ton 9", raw(SUBMIT, sm_body(dest=b"\x09\x00125\0")), P.InvalidDestinationTon),
    ("dest_addr_npi 5", raw(SUBMIT, sm_body(dest=b"\x00\x05125\0")), P.InvalidDestinationNpi),
    (
        "esm_class with reserved message type 0b0011",
        raw(SUBMIT, sm_body(flags=b"\x0c\x00\x00")),
        P.InvalidEsmClass,
    ),
    ("priority_flag 4", raw(SUBMIT, sm_body(flags=b"\x00\x00\x04")), P.InvalidPriorityFlag),
    (
        "schedule_delivery_time of 5 characters",
        raw(SUBMIT, sm_body(times=b"12345\0\0")),
        P.InvalidScheduleDeliveryTime,
    ),
    (
        "validity_period with a bad last character",
        raw(SUBMIT, sm_body(times=b"\0" + b"000001000000000X\0")),
        P.InvalidValidityPeriod,
    ),
    (
        "registered_delivery 0x20 (reserved bit)",
        raw(SUBMIT, sm_body(more=b"\x20\x00\x00\x00")),
        P.InvalidRegisteredDelivery,
    ),
    (
        "registered_delivery 3 in bits 1-0",
        raw(SUBMIT, sm_body(more=b"\x03\x00\x00\x00")),
        P.InvalidRegisteredDelivery,
    ),
    (
        "replace_if_present_flag 2",
        raw(SUBMIT, sm_body(more=b"\x00\x02\x00\x00")),
        P.InvalidReplaceIfPresentFlag,
    ),
    (
        "sm_default_msg_id 255",
        raw(SUBMIT, sm_body(more=b"\x00\x00\x00\xff")),
        P.InvalidDefaultMessageId,
    ),
    ("sm_length past the end", raw(SUBMIT, sm_body(sm_length=9)), P.InvalidMessageLength),
    (
        "sm_length 255",
        raw(SUBMIT, sm_body(short_message=b"x" * 255, sm_length=255)),
        P.InvalidMessageLength,
    ),
    (
        "TLV length past the end",
        raw(SUBMIT, sm_body(tlvs=tlv(Tag.USSD_SERVICE_OP, b"\x01", length=5))),
        P.InvalidTlvStream,
    ),
    ("partial TLV header", raw(SUBMIT, sm_body(tlvs=b"\x05\x01")), P.InvalidTlvStream),
    (
        "ussd_service_op of 2 octets",
        raw(SUBMIT, sm_body(tlvs=tlv(Tag.USSD_SERVICE_OP, b"\x00\x01"))),
        P.InvalidTlvLength,
    ),
    (
        "its_session_info of 1 octet",
        raw(SUBMIT, sm_body(tlvs=tlv(Tag.ITS_SESSION_INFO, b"\x01"))),
        P.InvalidTlvLength,
    ),
    (
        "network_error_code of 2 octets",
        raw(CommandId.DELIVER_SM, sm_body(tlvs=tlv(Tag.NETWORK_ERROR_CODE, b"\x03\x00"))),
        P.InvalidTlvLength,
    ),
    (
        "receipted_message_id without its NUL",
        raw(CommandId.DELIVER_SM, sm_body(tlvs=tlv(Tag.RECEIPTED_MESSAGE_ID, b"abc"))),
        P.InvalidTlvValue,
    ),
    (
        "sar_segment_seqnum 0",
        raw(SUBMIT, sm_body(tlvs=tlv(Tag.SAR_SEGMENT_SEQNUM, b"\x00"))),
        P.InvalidTlvValue,
    ),
    (
        "short_message and message_payload together",
        raw(SUBMIT, sm_body(tlvs=tlv(Tag.MESSAGE_PAYLOAD, b"long text"))),
        P.InvalidMessageLength,
    ),
    (
        "bind system_id of 16 characters",
        raw(BIND_TRX, bind_body(system_id=b"s" * 16 + b"\0")),
        P.InvalidSystemId,
    ),
    (
        "bind password of 9 characters",
        raw(BIND_TRX, bind_body(password=b"p" * 9 + b"\0")),
        P.InvalidPassword,
    ),
    (
        "bind system_type of 13 characters",
        raw(BIND_TRX, bind_body(system_type=b"t" * 13 + b"\0")),
        P.InvalidSystemType,
    ),
    (
        "bind address_range of 41 characters",
        raw(BIND_TRX, bind_body(address_range=b"7" * 41 + b"\0")),
        P.InvalidAddressRange,
    ),
    (
        "bind with octets after the last field",
        raw(BIND_TRX, bind_body() + b"\x00"),
        P.InvalidCommandLength,
    ),
    (
        "submit_sm_resp message_id of 65 characters",
        raw(CommandId.SUBMIT_SM_RESP, b"m" * 65 + b"\0"),
        P.InvalidMessageId,
    ),
    (
        "submit_sm_resp without body but status 0",
        raw(CommandId.SUBMIT_SM_RESP),
        P.InvalidCommandLength,
    ),
    (
        "submit_multi with 0 destinations",
        raw(CommandId.SUBMIT_MULTI, b"\0\x01\x01791\0\x00" + b"\x00" * 12),
        P.InvalidNumberOfDestinations,
    ),
    (
        "submit_multi dest_flag 3",
        raw(CommandId.SUBMIT_MULTI, b"\0\x01\x01791\0\x01\x03\x00\x00125\0" + b"\x00" * 12),
        P.InvalidDestFlag,
    ),
    (
        "submit_multi dl_name of 21 characters",
        raw(CommandId.SUBMIT_MULTI, b"\0\x01\x01791\0\x01\x02" + b"d" * 21 + b"\0"),
        P.InvalidDistributionListName,
    ),
    (
        "data_sm source_addr of 65 characters",
        raw(CommandId.DATA_SM, b"\0\x01\x01" + b"7" * 65 + b"\0\x00\x00125\0\x00\x00\x00"),
        P.InvalidSourceAddress,
    ),
    (
        "query_sm_resp with a bad final_date",
        raw(CommandId.QUERY_SM_RESP, b"id\0tomorrow\0\x02\x00"),
        P.InvalidFinalDate,
    ),
    (
        "replace_sm with octets after short_message (3.4 gives it no TLVs)",
        raw(
            CommandId.REPLACE_SM,
            b"id\0\x01\x01791\0\0\0\x00\x00\x02hi" + tlv(Tag.USSD_SERVICE_OP, b"\x01"),
        ),
        P.InvalidCommandLength,
    ),
]

EXPECTED_STATUS: dict[type[P.PduError], CommandStatus] = {
    P.InvalidCommandLength: CommandStatus.ESME_RINVCMDLEN,
    P.InvalidCommandId: CommandStatus.ESME_RINVCMDID,
    P.InvalidServiceType: CommandStatus.ESME_RINVSERTYP,
    P.InvalidSourceAddress: CommandStatus.ESME_RINVSRCADR,
    P.InvalidDestinationAddress: CommandStatus.ESME_RINVDSTADR,
    P.InvalidSourceTon: CommandStatus.ESME_RINVSRCTON,
    P.InvalidSourceNpi: CommandStatus.ESME_RINVSRCNPI,
    P.InvalidDestinationTon: CommandStatus.ESME_RINVDSTTON,
    P.InvalidDestinationNpi: CommandStatus.ESME_RINVDSTNPI,
    P.InvalidEsmClass: CommandStatus.ESME_RINVESMCLASS,
    P.InvalidPriorityFlag: CommandStatus.ESME_RINVPRTFLG,
    P.InvalidScheduleDeliveryTime: CommandStatus.ESME_RINVSCHED,
    P.InvalidValidityPeriod: CommandStatus.ESME_RINVEXPIRY,
    P.InvalidRegisteredDelivery: CommandStatus.ESME_RINVREGDLVFLG,
    P.InvalidReplaceIfPresentFlag: CommandStatus.ESME_RINVREPFLAG,
    P.InvalidDefaultMessageId: CommandStatus.ESME_RINVDFTMSGID,
    P.InvalidMessageLength: CommandStatus.ESME_RINVMSGLEN,
    P.InvalidTlvStream: CommandStatus.ESME_RINVOPTPARSTREAM,
    P.InvalidTlvLength: CommandStatus.ESME_RINVPARLEN,
    P.InvalidTlvValue: CommandStatus.ESME_RINVOPTPARAMVAL,
    P.InvalidSystemId: CommandStatus.ESME_RINVSYSID,
    P.InvalidPassword: CommandStatus.ESME_RINVPASWD,
    P.InvalidSystemType: CommandStatus.ESME_RINVSYSTYP,
    P.InvalidAddressRange: CommandStatus.ESME_RBINDFAIL,
    P.InvalidMessageId: CommandStatus.ESME_RINVMSGID,
    P.InvalidNumberOfDestinations: CommandStatus.ESME_RINVNUMDESTS,
    P.InvalidDestFlag: CommandStatus.ESME_RINVDESTFLAG,
    P.InvalidDistributionListName: CommandStatus.ESME_RINVDLNAME,
    P.InvalidFinalDate: CommandStatus.ESME_RQUERYFAIL,
}


@pytest.mark.parametrize(
    ("data", "error"), [(d, e) for _, d, e in MALFORMED], ids=[n for n, _, _ in MALFORMED]
)
def test_gw_03_malformed_pdu_maps_to_its_specific_status(
    data: bytes, error: type[P.PduError]
) -> None:
    """Each malformed PDU raises its own error class carrying its own ESME_R* status."""
    with pytest.raises(P.PduError) as caught:
        P.decode(data)
    assert type(caught.value) is error
    assert caught.value.status == EXPECTED_STATUS[error]
    assert caught.value.fatal is False
    if len(data) >= 16:
        assert caught.value.command_id == struct.unpack(">I", data[4:8])[0]
        assert caught.value.sequence == 42


def _body_level(data: bytes) -> bool:
    """True when the header is sound, so a body decoder runs."""
    return (
        len(data) >= 16
        and struct.unpack(">I", data[:4])[0] == len(data)
        and struct.unpack(">I", data[4:8])[0] in P.PDU_CLASSES
    )


BODY_LEVEL = [(name, data) for name, data, _ in MALFORMED if _body_level(data)]


@pytest.mark.parametrize("data", [d for _, d in BODY_LEVEL], ids=[n for n, _ in BODY_LEVEL])
def test_gw_03_fast_and_generic_decoders_raise_the_same_error(data: bytes) -> None:
    """The fast paths (submit_sm, resps) fall back to the generic decoder's exact error."""
    with pytest.raises(P.PduError) as fast:
        P.decode(data)
    with pytest.raises(P.PduError) as generic:
        P._decode_generic(data)
    assert type(fast.value) is type(generic.value)


def test_gw_03_unknown_command_id_keeps_the_sequence_for_generic_nack() -> None:
    """An unknown command_id gives RINVCMDID with command_id and sequence for the nack."""
    with pytest.raises(P.InvalidCommandId) as caught:
        P.decode(raw(0x00000042, b"whatever", sequence=0x1234))
    assert caught.value.status is CommandStatus.ESME_RINVCMDID
    assert (caught.value.command_id, caught.value.sequence) == (0x42, 0x1234)
    assert "ESME_RINVCMDID" in str(caught.value) and "sequence=4660" in str(caught.value)


def test_gw_03_resp_with_error_status_may_have_no_body() -> None:
    """§4.4.2: submit_sm_resp with a non-zero status comes without a body, both ways."""
    refused = P.SubmitSmResp(sequence=7, status=CommandStatus.ESME_RTHROTTLED)
    assert P.encode(refused) == raw(CommandId.SUBMIT_SM_RESP, status=0x58, sequence=7)
    assert P.decode(raw(CommandId.SUBMIT_SM_RESP, status=0x58, sequence=7)) == refused
    bind_refused = P.decode(raw(CommandId.BIND_TRANSCEIVER_RESP, status=0x0E))
    assert bind_refused == P.BindTransceiverResp(sequence=42, status=0x0E)
    with_body = P.SubmitSmResp(sequence=7, status=8, message_id="kept")
    assert P.decode(P.encode(with_body)) == with_body


# -- framing (GW-03) -----------------------------------------------------------------------


def test_gw_03_bad_command_length_is_fatal() -> None:
    """command_length under 16 ends the stream with a fatal error, after earlier PDUs."""
    stream = P.PduStream()
    good = P.encode(P.EnquireLink(sequence=1))
    items = stream.feed(good + struct.pack(">IIII", 12, CommandId.ENQUIRE_LINK, 0, 9))
    assert items[0] == P.EnquireLink(sequence=1)
    error = items[-1]
    assert isinstance(error, P.FramingError) and isinstance(error, P.InvalidCommandLength)
    assert error.fatal and error.status is CommandStatus.ESME_RINVCMDLEN
    assert (error.command_id, error.sequence) == (CommandId.ENQUIRE_LINK, 9)
    assert stream.closed
    assert stream.feed(good) == []


def test_gw_03_command_length_over_the_maximum_is_fatal_before_the_body_arrives() -> None:
    """Four octets announcing a PDU over the maximum are enough to stop buffering."""
    stream = P.PduStream(max_command_length=1024)
    items = stream.feed(struct.pack(">I", 1025))
    assert len(items) == 1 and isinstance(items[0], P.FramingError) and items[0].fatal
    assert stream.buffered == 0
    assert stream.feed(b"\x00" * 2000) == []


def test_gw_03_bad_body_is_reported_and_the_stream_goes_on() -> None:
    """A body that does not decode yields its error (with sequence); the next PDU follows."""
    stream = P.PduStream()
    bad = raw(SUBMIT, sm_body(source=b"\x01\x01" + b"7" * 30 + b"\0"), sequence=5)
    items = stream.feed(bad + P.encode(P.EnquireLink(sequence=6)))
    assert isinstance(items[0], P.InvalidSourceAddress)
    assert (items[0].command_id, items[0].sequence) == (SUBMIT, 5)
    assert items[1] == P.EnquireLink(sequence=6)
    assert not stream.closed


def test_gw_03_stream_reassembles_pdus_fed_one_octet_at_a_time() -> None:
    """PDUs split at every octet come out whole, in order, and nothing stays buffered."""
    pdus: list[P.Pdu] = [P.EnquireLink(sequence=1), P.SubmitSm(sequence=2, short_message=b"hi")]
    data = b"".join(P.encode(p) for p in pdus)
    stream = P.PduStream()
    out: list[Any] = []
    for i in range(len(data)):
        out.extend(stream.feed(data[i : i + 1]))
    assert out == pdus
    assert stream.buffered == 0


def test_gw_03_stream_never_buffers_more_than_one_pdu() -> None:
    """A peer trickling a maximum-size PDU makes the buffer grow to that size, no more."""
    stream = P.PduStream(max_command_length=300)
    body = sm_body(short_message=b"x" * 200)
    data = raw(SUBMIT, body)
    assert len(data) <= 300
    seen = 0
    for i in range(0, len(data), 7):
        stream.feed(data[i : i + 7])
        seen = max(seen, stream.buffered)
    assert seen < len(data) <= 300
    assert stream.buffered == 0


# -- USSD over SMPP (GW-10) ------------------------------------------------------------------


def test_gw_10_submit_sm_ussd_tlvs_are_read_by_name() -> None:
    """A handset's PSSR indication carries ussd_service_op 1 and its_session_info, typed."""
    data = raw(
        SUBMIT,
        sm_body(
            short_message=b"*434*1#",
            tlvs=tlv(Tag.USSD_SERVICE_OP, b"\x01") + tlv(Tag.ITS_SESSION_INFO, b"\x12\x35"),
        ),
    )
    pdu = P.decode(data)
    assert isinstance(pdu, P.SubmitSm)
    assert pdu.service_type == "USSD" and pdu.short_message == b"*434*1#"
    assert pdu.ussd_service_op == UssdOp.PSSR_INDICATION
    assert pdu.its_session_info == 0x1235
    assert pdu.tlv(Tag.ITS_SESSION_INFO) == b"\x12\x35"
    assert pdu.message_payload is None and pdu.receipted_message_id is None


def test_gw_10_deliver_sm_menu_encodes_ussr_request_and_echoes_its_session_info() -> None:
    """A menu (USSR request, op 2) with the session's its_session_info encodes as §5.3.2."""
    menu = P.DeliverSm(
        sequence=3,
        service_type="USSD",
        source_addr="434",
        dest_addr_ton=P.Ton.INTERNATIONAL,
        dest_addr_npi=P.Npi.ISDN,
        destination_addr="79161234567",
        short_message=b"1 Invite\n2 Manage",
        tlvs=(
            Tlv.u8(Tag.USSD_SERVICE_OP, UssdOp.USSR_REQUEST),
            Tlv.u16(Tag.ITS_SESSION_INFO, 0x1235),
        ),
    )
    data = P.encode(menu)
    assert data.endswith(b"\x05\x01\x00\x01\x02" + b"\x13\x83\x00\x02\x12\x35")
    assert P.decode(data) == menu
    assert P.decode(data).ussd_service_op == UssdOp.USSR_REQUEST  # type: ignore[union-attr]


def test_gw_10_release_is_the_abort_operation() -> None:
    """ussd_service_op 32 (RELEASE) is known by name and survives a round trip."""
    abort = P.SubmitSm(sequence=1, tlvs=(Tlv.u8(Tag.USSD_SERVICE_OP, UssdOp.RELEASE),))
    assert UssdOp(32) is UssdOp.RELEASE
    assert P.decode(P.encode(abort)).ussd_service_op == 32  # type: ignore[union-attr]


def test_gw_07_receipt_tlvs_are_read_by_name() -> None:
    """receipted_message_id, message_state and network_error_code read as typed values."""
    receipt = P.DeliverSm(
        sequence=9,
        esm_class=P.EsmClass.SMSC_DELIVERY_RECEIPT,
        short_message=b"id:1A stat:DELIVRD",
        tlvs=(
            Tlv.cstring(Tag.RECEIPTED_MESSAGE_ID, "1A"),
            Tlv.u8(Tag.MESSAGE_STATE, P.MessageState.DELIVERED),
            Tlv(Tag.NETWORK_ERROR_CODE, b"\x03\x00\x2a"),
            Tlv.u16(Tag.USER_MESSAGE_REFERENCE, 77),
        ),
    )
    decoded = P.decode(P.encode(receipt))
    assert isinstance(decoded, P.DeliverSm)
    assert decoded.receipted_message_id == "1A"
    assert decoded.message_state == P.MessageState.DELIVERED
    assert decoded.network_error_code == (3, 42)
    assert decoded.user_message_reference == 77


def test_gw_05_long_sms_tlvs_are_read_by_name() -> None:
    """sar_* and message_payload read as typed values (concatenated and long MO SMS)."""
    part = P.SubmitSm(
        sequence=1,
        short_message=b"part",
        tlvs=(
            Tlv.u16(Tag.SAR_MSG_REF_NUM, 513),
            Tlv.u8(Tag.SAR_TOTAL_SEGMENTS, 3),
            Tlv.u8(Tag.SAR_SEGMENT_SEQNUM, 2),
        ),
    )
    decoded = P.decode(P.encode(part))
    assert isinstance(decoded, P.SubmitSm)
    assert (decoded.sar_msg_ref_num, decoded.sar_total_segments, decoded.sar_segment_seqnum) == (
        513,
        3,
        2,
    )
    long_one = P.DataSm(sequence=2, tlvs=(Tlv(Tag.MESSAGE_PAYLOAD, b"x" * 1000),))
    assert P.decode(P.encode(long_one)).message_payload == b"x" * 1000  # type: ignore[union-attr]


def test_gw_03_unknown_and_repeated_tlvs_are_kept_byte_for_byte() -> None:
    """Vendor TLVs and repeats stay in order and re-encode to the very same octets."""
    tlvs = (
        tlv(0x1400, b"vendor")
        + tlv(Tag.USSD_SERVICE_OP, b"\x12")
        + tlv(0x3FFF, b"")
        + tlv(Tag.USSD_SERVICE_OP, b"\x01")
        + tlv(0x7777, b"\x00" * 300)
    )
    data = raw(CommandId.DELIVER_SM, sm_body(tlvs=tlvs))
    pdu = P.decode(data)
    assert isinstance(pdu, P.DeliverSm)
    assert [t.tag for t in pdu.tlvs] == [0x1400, 0x0501, 0x3FFF, 0x0501, 0x7777]
    assert pdu.ussd_service_op == UssdOp.USSR_CONFIRM  # the first occurrence counts
    assert P.encode(pdu) == data


def test_gw_03_tlv_helpers_encode_and_decode_streams() -> None:
    """encode_tlv/decode_tlvs round-trip a TLV stream and check it like a PDU's."""
    tlvs = (Tlv.u8(Tag.USSD_SERVICE_OP, 2), Tlv.u32(Tag.QOS_TIME_TO_LIVE, 60), Tlv(0x1401, b"v"))
    stream = b"".join(P.encode_tlv(t) for t in tlvs)
    assert P.decode_tlvs(stream) == tlvs
    with pytest.raises(P.InvalidTlvStream):
        P.decode_tlvs(stream[:-1])
    with pytest.raises(P.InvalidTlvValue):
        Tlv.u8(Tag.USSD_SERVICE_OP, 256)


# -- construction checks ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"source_addr": "7" * 21}, P.InvalidSourceAddress),
        ({"destination_addr": "1" * 21}, P.InvalidDestinationAddress),
        ({"destination_addr": "кириллица"}, P.InvalidDestinationAddress),
        ({"service_type": "USSD\0"}, P.InvalidServiceType),
        ({"source_addr_ton": 7}, P.InvalidSourceTon),
        ({"esm_class": 0x0C}, P.InvalidEsmClass),
        ({"schedule_delivery_time": "tomorrow"}, P.InvalidScheduleDeliveryTime),
        ({"short_message": b"x" * 255}, P.InvalidMessageLength),
        ({"short_message": "text"}, P.InvalidFieldValue),
        ({"protocol_id": 256}, P.InvalidFieldValue),
        ({"sequence": -1}, P.InvalidFieldValue),
        ({"sequence": None}, P.InvalidFieldValue),
        ({"tlvs": (Tlv(Tag.USSD_SERVICE_OP, b"\x00\x01"),)}, P.InvalidTlvLength),
        ({"tlvs": (Tlv(Tag.MESSAGE_PAYLOAD, b"long"),)}, P.InvalidMessageLength),
        ({"tlvs": ((0x10000, b""),)}, P.InvalidFieldValue),
        ({"tlvs": ["not a tlv"]}, P.InvalidFieldValue),
        ({"tlvs": 5}, P.InvalidFieldValue),
        ({"esm_class": []}, P.InvalidEsmClass),
    ],
)
def test_gw_03_invalid_pdus_cannot_be_built(fields: dict[str, Any], error: type) -> None:
    """Building a PDU our own decoder would refuse raises that field's error."""
    values = {"sequence": 1, "short_message": b"hello", **fields}
    with pytest.raises(error):
        P.SubmitSm(**values)


def test_gw_03_pdus_are_frozen_values() -> None:
    """PDUs are immutable, hashable, equal by value, and copy and pickle as themselves."""
    pdu = P.SubmitSm(
        sequence=1,
        source_addr="79161234567",
        tlvs=[(Tag.USSD_SERVICE_OP, b"\1")],  # type: ignore[arg-type]  # a list, converted
    )
    assert pdu.tlvs == (Tlv(0x0501, b"\x01"),) and type(pdu.tlvs[0]) is Tlv
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        pdu.source_addr = "x"  # type: ignore[misc]
    assert pdu == P.decode(P.encode(pdu)) and hash(pdu) == hash(P.decode(P.encode(pdu)))
    assert pickle.loads(pickle.dumps(pdu)) == pdu and copy.deepcopy(pdu) == pdu
    assert attrs.evolve(pdu, source_addr="125").source_addr == "125"
    with pytest.raises(P.InvalidSourceAddress):
        attrs.evolve(pdu, source_addr="7" * 30)
    moved = pdu.with_sequence(99)
    assert moved.sequence == 99 and attrs.evolve(moved, sequence=1) == pdu
    with pytest.raises(P.InvalidFieldValue):
        pdu.with_sequence(2**32)


def test_gw_01_response_builds_the_matching_resp_with_the_same_sequence() -> None:
    """Every request's response() is its resp class, same sequence, given status/fields."""
    for cls in P.PDU_CLASSES.values():
        if not issubclass(cls, P.BaseRequest):
            continue
        request = cls(sequence=77)
        resp = request.response(status=CommandStatus.ESME_RSYSERR)
        assert type(resp) is cls.response_class
        assert resp.command_id == cls.command_id | 0x80000000
        assert (resp.sequence, resp.status) == (77, CommandStatus.ESME_RSYSERR)
    bound = P.BindTransceiver(sequence=1, system_id="esme").response(system_id="ussdsim")
    assert bound == P.BindTransceiverResp(sequence=1, system_id="ussdsim")


def test_gw_03_every_pdu_class_round_trips_with_defaults() -> None:
    """Each of the 27 SMPP 3.4 PDUs encodes and decodes with its default fields."""
    assert len(P.PDU_CLASSES) == len(CommandId) == 27
    for command_id, cls in P.PDU_CLASSES.items():
        pdu = cls(sequence=0x7FFFFFFF, status=0)
        data = P.encode(pdu)  # type: ignore[arg-type]
        assert struct.unpack(">II", data[:8]) == (len(data), command_id)
        assert P.decode(data) == pdu
        assert P._GENERIC_ENCODERS[cls](pdu) == data


def test_gw_03_registries_name_every_smpp_34_value() -> None:
    """Command ids, statuses and TLV tags are all there by their §5 names."""
    assert (CommandId.GENERIC_NACK.value, CommandId.DATA_SM.value) == (0x80000000, 0x103)
    assert CommandStatus.ESME_RINVOPTPARSTREAM.value == 0xC0
    assert CommandStatus.ESME_RX_R_APPN.value == 0x66
    assert len(CommandStatus) == 48
    assert (Tag.ITS_SESSION_INFO.value, Tag.SAR_MSG_REF_NUM.value) == (0x1383, 0x020C)
    assert len(Tag) == 44
    assert (P.MessageState.REJECTED.value, P.EsmClass.UDHI.value) == (8, 0x40)
    assert [op.value for op in UssdOp] == [0, 1, 2, 3, 16, 17, 18, 19, 32]


def test_gw_03_submit_multi_and_its_resp_round_trip() -> None:
    """submit_multi destinations and submit_multi_resp unsuccess_smes survive a round trip."""
    multi = P.SubmitMulti(
        sequence=4,
        source_addr="125",
        dest_addresses=(
            P.SmeAddress(dest_addr_ton=1, dest_addr_npi=1, destination_addr="79161234567"),
            P.DistributionList(dl_name="family"),
        ),
        short_message=b"hi all",
    )
    assert P.decode(P.encode(multi)) == multi
    resp = multi.response(
        message_id="m1",
        unsuccess_smes=(P.UnsuccessSme(destination_addr="79161234567", error_status_code=0xB),),
    )
    assert P.decode(P.encode(resp)) == resp
    with pytest.raises(P.InvalidNumberOfDestinations):
        P.SubmitMulti(sequence=1, dest_addresses=())


# -- interoperability with smpplib (an independent implementation) ----------------------------


class _Client:
    """The bits of smpplib.client.Client its PDUs touch."""

    sequence = 0

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence


def _smpplib(command: str, sequence: int, **fields: Any) -> Any:
    made = smpplib.smpp.make_pdu(command, client=_Client(), **fields)
    made.sequence = sequence  # make_pdu ignores sequence=
    return made


def test_gw_10_smpplib_submit_sm_with_ussd_tlvs_decodes_to_the_same_fields() -> None:
    """A USSD submit_sm generated by smpplib decodes field for field, TLVs by name."""
    made = _smpplib(
        "submit_sm",
        0x10203,
        service_type="USSD",
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr="79161234567",
        dest_addr_ton=0,
        dest_addr_npi=0,
        destination_addr="434",
        esm_class=0,
        registered_delivery=1,
        data_coding=0,
        short_message=b"*434*1*79161234567#",
        ussd_service_op=UssdOp.PSSR_INDICATION,
        its_session_info=0x0102,
        user_message_reference=9,
    )
    pdu = P.decode(made.generate())
    assert isinstance(pdu, P.SubmitSm)
    assert pdu.sequence == 0x10203 and pdu.status == 0
    assert (pdu.service_type, pdu.source_addr, pdu.destination_addr) == (
        "USSD",
        "79161234567",
        "434",
    )
    assert (pdu.source_addr_ton, pdu.source_addr_npi, pdu.registered_delivery) == (1, 1, 1)
    assert pdu.short_message == b"*434*1*79161234567#"
    assert pdu.ussd_service_op == UssdOp.PSSR_INDICATION
    assert pdu.its_session_info == 0x0102
    assert pdu.user_message_reference == 9


def test_gw_01_smpplib_bind_and_enquire_link_decode() -> None:
    """smpplib's bind_transceiver and enquire_link decode to the same fields."""
    bind = P.decode(
        _smpplib(
            "bind_transceiver", 1, system_id="esme", password="secret", system_type=""
        ).generate()
    )
    assert bind == P.BindTransceiver(sequence=1, system_id="esme", password="secret")
    assert P.decode(_smpplib("enquire_link", 5).generate()) == P.EnquireLink(sequence=5)


def test_gw_10_our_deliver_sm_parses_in_smpplib_to_the_same_fields() -> None:
    """Our deliver_sm parses in stock smpplib (whose deliver_sm lacks ussd_service_op)."""
    ours = P.DeliverSm(
        sequence=31,
        service_type="USSD",
        source_addr="434",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="79161234567",
        data_coding=8,
        short_message="Меню".encode("utf-16-be"),
        tlvs=(Tlv.u16(Tag.ITS_SESSION_INFO, 0x0102),),
    )
    parsed = smpplib.smpp.parse_pdu(P.encode(ours), client=_Client())
    assert parsed.command == "deliver_sm" and parsed.sequence == 31
    assert parsed.service_type == b"USSD" and parsed.source_addr == b"434"
    assert parsed.destination_addr == b"79161234567"
    assert (parsed.dest_addr_ton, parsed.dest_addr_npi, parsed.data_coding) == (1, 1, 8)
    assert parsed.short_message == "Меню".encode("utf-16-be")
    assert parsed.its_session_info == 0x0102


def test_gw_05_our_submit_sm_and_resps_parse_in_smpplib() -> None:
    """Our submit_sm with ussd_service_op, submit_sm_resp and bind resp parse in smpplib."""
    ours = P.SubmitSm(
        sequence=8,
        source_addr="79161234567",
        destination_addr="125",
        short_message=b"G,0898123456,30",
        tlvs=(Tlv.u8(Tag.USSD_SERVICE_OP, 18),),
    )
    parsed = smpplib.smpp.parse_pdu(P.encode(ours), client=_Client())
    assert (parsed.source_addr, parsed.destination_addr) == (b"79161234567", b"125")
    assert parsed.short_message == b"G,0898123456,30" and parsed.ussd_service_op == 18
    resp = smpplib.smpp.parse_pdu(P.encode(ours.response(message_id="00AB")), client=_Client())
    assert (resp.command, resp.sequence, resp.message_id) == ("submit_sm_resp", 8, b"00AB")
    bound = smpplib.smpp.parse_pdu(
        P.encode(P.BindTransceiverResp(sequence=1, system_id="ussdsim")), client=_Client()
    )
    assert bound.command == "bind_transceiver_resp" and bound.system_id == b"ussdsim"
    refused = smpplib.smpp.parse_pdu(
        P.encode(ours.response(status=CommandStatus.ESME_RTHROTTLED)), client=_Client()
    )
    assert refused.status == smpplib.consts.SMPP_ESME_RTHROTTLED
