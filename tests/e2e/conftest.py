"""End-to-end fixtures: a real gateway on 127.0.0.1 port 0 on the real reactor
(pytest-twisted), driven by independent blocking clients run in threads."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_twisted
from twisted.internet import reactor, threads

from gateway.app import Gateway
from gateway.config import EsmeAccount, GatewayConfig

T = TypeVar("T")

ACCOUNTS = (
    EsmeAccount(system_id="tester", password="secret"),
    EsmeAccount(system_id="other", password="other"),
    EsmeAccount(system_id="small", password="small", window=2),
    EsmeAccount(system_id="rxonly", password="rxonly", bind_types=frozenset({"receiver"})),
    EsmeAccount(system_id="dec", password="dec", message_id_format="dec"),
)


def e2e_config(tmp_path: Path, **overrides: Any) -> GatewayConfig:
    values: dict[str, Any] = dict(
        smpp_host="127.0.0.1",
        smpp_port=0,
        http_port=0,
        state_path=str(tmp_path / "state.sqlite3"),
        accounts=ACCOUNTS,
        enquire_link_interval=30.0,
    )
    values.update(overrides)
    return GatewayConfig(**values)


def start_gateway(config: GatewayConfig) -> Gateway:
    gateway = Gateway(config, reactor)
    gateway.start()
    return gateway


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    gw = start_gateway(e2e_config(tmp_path))
    yield gw
    pytest_twisted.blockon(gw.stop())


def in_thread(function: Callable[..., T], *args: Any, **kwargs: Any) -> Any:
    """Run a blocking client function off the reactor thread; a Deferred of its result."""
    return threads.deferToThread(function, *args, **kwargs)
