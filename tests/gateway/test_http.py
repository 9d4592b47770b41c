"""Tests of gateway/http.py in-process: every endpoint, every error code and the token rule,
rendered through the twisted.web resource with DummyRequest on a MemoryReactorClock."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from twisted.internet.testing import MemoryReactorClock
from twisted.web.test.requesthelper import DummyRequest

from gateway import coding
from gateway import http as api_module
from gateway import pdu as P
from gateway.app import Gateway
from gateway.config import GatewayConfig
from gateway.http import (
    API_ERRORS,
    MAX_BODY,
    ApiRequest,
    ApiResponse,
    ControlApi,
    ensure_api_token,
)
from services.clock import DAY
from services.model import ERRORS, DomainError
from services.outbox import Reply
from services.profiles import Profiles, load_profiles
from services.store import NewMessage

START = int(dt.datetime(2024, 1, 31, 9, 0, tzinfo=dt.UTC).timestamp())
PROFILES: Profiles = load_profiles()
SMART = "79160000001"  # MTS «Наш Smart», 2000 ₽, 600 SMS in its package
SUPER = "79161234567"  # MTS «Супер МТС», 300 ₽, no packages: pays by the tariff's rates
KEEP = object()  # "send the gateway's own token"


@attrs.frozen
class Answer:
    status: int
    body: Any
    headers: Any


def _config(path: Path) -> GatewayConfig:
    return GatewayConfig(smpp_port=0, http_port=0, state_path=str(path))


def memory_reactor() -> Any:
    """A reactor that listens nowhere, its clock at START."""
    reactor = MemoryReactorClock()  # type: ignore[no-untyped-call]
    reactor.advance(START)
    return reactor


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state file with the demo population, made once and copied for each test."""
    path = tmp_path_factory.mktemp("template") / "state.sqlite3"
    reactor = memory_reactor()
    Gateway(_config(path), reactor, profiles=PROFILES).store.close()
    return path


@pytest.fixture
def gw(template: Path, tmp_path: Path) -> Iterator[Gateway]:
    path = tmp_path / "state.sqlite3"
    shutil.copy(template, path)
    reactor = memory_reactor()
    gateway = Gateway(_config(path), reactor, profiles=PROFILES)
    gateway.start()
    yield gateway
    gateway.store.close()


def call(
    gateway: Gateway | ControlApi,
    method: str,
    path: str,
    body: object = None,
    *,
    token: object = KEEP,
    raw: bytes | None = None,
) -> Answer:
    """One request rendered by the API's twisted.web resource."""
    api = gateway if isinstance(gateway, ControlApi) else gateway.api
    request: Any = DummyRequest([])
    request.method = method.encode()
    request.uri = path.encode()
    if raw is None:
        raw = b"" if body is None else json.dumps(body).encode()
    request.content = io.BytesIO(raw)
    if token is KEEP:
        token = api.token
    if token is not None:
        request.requestHeaders.setRawHeaders(b"authorization", [f"Bearer {token}".encode()])
    data = api.resource.render(request)
    assert request.responseHeaders.getRawHeaders(b"content-type") == [
        b"application/json; charset=utf-8"
    ]
    return Answer(request.responseCode, json.loads(data), request.responseHeaders)


def committed(gateway: Gateway, sql: str, *args: object) -> list[tuple[Any, ...]]:
    """Rows as another process would see them now: only what is committed."""
    with sqlite3.connect(gateway.store.path) as other:
        return other.execute(sql, args).fetchall()


def error_of(answer: Answer) -> tuple[int, str]:
    assert set(answer.body) == {"error", "message", "field"}
    assert answer.body["message"]
    return answer.status, answer.body["error"]


# -- the token rule ---------------------------------------------------------------------------


def test_get_needs_no_token(gw: Gateway) -> None:
    """Reading (GET, HEAD) works without a token."""
    assert call(gw, "GET", "/api/v1/clock", token=None).status == 200
    assert call(gw, "HEAD", f"/api/v1/subscribers/{SMART}", token=None).status == 200


@pytest.mark.parametrize("header", [None, "wrong", ""])
def test_mutating_calls_without_the_right_token_are_401(gw: Gateway, header: str | None) -> None:
    """POST and PATCH with no token or a wrong one: 401 unauthorized, and nothing changes."""
    before = gw.world.get(SMART).balance
    patch = call(gw, "PATCH", f"/api/v1/subscribers/{SMART}", {"top_up": 100}, token=header)
    advance = call(gw, "POST", "/api/v1/clock/advance", {"seconds": 60}, token=header)
    assert error_of(patch) == (401, "unauthorized")
    assert error_of(advance) == (401, "unauthorized")
    assert patch.headers.getRawHeaders(b"www-authenticate") == [b'Bearer realm="ussdsim"']
    assert gw.world.get(SMART).balance == before
    assert gw.world.clock.offset == 0


def test_only_the_bearer_scheme_is_accepted(gw: Gateway) -> None:
    """The token in another scheme (Basic) is refused; the Bearer scheme is case-blind."""
    request: Any = DummyRequest([])
    request.method, request.uri = b"POST", b"/api/v1/clock/advance"
    request.content = io.BytesIO(b'{"seconds": 1}')
    request.requestHeaders.setRawHeaders(b"authorization", [f"Basic {gw.api_token}".encode()])
    gw.api.resource.render(request)
    assert request.responseCode == 401
    request.requestHeaders.setRawHeaders(b"authorization", [f"bearer {gw.api_token}".encode()])
    gw.api.resource.render(request)
    assert request.responseCode == 200


