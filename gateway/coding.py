"""Data codings of short messages (SPEC GW-09, GW-11): this module owns the ``data_coding``
registry, text ⇄ octets in GSM 03.38 (unpacked septets, one per octet, as SMPP carries
``data_coding`` 0), IA5, Latin-1 and UCS2, the choice of a reply's coding by its content,
splitting long text into concatenated parts (UDH with an 8- or 16-bit reference, or ``sar_*``
values) without ever cutting a GSM escape pair or a UTF-16 surrogate pair, the UDH parser, the
sans-IO reassembler of concatenated MO parts, and the USSD length limits. It imports nothing
from Twisted nor from the rest of ussdsim; the GSM tables come from the ``gsm0338`` package.
"""

from __future__ import annotations

import codecs
from collections import deque
from collections.abc import Callable, Hashable
from enum import IntEnum
from typing import Final, NoReturn

import attrs
import gsm0338  # noqa: F401  (importing it registers the "gsm03.38" codec)

__all__ = [
    "ESME_RINVMSGLEN",
    "ESME_RSUBMITFAIL",
    "ESME_RSYSERR",
    "GSM_ALPHABET",
    "GSM_CODEC",
    "GSM_EXTENSION_CHARS",
    "IEI_CONCAT_8BIT",
    "IEI_CONCAT_16BIT",
    "USSD_MAX_SEPTETS",
    "USSD_MAX_UCS2",
    "CodingError",
    "Concat",
    "DataCoding",
    "Expired",
    "Part",
    "Reassembler",
    "alphabet_of",
    "choose_coding",
    "decode_text",
    "encode_text",
    "fits_ussd",
    "gsm_encodable",
    "parse_udh",
    "payload_for",
    "septet_length",
    "split_text",
    "ussd_capacity",
]


class DataCoding(IntEnum):
    """``data_coding`` values, SMPP 3.4 §5.2.19.

    0x00 is "SMSC default alphabet", which this SMSC defines as GSM 03.38 (3GPP TS 23.038
    §6.2.1 plus the extension table §6.2.1.1) carried unpacked, one septet per octet. The
    GSM message-class (0xF0-0xFF) and MWI (0xC0-0xEF) groups are not members: ``alphabet_of``
    resolves them to the alphabet they imply.
    """

    DEFAULT = 0x00
    IA5 = 0x01
    BINARY = 0x02
    LATIN1 = 0x03
    BINARY_ALT = 0x04  # SMPP 3.4 §5.2.19 lists "octet unspecified" twice (2 and 4)
    JIS = 0x05
    CYRILLIC = 0x06  # ISO-8859-5
    LATIN_HEBREW = 0x07  # ISO-8859-8
    UCS2 = 0x08
    PICTOGRAM = 0x09
    ISO_2022_JP = 0x0A
    EXTENDED_KANJI_JIS = 0x0D
    KS_C_5601 = 0x0E


# SMPP 3.4 §5.1.3 command_status values this module answers with; gateway/pdu.py's
# CommandStatus has the same numbers (not imported: this module stands alone).
ESME_RINVMSGLEN: Final = 0x00000001
ESME_RSYSERR: Final = 0x00000008
ESME_RSUBMITFAIL: Final = 0x00000045


