"""Properties of the SMPP 3.4 codec (gateway/pdu.py): round trips for every PDU class,
framing of arbitrarily cut streams, and total decoding of arbitrary octets (SPEC GW-03),
with the USSD TLVs among the random ones (GW-10). The strategies restate SMPP 3.4's field
rules independently of the module's own tables."""

from __future__ import annotations

import struct
from typing import Any

import attrs
import smpplib.smpp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import pdu as P
from gateway.pdu import CommandId, Tag, Tlv

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- field strategies, from SMPP 3.4 §4 and §5 -------------------------------------------------

LATIN1 = st.characters(min_codepoint=1, max_codepoint=255)


def cstring(max_octets: int) -> st.SearchStrategy[str]:
    """A C-Octet String of at most ``max_octets`` including its NUL (§3.1)."""
    return st.text(LATIN1, max_size=max_octets - 1)


TIME = st.one_of(st.just(""), st.from_regex(r"\A[0-9]{15}[-+R]\Z"))  # §7.1
U8 = st.integers(0, 255)
U32 = st.integers(0, 0xFFFFFFFF)
TON = st.integers(0, 6)  # §5.2.5
NPI = st.sampled_from([0, 1, 3, 4, 6, 8, 9, 10, 14, 18])  # §5.2.6
ESM_CLASS = st.builds(
    lambda mode, kind, gsm: mode | kind << 2 | gsm << 6,
    st.integers(0, 3),
    st.sampled_from([0, 1, 2, 4, 6, 8]),
    st.integers(0, 3),
)  # §5.2.12
REGISTERED_DELIVERY = st.builds(
    lambda receipt, ack, notify: receipt | ack << 2 | notify << 4,
    st.integers(0, 2),
    st.integers(0, 3),
    st.integers(0, 1),
)  # §5.2.17

# §5.3.2 value sizes of every standard TLV but message_payload (handled with short_message).
ONE_OCTET = [
    Tag.DEST_ADDR_SUBUNIT,
    Tag.DEST_NETWORK_TYPE,
    Tag.DEST_BEARER_TYPE,
    Tag.SOURCE_ADDR_SUBUNIT,
    Tag.SOURCE_NETWORK_TYPE,
    Tag.SOURCE_BEARER_TYPE,
    Tag.PAYLOAD_TYPE,
    Tag.MS_MSG_WAIT_FACILITIES,
    Tag.PRIVACY_INDICATOR,
    Tag.USER_RESPONSE_CODE,
    Tag.LANGUAGE_INDICATOR,
    Tag.SC_INTERFACE_VERSION,
    Tag.CALLBACK_NUM_PRES_IND,
    Tag.NUMBER_OF_MESSAGES,
    Tag.DPF_RESULT,
    Tag.SET_DPF,
    Tag.MS_AVAILABILITY_STATUS,
    Tag.DELIVERY_FAILURE_REASON,
    Tag.MORE_MESSAGES_TO_SEND,
    Tag.MESSAGE_STATE,
    Tag.USSD_SERVICE_OP,
    Tag.DISPLAY_TIME,
    Tag.MS_VALIDITY,
    Tag.ITS_REPLY_TYPE,
]
TWO_OCTETS = [
    Tag.DEST_TELEMATICS_ID,
    Tag.USER_MESSAGE_REFERENCE,
    Tag.SOURCE_PORT,
    Tag.DESTINATION_PORT,
    Tag.SAR_MSG_REF_NUM,
    Tag.SMS_SIGNAL,
    Tag.ITS_SESSION_INFO,
]
SIZED = {
    Tag.SOURCE_TELEMATICS_ID: (1, 2),
    Tag.QOS_TIME_TO_LIVE: (4, 4),
    Tag.NETWORK_ERROR_CODE: (3, 3),
    Tag.ALERT_ON_MESSAGE_DELIVERY: (0, 0),
    Tag.SOURCE_SUBADDRESS: (2, 23),
    Tag.DEST_SUBADDRESS: (2, 23),
    Tag.CALLBACK_NUM: (4, 19),
    Tag.CALLBACK_NUM_ATAG: (1, 65),
}
C_STRINGS = {Tag.ADDITIONAL_STATUS_INFO_TEXT: 256, Tag.RECEIPTED_MESSAGE_ID: 65}
SEGMENTS = [Tag.SAR_TOTAL_SEGMENTS, Tag.SAR_SEGMENT_SEQNUM]  # 1 octet, never 0
KNOWN = {int(t) for t in Tag}

