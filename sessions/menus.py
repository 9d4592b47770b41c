"""USSD menus as data (SPEC SE-03, SE-04): the schema of a profile's ``menus:`` section, its
loading and validation into frozen trees, and the shortcuts that let a dialled string land
inside a tree.

A profile's ``menus:`` section (``fixtures/profiles/*.yaml``) has three parts::

    menus:
      paging: {key: 0, label: още}          # GW-11: the item that shows the next page
      trees:
        my_menu:                            # a tree: a title and numbered items
          title: MyMenu
          items:
            4: {label: Balans, action: info.balance}          # an action at once
            5:
              label: Uslugi
              items:                                          # a submenu
                3:
                  label: Time Share
                  prompts:                                    # prompts, then the action
                    - {param: recipient, expect: msisdn, text: "Номер на получател:"}
                  action: time_share.transfer
                  params: {}                                  # fixed parameters, optional
      entries:                              # SE-04: a parsed USSD command -> a place in a tree
        OpenMyMenu: [my_menu]
        InviteMember: [shared_bundle, 1]    # the command's field ``msisdn`` fills the prompt
                                            # whose ``param`` is ``msisdn``

An item is a **submenu** (``items``, optional ``title``) or a **flow** (``action``, optional
``prompts`` and ``params``). A prompt asks for one value: ``expect`` is a kind that
``parsers.ussd.parse_menu_answer`` knows (``msisdn``, ``count``, ``minutes``,
``destination``, ``choice``); the value reaches the action as ``params[param]`` (a wire
MSISDN ``str``; ``int`` minutes, counts and choices; ``"F"``/``"G"`` for a destination).
``tries`` (default 3, SE-05) is how many answers a prompt takes before it gives up. An
entry names a USSD command class of ``parsers.commands`` that the profile's dialling can
produce and a path (a tree, then item numbers); the command's fields fill the prompts of
the same ``param`` name, so ``*434*1*79161234567#`` runs the very flow ``*434#`` → 1 →
number runs. Everything is checked at load: an unknown key, a wrong type, a path that leads
nowhere, an item that clashes with the paging key, a field that no prompt takes — each is a
``MenuError`` naming the profile file, the path inside ``menus`` and the reason, and the
gateway refuses to start with it.
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping
from typing import Any, Final

import attrs

from parsers.commands import ANSWER_CLASSES, CHOICE_MAX, COMMAND_CLASSES, Command
from services.outbox import Params
from services.profiles import Profile

#: SE-05: a prompt re-asks on bad input, up to three tries in all, then ends.
DEFAULT_TRIES: Final = 3
MAX_TRIES: Final = 9
#: The kinds of answer a prompt may expect (``parsers.ussd.parse_menu_answer``).
EXPECTS: Final = frozenset(ANSWER_CLASSES)
#: The parameter an action's own follow-up prompt answers with (services/dispatch.py).
ANSWER_PARAM: Final = "answer"

_NAME: Final = re.compile(r"[a-z][a-z0-9_]*")
_ACTION: Final = re.compile(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*")
_USSD_COMMANDS: Final[Mapping[str, type[Command]]] = types.MappingProxyType(
    {cls.__name__: cls for cls in COMMAND_CLASSES if cls.channel == "ussd"}
)


class MenuError(Exception):
    """A profile's ``menus:`` section cannot be used: the file, where in it, and why."""

    code: Final = "menu_error"

    def __init__(self, source: str, path: str, reason: str) -> None:
        self.source = source
        self.path = path
        self.reason = reason
        super().__init__(f"{source}: {path}: {reason}")


# -- values -----------------------------------------------------------------------------------


@attrs.frozen(kw_only=True, eq=False)
class Prompt:
    """One question of a flow: its text, what it expects, and the parameter it fills."""

    path: str
    text: str
    expect: str
    param: str
    tries: int = DEFAULT_TRIES


@attrs.frozen(kw_only=True, eq=False)
class Flow:
    """An item that ends in a service action: zero or more prompts, then the action."""

    path: str
    label: str
    prompts: tuple[Prompt, ...]
    action: str
    params: Params

    def next_prompt(self, filled: tuple[tuple[str, object], ...], start: int = 0) -> int | None:
        """The index of the first prompt from ``start`` whose parameter is not yet filled."""
        names = {name for name, _ in filled}
        for index in range(start, len(self.prompts)):
            if self.prompts[index].param not in names:
                return index
        return None


@attrs.frozen(kw_only=True, eq=False)
class Menu:
    """A numbered menu; ``text`` is the whole screen (title, then ``n label`` lines)."""

    path: str
    label: str
    title: str
    items: Mapping[int, Menu | Flow]
    text: str


