"""The operator profiles: ``fixtures/profiles/*.yaml`` read into frozen values, or refused.

A profile (SPEC §0) is one operator's world as data: its number format, regions, short
numbers and USSD codes, tariffs (fee, billing day, included packages, per-unit rates),
options, reply templates, menus (raw: the dialogue engine gives them a schema), raw
per-service settings, and a demo population.  ``load_profiles`` reads the bundled files
through ``importlib.resources`` (so an installed ussdsim finds them) or the paths given,
and validates every field: a broken YAML file, a duplicate key, an unknown field, a wrong
type or a dangling reference (a demo subscriber on a tariff that does not exist) is refused
with a ``ProfileError`` whose message reads ``file:line: where: reason``.  Line numbers
come from PyYAML's marks, kept beside every mapping and list the loader builds.

Schema (every field of a mapping is listed; anything else is refused):

- top level: ``name`` (the file's stem), ``operator``, ``country`` (ISO 3166 alpha-2),
  ``language``, ``currency`` (ISO 4217), ``money`` (``symbol``, ``minor_digits``,
  ``decimal_separator``, ``thousands_separator``, ``hide_zero_minor``),
  ``msisdn_format`` (a regular expression the whole wire MSISDN must match),
  ``regions`` (code → name), ``destinations`` (voice destination code → name; ``any``
  is always there), ``short_numbers`` (role → digits; ``info`` is required: the core's
  own notices come from it), ``ussd_codes`` (service → code), ``settings``
  (``ussd_timeout``, ``utc_offset``, ``low_balance_threshold``), ``tariffs``,
  ``options``, ``templates`` (key → text), ``menus``, ``services``, ``demo``.
- tariff: ``name``, ``payment`` (prepaid|postpaid), ``monthly_fee``, ``billing_day``
  (``connection`` or 1–28), ``fee_instalments`` (1|2), ``credit_limit``, ``packages``,
  ``rates`` (``data_mb``, ``voice`` by destination, ``sms``; a missing ``data_mb``
  means no pay-per-use internet), ``abroad`` (the same, for use abroad), ``tags``,
  ``sharing`` (``members``, ``per_member`` packages: Tele2 KZ, SR-01), ``note``.
- package: ``kind`` (data|voice|sms), ``amount``, ``destination``, ``zone``
  (home|abroad|everywhere), ``label``.
- option: ``name``, ``fee`` (at activation, then monthly or never, by ``renewal``),
  ``renewal`` (monthly|none), ``validity`` (for one-off options: how long their
  packages last), ``packages``, ``roaming`` (``countries``, ``daily_fee``: home packages
  usable there, at most one fee per day), ``fee_free_days`` (a promo: the tariff fee
  starts after it), ``params`` (name → one of bool, int, money, time, text), ``tags``,
  ``note``.
- demo subscriber: ``msisdn``, ``tariff``, ``balance``, ``status``, ``region``,
  ``segment``, ``owner_id``, ``company``, ``account``, ``fee_paid``, ``options`` (code →
  ``activated``, e.g. ``60d ago``, plus its params; time params are written ``3d ago``
  or ``in 2h``), ``topups`` (``ago``, ``amount``, ``method``), ``packages`` (a package
  plus ``valid_for``), ``services`` (raw state for a service module), ``note`` (required:
  what the subscriber is for; the README table is made from it).

Amounts are whole numbers: money in minor units, data in MB, voice in minutes; durations
are whole seconds or strings like ``72h``, ``1h30m``, ``40d``.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal

import attrs
import yaml

from services.clock import parse_duration
from services.model import (
    Payment,
    Segment,
    SubscriberStatus,
    UnknownOption,
    UnknownProfile,
    UnknownTariff,
    UsageKind,
)
from services.outbox import placeholders

OptionParamType = Literal["bool", "int", "money", "time", "text"]
_PARAM_TYPES: Final = ("bool", "int", "money", "time", "text")
_ZONES: Final = ("home", "abroad", "everywhere")


class ProfileError(Exception):
    """A profile file cannot be used; the message names the file, the line and the reason."""

    code: Final = "profile_error"

    def __init__(self, source: str, line: int | None, reason: str) -> None:
        self.source = source
        self.line = line
        self.reason = reason
        where = source if line is None else f"{source}:{line}"
        super().__init__(f"{where}: {reason}")


# -- values ---------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class MoneyFormat:
    """How the operator writes money: ``52,00 ₽``, ``0,50 лв.``, ``1 500 ₸``."""

    symbol: str
    minor_digits: int = 2
    decimal_separator: str = ","
    thousands_separator: str = " "
    hide_zero_minor: bool = False

    def format(self, amount: int) -> str:
        sign = "-" if amount < 0 else ""
        major, minor = divmod(abs(amount), 10**self.minor_digits)
        text = f"{major:,}".replace(",", self.thousands_separator)
        if self.minor_digits and not (self.hide_zero_minor and minor == 0):
            text += f"{self.decimal_separator}{minor:0{self.minor_digits}d}"
        return f"{sign}{text} {self.symbol}"


@attrs.frozen(kw_only=True)
class PackageSpec:
    """A package a tariff or option grants each period."""

    kind: UsageKind
    amount: int
    destination: str = "any"
    zone: str = "home"
    label: str = ""


@attrs.frozen(kw_only=True)
class Rates:
    """Per-unit prices of the own tariff in minor units; None: not sold that way."""

    data_mb: int | None = None
    voice: Mapping[str, int] = attrs.field(factory=dict)
    sms: int | None = None

    def price(self, kind: UsageKind, destination: str = "any") -> int | None:
        if kind is UsageKind.DATA:
            return self.data_mb
        if kind is UsageKind.SMS:
            return self.sms
        return self.voice.get(destination, self.voice.get("any"))


@attrs.frozen(kw_only=True)
class SharingSpec:
    """«Делитесь ресурсами» on a tariff (SR-01): how many numbers, what each one gets."""

    members: int
    per_member: tuple[PackageSpec, ...]


@attrs.frozen(kw_only=True)
class Tariff:
    code: str
    name: str
    payment: Payment
    monthly_fee: int
    billing_day: int | None  # None: monthly on the connection date
    fee_instalments: int
    credit_limit: int
    packages: tuple[PackageSpec, ...]
    rates: Rates
    abroad: Rates | None
    tags: frozenset[str]
    sharing: SharingSpec | None
    note: str

    @property
    def no_monthly_fee(self) -> bool:
        return self.monthly_fee == 0


@attrs.frozen(kw_only=True)
class RoamingSpec:
    """Home packages usable in these countries for a fee per day of use (Забугорище)."""

    countries: frozenset[str]
    daily_fee: int


@attrs.frozen(kw_only=True)
class OptionDef:
    code: str
    name: str
    fee: int  # at activation, then monthly (renewal) or never
    renewal: Literal["monthly", "none"]
    validity: int | None
    packages: tuple[PackageSpec, ...]
    roaming: RoamingSpec | None
    fee_free_days: int | None
    params: Mapping[str, OptionParamType]
    tags: frozenset[str]
    note: str


@attrs.frozen(kw_only=True)
class ProfileSettings:
    ussd_timeout: int = 120  # SPEC SE-02
    utc_offset: int = 0
    low_balance_threshold: int = 0


@attrs.frozen(kw_only=True)
class DemoOption:
    activated_ago: int
    params: Mapping[str, object]
    relative_times: Mapping[str, int]  # time params as offsets from the load time


@attrs.frozen(kw_only=True)
class DemoTopUp:
    ago: int
    amount: int
    method: str


@attrs.frozen(kw_only=True)
class DemoPackage:
    spec: PackageSpec
    valid_for: int | None


@attrs.frozen(kw_only=True)
class DemoSubscriber:
    msisdn: str
    tariff: str
    balance: int
    status: SubscriberStatus
    region: str
    segment: Segment
    owner_id: str | None
    company: str | None
    account: str | None
    fee_paid: bool
    options: Mapping[str, DemoOption]
    topups: tuple[DemoTopUp, ...]
    packages: tuple[DemoPackage, ...]
    services: Mapping[str, Any]
    note: str


@attrs.frozen(kw_only=True, eq=False)
class Profile:
    name: str
    operator: str
    country: str
    language: str
    currency: str
    money: MoneyFormat
    msisdn_format: str
    regions: Mapping[str, str]
    destinations: Mapping[str, str]
    short_numbers: Mapping[str, str]
    ussd_codes: Mapping[str, str]
    settings: ProfileSettings
    tariffs: Mapping[str, Tariff]
    options: Mapping[str, OptionDef]
    templates: Mapping[str, str]
    menus: Mapping[str, Any]
    services: Mapping[str, Any]
    demo: tuple[DemoSubscriber, ...]
    source: str

    @property
    def info_number(self) -> str:
        """The short number the core's own notices come from."""
        return self.short_numbers["info"]

    def valid_msisdn(self, msisdn: str) -> bool:
        return re.fullmatch(self.msisdn_format, msisdn) is not None

    def tariff(self, key: str) -> Tariff:
        """A tariff by code or by its name as the operator writes it («Наш Smart»)."""
        found = self.tariffs.get(key)
        if found is None:
            wanted = key.strip().strip("«»").casefold()
            found = next((t for t in self.tariffs.values() if t.name.casefold() == wanted), None)
        if found is None:
            raise UnknownTariff(f"profile {self.name!r} has no tariff {key!r}", field="tariff")
        return found

    def option(self, key: str) -> OptionDef:
        """An option by code or name («Автоплатеж»)."""
        found = self.options.get(key)
        if found is None:
            wanted = key.strip().strip("«»").casefold()
            found = next((o for o in self.options.values() if o.name.casefold() == wanted), None)
        if found is None:
            raise UnknownOption(f"profile {self.name!r} has no option {key!r}", field="options")
        return found

    def format_money(self, amount: int) -> str:
        return self.money.format(amount)


