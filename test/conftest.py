"""Fixtures: an isolated, loopback-only DDS domain per test run, node processes, a topic probe."""
from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import rclpy
from rclpy.node import Node
from rclpy.parameter import Parameter

from harness import (
    CONFIG_DIR,
    REPLAY_DOMAIN_OFFSET,
    TEST_DOMAINS,
    NodeProcess,
    S3Server,
    TopicProbe,
    stale_fastdds_segments,
)

pytest_plugins = ['mqtt_fixtures']  # the mosquitto and broker_directory fixtures


def pytest_configure(config: pytest.Config) -> None:
    chosen = os.environ.get('TWIN_TEST_DOMAIN_ID', '')
    if chosen and not (chosen.isdigit() and int(chosen) in TEST_DOMAINS):
        raise pytest.UsageError(f'TWIN_TEST_DOMAIN_ID={chosen}: expected {TEST_DOMAINS.start} to '
                                f'{TEST_DOMAINS.stop - 1} (the report tests also use it + {REPLAY_DOMAIN_OFFSET}, '
                                'and ROS domains end at 232)')


def _pick_domain_id() -> int:
    """A non-zero domain per run (and per xdist worker) so parallel runs never meet."""
    worker = os.environ.get('PYTEST_XDIST_WORKER', 'gw0')
    return random.Random(f'{os.getpid()}-{worker}').choice(TEST_DOMAINS)


@pytest.fixture(scope='session')
def ros_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for ROS processes: own domain, loopback-only Fast DDS, private log dir."""
    domain = os.environ.get('TWIN_TEST_DOMAIN_ID') or str(_pick_domain_id())
    overrides = {
        'ROS_DOMAIN_ID': domain,
        'RMW_IMPLEMENTATION': 'rmw_fastrtps_cpp',
        'FASTDDS_DEFAULT_PROFILES_FILE': str(CONFIG_DIR / 'fastdds_loopback.xml'),
        'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST',
        'ROS_LOG_DIR': str(tmp_path_factory.mktemp('ros_log')),
        'TWIN_DEAD_LETTERS': str(tmp_path_factory.mktemp('dead_letters')),
        'PYTHONUNBUFFERED': '1',
    }
    os.environ.update(overrides)  # for the in-process probe too
    return dict(os.environ)


@pytest.fixture
def start_process(ros_env: dict[str, str], tmp_path: Path) -> Iterator:
    """Start commands as processes on the test domain; all are stopped at teardown."""
    started: list[NodeProcess] = []
    stale_before = stale_fastdds_segments()

    def start(*command: str, name: str | None = None) -> NodeProcess:
        log = tmp_path / f'{name or Path(command[0]).name}-{len(started)}.log'
        process = NodeProcess(command, ros_env, log)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
    leaked = stale_fastdds_segments() - stale_before
    assert not leaked, f'Fast DDS shared memory left behind: {sorted(leaked)}'


@pytest.fixture
def probe(ros_env: dict[str, str]) -> Iterator[TopicProbe]:
    """An in-process node on the test domain that records topics."""
    topic_probe = TopicProbe(int(ros_env['ROS_DOMAIN_ID']))
    yield topic_probe
    topic_probe.close()


@pytest.fixture
def s3_server(tmp_path: Path) -> Iterator[S3Server]:
    """A running ``weed mini`` on loopback with an empty bucket ``twin-test``; stopped at teardown."""
    server = S3Server(tmp_path / 's3')
    server.start()
    try:
        server.client().create_bucket(Bucket='twin-test')
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_node(ros_env: dict[str, str]) -> Iterator:
    """Create in-process nodes named ``typed`` with parameter overrides; destroyed at teardown."""
    context = rclpy.Context()
    rclpy.init(context=context)
    nodes: list[Node] = []

    def make(*overrides: Parameter) -> Node:
        nodes.append(rclpy.create_node('typed', context=context, parameter_overrides=list(overrides)))
        return nodes[-1]
    yield make
    for node in nodes:
        node.destroy_node()
    context.try_shutdown()