class CodingError(Exception):
    """A text or UDH that cannot be decoded, encoded, split or reassembled.

    ``reason`` is a stable code; ``status`` is the SMPP 3.4 command_status to answer the PDU
    that carried the bad input with; ``detail`` is for humans and logs.

    ================== ================ ====================================================
    reason             status           meaning
    ================== ================ ====================================================
    unsupported_coding ESME_RSUBMITFAIL data_coding reserved or not a text coding we carry
    not_text           ESME_RSUBMITFAIL data_coding is binary (2, 4, class 0xF4-0xF7)
    gsm_bad_septet     ESME_RINVMSGLEN  an octet above 0x7F in unpacked GSM 03.38
    gsm_bad_escape     ESME_RINVMSGLEN  ESC last, or followed by a code not in the table
    ia5_bad_octet      ESME_RINVMSGLEN  an octet above 0x7F in IA5
    ucs2_odd_length    ESME_RINVMSGLEN  UCS2 text of an odd number of octets
    ucs2_bad_surrogate ESME_RINVMSGLEN  a lone or reversed UTF-16 surrogate
    undecodable        ESME_RINVMSGLEN  an octet undefined in the ISO-8859 table
    unencodable        ESME_RSYSERR     a character the coding cannot carry
    udh_missing        ESME_RINVMSGLEN  UDHI set but short_message empty
    udh_truncated      ESME_RINVMSGLEN  UDHL longer than short_message
    udh_bad_ie         ESME_RINVMSGLEN  an IE overruns the UDH, or 0x00/0x08 of wrong length
    bad_concat         ESME_RINVMSGLEN  total 0 or > 255, sequence outside 1..total
    inconsistent_total ESME_RINVMSGLEN  parts of one reference disagree on the total
    inconsistent_coding ESME_RINVMSGLEN parts of one reference disagree on data_coding
    bad_reference      ESME_RSYSERR     reference outside 0..255 (or 0..65535)
    too_many_parts     ESME_RSYSERR     a text needing more than 255 parts
    payload_too_long   ESME_RSYSERR     more than 65535 octets for message_payload
    ================== ================ ====================================================

    Undecodable text answers ESME_RINVMSGLEN: SMPP 3.4 has no "invalid text" status and
    the fault lies in short_message itself. Unsupported codings answer ESME_RSUBMITFAIL:
    the exact status (ESME_RINVDCS, 0x104) only exists from SMPP 5.0, and 3.4's nearest is
    "submit failed". Encoding and splitting only happen for our own MT messages, so a
    failure there is ours: ESME_RSYSERR.
    """

    def __init__(self, reason: str, detail: str = "", *, status: int = ESME_RINVMSGLEN) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.status = status
        self.detail = detail


# --- GSM 03.38 tables, derived from the gsm0338 codec ----------------------------------------

GSM_CODEC: Final = "gsm03.38"
_ESC: Final = 0x1B


def _gsm_tables() -> tuple[dict[int, str], dict[int, str]]:
    """Ask the gsm0338 codec what every septet and every ESC pair decodes to."""
    basic: dict[int, str] = {}
    extension: dict[int, str] = {}
    for septet in range(0x80):
        if septet != _ESC:
            basic[septet] = codecs.decode(bytes((septet,)), GSM_CODEC)
        try:
            extension[septet] = codecs.decode(bytes((_ESC, septet)), GSM_CODEC)
        except UnicodeDecodeError:
            continue
    return basic, extension


_GSM_BASIC, _GSM_EXTENSION = _gsm_tables()
# Every character GSM 03.38 carries (default alphabet + extension table), and those that cost
# two septets. U+001B is not one of them: an ESC character in text would turn the next one
# into an extension character on the other side.
GSM_EXTENSION_CHARS: Final = frozenset(_GSM_EXTENSION.values()) - frozenset(_GSM_BASIC.values())
GSM_ALPHABET: Final = frozenset(_GSM_BASIC.values()) | GSM_EXTENSION_CHARS

# The gsm0338 codec builds its output one character at a time (about 200 µs for 160
# characters). The tables below are taken from it and let C do the work: charmap_decode and
# str.translate map single septets, and an extension character is rewritten as ESC followed
# by the default-alphabet character whose septet is its code ('€' ⇄ ESC 'e', '|' ⇄ ESC '¡').
_MARK_INVALID: Final = "\x80"  # not a septet: its presence after translation means "not GSM"
_GSM_DECODING_TABLE: Final = "".join(
    "\x1b" if octet == _ESC else _GSM_BASIC.get(octet, "\ufffe") for octet in range(256)
)
_GSM_TRANSLATION: Final = (
    {code: _MARK_INVALID for code in range(256)}
    | {ord(char): chr(septet) for septet, char in _GSM_BASIC.items()}
    | {_ESC: "\x1b"}
)
_GSM_PAIRS: Final = tuple(
    (char, f"\x1b{_GSM_BASIC[code]}") for code, char in sorted(_GSM_EXTENSION.items())
)
_GSM_ASCII: Final = bytes(sorted(ord(char) for char in GSM_ALPHABET if char.isascii()))