class Profiles(Mapping[str, Profile]):
    """The loaded profiles by name."""

    def __init__(self, profiles: Iterable[Profile]) -> None:
        self._by_name = {p.name: p for p in profiles}

    def __getitem__(self, name: str) -> Profile:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def profile(self, name: str) -> Profile:
        """The profile ``name``, or ``UnknownProfile``."""
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownProfile(
                f"unknown profile {name!r}; known: {', '.join(sorted(self._by_name))}",
                field="profile",
            ) from None


# -- YAML with marks ----------------------------------------------------------------------


class _Map(dict[Any, Any]):
    """A YAML mapping that remembers where each key and value stood."""

    mark: Any = None
    key_marks: dict[Any, Any]
    value_marks: dict[Any, Any]


class _Seq(list[Any]):
    mark: Any = None
    item_marks: list[Any]


class _Loader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no type hints
    pass


def _construct_mapping(loader: _Loader, node: Any) -> _Map:
    loader.flatten_mapping(node)
    result = _Map()
    result.mark, result.key_marks, result.value_marks = node.start_mark, {}, {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in result
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, f"a mapping key must be a plain value, not {key!r}", key_node.start_mark
            ) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_marks[key] = key_node.start_mark
        result.value_marks[key] = value_node.start_mark
    return result