KNOWN_TLV = st.one_of(
    st.builds(Tlv, st.sampled_from(ONE_OCTET), st.binary(min_size=1, max_size=1)),
    st.builds(Tlv, st.sampled_from(TWO_OCTETS), st.binary(min_size=2, max_size=2)),
    st.sampled_from(sorted(SIZED)).flatmap(
        lambda tag: st.builds(
            Tlv, st.just(tag), st.binary(min_size=SIZED[tag][0], max_size=SIZED[tag][1])
        )
    ),
    st.sampled_from(sorted(C_STRINGS)).flatmap(
        lambda tag: st.builds(
            Tlv.cstring, st.just(tag), st.text(LATIN1, max_size=C_STRINGS[tag] - 1)
        )
    ),
    st.builds(Tlv, st.sampled_from(SEGMENTS), st.integers(1, 255).map(lambda v: bytes((v,)))),
)
UNKNOWN_TLV = st.builds(
    Tlv,
    st.integers(0, 0xFFFF).filter(lambda tag: tag not in KNOWN),
    st.binary(max_size=40),
)
USSD_TLV = st.one_of(
    st.builds(Tlv.u8, st.just(Tag.USSD_SERVICE_OP), st.sampled_from(list(P.UssdOp))),
    st.builds(Tlv.u16, st.just(Tag.ITS_SESSION_INFO), st.integers(0, 0xFFFF)),
)
TLVS = st.lists(st.one_of(KNOWN_TLV, UNKNOWN_TLV, USSD_TLV), max_size=5).map(tuple)

FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "sequence": U32,
    "status": st.one_of(st.just(0), st.sampled_from(list(P.CommandStatus)), U32),
    "system_id": cstring(16),
    "password": cstring(9),
    "system_type": cstring(13),
    "interface_version": U8,
    "addr_ton": U8,
    "addr_npi": U8,
    "address_range": cstring(41),
    "service_type": cstring(6),
    "source_addr_ton": TON,
    "source_addr_npi": NPI,
    "source_addr": cstring(21),
    "dest_addr_ton": TON,
    "dest_addr_npi": NPI,
    "destination_addr": cstring(21),
    "esm_class": ESM_CLASS,
    "protocol_id": U8,
    "priority_flag": st.integers(0, 3),
    "schedule_delivery_time": TIME,
    "validity_period": TIME,
    "final_date": TIME,
    "registered_delivery": REGISTERED_DELIVERY,
    "replace_if_present_flag": st.integers(0, 1),
    "data_coding": U8,
    "sm_default_msg_id": st.integers(0, 254),
    "short_message": st.binary(max_size=254),
    "message_id": cstring(65),
    "message_state": U8,
    "error_code": U8,
    "esme_addr_ton": TON,
    "esme_addr_npi": NPI,
    "tlvs": TLVS,
    "dest_addresses": st.lists(
        st.one_of(
            st.builds(
                P.SmeAddress, dest_addr_ton=TON, dest_addr_npi=NPI, destination_addr=cstring(21)
            ),
            st.builds(P.DistributionList, dl_name=cstring(21)),
        ),
        min_size=1,
        max_size=6,
    ).map(tuple),
    "unsuccess_smes": st.lists(
        st.builds(
            P.UnsuccessSme,
            dest_addr_ton=TON,
            dest_addr_npi=NPI,
            destination_addr=cstring(21),
            error_status_code=U32,
        ),
        max_size=6,
    ).map(tuple),
}
#: data_sm and alert_notification carry addresses of up to 65 octets (§4.7.1, §4.12.1).
WIDE_ADDRESSES = {"source_addr": cstring(65), "destination_addr": cstring(65)}
OVERRIDES: dict[type, dict[str, st.SearchStrategy[Any]]] = {
    P.DataSm: WIDE_ADDRESSES,
    P.AlertNotification: {**WIDE_ADDRESSES, "esme_addr": cstring(65)},
}
CLASSES = sorted(P.PDU_CLASSES.values(), key=lambda cls: cls.__name__)


