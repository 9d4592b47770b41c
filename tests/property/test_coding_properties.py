"""Properties of gateway/coding.py: round trips, splitting, reassembly, hostile input."""

from __future__ import annotations

import codecs

import gsm0338  # noqa: F401  (registers the codec the strategy is built from)
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.coding import (
    CodingError,
    Concat,
    DataCoding,
    Part,
    Reassembler,
    choose_coding,
    decode_text,
    encode_text,
    parse_udh,
    split_text,
)


def _gsm0338(data: bytes) -> str | None:
    try:
        return codecs.decode(data, "gsm03.38")
    except UnicodeDecodeError:
        return None


# Built from the gsm0338 codec here, not from the module under test.
GSM_BASIC = sorted(
    {char for s in range(0x80) if s != 0x1B and (char := _gsm0338(bytes((s,)))) is not None}
)
GSM_EXTENSION = sorted(
    {char for s in range(0x80) if (char := _gsm0338(bytes((0x1B, s)))) is not None}
)
assert set("€[]{}~\\^|") <= set(GSM_EXTENSION)


def gsm_texts(min_size: int = 0, max_size: int = 200) -> st.SearchStrategy[str]:
    """Half the characters from the extension table, so escape pairs meet part boundaries."""
    alphabet = st.one_of(st.sampled_from(GSM_BASIC), st.sampled_from(GSM_EXTENSION))
    return st.text(alphabet=alphabet, min_size=min_size, max_size=max_size)


def ucs2_texts(min_size: int = 0, max_size: int = 200) -> st.SearchStrategy[str]:
    """Any text: BMP, Cyrillic and astral characters (surrogate pairs in UTF-16)."""
    alphabet = st.one_of(
        st.characters(codec="utf-8"),
        st.characters(min_codepoint=0x10000, codec="utf-8"),
        st.characters(min_codepoint=0x400, max_codepoint=0x4FF),
    )
    return st.text(alphabet=alphabet, min_size=min_size, max_size=max_size)


def latin1_texts(min_size: int = 0, max_size: int = 200) -> st.SearchStrategy[str]:
    return st.text(alphabet=st.characters(max_codepoint=0xFF), min_size=min_size, max_size=max_size)


def ia5_texts(min_size: int = 0, max_size: int = 200) -> st.SearchStrategy[str]:
    return st.text(alphabet=st.characters(max_codepoint=0x7F), min_size=min_size, max_size=max_size)