def _construct_sequence(loader: _Loader, node: Any) -> _Seq:
    result = _Seq(loader.construct_object(child, deep=True) for child in node.value)
    result.mark = node.start_mark
    result.item_marks = [child.start_mark for child in node.value]
    return result


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def _line(mark: Any) -> int | None:
    return None if mark is None else int(mark.line) + 1


_MISSING: Final = object()


class _Fields:
    """A YAML mapping being read: typed getters that remember what was read.

    ``finish()`` refuses any key nobody asked for, so a misspelt field is an error with
    its line, not a silently ignored setting.
    """

    def __init__(self, source: str, data: object, where: str, mark: Any) -> None:
        if not isinstance(data, _Map):
            raise ProfileError(source, _line(mark), f"{where or 'the file'}: expected a mapping")
        self.source, self.data, self.where = source, data, where
        self._read: set[Any] = set()

    def path(self, key: object) -> str:
        return f"{self.where}.{key}" if self.where else str(key)

    def error(self, key: object, reason: str, *, at_key: bool = False) -> ProfileError:
        marks = self.data.key_marks if at_key else self.data.value_marks
        return ProfileError(
            self.source, _line(marks.get(key, self.data.mark)), f"{self.path(key)}: {reason}"
        )

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: object = _MISSING) -> Any:
        self._read.add(key)
        if key not in self.data:
            if default is _MISSING:
                raise ProfileError(
                    self.source, _line(self.data.mark), f"{self.path(key)}: required field missing"
                )
            return default
        return self.data[key]

    def text(self, key: str, default: object = _MISSING, *, pattern: str | None = None) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"expected a non-empty text, got {value!r} (quote numbers)")
        if pattern is not None and re.fullmatch(pattern, value) is None:
            raise self.error(key, f"{value!r} does not match {pattern}")
        return value

    def whole(self, key: str, default: object = _MISSING, *, minimum: int = 0) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected a whole number, got {value!r}")
        if value < minimum:
            raise self.error(key, f"expected at least {minimum}, got {value}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {value!r}")
        return value

    def duration(self, key: str, default: object = _MISSING) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None

    def choice(self, key: str, choices: Iterable[str], default: object = _MISSING) -> Any:
        value = self.raw(key, default)
        allowed = tuple(choices)
        if value not in allowed:
            raise self.error(key, f"expected one of {', '.join(allowed)}, got {value!r}")
        return value

    def child(self, key: str, *, default_empty: bool = False) -> _Fields:
        """The mapping under ``key``; with ``default_empty``, absent or empty reads as {}."""
        value = self.raw(key, None if default_empty else _MISSING)
        if value is None and default_empty:
            value = _Map()
        mark = self.data.value_marks.get(key, self.data.mark)
        if isinstance(value, _Map) and value.mark is None:
            value.mark, value.key_marks, value.value_marks = mark, {}, {}
        return _Fields(self.source, value, self.path(key), mark)

    def names(self) -> list[str]:
        """The keys of this mapping, each a name in ``[a-z0-9_]``, marked as read."""
        for key in self.data:
            if not isinstance(key, str) or re.fullmatch(r"[a-z0-9_]+", key) is None:
                raise self.error(key, "names are lower-case ascii: [a-z0-9_]+", at_key=True)
        self._read.update(self.data)
        return list(self.data)

    def sequence(self, key: str) -> list[tuple[object, str, Any]]:
        """The items of a list field: (value, where, mark) each; a missing field is empty."""
        value = self.raw(key, _Seq())
        if not isinstance(value, _Seq):
            raise self.error(key, f"expected a list, got {value!r}")
        marks = getattr(value, "item_marks", [])
        return [
            (item, f"{self.path(key)}[{i}]", marks[i] if i < len(marks) else None)
            for i, item in enumerate(value)
        ]

    def finish(self) -> None:
        for key in self.data:
            if key not in self._read:
                raise self.error(key, "unknown field", at_key=True)


