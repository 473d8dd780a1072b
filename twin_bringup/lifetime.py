"""Process lifetime of ``twin_launch``: nodes die with it, and a new launch finds no leftovers.

* Every node is started with the parent-death signal SIGTERM (``prctl(PR_SET_PDEATHSIG)``): when
  the launcher dies, even by SIGKILL, each node shuts down as on Ctrl-C and removes its own
  Fast DDS shared memory (the simulator its device links).
* A watchdog process, told each node's pid over a pipe, learns of the launcher's death from the
  pipe's end of file. It SIGKILLs a node still running after the grace period (one that ignores
  or hangs on SIGTERM) and removes what killed nodes leave: shared memory, device links, the
  launcher's scratch files. After a normal stop the launcher tells it so and it exits.
* Before anything starts: one launcher per ROS_DOMAIN_ID on the machine (an flock, released by
  the kernel when its holders die), the simulator's ports free (else the holding process is
  named) and no device link left pointing to a vanished pty.
"""
from __future__ import annotations

import argparse
import ctypes
import errno
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from twin_bringup.node_table import NodeEntry, validate_parameters
from twin_core.fastdds_shm import remove_stale_fastdds_segments

if TYPE_CHECKING:
    import psutil

LOCK_DIR = Path('/tmp')  # machine-wide, like the DDS domains the lock stands for
_PR_SET_PDEATHSIG = 1


class LaunchRefused(Exception):
    """A launch must not start; the message is one line for the user."""


# --------------------------------------------------------------------------- parent-death signal

