"""Examples for gateway/coding.py: data codings, splitting, UDH, reassembly, USSD limits."""

from __future__ import annotations

import ast
import codecs
from pathlib import Path

import pytest

from gateway import coding
from gateway.coding import (
    CodingError,
    Concat,
    DataCoding,
    Reassembler,
    choose_coding,
    decode_text,
    encode_text,
    fits_ussd,
    parse_udh,
    payload_for,
    septet_length,
    split_text,
    ussd_capacity,
)

CYRILLIC_300 = ("Ваш пакет Общий: осталось 300 МБ и 120 минут. " * 7)[:300]


def _body(part: coding.Part) -> bytes:
    return parse_udh(part.short_message)[1] if part.esm_class_udhi else part.short_message


def test_gw_09_module_imports_neither_twisted_nor_the_project() -> None:
    """coding.py stands alone: no Twisted, no other ussdsim module (pdu.py is separate)."""
    tree = ast.parse(Path(coding.__file__).read_text(encoding="utf-8"))
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
        )
    }
    assert imported.isdisjoint({"twisted", "gateway", "parsers", "sessions", "services", ""})
    assert "gsm0338" in imported


def test_gw_09_data_coding_values_are_smpp34() -> None:
    """DataCoding carries the SMPP 3.4 §5.2.19 numbers."""
    assert (DataCoding.DEFAULT, DataCoding.IA5, DataCoding.BINARY) == (0, 1, 2)
    assert (DataCoding.LATIN1, DataCoding.BINARY_ALT, DataCoding.UCS2) == (3, 4, 8)


def test_gw_09_cyrillic_is_chosen_as_ucs2_and_latin_as_gsm() -> None:
    """choose_coding: 'Привет' → UCS2, 'Hello' → GSM default, '' → GSM default."""
    assert choose_coding("Привет") == DataCoding.UCS2
    assert choose_coding("Hello") == DataCoding.DEFAULT
    assert choose_coding("") == DataCoding.DEFAULT
    assert choose_coding("Привет", allow_latin1=True) == DataCoding.UCS2


def test_gw_09_latin1_is_chosen_only_when_allowed_and_gsm_cannot() -> None:
    """'ê' is Latin-1 but not GSM: LATIN1 when allowed, else UCS2; 'é' (in GSM) stays GSM."""
    assert choose_coding("fête") == DataCoding.UCS2
    assert choose_coding("fête", allow_latin1=True) == DataCoding.LATIN1
    assert choose_coding("café", allow_latin1=True) == DataCoding.DEFAULT


def test_gw_09_escape_character_in_text_is_not_gsm() -> None:
    """U+001B would turn the next character into an extension one, so it is not GSM text."""
    assert choose_coding("a\x1be") == DataCoding.UCS2
    with pytest.raises(CodingError) as err:
        encode_text("a\x1be", DataCoding.DEFAULT)
    assert err.value.reason == "unencodable"


def test_gw_09_euro_counts_two_septets() -> None:
    """'€' is ESC 0x65: two septets."""
    assert septet_length("€") == 2
    assert septet_length("a€[]") == 7
    assert encode_text("€", DataCoding.DEFAULT) == b"\x1b\x65"


def test_gw_09_gsm_table_is_the_gsm0338_one_not_smpplibs() -> None:
    """0x5F is '§' and '_' is 0x11 (smpplib gets these wrong); '@' is 0x00, '$' is 0x02."""
    assert decode_text(b"\x5f", DataCoding.DEFAULT) == "§"
    assert encode_text("_@$", DataCoding.DEFAULT) == b"\x11\x00\x02"


def test_gw_09_gsm_decoding_agrees_with_gsm0338_for_every_septet_and_pair() -> None:
    """All 127 single septets and every extension pair decode as the gsm0338 codec says."""
    for septet in range(0x80):
        if septet != 0x1B:
            data = bytes((septet,))
            assert decode_text(data, 0) == codecs.decode(data, "gsm03.38")
        try:
            expected = codecs.decode(bytes((0x1B, septet)), "gsm03.38")
        except UnicodeDecodeError:
            with pytest.raises(CodingError):
                decode_text(bytes((0x1B, septet)), 0)
        else:
            assert decode_text(bytes((0x1B, septet)), 0) == expected