def _freeze(value: Any) -> Any:
    """Raw YAML data made immutable (menus and service settings stay raw, but frozen)."""
    if isinstance(value, dict):
        return types.MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


# -- readers, one per part of the schema ---------------------------------------------------

_NAME: Final = r"[a-z0-9_]+"
_DIGITS: Final = r"[0-9]{1,15}"


def _read_package(fields: _Fields, destinations: Mapping[str, str]) -> PackageSpec:
    kind = UsageKind(fields.choice("kind", [k.value for k in UsageKind]))
    destination = fields.text("destination", "any")
    if destination not in destinations:
        raise fields.error("destination", f"unknown destination {destination!r}")
    spec = PackageSpec(
        kind=kind,
        amount=fields.whole("amount", minimum=1),
        destination=destination,
        zone=fields.choice("zone", _ZONES, "home"),
        label=fields.text("label", ""),
    )
    return spec


def _read_packages(
    parent: _Fields, key: str, destinations: Mapping[str, str]
) -> tuple[PackageSpec, ...]:
    specs = []
    for item, where, mark in parent.sequence(key):
        fields = _Fields(parent.source, item, where, mark)
        specs.append(_read_package(fields, destinations))
        fields.finish()
    return tuple(specs)


def _read_rates(fields: _Fields, destinations: Mapping[str, str]) -> Rates:
    voice_fields = fields.child("voice", default_empty=True)
    voice = {}
    for destination in voice_fields.names():
        if destination not in destinations:
            raise voice_fields.error(destination, "unknown destination", at_key=True)
        voice[destination] = voice_fields.whole(destination)
    voice_fields.finish()
    rates = Rates(
        data_mb=fields.whole("data_mb", None), voice=types.MappingProxyType(voice),
        sms=fields.whole("sms", None),
    )  # fmt: skip
    fields.finish()
    return rates


