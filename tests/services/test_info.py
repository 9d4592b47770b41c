"""My Menu's informational items (TS-02): each shows the subscriber's real data from the world —
balance, packages, internet, prices abroad, options — or the profile's real offers; none is a
placeholder, and each follows the data when it changes."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from twisted.internet import task

from services import info
from services.clock import SimClock
from services.dispatch import Context, ServiceDirectory
from services.model import UsageKind
from services.outbox import check_templates, render_template
from services.profiles import Profiles, load_profiles
from services.store import SqliteStore
from services.world import World

START = 1_700_000_000
PROFILES: Profiles = load_profiles()
SENDER = "359881000001"  # prepaid_12, 10,00 лв., topped up 15 лв. 5 days ago
NO_PACKAGES = "359881000011"  # prepaid_start: pay as you go
CASH_IN_TIME = "359881000022"  # owes Cash in Time 3 лв. and its 0,30 лв. fee


@pytest.fixture(scope="module")
def world() -> World:
    clock = task.Clock()
    clock.advance(START)
    world = World(SqliteStore(":memory:"), PROFILES, SimClock(clock))
    world.load_demo(now=START)
    return world


def screen(
    world: World, action: str, msisdn: str, params: Mapping[str, object] | None = None
) -> str:
    context = Context(msisdn=msisdn, profile="telenor", now=START + 60, channel="ussd")
    outcome = info.ACTIONS[action](world, context, params or {})
    assert outcome.screen is not None and outcome.screen.end and outcome.replies == ()
    return render_template(PROFILES["telenor"], outcome.screen.template, outcome.screen.params)


def test_ts_02_balans_shows_the_balance_minutes_and_last_top_up(world: World) -> None:
    """TS-02 «4 Balans»: the balance, minutes left per destination, the last top-up."""
    text = screen(world, "info.balance", SENDER)
    assert text.splitlines()[0] == "Баланс: 10,00 лв."
    assert "Минути към мрежата на Теленор: 600" in text
    assert "Минути към група За приятели: 300" in text
    assert "Минути към всички мрежи: 100" in text
    assert "Последно презареждане: 15,00 лв." in text


def test_ts_02_telenor_paketi_lists_each_package_with_what_is_left(world: World) -> None:
    """TS-02 «1 Telenor paketi»: every usable package, what is left of it, until when."""
    text = screen(world, "info.packages", SENDER)
    lines = text.splitlines()
    assert lines[0] == "Вашите пакети:"
    assert any(
        line.startswith("600 минути в мрежата на Теленор: остават 600 мин.") for line in lines
    )
    assert any(line.startswith("8 GB мобилен интернет: остават 8192 MB") for line in lines)
    assert screen(world, "info.packages", NO_PACKAGES) == "Нямате активни пакети."


def test_ts_02_the_screens_follow_the_data_when_it_changes(world: World) -> None:
    """TS-02: the numbers are the world's: use 100 minutes and 1000 MB and the screens say so."""
    packages = world.packages(SENDER, now=START + 60)
    network = next(p for p in packages if p.kind is UsageKind.VOICE and p.destination == "network")
    data = next(p for p in packages if p.kind is UsageKind.DATA)
    world.consume_package(network.id, 100)
    world.consume_package(data.id, 1000)
    assert "Минути към мрежата на Теленор: 500" in screen(world, "info.balance", SENDER)
    assert screen(world, "info.internet", SENDER).startswith("Мобилен интернет: остават 7192 MB")


def test_ts_02_internet_without_a_package_gives_the_price_per_mb(world: World) -> None:
    """TS-02 «2 Internet»: with no data package, the tariff's price per MB."""
    text = screen(world, "info.internet", NO_PACKAGES)
    assert text == "Нямате пакет за мобилен интернет.\nЦена без пакет: 0,20 лв. за MB"


def test_ts_02_packages_to_other_countries_shows_the_prices_abroad(world: World) -> None:
    """TS-02 «3 Paketi kam opredeleni strani»: packages usable abroad, else the prices there."""
    text = screen(world, "info.abroad", SENDER)
    assert text == (
        "Нямате пакети към други страни.\n"
        "Цени в чужбина: разговори 1,20 лв./мин., SMS 0,40 лв., интернет 1,00 лв./MB"
    )


def test_ts_02_offers_are_the_profiles_options_the_subscriber_lacks(world: World) -> None:
    """TS-02 «6 Oferta za vas» and «7 Promo oferti»: the fixtures' options and plans, priced."""
    assert screen(world, "info.offers", SENDER) == (
        "Оферта за вас:\n100 допълнителни минути в мрежата: 3,00 лв., валидност 30 дни"
    )
    plans = screen(world, "info.plans", SENDER).splitlines()
    assert plans[0].startswith("Промо оферти")
    assert "Предплатен 7,99: 7,99 лв. на месец" in plans
    assert not any("Предплатен 12,99" in line for line in plans)  # its own plan


def test_ts_02_services_show_the_options_and_cash_in_time_facts(world: World) -> None:
    """TS-02 «5 Uslugi»: active options; Cash in Time with what is owed, or that it is off."""
    assert screen(world, "info.options", SENDER) == "Нямате активни услуги."
    assert screen(world, "info.options", CASH_IN_TIME).startswith(
        "Активни услуги:\nCash in Time от "
    )
    owed = screen(world, "info.option", CASH_IN_TIME, {"option": "cash_in_time"})
    assert owed.startswith("Cash in Time: активна от ")
    assert "Непогасен дълг: 3,00 лв." in owed and "Дължима такса: 0,30 лв." in owed
    off = screen(world, "info.option", SENDER, {"option": "cash_in_time"})
    assert off == "Услугата „Cash in Time“ не е активна."


def test_ts_02_install_registers_every_info_action_for_every_profile(world: World) -> None:
    """TS-02: install() puts each informational action in the directory of each profile."""
    directory = ServiceDirectory()
    info.install(world, directory)
    for profile in PROFILES:
        assert set(info.ACTIONS) <= directory.actions(profile)
    assert check_templates(PROFILES) == []
