"""USSD dialects per ESME account (GW-10, DESIGN.md "The USSD dialect"): what each reads in a
submit_sm and writes in a deliver_sm, and the account setting that names one."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.config import ConfigError, EsmeAccount, load_config
from gateway.dialect import DIALECTS, DialectError, dialect

OPS = st.one_of(st.none(), st.integers(0, 255))
ITS = st.one_of(st.none(), st.integers(0, 0xFFFF))


def test_gw_10_default_reads_1_18_32_and_writes_2_and_17() -> None:
    """GW-10: the default dialect is the simulator's convention, its_session_info untouched."""
    d = dialect("default")
    assert [d.inbound(op, None) for op in (1, 18, 32, 2, 17, None)] == [1, 18, 32, None, None, None]
    assert d.outbound(end=False, its_session_info=0x1234) == (2, 0x1234)
    assert d.outbound(end=True, its_session_info=0x1234) == (17, 0x1234)
    assert d.outbound(end=True, its_session_info=None) == (17, None)


def test_gw_10_its_end_bit_sends_op_2_and_marks_the_end_in_bit_0() -> None:
    """GW-10 dialect its-end-bit: op 2 always; bit 0 of its_session_info set only on the final
    text (sent even when the ESME gave none); an MO with the bit set is an abort."""
    d = dialect("its-end-bit")
    assert d.outbound(end=False, its_session_info=0x0301) == (2, 0x0300)
    assert d.outbound(end=True, its_session_info=0x0300) == (2, 0x0301)
    assert d.outbound(end=True, its_session_info=None) == (2, 0x0001)
    assert d.inbound(1, 0x0300) == 1
    assert d.inbound(2, 0x0302) == 18
    assert d.inbound(18, 0x0301) == 32
    assert d.inbound(None, 0x0001) == 32


def test_gw_10_no_ussd_op_sends_no_op_at_all() -> None:
    """GW-10 dialect no-ussd-op: deliver_sm without ussd_service_op (plain smpplib clients)."""
    d = dialect("no-ussd-op")
    assert d.outbound(end=False, its_session_info=7) == (None, 7)
    assert d.outbound(end=True, its_session_info=None) == (None, None)
    assert d.inbound(1, None) == 1


@given(st.sampled_from(sorted(DIALECTS)), OPS, ITS, st.booleans())
def test_gw_10_every_dialect_maps_every_op_to_gw_10_or_nothing(
    name: str, op: int | None, its: int | None, end: bool
) -> None:
    """GW-10: whatever an ESME sends, a dialect yields 1, 18, 32 or None, and what it writes is
    an op of SMPP 3.4 §5.3.2.44 (or none) with a 16-bit its_session_info."""
    d = dialect(name)
    assert d.inbound(op, its) in (1, 18, 32, None)
    out_op, out_its = d.outbound(end=end, its_session_info=its)
    assert out_op in (2, 17, None)
    assert out_its is None or 0 <= out_its <= 0xFFFF
    if its is not None:
        assert out_its is not None and out_its >> 1 == its >> 1  # the session is echoed


def test_gw_10_an_account_names_a_known_dialect_or_is_refused(tmp_path: object) -> None:
    """GW-10: EsmeAccount.dialect must name a dialect; an unknown one is a ConfigError."""
    assert (
        EsmeAccount(system_id="tata", password="x", dialect="its-end-bit").dialect == "its-end-bit"
    )
    with pytest.raises(ConfigError, match="dialect must be one of"):
        EsmeAccount(system_id="odd", password="x", dialect="vendor-x")
    with pytest.raises(DialectError, match="known: default, its-end-bit, no-ussd-op"):
        dialect("vendor-x")


def test_gw_10_the_dialect_is_read_from_the_configuration_file(
    tmp_path: pytest.TempPathFactory,
) -> None:
    """GW-10: accounts in the YAML configuration carry their dialect."""
    from pathlib import Path

    path = Path(str(tmp_path)) / "c.yaml"
    path.write_text("accounts:\n  - {system_id: lab, password: lab, dialect: no-ussd-op}\n")
    assert load_config(path).accounts[0].dialect == "no-ussd-op"
    path.write_text("accounts:\n  - {system_id: lab, password: lab, dialect: nope}\n")
    with pytest.raises(ConfigError, match="dialect"):
        load_config(path)