def parent_death_signal(signum: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the child receive ``signum`` when the launcher dies (Linux only).

    The kernel sends it when the *thread* that forked the child ends: start children from the
    main thread. A child whose launcher died before the signal was armed exits at once.
    """
    if not sys.platform.startswith('linux'):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before fork, not in the child
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    parent = os.getpid()

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)
    return arm


# --------------------------------------------------------------------------- one launcher per domain

class DomainLock:
    """An flock on ``/tmp/twin_launch.domain-<id>.lock``: one ``twin_launch`` per ROS_DOMAIN_ID.

    The file records the holder (``<pid> <role>``). The watchdog shares the lock, so a domain is
    free again only when a killed launcher's nodes are gone.
    """

    def __init__(self, domain: str, directory: Path = LOCK_DIR) -> None:
        self.domain = domain.strip() or '0'
        self.path = directory / f'twin_launch.domain-{self.domain}.lock'
        self.descriptor = -1

    def acquire(self) -> None:
        """Take the lock for this process, or raise :class:`LaunchRefused` naming the holder."""
        try:
            self.descriptor = _open_shared(self.path)
        except OSError as error:
            raise LaunchRefused(f'cannot open the lock file {self.path}: {error.strerror}') from None
        try:
            fcntl.flock(self.descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid, role = self._holder()
            self.close()
            if role == 'watchdog':
                raise LaunchRefused(
                    f'the watchdog (pid {pid}) of a killed twin_launch is still stopping its nodes on '
                    f'ROS_DOMAIN_ID {self.domain}; try again in a few seconds') from None
            raise LaunchRefused(f'another twin_launch (pid {pid}) is running on ROS_DOMAIN_ID '
                                f'{self.domain}; stop it first or use another ROS_DOMAIN_ID') from None
        record_holder(self.descriptor, 'launcher')

    def close(self) -> None:
        """Release the lock (its other holders keep it)."""
        if self.descriptor >= 0:
            os.close(self.descriptor)
            self.descriptor = -1

    def _holder(self) -> tuple[str, str]:
        deadline = time.monotonic() + 1.0
        while True:  # the holder writes its record just after locking
            pid, _, role = os.pread(self.descriptor, 200, 0).decode(errors='replace').strip().partition(' ')
            if pid or time.monotonic() > deadline:
                return pid or 'unknown', role
            time.sleep(0.05)


def record_holder(descriptor: int, role: str) -> None:
    """Write ``<pid> <role>`` into a lock file this process holds."""
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, f'{os.getpid()} {role}\n'.encode(), 0)


def _open_shared(path: Path) -> int:
    """Open (or create, readable and writable by all users) a lock file in a sticky directory."""
    while True:
        try:
            return os.open(path, os.O_RDWR)
        except FileNotFoundError:
            pass
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.fchmod(descriptor, 0o666)
        return descriptor


# --------------------------------------------------------------------------- ports and device links

@dataclass(frozen=True)
class Endpoint:
    """A port a node of the graph binds."""

    protocol: str  # 'tcp' or 'udp'
    host: str
    port: int
    use: str  # for messages: which node and setting

    def in_use(self) -> bool:
        """True if another socket holds the port (binding it as the node would fails)."""
        kind = socket.SOCK_STREAM if self.protocol == 'tcp' else socket.SOCK_DGRAM
        with socket.socket(socket.AF_INET, kind) as probe:
            if self.protocol == 'tcp':  # as servers do: a connection in TIME_WAIT does not count
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((self.host, self.port))
            except OSError as error:
                return error.errno == errno.EADDRINUSE
        return False


@dataclass(frozen=True)
class SimulatorResources:
    """What the simulated cells of a launch bind and create: ports and device links."""

    endpoints: tuple[Endpoint, ...]
    links: tuple[Path, ...]


def simulator_resources(entries: Iterable[object], config_dir: Path) -> SimulatorResources:
    """The ports and device links of the ``sim`` entries, from their parameters (fleet overrides included).

    The lidar port is the one the simulator sends to and the lidar driver binds.
    """
    endpoints: list[Endpoint] = []
    links: list[Path] = []
    for entry in entries:
        if not isinstance(entry, NodeEntry) or entry.role != 'sim':
            continue
        channels = getattr(validate_parameters(entry, config_dir), 'channels', None)
        if channels is None:
            continue
        name = entry.qualified_name.lstrip('/')
        if channels.lidar.enabled:
            endpoints.append(Endpoint('udp', channels.lidar.host, channels.lidar.port,
                                      f'{name} channels.lidar, the lidar driver'))
        if channels.plan.enabled:
            endpoints.append(Endpoint('udp', channels.plan.host, channels.plan.port,
                                      f'{name} channels.plan, the plan driver'))
        if channels.command.enabled and channels.command.port:
            endpoints.append(Endpoint('udp', channels.command.host, channels.command.port,
                                      f'{name} channels.command'))
        if channels.plc.enabled:
            url = urlsplit(channels.plc.endpoint)
            endpoints.append(Endpoint('tcp', url.hostname or '127.0.0.1', url.port or 4840,
                                      f'{name} channels.plc'))
        if channels.camera.enabled and channels.camera.port:
            endpoints.append(Endpoint('tcp', channels.camera.host, channels.camera.port,
                                      f'{name} channels.camera'))
        links += [Path(c.link) for c in (channels.imu, channels.encoders) if c.enabled]
    return SimulatorResources(tuple(endpoints), tuple(links))


def check_ports_free(endpoints: Iterable[Endpoint]) -> None:
    """Raise :class:`LaunchRefused` naming every port in use and the process holding it."""
    held = [f'{e.protocol.upper()} port {e.port} on {e.host} ({e.use}) is in use by {port_holder(e)}'
            for e in endpoints if e.in_use()]
    if held:
        raise LaunchRefused('; '.join(held) + '; stop it or change the port in the configuration')


def port_holder(endpoint: Endpoint) -> str:
    """The process(es) with a socket on the endpoint's port, e.g. ``pid 42 (python3 workcell_sim ...)``."""
    import psutil  # a dependency of the launcher; imported here so the shm helpers need nothing

    try:
        connections = psutil.net_connections(kind=endpoint.protocol)
    except psutil.AccessDenied:
        return 'a process this user cannot see'
    pids = sorted({c.pid for c in connections if c.laddr and c.laddr.port == endpoint.port},
                  key=lambda pid: (pid is None, pid or 0))
    names = []
    for pid in pids:
        if pid is None:
            names.append("another user's process")
            continue
        try:
            command = psutil.Process(pid).cmdline()
        except psutil.Error:
            command = []
        shown = ' '.join(Path(a).name if i < 2 else a for i, a in enumerate(command))
        names.append(f'pid {pid} ({shown[:100]})' if shown else f'pid {pid}')
    return ', '.join(names) or 'an unknown process'


def remove_stale_links(links: Iterable[Path]) -> list[str]:
    """Remove device links whose pty no longer exists; one message per link removed."""
    messages = []
    for link in links:
        if link.is_symlink() and not link.exists():
            target = os.readlink(link)
            try:
                link.unlink()
                messages.append(f'removed stale device link {link} (its device {target} is gone)')
            except OSError as error:
                messages.append(f'cannot remove stale device link {link}: {error.strerror}')
    return messages


# --------------------------------------------------------------------------- watchdog

class Watchdog:
    """The launcher's end of the watchdog process (see the module documentation)."""

    def __init__(self, lock: DomainLock, links: Sequence[Path], scratch: Path, grace: float) -> None:
        command = [sys.executable, '-m', 'twin_bringup.lifetime', '--launcher', str(os.getpid()),
                   '--grace', str(grace), '--lock-fd', str(lock.descriptor), '--scratch', str(scratch),
                   *(f'--link={link}' for link in links)]
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, text=True, bufsize=1,
                                         start_new_session=True, pass_fds=(lock.descriptor,))
        self._lost = False

    def watch(self, pid: int, name: str) -> None:
        """Tell the watchdog about a node process just started."""
        self._send(f'{pid} {name}\n')

    def close(self) -> None:
        """After a normal stop: the watchdog exits without doing anything."""
        self._send('done\n')
        try:
            assert self._process.stdin is not None
            self._process.stdin.close()
        except OSError:
            pass
        try:
            self._process.wait(timeout=10.0)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def _send(self, line: str) -> None:
        try:
            assert self._process.stdin is not None
            self._process.stdin.write(line)
        except OSError:
            if not self._lost:
                self._lost = True
                print(f'twin_launch: the watchdog exited (code {self._process.poll()}); nodes still stop '
                      'with the launcher but none would be killed if it died', file=sys.stderr, flush=True)


