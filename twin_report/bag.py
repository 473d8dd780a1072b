"""Read a run from a rosbag2 bag (as ``twin_record`` writes it) into :class:`~twin_report.series.Run`."""
from __future__ import annotations

from pathlib import Path

from twin_bag.reading import read_topics
from twin_report.series import TOPICS, Run, build_run


def read_run(path: Path) -> Run:
    """The report's topics of the bag at ``path``; ``ValueError`` if it is no readable bag, holds
    no messages or a report topic has an unexpected type.
    """
    contents = read_topics(path, TOPICS)
    return build_run(str(path), contents.start, contents.end, contents.counts, contents.messages)
