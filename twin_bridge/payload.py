"""ROS messages <-> MQTT payloads, and strict validation of inbound payloads.

JSON payloads are the message's fields as an object plus two envelope keys, ``_id`` (message id,
for deduplication) and ``_stamp_ns`` (wall-clock send time, for latency); ROS field names cannot
start with an underscore, so they never collide. CDR payloads are framed as
``b'TWC1' + stamp_ns (int64 BE) + id length (uint16 BE) + id (UTF-8) + serialized message``.
Inbound JSON must name every field with a value of the field's type (and within the mapping's
limits); anything else is rejected before a message is built.
"""
from __future__ import annotations

import functools
import json
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rosidl_parser import definition as idl

from twin_bridge.mqtt_config import Limits
from twin_ros.messages import message_class

ID_KEY, STAMP_KEY = '_id', '_stamp_ns'
CDR_MAGIC = b'TWC1'
CDR_HEADER = struct.Struct('>qH')
INTEGER_RANGES = {
    'int8': (-2**7, 2**7 - 1), 'uint8': (0, 2**8 - 1), 'char': (0, 2**8 - 1),
    'int16': (-2**15, 2**15 - 1), 'uint16': (0, 2**16 - 1),
    'int32': (-2**31, 2**31 - 1), 'uint32': (0, 2**32 - 1),
    'int64': (-2**63, 2**63 - 1), 'uint64': (0, 2**64 - 1), 'octet': (0, 255)}
FLOATS = ('float', 'double', 'long double')


class PayloadError(ValueError):
    """An inbound payload is not a valid message for its mapping; ``reason`` names the kind."""

    def __init__(self, message: str, reason: str = 'schema') -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Inbound:
    """A validated inbound message with its envelope (``None`` when the sender gave none).

    ``serialized``: for CDR payloads, the message's CDR bytes (publishable as they are).
    """

    message: Any
    message_id: str | None
    stamp_ns: int | None
    serialized: bytes | None = None


@dataclass(frozen=True, slots=True)
class _Layout:
    """A message class's fields: (name, IDL type) in order, and the set of names."""

    fields: tuple[tuple[str, Any], ...]
    names: frozenset[str]


_LAYOUTS: dict[Any, _Layout] = {}  # by message class


def _layout(cls: Any) -> _Layout:
    layout = _LAYOUTS.get(cls)
    if layout is None:
        names = cls.get_fields_and_field_types()
        layout = _LAYOUTS[cls] = _Layout(tuple(zip(names, cls.SLOT_TYPES)), frozenset(names))
    return layout


@functools.cache
def _nested_class(namespaces: tuple[str, ...], name: str) -> type[Any]:
    return message_class('/'.join((*namespaces, name)))


def to_dict(message: Any, json_safe: bool = False) -> dict[str, Any]:
    """A message as plain values (nested messages as objects, arrays as lists).

    ``json_safe``: NaN and ±inf, which JSON cannot carry, become null.
    """
    return {name: _plain(getattr(message, name), kind, json_safe) for name, kind in _layout(type(message)).fields}


def encode_json(message: Any, message_id: str, stamp_ns: int) -> bytes:
    return json.dumps({**to_dict(message, json_safe=True), ID_KEY: message_id, STAMP_KEY: stamp_ns},
                      separators=(',', ':'), allow_nan=False).encode()


def encode_cdr(serialized: bytes, message_id: str, stamp_ns: int) -> bytes:
    encoded_id = message_id.encode()
    return CDR_MAGIC + CDR_HEADER.pack(stamp_ns, len(encoded_id)) + encoded_id + serialized


