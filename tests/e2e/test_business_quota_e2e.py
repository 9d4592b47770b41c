"""End to end for the business cabinet (BQ-01 … BQ-05) on a live gateway on 127.0.0.1: the
manager's handset is a python-smpplib ESME bound for its number, the one-time code arrives
there as a deliver_sm from 611, and the cabinet is driven over real HTTP."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from gateway.app import Gateway
from gateway.client import SmppClient
from services.clock import MINUTE
from services.profiles import Profiles, load_profiles
from tests.e2e.conftest import e2e_config, in_thread

pytestmark = pytest.mark.e2e

PROFILES: Profiles = load_profiles()
MANAGER, EMPLOYEE = "79520000100", "79520000101"  # ООО «Ромашка» (demo)
OTHER_MANAGER = "79520000200"  # АО «Вектор»
BASE = "/api/v1/tele2ru/business"


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    from twisted.internet import reactor

    gw = Gateway(e2e_config(tmp_path), reactor, profiles=PROFILES)
    gw.start()
    yield gw
    pytest_twisted.blockon(gw.stop())


def http(
    gateway: Gateway, method: str, path: str, body: object = None, *, token: bool = True
) -> tuple[int, Any]:
    """One real HTTP request to the control API; the status and the JSON answer."""
    host, port = gateway.http_address
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {gateway.api_token}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(
        f"http://{host}:{port}{path}", data=data, method=method, headers=headers
    )
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def manager_phone(gateway: Gateway, msisdn: str) -> SmppClient:
    """The manager's handset: an ESME bound as receiver for exactly its number."""
    host, port = gateway.smpp_address
    return SmppClient(host, port, timeout=5, bind="receiver", address_range=msisdn)


def code_by_sms(phone: SmppClient) -> tuple[str, str]:
    """The one-time code as the handset reads it, and the number it came from."""
    sms = phone.wait_for(lambda r: r.source == "611" and not r.is_receipt)
    found = re.search(r"\b(\d{6})\b", sms.text)
    assert found is not None, sms.text
    return found.group(1), sms.source


@pytest_twisted.inlineCallbacks
def test_bq_01_to_04_login_by_sms_code_then_a_quota_request_processed(gateway: Gateway) -> Any:
    """BQ-01 … BQ-04: the code arrives at the bound ESME, opens a session, a quota request
    is numbered and is done after the clock moves."""

    def story() -> dict[str, Any]:
        with manager_phone(gateway, MANAGER) as phone:
            status, challenge = http(gateway, "POST", f"{BASE}/login", {"phone": MANAGER})
            assert status == 202, challenge
            code, sender = code_by_sms(phone)
        wrong = code[:-1] + str((int(code[-1]) + 1) % 10)
        refused = http(gateway, "POST", f"{BASE}/session", {"phone": MANAGER, "code": wrong})
        status, session = http(gateway, "POST", f"{BASE}/session", {"phone": MANAGER, "code": code})
        assert status == 201, session
        token = session["token"]
        again = http(gateway, "POST", f"{BASE}/session", {"phone": MANAGER, "code": code})
        _, listed = http(gateway, "GET", f"{BASE}/subscribers?session={token}", token=False)
        status, made = http(
            gateway,
            "POST",
            f"{BASE}/subscribers/{EMPLOYEE}/quota",
            {"session": token, "amount": 200_000},
        )
        assert status == 202, made
        number = made["request"]["number"]
        _, before = http(gateway, "GET", f"{BASE}/requests/{number}?session={token}", token=False)
        http(gateway, "POST", "/api/v1/clock/advance", {"seconds": 10 * MINUTE})
        _, history = http(gateway, "GET", f"{BASE}/requests?session={token}", token=False)
        _, page = http(
            gateway, "GET", f"{BASE}/subscribers/{EMPLOYEE}?session={token}", token=False
        )
        return {
            "sender": sender,
            "refused": refused,
            "again": again,
            "listed": listed["subscribers"],
            "before": before["request"],
            "history": history["requests"],
            "page": page,
        }

    result = yield in_thread(story)
    assert result["sender"] == "611"
    assert result["refused"][0] == 401 and result["refused"][1]["error"] == "wrong_code"
    assert result["again"][0] == 401 and result["again"][1]["error"] == "code_used"
    assert [s["msisdn"] for s in result["listed"]] == [MANAGER, EMPLOYEE, "79520000102"]
    assert result["before"]["status"] == "accepted"
    (done,) = result["history"]
    assert done["status"] == "done" and done["number"] == result["before"]["number"]
    assert [e["status"] for e in done["events"]] == ["accepted", "in_progress", "done"]
    assert result["page"]["quota"]["amount"] == 200_000


@pytest_twisted.inlineCallbacks
def test_bq_05_another_companys_manager_cannot_reach_the_number(gateway: Gateway) -> Any:
    """BQ-05: «Вектор»'s manager logs in by its own SMS code and gets 404 for «Ромашка»."""

    def story() -> tuple[int, Any]:
        with manager_phone(gateway, OTHER_MANAGER) as phone:
            http(gateway, "POST", f"{BASE}/login", {"phone": OTHER_MANAGER})
            code, _ = code_by_sms(phone)
        _, session = http(
            gateway, "POST", f"{BASE}/session", {"phone": OTHER_MANAGER, "code": code}
        )
        return http(
            gateway, "GET", f"{BASE}/subscribers/{EMPLOYEE}?session={session['token']}", token=False
        )

    status, body = yield in_thread(story)
    assert (status, body["error"]) == (404, "subscriber_not_in_company")
