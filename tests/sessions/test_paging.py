"""GW-11: one USSD message is 182 GSM 7-bit characters or 80 UCS2 ones; longer screens are
paged with the paging item, never cut."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import coding
from sessions.paging import fits_ussd, paginate

GSM_TEXT = st.text(alphabet=st.sampled_from(sorted(coding.GSM_ALPHABET - {"\x1b"})), max_size=400)
ANY_TEXT = st.text(max_size=400)
LINES = st.lists(
    st.one_of(
        st.text(alphabet="abcdefgh ", min_size=0, max_size=60),
        st.text(alphabet="абвгдежз ", min_size=0, max_size=90),
        st.text(alphabet="€[]{}xy ", min_size=0, max_size=120),
    ),
    max_size=12,
).map("\n".join)


def test_gw_11_boundaries_182_septets_and_80_ucs2_units() -> None:
    """GW-11: 182 GSM characters fit and 183 do not; 80 Cyrillic fit, 81 do not; an extension
    character counts two septets; a character outside BMP counts two UCS2 units."""
    assert fits_ussd("a" * 182) and not fits_ussd("a" * 183)
    assert fits_ussd("ж" * 80) and not fits_ussd("ж" * 81)
    assert fits_ussd("€" * 91) and not fits_ussd("€" * 91 + "a")
    assert fits_ussd("😀" * 40) and not fits_ussd("😀" * 40 + "ж")


@settings(max_examples=150, deadline=None)
@given(st.one_of(GSM_TEXT, ANY_TEXT, LINES))
def test_gw_11_the_sessions_rule_agrees_with_the_gateways_coder(text: str) -> None:
    """GW-11: sessions' pure capacity rule gives the same answer as gateway.coding.fits_ussd."""
    assert fits_ussd(text) == coding.fits_ussd(text)


@settings(max_examples=150, deadline=None)
@given(LINES, st.sampled_from(["0 още", "0 далее", "9 more"]))
def test_gw_11_pages_fit_end_with_the_paging_item_and_lose_nothing(text: str, more: str) -> None:
    """GW-11: every page fits one message; every page but the last ends with the paging item;
    the pages hold every non-blank character of the text, in order."""
    pages = paginate(text, more)
    assert all(fits_ussd(page) for page in pages)
    assert all(page.endswith("\n" + more) for page in pages[:-1])
    if len(pages) == 1:
        assert pages[0] == text
    body = "".join(page.removesuffix("\n" + more) for page in pages[:-1]) + pages[-1]
    assert "".join(body.split()) == "".join(text.split())


def test_gw_11_a_short_text_is_one_page_as_it_is() -> None:
    """GW-11: a screen that fits is sent whole, without a paging item."""
    assert paginate("MyMenu\n1 Telenor paketi", "0 още") == ("MyMenu\n1 Telenor paketi",)


def test_gw_11_a_single_long_word_is_cut_between_characters_not_dropped() -> None:
    """GW-11: even a line without spaces longer than a page is carried whole over pages."""
    word = "ж" * 200
    pages = paginate(word, "0 още")
    assert len(pages) == 3
    assert "".join(p.removesuffix("\n0 още") for p in pages) == word
