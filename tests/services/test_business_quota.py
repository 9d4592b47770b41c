"""Tests of services/business_quota.py: the Tele2 business cabinet (BQ-01 … BQ-05) through the
service API on a World driven by a task.Clock, and its routes rendered by the control API."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import attrs
import pytest
from twisted.internet import task
from twisted.internet.testing import MemoryReactorClock
from twisted.web.test.requesthelper import DummyRequest

from gateway.app import Gateway
from gateway.config import GatewayConfig
from services import business_quota as bq
from services.business_quota import CabinetService, read_terms
from services.clock import MINUTE, SimClock
from services.dispatch import ServiceDirectory
from services.outbox import Reply, check_templates, render
from services.profiles import ProfileError, Profiles, load_profiles
from services.store import SqliteStore
from services.world import World

START = 1_700_000_000
PROFILES: Profiles = load_profiles()
TELE2 = PROFILES["tele2ru"]
ROMASHKA_MANAGER, ROMASHKA_1, ROMASHKA_2 = "79520000100", "79520000101", "79520000102"
VEKTOR_MANAGER, VEKTOR_1 = "79520000200", "79520000201"


@attrs.define
class Env:
    world: World
    source: task.Clock
    service: CabinetService

    def now(self) -> int:
        return self.world.now()

    def advance(self, seconds: int) -> list[Reply]:
        return self.world.advance(seconds)


def make_env(path: str = ":memory:", *, demo: SqliteStore | None = None) -> Env:
    """A world with the demo population (copied from ``demo`` when given: much faster)."""
    source = task.Clock()
    source.advance(START)
    store = SqliteStore(path)
    if demo is not None:
        demo.connection.backup(store.connection)
    world = World(store, PROFILES, SimClock(source))
    world.load_demo(now=START)
    return Env(world, source, bq.install(world, ServiceDirectory()))


@pytest.fixture(scope="module")
def demo_store() -> SqliteStore:
    """The demo population loaded once; each test works on a copy."""
    return make_env().world.store  # type: ignore[return-value]


@pytest.fixture
def env(demo_store: SqliteStore) -> Env:
    return make_env(demo=demo_store)


def code_in(replies: list[Reply]) -> str:
    """The one-time code as the manager reads it in the SMS."""
    (sms,) = replies
    found = re.search(r"\b(\d{6})\b", render(sms, PROFILES))
    assert found is not None
    return found.group(1)


def ask_code(env: Env, phone: str = ROMASHKA_MANAGER) -> str:
    _challenge, replies = env.service.request_code(phone, now=env.now())
    return code_in(replies)


def login(env: Env, phone: str = ROMASHKA_MANAGER) -> str:
    return env.service.open_session(phone, ask_code(env, phone), now=env.now()).token


def wrong(code: str) -> str:
    return code[:-1] + str((int(code[-1]) + 1) % 10)


# -- the terms ------------------------------------------------------------------------------------


def test_bq_01_terms_are_read_from_the_profile_facts() -> None:
    """BQ-01: six digits, five minutes, the cabinet number 611, two companies."""
    terms = read_terms(TELE2)
    assert terms is not None
    assert (terms.otp_length, terms.otp_ttl, terms.sender) == (6, 5 * MINUTE, "611")
    assert terms.company_managed_by(ROMASHKA_MANAGER) is not None
    assert terms.company_managed_by(ROMASHKA_1) is None
    assert read_terms(PROFILES["telenor"]) is None
    assert [p for p in check_templates(PROFILES) if "business_quota" in p] == []


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"otp_ttl": "soon"}, "otp_ttl"),
        ({"companies": {"x": {"name": "X", "managers": ["123"]}}}, "companies.x.managers"),
        ({"quota_min": 10, "quota_max": 5}, "quota_max"),
        ({"sender": "nowhere"}, "sender"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bq_broken_terms_are_refused_with_the_file_and_the_field(
    change: dict[str, object], where: str
) -> None:
    """A broken services.business_quota fact is a ProfileError naming the file and the field."""
    facts = {**TELE2.services["business_quota"], **change}
    broken = attrs.evolve(TELE2, services={**TELE2.services, "business_quota": facts})
    with pytest.raises(ProfileError) as raised:
        read_terms(broken)
    assert f"services.business_quota.{where}" in str(raised.value)


# -- BQ-01: login by a one-time code --------------------------------------------------------------


def test_bq_01_login_sends_a_six_digit_code_by_sms_to_the_manager(env: Env) -> None:
    """BQ-01: the manager's number gets an SMS from 611 with a six-digit one-time code."""
    challenge, replies = env.service.request_code("+7 (952) 000-01-00", now=env.now())
    (sms,) = replies
    assert (sms.to, sms.sender, sms.channel) == (ROMASHKA_MANAGER, "611", "sms")
    assert re.fullmatch(r"\d{6}", str(sms.params["code"]))
    text = render(sms, PROFILES)
    assert "5 мин" in text and len(text) <= 70  # one UCS2 SMS
    assert challenge.expires_at == START + 5 * MINUTE and challenge.phone == ROMASHKA_MANAGER


