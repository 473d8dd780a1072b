"""The twin run over an input bag (drivers' outputs and ground truth, no twin outputs).

The node table's analysis nodes (:data:`REPLAYED`, each started as ``twin_launch`` starts it:
``config/graph.yaml``'s executable, node name and parameter files) run on the bag's time
(``use_sim_time``); ``twin_play --clock`` plays them the bag's topics that the synchronizer reads
and ``twin_record``, on the same time, records what they publish. Every process is stopped at the
end, also on an error or Ctrl-C. No rclpy here: whether the graph is up is asked of a process
(``python -m twin_ros.graph``).
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from twin_bag.reading import read_topics
from twin_core.fastdds_shm import removal_failures_message, remove_stale_fastdds_segments
from twin_core.graph import NodeEntry, read_node_table
from twin_core.paths import resolve_executable
from twin_report.series import ANOMALIES, DIAGNOSTICS, PREDICTION, SCHEDULE, TOPICS, TWIN_JOINTS, TWIN_STATE

# The node table's nodes that turn the drivers' topics into the report's (series.TOPICS).
REPLAYED = ('twin_sync', 'twin_state', 'anomaly_detector', 'maintenance_planner', 'predictor')
SYNCHRONIZER, PLANNER = 'twin_sync', 'maintenance_planner'
OUTPUTS: dict[str, str] = {t: TOPICS[t] for t in (TWIN_JOINTS, TWIN_STATE, PREDICTION, ANOMALIES, SCHEDULE,
                                                   DIAGNOSTICS)}
DESIRED = '/plan/desired_joint_states'  # played too when the bag has it: the twin state reads the plan
LATCHED = (SCHEDULE,)
RECORDER_NODE = 'twin_recorder'
# A health window that closes at least twice within the bag: two pick-and-place cycles when the
# shipped one is longer than a third of the bag.
SHORT_WINDOW_S = 4.0
RATE = 1.0  # at 2.0 the nodes drop frames on a 2-core machine
PLAYER_DELAY_S = 0.5
SETTLE_S = 1.0  # after the bag: the last frames and events in flight
READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 15.0
PRIVATE_DOMAINS = (102, 232)  # outside the tests' 1..101 and scripts/env.sh's default 37


@dataclass(frozen=True)
class Replay:
    """What to start for one replay: node commands by node name, the player's and recorder's."""

    bag: Path
    output: Path
    duration: float  # s of bag
    nodes: dict[str, list[str]]
    played: tuple[str, ...]
    recorded: dict[str, str]
    window: float  # s, the maintenance planner's health window

    @property
    def player(self) -> list[str]:
        return ['twin_play', str(self.bag), '--clock', '--rate', f'{RATE:g}', '--delay', f'{PLAYER_DELAY_S:g}',
                '--topics', *self.played]

    @property
    def recorder(self) -> list[str]:
        specs = [f'{topic}:{msgtype}' + (':latched' if topic in LATCHED else '')
                 for topic, msgtype in self.recorded.items()]
        return ['twin_record', '--out', str(self.output), '--topics', *specs,
                '--ros-args', '-p', 'use_sim_time:=true']

    @property
    def graph_watch(self) -> list[str]:
        """The process that exits 0 once the graph is up: the played topics read, the recorded
        ones recorded and published.
        """
        subscribed = [f'{topic}=' for topic in self.played] + [f'{topic}={RECORDER_NODE}' for topic in self.recorded]
        return [sys.executable, '-m', 'twin_ros.graph', '--subscribed', *subscribed,
                '--published', *self.recorded, '--timeout', f'{READY_TIMEOUT_S:g}']


def plan(bag: Path, output: Path, config_dir: Path, scratch: Path,
         recorded: Mapping[str, str] = OUTPUTS) -> Replay:
    """The replay of ``bag`` into ``output`` (a bag directory to create); ``ValueError`` if the
    bag is unreadable or holds none of the synchronizer's topics, ``ConfigError`` (a ValueError)
    for a bad node table.
    """
    contents = read_topics(bag, {})
    entries = replayed_entries(config_dir)
    played = device_topics(bag, contents.counts, entries[SYNCHRONIZER], config_dir)
    duration = contents.end - contents.start
    window = float(entries[PLANNER].merged_parameters(config_dir)['window'])
    if 3.0 * window > duration:
        window = min(window, SHORT_WINDOW_S)
    nodes = {name: [entry.executable, *entry.ros_arguments(config_dir, scratch), '-p', 'use_sim_time:=true',
                    *(('-p', f'window:={window!r}') if name == PLANNER else ())]
             for name, entry in ((n, entries[n]) for n in REPLAYED)}
    return Replay(bag, output, duration, nodes, played, dict(recorded), window)


def replayed_entries(config_dir: Path) -> dict[str, NodeEntry]:
    """The node table's entries of :data:`REPLAYED` (the un-namespaced ones), by node name."""
    entries = {e.name: e for e in read_node_table(config_dir / 'graph.yaml')[0]
               if e.name in REPLAYED and not e.namespace}
    missing = [name for name in REPLAYED if name not in entries]
    if missing:
        raise ValueError(f'{config_dir / "graph.yaml"}: no node named {", ".join(missing)}')
    return entries