def _read_tags(fields: _Fields) -> frozenset[str]:
    tags = set()
    for item, where, mark in fields.sequence("tags"):
        if not isinstance(item, str) or re.fullmatch(_NAME, item) is None:
            raise ProfileError(fields.source, _line(mark), f"{where}: a tag is [a-z0-9_]+")
        tags.add(item)
    return frozenset(tags)


def _read_tariff(code: str, fields: _Fields, destinations: Mapping[str, str]) -> Tariff:
    billing_day = fields.raw("billing_day", "connection")
    if billing_day != "connection" and (
        isinstance(billing_day, bool)
        or not isinstance(billing_day, int)
        or not 1 <= billing_day <= 28
    ):
        raise fields.error("billing_day", f"expected 'connection' or 1–28, got {billing_day!r}")
    rates = _read_rates(fields.child("rates", default_empty=True), destinations)
    abroad = _read_rates(fields.child("abroad"), destinations) if fields.has("abroad") else None
    sharing = None
    if fields.has("sharing"):
        sharing_fields = fields.child("sharing")
        sharing = SharingSpec(
            members=sharing_fields.whole("members", minimum=1),
            per_member=_read_packages(sharing_fields, "per_member", destinations),
        )
        sharing_fields.finish()
    tariff = Tariff(
        code=code,
        name=fields.text("name"),
        payment=Payment(fields.choice("payment", [p.value for p in Payment])),
        monthly_fee=fields.whole("monthly_fee", 0),
        billing_day=None if billing_day == "connection" else billing_day,
        fee_instalments=fields.choice("fee_instalments", (1, 2), 1),  # type: ignore[arg-type]
        credit_limit=fields.whole("credit_limit", 0),
        packages=_read_packages(fields, "packages", destinations),
        rates=rates,
        abroad=abroad,
        tags=_read_tags(fields),
        sharing=sharing,
        note=fields.text("note", ""),
    )
    if tariff.payment is Payment.PREPAID and tariff.credit_limit:
        raise fields.error("credit_limit", "a prepaid tariff has no credit limit")
    fields.finish()
    return tariff


def _read_option(code: str, fields: _Fields, destinations: Mapping[str, str]) -> OptionDef:
    roaming = None
    if fields.has("roaming"):
        roaming_fields = fields.child("roaming")
        countries = set()
        for item, where, mark in roaming_fields.sequence("countries"):
            if not isinstance(item, str) or re.fullmatch("[A-Z]{2}", item) is None:
                raise ProfileError(fields.source, _line(mark), f"{where}: a country is 'TR', 'DE'…")
            countries.add(item)
        roaming = RoamingSpec(
            countries=frozenset(countries), daily_fee=roaming_fields.whole("daily_fee")
        )
        roaming_fields.finish()
    params_fields = fields.child("params", default_empty=True)
    params: dict[str, OptionParamType] = {}
    for name in params_fields.names():
        params[name] = params_fields.choice(name, _PARAM_TYPES)
    params_fields.finish()
    option = OptionDef(
        code=code,
        name=fields.text("name"),
        fee=fields.whole("fee", 0),
        renewal=fields.choice("renewal", ("monthly", "none"), "monthly"),
        validity=fields.duration("validity", None),
        packages=_read_packages(fields, "packages", destinations),
        roaming=roaming,
        fee_free_days=fields.whole("fee_free_days", None, minimum=1),
        params=types.MappingProxyType(params),
        tags=_read_tags(fields),
        note=fields.text("note", ""),
    )
    if option.renewal == "none" and option.packages and option.validity is None:
        raise fields.error("validity", "a one-off option with packages needs a validity")
    fields.finish()
    return option