def test_the_token_is_made_once_per_state_file_and_kept(gw: Gateway, tmp_path: Path) -> None:
    """The token is stored with the state: the same after a restart, another for other state."""
    token = gw.api_token
    assert len(token) >= 32
    assert ensure_api_token(gw.world) == token
    assert committed(gw, "SELECT value FROM settings WHERE key = 'api_token'") == [(token,)]
    gw.store.close()
    reactor = memory_reactor()
    again = Gateway(_config(Path(gw.store.path)), reactor, profiles=PROFILES)
    again.start()
    assert again.api_token == token
    other = Gateway(_config(tmp_path / "other.sqlite3"), reactor, profiles=PROFILES)
    other.start()
    assert other.api_token != token
    again.store.close()
    other.store.close()


def test_an_api_without_a_token_refuses_every_change(gw: Gateway) -> None:
    """Before the gateway starts there is no token, and no mutating call gets through."""
    api = ControlApi(gw)
    answer = call(api, "POST", "/api/v1/clock/advance", {"seconds": 1}, token="anything")
    assert error_of(answer) == (401, "unauthorized")
    assert call(api, "GET", "/api/v1/clock", token=None).status == 200


# -- subscribers ------------------------------------------------------------------------------


def test_create_subscriber_answers_201_with_the_subscriber(gw: Gateway) -> None:
    """POST /subscribers makes the subscriber with its options and packages, committed."""
    answer = call(
        gw,
        "POST",
        "/api/v1/subscribers",
        {
            "msisdn": "79169990001",
            "profile": "mts",
            "tariff": "super_mts",
            "balance": 12345,
            "region": "moscow",
            "company": "acme",
            "note": "made by a test",
            "options": ["bit"],
            "packages": [
                {"kind": "data", "amount": 500, "valid_for": "30d", "label": "Бонус"},
                {"kind": "voice", "amount": 10, "valid_until": START + DAY},
            ],
        },
    )
    assert answer.status == 201
    body = answer.body
    assert (body["msisdn"], body["profile"], body["tariff"]) == ("79169990001", "mts", "super_mts")
    assert (body["balance"], body["status"], body["company"]) == (12345, "active", "acme")
    assert [option["code"] for option in body["options"]] == ["bit"]
    assert call(gw, "GET", "/api/v1/subscribers/79169990001", token=None).body == body
    packages = call(gw, "GET", "/api/v1/subscribers/79169990001/packages").body["packages"]
    granted = {
        (p["kind"], p["initial"], p["valid_until"]) for p in packages if p["source"] == "grant"
    }
    assert granted == {("data", 500, START + 30 * DAY), ("voice", 10, START + DAY)}
    assert committed(gw, "SELECT balance FROM subscribers WHERE msisdn = '79169990001'") == [
        (12345,)
    ]


NEW = {"msisdn": "79169990002", "profile": "mts", "tariff": "super_mts"}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({**NEW, "msisdn": SMART}, 409, "duplicate_msisdn"),
        ({**NEW, "profile": "vodafone"}, 422, "unknown_profile"),
        ({**NEW, "tariff": "free_for_ever"}, 422, "unknown_tariff"),
        ({**NEW, "options": ["no_such_option"]}, 422, "unknown_option"),
        ({**NEW, "colour": "red"}, 422, "unknown_field"),
        ({"msisdn": "79169990002", "profile": "mts"}, 422, "missing_field"),
        ({**NEW, "balance": "100"}, 422, "wrong_type"),
        ({**NEW, "balance": 1.5}, 422, "wrong_type"),
        ({**NEW, "msisdn": 79169990002}, 422, "wrong_type"),
        ({**NEW, "fee_paid": "yes"}, 422, "wrong_type"),
        ({**NEW, "note": 7}, 422, "wrong_type"),
        ({**NEW, "options": "bit"}, 422, "wrong_type"),
        ({**NEW, "packages": {"kind": "data"}}, 422, "wrong_type"),
        ({**NEW, "msisdn": "89161234567"}, 422, "invalid_value"),
        ({**NEW, "status": "asleep"}, 422, "invalid_value"),
        ({**NEW, "region": "mars"}, 422, "invalid_value"),
        (
            {**NEW, "packages": [{"kind": "data", "amount": 5, "valid_for": "1x"}]},
            422,
            "invalid_value",
        ),
        ({**NEW, "packages": [{"kind": "data"}]}, 422, "missing_field"),
        ({**NEW, "packages": [{"kind": "data", "amount": 5, "size": 1}]}, 422, "unknown_field"),
        ({**NEW, "packages": [{"kind": "fax", "amount": 5}]}, 422, "invalid_value"),
    ],
)
def test_create_subscriber_refusals(
    gw: Gateway, body: dict[str, Any], status: int, code: str
) -> None:
    """Each bad creation gets its own code, and nothing of it is kept (packages included)."""
    answer = call(gw, "POST", "/api/v1/subscribers", body)
    assert error_of(answer) == (status, code)
    if body.get("msisdn") == "79169990002":
        assert gw.world.find("79169990002") is None
        assert committed(gw, "SELECT 1 FROM subscribers WHERE msisdn = '79169990002'") == []


def test_list_subscribers_filters(gw: Gateway) -> None:
    """GET /subscribers filters by profile, company, tariff and status; typos are refused."""
    telenor = call(gw, "GET", "/api/v1/subscribers?profile=telenor").body["subscribers"]
    assert telenor and {s["profile"] for s in telenor} == {"telenor"}
    romashka = call(gw, "GET", "/api/v1/subscribers?company=romashka").body["subscribers"]
    assert len(romashka) >= 2 and {s["company"] for s in romashka} == {"romashka"}
    blocked = call(gw, "GET", "/api/v1/subscribers?status=blocked_financial&profile=mts")
    assert "79160000004" in [s["msisdn"] for s in blocked.body["subscribers"]]
    everybody = call(gw, "GET", "/api/v1/subscribers").body["subscribers"]
    assert len(everybody) == len(gw.world.subscribers())
    empty = call(gw, "GET", "/api/v1/subscribers?profile=&company=").body["subscribers"]
    assert empty == everybody
    assert error_of(call(gw, "GET", "/api/v1/subscribers?colour=red")) == (422, "unknown_field")
    assert error_of(call(gw, "GET", "/api/v1/subscribers?status=asleep")) == (422, "invalid_value")
    answer = call(gw, "GET", "/api/v1/subscribers?profile=vodafone")
    assert error_of(answer) == (422, "unknown_profile")
    answer = call(gw, "GET", "/api/v1/subscribers?profile=mts&profile=telenor")
    assert error_of(answer) == (422, "invalid_value")


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("PATCH", "", {"top_up": 100}),
        ("GET", "/packages", None),
        ("GET", "/ledger", None),
        ("GET", "/usage", None),
        ("POST", "/usage", {"kind": "sms", "amount": 1}),
    ],
)
def test_unknown_msisdn_is_404(gw: Gateway, method: str, suffix: str, body: object) -> None:
    """Every per-subscriber endpoint answers 404 unknown_msisdn for a number nobody has."""
    answer = call(gw, method, f"/api/v1/subscribers/79990000000{suffix}", body)
    assert error_of(answer) == (404, "unknown_msisdn")
    assert answer.body["field"] == "msisdn"


def test_patch_tops_up_blocks_and_switches_options(gw: Gateway) -> None:
    """PATCH applies World.patch: top-up (with its SMS), block/unblock, options on and off."""
    answer = call(gw, "PATCH", f"/api/v1/subscribers/{SUPER}", {"top_up": 5000})
    assert answer.status == 200 and answer.body["balance"] == 35000
    assert committed(gw, "SELECT balance FROM subscribers WHERE msisdn = ?", SUPER) == [(35000,)]
    messages = call(gw, "GET", f"/api/v1/messages?msisdn={SUPER}").body["messages"]
    assert [m["direction"] for m in messages] == ["mt"]
    assert "50" in messages[0]["text"]  # 5000 kopecks = 50 ₽, in the profile's words
    entries = call(gw, "GET", f"/api/v1/subscribers/{SUPER}/ledger").body["entries"]
    assert entries[-1]["amount"] == 5000 and entries[-1]["reason"] == "top_up"

    blocked = call(gw, "PATCH", f"/api/v1/subscribers/{SUPER}", {"status": "blocked_voluntary"})
    assert blocked.body["status"] == "blocked_voluntary"
    active = call(gw, "PATCH", f"/api/v1/subscribers/{SUPER}", {"status": "active"})
    assert active.body["status"] == "active"

    on = call(gw, "PATCH", f"/api/v1/subscribers/{SUPER}", {"options": {"bit": True}})
    assert [o["code"] for o in on.body["options"]] == ["bit"]
    off = call(gw, "PATCH", f"/api/v1/subscribers/{SUPER}", {"options": {"bit": False}})
    assert off.body["options"] == []
    owner = call(gw, "PATCH", f"/api/v1/subscribers/{SUPER}", {"owner_id": "new-owner"})
    assert owner.body["owner_id"] == "new-owner"


def test_patch_changes_the_tariff(gw: Gateway) -> None:
    """A tariff change over PATCH charges the new fee and grants the new packages."""
    body = {"tariff": "smart", "top_up": 30000}  # the top-up is applied first and pays the fee
    answer = call(gw, "PATCH", f"/api/v1/subscribers/{SUPER}", body)
    assert answer.status == 200 and answer.body["tariff"] == "smart"
    assert answer.body["balance"] == 30000 + 30000 - 55000
    packages = call(gw, "GET", f"/api/v1/subscribers/{SUPER}/packages").body["packages"]
    assert {p["label"] for p in packages} >= {"500 SMS"}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"colour": "red"}, 422, "unknown_field"),
        ({"top_up": "10"}, 422, "wrong_type"),
        ({"top_up": 0}, 422, "invalid_value"),
        ({"tariff": "free_for_ever"}, 422, "unknown_tariff"),
        ({"options": {"no_such_option": True}}, 422, "unknown_option"),
        ({"adjust_balance": -(10**9)}, 409, "insufficient_funds"),
        ({"top_up": 1000, "tariff": "free_for_ever"}, 422, "unknown_tariff"),
    ],
)
def test_patch_refusals_keep_nothing(
    gw: Gateway, body: dict[str, Any], status: int, code: str
) -> None:
    """A refused PATCH has its own code and changes nothing at all (no top-up, no SMS)."""
    answer = call(gw, "PATCH", f"/api/v1/subscribers/{SUPER}", body)
    assert error_of(answer) == (status, code)
    assert gw.world.get(SUPER).balance == 30000
    assert gw.store.messages_for(SUPER) == []


