"""Test harness: node processes on an isolated DDS domain and an in-process topic probe."""
from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Sequence

import rclpy
import serial
import yaml
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.qos import QoSProfile

from twin_bringup.launcher import clean_stale_shared_memory

REPO = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO / 'config'


def stale_fastdds_segments() -> set[str]:
    """Fast DDS segments in /dev/shm whose lock no living process holds (left behind)."""
    stale = set()
    for lock in Path('/dev/shm').glob('fastdds_*_el'):
        try:
            descriptor = os.open(lock, os.O_RDWR)
        except FileNotFoundError:  # removed by its owner meanwhile
            continue
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            stale.add(lock.name.removesuffix('_el'))
        except BlockingIOError:
            pass  # held by a running participant
        finally:
            os.close(descriptor)
    return stale


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A currently free loopback port (TCP by default, ``socket.SOCK_DGRAM`` for UDP)."""
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def read_serial(link: Path, seconds: float) -> bytes:
    """Read everything a device sends during ``seconds`` (in_waiting-sized reads keep up at 1 kHz)."""
    chunks = []
    with serial.Serial(str(link), timeout=0.05) as port:
        port.reset_input_buffer()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            chunks.append(port.read(max(1, port.in_waiting)))
    return b''.join(chunks)


def isolated_config(directory: Path) -> Path:
    """A copy of config/ whose simulator and drivers use private device links and free ports."""
    config = directory / 'config'
    shutil.copytree(CONFIG_DIR, config)
    imu, encoders = str(directory / 'dev' / 'imu'), str(directory / 'dev' / 'encoders')
    lidar_port, plc = free_port(socket.SOCK_DGRAM), f'opc.tcp://127.0.0.1:{free_port()}/twin/plc'

    def edit(filename: str, node: str, change: Callable[[dict], None]) -> None:
        document = yaml.safe_load((config / filename).read_text())
        change(document[node]['ros__parameters'])
        (config / filename).write_text(yaml.safe_dump(document))

    def simulator(params: dict) -> None:
        channels = params['channels']
        channels['imu']['link'], channels['encoders']['link'] = imu, encoders
        channels['lidar']['port'] = lidar_port
        channels['command']['port'] = free_port(socket.SOCK_DGRAM)
        channels['plc']['endpoint'] = plc
        params['truth_dir'] = str(directory / 'truth')

    edit('workcell.yaml', 'workcell_sim', simulator)
    edit('imu_driver.yaml', 'imu_driver', lambda p: p['serial'].update(port=imu))
    edit('encoder_driver.yaml', 'encoder_driver', lambda p: p['serial'].update(port=encoders))
    edit('lidar_driver.yaml', 'lidar_driver', lambda p: p['udp'].update(port=lidar_port))
    edit('plc_driver.yaml', 'plc_driver', lambda p: p['opcua'].update(endpoint=plc))
    return config


def single_node_config(directory: Path, entry: dict) -> Path:
    """A copy of config/ whose node table holds only ``entry``."""
    config = directory / 'config'
    shutil.copytree(CONFIG_DIR, config)
    (config / 'graph.yaml').write_text(yaml.safe_dump({'nodes': [entry]}))
    return config


class NodeProcess:
    """A node (or launcher) process whose output goes to a log file; stopped like Ctrl-C."""

    def __init__(self, command: Sequence[str], env: dict[str, str], log_path: Path) -> None:
        self.command = list(command)
        self.log_path = log_path
        self._log = open(log_path, 'w')
        self.process = subprocess.Popen(self.command, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)

    def output(self) -> str:
        """Everything the process printed so far."""
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit by itself; return its exit code."""
        return self.process.wait(timeout=timeout)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGINT, then SIGKILL if it will not exit in ``timeout`` s; return the exit code."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
                clean_stale_shared_memory()
        self._log.close()
        return self.process.returncode


class TopicProbe:
    """An rclpy node spinning in a thread that records messages and answers waits."""

    def __init__(self, domain_id: int) -> None:
        self._context = rclpy.Context()
        rclpy.init(context=self._context, domain_id=domain_id)
        self.node = rclpy.create_node('test_probe', context=self._context)
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self.node)
        self._lock = threading.Lock()
        self._messages: dict[str, list[tuple[float, Any]]] = defaultdict(list)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except (ExternalShutdownException, rclpy.executors.ShutdownException):
            pass

    def subscribe(self, topic: str, msg_type: type, qos: QoSProfile | int = 100) -> None:
        """Start recording ``topic`` (arrival wall time, message)."""
        def record(message: Any) -> None:
            with self._lock:
                self._messages[topic].append((time.monotonic(), message))
        self.node.create_subscription(msg_type, topic, record, qos)

    def messages(self, topic: str) -> list[Any]:
        """Messages recorded on ``topic`` so far."""
        with self._lock:
            return [m for _, m in self._messages[topic]]

    def wait_for(self, topic: str, predicate: Callable[[list[Any]], bool],
                 timeout: float) -> list[Any]:
        """Wait until ``predicate(messages)`` holds; raise AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            received = self.messages(topic)
            if predicate(received):
                return received
            time.sleep(0.05)
        raise AssertionError(f'{topic}: condition not met within {timeout} s '
                             f'({len(self.messages(topic))} messages received)')

    @staticmethod
    def sleep(seconds: float) -> None:
        """Let the spinning thread work (callbacks, service replies) for ``seconds``."""
        time.sleep(seconds)

    def close(self) -> None:
        """Shut down in the order that leaves no thread or shared memory behind."""
        self._context.try_shutdown()
        self._thread.join(timeout=5.0)
        self._executor.shutdown()
        self.node.destroy_node()
