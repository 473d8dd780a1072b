"""Test harness: node processes on an isolated DDS domain and an in-process topic probe."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import boto3
import rclpy
import serial
import yaml
from botocore.config import Config
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.qos import QoSProfile
from sandbox import free_port, isolated_config  # noqa: F401 (fixtures for tests)

from twin_bringup.launcher import clean_stale_shared_memory
from twin_bringup.lifetime import parent_death_signal
from twin_core.fastdds_shm import stale_fastdds_segments  # noqa: F401 (fixtures' leak check)
from twin_core.paths import resolve_executable

REPO = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO / 'config'
TEST_DOMAINS = range(1, 102)  # a test run's own ROS domain (TWIN_TEST_DOMAIN_ID or a random one)
REPLAY_DOMAIN_OFFSET = 120  # the report tests' replay: test domain + 120, within Fast DDS's 0..232


def wait_for(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    """Poll ``condition`` every 10 ms until it holds or ``timeout`` s pass; its final value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def statuses(arrays: Sequence[Any], prefix: str) -> dict[str, Any]:
    """The last DiagnosticStatus of each name starting with ``prefix`` in ``arrays``."""
    return {s.name: s for array in arrays for s in array.status if s.name.startswith(prefix)}


def read_serial(link: Path, seconds: float) -> bytes:
    """Read everything a device sends during ``seconds`` (in_waiting-sized reads keep up at 1 kHz)."""
    chunks = []
    with serial.Serial(str(link), timeout=0.05) as port:
        port.reset_input_buffer()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            chunks.append(port.read(max(1, port.in_waiting)))
    return b''.join(chunks)


def single_node_config(directory: Path, entry: dict) -> Path:
    """A copy of config/ whose node table holds only ``entry``."""
    config = directory / 'config'
    shutil.copytree(CONFIG_DIR, config)
    (config / 'graph.yaml').write_text(yaml.safe_dump({'nodes': [entry]}))
    return config


def dies_with_test_run() -> Callable[[], None] | None:
    """SIGTERM to a started process when the test run dies, even by SIGKILL (no teardown runs then).

    The kernel sends it when the forking thread ends, so only processes started from the main thread get it.
    """
    return parent_death_signal() if threading.current_thread() is threading.main_thread() else None


class NodeProcess:
    """A node (or launcher) process whose output goes to a log file; stopped like Ctrl-C."""

    def __init__(self, command: Sequence[str], env: dict[str, str], log_path: Path) -> None:
        program, *arguments = command
        self.command = [program if os.sep in program else resolve_executable(program), *arguments]
        self.log_path = log_path
        self._log = open(log_path, 'w')
        self.process = subprocess.Popen(self.command, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True, preexec_fn=dies_with_test_run())

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

    def arrivals(self, topic: str) -> list[float]:
        """Monotonic arrival times of the messages recorded on ``topic``."""
        with self._lock:
            return [stamp for stamp, _ in self._messages[topic]]

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


class S3Server:
    """SeaweedFS ``weed mini`` on 127.0.0.1 (free ports, telemetry off) with one identity.

    Its data lives in ``directory`` and survives :meth:`stop` / :meth:`start`.
    """

    ACCESS_KEY = 'twin-test-key'
    SECRET_KEY = 'twin-test-secret'
    REGION = 'us-east-1'
    PORTS = ('master.port', 'master.port.grpc', 'volume.port', 'volume.port.grpc',
             'filer.port', 'filer.port.grpc', 's3.port', 's3.port.grpc', 'admin.port',
             'admin.port.grpc')

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        (directory / 'data').mkdir(parents=True, exist_ok=True)
        (directory / 's3.json').write_text(json.dumps({'identities': [{
            'name': 'twin', 'actions': ['Admin', 'Read', 'Write', 'List', 'Tagging'],
            'credentials': [{'accessKey': self.ACCESS_KEY, 'secretKey': self.SECRET_KEY}]}]}))
        self._ports = {name: free_port() for name in self.PORTS}
        self.endpoint = f'http://127.0.0.1:{self._ports["s3.port"]}'
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until it answers signed S3 requests."""
        command = [resolve_executable('weed'), 'mini',
                   f'-dir={self.directory / "data"}', '-ip=127.0.0.1', '-ip.bind=127.0.0.1',
                   '-master.telemetry=false', '-webdav=false', '-admin.ui=false',
                   '-s3.port.iceberg=0', '-s3.port.lance=0',
                   f'-s3.config={self.directory / "s3.json"}',
                   f'-s3.localSocket={self.directory / "s3.sock"}',
                   f'-filer.localSocket={self.directory / "filer.sock"}',
                   *(f'-{name}={port}' for name, port in self._ports.items())]
        with open(self.directory / 'weed.log', 'a') as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True,
                                            preexec_fn=dies_with_test_run())
        client = self.client()
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.list_buckets()
                return
            except Exception:  # not up yet: connection refused or 503 while starting
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f'weed mini did not start; see {self.directory}/weed.log') from None
                time.sleep(0.1)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (SIGKILL after ``timeout`` s); a no-op if it is not running."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        for port in self._ports.values():  # gRPC sockets it does not always remove
            for socket_file in Path('/tmp').glob(f'seaweedfs-*-grpc-{port}.sock'):
                socket_file.unlink(missing_ok=True)

    def client(self, secret_key: str = SECRET_KEY) -> Any:
        """A path-style boto3 client for this server (one attempt per request)."""
        return boto3.client('s3', endpoint_url=self.endpoint, region_name=self.REGION,
                            aws_access_key_id=self.ACCESS_KEY, aws_secret_access_key=secret_key,
                            config=Config(s3={'addressing_style': 'path'},
                                          retries={'total_max_attempts': 1}))

    def objects(self, bucket: str) -> dict[str, bytes]:
        """Every object of ``bucket``: key to content."""
        client = self.client()
        keys = [item['Key'] for page in client.get_paginator('list_objects_v2').paginate(
            Bucket=bucket) for item in page.get('Contents', [])]
        return {key: client.get_object(Bucket=bucket, Key=key)['Body'].read() for key in keys}
