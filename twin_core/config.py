"""Typed, strict configuration: nested dataclasses built from YAML mappings.

Every node's parameters are described by a dataclass tree. Fields carry their
documentation and bounds in ``metadata`` (``description``, ``min``, ``max``,
``choices``). Building a tree from a mapping rejects unknown keys, wrong types
and out-of-range values with a :class:`ConfigError` naming the offending key,
the same way for the launchers' pre-flight check and for the nodes.

A dataclass that names files it needs defines ``required_paths()``: the paths that
must exist, by (dotted) key. :func:`build` reports a missing one as
``<where>.<key>: file not found: <path>``, so a wrong path stops a launch before any
node starts. Files a node creates itself (outboxes, spools, bags) are not listed.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar('T')
Scalar = bool | int | float | str


class ConfigError(ValueError):
    """A configuration value is missing, unknown, mistyped or out of range."""


def describe(description: str, **bounds: Any) -> dict[str, Any]:
    """Field metadata: ``field(default=..., metadata=describe('...', min=0.0))``."""
    return {'description': description, **bounds}


def build(cls: type[T], mapping: Mapping[str, Any] | None, where: str) -> T:
    """Build dataclass ``cls`` from ``mapping``; ``where`` prefixes error messages."""
    mapping = {} if mapping is None else mapping
    if not isinstance(mapping, Mapping):
        raise ConfigError(f'{where}: expected a mapping, got {type(mapping).__name__}')
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    for key in mapping:
        if key not in fields:
            raise ConfigError(f'{_join(where, key)}: unknown key{_suggest(key, fields)}')
    values = {}
    for name, field in fields.items():
        if name in mapping:
            values[name] = _convert(hints[name], mapping[name], field, _join(where, name))
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f'{_join(where, name)}: required key is missing')
    try:
        instance = cls(**values)
    except ValueError as error:  # a cross-field check in the dataclass's __post_init__
        raise ConfigError(f'{where}: {error}') from None
    _check_required_paths(instance, where)
    return instance


def unknown_parameter(where: str, name: str, known: Iterable[str]) -> ConfigError:
    """The error for the dotted parameter ``name`` that none of the dotted names ``known`` is.

    Worded as :func:`build` words an unknown key of a mapping: the first unknown part of the
    name, with the closest key of its section.
    """
    names = set(known)
    section, _, key = name.rpartition('.')
    prefix = f'{section}.' if section else ''
    siblings = {other[len(prefix):].split('.')[0] for other in names if other.startswith(prefix)}
    if section and not siblings:
        if section in names:
            return ConfigError(f"{_join(where, name)}: unknown key ('{section}' is a value, not a section)")
        return unknown_parameter(where, section, names)  # the section itself is unknown
    return ConfigError(f'{_join(where, name)}: unknown key{_suggest(key, siblings)}')


def flatten(instance: Any, prefix: str = '') -> dict[str, Scalar | list[Any]]:
    """Dotted parameter names to values, e.g. ``{'channels.imu.rate_hz': 1000.0}``."""
    flat: dict[str, Scalar | list[Any]] = {}
    for field in dataclasses.fields(instance):
        value = getattr(instance, field.name)
        name = f'{prefix}{field.name}'
        if dataclasses.is_dataclass(value):
            flat.update(flatten(value, f'{name}.'))
        else:
            flat[name] = list(value) if isinstance(value, tuple) else value
    return flat


def leaf_fields(cls: type, prefix: str = '') -> dict[str, tuple[Any, Mapping[str, Any]]]:
    """Dotted parameter names to (type hint, field metadata), for parameter declarations."""
    out: dict[str, tuple[Any, Mapping[str, Any]]] = {}
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        name = f'{prefix}{field.name}'
        if dataclasses.is_dataclass(hints[field.name]):
            out.update(leaf_fields(hints[field.name], f'{name}.'))
        else:
            out[name] = (hints[field.name], field.metadata)
    return out


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`flatten`: dotted names back to nested mappings."""
    nested: dict[str, Any] = {}
    for name, value in flat.items():
        node = nested
        *parents, leaf = name.split('.')
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def ros_parameters(path: Path, node_name: str) -> dict[str, Any]:
    """The ``ros__parameters`` a params file gives ``node_name`` (``/**`` entries first)."""
    try:
        document = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as error:
        raise ConfigError(f'{path}: cannot read parameter file: {error.strerror}') from None
    except yaml.YAMLError as error:
        raise ConfigError(f'{path}: invalid YAML: {error}') from None
    if not isinstance(document, Mapping):
        raise ConfigError(f'{path}: expected a mapping of node names')
    merged: dict[str, Any] = {}
    for key in ('/**', node_name, f'/{node_name}'):
        section = document.get(key)
        if section is None:
            continue
        if not isinstance(section, Mapping) or set(section) != {'ros__parameters'}:
            raise ConfigError(f'{path}: {key}: expected exactly one key, ros__parameters')
        merged.update(section['ros__parameters'] or {})
    return merged


def _convert(hint: Any, value: Any, field: dataclasses.Field | None, where: str) -> Any:
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return build(hint, value, where)
    origin = typing.get_origin(hint)
    arguments = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in arguments:
            return None
        (hint,) = [a for a in arguments if a is not type(None)]
        return _convert(hint, value, field, where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f'{where}: expected a list, got {_show(value)}')
        items = tuple(_convert(arguments[0], item, None, f'{where}[{i}]')
                      for i, item in enumerate(value))
        if origin is tuple and len(arguments) == 2 and arguments[1] is not Ellipsis:
            raise TypeError(f'{where}: use tuple[T, ...] in configs')
        return items if origin is tuple else list(items)
    if origin in (dict, Mapping, collections.abc.Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f'{where}: expected a mapping, got {_show(value)}')
        return {_scalar(arguments[0], key, f'{where}: key {key!r}'):
                _convert(arguments[1], item, None, _join(where, key)) for key, item in value.items()}
    converted = _scalar(hint, value, where)
    if field is not None:
        _check_bounds(converted, field.metadata, where)
    return converted


def _scalar(hint: type, value: Any, where: str) -> Any:
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (float, int)):
            raise ConfigError(f'{where}: expected a float, got {_show(value)}')
        if isinstance(value, int):
            raise ConfigError(f'{where}: expected a float, got the integer {value} (write {value}.0)')
        if math.isnan(value):
            raise ConfigError(f'{where}: NaN is not a valid value')
        return value
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(f'{where}: expected {hint.__name__}, got {_show(value)}')
    return value


def _check_bounds(value: Any, metadata: Mapping[str, Any], where: str) -> None:
    if 'min' in metadata and value < metadata['min']:
        raise ConfigError(f'{where}: {value} is below the minimum {metadata["min"]}')
    if 'max' in metadata and value > metadata['max']:
        raise ConfigError(f'{where}: {value} is above the maximum {metadata["max"]}')
    if 'choices' in metadata and value not in metadata['choices']:
        raise ConfigError(f'{where}: {value!r} is not one of {list(metadata["choices"])}')


def _check_required_paths(instance: Any, where: str) -> None:
    required = getattr(instance, 'required_paths', None)
    if required is None:
        return
    for key, path in required().items():
        if not Path(path).exists():
            raise ConfigError(f'{_join(where, key)}: file not found: {path}')


def _join(where: str, key: str) -> str:
    return f'{where}.{key}' if where else str(key)


def _suggest(key: Any, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(key), list(known), n=1)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f' (known keys: {", ".join(sorted(known))})'


def _show(value: Any) -> str:
    return f'{type(value).__name__} {value!r}'