def gsm_encodable(text: str) -> bool:
    """Every character is in the GSM 03.38 default alphabet or its extension table."""
    if text.isascii():
        # Deleting every GSM octet leaves nothing: faster than a set test per character.
        return not text.encode("ascii").translate(None, _GSM_ASCII)
    return GSM_ALPHABET.issuperset(text)


def septet_length(text: str) -> int:
    """GSM 03.38 length in septets: an extension-table character costs two (ESC + code)."""
    return len(_encode_gsm(text))


def _decode_gsm(data: bytes) -> str:
    if not data.isascii():
        at = next(i for i, octet in enumerate(data) if octet > 0x7F)
        raise CodingError("gsm_bad_septet", f"octet 0x{data[at]:02X} at {at}")
    text: str = codecs.charmap_decode(data, "strict", _GSM_DECODING_TABLE)[0]
    if "\x1b" in text:
        for char, pair in _GSM_PAIRS:
            text = text.replace(pair, char)
        # What is left is ESC at the end, ESC ESC (reserved for a further table, 3GPP TS
        # 23.038 §6.2.1.1) or ESC before a code the table lacks: no text for a parser.
        if "\x1b" in text:
            at = data.index(_ESC)
            raise CodingError("gsm_bad_escape", f"ESC without an extension code near {at}")
    return text


def _encode_gsm(text: str) -> bytes:
    septets = text
    if "\x1b" in septets:
        septets = septets.replace("\x1b", _MARK_INVALID)
    if not GSM_EXTENSION_CHARS.isdisjoint(septets):
        for char, pair in _GSM_PAIRS:
            septets = septets.replace(char, pair)
    try:
        encoded = septets.translate(_GSM_TRANSLATION).encode("latin-1")
    except UnicodeEncodeError:
        encoded = b"\x80"
    if not encoded.isascii():
        bad = next(char for char in text if char not in GSM_ALPHABET)
        raise CodingError(
            "unencodable",
            f"{bad!r} at {text.index(bad)} is not in GSM 03.38",
            status=ESME_RSYSERR,
        )
    return encoded


# --- the codings -------------------------------------------------------------------------------

_BINARY_CODINGS: Final = frozenset({DataCoding.BINARY, DataCoding.BINARY_ALT})
# One character per octet, in a Python codec.
_OCTET_CODECS: Final = {
    DataCoding.LATIN1: "latin-1",
    DataCoding.CYRILLIC: "iso8859_5",
    DataCoding.LATIN_HEBREW: "iso8859_8",
}


def alphabet_of(data_coding: int) -> DataCoding:
    """The alphabet a ``data_coding`` value means (SMPP 3.4 §5.2.19, 3GPP TS 23.038 §4).

    0xC0-0xDF (MWI groups) mean the GSM default alphabet; 0xE0-0xEF (MWI, UCS2 in 23.038,
    reserved in SMPP 3.4) mean UCS2; 0xF0-0xFF (message class) mean GSM default when bit 2
    is 0 and 8-bit data when it is 1. Anything reserved or out of 0..255 is refused.
    """
    if 0 <= data_coding <= 0x0E:
        try:
            return DataCoding(data_coding)
        except ValueError:
            pass
    elif 0xC0 <= data_coding <= 0xDF:
        return DataCoding.DEFAULT
    elif 0xE0 <= data_coding <= 0xEF:
        return DataCoding.UCS2
    elif 0xF0 <= data_coding <= 0xFF:
        return DataCoding.BINARY if data_coding & 0x04 else DataCoding.DEFAULT
    raise CodingError(
        "unsupported_coding", f"data_coding 0x{data_coding:02X}", status=ESME_RSUBMITFAIL
    )


def _refuse(data_coding: int) -> NoReturn:
    """Raise the reason a ``data_coding`` is no text coding we carry."""
    reason = "not_text" if alphabet_of(data_coding) in _BINARY_CODINGS else "unsupported_coding"
    raise CodingError(reason, f"data_coding 0x{data_coding:02X}", status=ESME_RSUBMITFAIL)


def _decode_ia5(data: bytes) -> str:
    if not data.isascii():
        at = next(i for i, octet in enumerate(data) if octet > 0x7F)
        raise CodingError("ia5_bad_octet", f"octet 0x{data[at]:02X} at {at}")
    return data.decode("ascii")


