"""Menus as data (SE-03, SE-04, TS-02, MP-05, MP-18 … MP-20): the bundled menus load exactly as
the seeds print them, and every kind of broken menu is refused naming file, path and reason."""

from __future__ import annotations

from typing import Any

import pytest

from parsers.commands import (
    GroupInfo,
    InviteMember,
    LeaveGroup,
    OpenInvitePrompt,
    OpenMyMenu,
    OpenSharedBundleMenu,
    RemoveMember,
)
from sessions.menus import Flow, Menu, MenuError, load_menus
from tests.sessions.support import PROFILES, profile


def test_ts_02_my_menu_lists_the_seven_items_of_seed_004() -> None:
    """TS-02: *123# opens My Menu with the seed's seven items, in order, under «MyMenu»."""
    menus = load_menus(PROFILES["telenor"])
    my_menu = menus.trees["my_menu"]
    assert my_menu.text == (
        "MyMenu\n1 Telenor paketi\n2 Internet\n3 Paketi kam opredeleni strani\n4 Balans\n"
        "5 Uslugi\n6 Oferta za vas\n7 Promo oferti"
    )
    assert menus.entries[OpenMyMenu].node is my_menu


def test_ts_02_item_5_3_is_time_share_asking_number_destination_minutes() -> None:
    """TS-02: 5 → services, 3 = Time Share: recipient number, destination, minutes, then the
    action time_share.transfer."""
    services = load_menus(PROFILES["telenor"]).trees["my_menu"].items[5]
    assert isinstance(services, Menu)
    time_share = services.items[3]
    assert isinstance(time_share, Flow)
    assert time_share.label == "Time Share"
    assert [(p.param, p.expect) for p in time_share.prompts] == [
        ("recipient", "msisdn"),
        ("destination", "destination"),
        ("minutes", "minutes"),
    ]
    assert "1 За приятели\n2 мрежата на Теленор" in time_share.prompts[1].text
    assert time_share.action == "time_share.transfer"


def test_mp_18_mp_19_mp_20_the_434_menu_and_its_shortcuts_reach_the_same_nodes() -> None:
    """SE-04, MP-05, MP-18 … MP-20: *434# → 1 invite, 2 → 1 remove / 2 leave / 3 info; each
    shortcut command lands on the node its menu path reaches."""
    menus = load_menus(PROFILES["mts"])
    root = menus.trees["shared_bundle"]
    manage = root.items[2]
    assert isinstance(manage, Menu)
    invite, remove = root.items[1], manage.items[1]
    assert isinstance(invite, Flow) and invite.action == "shared_bundle.invite"
    assert isinstance(remove, Flow) and remove.action == "shared_bundle.remove"
    expected = {
        OpenSharedBundleMenu: root,
        OpenInvitePrompt: invite,
        InviteMember: invite,
        RemoveMember: remove,
        LeaveGroup: manage.items[2],
        GroupInfo: manage.items[3],
    }
    for command, node in expected.items():
        assert menus.entries[command].node is node, command
    assert menus.entries[InviteMember].fields == ("msisdn",)
    assert {a for a in menus.actions()} == {
        "shared_bundle.invite",
        "shared_bundle.remove",
        "shared_bundle.leave",
        "shared_bundle.info",
    }


def test_se_03_every_bundled_profile_has_a_paging_item_in_its_language() -> None:
    """GW-11: each profile words the paging item: «още» in Bulgarian, «далее» in Russian."""
    labels = {name: load_menus(p).paging.line for name, p in PROFILES.items()}
    assert labels == {
        "mts": "0 далее",
        "tele2ru": "0 далее",
        "tele2kz": "0 далее",
        "telenor": "0 още",
    }


GOOD: dict[str, Any] = {
    "paging": {"key": 0, "label": "още"},
    "trees": {
        "my_menu": {
            "title": "MyMenu",
            "items": {1: {"label": "Balans", "action": "info.balance"}},
        }
    },
    "entries": {"OpenMyMenu": ["my_menu"]},
}