def _relative_time(fields: _Fields, key: str) -> int:
    """``'3d ago'`` → -259200, ``'in 2h'`` → 7200 (seconds from the demo's load time)."""
    value = fields.raw(key)
    if isinstance(value, str):
        text = value.strip()
        try:
            if text.endswith(" ago"):
                return -parse_duration(text[: -len(" ago")].strip())
            if text.startswith("in "):
                return parse_duration(text[len("in ") :].strip())
        except ValueError:
            pass
    raise fields.error(key, f"expected a time like '3d ago' or 'in 2h', got {value!r}")


def _read_option_params(
    fields: _Fields, option: OptionDef, skip: str
) -> tuple[dict[str, object], dict[str, int]]:
    params: dict[str, object] = {}
    relative: dict[str, int] = {}
    for name in fields.names():
        if name == skip:
            continue
        kind = option.params.get(name)
        if kind is None:
            raise fields.error(
                name, f"option {option.code!r} has no parameter {name!r}", at_key=True
            )
        if kind == "time":
            relative[name] = _relative_time(fields, name)
        elif kind == "bool":
            params[name] = fields.flag(name, False)
        elif kind == "text":
            params[name] = fields.text(name)
        else:
            params[name] = fields.whole(name)
    return params, relative


def _read_demo(
    fields: _Fields,
    tariffs: Mapping[str, Tariff],
    options: Mapping[str, OptionDef],
    regions: Mapping[str, str],
    destinations: Mapping[str, str],
    msisdn_format: str,
) -> DemoSubscriber:
    msisdn = fields.text("msisdn", pattern=msisdn_format)
    tariff = fields.text("tariff")
    if tariff not in tariffs:
        raise fields.error("tariff", f"unknown tariff {tariff!r}")
    region = fields.text("region", next(iter(regions)))
    if region not in regions:
        raise fields.error("region", f"unknown region {region!r}")
    demo_options = {}
    options_fields = fields.child("options", default_empty=True)
    for code in options_fields.names():
        if code not in options:
            raise options_fields.error(code, f"unknown option {code!r}", at_key=True)
        option_fields = options_fields.child(code, default_empty=True)
        activated = (
            _relative_time(option_fields, "activated") if option_fields.has("activated") else 0
        )
        if activated > 0:
            raise option_fields.error("activated", "an option cannot be activated in the future")
        params, relative = _read_option_params(option_fields, options[code], "activated")
        demo_options[code] = DemoOption(
            activated_ago=-activated,
            params=types.MappingProxyType(params),
            relative_times=types.MappingProxyType(relative),
        )
        option_fields.finish()
    options_fields.finish()
    topups = []
    for item, where, mark in fields.sequence("topups"):
        topup_fields = _Fields(fields.source, item, where, mark)
        topups.append(
            DemoTopUp(
                ago=topup_fields.duration("ago"),
                amount=topup_fields.whole("amount", minimum=1),
                method=topup_fields.text("method", "history"),
            )
        )
        topup_fields.finish()
    packages = []
    for item, where, mark in fields.sequence("packages"):
        package_fields = _Fields(fields.source, item, where, mark)
        valid_for = package_fields.duration("valid_for", None)
        packages.append(
            DemoPackage(spec=_read_package(package_fields, destinations), valid_for=valid_for)
        )
        package_fields.finish()
    company = fields.text("company", None, pattern=_NAME)
    account = fields.text("account", None)
    owner_id = fields.text("owner_id", None)
    demo = DemoSubscriber(
        msisdn=msisdn,
        tariff=tariff,
        balance=fields.whole("balance", 0, minimum=-(10**12)),
        status=SubscriberStatus(
            fields.choice("status", [s.value for s in SubscriberStatus], "active")
        ),
        region=region,
        segment=Segment(fields.choice("segment", [s.value for s in Segment], "private")),
        owner_id=owner_id,
        company=company,
        account=account,
        fee_paid=fields.flag("fee_paid", True),
        options=types.MappingProxyType(demo_options),
        topups=tuple(topups),
        packages=tuple(packages),
        services=_freeze(fields.raw("services", {})),
        note=fields.text("note"),
    )
    tariff_value = tariffs[tariff]
    if demo.balance < -tariff_value.credit_limit:
        raise fields.error("balance", f"below the credit limit of {tariff!r}")
    fields.finish()
    return demo