@st.composite
def pdus(draw: st.DrawFn, cls: type) -> Any:
    """A valid PDU of ``cls`` with random fields, TLVs (known, unknown, USSD)."""
    strategies = {**FIELDS, **OVERRIDES.get(cls, {})}
    values = {a.name: draw(strategies[a.name]) for a in attrs.fields(cls)}
    tlvs = values.get("tlvs")
    if tlvs is not None and draw(st.integers(0, 4)) == 0:
        payload = Tlv(Tag.MESSAGE_PAYLOAD, draw(st.binary(max_size=600)))
        at = draw(st.integers(0, len(tlvs)))
        values["tlvs"] = (*tlvs[:at], payload, *tlvs[at:])
        if "short_message" in values:  # §5.3.2.32: not both
            values["short_message"] = b""
    return cls(**values)


ANY_PDU = st.sampled_from(CLASSES).flatmap(pdus)


def test_gw_03_strategies_cover_every_standard_tlv() -> None:
    """The random TLVs include every §5.3.2 tag, so every size rule is exercised."""
    covered = {*ONE_OCTET, *TWO_OCTETS, *SIZED, *C_STRINGS, *SEGMENTS, Tag.MESSAGE_PAYLOAD}
    assert covered == set(Tag)


# -- round trips ------------------------------------------------------------------------------


def _round_trip_test(cls: type[P.BasePdu]) -> Any:
    # One test function per class: pytest-twisted (installed for the e2e tests) breaks
    # @given combined with @pytest.mark.parametrize after the first parameter.
    @FAST
    @given(pdu=pdus(cls))
    def test(pdu: Any) -> None:
        wire = P.encode(pdu)
        assert struct.unpack(">II", wire[:8]) == (len(wire), cls.command_id)
        decoded = P.decode(wire)
        assert type(decoded) is cls
        assert decoded == pdu
        assert P._decode_generic(wire) == pdu
        assert P._GENERIC_ENCODERS[cls](pdu) == wire

    name = "".join(f"_{c.lower()}" if c.isupper() else c for c in cls.__name__).lstrip("_")
    test.__name__ = test.__qualname__ = f"test_gw_03_decode_of_encode_is_identity_for_{name}"
    test.__doc__ = f"decode(encode(pdu)) == pdu for {cls.__name__}; fast and generic paths agree."
    return test


for _cls in CLASSES:
    _test = _round_trip_test(_cls)
    globals()[_test.__name__] = _test
del _cls, _test


@settings(max_examples=100, deadline=None)
@given(pdu=st.sampled_from([P.SubmitSm, P.DeliverSm]).flatmap(pdus))
def test_gw_10_ussd_tlvs_read_back_through_the_accessors(pdu: Any) -> None:
    """The typed accessors agree with the first TLV of each tag after a round trip."""
    decoded: Any = P.decode(P.encode(pdu))
    first = {}
    for tag, value in reversed(pdu.tlvs):
        first[tag] = value
    op = first.get(Tag.USSD_SERVICE_OP)
    assert decoded.ussd_service_op == (None if op is None else op[0])
    its = first.get(Tag.ITS_SESSION_INFO)
    assert decoded.its_session_info == (None if its is None else int.from_bytes(its, "big"))
    assert decoded.message_payload == first.get(Tag.MESSAGE_PAYLOAD)


