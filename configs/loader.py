"""YAML -> typed dataclass loading, validated on load.

Every config in the project is a (possibly nested) dataclass. Files are YAML mappings whose keys
must be fields of the dataclass; unknown keys, wrong types, missing files and bad values raise
:class:`ConfigError` with one line naming the file and the dotted field path, so a typo never
silently falls back to a default.

Numbers are checked twice: every float must be finite (NaN and infinities never reach a config),
and every numeric field declares its range with :func:`bounded` (or :func:`finite` where any value
is meaningful), which :func:`from_dict` checks; a config whose ``__post_init__`` calls
:func:`check_fields` is held to its ranges and ``Literal`` choices when built in Python too. YAML
input is bounded: files over :data:`MAX_YAML_BYTES` and documents whose aliases would expand past
:data:`MAX_YAML_NODES` nodes (a "billion laughs") are refused before they are built.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

CONFIG_DIR = Path(__file__).resolve().parent  # the presets live beside this module: configs/<kind>/<name>.yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or value that does not match its schema (message is one line)."""


MAX_YAML_BYTES = 4 << 20  # a config, manifest or log metadata file is kilobytes
MAX_YAML_NODES = 200_000  # nodes of a document with its aliases expanded


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Nodes of ``node`` with every alias expanded (shared nodes counted once per use)."""
    key = id(node)
    if key not in memo:
        memo[key] = 1  # a recursive alias counts once
        if isinstance(node, yaml.SequenceNode):
            memo[key] = 1 + sum(_expanded_size(child, memo) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            memo[key] = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    return memo[key]


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 floats (``3e-4`` is a number, not the string '3e-4') and a
    bound on the expanded size of a document."""

    def compose_document(self) -> yaml.Node | None:
        node = super().compose_document()
        if node is not None and _expanded_size(node, {}) > MAX_YAML_NODES:
            raise yaml.YAMLError(f"the document expands to more than {MAX_YAML_NODES} nodes through aliases")
        return node


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|\.[0-9_]+(?:[eE][-+]?[0-9]+)?|[0-9][0-9_]*[eE][-+]?[0-9]+|\.(?:inf|Inf|INF)|[-+]\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def parse_yaml(text: str) -> Any:
    """YAML text -> Python objects with the project's loader (YAML 1.2 floats, bounded size)."""
    if len(text) > MAX_YAML_BYTES:
        raise yaml.YAMLError(f"{len(text)} bytes, more than the {MAX_YAML_BYTES} a YAML file may have here")
    return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects


def bounds(gt: float | None = None, ge: float | None = None, lt: float | None = None, le: float | None = None) -> dict[str, Any]:
    """Field metadata giving a numeric range, for a required field: ``field(metadata=bounds(gt=0))``."""
    return {"bounds": {"gt": gt, "ge": ge, "lt": lt, "le": le}}


