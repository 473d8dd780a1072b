"""Recording core: raw CDR messages of configured topics into one rosbag2 MCAP bag."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from twin_bag.config import RecorderConfig, offered_qos
from twin_bag.writer import BagWriter, load_typestore
from twin_core.stamps import NS_PER_S


def default_output(start_ns: int) -> Path:
    """``twin_bag_YYYYMMDD_HHMMSS`` (UTC) in the working directory."""
    return Path(f'twin_bag_{datetime.fromtimestamp(start_ns // NS_PER_S, UTC):%Y%m%d_%H%M%S}')


class Recording:
    """The bag being recorded, with the message definitions of every configured type and a
    connection for every configured topic (with 0 messages if none came).

    ``KeyError`` if a type's definition is found in none of the ament ``prefixes``.
    """

    def __init__(self, config: RecorderConfig, prefixes: Iterable[str], start_ns: int) -> None:
        self.path = Path(config.output).expanduser() if config.output else default_output(start_ns)
        self.counts: Counter[str] = Counter()
        self._types = dict(zip(config.topics, config.types))
        typestore = load_typestore(config.types, prefixes)
        self._bag = BagWriter(self.path, typestore, config.compression == 'zstd',
                              {t: offered_qos(q) for t, q in zip(config.topics, config.qos)})
        for topic, msgtype in self._types.items():  # a topic recorded without messages is listed too
            self._bag.add_topic(topic, msgtype)

    def write(self, topic: str, data: bytes, stamp_ns: int) -> None:
        """Append one serialized message received on ``topic`` at ``stamp_ns``."""
        self._bag.write(topic, self._types[topic], data, stamp_ns)
        self.counts[topic] += 1

    def close(self) -> None:
        """Finish the bag (MCAP summary and metadata.yaml)."""
        self._bag.close()
