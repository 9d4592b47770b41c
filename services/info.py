"""Informational menu actions over the world: what My Menu ``*123#`` (SPEC TS-02) shows besides
Time Share — the subscriber's packages with what is left, internet left, packages usable
abroad with the tariff's prices there, balance with minutes left and the last top-up, active
options, and offers made from the profile's own options and plans. Every screen is the
subscriber's real data or the fixtures' real offers, worded by the profile's ``info.*``
templates; none changes anything.

Actions (``install`` registers each for every profile; a menu item names them):

==================  ==========================================================================
``info.balance``    balance, minutes left per destination, the last top-up
``info.packages``   usable home packages: label, what is left, until when
``info.internet``   data left in total and per package; the price per MB without a package
``info.abroad``     packages usable abroad, then the tariff's prices abroad
``info.options``    the subscriber's options and since when
``info.option``     one option (``params['option']``): on since when with its facts, or off
``info.offers``     the profile's options with packages the subscriber has not got, priced
``info.plans``      the profile's other plans of the same payment kind, with their fee
==================  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from services.dispatch import Context, Outcome, Screen, ServiceDirectory
from services.model import Package, UsageKind
from services.outbox import render_template, require_template
from services.profiles import Profile
from services.world import World

_TELENOR: Final = ("telenor",)


def _needs(key: str, *params: str) -> str:
    return require_template(key, *params, profiles=_TELENOR).key


BALANCE: Final = _needs("info.balance", "balance", "lines")
LAST_TOPUP: Final = _needs("info.last_topup", "amount", "at")
MINUTES: Final = _needs("info.minutes", "destination", "minutes")
ANY_DESTINATION: Final = _needs("info.destination_any")
PACKAGES: Final = _needs("info.packages", "lines")
PACKAGE: Final = _needs("info.package", "label", "remaining", "unit")
PACKAGE_UNTIL: Final = _needs("info.package_until", "label", "remaining", "unit", "until")
NO_PACKAGES: Final = _needs("info.no_packages")
UNITS: Final = {kind: _needs(f"info.unit_{kind.value}") for kind in UsageKind}
INTERNET: Final = _needs("info.internet", "remaining", "lines")
NO_INTERNET: Final = _needs("info.no_internet", "lines")
DATA_RATE: Final = _needs("info.data_rate", "rate")
ABROAD: Final = _needs("info.abroad", "lines")
NO_ABROAD: Final = _needs("info.no_abroad", "lines")
ABROAD_RATES: Final = _needs("info.abroad_rates", "voice", "sms", "data")
OPTIONS: Final = _needs("info.options", "lines")
OPTION_LINE: Final = _needs("info.option_line", "name", "since")
NO_OPTIONS: Final = _needs("info.no_options")
OPTION_ON: Final = _needs("info.option_on", "name", "since", "lines")
OPTION_OFF: Final = _needs("info.option_off", "name")
OFFERS: Final = _needs("info.offers", "lines")
OFFER: Final = _needs("info.offer", "name", "fee")
OFFER_VALID: Final = _needs("info.offer_valid", "name", "fee", "days")
NO_OFFERS: Final = _needs("info.no_offers")
PLANS: Final = _needs("info.plans", "lines")
PLAN: Final = _needs("info.plan", "name", "fee")
NO_PLANS: Final = _needs("info.no_plans")
#: An option's own facts are shown when the profile words them: ``info.param.<name>``.
PARAM_PREFIX: Final = "info.param."

_HOME: Final = ("home", "everywhere")
_ABROAD: Final = ("abroad", "everywhere")
_DAY: Final = 86400

Action = Callable[[World, Context, Mapping[str, object]], Outcome]


def _say(profile: Profile, key: str, **params: object) -> str:
    return render_template(profile, key, params)


def _screen(template: str, **params: object) -> Outcome:
    return Outcome(screen=Screen(template=template, params=params))


def _lines(items: list[str]) -> str:
    return "\n".join(items)


def _usable(world: World, context: Context, zones: tuple[str, ...]) -> list[Package]:
    return [p for p in world.packages(context.msisdn, now=context.now) if p.zone in zones]


def _named(profile: Profile, package: Package) -> str:
    if package.label:
        return package.label
    if package.kind is UsageKind.VOICE:
        return _destination(profile, package.destination)
    return _say(profile, UNITS[package.kind])


def _destination(profile: Profile, code: str) -> str:
    if code == "any":
        return _say(profile, ANY_DESTINATION)
    return profile.destinations.get(code, code)


def balance(world: World, context: Context, params: Mapping[str, object]) -> Outcome:
    """4 Balans: the balance, minutes left per destination, the last top-up."""
    subscriber = world.get(context.msisdn)
    profile = world.profile_of(subscriber)
    minutes: dict[str, int] = {}
    for package in _usable(world, context, _HOME):
        if package.kind is UsageKind.VOICE:
            minutes[package.destination] = minutes.get(package.destination, 0) + package.remaining
    lines = [
        _say(profile, MINUTES, destination=_destination(profile, code), minutes=amount)
        for code, amount in minutes.items()
    ]
    last = world.last_topup(context.msisdn)
    if last is not None:
        lines.append(_say(profile, LAST_TOPUP, amount=last.amount, at=last.at))
    return _screen(BALANCE, balance=subscriber.balance, lines=_lines(lines))


def packages(world: World, context: Context, params: Mapping[str, object]) -> Outcome:
    """1 Telenor paketi: every usable home package with what is left and until when."""
    profile = world.profile_of(context.msisdn)
    found = _usable(world, context, _HOME)
    if not found:
        return _screen(NO_PACKAGES)
    return _screen(PACKAGES, lines=_lines([_line(profile, p) for p in found]))


def _line(profile: Profile, package: Package) -> str:
    """``label: остават 580 мин. до 25.11.2026``; an unlabelled package named by its kind."""
    unit = _say(profile, UNITS[package.kind])
    label = _named(profile, package)
    if package.valid_until is None:
        return _say(profile, PACKAGE, label=label, remaining=package.remaining, unit=unit)
    return _say(
        profile,
        PACKAGE_UNTIL,
        label=label,
        remaining=package.remaining,
        unit=unit,
        until=package.valid_until,
    )


def internet(world: World, context: Context, params: Mapping[str, object]) -> Outcome:
    """2 Internet: data left in all, per package, or the price per MB without one."""
    subscriber = world.get(context.msisdn)
    profile = world.profile_of(subscriber)
    found = [p for p in _usable(world, context, _HOME) if p.kind is UsageKind.DATA]
    if found:
        total = sum(p.remaining for p in found)
        return _screen(INTERNET, remaining=total, lines=_lines([_line(profile, p) for p in found]))
    rate = world.tariff_of(subscriber).rates.data_mb
    lines = [] if rate is None else [_say(profile, DATA_RATE, rate=rate)]
    return _screen(NO_INTERNET, lines=_lines(lines))


def abroad(world: World, context: Context, params: Mapping[str, object]) -> Outcome:
    """3 Paketi kam opredeleni strani: packages usable abroad, then the prices abroad."""
    subscriber = world.get(context.msisdn)
    profile = world.profile_of(subscriber)
    found = _usable(world, context, _ABROAD)
    lines = [_line(profile, p) for p in found]
    rates = world.tariff_of(subscriber).abroad
    if rates is not None:
        voice, sms, data = rates.price(UsageKind.VOICE), rates.sms, rates.data_mb
        if voice is not None and sms is not None and data is not None:
            lines.append(_say(profile, ABROAD_RATES, voice=voice, sms=sms, data=data))
    return _screen(ABROAD if found else NO_ABROAD, lines=_lines(lines))


def options(world: World, context: Context, params: Mapping[str, object]) -> Outcome:
    """Uslugi → Aktivni uslugi: the subscriber's options and since when."""
    subscriber = world.get(context.msisdn)
    profile = world.profile_of(subscriber)
    if not subscriber.options:
        return _screen(NO_OPTIONS)
    lines = [
        _say(profile, OPTION_LINE, name=profile.option(o.code).name, since=o.activated_at)
        for o in subscriber.options
    ]
    return _screen(OPTIONS, lines=_lines(lines))