def bounded(
    default: Any = dataclasses.MISSING,
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field whose numbers (the value, or each item of a tuple) must lie in the given range.

    ``gt``/``ge``/``lt``/``le`` are strict and inclusive bounds; checked by :func:`from_dict`.
    """
    metadata = bounds(gt=gt, ge=ge, lt=lt, le=le)
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def finite(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING) -> Any:
    """A numeric field where any finite value means something (a reward weight, a command bound)."""
    return bounded(default, default_factory=default_factory)


def _numbers(value: Any) -> list[float]:
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _numbers(v)]
    if isinstance(value, dict):
        return [x for v in value.values() for x in _numbers(v)]
    return []


def check_bounds(value: Any, limits: dict[str, float | None], where: str) -> None:
    """Raise :class:`ConfigError` naming ``where`` if a number in ``value`` is outside ``limits``."""
    tests = {
        "gt": (lambda x, b: x > b, "> {}"),
        "ge": (lambda x, b: x >= b, ">= {}"),
        "lt": (lambda x, b: x < b, "< {}"),
        "le": (lambda x, b: x <= b, "<= {}"),
    }
    for x in _numbers(value):
        for name, bound in limits.items():
            if bound is not None and not tests[name][0](x, bound):
                wanted = " and ".join(tests[k][1].format(b) for k, b in limits.items() if b is not None)
                raise ConfigError(f"{where}: expected a value {wanted}, got {value!r}")


def _choices(tp: Any) -> tuple[Any, ...] | None:
    """The values a ``Literal[...]`` (or ``Literal[...] | None``) annotation allows; None for other types."""
    if get_origin(tp) is Literal:
        return get_args(tp)
    if get_origin(tp) in (Union, types.UnionType):
        args = get_args(tp)
        if all(get_origin(a) is Literal or a is type(None) for a in args):
            return tuple(v for a in args for v in (get_args(a) if a is not type(None) else (None,)))
    return None


_FIELD_RULES: dict[type, list[tuple[str, Any, tuple[Any, ...] | None]]] = {}  # per class: type hints are slow to resolve


def _field_rules(cls: type) -> list[tuple[str, Any, tuple[Any, ...] | None]]:
    """(name, bounds, Literal choices) of each field of dataclass ``cls``."""
    if cls not in _FIELD_RULES:
        hints = get_type_hints(cls)
        _FIELD_RULES[cls] = [(f.name, f.metadata.get("bounds"), _choices(hints[f.name])) for f in dataclasses.fields(cls)]
    return _FIELD_RULES[cls]


def _one_of(choices: tuple[Any, ...]) -> str:
    """``'a', 'b' or 'c'``: the values of a ``Literal`` (None, where allowed, goes unsaid)."""
    shown = [repr(c) for c in choices if c is not None]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"


def check_fields(config: Any) -> None:
    """Hold a dataclass instance to its fields' declared ranges (:func:`bounded`) and ``Literal`` choices.

    Called from ``__post_init__``, so a config built in Python is checked as one loaded by :func:`from_dict`
    (which has checked the keys of a file already, naming the file); the error names the field.
    """
    for name, limits, choices in _field_rules(type(config)):
        value = getattr(config, name)
        if limits is not None:
            check_bounds(value, limits, name)
        if choices is not None and value not in choices:
            raise ConfigError(f"{name}: expected {_one_of(choices)}, got {value!r}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and return it converted (ints to floats, lists to tuples)."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        return _convert_union(value, tp, where)
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{where}: expected one of {list(get_args(tp))}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return from_dict(tp, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
            return tuple(_convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        items = [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        key_t, val_t = get_args(tp) or (Any, Any)
        return {_convert(k, key_t, where): _convert(v, val_t, _child(where, k)) for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected float, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected int, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected bool, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected str, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported field type {_type_name(tp)}")


def _convert_union(value: Any, tp: Any, where: str) -> Any:
    """``value`` as the first member of the union ``tp`` it fits."""
    args = get_args(tp)
    if value is None and type(None) in args:
        return None
    choices = _choices(tp)
    if choices is not None and value not in choices:  # Literal[...] | None: name the values, not the union
        raise ConfigError(f"{where}: expected {_one_of(choices)}, got {value!r}")
    for arg in args:
        if arg is type(None):
            continue
        try:
            return _convert(value, arg, where)
        except ConfigError:
            continue  # the next member of the union may fit
    raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")


def _child(where: str, key: object) -> str:
    """``file.yaml: key`` at the top of a file, ``parent.key`` below it."""
    return f"{where}: {key}" if where.endswith((".yaml", ".yml", ".json")) else f"{where}.{key}"


def from_dict(cls: type[T], data: Any, where: str = "config") -> T:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping for {cls.__name__}, got {data!r}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(f"{where}: unknown key {key!r} ({hint}expected one of {sorted(fields)})")
        kwargs[key] = _convert(value, hints[key], _child(where, key))
        limits = fields[key].metadata.get("bounds")
        if limits is not None:
            check_bounds(kwargs[key], limits, _child(where, key))
    for name, f in fields.items():
        if name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: missing required key {name!r}")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:  # __post_init__ validation
        raise ConfigError(f"{where}: {exc}") from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with a one-line error for a missing or malformed file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = parse_yaml(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{line} malformed YAML ({getattr(exc, 'problem', exc)})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a YAML mapping at the top level")
    return data


def apply_overrides(data: dict[str, Any], overrides: typing.Sequence[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides (values parsed as YAML) to a nested mapping."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key.path=value")
        key, raw = item.split("=", 1)
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a mapping")
        node[parts[-1]] = parse_yaml(raw)
    return data


def resolve_config_path(name_or_path: str | Path, kind: str) -> Path:
    """``go1_flat`` -> ``configs/<kind>/go1_flat.yaml``; paths pass through."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        return path
    if "/" in str(name_or_path) or path.suffix:  # a path (preset names have neither), but not to a YAML file
        what = "a directory" if path.is_dir() else "not a YAML file" if path.exists() else "not found"
        raise ConfigError(f"{path}: {what}; give a {kind} preset name ({', '.join(presets(kind))}) or a .yaml file")
    preset = CONFIG_DIR / kind / f"{name_or_path}.yaml"
    if not preset.is_file():
        names = presets(kind)
        hint = did_you_mean(str(name_or_path), names)
        known = hint or f"; presets: {', '.join(names)} (or a YAML path)"
        raise ConfigError(f"{preset}: config file not found: no {kind} preset {str(name_or_path)!r}{known}")
    return preset


def presets(kind: str) -> list[str]:
    """The preset names of ``configs/<kind>/``."""
    return sorted(p.stem for p in (CONFIG_DIR / kind).glob("*.yaml"))


def did_you_mean(word: str, choices: typing.Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or nothing."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def merge(base: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``delta``'s keys replacing its own, mappings merged key by key."""
    out = dict(base)
    for key, value in delta.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


MAX_BASES = 8


def read_preset(path: str | Path) -> dict[str, Any]:
    """A preset's YAML mapping, with ``base: NAME`` resolved: the preset NAME.yaml beside it, then this
    file's keys over it (mappings merged key by key). A preset then states only what it changes."""
    path = Path(path)
    data, seen = read_yaml(path), [path.resolve()]
    while "base" in data:
        name = data.pop("base")
        if not isinstance(name, str) or "/" in name or "\\" in name or not name:
            raise ConfigError(f"{seen[-1]}: base: expected the name of a preset beside it, got {name!r}")
        parent = (seen[-1].parent / f"{name}.yaml").resolve()
        if parent in seen or len(seen) > MAX_BASES:
            raise ConfigError(f"{seen[-1]}: base: {name!r} makes a cycle (or more than {MAX_BASES} levels)")
        seen.append(parent)
        data = merge(read_yaml(parent), data)
    return data


def load(cls: type[T], path: str | Path, overrides: typing.Sequence[str] = ()) -> T:
    """Load and validate a YAML preset (``base:`` resolved) into dataclass ``cls``."""
    data = apply_overrides(read_preset(path), overrides)
    return from_dict(cls, data, where=str(path))


def to_dict(obj: Any) -> Any:
    """A dataclass as plain YAML-able data (tuples become lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj
