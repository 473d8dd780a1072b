"""twin_launch: start the node table's processes where ``ros2 launch`` is not installed.

Each node runs as its own process with ``--ros-args``, or with the others of its ``process:``
in one ``twin_container``; output lines are prefixed with the node (or process) name; a process
that crashes is restarted with exponential backoff;
Ctrl-C / SIGTERM (or ``--duration``) stops every node in order: SIGINT, then
SIGTERM, then SIGKILL for any that will not exit. The nodes die with the launcher
even when it is killed, and a launch refuses to start beside another on the same
ROS_DOMAIN_ID or on ports in use (twin_bringup.lifetime).
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from twin_bringup.lifetime import (
    DomainLock,
    LaunchRefused,
    SimulatorResources,
    Watchdog,
    check_ports_free,
    parent_death_signal,
    remove_stale_links,
    simulator_resources,
)
from twin_bringup.node_table import load_node_table
from twin_bringup.visualization import ExternalNode, robot_namespaces, visualization_nodes
from twin_core.config import ConfigError
from twin_core.fastdds_shm import removal_failures_message, remove_stale_fastdds_segments
from twin_core.graph import Process, ProcessGroup, group_processes
from twin_core.paths import config_dir as default_config_dir
from twin_core.paths import resolve_executable
from twin_core.restart import CONFIG_ERROR_EXIT_CODE, Backoff, restart_delay

Launched = Process | ExternalNode  # what the launcher starts: twin processes and visualization helpers

SHUTDOWN_GRACE_S = 10.0


class ManagedNode:
    """One node process: started, watched, restarted, stopped."""

    def __init__(self, entry: Launched, command: list[str], env: dict[str, str],
                 output: IO[str], output_lock: threading.Lock,
                 on_start: Callable[[int, str], None] | None = None) -> None:
        self.entry = entry
        self.restarts = 0
        self._command = command
        self._env = env
        self._output = output
        self._output_lock = output_lock
        self._on_start = on_start
        self._backoff = Backoff()
        self._process: subprocess.Popen[str] | None = None
        self._started_at = 0.0
        self._restart_at: float | None = None

    def start(self) -> None:
        """Spawn the process in its own session, with a thread relaying its output.

        The process gets SIGTERM when the launcher dies. The kernel sends it when the thread that
        forked the process ends, so starts (and restarts, from :meth:`poll`) happen on the main thread.
        """
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError('nodes are started from the main thread (their parent-death signal)')
        self._process = subprocess.Popen(
            self._command, env=self._env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, text=True, bufsize=1, start_new_session=True,
            preexec_fn=parent_death_signal())
        if self._on_start is not None:
            self._on_start(self._process.pid, self.entry.qualified_name.lstrip('/'))
        self._started_at = time.monotonic()
        self._restart_at = None
        threading.Thread(target=self._relay, args=(self._process,), daemon=True).start()

    def poll(self) -> int | None:
        """Handle an exit (schedule or perform the restart); return a fatal exit code."""
        now = time.monotonic()
        if self._restart_at is not None:
            if now >= self._restart_at:
                self.restarts += 1
                self.start()
            return None
        code = self._process.poll() if self._process else None
        if code is None:
            return None
        if code < 0:
            clean_stale_shared_memory()
        delay = restart_delay(code, now - self._started_at, self._backoff)
        if delay is None:
            self._say(f'exited with a configuration error (code {code}); not restarting')
            return code
        self._say(f'exited with code {code}; restarting in {delay:.1f} s')
        self._restart_at = now + delay
        return None

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the node's process group if it is running."""
        if self._process and self._process.poll() is None:
            try:
                os.killpg(self._process.pid, signum)
            except ProcessLookupError:
                pass

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the process to end; True if it has."""
        if self._process is None:
            return True
        try:
            self._process.wait(timeout=max(timeout, 0.0))
            return True
        except subprocess.TimeoutExpired:
            return False

    def _relay(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self._say(line.rstrip('\n'))

    def _say(self, text: str) -> None:
        with self._output_lock:
            self._output.write(f'[{self.entry.qualified_name.lstrip("/")}] {text}\n')
            self._output.flush()


def clean_stale_shared_memory() -> int:
    """Remove Fast DDS shared memory left by killed processes; return the segments removed.

    Fast DDS keeps per-participant segments in /dev/shm that only a clean exit removes; like
    ``fastdds shm clean``, only those whose lock no living process holds are deleted. A file that
    cannot be removed is reported on stderr (one line).
    """
    removed, failures = remove_stale_fastdds_segments()
    if failures:
        print(f'twin_launch: {removal_failures_message(failures)}', file=sys.stderr, flush=True)
    return len(removed)


def node_environment(dds_profile: str | None) -> dict[str, str]:
    """The environment for node processes, with ``dds_profile`` as the Fast DDS profile if given."""
    env = dict(os.environ)
    env.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    if dds_profile:
        env['FASTDDS_DEFAULT_PROFILES_FILE'] = dds_profile
    env['PYTHONUNBUFFERED'] = '1'
    env['RCUTILS_COLORIZED_OUTPUT'] = '0'
    return env


def stop_all(nodes: Sequence[ManagedNode], grace: float = SHUTDOWN_GRACE_S) -> None:
    """SIGINT every node, then SIGTERM and finally SIGKILL the ones still running; then remove
    the Fast DDS shared memory any of them left (killed, or cut short in its teardown).
    """
    for signum, wait_s in ((signal.SIGINT, grace), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
        for node in nodes:
            node.signal(signum)
        deadline = time.monotonic() + wait_s
        if all(node.wait(deadline - time.monotonic()) for node in nodes):
            break
    clean_stale_shared_memory()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='twin_launch', description=__doc__.splitlines()[0])
    parser.add_argument('--sim', action=argparse.BooleanOptionalAction, default=True,
                        help='also start the simulated workcell (default: yes)')
    parser.add_argument('--drivers', action=argparse.BooleanOptionalAction, default=True,
                        help='start the device drivers (default: yes); --no-drivers where recorded '
                             'device topics stand in for them (twin_play --restamp, bench_fleet --source bags)')
    parser.add_argument('--duration', type=float, default=None,
                        help='stop everything after this many seconds')
    parser.add_argument('--config-dir', type=Path, default=None,
                        help='directory with graph.yaml and the parameter files')
    parser.add_argument('--robots', type=int, default=1,
                        help='number of twins (each with its own simulated cell when --sim); more than '
                             'one runs each in namespace robot_<i> plus the fleet node (default: 1)')
    parser.add_argument('--robot-ids', type=int, nargs='+', default=[], metavar='I',
                        help='run only these robots of a fleet (namespace robot_<i>, no fleet node): '
                             'one machine of a fleet spread over several (docs/fleet.md)')
    parser.add_argument('--dds-profile', default=None, metavar='XML',
                        help='Fast DDS profile for every node (default: the environment\'s own; '
                             'config/fastdds_loopback.xml keeps everything on this machine, '
                             'docs/network.md shows one for a cell network)')
    parser.add_argument('--robot-state-publisher', action='store_true',
                        help='publish each robot\'s URDF and TF from its twin/joint_states '
                             '(needs robot_state_publisher, and tf2_ros for a fleet)')
    parser.add_argument('--view', action='store_true',
                        help='serve the live view (Foxglove WebSocket, config/view.yaml) for Foxglove or Lichtblick')
    parser.add_argument('--rviz', action='store_true',
                        help='start RViz on the twin (needs rviz2; implies --robot-state-publisher)')
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Validate the node table, start its nodes and supervise them until told to stop."""
    args = parse_args(argv)
    config_dir = args.config_dir or default_config_dir()
    with tempfile.TemporaryDirectory(prefix='twin_launch_') as scratch:
        try:
            nodes = load_node_table(config_dir, with_sim=args.sim).select(
                args.sim, args.robots, args.robot_ids, with_view=args.view, with_drivers=args.drivers)
            processes = group_processes(nodes)
            commands = [process_command(p, config_dir, Path(scratch)) for p in processes]
            entries: list[Launched] = list(processes)
            if args.rviz or args.robot_state_publisher:
                extra = visualization_nodes(config_dir, robot_namespaces(nodes), args.rviz, Path(scratch))
                commands += [n.command(resolve_executable(n.executable, n.package), Path(scratch))
                             for n in extra]
                entries += extra
            simulator = simulator_resources(nodes, config_dir)
        except ConfigError as error:
            print(f'twin_launch: configuration error: {error}', file=sys.stderr)
            return CONFIG_ERROR_EXIT_CODE
        env = node_environment(args.dds_profile)
        try:
            lock = claim(env.get('ROS_DOMAIN_ID', '0'), simulator)
        except LaunchRefused as refusal:
            print(f'twin_launch: {refusal}', file=sys.stderr)
            return CONFIG_ERROR_EXIT_CODE
        clean_leftovers(simulator)
        watchdog = Watchdog(lock, simulator.links, Path(scratch), SHUTDOWN_GRACE_S)
        try:
            return supervise(entries, commands, env, args.duration, watchdog.watch)
        finally:
            watchdog.close()
            lock.close()