def test_gw_09_septet_length_of_cyrillic_is_an_error() -> None:
    """septet_length refuses text GSM cannot carry."""
    with pytest.raises(CodingError) as err:
        septet_length("Привет")
    assert err.value.reason == "unencodable"


@pytest.mark.parametrize(
    ("data", "data_coding", "reason", "status"),
    [
        (b"a\x1b", 0, "gsm_bad_escape", coding.ESME_RINVMSGLEN),
        (b"\x1b\x41", 0, "gsm_bad_escape", coding.ESME_RINVMSGLEN),
        (b"\x1b\x1b", 0, "gsm_bad_escape", coding.ESME_RINVMSGLEN),
        (b"ab\x80", 0, "gsm_bad_septet", coding.ESME_RINVMSGLEN),
        (b"\xff", 1, "ia5_bad_octet", coding.ESME_RINVMSGLEN),
        (b"\x04\x1f\x04", 8, "ucs2_odd_length", coding.ESME_RINVMSGLEN),
        (b"\xd8\x3d\x00\x41", 8, "ucs2_bad_surrogate", coding.ESME_RINVMSGLEN),
        (b"\xde\x00", 8, "ucs2_bad_surrogate", coding.ESME_RINVMSGLEN),
        (b"\xa1", 7, "undecodable", coding.ESME_RINVMSGLEN),
        (b"\x00", 2, "not_text", coding.ESME_RSUBMITFAIL),
        (b"\x00", 4, "not_text", coding.ESME_RSUBMITFAIL),
        (b"\x00", 0xF5, "not_text", coding.ESME_RSUBMITFAIL),
        (b"\x00", 0x0B, "unsupported_coding", coding.ESME_RSUBMITFAIL),
        (b"\x00", 0x05, "unsupported_coding", coding.ESME_RSUBMITFAIL),
        (b"\x00", 0x100, "unsupported_coding", coding.ESME_RSUBMITFAIL),
        (b"\x00", -1, "unsupported_coding", coding.ESME_RSUBMITFAIL),
    ],
)
def test_gw_09_bad_text_is_a_coding_error_with_status(
    data: bytes, data_coding: int, reason: str, status: int
) -> None:
    """Each undecodable input has its own reason and the documented command_status."""
    with pytest.raises(CodingError) as err:
        decode_text(data, data_coding)
    assert (err.value.reason, err.value.status) == (reason, status)


def test_gw_09_gsm_class_and_mwi_groups_resolve_to_their_alphabet() -> None:
    """0xF0-0xF3 and 0xC0-0xDF are GSM text, 0xE0-0xEF UCS2 (3GPP TS 23.038 §4)."""
    assert decode_text(b"\x1b\x65", 0xF1) == "€"
    assert decode_text(b"Hi", 0xD0) == "Hi"
    assert decode_text("Да".encode("utf-16-be"), 0xE0) == "Да"


def test_gw_09_other_single_octet_codings() -> None:
    """IA5, Latin-1, ISO-8859-5 (Cyrillic) and ISO-8859-8 both ways."""
    assert decode_text(b"*434#", DataCoding.IA5) == "*434#"
    assert encode_text("fête", DataCoding.LATIN1) == b"f\xeate"
    assert decode_text("ДА#4567".encode("iso8859_5"), DataCoding.CYRILLIC) == "ДА#4567"
    assert encode_text("שלום", DataCoding.LATIN_HEBREW) == "שלום".encode("iso8859_8")


def test_gw_09_ucs2_is_big_endian_with_surrogate_pairs() -> None:
    """UCS2 is UTF-16-BE; an astral character is a surrogate pair."""
    assert encode_text("Д😀", DataCoding.UCS2) == b"\x04\x14\xd8\x3d\xde\x00"
    assert decode_text(b"\x04\x14\xd8\x3d\xde\x00", DataCoding.UCS2) == "Д😀"


def test_gw_09_unencodable_text_is_a_coding_error() -> None:
    """Cyrillic in GSM or Latin-1, and a lone surrogate in UCS2, cannot be encoded."""
    for text, data_coding in [("Да", 0), ("Да", 3), ("Да", 1), ("\ud800", 8)]:
        with pytest.raises(CodingError) as err:
            encode_text(text, data_coding)
        assert (err.value.reason, err.value.status) == ("unencodable", coding.ESME_RSYSERR)