def _read_names(fields: _Fields, key: str, *, pattern: str = r".+") -> dict[str, str]:
    """A mapping of lower-case names to texts (regions, short numbers, templates…)."""
    child = fields.child(key, default_empty=True)
    result = {}
    for name in child.names():
        result[name] = child.text(name, pattern=pattern)
    child.finish()
    return result


def _read_profile(source: str, data: object, expected_name: str | None) -> Profile:
    fields = _Fields(source, data, "", getattr(data, "mark", None))
    name = fields.text("name", pattern=_NAME)
    if expected_name is not None and name != expected_name:
        raise fields.error("name", f"must be the file's name {expected_name!r}, got {name!r}")
    msisdn_format = fields.text("msisdn_format")
    try:
        re.compile(msisdn_format)
    except re.error as exc:
        raise fields.error("msisdn_format", f"not a regular expression: {exc}") from None

    money_fields = fields.child("money")
    money = MoneyFormat(
        symbol=money_fields.text("symbol"),
        minor_digits=money_fields.whole("minor_digits", 2),
        decimal_separator=money_fields.raw("decimal_separator", ","),
        thousands_separator=money_fields.raw("thousands_separator", " "),
        hide_zero_minor=money_fields.flag("hide_zero_minor", False),
    )
    money_fields.finish()

    regions = _read_names(fields, "regions")
    if not regions:
        raise fields.error("regions", "at least one region is needed")
    destinations = {"any": "any", **_read_names(fields, "destinations")}
    short_numbers = _read_names(fields, "short_numbers", pattern=_DIGITS)
    if "info" not in short_numbers:
        raise fields.error("short_numbers", "the 'info' short number is required")
    ussd_codes = _read_names(fields, "ussd_codes", pattern=r"[0-9]{1,6}")

    settings_fields = fields.child("settings", default_empty=True)
    settings = ProfileSettings(
        ussd_timeout=settings_fields.duration("ussd_timeout", 120),
        utc_offset=settings_fields.duration("utc_offset", 0),
        low_balance_threshold=settings_fields.whole("low_balance_threshold", 0),
    )
    settings_fields.finish()

    tariffs_fields = fields.child("tariffs")
    tariffs = {
        code: _read_tariff(code, tariffs_fields.child(code), destinations)
        for code in tariffs_fields.names()
    }
    if not tariffs:
        raise fields.error("tariffs", "at least one tariff is needed")
    options_fields = fields.child("options", default_empty=True)
    options = {
        code: _read_option(code, options_fields.child(code), destinations)
        for code in options_fields.names()
    }

    templates_fields = fields.child("templates")
    templates = {}
    for key in templates_fields.data:
        if not isinstance(key, str) or re.fullmatch(r"[a-z0-9_.]+", key) is None:
            raise templates_fields.error(key, "a template key is [a-z0-9_.]+", at_key=True)
        text = templates_fields.text(key)
        try:
            placeholders(text)
        except ValueError as exc:
            raise templates_fields.error(key, f"malformed template: {exc}") from None
        templates[key] = text
    templates_fields.finish()

    menus = fields.raw("menus", {})
    services = fields.raw("services", {})
    for key, value in (("menus", menus), ("services", services)):
        if not isinstance(value, dict):
            raise fields.error(key, "expected a mapping")

    demo = []
    seen: set[str] = set()
    for item, where, mark in fields.sequence("demo"):
        demo_fields = _Fields(source, item, where, mark)
        subscriber = _read_demo(demo_fields, tariffs, options, regions, destinations, msisdn_format)
        if subscriber.msisdn in seen:
            raise demo_fields.error("msisdn", f"{subscriber.msisdn} appears twice")
        seen.add(subscriber.msisdn)
        demo.append(subscriber)

    profile = Profile(
        name=name,
        operator=fields.text("operator"),
        country=fields.text("country", pattern="[A-Z]{2}"),
        language=fields.text("language", pattern="[a-z]{2}"),
        currency=fields.text("currency", pattern="[A-Z]{3}"),
        money=money,
        msisdn_format=msisdn_format,
        regions=types.MappingProxyType(regions),
        destinations=types.MappingProxyType(destinations),
        short_numbers=types.MappingProxyType(short_numbers),
        ussd_codes=types.MappingProxyType(ussd_codes),
        settings=settings,
        tariffs=types.MappingProxyType(tariffs),
        options=types.MappingProxyType(options),
        templates=types.MappingProxyType(templates),
        menus=_freeze(menus),
        services=_freeze(services),
        demo=tuple(demo),
        source=source,
    )
    fields.finish()
    return profile