def test_patch_of_a_terminated_number_is_invalid_transition(gw: Gateway) -> None:
    """A terminated number cannot be changed: 409 invalid_transition."""
    terminated = call(gw, "PATCH", f"/api/v1/subscribers/{SUPER}", {"status": "terminated"})
    assert terminated.body["status"] == "terminated"
    answer = call(gw, "PATCH", f"/api/v1/subscribers/{SUPER}", {"top_up": 100})
    assert error_of(answer) == (409, "invalid_transition")


def test_packages_and_ledger_take_their_query_parameters(gw: Gateway) -> None:
    """include_expired shows spent packages; since and limit cut the ledger; typos refused."""
    call(gw, "PATCH", f"/api/v1/subscribers/{SMART}", {"top_up": 100})
    call(gw, "PATCH", f"/api/v1/subscribers/{SMART}", {"top_up": 200})
    ledger = call(gw, "GET", f"/api/v1/subscribers/{SMART}/ledger?limit=2").body
    assert [e["amount"] for e in ledger["entries"]] == [100, 200]
    assert ledger["balance"] == 200300
    later = call(gw, "GET", f"/api/v1/subscribers/{SMART}/ledger?since={START + 1}").body
    assert later["entries"] == []
    live = call(gw, "GET", f"/api/v1/subscribers/{SMART}/packages").body["packages"]
    call(gw, "POST", "/api/v1/clock/advance", {"duration": "40d"})
    now_live = call(gw, "GET", f"/api/v1/subscribers/{SMART}/packages").body["packages"]
    every = call(gw, "GET", f"/api/v1/subscribers/{SMART}/packages?include_expired=true")
    assert {p["id"] for p in live} & {p["id"] for p in now_live} == set()
    assert {p["id"] for p in live} <= {p["id"] for p in every.body["packages"]}
    for query, code in [
        ("ledger?limit=ten", "wrong_type"),
        ("ledger?limit=0", "invalid_value"),
        ("ledger?since=-5", "invalid_value"),
        ("ledger?from=5", "unknown_field"),
        ("packages?include_expired=maybe", "wrong_type"),
        ("usage?limit=100000", "invalid_value"),
    ]:
        answer = call(gw, "GET", f"/api/v1/subscribers/{SMART}/{query}")
        assert error_of(answer) == (422, code), query


# -- the clock --------------------------------------------------------------------------------


def test_clock_shows_now_iso_and_offset(gw: Gateway) -> None:
    """GET /clock: epoch seconds, ISO 8601 in UTC and the tester's offset."""
    assert call(gw, "GET", "/api/v1/clock").body == {
        "now": START,
        "iso": "2024-01-31T09:00:00Z",
        "offset": 0,
    }
    assert error_of(call(gw, "GET", "/api/v1/clock?tz=3")) == (422, "unknown_field")


def test_clock_advance_by_seconds_or_duration(gw: Gateway) -> None:
    """POST /clock/advance takes {"seconds": N} or {"duration": "1h30m"}; the offset is kept."""
    first = call(gw, "POST", "/api/v1/clock/advance", {"duration": "1h30m"})
    assert first.status == 200
    assert first.body == {
        "now": START + 5400,
        "iso": "2024-01-31T10:30:00Z",
        "offset": 5400,
        "advanced": 5400,
        "queued": 0,
    }
    second = call(gw, "POST", "/api/v1/clock/advance", {"seconds": 60})
    assert (second.body["now"], second.body["offset"]) == (START + 5460, 5460)
    assert committed(gw, "SELECT value FROM settings WHERE key = 'clock_offset'") == [("5460",)]


def test_clock_advance_fires_due_work_and_counts_the_queued_replies(gw: Gateway) -> None:
    """Advancing past a billing day charges the monthly fee and queues its SMS."""
    answer = call(gw, "POST", "/api/v1/clock/advance", {"duration": "32d"})
    assert answer.body["queued"] > 0
    fees = [
        e
        for e in call(gw, "GET", f"/api/v1/subscribers/{SMART}/ledger").body["entries"]
        if e["amount"] == -65000
    ]
    assert len(fees) == 1
    log = call(gw, "GET", f"/api/v1/messages?msisdn={SMART}").body["messages"]
    assert any("650" in (m["text"] or "") for m in log)
    queued = committed(gw, "SELECT count(*) FROM messages WHERE kind = 'reply'")[0][0]
    assert queued >= answer.body["queued"]  # a long fee SMS may take two parts


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "missing_field"),
        ({"seconds": 1, "duration": "1s"}, "invalid_value"),
        ({"seconds": -1}, "invalid_value"),
        ({"seconds": "10"}, "wrong_type"),
        ({"seconds": 1.5}, "wrong_type"),
        ({"duration": "soon"}, "invalid_value"),
        ({"duration": True}, "wrong_type"),
        ({"hours": 1}, "unknown_field"),
    ],
)
def test_clock_advance_refusals(gw: Gateway, body: dict[str, Any], code: str) -> None:
    """A bad advance request is refused with its own code and leaves the clock alone."""
    assert error_of(call(gw, "POST", "/api/v1/clock/advance", body)) == (422, code)
    assert gw.world.clock.offset == 0