def test_bq_01_the_code_opens_a_session_once(env: Env) -> None:
    """BQ-01: the right code opens a session with a token; the same code again is refused."""
    code = ask_code(env)
    session = env.service.open_session(ROMASHKA_MANAGER, code, now=env.now())
    assert len(session.token) >= 20 and session.company == "romashka"
    assert session.company_name == "ООО «Ромашка»"
    assert env.service.session(session.token, now=env.now()).phone == ROMASHKA_MANAGER
    with pytest.raises(bq.CodeUsed):
        env.service.open_session(ROMASHKA_MANAGER, code, now=env.now())


def test_bq_01_codes_are_random(env: Env) -> None:
    """BQ-01: each login gets a fresh code (two equal ones in a row are a 1e-6 accident)."""
    codes = set()
    for _ in range(3):
        codes.add(ask_code(env))
        env.source.advance(MINUTE)
    assert len(codes) >= 2


def test_bq_01_an_expired_code_is_refused(env: Env) -> None:
    """BQ-01: the code lives 5 minutes: at 4:59 it works, at 5:00 it is expired."""
    code = ask_code(env)
    env.source.advance(5 * MINUTE)
    with pytest.raises(bq.CodeExpired):
        env.service.open_session(ROMASHKA_MANAGER, code, now=env.now())
    env.source.advance(MINUTE)
    code = ask_code(env)
    env.source.advance(5 * MINUTE - 1)
    assert env.service.open_session(ROMASHKA_MANAGER, code, now=env.now()).token


def test_bq_01_wrong_codes_count_down_and_void_the_code(env: Env) -> None:
    """BQ-01: three wrong tries void the code, even for the right one afterwards."""
    code = ask_code(env)
    left = []
    for _ in range(3):
        with pytest.raises(bq.WrongCode) as raised:
            env.service.open_session(ROMASHKA_MANAGER, wrong(code), now=env.now())
        left.append(raised.value.attempts_left)
    assert left == [2, 1, 0]
    with pytest.raises(bq.CodeVoid):
        env.service.open_session(ROMASHKA_MANAGER, code, now=env.now())


def test_bq_01_repeated_failures_lock_the_number(env: Env) -> None:
    """BQ-01: five wrong codes in a row lock the number for 15 minutes (throttling)."""
    for _attempt in range(2):
        code = ask_code(env)
        for _ in range(2):
            with pytest.raises(bq.WrongCode):
                env.service.open_session(ROMASHKA_MANAGER, wrong(code), now=env.now())
        env.source.advance(MINUTE)
    code = ask_code(env)
    with pytest.raises(bq.Locked) as raised:
        env.service.open_session(ROMASHKA_MANAGER, wrong(code), now=env.now())
    assert raised.value.retry_after == 15 * MINUTE
    with pytest.raises(bq.Locked):
        env.service.open_session(ROMASHKA_MANAGER, code, now=env.now())
    env.source.advance(MINUTE)
    with pytest.raises(bq.Locked) as again:
        env.service.request_code(ROMASHKA_MANAGER, now=env.now())
    assert again.value.retry_after == 14 * MINUTE
    env.source.advance(14 * MINUTE)
    assert login(env)