def _broken(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """GOOD with the value at ``path`` replaced (``...`` deletes it)."""
    import copy

    data = copy.deepcopy(GOOD)
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is ...:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


BROKEN = [
    (_broken(("trees", "my_menu", "colour"), "red"), "menus.trees.my_menu.colour", "unknown key"),
    (_broken(("trees", "my_menu", "title"), ...), "menus.trees.my_menu.title", "required"),
    (_broken(("trees", "my_menu", "items"), {}), "menus.trees.my_menu.items", "at least one"),
    (
        _broken(("trees", "my_menu", "items", 0), {"label": "x", "action": "a.b"}),
        "menus.trees.my_menu.items.0",
        "paging key",
    ),
    (
        _broken(("trees", "my_menu", "items", "1"), {"label": "x", "action": "a.b"}),
        "menus.trees.my_menu.items.1",
        "item number",
    ),
    (
        _broken(("trees", "my_menu", "items", 2), {"label": "x"}),
        "menus.trees.my_menu.items.2",
        "either",
    ),
    (
        _broken(("trees", "my_menu", "items", 2), {"label": "x", "action": "a.b", "items": {}}),
        "menus.trees.my_menu.items.2",
        "either",
    ),
    (
        _broken(("trees", "my_menu", "items", 2), {"label": "x", "action": "transfer"}),
        "menus.trees.my_menu.items.2.action",
        "service.name",
    ),
    (
        _broken(
            ("trees", "my_menu", "items", 2),
            {
                "label": "x",
                "action": "a.b",
                "prompts": [{"param": "n", "expect": "colour", "text": "?"}],
            },
        ),
        "menus.trees.my_menu.items.2.prompts[0].expect",
        "expected one of",
    ),
    (
        _broken(
            ("trees", "my_menu", "items", 2),
            {
                "label": "x",
                "action": "a.b",
                "params": {"n": 1},
                "prompts": [{"param": "n", "expect": "count", "text": "?"}],
            },
        ),
        "menus.trees.my_menu.items.2.prompts[0].param",
        "already given",
    ),
    (
        _broken(
            ("trees", "my_menu", "items", 2),
            {
                "label": "x",
                "action": "a.b",
                "prompts": [{"param": "n", "expect": "count", "text": "?", "tries": 0}],
            },
        ),
        "menus.trees.my_menu.items.2.prompts[0].tries",
        "whole number",
    ),
    (_broken(("entries", "OpenMyMenu"), ["nowhere"]), "menus.entries.OpenMyMenu", "no tree"),
    (
        _broken(("entries", "OpenMyMenu"), ["my_menu", 9]),
        "menus.entries.OpenMyMenu",
        "leads nowhere",
    ),
    (
        _broken(("entries", "TransferMinutes"), ["my_menu"]),
        "menus.entries.TransferMinutes",
        "not a USSD",
    ),
    (
        _broken(("entries", "InviteMember"), ["my_menu"]),
        "menus.entries.InviteMember",
        "not dialled",
    ),
    (_broken(("paging",), {"key": 100, "label": "още"}), "menus.paging.key", "whole number"),
    (_broken(("surprise",), {}), "menus.surprise", "unknown key"),
]


@pytest.mark.parametrize(("menus", "path", "reason"), BROKEN)
def test_se_03_a_broken_menu_is_refused_with_file_path_and_reason(
    menus: dict[str, Any], path: str, reason: str
) -> None:
    """SE-03: menus are data checked at load — each fault names the file, the path, the why."""
    broken = profile("telenor", menus=menus)
    with pytest.raises(MenuError) as caught:
        load_menus(broken)
    error = caught.value
    assert error.source.endswith("telenor.yaml")
    assert error.path == path
    assert reason in error.reason
    assert str(error).startswith(f"{error.source}: {path}: ")


def test_se_04_a_command_field_no_prompt_takes_is_refused() -> None:
    """SE-04: InviteMember carries msisdn; an entry to a flow with no msisdn prompt is refused."""
    menus = {
        "paging": {"key": 0, "label": "далее"},
        "trees": {
            "sb": {
                "title": "t",
                "items": {
                    1: {"label": "x", "action": "a.b"},
                    2: {"label": "y", "items": {1: {"label": "z", "action": "a.c"}}},
                },
            }
        },
        "entries": {"InviteMember": ["sb", 1]},
    }
    with pytest.raises(MenuError, match="takes"):
        load_menus(profile("mts", menus=menus))
    menus["entries"] = {"InviteMember": ["sb", 2]}
    with pytest.raises(MenuError, match="must lead to a flow"):
        load_menus(profile("mts", menus=menus))