# -- usage (CU-01) ----------------------------------------------------------------------------


def test_cu_01_usage_paid_by_a_package_names_the_package(gw: Gateway) -> None:
    """CU-01: one SMS of a «Наш Smart» subscriber is paid by its 600 SMS package, nothing billed."""
    answer = call(gw, "POST", f"/api/v1/subscribers/{SMART}/usage", {"kind": "sms", "amount": 1})
    assert answer.status == 200
    body = answer.body
    [paid] = body["paid_by"]
    assert paid["source"].startswith("package:") and paid["amount"] == 1
    assert (paid["label"], paid["remaining"]) == ("600 SMS", 599)
    assert (body["billed"], body["refused"], body["refusal"]) == (0, 0, None)
    assert body["balance"] == 200000 and body["notifications"] == []
    log = call(gw, "GET", f"/api/v1/subscribers/{SMART}/usage").body["usage"]
    assert [(u["kind"], u["amount"]) for u in log] == [("sms", 1)]


def test_cu_01_usage_beyond_packages_is_billed_by_the_own_tariff(gw: Gateway) -> None:
    """CU-01: three minutes of «Супер МТС» (no packages) are billed at 2.90 ₽ a minute."""
    answer = call(gw, "POST", f"/api/v1/subscribers/{SUPER}/usage", {"kind": "voice", "amount": 3})
    body = answer.body
    assert body["paid_by"] == [{"source": "tariff", "amount": 3}]
    assert (body["billed"], body["balance"]) == (870, 30000 - 870)
    entries = call(gw, "GET", f"/api/v1/subscribers/{SUPER}/ledger").body["entries"]
    assert entries[-1]["amount"] == -870 and entries[-1]["reason"] == "usage:voice"
    assert committed(gw, "SELECT balance FROM subscribers WHERE msisdn = ?", SUPER) == [(29130,)]


def test_cu_01_notifications_are_delivered_through_the_gateway(gw: Gateway) -> None:
    """CU-01: spending the whole SMS package queues «package spent», committed before the answer."""
    answer = call(gw, "POST", f"/api/v1/subscribers/{SMART}/usage", {"kind": "sms", "amount": 600})
    [notice] = answer.body["notifications"]
    assert notice["template"] == "package_exhausted" and "600 SMS" in notice["text"]
    assert (notice["to"], notice["channel"]) == (SMART, "sms")
    [message] = call(gw, "GET", f"/api/v1/messages?msisdn={SMART}").body["messages"]
    assert (message["direction"], message["channel"], message["kind"]) == ("mt", "sms", "reply")
    assert (message["source"], message["destination"]) == (notice["from"], SMART)
    assert message["text"] == notice["text"] and message["status"] == "ENROUTE"
    stored = committed(gw, "SELECT destination_addr, state FROM messages WHERE kind = 'reply'")
    assert stored == [(SMART, 1)]


def test_cu_01_usage_abroad(gw: Gateway) -> None:
    """CU-01: a call abroad is billed by the tariff's abroad rates, and needs the country."""
    body = {"kind": "voice", "amount": 1, "abroad": True, "country": "TR"}
    answer = call(gw, "POST", f"/api/v1/subscribers/{SUPER}/usage", body)
    assert (answer.body["abroad"], answer.body["country"]) == (True, "TR")
    assert answer.body["billed"] == 4900
    no_country = {"kind": "voice", "amount": 1, "abroad": True}
    answer = call(gw, "POST", f"/api/v1/subscribers/{SUPER}/usage", no_country)
    assert error_of(answer) == (422, "invalid_value")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"kind": "fax", "amount": 1}, "invalid_value"),
        ({"kind": "sms", "amount": 0}, "invalid_value"),
        ({"kind": "sms", "amount": "1"}, "wrong_type"),
        ({"kind": 3, "amount": 1}, "wrong_type"),
        ({"kind": "voice", "amount": 1, "destination": "moon"}, "invalid_value"),
        ({"kind": "voice", "amount": 1, "destination": ["any"]}, "wrong_type"),
        ({"kind": "sms", "amount": 1, "abroad": "yes"}, "wrong_type"),
        ({"kind": "sms", "amount": 1, "abroad": True, "country": "Turkey"}, "invalid_value"),
        ({"kind": "sms"}, "missing_field"),
        ({"kind": "sms", "amount": 1, "roaming": True}, "unknown_field"),
    ],
)
def test_cu_01_usage_refusals(gw: Gateway, body: dict[str, Any], code: str) -> None:
    """CU-01: a bad use is refused with its own code and charges nothing."""
    answer = call(gw, "POST", f"/api/v1/subscribers/{SUPER}/usage", body)
    assert error_of(answer) == (422, code)
    assert gw.world.get(SUPER).balance == 30000
    assert gw.world.usage_log(SUPER) == []