def _decode_ucs2(data: bytes) -> str:
    if len(data) % 2:
        raise CodingError("ucs2_odd_length", f"{len(data)} octets")
    try:
        return data.decode("utf-16-be")
    except UnicodeDecodeError as exc:
        raise CodingError("ucs2_bad_surrogate", f"at octet {exc.start}") from None


def _octet_decoder(codec: str) -> Callable[[bytes], str]:
    def decode(data: bytes) -> str:
        try:
            return data.decode(codec)
        except UnicodeDecodeError as exc:
            at = exc.start
            raise CodingError("undecodable", f"octet 0x{data[at]:02X} at {at}") from None

    return decode


def _python_encoder(codec: str, data_coding: int) -> Callable[[str], bytes]:
    def encode(text: str) -> bytes:
        try:
            return text.encode(codec)
        except UnicodeEncodeError as exc:
            raise CodingError(
                "unencodable",
                f"{text[exc.start]!r} at {exc.start} in data_coding 0x{data_coding:02X}",
                status=ESME_RSYSERR,
            ) from None

    return encode


def _text_codings() -> dict[int, DataCoding]:
    """Every data_coding value that carries text we handle, and its alphabet."""
    carried = {DataCoding.DEFAULT, DataCoding.IA5, DataCoding.UCS2, *_OCTET_CODECS}
    found: dict[int, DataCoding] = {}
    for data_coding in range(256):
        try:
            alphabet = alphabet_of(data_coding)
        except CodingError:
            continue
        if alphabet in carried:
            found[data_coding] = alphabet
    return found


# Looked up per message, so built once: enum comparisons cost a microsecond each on 3.11.
_TEXT_ALPHABET: Final = _text_codings()
_DECODERS: Final[dict[int, Callable[[bytes], str]]] = {
    data_coding: {
        DataCoding.DEFAULT: _decode_gsm,
        DataCoding.IA5: _decode_ia5,
        DataCoding.UCS2: _decode_ucs2,
    }.get(alphabet)
    or _octet_decoder(_OCTET_CODECS[alphabet])
    for data_coding, alphabet in _TEXT_ALPHABET.items()
}
_ENCODERS: Final[dict[int, Callable[[str], bytes]]] = {
    data_coding: _encode_gsm
    if alphabet == DataCoding.DEFAULT
    else _python_encoder(
        {DataCoding.IA5: "ascii", DataCoding.UCS2: "utf-16-be"}.get(alphabet)
        or _OCTET_CODECS[alphabet],
        data_coding,
    )
    for data_coding, alphabet in _TEXT_ALPHABET.items()
}


def decode_text(data: bytes, data_coding: int) -> str:
    """The text that ``data`` carries in ``data_coding``; anything else is a CodingError."""
    decoder = _DECODERS.get(data_coding)
    if decoder is None:
        _refuse(data_coding)
    return decoder(data)


def encode_text(text: str, data_coding: int) -> bytes:
    """``text`` as octets in ``data_coding``; a character it cannot carry is a CodingError."""
    encoder = _ENCODERS.get(data_coding)
    if encoder is None:
        _refuse(data_coding)
    return encoder(text)


def choose_coding(text: str, *, allow_latin1: bool = False) -> DataCoding:
    """GSM 03.38 when it carries every character, else Latin-1 when allowed and it carries
    them, else UCS2 (SPEC GW-09: Cyrillic replies go out as UCS2)."""
    if gsm_encodable(text):
        return DataCoding.DEFAULT
    if allow_latin1 and all(ord(char) <= 0xFF for char in text):
        return DataCoding.LATIN1
    return DataCoding.UCS2


# --- splitting -----------------------------------------------------------------------------------

# 3GPP TS 23.040 §9.2.3.24.1 (IEI 0x00, 8-bit reference) and §9.2.3.24.8 (IEI 0x08, 16-bit).
IEI_CONCAT_8BIT: Final = 0x00
IEI_CONCAT_16BIT: Final = 0x08
# 140 octets of TP-UD (3GPP TS 23.040 §9.2.3.24); a UDH of 6 (8-bit ref) or 7 octets
# (16-bit ref) leaves 134/133 octets, 153/152 septets (fill bits to a septet boundary) or
# 67/66 UCS2 code units. Index 0: single part; 1: 8-bit ref; 2: 16-bit ref.
_SEPTET_CAPACITY: Final = (160, 153, 152)
_UCS2_CAPACITY: Final = (70, 67, 66)
_OCTET_CAPACITY: Final = (140, 134, 133)
_MAX_PARTS: Final = 255
_MAX_PAYLOAD: Final = 0xFFFF  # message_payload length is 2 octets, SMPP 3.4 §5.3.2.32