Node = Menu | Flow


@attrs.frozen(kw_only=True, eq=False)
class Entry:
    """Where a dialled command lands (SE-04) and which of its fields fill which prompts."""

    command: type[Command]
    node: Node
    fields: tuple[str, ...]


@attrs.frozen(kw_only=True)
class Paging:
    """GW-11: a screen longer than one USSD message ends each page with ``key label``."""

    key: int
    label: str

    @property
    def line(self) -> str:
        return f"{self.key} {self.label}"


@attrs.frozen(kw_only=True, eq=False)
class MenuSet:
    """The menus of one profile, validated."""

    profile: str
    source: str
    paging: Paging
    trees: Mapping[str, Menu]
    entries: Mapping[type[Command], Entry]

    def actions(self) -> frozenset[str]:
        """Every action name the trees lead to."""
        found: set[str] = set()
        stack: list[Node] = list(self.trees.values())
        while stack:
            node = stack.pop()
            if isinstance(node, Flow):
                found.add(node.action)
            else:
                stack.extend(node.items.values())
        return frozenset(found)


# -- reading ------------------------------------------------------------------------------------


class _Reader:
    """One mapping of the raw section being read; refuses keys nobody asked for."""

    def __init__(self, source: str, data: object, path: str) -> None:
        if not isinstance(data, Mapping):
            raise MenuError(source, path, f"expected a mapping, got {_kind(data)}")
        self.source, self.data, self.path = source, data, path
        self._read: set[object] = set()

    def error(self, key: object, reason: str) -> MenuError:
        return MenuError(self.source, self.sub(key), reason)

    def sub(self, key: object) -> str:
        return f"{self.path}.{key}"

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: object, default: object = None) -> Any:
        self._read.add(key)
        return self.data.get(key, default)

    def text(self, key: str, default: str | None = None) -> str:
        value = self.raw(key, default)
        if value is None:
            raise self.error(key, "is required")
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"expected a non-empty text, got {_kind(value)}")
        return value

    def whole(self, key: str, default: int, low: int, high: int) -> int:
        value = self.raw(key, default)
        if type(value) is not int or not low <= value <= high:
            raise self.error(key, f"expected a whole number from {low} to {high}, got {value!r}")
        return value

    def finish(self) -> None:
        unknown = [key for key in self.data if key not in self._read]
        if unknown:
            raise self.error(unknown[0], "unknown key")


def _kind(value: object) -> str:
    return "nothing" if value is None else type(value).__name__


def load_menus(profile: Profile) -> MenuSet:
    """The validated menus of ``profile``, or ``MenuError`` naming file, path and reason."""
    source = profile.source
    top = _Reader(source, profile.menus, "menus")
    paging_reader = _Reader(source, top.raw("paging", {"key": 0, "label": ">>"}), "menus.paging")
    paging = Paging(
        key=paging_reader.whole("key", 0, 0, CHOICE_MAX),
        label=paging_reader.text("label"),
    )
    paging_reader.finish()
    trees_reader = _Reader(source, top.raw("trees", {}), "menus.trees")
    trees: dict[str, Menu] = {}
    for name in list(trees_reader.data):
        path = trees_reader.sub(name)
        if not isinstance(name, str) or _NAME.fullmatch(name) is None:
            raise MenuError(source, path, "a tree name is lower-case letters, digits and _")
        trees[name] = _read_menu(source, trees_reader.raw(name), path, name, paging, None)
    trees_reader.finish()
    entries_reader = _Reader(source, top.raw("entries", {}), "menus.entries")
    entries: dict[type[Command], Entry] = {}
    for name in list(entries_reader.data):
        entry = _read_entry(source, profile.name, name, entries_reader.raw(name), trees)
        entries[entry.command] = entry
    entries_reader.finish()
    top.finish()
    return MenuSet(
        profile=profile.name,
        source=source,
        paging=paging,
        trees=types.MappingProxyType(trees),
        entries=types.MappingProxyType(entries),
    )


def _read_menu(
    source: str, data: object, path: str, label: str, paging: Paging, title: str | None
) -> Menu:
    reader = _Reader(source, data, path)
    if title is None:
        title = reader.text("title")
    items_reader = _Reader(source, reader.raw("items"), f"{path}.items")
    if not items_reader.data:
        raise MenuError(source, f"{path}.items", "a menu needs at least one item")
    items: dict[int, Menu | Flow] = {}
    for number in sorted(items_reader.data, key=lambda k: (not isinstance(k, int), str(k))):
        item_path = items_reader.sub(number)
        if type(number) is not int or not 0 <= number <= CHOICE_MAX:
            raise MenuError(source, item_path, f"an item number is 0 to {CHOICE_MAX}")
        if number == paging.key:
            raise MenuError(source, item_path, f"item {number} is the paging key ({paging.line!r})")
        items[number] = _read_item(source, items_reader.raw(number), item_path, paging)
    items_reader.finish()
    reader.finish()
    lines = [title, *(f"{number} {item.label}" for number, item in items.items())]
    return Menu(
        path=path,
        label=label,
        title=title,
        items=types.MappingProxyType(items),
        text="\n".join(lines),
    )


