"""Replies the operator core and the services want sent, and how their texts are made.

Services never send anything: they return ``Reply`` values (to whom, from which short
number, which template of the profile, with which parameters, by SMS or on the USSD
screen) and the gateway turns them into deliver_sm through routing, durably queued in the
same transaction as the change that caused them.  Texts are data: ``render`` fills the
profile's template (``str.format`` syntax with named placeholders) and knows two format
specs of the simulator's own, ``{fee:money}`` (integer minor units in the profile's
currency, e.g. ``52,00 ₽`` or ``0,50 лв.``) and ``{until:datetime}`` / ``{until:date}``
(clock seconds in the profile's local time).  Every module that emits a template key
declares it with ``require_template`` at import time; ``check_templates`` then proves each
profile has every key it needs with no placeholder the code does not supply.

A template text is parsed once, on first use, into its literal parts and named fields
(``_compiled``); rendering then joins them, which is what ``string.Formatter`` would produce
but without re-parsing the text for every message.  A text with anything beyond plain named
fields (attribute or index lookups, nested specs) keeps the general ``Formatter`` path.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final, Literal

import attrs

from services.clock import format_time

if TYPE_CHECKING:
    from services.profiles import Profile

Channel = Literal["sms", "ussd"]


class Params(Mapping[str, object]):
    """An immutable, hashable mapping of template parameters (keeps ``Reply`` hashable)."""

    __slots__ = ("_data", "_hash")

    def __init__(self, items: Mapping[str, object] | Iterable[tuple[str, object]] = ()) -> None:
        data = dict(items.items() if isinstance(items, Mapping) else items)
        for key, value in data.items():
            if not isinstance(key, str):
                raise TypeError(f"template parameter names are strings, got {key!r}")
            hash(value)  # a value that cannot be hashed would break Reply's hash later
        self._data: dict[str, object] = data
        self._hash: int | None = None

    def __getitem__(self, key: str) -> object:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __repr__(self) -> str:
        return f"Params({self._data!r})"


def as_params(value: Mapping[str, object] | Iterable[tuple[str, object]]) -> Params:
    """``value`` as ``Params`` (the converter of every ``params`` field)."""
    return value if isinstance(value, Params) else Params(value)


@attrs.frozen(kw_only=True)
class Reply:
    """One message to send: an SMS or a USSD screen text, by template key (SPEC GW-05)."""

    to: str
    sender: str
    template: str
    params: Params = attrs.field(factory=Params, converter=as_params)
    channel: Channel = "sms"
    profile: str


class TemplateError(Exception):
    """A template is missing, malformed, or asks for a parameter the reply lacks."""

    code: Final = "template_error"


class _Formatter(string.Formatter):
    def __init__(self, profile: Profile) -> None:
        self._profile = profile

    def format_field(self, value: Any, format_spec: str) -> str:
        if format_spec == "money":
            return self._profile.format_money(_whole(value, "money"))
        if format_spec in ("datetime", "date"):
            return format_time(
                _whole(value, format_spec),
                self._profile.settings.utc_offset,
                with_time=format_spec == "datetime",
            )
        return str(super().format_field(value, format_spec))


def _whole(value: object, spec: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TemplateError(f"format ':{spec}' needs a whole number, got {value!r}")
    return value


#: A parsed template: literal text, then per field its name, conversion and format spec.
_Field = tuple[str, str | None, str]
_Compiled = tuple[tuple[str, ...], tuple[_Field, ...]]
#: Template text → its parts, or None when only the general Formatter can render it.  Keyed by
#: the text itself (the profiles' templates are a fixed set), so a profile's change of a text
#: is simply another key.
_COMPILED: dict[str, _Compiled | None] = {}
_COMPILED_LIMIT: Final = 10_000


def _compile(template: str) -> _Compiled | None:
    literals: list[str] = []
    fields: list[_Field] = []
    pending = ""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        return None  # malformed: the Formatter path raises the error the caller expects
    for literal, name, spec, conversion in parsed:
        pending += literal
        if name is None:
            continue
        if not name.isidentifier() or (spec and "{" in spec):
            return None
        if conversion not in (None, "r", "s", "a"):
            return None
        literals.append(pending)
        fields.append((name, conversion, spec or ""))
        pending = ""
    literals.append(pending)
    return tuple(literals), tuple(fields)


def _compiled(template: str) -> _Compiled | None:
    try:
        return _COMPILED[template]
    except KeyError:
        pass
    if len(_COMPILED) >= _COMPILED_LIMIT:
        _COMPILED.clear()
    compiled = _COMPILED[template] = _compile(template)
    return compiled


def _format(profile: Profile, value: object, conversion: str | None, spec: str) -> str:
    """One field as ``_Formatter`` formats it (conversion first, then the spec)."""
    if conversion == "s":
        value = str(value)
    elif conversion == "r":
        value = repr(value)
    elif conversion == "a":
        value = ascii(value)
    if spec == "money":
        return profile.format_money(_whole(value, "money"))
    if spec in ("datetime", "date"):
        return format_time(
            _whole(value, spec), profile.settings.utc_offset, with_time=spec == "datetime"
        )
    if not spec and type(value) is str:
        return value
    return format(value, spec)


def render_template(profile: Profile, key: str, params: Mapping[str, object]) -> str:
    """The text of template ``key`` of ``profile`` filled with ``params``."""
    try:
        template = profile.templates[key]
    except KeyError:
        raise TemplateError(f"profile {profile.name!r} has no template {key!r}") from None
    try:
        compiled = _compiled(template)
        if compiled is None:
            return str(_Formatter(profile).vformat(template, (), params))
        literals, fields = compiled
        if not fields:
            return literals[0]
        out = [literals[0]]
        for (name, conversion, spec), literal in zip(fields, literals[1:], strict=True):
            out.append(_format(profile, params[name], conversion, spec))
            out.append(literal)
        return "".join(out)
    except KeyError as exc:
        raise TemplateError(
            f"template {key!r} of profile {profile.name!r} needs parameter {exc.args[0]!r}, "
            f"the reply has {sorted(params)}"
        ) from None
    except (ValueError, IndexError) as exc:
        raise TemplateError(f"template {key!r} of profile {profile.name!r}: {exc}") from None


def render(reply: Reply, profiles: Mapping[str, Profile]) -> str:
    """The text of a reply in its profile's words."""
    try:
        profile = profiles[reply.profile]
    except KeyError:
        raise TemplateError(
            f"reply to {reply.to} names unknown profile {reply.profile!r}"
        ) from None
    return render_template(profile, reply.template, reply.params)