@attrs.frozen(kw_only=True)
class Part:
    """One short message of a (possibly) concatenated text.

    ``short_message`` includes the UDH when ``esm_class_udhi`` is set; ``sar`` is
    (sar_msg_ref_num, sar_total_segments, sar_segment_seqnum) when the concatenation travels
    in the SMPP 3.4 §5.3.2.22-24 TLVs instead of a UDH.
    """

    short_message: bytes
    data_coding: int
    esm_class_udhi: bool
    sar: tuple[int, int, int] | None = None


# The pair a cut must not separate, per alphabet.
_NO_PAIR, _ESCAPE_PAIR, _SURROGATE_PAIR = 0, 1, 2


def _split_rules(alphabet: DataCoding) -> tuple[tuple[int, int, int], int]:
    """(octets of body per part: single, 8-bit ref, 16-bit ref; the pair to keep whole)."""
    if alphabet == DataCoding.DEFAULT:
        return _SEPTET_CAPACITY, _ESCAPE_PAIR
    if alphabet == DataCoding.IA5:
        # A 7-bit alphabet: the SMSC sends it on to the handset as septets.
        return _SEPTET_CAPACITY, _NO_PAIR
    if alphabet == DataCoding.UCS2:
        return (2 * _UCS2_CAPACITY[0], 2 * _UCS2_CAPACITY[1], 2 * _UCS2_CAPACITY[2]), (
            _SURROGATE_PAIR
        )
    return _OCTET_CAPACITY, _NO_PAIR


_SPLIT_RULES: Final = {
    data_coding: _split_rules(alphabet) for data_coding, alphabet in _TEXT_ALPHABET.items()
}


def _cut(encoded: bytes, pair: int, capacity: int) -> list[bytes]:
    """Cut encoded text into bodies of at most ``capacity`` octets, moving a cut back by one
    octet before a GSM ESC, or by two after a UTF-16 high surrogate, so no pair is split.

    In GSM 03.38 octets 0x1B is only ever an escape lead (no extension code is 0x1B), and
    in UTF-16 a high surrogate is only ever the first half of a pair.
    """
    bodies: list[bytes] = []
    start, length = 0, len(encoded)
    while start < length:
        end = min(start + capacity, length)
        if end < length:
            if pair == _ESCAPE_PAIR and encoded[end - 1] == _ESC:
                end -= 1
            elif pair == _SURROGATE_PAIR and 0xD8 <= encoded[end - 2] <= 0xDB:
                end -= 2
        bodies.append(encoded[start:end])
        start = end
    return bodies


def split_text(
    text: str,
    *,
    data_coding: int | None = None,
    reference: int,
    reference_16bit: bool = False,
    use_sar: bool = False,
) -> list[Part]:
    """``text`` as one short message when it fits, else as concatenated parts (SPEC GW-09).

    Parts carry a UDH (IEI 0x00 or 0x08) with esm_class UDHI, or with ``use_sar`` no UDH
    and ``sar`` values; sar parts keep the UDH-sized capacity so the next hop can add one.
    ``data_coding`` defaults to ``choose_coding(text)``.
    """
    coding = choose_coding(text) if data_coding is None else data_coding
    encoded = encode_text(text, coding)
    (single, cap8, cap16), pair = _SPLIT_RULES[coding]
    if len(encoded) <= single:
        return [Part(short_message=encoded, data_coding=coding, esm_class_udhi=False)]
    if not 0 <= reference <= (0xFFFF if reference_16bit else 0xFF):
        raise CodingError("bad_reference", str(reference), status=ESME_RSYSERR)
    bodies = _cut(encoded, pair, cap16 if reference_16bit else cap8)
    total = len(bodies)
    if total > _MAX_PARTS:
        raise CodingError("too_many_parts", f"{total} parts", status=ESME_RSYSERR)
    parts: list[Part] = []
    for sequence, body in enumerate(bodies, start=1):
        if use_sar:
            parts.append(
                Part(
                    short_message=body,
                    data_coding=coding,
                    esm_class_udhi=False,
                    sar=(reference, total, sequence),
                )
            )
            continue
        if reference_16bit:
            udh = bytes((6, IEI_CONCAT_16BIT, 4, reference >> 8, reference & 0xFF, total, sequence))
        else:
            udh = bytes((5, IEI_CONCAT_8BIT, 3, reference, total, sequence))
        parts.append(Part(short_message=udh + body, data_coding=coding, esm_class_udhi=True))
    return parts


