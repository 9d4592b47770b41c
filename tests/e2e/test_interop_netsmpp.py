"""Perl Net::SMPP (Debian libnet-smpp-perl) as an independent client of the live gateway
(issue 2, issue 8 item 3): ``perl/ussd_dial.pl`` binds as transceiver, dials a USSD string
with the ussd_service_op and its_session_info TLVs, answers the gateway's deliver_sm and
unbinds; the test reads the JSON the script prints (GW-01, GW-02, GW-10)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.app import UNKNOWN_SERVICE_TEXT, Gateway
from tests.e2e.interop import (
    PSSR_RESPONSE,
    STRANGER_A,
    UNKNOWN_USSD,
    off_reactor,
    reactor_test,
    require_tool,
    run_bounded,
)

pytestmark = [pytest.mark.e2e, pytest.mark.interop]

SCRIPT = Path(__file__).parent / "perl" / "ussd_dial.pl"
PERL_TIMEOUT = 20.0


@reactor_test
async def test_gw_01_gw_02_gw_10_net_smpp_dials_ussd_and_gets_the_answer_with_its_tlvs(
    gateway: Gateway,
) -> None:
    """GW-01, GW-02, GW-10: Net::SMPP binds, dials with op 1, reads op 17 and unbinds."""
    require_tool(["perl", "-MNet::SMPP", "-e1"], package="libnet-smpp-perl")
    host, port = gateway.smpp_address
    args = ["perl", str(SCRIPT), host, str(port), "tester", "secret"]
    args += [STRANGER_A, UNKNOWN_USSD, "1234"]
    done = await off_reactor(run_bounded, args, PERL_TIMEOUT, timeout=PERL_TIMEOUT + 10)
    assert done.returncode == 0, f"stdout={done.stdout!r} stderr={done.stderr!r}"
    # Net::SMPP warns on stderr about any TLV tag it cannot name; ours are all standard.
    assert "Unknown tag" not in done.stderr, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)

    assert out["bind_status"] == 0 and out["bind_system_id"] == "ussdsim"
    assert out["submit_status"] == 0 and out["submit_message_id"]
    (answer,) = out["deliver_sm"]  # nothing but the dialogue's answer reached this ESME
    assert answer["service_type"] == "USSD"
    assert answer["ussd_service_op"] == PSSR_RESPONSE
    assert answer["its_session_info"] == "1234"  # echoed as sent (GW-10)
    assert answer["destination_addr"] == STRANGER_A
    assert answer["data_coding"] == 8 and answer["text"] == UNKNOWN_SERVICE_TEXT
    assert out["unbind_status"] == 0
    assert out["closed_after_unbind"] == 1  # GW-02: the gateway hangs up after unbind_resp
