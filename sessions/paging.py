"""How much text one USSD message carries and how a longer screen is cut into pages (SPEC GW-11).

One USSD string is 160 octets (3GPP TS 23.038 §6.1.2.3.1): 182 GSM 7-bit septets — an
extension-table character costing two — or 80 UCS2 code units when the text is not all in the
GSM alphabet (the gateway then sends UCS2, GW-09). ``fits_ussd`` is that rule, pure and
without the gateway (``sessions`` does not import ``gateway``; the gateway may pass its own
``gateway.coding.fits_ussd``, and a test holds the two to the same answers). ``paginate``
cuts a screen that does not fit into pages at line breaks (a line longer than a page at
spaces, a word longer than a page between characters): every page but the last ends with the
paging line (``0 още``), every page fits with it, nothing is dropped.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Final

import gsm0338  # noqa: F401  # registers the "gsm03.38" codec

#: 3GPP TS 23.038 §6.1.2.3.1: 160 octets — 182 packed septets, 80 UCS2 code units.
USSD_MAX_SEPTETS: Final = 182
USSD_MAX_UCS2_UNITS: Final = 80

Fits = Callable[[str], bool]


def fits_ussd(text: str) -> bool:
    """``text`` fits one USSD message (GW-11): ≤ 182 septets if every character is in the GSM
    03.38 alphabet, else ≤ 80 UTF-16 code units."""
    if "\x1b" not in text:  # ESC is the codec's escape, not a character of the alphabet
        try:
            return len(text.encode("gsm03.38")) <= USSD_MAX_SEPTETS
        except UnicodeEncodeError:
            pass
    return len(text.encode("utf-16-be", "surrogatepass")) <= 2 * USSD_MAX_UCS2_UNITS


@functools.lru_cache(maxsize=4096)
def paginate(text: str, more: str, fits: Fits = fits_ussd) -> tuple[str, ...]:
    """``text`` as pages that each fit one USSD message; all but the last end with ``more``.

    Menus and prompts are few and fixed, so their pages are computed once (the cache).
    """
    if fits(text):
        return (text,)
    if not fits(more):
        raise ValueError(f"the paging line {more!r} does not fit a USSD message by itself")
    pages: list[str] = []
    current = ""
    for piece in _pieces(text, more, fits):
        candidate = piece if not current else f"{current}\n{piece}"
        if fits(f"{candidate}\n{more}"):
            current = candidate
            continue
        pages.append(f"{current}\n{more}")
        current = piece
    pages.append(current)
    return tuple(pages)


def _pieces(text: str, more: str, fits: Fits) -> list[str]:
    """The lines of ``text``, each cut further until it fits a page beside ``more``."""
    pieces: list[str] = []
    for line in text.split("\n"):
        if fits(f"{line}\n{more}"):
            pieces.append(line)
            continue
        pieces.extend(_cut(line, " ", more, fits))
    return pieces


def _cut(line: str, separator: str, more: str, fits: Fits) -> list[str]:
    """A line too long for a page, cut at ``separator`` (then between characters)."""
    parts = line.split(separator) if separator else list(line)
    out: list[str] = []
    current = ""
    for part in parts:
        if separator and not fits(f"{part}\n{more}"):
            if current:
                out.append(current)
                current = ""
            out.extend(_cut(part, "", more, fits))
            continue
        candidate = part if not current else f"{current}{separator}{part}"
        if fits(f"{candidate}\n{more}"):
            current = candidate
        else:
            out.append(current)
            current = part
    if current:
        out.append(current)
    return out