def test_bq_01_a_success_resets_the_failures(env: Env) -> None:
    """BQ-01: wrong codes followed by a right one do not count toward a later lockout."""
    for _ in range(3):
        code = ask_code(env)
        with pytest.raises(bq.WrongCode):
            env.service.open_session(ROMASHKA_MANAGER, wrong(code), now=env.now())
        env.service.open_session(ROMASHKA_MANAGER, code, now=env.now())
        env.source.advance(MINUTE)


def test_bq_01_a_new_code_no_sooner_than_a_minute_and_it_replaces_the_old(env: Env) -> None:
    """BQ-01: code requests are throttled; a newer code voids the older one."""
    first = ask_code(env)
    env.source.advance(59)
    with pytest.raises(bq.TooManyRequests) as raised:
        env.service.request_code(ROMASHKA_MANAGER, now=env.now())
    assert raised.value.retry_after == 1
    env.source.advance(1)
    second = ask_code(env)
    if first != second:
        with pytest.raises(bq.WrongCode):
            env.service.open_session(ROMASHKA_MANAGER, first, now=env.now())
    assert env.service.open_session(ROMASHKA_MANAGER, second, now=env.now()).token


@pytest.mark.parametrize(
    ("phone", "error"),
    [
        (ROMASHKA_1, bq.NotAManager),
        ("79529999999", bq.NotAManager),
        ("89520000100", bq.InvalidPhone),
        ("not a phone", bq.InvalidPhone),
        ("", bq.InvalidPhone),
    ],
)
def test_bq_01_only_the_assigned_numbers_get_a_code(
    env: Env, phone: str, error: type[bq.CabinetError]
) -> None:
    """BQ-01: only the number assigned to the cabinet may log in; others are refused."""
    with pytest.raises(error):
        env.service.request_code(phone, now=env.now())


@pytest.mark.parametrize("code", ["12345", "1234567", "abcdef", "１２３４５６", ""])
def test_bq_01_a_malformed_code_is_refused_and_not_counted(env: Env, code: str) -> None:
    """BQ-01: a code that is not six ASCII digits is refused without spending a try."""
    right = ask_code(env)
    for _ in range(5):
        with pytest.raises(bq.InvalidCodeFormat):
            env.service.open_session(ROMASHKA_MANAGER, code, now=env.now())
    assert env.service.open_session(ROMASHKA_MANAGER, right, now=env.now()).token


def test_bq_01_no_code_asked_for(env: Env) -> None:
    """BQ-01: a code for a number that asked for none is refused."""
    with pytest.raises(bq.NoCode):
        env.service.open_session(VEKTOR_MANAGER, "123456", now=env.now())


def test_bq_01_sessions_end_when_idle_or_on_logout(env: Env) -> None:
    """BQ-01: a session lasts 30 minutes after its last use; logout ends it at once."""
    token = login(env)
    env.source.advance(29 * MINUTE)
    env.service.subscribers(token, now=env.now())  # renews it
    env.source.advance(29 * MINUTE)
    env.service.subscribers(token, now=env.now())
    env.source.advance(30 * MINUTE)
    with pytest.raises(bq.SessionExpired):
        env.service.subscribers(token, now=env.now())
    other = login(env)
    env.service.close_session(other, now=env.now())
    with pytest.raises(bq.InvalidSession):
        env.service.subscribers(other, now=env.now())
    for bad in (None, "", "forged"):
        with pytest.raises(bq.InvalidSession):
            env.service.subscribers(bad, now=env.now())


# -- BQ-02: the company's subscribers -------------------------------------------------------------


