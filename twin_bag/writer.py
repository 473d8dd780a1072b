"""rosbag2 MCAP writing: a bag with one connection per topic, typed from the installed messages."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from rosbags.interfaces import Qos
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
from rosbags.rosbag2.writer import Connection
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.base import Nodetype
from rosbags.typesys.store import Typestore


def load_typestore(type_names: Iterable[str], prefixes: Iterable[str]) -> Typestore:
    """The Kilted typestore plus each missing type, and what it references, read from
    ``<prefix>/share/<package>/msg/<Name>.msg`` (ament prefixes); KeyError names a type
    found nowhere.
    """
    typestore = get_typestore(Stores.ROS2_KILTED)
    missing = [name for name in type_names if name not in typestore.fielddefs]
    while missing:
        name = missing.pop()
        if name in typestore.fielddefs:
            continue
        package, _, message = name.split('/')
        for prefix in prefixes:
            path = Path(prefix) / 'share' / package / 'msg' / f'{message}.msg'
            if path.is_file():
                types = get_types_from_msg(path.read_text(), name)
                typestore.register(types)
                missing.extend(_referenced(types[name][1]))
                break
        else:
            raise KeyError(f'no message definition for {name} in share/{package}/msg of '
                           f'{list(prefixes)}')
    return typestore


def _referenced(fields: list) -> list[str]:
    names = []
    for _, (kind, detail) in fields:
        if kind == Nodetype.NAME:
            names.append(detail)
        elif kind in (Nodetype.ARRAY, Nodetype.SEQUENCE) and detail[0][0] == Nodetype.NAME:
            names.append(detail[0][1])
    return names


class BagWriter:
    """A rosbag2 MCAP bag being written: one connection per topic, added with its first
    message or by :meth:`add_topic` (message definitions from ``typestore``, offered QoS from ``qos``).
    """

    def __init__(self, path: Path, typestore: Typestore, zstd: bool,
                 qos: Mapping[str, Qos] | None = None) -> None:
        self._typestore = typestore
        self._qos = qos or {}
        self._connections: dict[str, Connection] = {}
        self._writer = Writer(path, version=Writer.VERSION_LATEST,
                              storage_plugin=StoragePlugin.MCAP)
        if zstd:
            self._writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
        self._writer.open()

    def add_topic(self, topic: str, msgtype: str) -> Connection:
        """The topic's connection, added now if it has none (a topic may stay without messages)."""
        connection = self._connections.get(topic)
        if connection is None:
            offered = (self._qos[topic],) if topic in self._qos else ()
            connection = self._writer.add_connection(topic, msgtype, typestore=self._typestore,
                                                     offered_qos_profiles=offered)
            self._connections[topic] = connection
        return connection

    def write(self, topic: str, msgtype: str, data: bytes, stamp_ns: int) -> None:
        """Append one serialized message."""
        self._writer.write(self.add_topic(topic, msgtype), stamp_ns, data)

    def close(self) -> None:
        """Write the MCAP summary and metadata.yaml."""
        self._writer.close()

    def abort(self) -> None:
        """Close the files without finishing the bag."""
        self._writer.abort()
