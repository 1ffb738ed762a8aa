"""Typed dataclasses from TOML tables: unknown and mistyped keys refused, every error naming its key.

Written by hand because the standard library's ``tomllib`` only parses, and a schema library would
add a dependency for ~80 lines; the dataclasses of :mod:`data_engine.store.config` are the schema.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Literal, get_args, get_origin

from data_engine.errors import ConfigError


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\n``), everything else as it is."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def build_table(cls: type, raw: Any, where: str) -> Any:
    """Build dataclass ``cls`` from a TOML table, rejecting unknown and mistyped keys."""
    label = where or "top level"
    if not isinstance(raw, dict):
        raise ConfigError(f"{label}: expected a table, got {kind_of(raw)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key {join_key(where, unknown[0])!s} (known keys in {label}: {', '.join(sorted(fields))})"
        )
    values: dict[str, Any] = {}
    for name, f in fields.items():
        key = join_key(where, name)
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"missing required key {key}")
            continue
        values[name] = coerce(hints[name], raw[name], key)
    return cls(**values)


def coerce(tp: Any, value: Any, key: str) -> Any:
    """Check ``value`` against type ``tp`` and convert lists to tuples; errors name ``key``."""
    origin = get_origin(tp)
    args = get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce(inner[0], value, key)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key} = {value!r}: must be one of {', '.join(map(repr, args))}")
        return value
    if dataclasses.is_dataclass(tp):
        return build_table(tp, value, key)
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {kind_of(value)}")
        return tuple(coerce(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a table, got {kind_of(value)}")
        return {str(k): coerce(args[1], v, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {kind_of(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {kind_of(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {kind_of(value)}")
        if not math.isfinite(value):
            raise ConfigError(f"{key}: expected a finite number, got {value}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {kind_of(value)}")
        return value
    raise ConfigError(f"{key}: unsupported type")  # pragma: no cover - a programming error


def join_key(where: str, name: str) -> str:
    """The dotted key ``where.name`` (``name`` alone at the top level)."""
    return f"{where}.{name}" if where else name


def kind_of(value: Any) -> str:
    """What a TOML value is, in words for an error message ("a table", "a list", ...)."""
    return {dict: "a table", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number"}.get(type(value), type(value).__name__)
