"""Build trees of plain dataclasses from dicts (YAML), with errors that name the key.

Every part of the project describes its settings as a plain dataclass of plain types (bool, int,
float, str, Optional, Literal, list, dict, nested dataclasses) that checks its values in
`__post_init__` (raising ValueError). This module is the one place that turns YAML-shaped dicts into
such trees: unknown keys are rejected with the nearest valid key suggested, values are type-checked
and the offending key path is named in every error.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Literal, Union


YAML_BOOL_WORDS = {False: "off", True: "on"}


class ConfigError(ValueError):
    """A config that cannot be used; the message names the key (a.b.c) and what would be valid."""


def from_dict(cls: type, data: Any, where: str = "") -> Any:
    """Instantiate dataclass `cls` from `data`; `where` is the key path used in error messages."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(data).__name__} {data!r}")
    fields = {yaml_key(f): f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = unknown[0]
        raise ConfigError(f"unknown key {_join(where, key)!r}{_suggestion(key, fields)}")
    kwargs = {fields[key].name: _coerce(hints[fields[key].name], value, _join(where, key))
              for key, value in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where or 'config'}: {e}") from None


def to_dict(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {yaml_key(f): to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def set_by_path(data: dict, path: str, value: Any, valid: type | None = None) -> None:
    """Set `a.b.c = value` inside a nested dict, creating intermediate mappings.

    With `valid` (the root dataclass), a path that names no field is an error suggesting the nearest.
    """
    keys = path.split(".")
    node, cls = data, valid
    for depth, key in enumerate(keys):
        if cls is not None:
            fields = {yaml_key(f): f for f in dataclasses.fields(cls)}
            if key not in fields:
                prefix = ".".join(keys[:depth])
                raise ConfigError(f"unknown key {_join(prefix, key)!r}{_suggestion(key, fields)}")
            sub = _dataclass_in(typing.get_type_hints(cls)[fields[key].name])
            cls = sub
        if depth == len(keys) - 1:
            node[key] = value
        else:
            nxt = node.get(key)
            if not isinstance(nxt, dict):
                nxt = node[key] = {}
            node = nxt


def yaml_key(f: dataclasses.Field) -> str:
    """A field's key in YAML: its name, or `metadata["key"]` where the name cannot be (a Python keyword
    such as `async`)."""
    return f.metadata.get("key", f.name)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _suggestion(key: str, valid: typing.Iterable[str]) -> str:
    valid = sorted(valid)
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint} (valid keys: {', '.join(valid)})"


def _dataclass_in(tp: Any) -> type | None:
    if dataclasses.is_dataclass(tp):
        return tp
    for arg in typing.get_args(tp):
        if dataclasses.is_dataclass(arg):
            return arg
    return None


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} fits none of {args}")
    if origin is Literal:
        if isinstance(value, bool) and YAML_BOOL_WORDS[value] in args:
            return YAML_BOOL_WORDS[value]  # YAML 1.1 reads `mode: off` as false
        if value not in args:
            close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}{hint}")
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item = args[0] if args else Any
        return [_coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        val_tp = args[1] if len(args) == 2 else Any
        return {k: _coerce(val_tp, v, f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-6" (no point) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    return value