def test_bq_02_subscribers_of_the_company_with_their_quota(env: Env) -> None:
    """BQ-02: the «Абоненты» tab lists the company's numbers; each page shows its quota."""
    token = login(env)
    listed = env.service.subscribers(token, now=env.now())
    assert [s.msisdn for s in listed] == [ROMASHKA_MANAGER, ROMASHKA_1, ROMASHKA_2]
    assert all(s.quota is None and s.tariff == "Мой бизнес" for s in listed)
    env.service.request_quota(token, ROMASHKA_1, "add", now=env.now(), amount=150_000)
    env.advance(10 * MINUTE)
    page = env.service.subscriber_page(token, ROMASHKA_1, now=env.now())
    assert page.quota is not None and page.quota.amount == 150_000
    assert [r.status for r in page.requests] == ["done"]


# -- BQ-03: requests ------------------------------------------------------------------------------


def test_bq_03_add_change_delete_each_create_a_numbered_request(env: Env) -> None:
    """BQ-03: each action returns a new request number; the quota follows when it is done."""
    token = login(env)
    added = env.service.request_quota(token, ROMASHKA_1, "add", now=env.now(), amount=100_000)
    assert (added.number, added.status, added.action) == (1_000_001, "accepted", "add")
    env.advance(10 * MINUTE)
    changed = env.service.request_quota(token, ROMASHKA_1, "change", now=env.now(), amount=200_000)
    assert changed.number == 1_000_002 and changed.previous == 100_000
    env.advance(10 * MINUTE)
    assert env.service.quota_of(ROMASHKA_1) is not None
    assert env.service.quota_of(ROMASHKA_1).amount == 200_000  # type: ignore[union-attr]
    deleted = env.service.request_quota(token, ROMASHKA_1, "delete", now=env.now())
    assert deleted.number == 1_000_003
    env.advance(10 * MINUTE)
    assert env.service.quota_of(ROMASHKA_1) is None


@pytest.mark.parametrize(
    ("action", "amount", "error"),
    [
        ("add", None, bq.InvalidQuota),
        ("add", "1000", bq.InvalidQuota),
        ("add", 99, bq.InvalidQuota),
        ("add", 10_000_001, bq.InvalidQuota),
        ("add", True, bq.InvalidQuota),
        ("change", 50_000, bq.NoQuota),
        ("delete", None, bq.NoQuota),
        ("delete", 50_000, bq.InvalidQuota),
        ("remove", 50_000, bq.CabinetError),
    ],
)
def test_bq_03_bad_requests_are_refused_and_numbered_nothing(
    env: Env, action: str, amount: object, error: type[bq.CabinetError]
) -> None:
    """BQ-03: a bad amount, a change or delete without a quota: refused, no request made."""
    token = login(env)
    with pytest.raises(error):
        env.service.request_quota(token, ROMASHKA_1, action, now=env.now(), amount=amount)
    assert env.service.history(token, now=env.now()) == []


def test_bq_03_one_open_request_per_number_and_no_second_quota(env: Env) -> None:
    """BQ-03: a request while one is open is refused; add over a quota is refused."""
    token = login(env)
    env.service.request_quota(token, ROMASHKA_1, "add", now=env.now(), amount=100_000)
    with pytest.raises(bq.RequestPending):
        env.service.request_quota(token, ROMASHKA_1, "change", now=env.now(), amount=120_000)
    env.advance(10 * MINUTE)
    with pytest.raises(bq.QuotaExists):
        env.service.request_quota(token, ROMASHKA_1, "add", now=env.now(), amount=100_000)


# -- BQ-04: history and processing on the clock ---------------------------------------------------