# -- the message log --------------------------------------------------------------------------


def _store(gw: Gateway, **fields: Any) -> None:
    gw.store.add_message(NewMessage(submitted_at=START, expires_at=START + DAY, **fields))
    gw.store.commit()


def test_message_log_decodes_every_mo_and_mt(gw: Gateway) -> None:
    """The log shows MO and MT, SMS and USSD, with text decoded per data_coding and the state."""
    ucs2 = coding.encode_text("Привет", 8)
    [part] = coding.split_text("x" * 170, data_coding=0, reference=7)[1:]
    payload = P.encode_tlv(P.Tlv(P.Tag.MESSAGE_PAYLOAD, b"long one"))
    _store(
        gw,
        kind="ussd_mo",
        source_addr=SMART,
        destination_addr="434",
        short_message=b"*434#",
        state=6,
    )
    _store(
        gw,
        kind="ussd",
        source_addr="434",
        destination_addr=SMART,
        data_coding=8,
        short_message=ucs2,
    )
    _store(gw, kind="p2p", source_addr=SMART, destination_addr=SUPER, short_message=b"hi", state=2)
    _store(gw, kind="p2p", source_addr=SUPER, destination_addr=SMART, short_message=b"yo", state=3)
    _store(
        gw,
        kind="reply",
        source_addr="111",
        destination_addr=SMART,
        esm_class=0x40,
        data_coding=part.data_coding,
        short_message=part.short_message,
    )
    _store(gw, kind="reply", source_addr="111", destination_addr=SMART, tlvs=payload)
    _store(
        gw,
        kind="mo",
        source_addr=SMART,
        destination_addr="111",
        data_coding=4,
        short_message=b"\x00\xff",
    )
    _store(gw, kind="p2p", source_addr="79990000001", destination_addr="79990000002")

    log = call(gw, "GET", f"/api/v1/messages?msisdn={SMART}").body["messages"]
    shown = [(m["direction"], m["channel"], m["kind"], m["text"], m["status"]) for m in log]
    assert shown == [
        ("mo", "ussd", "ussd_mo", "*434#", "ACCEPTED"),
        ("mt", "ussd", "ussd", "Привет", "ENROUTE"),
        ("mo", "sms", "p2p", "hi", "DELIVERED"),
        ("mt", "sms", "p2p", "yo", "EXPIRED"),
        ("mt", "sms", "reply", "x" * 17, "ENROUTE"),
        ("mt", "sms", "reply", "long one", "ENROUTE"),
        ("mo", "sms", "mo", None, "ENROUTE"),
    ]
    assert log[4]["part"] == [2, 2] and log[0]["part"] is None
    assert log[6]["hex"] == "00ff" and log[0]["hex"] is None
    assert log[0]["at"] == START and [m["id"] for m in log] == sorted(m["id"] for m in log)
    newest = call(gw, "GET", f"/api/v1/messages?msisdn={SMART}&limit=2").body["messages"]
    assert [m["id"] for m in newest] == [log[5]["id"], log[6]["id"]]
    other = call(gw, "GET", "/api/v1/messages?msisdn=79990000002").body["messages"]
    assert [m["direction"] for m in other] == ["mt"]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("", "missing_field"),
        ("?msisdn=", "missing_field"),
        (f"?msisdn={SMART}&limit=0", "invalid_value"),
        (f"?msisdn={SMART}&limit=x", "wrong_type"),
        (f"?msisdn={SMART}&since=1", "unknown_field"),
        ("?after=-1", "invalid_value"),
        ("?after=x", "wrong_type"),
        ("?after=0&limit=1001", "invalid_value"),
        ("?after=0&msisdn=", "missing_field"),
    ],
)
def test_message_log_refusals(gw: Gateway, query: str, code: str) -> None:
    """The message log needs an msisdn or a cursor, and a sane limit."""
    assert error_of(call(gw, "GET", f"/api/v1/messages{query}")) == (422, code)


def test_message_log_after_a_cursor_gives_every_number_in_id_order(gw: Gateway) -> None:
    """?after=ID: the messages past the cursor of all numbers (or one), oldest first, bounded
    by limit, with the cursor to pass on and the newest id; a USSD MT shows its op."""
    start = call(gw, "GET", "/api/v1/messages?after=0&limit=1").body["last_id"]
    menu = P.encode_tlv(P.Tlv.u8(P.Tag.USSD_SERVICE_OP, 2))
    _store(gw, kind="ussd_mo", source_addr=SMART, destination_addr="434", short_message=b"*434#")
    _store(
        gw, kind="ussd", source_addr="434", destination_addr=SMART, short_message=b"m", tlvs=menu
    )
    _store(gw, kind="p2p", source_addr=SUPER, destination_addr="79990000002", short_message=b"a")
    _store(gw, kind="mo", source_addr=SUPER, destination_addr="111", short_message=b"b")

    page = call(gw, "GET", f"/api/v1/messages?after={start}&limit=3").body
    shown = [(m["direction"], m["source"], m["text"], m["ussd_op"]) for m in page["messages"]]
    assert shown == [
        ("mo", SMART, "*434#", None),
        ("mt", "434", "m", 2),
        ("mo", SUPER, "a", None),
    ]
    ids = [m["id"] for m in page["messages"]]
    assert ids == sorted(ids) and ids[0] > start
    assert page["next"] == ids[-1] and page["last_id"] == ids[-1] + 1 and page["msisdn"] is None
    rest = call(gw, "GET", f"/api/v1/messages?after={page['next']}").body
    assert [m["text"] for m in rest["messages"]] == ["b"] and rest["next"] == page["last_id"]
    empty = call(gw, "GET", f"/api/v1/messages?after={rest['next']}").body
    assert empty["messages"] == [] and empty["next"] == rest["next"]
    mine = call(gw, "GET", f"/api/v1/messages?after={start}&msisdn={SMART}").body["messages"]
    assert [(m["direction"], m["text"]) for m in mine] == [("mo", "*434#"), ("mt", "m")]