def device_topics(bag: Path, counts: Mapping[str, int], synchronizer: NodeEntry, config_dir: Path) -> tuple[str, ...]:
    """The bag's topics (``counts``: messages per topic) that the twin reads from the drivers: the
    synchronizer's inputs and the plan's desired joint states; ``ValueError`` if it holds no input.
    """
    inputs = [f'/{topic.lstrip("/")}' for topic in synchronizer.merged_parameters(config_dir)['topics']]
    played = tuple(topic for topic in inputs if counts.get(topic))
    if not played:
        raise ValueError(f'{bag} holds none of the synchronizer\'s topics {inputs}')
    return played + ((DESIRED,) if counts.get(DESIRED) and DESIRED not in played else ())


def environment(base: Mapping[str, str], config_dir: Path, domain: int | None = None) -> dict[str, str]:
    """``base`` for the replay's processes: ROS_DOMAIN_ID ``domain`` (default: a random private
    one), Fast DDS on loopback unless ``base`` names a profile, unbuffered output.
    """
    env = dict(base)
    env['ROS_DOMAIN_ID'] = str(random.randint(*PRIVATE_DOMAINS) if domain is None else domain)
    env.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    env.setdefault('FASTDDS_DEFAULT_PROFILES_FILE', str(config_dir / 'fastdds_loopback.xml'))
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    env['PYTHONUNBUFFERED'] = '1'
    return env


class Processes:
    """Processes started in sessions of their own, each writing to ``<logs>/<name>.log``; what
    goes wrong at their stop is told through ``say``.
    """

    def __init__(self, env: Mapping[str, str], logs: Path, say: Callable[[str], None] = lambda _: None) -> None:
        self._env, self._logs, self._say = dict(env), logs, say
        self.started: dict[str, tuple[subprocess.Popen[bytes], IO[bytes]]] = {}

    def start(self, name: str, command: Sequence[str]) -> subprocess.Popen[bytes]:
        """Run ``command`` (its program found like ``ros2 run`` would) as ``name``."""
        self._logs.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path(name), 'wb')
        process = subprocess.Popen([resolve_executable(command[0]), *command[1:]], env=self._env, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.started[name] = (process, log)
        return process

    def log_path(self, name: str) -> Path:
        return self._logs / f'{name}.log'

    def tail(self, name: str, lines: int = 1) -> str:
        """The last ``lines`` lines ``name`` printed."""
        text = self.log_path(name).read_text(errors='replace').strip().splitlines()
        return '\n'.join(text[-lines:])

    def check(self, *names: str) -> None:
        """``RuntimeError`` naming the first of ``names`` (default: all) that has exited, with its
        last output.
        """
        for name in names or list(self.started):
            process = self.started[name][0]
            if process.poll() is not None:
                raise RuntimeError(f'{name} exited with code {process.returncode} during the replay: '
                                   f'{self.tail(name)}')

    def stop(self, *names: str, grace: float = STOP_GRACE_S) -> list[str]:
        """SIGINT the named processes (default: all) together, SIGKILL those still running after
        ``grace`` s; close their logs. Returns the names killed; the Fast DDS shared memory they
        could not remove is removed.
        """
        chosen = [(n, *self.started[n]) for n in names or list(self.started)]
        for _, process, _ in chosen:
            _signal(process, signal.SIGINT)
        deadline = time.monotonic() + grace
        killed = []
        for name, process, log in chosen:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.0))
            except subprocess.TimeoutExpired:
                _signal(process, signal.SIGKILL)
                process.wait()
                killed.append(name)
            log.close()
        if killed:
            _, failures = remove_stale_fastdds_segments()
            if failures:
                self._say(removal_failures_message(failures))
        return killed