def test_bq_04_statuses_advance_on_the_clock(env: Env) -> None:
    """BQ-04: accepted → in progress after 1 minute → done 5 minutes later."""
    token = login(env)
    made = env.service.request_quota(token, ROMASHKA_2, "add", now=env.now(), amount=100_000)
    at = env.now()

    def status() -> str:
        return env.service.request(token, made.number, now=env.now()).status

    env.advance(MINUTE - 1)
    assert status() == "accepted"
    env.advance(1)
    assert status() == "in_progress" and env.service.quota_of(ROMASHKA_2) is None
    env.advance(5 * MINUTE - 1)
    assert status() == "in_progress"
    env.advance(1)
    assert status() == "done"
    events = env.service.request(token, str(made.number), now=env.now()).events
    assert [(e.status, e.at - at) for e in events] == [
        ("accepted", 0),
        ("in_progress", MINUTE),
        ("done", 6 * MINUTE),
    ]


def test_bq_04_a_request_for_a_blocked_number_is_rejected(env: Env) -> None:
    """BQ-04: the number blocked before processing: the request ends rejected, with why."""
    token = login(env)
    made = env.service.request_quota(token, ROMASHKA_1, "add", now=env.now(), amount=100_000)
    env.world.set_status(ROMASHKA_1, "blocked_voluntary", now=env.now())
    env.advance(10 * MINUTE)
    found = env.service.request(token, made.number, now=env.now())
    assert (found.status, found.reason) == ("rejected", "subscriber_not_active")
    assert env.service.quota_of(ROMASHKA_1) is None


def test_bq_04_history_lists_every_request_newest_first(env: Env) -> None:
    """BQ-04: the «История заявок» lists all the company's requests with their statuses."""
    token = login(env)
    env.service.request_quota(token, ROMASHKA_1, "add", now=env.now(), amount=100_000)
    env.advance(10 * MINUTE)
    env.service.request_quota(token, ROMASHKA_2, "add", now=env.now(), amount=100_000)
    history = env.service.history(token, now=env.now())
    assert [(r.msisdn, r.status) for r in history] == [
        (ROMASHKA_2, "accepted"),
        (ROMASHKA_1, "done"),
    ]
    only = env.service.history(token, now=env.now(), msisdn=ROMASHKA_1)
    assert [r.msisdn for r in only] == [ROMASHKA_1]
    with pytest.raises(bq.RequestNotFound):
        env.service.request(token, 42, now=env.now())


def test_bq_04_processing_survives_a_restart(tmp_path: Path) -> None:
    """BQ-04: an accepted request is processed by a restarted simulator."""
    path = str(tmp_path / "state.sqlite3")
    first = make_env(path)
    token = login(first)
    made = first.service.request_quota(token, ROMASHKA_1, "add", now=first.now(), amount=100_000)
    first.world.store.close()  # type: ignore[attr-defined]
    second = make_env(path)
    second.advance(10 * MINUTE)
    assert second.service.request(token, made.number, now=second.now()).status == "done"


# -- BQ-05: a manager and its own company only ----------------------------------------------------


def test_bq_05_a_manager_sees_and_changes_only_its_company(env: Env) -> None:
    """BQ-05: «Вектор»'s manager neither sees nor changes «Ромашка»'s numbers or requests."""
    romashka = login(env)
    vektor = login(env, VEKTOR_MANAGER)
    made = env.service.request_quota(romashka, ROMASHKA_1, "add", now=env.now(), amount=100_000)
    listed = [s.msisdn for s in env.service.subscribers(vektor, now=env.now())]
    assert listed == ["79520000014", VEKTOR_MANAGER, VEKTOR_1]
    with pytest.raises(bq.SubscriberNotInCompany):
        env.service.subscriber_page(vektor, ROMASHKA_1, now=env.now())
    with pytest.raises(bq.SubscriberNotInCompany):
        env.service.request_quota(vektor, ROMASHKA_1, "add", now=env.now(), amount=100_000)
    with pytest.raises(bq.SubscriberNotInCompany):
        env.service.subscriber_page(vektor, "79529999999", now=env.now())
    with pytest.raises(bq.RequestNotFound):
        env.service.request(vektor, made.number, now=env.now())
    assert env.service.history(vektor, now=env.now()) == []
    with pytest.raises(bq.SubscriberNotInCompany):
        env.service.history(vektor, now=env.now(), msisdn=ROMASHKA_1)


def test_bq_05_a_number_that_leaves_the_company_is_out_of_reach(env: Env) -> None:
    """BQ-05: a number moved to another company drops out; its open request is rejected."""
    token = login(env)
    made = env.service.request_quota(token, ROMASHKA_2, "add", now=env.now(), amount=100_000)
    env.world.set_field(ROMASHKA_2, "company", "vektor", now=env.now())
    env.advance(10 * MINUTE)
    assert env.service.request(token, made.number, now=env.now()).reason == (
        "subscriber_left_company"
    )
    with pytest.raises(bq.SubscriberNotInCompany):
        env.service.subscriber_page(token, ROMASHKA_2, now=env.now())


# -- the cabinet over the control API (in-process) ------------------------------------------------


@attrs.frozen
class Answer:
    status: int
    body: Any


def _gateway(path: Path) -> Gateway:
    reactor: Any = MemoryReactorClock()  # type: ignore[no-untyped-call]
    reactor.advance(START)
    config = GatewayConfig(smpp_port=0, http_port=0, state_path=str(path))
    return Gateway(config, reactor, profiles=PROFILES)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cabinet") / "state.sqlite3"
    _gateway(path).store.close()
    return path


@pytest.fixture
def gw(template: Path, tmp_path: Path) -> Gateway:
    path = tmp_path / "state.sqlite3"
    shutil.copy(template, path)
    gateway = _gateway(path)
    gateway.api.token = "t"
    return gateway


def call(gateway: Gateway, method: str, path: str, body: object = None) -> Answer:
    request: Any = DummyRequest([])
    request.method = method.encode()
    request.uri = path.encode()
    request.content = io.BytesIO(b"" if body is None else json.dumps(body).encode())
    request.requestHeaders.setRawHeaders(b"authorization", [b"Bearer t"])
    data = gateway.api.resource.render(request)
    return Answer(request.responseCode, json.loads(data))


BASE = "/api/v1/tele2ru/business"


def http_code(gw: Gateway) -> str:
    """The code as the gateway queued it for delivery: the last SMS from 611."""
    log = call(gw, "GET", f"/api/v1/messages?msisdn={ROMASHKA_MANAGER}").body["messages"]
    found = [m for m in log if m["source"] == "611" and m["direction"] == "mt"]
    match = re.search(r"\b(\d{6})\b", found[-1]["text"])
    assert match is not None
    return match.group(1)


def test_bq_01_to_04_the_cabinet_over_http(gw: Gateway) -> None:
    """BQ-01 … BQ-04 over HTTP: login → SMS queued → session → list → add → processed."""
    asked = call(gw, "POST", f"{BASE}/login", {"phone": ROMASHKA_MANAGER})
    assert asked.status == 202 and asked.body["sent_from"] == "611"
    assert "code" not in json.dumps(asked.body)
    opened = call(gw, "POST", f"{BASE}/session", {"phone": ROMASHKA_MANAGER, "code": http_code(gw)})
    assert opened.status == 201
    token = opened.body["token"]
    listed = call(gw, "GET", f"{BASE}/subscribers?session={token}").body["subscribers"]
    assert [s["msisdn"] for s in listed] == [ROMASHKA_MANAGER, ROMASHKA_1, ROMASHKA_2]
    made = call(
        gw,
        "POST",
        f"{BASE}/subscribers/{ROMASHKA_1}/quota",
        {"session": token, "amount": 150_000},
    )
    assert made.status == 202 and made.body["request"]["number"] == 1_000_001
    gw.advance(10 * MINUTE)
    history = call(gw, "GET", f"{BASE}/requests?session={token}").body["requests"]
    assert [r["status"] for r in history] == ["done"]
    page = call(gw, "GET", f"{BASE}/subscribers/{ROMASHKA_1}?session={token}").body
    assert page["quota"]["amount"] == 150_000
    changed = call(
        gw, "PUT", f"{BASE}/subscribers/{ROMASHKA_1}/quota", {"session": token, "amount": 90_000}
    )
    assert changed.body["request"]["action"] == "change"
    one = call(gw, "GET", f"{BASE}/requests/1000002?session={token}").body["request"]
    assert one["status"] == "accepted"
    assert call(gw, "DELETE", f"{BASE}/session", {"session": token}).status == 200
    gone = call(gw, "GET", f"{BASE}/subscribers?session={token}")
    assert (gone.status, gone.body["error"]) == (401, "invalid_session")