# -- transport errors -------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"{", b"\xff\xfe{}", b'{"seconds": NaN}', b"[" * 100000])
def test_bad_json_is_400(gw: Gateway, raw: bytes) -> None:
    """A body that is not UTF-8 JSON is 400 bad_json."""
    answer = call(gw, "POST", "/api/v1/clock/advance", raw=raw)
    assert error_of(answer) == (400, "bad_json")


def test_a_body_that_is_not_an_object_is_wrong_type(gw: Gateway) -> None:
    """The body of a mutating call is a JSON object; a list is 422 wrong_type."""
    answer = call(gw, "POST", "/api/v1/clock/advance", [1, 2])
    assert error_of(answer) == (422, "wrong_type")


def test_an_empty_body_is_an_empty_object(gw: Gateway) -> None:
    """No body at all reads as {} (so the refusal names the missing field)."""
    answer = call(gw, "POST", "/api/v1/clock/advance")
    assert error_of(answer) == (422, "missing_field")


def test_a_huge_body_is_413(gw: Gateway) -> None:
    """A body over 1 MiB is refused unread."""
    answer = call(gw, "POST", "/api/v1/clock/advance", raw=b" " * (MAX_BODY + 1))
    assert error_of(answer) == (413, "payload_too_large")


@pytest.mark.parametrize("path", ["/", "/api/v2/clock", "/api/v1/nothing", "/api/v1/clock/back"])
def test_unknown_paths_are_404_not_found(gw: Gateway, path: str) -> None:
    """A path no endpoint serves is 404 not_found in JSON, never an HTML page."""
    assert error_of(call(gw, "GET", path)) == (404, "not_found")


def test_a_wrong_method_is_405_with_allow(gw: Gateway) -> None:
    """A known path with another method is 405 method_not_allowed, naming the allowed ones."""
    answer = call(gw, "DELETE", "/api/v1/clock")
    assert error_of(answer) == (405, "method_not_allowed")
    assert answer.headers.getRawHeaders(b"allow") == [b"GET, HEAD"]
    answer = call(gw, "GET", "/api/v1/clock/advance")
    assert error_of(answer) == (405, "method_not_allowed")
    assert answer.headers.getRawHeaders(b"allow") == [b"POST"]


def test_an_unexpected_exception_is_500_internal_and_logged(gw: Gateway) -> None:
    """A bug in a handler is 500 internal without a traceback on the wire, but in the log."""
    events: list[tuple[str, dict[str, Any]]] = []

    class Log:
        def info(self, event: str, **kw: Any) -> None:
            events.append((event, kw))

        def error(self, event: str, **kw: Any) -> None:
            events.append((event, kw))

    def broken(request: ApiRequest) -> ApiResponse:
        raise RuntimeError("boom")

    gw.api.log = Log()
    gw.api.add_action("GET", "/api/v1/broken", broken)
    answer = call(gw, "GET", "/api/v1/broken")
    assert error_of(answer) == (500, "internal")
    assert "boom" not in json.dumps(answer.body)
    [(_, details)] = [e for e in events if e[0] == "http_internal_error"]
    assert "RuntimeError: boom" in details["traceback"] and details["path"] == "/api/v1/broken"
    assert ("http_request", {"method": "GET", "path": "/api/v1/broken", "status": 500}) in events


def test_every_domain_error_answers_with_its_code_and_status(gw: Gateway) -> None:
    """Every refusal of the core (and any DomainError a service raises) maps to its status."""
    for code, cls in ERRORS.items():

        def refuse(request: ApiRequest, cls: type[DomainError] = cls) -> ApiResponse:
            raise cls("refused for the test", field="x")

        gw.api.add_action("POST", f"/api/v1/refuse/{code}", refuse)
        answer = call(gw, "POST", f"/api/v1/refuse/{code}", {})
        assert answer.status == cls.http_status == API_ERRORS[code]
        assert answer.body == {"error": code, "message": "refused for the test", "field": "x"}


def test_the_error_table_in_the_docstring_is_the_real_one() -> None:
    """The module docstring lists every code with the status it is answered with."""
    doc = api_module.__doc__ or ""
    table = dict(re.findall(r"^\s{4}([a-z_]+)\s+(\d{3})\s", doc, flags=re.M))
    assert {code: int(status) for code, status in table.items()} == dict(API_ERRORS)


# -- the registry of actions ------------------------------------------------------------------