class Schema:
    """Validates inbound payloads of one message type against its fields and ``limits``.

    CDR payloads are deserialized, then pass the same field and limit checks as JSON.
    """

    def __init__(self, cls: type[Any], limits: Limits) -> None:
        self.cls = cls
        self.limits = limits
        for path in limits:
            if not _is_numeric_path(cls, path.split('.')):
                raise LookupError(f'limit {path!r}: not a numeric field of {cls.__name__}')

    def decode_json(self, payload: bytes) -> Inbound:
        try:
            data = json.loads(payload, parse_constant=_reject_constant)
        except PayloadError:
            raise
        except RecursionError:
            raise PayloadError('not JSON: nested too deeply', 'too_deep') from None
        except ValueError as error:  # bad UTF-8, bad JSON, an integer of thousands of digits
            raise PayloadError(f'not JSON: {str(error)[:200]}', 'not_json') from None
        if not isinstance(data, dict):
            raise PayloadError(f'expected a JSON object, got {type(data).__name__}')
        message_id, stamp_ns = data.pop(ID_KEY, None), data.pop(STAMP_KEY, None)
        if message_id is not None and not isinstance(message_id, str):
            raise PayloadError(f'{ID_KEY}: expected a string')
        if stamp_ns is not None and (not isinstance(stamp_ns, int) or isinstance(stamp_ns, bool)):
            raise PayloadError(f'{STAMP_KEY}: expected an integer')
        return Inbound(self._build(self.cls, data, ''), message_id, stamp_ns)

    def decode_cdr(self, payload: bytes, deserialize: Callable[[bytes, type], Any]) -> Inbound:
        if not payload.startswith(CDR_MAGIC) or len(payload) < len(CDR_MAGIC) + CDR_HEADER.size:
            raise PayloadError('not a framed CDR payload', 'not_cdr')
        stamp_ns, id_length = CDR_HEADER.unpack_from(payload, len(CDR_MAGIC))
        start = len(CDR_MAGIC) + CDR_HEADER.size
        serialized = payload[start + id_length:]
        try:
            message_id = payload[start:start + id_length].decode()
            message = deserialize(serialized, self.cls)
        except Exception as error:  # the deserializer's own error types
            raise PayloadError(f'CDR: {error}', 'not_cdr') from None
        return Inbound(self._build(self.cls, to_dict(message), ''), message_id or None, stamp_ns, serialized)

    def _build(self, cls: type[Any], data: dict[str, Any], where: str) -> Any:
        layout = _layout(cls)
        names = layout.names
        if data.keys() != names:
            raise PayloadError(f'{where or cls.__name__}: unknown fields {sorted(data.keys() - names)}, '
                               f'missing fields {sorted(names - data.keys())}')
        message = cls()
        for name, kind in layout.fields:
            path = f'{where}.{name}' if where else name
            setattr(message, name, self._value(kind, data[name], path))
        return message

    def _value(self, kind: Any, value: Any, path: str) -> Any:
        if isinstance(kind, idl.AbstractNestedType):
            if not isinstance(value, list):
                raise PayloadError(f'{path}: expected a list, got {_show(value)}')
            if isinstance(kind, idl.Array) and len(value) != kind.size:
                raise PayloadError(f'{path}: expected {kind.size} items, got {len(value)}')
            if isinstance(kind, idl.BoundedSequence) and len(value) > kind.maximum_size:
                raise PayloadError(f'{path}: more than {kind.maximum_size} items')
            return [self._value(kind.value_type, item, f'{path}[]') for item in value]
        if isinstance(kind, idl.NamespacedType):
            if not isinstance(value, dict):
                raise PayloadError(f'{path}: expected an object, got {_show(value)}')
            return self._build(_nested_class(tuple(kind.namespaces), kind.name), value, path)
        if isinstance(kind, idl.AbstractGenericString):
            if not isinstance(value, str):
                raise PayloadError(f'{path}: expected a string, got {_show(value)}')
            maximum = getattr(kind, 'maximum_size', None)  # bounded strings only
            if maximum and len(value) > int(maximum):
                raise PayloadError(f'{path}: longer than {maximum}')
            return value
        return self._basic(kind.typename, value, path)

    def _basic(self, typename: str, value: Any, path: str) -> Any:
        if typename == 'boolean':
            if not isinstance(value, bool):
                raise PayloadError(f'{path}: expected a boolean, got {_show(value)}')
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PayloadError(f'{path}: expected a number, got {_show(value)}')
        bounds = self.limits.get(path.replace('[]', ''))
        if typename in FLOATS and not _finite(value):
            raise PayloadError(f'{path}: {_show(value)} is not a finite number', 'non_finite')
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            raise PayloadError(f'{path}: {value} is outside [{bounds[0]}, {bounds[1]}]', 'out_of_limits')
        if typename in FLOATS:
            return float(value)
        low, high = INTEGER_RANGES[typename]
        if not isinstance(value, int) or not low <= value <= high:
            raise PayloadError(f'{path}: expected an integer in [{low}, {high}], got {value!r}')
        return bytes([value]) if typename == 'octet' else value


def _plain(value: Any, kind: Any, json_safe: bool) -> Any:
    if isinstance(kind, idl.AbstractNestedType):
        item_kind = kind.value_type
        if isinstance(item_kind, idl.NamespacedType):
            return [to_dict(item, json_safe) for item in value]
        if isinstance(item_kind, idl.BasicType) and item_kind.typename == 'octet':
            return [item[0] for item in value]
        items = value.tolist() if hasattr(value, 'tolist') else list(value)
        if json_safe and isinstance(item_kind, idl.BasicType) and item_kind.typename in FLOATS:
            return [item if math.isfinite(item) else None for item in items]
        return items
    if isinstance(kind, idl.NamespacedType):
        return to_dict(value, json_safe)
    if isinstance(kind, idl.BasicType) and kind.typename == 'octet':
        return value[0]
    if json_safe and isinstance(kind, idl.BasicType) and kind.typename in FLOATS and not math.isfinite(value):
        return None
    return value


def _is_numeric_path(cls: type[Any], parts: list[str]) -> bool:
    fields = dict(zip(cls.get_fields_and_field_types(), cls.SLOT_TYPES))
    kind = fields.get(parts[0])
    if isinstance(kind, idl.AbstractNestedType):
        kind = kind.value_type
    if isinstance(kind, idl.NamespacedType) and len(parts) > 1:
        return _is_numeric_path(message_class('/'.join((*kind.namespaces, kind.name))), parts[1:])
    return (len(parts) == 1 and isinstance(kind, idl.BasicType)
            and kind.typename not in ('boolean', 'octet'))


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond the float range
        return False


def _reject_constant(name: str) -> Any:
    raise PayloadError(f'{name} is not a finite number', 'non_finite')


def _show(value: Any) -> str:
    return f'{type(value).__name__} {value!r}'[:80]