def placeholders(template: str) -> frozenset[str]:
    """The named placeholders a template text uses (``ValueError`` if it is malformed)."""
    names = set()
    for _literal, field, _spec, _conversion in string.Formatter().parse(template):
        if field is not None:
            if not field or field.isdigit():
                raise ValueError("placeholders must be named, like {balance}")
            names.add(field.split(".")[0].split("[")[0])
    return frozenset(names)


# -- the registry of template keys the code emits ------------------------------------------


@attrs.frozen
class TemplateRequirement:
    """A template key the code emits, the parameters it supplies, the profiles needing it."""

    key: str
    params: frozenset[str]
    profiles: frozenset[str] | None  # None: every profile


_REQUIRED: dict[str, TemplateRequirement] = {}


def require_template(
    key: str, *params: str, profiles: Iterable[str] | None = None
) -> TemplateRequirement:
    """Declare (at import time) that code emits ``key`` with exactly ``params`` supplied."""
    requirement = TemplateRequirement(
        key, frozenset(params), None if profiles is None else frozenset(profiles)
    )
    known = _REQUIRED.get(key)
    if known is not None and known != requirement:
        raise ValueError(f"template {key!r} declared twice, differently: {known} / {requirement}")
    _REQUIRED[key] = requirement
    return requirement


def required_templates() -> Mapping[str, TemplateRequirement]:
    return dict(_REQUIRED)


def check_templates(profiles: Mapping[str, Profile]) -> list[str]:
    """Every problem with the declared keys: missing templates, unsupplied placeholders."""
    problems = []
    for requirement in _REQUIRED.values():
        for name, profile in profiles.items():
            if requirement.profiles is not None and name not in requirement.profiles:
                continue
            template = profile.templates.get(requirement.key)
            if template is None:
                problems.append(f"{name}: template {requirement.key!r} is missing")
                continue
            extra = placeholders(template) - requirement.params
            if extra:
                problems.append(
                    f"{name}: template {requirement.key!r} uses {sorted(extra)}, "
                    f"the code supplies only {sorted(requirement.params)}"
                )
    return problems


def parse_error_template(reason: str) -> str:
    """The template key of a parser's refusal reason (issue 3's ``ParseError.reason``)."""
    return f"parse_error.{reason}"


#: Reasons of ``ParseError`` every profile words (parsers may declare more).
PARSE_ERROR_REASONS: Final = (
    "empty",
    "unknown_code",
    "unknown_service",
    "bad_format",
    "bad_msisdn",
    "msisdn_with_8",
    "not_a_number",
    "bad_choice",
    "minutes_not_multiple_of_10",
    "minutes_out_of_range",
    "bad_destination_letter",
    "spaces_not_allowed",
)
for _reason in PARSE_ERROR_REASONS:
    require_template(parse_error_template(_reason))