def test_a_service_action_gets_its_params_and_its_replies_are_delivered(gw: Gateway) -> None:
    """add_action: path params and body reach the handler; its replies are queued and committed."""
    seen: list[ApiRequest] = []

    def invite(request: ApiRequest) -> ApiResponse:
        seen.append(request)
        reply = Reply(to=str(request.body["to"]), sender="434", template="topup_received",
                      params={"amount": 1, "balance": 2}, profile="mts")  # fmt: skip
        return ApiResponse(body={"invited": request.body["to"]}, status=202, replies=[reply])

    gw.api.add_action("POST", "/api/v1/mts/shared-bundle/{msisdn}/invite", invite)
    answer = call(gw, "POST", f"/api/v1/mts/shared-bundle/{SMART}/invite?x=1", {"to": SUPER})
    assert (answer.status, answer.body) == (202, {"invited": SUPER})
    [request] = seen
    assert (request.method, request.params, request.query) == (
        "POST",
        {"msisdn": SMART},
        {"x": "1"},
    )
    assert request.now == START and request.path == f"/api/v1/mts/shared-bundle/{SMART}/invite"
    assert committed(gw, "SELECT source_addr, destination_addr FROM messages") == [("434", SUPER)]
    routes = call(gw, "GET", "/api/v1/").body["routes"]
    assert {"method": "POST", "path": "/api/v1/mts/shared-bundle/{msisdn}/invite"} in routes
    assert {"method": "POST", "path": "/api/v1/subscribers/{msisdn}/usage"} in routes


def test_a_refused_action_keeps_nothing(gw: Gateway) -> None:
    """A handler that changed the world and then refused leaves no trace (one transaction)."""

    def half_done(request: ApiRequest) -> ApiResponse:
        gw.world.top_up(SUPER, 5000, now=request.now)
        raise DomainError("changed its mind")

    gw.api.add_action("POST", "/api/v1/half-done", half_done)
    assert error_of(call(gw, "POST", "/api/v1/half-done", {})) == (400, "domain_error")
    assert gw.world.get(SUPER).balance == 30000
    assert committed(gw, "SELECT balance FROM subscribers WHERE msisdn = ?", SUPER) == [(30000,)]


def test_literal_segments_win_over_placeholders(gw: Gateway) -> None:
    """/subscribers/special beats /subscribers/{msisdn} whatever the registration order."""
    gw.api.add_action("GET", "/api/v1/subscribers/special", lambda r: ApiResponse(body="special"))
    assert call(gw, "GET", "/api/v1/subscribers/special").body == "special"
    assert call(gw, "GET", f"/api/v1/subscribers/{SMART}").body["msisdn"] == SMART


@pytest.mark.parametrize(
    ("method", "pattern"),
    [
        ("GET", "/api/v1/clock"),  # served already
        ("GET", "/somewhere/else"),
        ("FETCH", "/api/v1/x"),
        ("GET", "/api/v1/{a}/{a}"),
        ("GET", "/api/v1/x{y}"),
    ],
)
def test_add_action_refuses_bad_routes(gw: Gateway, method: str, pattern: str) -> None:
    """Duplicates, paths outside /api/v1, unknown methods and bad placeholders are refused."""
    with pytest.raises(ValueError):
        gw.api.add_action(method, pattern, lambda r: ApiResponse(body=None))


def test_gateway_serves_the_api_on_its_http_port(gw: Gateway) -> None:
    """Gateway.start listens on the configured HTTP interface with the API's site."""
    reactor: Any = gw.reactor
    ports = [(port, factory, interface) for port, factory, _, interface in reactor.tcpServers]
    assert (0, "127.0.0.1") in [(port, interface) for port, _, interface in ports]
    site = ports[-1][1]
    assert site.resource is gw.api.resource
    assert gw.http_address[1] == 0  # the memory reactor's stand-in port


@attrs.frozen
class ForeignAnswer:
    """A service's own answer type: services cannot import gateway.http."""

    body: object
    status: int = 200
    replies: tuple[Reply, ...] = ()


def test_a_service_may_answer_with_its_own_value_of_the_same_shape(gw: Gateway) -> None:
    """Any value with body, status and replies is an answer (services do not import us)."""
    reply = Reply(to=SUPER, sender="2221", template="topup_received",
                  params={"amount": 1, "balance": 2}, profile="mts")  # fmt: skip
    gw.api.add_action("POST", "/api/v1/foreign", lambda r: ForeignAnswer("ok", 201, (reply,)))
    assert (
        call(gw, "POST", "/api/v1/foreign", {}).status,
        gw.store.messages_for(SUPER)[0].source_addr,
    ) == (201, "2221")


def test_a_non_atomic_action_keeps_what_it_committed_even_when_it_refuses(gw: Gateway) -> None:
    """atomic=False: the handler's own commits stand although it then refuses (BQ-01's counter)."""

    def counts_then_refuses(request: ApiRequest) -> ApiResponse:
        gw.world.top_up(SUPER, 5000, now=request.now)  # commits at once: no outer transaction
        raise DomainError("wrong code")

    gw.api.add_action("POST", "/api/v1/counted", counts_then_refuses, atomic=False)
    assert error_of(call(gw, "POST", "/api/v1/counted", {})) == (400, "domain_error")
    assert committed(gw, "SELECT balance FROM subscribers WHERE msisdn = ?", SUPER) == [(35000,)]