def _coded_texts(min_size: int) -> st.SearchStrategy[tuple[str, DataCoding | None]]:
    return st.one_of(
        st.tuples(gsm_texts(min_size, 600), st.just(DataCoding.DEFAULT)),
        st.tuples(ucs2_texts(min_size // 2, 300), st.just(DataCoding.UCS2)),
        st.tuples(latin1_texts(min_size, 500), st.just(DataCoding.LATIN1)),
        st.tuples(ia5_texts(min_size, 500), st.just(DataCoding.IA5)),
        st.tuples(ucs2_texts(min_size // 2, 300), st.none()),
    )


# Mostly texts long enough to need several parts: short ones rarely reach the boundaries.
coded_texts = st.one_of(_coded_texts(0), _coded_texts(130), _coded_texts(130))

CAPACITY = {  # units per part: (single, 8-bit reference, 16-bit reference)
    DataCoding.DEFAULT: (160, 153, 152),
    DataCoding.IA5: (160, 153, 152),
    DataCoding.UCS2: (140, 134, 132),  # octets: 70, 67, 66 UTF-16 code units
    DataCoding.LATIN1: (140, 134, 133),
}


@given(gsm_texts(max_size=400))
def test_gw_09_gsm_text_round_trips_and_matches_gsm0338(text: str) -> None:
    """decode(encode(t)) == t for GSM text, and the octets are gsm0338's."""
    encoded = encode_text(text, DataCoding.DEFAULT)
    assert encoded == codecs.encode(text, "gsm03.38")
    assert decode_text(encoded, DataCoding.DEFAULT) == text


@settings(max_examples=300)
@given(st.binary(max_size=60).map(lambda data: bytes(octet & 0x7F for octet in data)))
def test_gw_09_gsm_septets_decode_as_gsm0338_says(data: bytes) -> None:
    """Any septets decode as the gsm0338 codec decodes them, or are refused where it fails
    or where it silently drops a final ESC."""
    expected = _gsm0338(data)
    try:
        text = decode_text(data, DataCoding.DEFAULT)
    except CodingError as err:
        assert err.reason == "gsm_bad_escape"
        assert expected is None or (len(data) - len(data.rstrip(b"\x1b"))) % 2 == 1
    else:
        assert text == expected


@given(st.text(alphabet=st.one_of(st.characters(max_codepoint=0x7F), st.characters()), max_size=80))
def test_gw_09_gsm_is_chosen_exactly_when_gsm0338_can_encode(text: str) -> None:
    """choose_coding says GSM exactly when gsm0338 encodes the text and it has no ESC."""
    try:
        codecs.encode(text, "gsm03.38")
        expected = "\x1b" not in text
    except UnicodeEncodeError:
        expected = False
    assert (choose_coding(text) == DataCoding.DEFAULT) is expected


@given(ucs2_texts())
def test_gw_09_any_text_round_trips_in_ucs2(text: str) -> None:
    """decode(encode(t)) == t in UCS2, astral characters included."""
    assert decode_text(encode_text(text, DataCoding.UCS2), DataCoding.UCS2) == text


@given(latin1_texts())
def test_gw_09_latin1_text_round_trips(text: str) -> None:
    """decode(encode(t)) == t in Latin-1."""
    assert decode_text(encode_text(text, DataCoding.LATIN1), DataCoding.LATIN1) == text


@given(st.text(max_size=200))
def test_gw_09_chosen_coding_always_carries_the_text(text: str) -> None:
    """Whatever the text, the coding choose_coding picks encodes and decodes it."""
    for allow_latin1 in (False, True):
        chosen = choose_coding(text, allow_latin1=allow_latin1)
        assert decode_text(encode_text(text, chosen), chosen) == text


def _unpack(part: Part, reference: int, reference_16bit: bool, use_sar: bool) -> tuple[int, bytes]:
    """(sequence, body) of one part, checking how it says where it belongs."""
    if part.esm_class_udhi:
        assert not use_sar and part.sar is None
        udh_length = 7 if reference_16bit else 6
        assert part.short_message[0] == udh_length - 1
        assert part.short_message[1] == (0x08 if reference_16bit else 0x00)
        concat, body = parse_udh(part.short_message)
        assert concat is not None and concat.reference == reference
        return concat.sequence, body
    assert use_sar and part.sar is not None and part.sar[0] == reference
    return part.sar[2], part.short_message


@settings(max_examples=200)
@given(
    coded_texts,
    st.booleans(),
    st.booleans(),
    st.integers(min_value=0, max_value=0xFFFF),
)
def test_gw_09_split_parts_rejoin_to_the_text_within_capacity(
    coded: tuple[str, DataCoding | None], reference_16bit: bool, use_sar: bool, reference: int
) -> None:
    """Parts decode and rejoin to the text, fit their capacity, never end mid-pair."""
    text, data_coding = coded
    if not reference_16bit:
        reference &= 0xFF
    parts = split_text(
        text,
        data_coding=data_coding,
        reference=reference,
        reference_16bit=reference_16bit,
        use_sar=use_sar,
    )
    coding = choose_coding(text) if data_coding is None else data_coding
    single, cap8, cap16 = CAPACITY[DataCoding(coding)]
    assert all(part.data_coding == coding for part in parts)
    if len(parts) == 1 and not parts[0].esm_class_udhi and parts[0].sar is None:
        assert len(parts[0].short_message) <= single
        assert decode_text(parts[0].short_message, coding) == text
        return
    bodies = [_unpack(part, reference, reference_16bit, use_sar) for part in parts]
    assert [sequence for sequence, _ in bodies] == list(range(1, len(parts) + 1))
    for part in parts:
        if part.sar is not None:
            assert part.sar[1] == len(parts)
    assert "".join(decode_text(body, coding) for _, body in bodies) == text
    for _, body in bodies:
        assert 0 < len(body) <= (cap16 if reference_16bit else cap8)
        if coding == DataCoding.DEFAULT:
            # No extension code is 0x1B, so a final ESC is always one without its partner.
            assert not body.endswith(b"\x1b")
        if coding == DataCoding.UCS2:
            assert not 0xD8 <= body[-2] <= 0xDB


@settings(max_examples=150)
@given(st.data(), coded_texts, st.booleans(), st.booleans())
def test_gw_09_reassembler_recovers_text_in_any_order_with_duplicates(
    data: st.DataObject, coded: tuple[str, DataCoding | None], reference_16bit: bool, use_sar: bool
) -> None:
    """Parts in any order, some twice, give the text back exactly once, when the last arrives."""
    text, data_coding = coded
    reference = data.draw(st.integers(0, 0xFFFF if reference_16bit else 0xFF))
    parts = split_text(
        text,
        data_coding=data_coding,
        reference=reference,
        reference_16bit=reference_16bit,
        use_sar=use_sar,
    )
    coding = parts[0].data_coding
    indices = list(range(len(parts)))
    extra = data.draw(st.lists(st.sampled_from(indices), max_size=len(parts) * 2))
    arrivals = data.draw(st.permutations(indices + extra))
    joined = Reassembler()
    seen: set[int] = set()
    for step, index in enumerate(arrivals):
        part = parts[index]
        if part.esm_class_udhi:
            concat, body = parse_udh(part.short_message)
            assert concat is not None
        elif part.sar is not None:
            concat, body = Concat(*part.sar), part.short_message
        else:
            concat, body = Concat(reference, 1, 1), part.short_message
        seen.add(index)
        result = joined.add(("src", "dst"), concat, body, coding, now=float(step))
        if len(seen) < len(parts):
            assert result is None
            continue
        assert result is not None
        assert decode_text(result, coding) == text
        assert len(joined) == 0
        break
    else:
        raise AssertionError("never completed")


@given(
    st.integers(min_value=2, max_value=20),
    st.data(),
    st.floats(min_value=0, max_value=1e6, allow_nan=False),
    st.floats(min_value=0.5, max_value=600),
)
def test_gw_09_incomplete_message_expires_after_the_timeout_not_before(
    total: int, data: st.DataObject, start: float, timeout: float
) -> None:
    """A message missing a part is not reported before timeout, then reported once, removed."""
    delivered = data.draw(
        st.lists(st.integers(1, total), min_size=1, max_size=total - 1, unique=True)
    )
    joined = Reassembler(timeout=timeout)
    for offset, sequence in enumerate(delivered):
        now = start + min(offset * timeout / total, timeout / 2)
        assert joined.add("k", Concat(42, total, sequence), b"p", 0, now=now) is None
    before = data.draw(st.floats(min_value=start, max_value=start + timeout * 0.999))
    assert joined.expire(before) == []
    assert len(joined) == 1
    [expired] = joined.expire(start + timeout)
    assert (expired.key, expired.reference, expired.total) == ("k", 42, total)
    assert expired.received == tuple(sorted(delivered)) and not expired.evicted
    assert len(joined) == 0 and joined.expire(start + 2 * timeout) == []


@settings(max_examples=300)
@given(st.binary(max_size=300), st.integers(min_value=-2, max_value=0x101))
def test_gw_09_arbitrary_octets_decode_or_raise_only_coding_error(data: bytes, dc: int) -> None:
    """Any octets in any data_coding: text or CodingError, nothing else."""
    try:
        text = decode_text(data, dc)
    except CodingError as err:
        assert err.reason and err.status in (0x01, 0x45)
    else:
        assert isinstance(text, str)


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_gw_09_arbitrary_octets_into_parse_udh_raise_only_coding_error(data: bytes) -> None:
    """Any octets: a (Concat | None, payload) whose payload is a suffix, or CodingError."""
    try:
        concat, payload = parse_udh(data)
    except CodingError as err:
        assert err.reason.startswith("udh_") and err.status == 0x01
    else:
        assert data.endswith(payload) and len(payload) == len(data) - 1 - data[0]
        if concat is not None:
            assert 1 <= concat.sequence <= concat.total


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b"]),
            st.builds(
                Concat,
                st.integers(-1, 3),
                st.integers(-1, 4),
                st.integers(-1, 5),
            ),
            st.sampled_from([0, 8]),
        ),
        max_size=30,
    )
)
def test_gw_09_arbitrary_concat_values_raise_only_coding_error(
    arrivals: list[tuple[str, Concat, int]],
) -> None:
    """The reassembler answers any sequence of parts with bytes, None or CodingError."""
    joined = Reassembler(timeout=5.0, max_pending=3)
    for now, (key, concat, data_coding) in enumerate(arrivals):
        try:
            joined.add(key, concat, b"x", data_coding, now=float(now))
        except CodingError as err:
            assert err.reason in {"bad_concat", "inconsistent_total", "inconsistent_coding"}
        assert len(joined) <= 3
        joined.expire(float(now))
