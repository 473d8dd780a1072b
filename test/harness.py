"""Test harness: node processes on an isolated DDS domain and an in-process topic probe."""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Sequence

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.qos import QoSProfile

REPO = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO / 'config'


def fastdds_shm_files() -> set[str]:
    """Fast DDS shared-memory files currently in /dev/shm."""
    shm = Path('/dev/shm')
    return {p.name for p in shm.iterdir() if 'fastrtps' in p.name or 'fastdds' in p.name} \
        if shm.is_dir() else set()


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

    def close(self) -> None:
        """Shut down in the order that leaves no thread or shared memory behind."""
        self._context.try_shutdown()
        self._thread.join(timeout=5.0)
        self._executor.shutdown()
        self.node.destroy_node()