def option(world: World, context: Context, params: Mapping[str, object]) -> Outcome:
    """One option (``params['option']``, e.g. Cash in Time): on since when, with the facts the
    profile words (``info.param.<name>``), or off."""
    subscriber = world.get(context.msisdn)
    profile = world.profile_of(subscriber)
    definition = profile.option(str(params.get("option", "")))
    state = subscriber.option(definition.code)
    if state is None:
        return _screen(OPTION_OFF, name=definition.name)
    lines = []
    for name, value in state.params.items():
        key = PARAM_PREFIX + name
        if key in profile.templates:
            lines.append(_say(profile, key, value=value))
    return _screen(OPTION_ON, name=definition.name, since=state.activated_at, lines=_lines(lines))


def offers(world: World, context: Context, params: Mapping[str, object]) -> Outcome:
    """6 Oferta za vas: the profile's options with packages the subscriber has not got."""
    subscriber = world.get(context.msisdn)
    profile = world.profile_of(subscriber)
    lines = []
    for definition in profile.options.values():
        if not definition.packages or subscriber.has_option(definition.code):
            continue
        if definition.validity is None:
            lines.append(_say(profile, OFFER, name=definition.name, fee=definition.fee))
        else:
            days = max(1, definition.validity // _DAY)
            lines.append(
                _say(profile, OFFER_VALID, name=definition.name, fee=definition.fee, days=days)
            )
    if not lines:
        return _screen(NO_OFFERS)
    return _screen(OFFERS, lines=_lines(lines))


def plans(world: World, context: Context, params: Mapping[str, object]) -> Outcome:
    """7 Promo oferti: the profile's other plans of the subscriber's payment kind, with fees."""
    subscriber = world.get(context.msisdn)
    profile = world.profile_of(subscriber)
    own = world.tariff_of(subscriber)
    lines = [
        _say(profile, PLAN, name=tariff.name, fee=tariff.monthly_fee)
        for tariff in profile.tariffs.values()
        if tariff.code != own.code and tariff.payment is own.payment and tariff.monthly_fee
    ]
    if not lines:
        return _screen(NO_PLANS)
    return _screen(PLANS, lines=_lines(lines))


ACTIONS: Final[Mapping[str, Action]] = {
    "info.balance": balance,
    "info.packages": packages,
    "info.internet": internet,
    "info.abroad": abroad,
    "info.options": options,
    "info.option": option,
    "info.offers": offers,
    "info.plans": plans,
}


def install(world: World, directory: ServiceDirectory) -> None:
    """Register every informational action for every profile."""
    for profile in world.profiles:
        for name, action in ACTIONS.items():
            directory.register_action(profile, name, _bound(world, action))


def _bound(world: World, action: Action) -> Callable[[Context, Mapping[str, object]], Outcome]:
    def run(context: Context, params: Mapping[str, object]) -> Outcome:
        return action(world, context, params)

    return run
