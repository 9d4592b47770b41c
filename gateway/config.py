"""The gateway's configuration values: ESME accounts and listener settings.

Defaults are what ``ussdsim serve`` runs with and what the README promises; a YAML file
(``--config``) overrides them.  Values only: no I/O besides :func:`load_config`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import attrs
import yaml

from gateway.dialect import DIALECTS

BIND_TYPES: Final = frozenset({"transmitter", "receiver", "transceiver"})
LONG_MESSAGE_MODES: Final = frozenset({"udh", "udh16", "sar", "payload"})


class ConfigError(Exception):
    """A configuration value is unusable; the message says which and why."""


def _regex(_inst: object, attribute: attrs.Attribute[str], value: str) -> None:
    try:
        re.compile(value)
    except re.error as exc:
        raise ConfigError(f"{attribute.name}: not a regular expression: {exc}") from None


@attrs.frozen(kw_only=True)
class EsmeAccount:
    """One ESME that may bind (SPEC GW-01), with its own window and habits.

    ``address_range`` is the regular expression used for routing (GW-08) when the ESME
    binds with an empty address_range; ``.*`` lets one test client play every handset.
    ``long_messages`` says how replies longer than one SMS are sent (GW-09): ``udh`` (8-bit
    reference), ``udh16``, ``sar`` (sar_* TLVs) or ``payload`` (one deliver_sm with
    message_payload).  ``message_id_format`` is ``hex`` or ``dec`` (GW-07; Kannel's
    ``msg-id-type`` must agree).  ``dialect`` names the USSD dialect (DESIGN.md).
    """

    system_id: str
    password: str
    bind_types: frozenset[str] = BIND_TYPES
    window: int = 50
    deliver_window: int = 10
    max_tps: int = 0
    address_range: str = attrs.field(default=".*", validator=_regex)
    long_messages: str = "udh"
    message_id_format: str = "hex"
    dialect: str = "default"

    def __attrs_post_init__(self) -> None:
        if not self.system_id or len(self.system_id) > 15:
            raise ConfigError(f"system_id {self.system_id!r}: 1 to 15 characters (SMPP 3.4 §4.1)")
        if len(self.password) > 8:
            raise ConfigError(f"{self.system_id}: password over 8 characters (SMPP 3.4 §4.1)")
        if not self.bind_types <= BIND_TYPES or not self.bind_types:
            raise ConfigError(f"{self.system_id}: bind_types must be among {sorted(BIND_TYPES)}")
        if self.window < 1 or self.deliver_window < 1:
            raise ConfigError(f"{self.system_id}: windows must be at least 1")
        if self.long_messages not in LONG_MESSAGE_MODES:
            raise ConfigError(
                f"{self.system_id}: long_messages must be one of {sorted(LONG_MESSAGE_MODES)}"
            )
        if self.message_id_format not in ("hex", "dec"):
            raise ConfigError(f"{self.system_id}: message_id_format must be hex or dec")
        if self.dialect not in DIALECTS:
            raise ConfigError(
                f"{self.system_id}: dialect must be one of {sorted(DIALECTS)}, got {self.dialect!r}"
            )


DEFAULT_ACCOUNTS: Final = (
    EsmeAccount(system_id="tester", password="secret"),
    EsmeAccount(system_id="kannel", password="kannel", message_id_format="hex"),
)


@attrs.frozen(kw_only=True)
class GatewayConfig:
    """Everything ``serve`` needs besides the profiles."""

    smpp_host: str = "127.0.0.1"
    smpp_port: int = 2775
    http_host: str = "127.0.0.1"
    http_port: int = 8775
    state_path: str = "ussdsim.sqlite3"
    server_system_id: str = "ussdsim"
    accounts: tuple[EsmeAccount, ...] = DEFAULT_ACCOUNTS
    max_command_length: int = 65536
    bind_timeout: float = 30.0
    enquire_link_interval: float = 30.0
    response_timeout: float = 10.0
    default_validity: int = 2 * 24 * 3600
    reassembly_timeout: float = 60.0

    def account(self, system_id: str) -> EsmeAccount | None:
        for account in self.accounts:
            if account.system_id == system_id:
                return account
        return None


def _build(cls: type[Any], data: Mapping[str, Any], where: str) -> Any:
    known = {a.name for a in attrs.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(unknown)}")
    try:
        return cls(**data)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def load_config(path: Path | None = None, **overrides: Any) -> GatewayConfig:
    """Read a YAML configuration file (if any) and apply command-line overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        data.update(loaded)
    data.update({k: v for k, v in overrides.items() if v is not None})
    if "accounts" in data:
        raw = data["accounts"]
        if not isinstance(raw, list):
            raise ConfigError("accounts: a list of ESME accounts")
        accounts = []
        for i, item in enumerate(raw):
            item = dict(item)
            if "bind_types" in item:
                item["bind_types"] = frozenset(item["bind_types"])
            accounts.append(_build(EsmeAccount, item, f"accounts[{i}]"))
        data["accounts"] = tuple(accounts)
    config: GatewayConfig = _build(GatewayConfig, data, str(path or "configuration"))
    return config