def payload_for(text: str, data_coding: int | None = None) -> tuple[int, bytes]:
    """(data_coding, the whole encoded text) for delivery in ``message_payload`` (GW-09)."""
    coding = choose_coding(text) if data_coding is None else data_coding
    encoded = encode_text(text, coding)
    if len(encoded) > _MAX_PAYLOAD:
        raise CodingError("payload_too_long", f"{len(encoded)} octets", status=ESME_RSYSERR)
    return coding, encoded


# --- UDH and reassembly ---------------------------------------------------------------------------


@attrs.frozen
class Concat:
    """Where a part sits in a concatenated message: from a UDH IE 0x00/0x08 or sar_* TLVs."""

    reference: int
    total: int
    sequence: int


def _concat_or_ignored(reference: int, total: int, sequence: int) -> Concat | None:
    # 3GPP TS 23.040 §9.2.3.24.1: a zero total, or a sequence of zero or above the total,
    # means "ignore the whole Information Element" - the part is then a message of its own.
    if total == 0 or not 1 <= sequence <= total:
        return None
    return Concat(reference, total, sequence)


def parse_udh(short_message: bytes) -> tuple[Concat | None, bytes]:
    """Split a UDHI short_message into its concatenation IE (if any) and the payload.

    Other IEs are skipped; of repeated concatenation IEs the last counts (3GPP TS 23.040
    §9.2.3.24). A UDH whose lengths do not add up is a CodingError.
    """
    if not short_message:
        raise CodingError("udh_missing", "UDHI set on an empty short_message")
    end = 1 + short_message[0]
    if end > len(short_message):
        raise CodingError("udh_truncated", f"UDHL {end - 1} in {len(short_message)} octets")
    concat: Concat | None = None
    position = 1
    while position < end:
        if position + 2 > end:
            raise CodingError("udh_bad_ie", f"IE header cut at octet {position}")
        iei, length = short_message[position], short_message[position + 1]
        start = position + 2
        position = start + length
        if position > end:
            raise CodingError("udh_bad_ie", f"IE 0x{iei:02X} of {length} octets overruns UDH")
        data = short_message[start:position]
        if iei == IEI_CONCAT_8BIT:
            if length != 3:
                raise CodingError("udh_bad_ie", f"IE 0x00 of {length} octets, expected 3")
            found = _concat_or_ignored(data[0], data[1], data[2])
        elif iei == IEI_CONCAT_16BIT:
            if length != 4:
                raise CodingError("udh_bad_ie", f"IE 0x08 of {length} octets, expected 4")
            found = _concat_or_ignored(data[0] << 8 | data[1], data[2], data[3])
        else:
            continue
        if found is not None:
            concat = found
    return concat, short_message[end:]


@attrs.frozen(kw_only=True)
class Expired:
    """A partial message given up: timed out, or evicted to keep ``max_pending``."""

    key: Hashable
    reference: int
    total: int
    received: tuple[int, ...]
    started: float
    evicted: bool = False


@attrs.define
class _Pending:
    total: int
    data_coding: int
    started: float
    parts: dict[int, bytes]