def finish_recording(processes: Processes, output: Path, say: Callable[[str], None],
                     grace: float = STOP_GRACE_S) -> None:
    """Stop the recorder; ``RuntimeError`` unless it exits cleanly. One that wrote its bag (the
    bag's metadata.yaml) but had to be killed at exit is only reported: the bag is complete.
    """
    processes.stop(RECORDER_NODE, grace=grace)
    code = processes.started[RECORDER_NODE][0].returncode
    if code == -signal.SIGKILL and (output / 'metadata.yaml').is_file():
        say(f'{RECORDER_NODE} finished the bag but did not exit within {grace:g} s; killed '
            f'(where it stopped: {processes.log_path(RECORDER_NODE)})')
    elif code != 0:
        raise RuntimeError(f'{RECORDER_NODE} exited with code {code}: {processes.tail(RECORDER_NODE)}')


def _signal(process: subprocess.Popen[bytes], signum: int) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            pass


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt meanwhile, so that it stops the replay's processes too."""
    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(replay: Replay, env: Mapping[str, str], logs: Path, say: Callable[[str], None] = lambda _: None) -> None:
    """Start the nodes and the recorder, wait until the graph shows them, play the bag on its
    time, let the last outputs arrive, finish the bag; every process is stopped on return, on an
    error and on Ctrl-C or SIGTERM. ``RuntimeError`` if a process fails.
    """
    processes = Processes(env, logs, say)
    with _terminate_as_interrupt():
        try:
            for name, command in replay.nodes.items():
                processes.start(name, command)
            processes.start(RECORDER_NODE, replay.recorder)
            say(f'started {", ".join(processes.started)}; their logs in {logs}')
            watch = processes.start('graph_watch', replay.graph_watch)
            while watch.poll() is None:
                processes.check(*replay.nodes, RECORDER_NODE)
                time.sleep(0.1)
            if watch.returncode != 0:
                raise RuntimeError(f'the replay\'s nodes did not come up within {READY_TIMEOUT_S:g} s')
            say(f'playing {len(replay.played)} topics of {replay.bag} ({replay.duration:.1f} s at {RATE:g}x)')
            player = processes.start('twin_play', replay.player)
            try:
                code = player.wait(timeout=PLAYER_DELAY_S + replay.duration / RATE + 30.0)
            except subprocess.TimeoutExpired:
                raise RuntimeError(f'twin_play did not finish {replay.bag} in time') from None
            if code != 0:
                raise RuntimeError(f'twin_play exited with code {code}: {processes.tail("twin_play")}')
            time.sleep(SETTLE_S)
            processes.check(*replay.nodes, RECORDER_NODE)
            killed = processes.stop(*replay.nodes)  # before the recorder: what they publish last is recorded
            if killed:
                say(f'{", ".join(killed)} did not exit within {STOP_GRACE_S:g} s of SIGINT; killed '
                    f'(where each stopped: its log in {logs})')
            finish_recording(processes, replay.output, say)
        finally:
            processes.stop()