def test_gw_09_160_gsm_characters_are_one_part() -> None:
    """160 septets fit one short message without UDH."""
    [part] = split_text("x" * 160, reference=1)
    assert part == coding.Part(
        short_message=b"x" * 160, data_coding=0, esm_class_udhi=False, sar=None
    )


def test_gw_09_161_gsm_characters_are_two_parts() -> None:
    """161 septets become 153 + 8 with a UDH carrying reference, total and sequence."""
    parts = split_text("x" * 161, reference=0x2A)
    assert [p.short_message[:6] for p in parts] == [
        b"\x05\x00\x03\x2a\x02\x01",
        b"\x05\x00\x03\x2a\x02\x02",
    ]
    assert [len(_body(p)) for p in parts] == [153, 8]
    assert all(p.esm_class_udhi and p.data_coding == 0 for p in parts)


def test_gw_09_escape_pair_is_never_split() -> None:
    """'€' that would straddle a part boundary moves whole to the next part."""
    parts = split_text("a" * 152 + "€" + "b" * 10, reference=3)
    assert _body(parts[0]) == b"a" * 152
    assert _body(parts[1]).startswith(b"\x1b\x65")


def test_gw_09_300_cyrillic_characters_are_five_ucs2_parts() -> None:
    """300 Cyrillic characters → 5 UCS2 parts of ≤ 67 characters with an 8-bit-reference UDH."""
    parts = split_text(CYRILLIC_300, reference=0x9C)
    assert len(parts) == 5
    for sequence, part in enumerate(parts, start=1):
        assert part.data_coding == DataCoding.UCS2
        assert part.esm_class_udhi and part.sar is None
        assert part.short_message[:6] == bytes((0x05, 0x00, 0x03, 0x9C, 0x05, sequence))
        assert len(part.short_message) - 6 <= 134
    assert [len(_body(p)) // 2 for p in parts] == [67, 67, 67, 67, 32]
    assert "".join(decode_text(_body(p), 8) for p in parts) == CYRILLIC_300


def test_gw_09_16bit_reference_uses_iei_08_and_66_ucs2_characters() -> None:
    """A 16-bit reference gives a 7-octet UDH (IEI 0x08) and 66 UCS2 characters per part."""
    parts = split_text("Ж" * 140, reference=0x1234, reference_16bit=True)
    assert [p.short_message[:7] for p in parts] == [
        bytes((0x06, 0x08, 0x04, 0x12, 0x34, 0x03, seq)) for seq in (1, 2, 3)
    ]
    assert [len(_body(p)) // 2 for p in parts] == [66, 66, 8]


def test_gw_09_sar_mode_has_no_udh_and_carries_sar_values() -> None:
    """use_sar: no UDHI, bare payloads, sar = (ref, total, seq)."""
    parts = split_text("y" * 200, reference=77, use_sar=True)
    assert [(p.esm_class_udhi, p.sar) for p in parts] == [(False, (77, 2, 1)), (False, (77, 2, 2))]
    assert [p.short_message for p in parts] == [b"y" * 153, b"y" * 47]


def test_gw_09_surrogate_pair_is_never_split() -> None:
    """An astral character that would straddle a boundary moves whole to the next part."""
    parts = split_text("Ж" * 66 + "😀" * 3, reference=1)
    assert [len(_body(p)) for p in parts] == [132, 12]
    assert _body(parts[1])[:2] == b"\xd8\x3d"


def test_gw_09_ucs2_and_latin1_single_part_limits() -> None:
    """70 UCS2 / 140 Latin-1 characters are one part; one more makes two."""
    assert len(split_text("Ж" * 70, reference=1)) == 1
    assert len(split_text("Ж" * 71, reference=1)) == 2
    assert len(split_text("ê" * 140, data_coding=3, reference=1)) == 1
    latin = split_text("ê" * 141, data_coding=3, reference=1)
    assert [len(_body(p)) for p in latin] == [134, 7]


def test_gw_09_split_refuses_bad_reference_and_too_many_parts() -> None:
    """A reference out of range or more than 255 parts is a CodingError."""
    with pytest.raises(CodingError) as err:
        split_text("x" * 200, reference=256)
    assert err.value.reason == "bad_reference"
    with pytest.raises(CodingError) as err:
        split_text("x" * 200, reference=-1, reference_16bit=True)
    assert err.value.reason == "bad_reference"
    with pytest.raises(CodingError) as err:
        split_text("x" * (153 * 255 + 1), reference=1)
    assert err.value.reason == "too_many_parts"
    assert len(split_text("x" * (153 * 255), reference=1)) == 255


def test_gw_09_split_with_a_coding_that_cannot_carry_the_text() -> None:
    """Asking for GSM on Cyrillic text is a CodingError, not a mangled message."""
    with pytest.raises(CodingError) as err:
        split_text("Привет", data_coding=0, reference=1)
    assert err.value.reason == "unencodable"


def test_gw_09_payload_for_message_payload_delivery() -> None:
    """payload_for gives the chosen coding and the whole encoded text; over 65535 octets fails."""
    assert payload_for(CYRILLIC_300) == (DataCoding.UCS2, CYRILLIC_300.encode("utf-16-be"))
    assert payload_for("a€", 0) == (0, b"a\x1b\x65")
    with pytest.raises(CodingError) as err:
        payload_for("Ж" * 40000)
    assert err.value.reason == "payload_too_long"


def test_gw_09_parse_udh_reads_8_and_16_bit_concatenation() -> None:
    """IEI 0x00 and 0x08 give Concat; the payload follows the UDH."""
    assert parse_udh(b"\x05\x00\x03\x07\x03\x02hi") == (Concat(7, 3, 2), b"hi")
    assert parse_udh(b"\x06\x08\x04\x01\x02\x02\x01hi") == (Concat(0x0102, 2, 1), b"hi")


def test_gw_09_parse_udh_skips_other_ies() -> None:
    """A port-addressing IE (0x05) before the concatenation IE is skipped."""
    udh = b"\x0b\x05\x04\x0b\x84\x23\xf0\x00\x03\x09\x02\x01"
    assert parse_udh(udh + b"body") == (Concat(9, 2, 1), b"body")
    assert parse_udh(b"\x00body") == (None, b"body")
    assert parse_udh(b"\x04\x05\x02\x00\x00body") == (None, b"body")


def test_gw_09_parse_udh_ignores_concat_ie_with_bad_numbers() -> None:
    """Sequence 0, or above the total, or total 0: the IE is ignored (3GPP TS 23.040)."""
    for ie in (b"\x00\x03\x01\x02\x00", b"\x00\x03\x01\x02\x03", b"\x00\x03\x01\x00\x00"):
        assert parse_udh(bytes((len(ie),)) + ie + b"x") == (None, b"x")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "udh_missing"),
        (b"\x05\x00\x03\x01", "udh_truncated"),
        (b"\x01\x00", "udh_bad_ie"),
        (b"\x03\x00\x03\x01", "udh_bad_ie"),
        (b"\x04\x00\x02\x01\x01", "udh_bad_ie"),
        (b"\x05\x08\x03\x01\x01\x01", "udh_bad_ie"),
    ],
)
def test_gw_09_malformed_udh_is_a_coding_error(data: bytes, reason: str) -> None:
    """UDH lengths that do not add up are refused with ESME_RINVMSGLEN."""
    with pytest.raises(CodingError) as err:
        parse_udh(data)
    assert (err.value.reason, err.value.status) == (reason, coding.ESME_RINVMSGLEN)