@FAST
@given(pdus=st.lists(ANY_PDU, min_size=1, max_size=8), data=st.data())
def test_gw_03_stream_cut_anywhere_yields_the_same_pdus(pdus: list[Any], data: Any) -> None:
    """The concatenated PDUs, cut into random chunks, come out of PduStream unchanged."""
    wire = b"".join(P.encode(p) for p in pdus)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=12)))
    stream = P.PduStream()
    out: list[Any] = []
    last = 0
    for cut in [*cuts, len(wire)]:
        out.extend(stream.feed(wire[last:cut]))
        last = cut
    assert out == pdus
    assert stream.buffered == 0 and not stream.closed


# -- arbitrary octets ------------------------------------------------------------------------


def _check_decoded(result: Any) -> None:
    """Whatever decode accepts, the constructor accepts and encoding reproduces."""
    assert type(result) in P.PDU_CLASSES.values()
    assert attrs.evolve(result) == result
    assert P.decode(P.encode(result)) == result


def _decode_or_error(data: bytes) -> Any:
    try:
        return P.decode(data)
    except P.PduError as exc:
        assert isinstance(exc.status, P.CommandStatus)
        assert not exc.fatal
        return exc


@FUZZ
@given(data=st.binary(max_size=120))
def test_gw_03_decode_of_arbitrary_octets_raises_only_pdu_error(data: bytes) -> None:
    """Any octets decode to a PDU or raise a PduError with an ESME_R* status, nothing else."""
    result = _decode_or_error(data)
    if not isinstance(result, P.PduError):
        _check_decoded(result)


@FUZZ
@given(
    command_id=st.sampled_from([*CommandId, 0x99, 0x80000099]),
    body=st.binary(max_size=200),
    status=st.sampled_from([0, 8]),
)
def test_gw_03_arbitrary_bodies_raise_only_pdu_error(
    command_id: int, body: bytes, status: int
) -> None:
    """A sound header over any body: a PDU or a PduError, never a stray exception."""
    data = struct.pack(">IIII", 16 + len(body), command_id, status, 3) + body
    result = _decode_or_error(data)
    if isinstance(result, P.PduError):
        assert (result.command_id, result.sequence) == (command_id, 3)
    else:
        _check_decoded(result)


@FUZZ
@given(pdu=ANY_PDU, data=st.data())
def test_gw_03_mutated_pdus_raise_only_pdu_error_and_both_decoders_agree(
    pdu: Any, data: Any
) -> None:
    """Valid PDUs with octets changed, dropped or added: the fast and generic decoders
    reach the same result or the same error class."""
    wire = bytearray(P.encode(pdu))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(16, max(16, len(wire))))
        action = data.draw(st.sampled_from(["set", "drop", "add"]))
        if action == "set" and at < len(wire):
            wire[at] = data.draw(U8)
        elif action == "drop":
            del wire[at : at + data.draw(st.integers(1, 4))]
        else:
            wire[at:at] = data.draw(st.binary(min_size=1, max_size=4))
    wire[0:4] = struct.pack(">I", len(wire))
    result = _decode_or_error(bytes(wire))
    try:
        generic: Any = P._decode_generic(bytes(wire))
    except P.PduError as exc:
        generic = exc
    if isinstance(result, P.PduError):
        assert type(generic) is type(result)
    else:
        assert generic == result
        _check_decoded(result)


@FUZZ
@given(chunks=st.lists(st.binary(max_size=60), max_size=8), prefix=st.lists(ANY_PDU, max_size=2))
def test_gw_03_stream_never_raises_on_arbitrary_octets(
    chunks: list[bytes], prefix: list[Any]
) -> None:
    """PduStream.feed takes anything: items are PDUs or PduErrors, a fatal one only last."""
    stream = P.PduStream(max_command_length=512)
    items: list[Any] = []
    for chunk in [b"".join(P.encode(p) for p in prefix), *chunks]:
        items.extend(stream.feed(chunk))
        assert stream.buffered <= 512
    for i, item in enumerate(items):
        assert isinstance(item, P.PduError) or type(item) in P.PDU_CLASSES.values()
        if isinstance(item, P.PduError) and item.fatal:
            assert i == len(items) - 1 and stream.closed
    assert items[: len(prefix)] == prefix