def _read_item(source: str, data: object, path: str, paging: Paging) -> Menu | Flow:
    reader = _Reader(source, data, path)
    label = reader.text("label")
    if "\n" in label:
        raise reader.error("label", "a label is one line")
    is_menu, is_flow = reader.has("items"), reader.has("action")
    if is_menu == is_flow:
        raise MenuError(source, path, "an item has either 'items' (a submenu) or 'action'")
    if is_menu:
        title = reader.text("title", label)
        menu_data = {"items": reader.raw("items")}
        reader.finish()
        return _read_menu(source, menu_data, path, label, paging, title)
    action = reader.text("action")
    if _ACTION.fullmatch(action) is None:
        raise reader.error("action", f"an action is named 'service.name', got {action!r}")
    params_reader = _Reader(source, reader.raw("params", {}), f"{path}.params")
    params: dict[str, object] = {}
    for key in list(params_reader.data):
        value = params_reader.raw(key)
        if not isinstance(key, str) or _NAME.fullmatch(key) is None:
            raise params_reader.error(key, "a parameter name is lower-case letters, digits, _")
        if not isinstance(value, str | int | bool):
            raise params_reader.error(
                key, f"a fixed parameter is a text or number, not {_kind(value)}"
            )
        params[key] = value
    params_reader.finish()
    prompts = _read_prompts(source, reader.raw("prompts", ()), f"{path}.prompts", params)
    reader.finish()
    return Flow(path=path, label=label, prompts=prompts, action=action, params=Params(params))


def _read_prompts(
    source: str, data: object, path: str, fixed: Mapping[str, object]
) -> tuple[Prompt, ...]:
    if not isinstance(data, tuple | list):
        raise MenuError(source, path, f"expected a list of prompts, got {_kind(data)}")
    prompts: list[Prompt] = []
    seen: set[str] = set()
    for index, item in enumerate(data):
        reader = _Reader(source, item, f"{path}[{index}]")
        param = reader.text("param")
        if _NAME.fullmatch(param) is None:
            raise reader.error("param", "a parameter name is lower-case letters, digits and _")
        if param in seen or param in fixed or param == ANSWER_PARAM:
            raise reader.error("param", f"parameter {param!r} is already given")
        seen.add(param)
        expect = reader.text("expect")
        if expect not in EXPECTS:
            raise reader.error("expect", f"expected one of {sorted(EXPECTS)}, got {expect!r}")
        prompts.append(
            Prompt(
                path=reader.path,
                text=reader.text("text"),
                expect=expect,
                param=param,
                tries=reader.whole("tries", DEFAULT_TRIES, 1, MAX_TRIES),
            )
        )
        reader.finish()
    return tuple(prompts)


def _read_entry(
    source: str, profile: str, name: object, data: object, trees: Mapping[str, Menu]
) -> Entry:
    path = f"menus.entries.{name}"
    command = _USSD_COMMANDS.get(name) if isinstance(name, str) else None
    if command is None:
        raise MenuError(source, path, f"not a USSD command; known: {sorted(_USSD_COMMANDS)}")
    if profile not in command.profiles:
        raise MenuError(source, path, f"{name} is not dialled in profile {profile!r}")
    if not isinstance(data, tuple | list) or not data:
        raise MenuError(source, path, "expected a path: a tree name, then item numbers")
    tree = data[0]
    node: Node | None = trees.get(tree) if isinstance(tree, str) else None
    if node is None:
        raise MenuError(source, path, f"no tree {tree!r}")
    for number in data[1:]:
        if not isinstance(node, Menu) or type(number) is not int or number not in node.items:
            raise MenuError(source, path, f"{list(data)} leads nowhere (at {number!r})")
        node = node.items[number]
    fields = tuple(field.name for field in attrs.fields(command))
    if fields:
        if not isinstance(node, Flow):
            raise MenuError(source, path, f"{name} carries {fields}: it must lead to a flow")
        params = {prompt.param for prompt in node.prompts}
        missing = [field for field in fields if field not in params]
        if missing:
            raise MenuError(source, path, f"no prompt of {node.path} takes {missing}")
    return Entry(command=command, node=node, fields=fields)