def test_gw_09_reassembler_puts_300_cyrillic_characters_back_together() -> None:
    """Five UCS2 parts arriving out of order, one twice, come back as the text."""
    parts = split_text(CYRILLIC_300, reference=5)
    joined = Reassembler()
    results = []
    for index in (4, 0, 2, 0, 3, 1):
        concat, body = parse_udh(parts[index].short_message)
        assert concat is not None
        results.append(joined.add("79161234567", concat, body, 8, now=10.0))
    assert results[:-1] == [None] * 5
    assert results[-1] is not None and decode_text(results[-1], 8) == CYRILLIC_300
    assert len(joined) == 0


def test_gw_09_reassembly_rejoins_a_surrogate_pair_another_sender_cut() -> None:
    """Payloads are joined as octets, so a pair cut across parts by a sender decodes whole."""
    whole = "a😀b".encode("utf-16-be")
    joined = Reassembler()
    assert joined.add("k", Concat(1, 2, 1), whole[:4], 8, now=0) is None
    result = joined.add("k", Concat(1, 2, 2), whole[4:], 8, now=0)
    assert result is not None and decode_text(result, 8) == "a😀b"


def test_gw_09_reassembler_keeps_keys_and_references_apart() -> None:
    """The same reference from two senders, or two references from one, are two messages."""
    joined = Reassembler()
    assert joined.add("A", Concat(1, 2, 1), b"a1", 0, now=0) is None
    assert joined.add("B", Concat(1, 2, 2), b"b2", 0, now=0) is None
    assert joined.add("A", Concat(2, 2, 2), b"x2", 0, now=0) is None
    assert joined.add("A", Concat(1, 2, 2), b"a2", 0, now=0) == b"a1a2"
    assert len(joined) == 2