# -- cross-check with smpplib --------------------------------------------------------------

ASCII = st.characters(min_codepoint=0x21, max_codepoint=0x7E)


class _Client:
    sequence = 0

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence


@settings(max_examples=60, deadline=None)
@given(
    service_type=st.text(ASCII, max_size=5),
    source=st.text(ASCII, max_size=20),
    destination=st.text(ASCII, max_size=20),
    ton=TON,
    npi=NPI,
    esm_class=ESM_CLASS,
    coding=U8,
    short_message=st.binary(min_size=1, max_size=254),
    op=st.sampled_from(list(P.UssdOp)),
    session=st.integers(0, 0xFFFF),
    sequence=st.integers(1, 0x7FFFFFFF),
)
def test_gw_10_smpplib_submit_sm_decodes_to_the_same_fields(
    service_type: str,
    source: str,
    destination: str,
    ton: int,
    npi: int,
    esm_class: int,
    coding: int,
    short_message: bytes,
    op: int,
    session: int,
    sequence: int,
) -> None:
    """submit_sm octets generated by smpplib decode to the fields smpplib was given."""
    made = smpplib.smpp.make_pdu(
        "submit_sm",
        client=_Client(),
        service_type=service_type,
        source_addr_ton=ton,
        source_addr_npi=npi,
        source_addr=source,
        dest_addr_ton=ton,
        dest_addr_npi=npi,
        destination_addr=destination,
        esm_class=esm_class,
        data_coding=coding,
        short_message=short_message,
        ussd_service_op=op,
        its_session_info=session,
    )
    made.sequence = sequence
    pdu = P.decode(made.generate())
    assert isinstance(pdu, P.SubmitSm)
    assert pdu.sequence == sequence
    assert (pdu.service_type, pdu.source_addr, pdu.destination_addr) == (
        service_type,
        source,
        destination,
    )
    assert (pdu.source_addr_ton, pdu.source_addr_npi, pdu.dest_addr_ton, pdu.dest_addr_npi) == (
        ton,
        npi,
        ton,
        npi,
    )
    assert (pdu.esm_class, pdu.data_coding, pdu.short_message) == (
        esm_class,
        coding,
        short_message,
    )
    assert (pdu.ussd_service_op, pdu.its_session_info) == (op, session)


@settings(max_examples=60, deadline=None)
@given(pdu=pdus(P.DeliverSm))
def test_gw_10_our_deliver_sm_parses_in_smpplib_to_the_same_fields(pdu: Any) -> None:
    """Our deliver_sm (TLVs smpplib knows for deliver_sm only) parses to the same fields."""
    known = {Tag.ITS_SESSION_INFO, Tag.USER_MESSAGE_REFERENCE, Tag.MESSAGE_STATE}
    first = {t.tag: t for t in reversed(pdu.tlvs) if t.tag in known}  # smpplib keeps the last
    pdu = attrs.evolve(pdu, tlvs=tuple(first.values()))
    parsed = smpplib.smpp.parse_pdu(P.encode(pdu), client=_Client())
    assert parsed.command == "deliver_sm"
    assert (parsed.sequence, parsed.status) == (pdu.sequence, pdu.status)
    for name in ("service_type", "source_addr", "destination_addr"):
        assert getattr(parsed, name) == getattr(pdu, name).encode("latin-1")
    for name in ("source_addr_ton", "dest_addr_npi", "esm_class", "data_coding"):
        assert getattr(parsed, name) == getattr(pdu, name)
    assert (parsed.short_message or b"") == pdu.short_message  # smpplib: None when empty
    if pdu.its_session_info is not None:
        assert parsed.its_session_info == pdu.its_session_info
