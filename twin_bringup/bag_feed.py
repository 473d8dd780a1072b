"""Twins fed by a recorded bag instead of their devices: the twins launched without simulator
and drivers, and per robot a ``twin_play`` that loops the bag's device topics into the robot's
namespace with the stamps moved to the time they play at, so each twin sees live data.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from twin_bag.reading import read_topics
from twin_bringup.node_table import load_node_table
from twin_core.config import ConfigError
from twin_core.paths import resolve_executable
from twin_report.replay import SYNCHRONIZER, device_topics, replayed_entries

PLAYER_DELAY_S = 2.0  # before the first message: the twins' subscriptions are discovered meanwhile


def robot_namespaces(config_dir: Path, robots: int) -> list[str]:
    """The namespace of each robot as ``twin_launch --robots`` runs it: none for one robot."""
    if robots == 1:
        return ['']
    fleet = load_node_table(config_dir, with_sim=False).fleet
    if fleet is None:
        raise ConfigError(f'{config_dir / "graph.yaml"}: a fleet needs a "fleet" section')
    return [fleet.robot_namespace(index) for index in range(1, robots + 1)]


def played_topics(bag: Path, config_dir: Path) -> tuple[str, ...]:
    """The bag's device topics the twin reads (as the report's replay chooses them)."""
    return device_topics(bag, read_topics(bag, {}).counts, replayed_entries(config_dir)[SYNCHRONIZER], config_dir)


def twin_command(config_dir: Path, robots: int) -> list[str]:
    """``twin_launch`` of ``robots`` twins (and the fleet node for more than one), no simulator, no drivers."""
    return [resolve_executable('twin_launch'), '--config-dir', str(config_dir), '--robots', str(robots),
            '--no-sim', '--no-drivers']


def player_command(bag: Path, namespace: str, topics: Sequence[str], delay_s: float = PLAYER_DELAY_S) -> list[str]:
    """A looping, restamping ``twin_play`` of ``topics`` into ``namespace`` ('' for none)."""
    return [resolve_executable('twin_play'), str(bag), '--loop', '--restamp', '--namespaced', '--delay', f'{delay_s:g}',
            '--topics', *topics, '--ros-args', '-r', f'__ns:=/{namespace}']