def test_gw_09_single_part_concat_returns_at_once() -> None:
    """A 'concatenated' message of one part is complete on arrival."""
    assert Reassembler().add("k", Concat(1, 1, 1), b"x", 0, now=0) == b"x"


@pytest.mark.parametrize(
    ("second", "data_coding", "reason"),
    [
        (Concat(1, 4, 2), 0, "inconsistent_total"),
        (Concat(1, 3, 2), 8, "inconsistent_coding"),
        (Concat(1, 3, 4), 0, "bad_concat"),
        (Concat(1, 3, 0), 0, "bad_concat"),
        (Concat(1, 0, 0), 0, "bad_concat"),
        (Concat(1, 256, 1), 0, "bad_concat"),
        (Concat(-1, 3, 1), 0, "bad_concat"),
        (Concat(0x10000, 3, 1), 0, "bad_concat"),
    ],
)
def test_gw_09_reassembler_refuses_inconsistent_parts(
    second: Concat, data_coding: int, reason: str
) -> None:
    """Disagreeing totals or codings and out-of-range sequences are CodingErrors."""
    joined = Reassembler()
    joined.add("k", Concat(1, 3, 1), b"a", 0, now=0)
    with pytest.raises(CodingError) as err:
        joined.add("k", second, b"b", data_coding, now=0)
    assert err.value.reason == reason
    assert len(joined) == 1


def test_gw_09_incomplete_message_expires_after_timeout_not_before() -> None:
    """A message missing a part is reported at timeout after its first part, and removed."""
    joined = Reassembler(timeout=60.0)
    joined.add("k", Concat(9, 3, 1), b"a", 0, now=100.0)
    joined.add("k", Concat(9, 3, 3), b"c", 0, now=130.0)
    assert joined.expire(159.9) == []
    [expired] = joined.expire(160.0)
    assert (expired.key, expired.reference, expired.total) == ("k", 9, 3)
    assert (expired.received, expired.started, expired.evicted) == ((1, 3), 100.0, False)
    assert joined.expire(1000.0) == [] and len(joined) == 0


def test_gw_09_reassembler_memory_is_bounded_oldest_evicted_and_reported() -> None:
    """Beyond max_pending the oldest partial message is evicted and reported by expire."""
    joined = Reassembler(timeout=60.0, max_pending=2)
    for reference, now in ((1, 0.0), (2, 1.0), (3, 2.0)):
        joined.add("k", Concat(reference, 2, 1), b"x", 0, now=now)
    assert len(joined) == 2
    [evicted] = joined.expire(3.0)
    assert (evicted.reference, evicted.evicted, evicted.received) == (1, True, (1,))
    assert joined.add("k", Concat(2, 2, 2), b"y", 0, now=4.0) == b"xy"


def test_gw_11_fits_ussd_at_182_gsm_septets() -> None:
    """182 GSM characters fit one USSD message, 183 do not; '€' counts two."""
    assert fits_ussd("a" * 182)
    assert not fits_ussd("a" * 183)
    assert fits_ussd("€" * 91)
    assert not fits_ussd("€" * 91 + "a")


def test_gw_11_fits_ussd_at_80_ucs2_characters() -> None:
    """80 Cyrillic characters fit, 81 do not; an astral character counts two units."""
    assert fits_ussd("Ж" * 80)
    assert not fits_ussd("Ж" * 81)
    assert fits_ussd("😀" * 40)
    assert not fits_ussd("😀" * 40 + "Ж")


def test_gw_11_ussd_capacity_depends_on_the_coding() -> None:
    """182 for GSM text, 80 for text that needs UCS2."""
    assert ussd_capacity("1 Telenor paketi") == 182
    assert ussd_capacity("1 Пакети Теленор") == 80
