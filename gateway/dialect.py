"""USSD dialects: how each ESME account writes a USSD dialogue over SMPP (DESIGN.md "The USSD
dialect"), translated to and from the simulator's own convention, SPEC GW-10.

Real USSD gateways disagree: one sends ``ussd_service_op`` 2 on every message and marks the
end by the low bit of ``its_session_info`` (Tata), one ends with op 17, others with a vendor
op; and an unpatched python-smpplib client crashes (``KeyError``) on a deliver_sm that
carries ``ussd_service_op`` at all. A :class:`Dialect` is those choices as data: which ops
mean begin, answer and abort in a submit_sm; which op a menu and a final text carry in our
deliver_sm (or none); whether the ``its_session_info`` end bit marks the end (both ways).
``EsmeAccount.dialect`` names one of :data:`DIALECTS`:

================  ==================================================================================
``default``       GW-10: in, 1 begins, 18 answers, 32 aborts; out, 2 for a menu, 17 for a final text
``its-end-bit``   out, op 2 always and the end in bit 0 of ``its_session_info`` (set on the final
                  text, clear otherwise; sent even when the ESME gave none); in, that bit set aborts
``no-ussd-op``    as ``default``, but deliver_sm carries no ``ussd_service_op`` (plain smpplib)
================  ==================================================================================

:meth:`Dialect.inbound` normalises what an ESME sent to GW-10's ops (``None`` when it says
nothing: the dialogue manager then decides by the text); :meth:`Dialect.outbound` turns the
simulator's "menu or final text" into the op and ``its_session_info`` to send. Pure values and
functions: ``gateway.routing`` applies them per session.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Final

import attrs

from gateway.pdu import UssdOp

#: its_session_info (SMPP 3.4 §5.3.2.43): octet 2, bit 0 — "end of session".
END_OF_SESSION_BIT: Final = 0x0001


class DialectError(ValueError):
    """An account names a dialect that does not exist."""

    code: Final = "unknown_dialect"


@attrs.frozen(kw_only=True)
class Dialect:
    """One way of writing USSD dialogues over SMPP; see the module docstring."""

    name: str
    begin: frozenset[int] = frozenset({UssdOp.PSSR_INDICATION})
    answer: frozenset[int] = frozenset({UssdOp.USSR_CONFIRM})
    abort: frozenset[int] = frozenset({UssdOp.RELEASE})
    menu_op: int | None = UssdOp.USSR_REQUEST
    final_op: int | None = UssdOp.PSSR_RESPONSE
    end_bit: bool = False

    def inbound(self, op: int | None, its_session_info: int | None) -> int | None:
        """The GW-10 op (1 begin, 18 answer, 32 abort) of what an ESME sent, or ``None``."""
        if self.end_bit and its_session_info is not None and its_session_info & END_OF_SESSION_BIT:
            return UssdOp.RELEASE
        if op is None:
            return None
        if op in self.abort:
            return UssdOp.RELEASE
        if op in self.begin:
            return UssdOp.PSSR_INDICATION
        if op in self.answer:
            return UssdOp.USSR_CONFIRM
        return None

    def outbound(self, *, end: bool, its_session_info: int | None) -> tuple[int | None, int | None]:
        """``(ussd_service_op, its_session_info)`` for a menu (``end=False``) or final text."""
        op = self.final_op if end else self.menu_op
        if not self.end_bit:
            return op, its_session_info
        its = its_session_info or 0
        its = its | END_OF_SESSION_BIT if end else its & ~END_OF_SESSION_BIT
        return op, its


DEFAULT: Final = Dialect(name="default")

#: The dialects an ESME account may name (``EsmeAccount.dialect``).
DIALECTS: Final[Mapping[str, Dialect]] = types.MappingProxyType(
    {
        "default": DEFAULT,
        "its-end-bit": Dialect(
            name="its-end-bit",
            answer=frozenset({UssdOp.USSR_CONFIRM, UssdOp.USSR_REQUEST}),
            final_op=UssdOp.USSR_REQUEST,
            end_bit=True,
        ),
        "no-ussd-op": Dialect(name="no-ussd-op", menu_op=None, final_op=None),
    }
)


def dialect(name: str) -> Dialect:
    """The dialect called ``name``, or ``DialectError`` listing the known ones."""
    try:
        return DIALECTS[name]
    except KeyError:
        raise DialectError(
            f"unknown USSD dialect {name!r}; known: {', '.join(sorted(DIALECTS))}"
        ) from None