def test_bq_01_wrong_codes_over_http_stay_counted(gw: Gateway) -> None:
    """BQ-01: a refused wrong code is still counted (the API does not roll the count back)."""
    call(gw, "POST", f"{BASE}/login", {"phone": ROMASHKA_MANAGER})
    code = http_code(gw)
    messages = []
    for _ in range(3):
        answer = call(
            gw, "POST", f"{BASE}/session", {"phone": ROMASHKA_MANAGER, "code": wrong(code)}
        )
        assert (answer.status, answer.body["error"]) == (401, "wrong_code")
        messages.append(answer.body["message"])
    assert [re.search(r"(\d) tries left", m).group(1) for m in messages] == ["2", "1", "0"]  # type: ignore[union-attr]
    void = call(gw, "POST", f"{BASE}/session", {"phone": ROMASHKA_MANAGER, "code": code})
    assert (void.status, void.body["error"]) == (401, "code_void")


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/login", {"phone": ROMASHKA_1}, 403, "not_a_manager"),
        ("POST", "/login", {"phone": "89520000100"}, 422, "invalid_phone"),
        ("POST", "/login", {"phone": 79520000100}, 422, "wrong_type"),
        ("POST", "/login", {}, 422, "missing_field"),
        ("POST", "/login", {"phone": ROMASHKA_MANAGER, "x": 1}, 422, "unknown_field"),
        ("POST", "/session", {"phone": ROMASHKA_MANAGER, "code": "123456"}, 401, "no_code"),
        ("POST", "/session", {"phone": ROMASHKA_MANAGER, "code": "12"}, 422, "invalid_code_format"),
        ("GET", "/subscribers?session=forged", None, 401, "invalid_session"),
        ("GET", "/subscribers", None, 422, "missing_field"),
        ("GET", "/requests/1?session=forged", None, 401, "invalid_session"),
    ],
)
def test_bq_cabinet_refusals_have_stable_codes(
    gw: Gateway, method: str, path: str, body: object, status: int, code: str
) -> None:
    """Every refusal of the cabinet is JSON with its own stable code and HTTP status."""
    answer = call(gw, method, BASE + path, body)
    assert (answer.status, answer.body["error"]) == (status, code)
    assert answer.body["message"]


def test_bq_05_over_http_another_company_is_out_of_reach(gw: Gateway) -> None:
    """BQ-05 over HTTP: «Вектор»'s manager gets 404 for «Ромашка»'s number."""
    call(gw, "POST", f"{BASE}/login", {"phone": VEKTOR_MANAGER})
    log = call(gw, "GET", f"/api/v1/messages?msisdn={VEKTOR_MANAGER}").body["messages"]
    code = re.search(r"\b(\d{6})\b", log[-1]["text"]).group(1)  # type: ignore[union-attr]
    token = call(gw, "POST", f"{BASE}/session", {"phone": VEKTOR_MANAGER, "code": code}).body[
        "token"
    ]
    for method, path, body in (
        ("GET", f"/subscribers/{ROMASHKA_1}?session={token}", None),
        ("POST", f"/subscribers/{ROMASHKA_1}/quota", {"session": token, "amount": 100_000}),
        ("DELETE", f"/subscribers/{ROMASHKA_1}/quota", {"session": token}),
    ):
        answer = call(gw, method, BASE + path, body)
        assert (answer.status, answer.body["error"]) == (404, "subscriber_not_in_company")
