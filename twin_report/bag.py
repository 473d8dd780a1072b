"""Read a run from a rosbag2 bag (as ``twin_record`` writes it) into :class:`~twin_report.series.Run`."""
from __future__ import annotations

from pathlib import Path

from twin_bag.reading import read_topics
from twin_report.series import TOPICS, Run, build_run


def read_run(path: Path, replayed: Path | None = None) -> Run:
    """The report's topics of the bag at ``path``; with ``replayed`` (the twin's outputs recorded
    while ``path`` was replayed) those topics come from it, the rest and the time span from
    ``path``. ``ValueError`` if a bag is unreadable, ``path`` holds no messages or a report topic
    has an unexpected type.
    """
    contents = read_topics(path, TOPICS)
    if replayed is None:
        return build_run(str(path), contents.start, contents.end, contents.counts, contents.messages)
    outputs = read_topics(replayed, TOPICS)
    counts = {t: n for t, n in contents.counts.items() if t not in outputs.counts} | dict(outputs.counts)
    messages = {t: m for t, m in contents.messages.items() if t not in outputs.counts} | outputs.messages
    return build_run(f'{path} replayed through the twin', contents.start, contents.end, counts, messages)