def watchdog_main(argv: Sequence[str] | None = None) -> int:
    """The watchdog process: wait for the launcher's end; if it was killed, finish its shutdown."""
    import psutil

    parser = argparse.ArgumentParser(prog='twin_launch watchdog')
    parser.add_argument('--launcher', required=True)
    parser.add_argument('--grace', type=float, required=True)
    parser.add_argument('--lock-fd', type=int, required=True)
    parser.add_argument('--scratch', type=Path, required=True)
    parser.add_argument('--link', type=Path, action='append', default=[])
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    nodes: dict[str, psutil.Process] = {}  # by node name: a restart replaces the process
    for line in sys.stdin:
        if line.strip() == 'done':
            return 0
        pid, _, name = line.strip().partition(' ')
        try:
            nodes[name] = psutil.Process(int(pid))
        except (ValueError, psutil.NoSuchProcess):
            pass
    # End of file without "done": the launcher died, and the kernel sent its nodes SIGTERM.
    record_holder(args.lock_fd, 'watchdog')
    running = {name: p for name, p in nodes.items() if _alive(p)}
    deadline = time.monotonic() + args.grace
    while running and time.monotonic() < deadline:
        time.sleep(0.1)
        running = {name: p for name, p in running.items() if _alive(p)}
    for process in running.values():
        if _alive(process):  # still the node (psutil checks the start time): kill its group
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    psutil.wait_procs(list(running.values()), timeout=3.0)
    removed, failures = remove_stale_fastdds_segments(min_age=0.0)
    messages = remove_stale_links(args.link)
    shutil.rmtree(args.scratch, ignore_errors=True)
    report = [f'twin_launch (pid {args.launcher}) died; {len(nodes) - len(running)} of its {len(nodes)} '
              'nodes exited on their own (parent-death SIGTERM)']
    if running:
        report.append(f'killed after {args.grace:g} s: '
                      + ', '.join(f'{name} (pid {p.pid})' for name, p in running.items()))
    if removed:
        report.append(f'removed {len(removed)} stale Fast DDS shared-memory segments')
    print('twin_launch watchdog: ' + '; '.join(report + messages + failures), file=sys.stderr, flush=True)
    return 0


def _alive(process: psutil.Process) -> bool:
    """True while ``process`` runs; a zombie waiting for its reaper does not count."""
    import psutil

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


if __name__ == '__main__':
    sys.exit(watchdog_main())