def process_command(process: Process, config_dir: Path, scratch: Path) -> list[str]:
    """The command line of a node's process or a container, its executable resolved."""
    executable, *arguments = process.command_line(config_dir, scratch)
    return [resolve_executable(executable), *arguments]


def claim(domain: str, simulator: SimulatorResources) -> DomainLock:
    """Lock the domain for this launcher and check the simulator's ports; raise LaunchRefused if taken."""
    lock = DomainLock(domain)
    try:
        lock.acquire()
        check_ports_free(simulator.endpoints)
    except LaunchRefused:
        lock.close()
        raise
    return lock


def clean_leftovers(simulator: SimulatorResources) -> None:
    """Remove what killed processes left: device links to vanished ptys, Fast DDS shared memory."""
    for message in remove_stale_links(simulator.links):
        print(f'twin_launch: {message}', flush=True)
    removed = clean_stale_shared_memory()
    if removed:
        print(f'twin_launch: removed {removed} stale Fast DDS shared-memory segments '
              '(left by killed processes)', flush=True)


def supervise(entries: Sequence[Launched], commands: Sequence[list[str]], env: dict[str, str],
              duration: float | None, on_start: Callable[[int, str], None] | None = None) -> int:
    """Run the nodes until a signal, ``duration`` or a configuration error; return the exit code.

    ``on_start(pid, name)`` is called for every process started (restarts included).
    """
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    lock = threading.Lock()
    nodes = [ManagedNode(e, c, {**env, **e.environment()} if isinstance(e, Process) else env,
                         sys.stdout, lock, on_start) for e, c in zip(entries, commands)]
    print(f'twin_launch: starting {", ".join(_label(e) for e in entries)} '
          f'(ROS_DOMAIN_ID={env.get("ROS_DOMAIN_ID", "0")})', flush=True)
    for node in nodes:
        node.start()
    deadline = None if duration is None else time.monotonic() + duration
    exit_code = 0
    while not stop.wait(0.1):
        fatal = [code for code in (node.poll() for node in nodes) if code is not None]
        if fatal:
            exit_code = fatal[0]
            break
        if deadline is not None and time.monotonic() >= deadline:
            break
    # The twin first, then the simulated cell, so that no driver sees its device vanish.
    stop_all([node for node in nodes if node.entry.role != 'sim'])
    stop_all([node for node in nodes if node.entry.role == 'sim'])
    restarts = {n.entry.qualified_name.lstrip('/'): n.restarts for n in nodes if n.restarts}
    groups = [e for e in entries if isinstance(e, ProcessGroup)]
    count = f'{len(nodes) + sum(len(g.entries) - 1 for g in groups)} nodes'
    count += f' in {len(nodes)} processes' if groups else ''
    print(f'twin_launch: stopped {count}' + (f'; restarts: {restarts}' if restarts else ''), flush=True)
    return exit_code


def _label(launched: Launched) -> str:
    """The name a process is shown by: a container with its nodes, ``drivers (imu_driver, ...)``."""
    name = launched.qualified_name.lstrip('/')
    if isinstance(launched, ProcessGroup):
        return f'{name} ({", ".join(entry.name for entry in launched.entries)})'
    return name


if __name__ == '__main__':
    sys.exit(main())