class Reassembler:
    """Concatenated MO parts put back together (SPEC GW-09), sans-IO: time is passed in.

    A message is identified by the caller's ``key`` (say, source and destination address)
    and its reference. Its age counts from its first part; ``expire`` gives up those whose
    age reached ``timeout``. At most ``max_pending`` partial messages are held: a new one
    beyond that evicts the oldest, which the next ``expire`` reports. Duplicated parts are
    ignored (the first copy counts); a duplicate arriving after its message completed starts
    a new partial message, which ``expire`` will report - a reference can be reused, so
    there is no telling a late duplicate from a new message.
    """

    def __init__(self, timeout: float = 60.0, max_pending: int = 10000) -> None:
        if timeout <= 0 or max_pending < 1:
            raise ValueError("timeout must be > 0 and max_pending >= 1")
        self.timeout = timeout
        self.max_pending = max_pending
        # Insertion order is start order (``now`` never goes back): expiry stops at the
        # first message still young, and eviction takes the first.
        self._pending: dict[tuple[Hashable, int], _Pending] = {}
        self._evicted: deque[Expired] = deque(maxlen=max_pending)

    def __len__(self) -> int:
        return len(self._pending)

    def add(
        self, key: Hashable, concat: Concat, payload: bytes, data_coding: int, now: float
    ) -> bytes | None:
        """Take one part; return the whole payload (parts in sequence order) once complete.

        Payloads are octets, not text: decode the result once, so a surrogate or escape pair
        that another sender cut across parts comes back whole.
        """
        if not 1 <= concat.total <= _MAX_PARTS or not 1 <= concat.sequence <= concat.total:
            raise CodingError("bad_concat", f"part {concat.sequence} of {concat.total}")
        if not 0 <= concat.reference <= 0xFFFF:
            raise CodingError("bad_concat", f"reference {concat.reference}")
        slot = (key, concat.reference)
        pending = self._pending.get(slot)
        if pending is None:
            if concat.total == 1:
                return payload
            pending = _Pending(concat.total, data_coding, now, {})
            if len(self._pending) >= self.max_pending:
                self._evict_oldest()
            self._pending[slot] = pending
        elif pending.total != concat.total:
            raise CodingError("inconsistent_total", f"total {concat.total} after {pending.total}")
        elif pending.data_coding != data_coding:
            raise CodingError(
                "inconsistent_coding",
                f"data_coding 0x{data_coding:02X} after 0x{pending.data_coding:02X}",
            )
        pending.parts.setdefault(concat.sequence, payload)
        if len(pending.parts) < pending.total:
            return None
        del self._pending[slot]
        return b"".join(pending.parts[sequence] for sequence in range(1, pending.total + 1))

    def expire(self, now: float) -> list[Expired]:
        """Remove and report the evicted and the timed-out partial messages."""
        expired = list(self._evicted)
        self._evicted.clear()
        while self._pending:
            slot = next(iter(self._pending))
            pending = self._pending[slot]
            # Compared as a deadline, not an age: (start + timeout) - start can round below
            # timeout, and a caller's timer set for start + timeout must find it expired.
            if now < pending.started + self.timeout:
                break
            del self._pending[slot]
            expired.append(_expired(slot, pending, evicted=False))
        return expired

    def _evict_oldest(self) -> None:
        slot = next(iter(self._pending))
        self._evicted.append(_expired(slot, self._pending.pop(slot), evicted=True))


def _expired(slot: tuple[Hashable, int], pending: _Pending, *, evicted: bool) -> Expired:
    return Expired(
        key=slot[0],
        reference=slot[1],
        total=pending.total,
        received=tuple(sorted(pending.parts)),
        started=pending.started,
        evicted=evicted,
    )


# --- USSD (SPEC GW-11) ----------------------------------------------------------------------------

# 160 octets of USSD string (3GPP TS 23.038 §6.1.2.3.1): 182 packed septets or 80 UCS2 units.
USSD_MAX_SEPTETS: Final = 182
USSD_MAX_UCS2: Final = 80


def ussd_capacity(text: str) -> int:
    """How many characters one USSD message of ``text``'s coding holds (SPEC GW-11)."""
    return USSD_MAX_SEPTETS if choose_coding(text) == DataCoding.DEFAULT else USSD_MAX_UCS2


def fits_ussd(text: str) -> bool:
    """``text`` fits one USSD message: ≤ 182 septets in GSM 03.38, else ≤ 80 UTF-16 code
    units in UCS2 (SPEC GW-11)."""
    if gsm_encodable(text):
        return septet_length(text) <= USSD_MAX_SEPTETS
    # Counted, not encoded: a lone surrogate is one code unit too long to fit or not.
    return len(text.encode("utf-16-be", "surrogatepass")) <= 2 * USSD_MAX_UCS2