def demo_table(profiles: Mapping[str, Profile]) -> str:
    """The demo population as a Markdown table for the README: whom to dial as, and why."""
    lines = [
        "| profile | MSISDN | tariff | status | what for |",
        "|---|---|---|---|---|",
    ]
    for profile in profiles.values():
        for demo in profile.demo:
            tariff = profile.tariffs[demo.tariff].name
            note = demo.note.replace("|", "\\|")
            lines.append(
                f"| {profile.name} | {demo.msisdn} | {tariff} | {demo.status.value} | {note} |"
            )
    return "\n".join(lines) + "\n"


def load_profile(text: str, source: str, *, expected_name: str | None = None) -> Profile:
    """One profile from YAML text; ``source`` names it in errors (a path, usually)."""
    try:
        data = yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = " ".join(part for part in (exc.context, exc.problem) if part)
        raise ProfileError(source, _line(mark), reason or "not valid YAML") from None
    except yaml.YAMLError as exc:
        raise ProfileError(source, None, f"not valid YAML: {exc}") from None
    return _read_profile(source, data, expected_name)


def bundled_profile_files() -> list[tuple[str, str]]:
    """``(source, text)`` of every profile shipped in the ``fixtures`` package."""
    folder = resources.files("fixtures").joinpath("profiles")
    files = sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(".yaml")),
        key=lambda entry: entry.name,
    )
    return [(str(entry), entry.read_text(encoding="utf-8")) for entry in files]


def load_profiles(paths: Iterable[Path] | None = None) -> Profiles:
    """The profiles in ``paths`` (default: the bundled ones), each validated, or ProfileError."""
    if paths is None:
        files = bundled_profile_files()
    else:
        files = []
        for path in paths:
            try:
                files.append((str(path), Path(path).read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError) as exc:
                raise ProfileError(str(path), None, f"cannot read: {exc}") from None
    profiles: list[Profile] = []
    owners: dict[str, str] = {}
    for source, text in files:
        stem = Path(source).name.removesuffix(".yaml")
        profile = load_profile(text, source, expected_name=stem)
        if any(p.name == profile.name for p in profiles):
            raise ProfileError(source, None, f"profile {profile.name!r} is loaded twice")
        for demo in profile.demo:
            if demo.msisdn in owners:
                raise ProfileError(
                    source, None, f"demo MSISDN {demo.msisdn} is also in {owners[demo.msisdn]}"
                )
            owners[demo.msisdn] = source
        profiles.append(profile)
    if not profiles:
        raise ProfileError("profiles", None, "no profile files found")
    return Profiles(profiles)
