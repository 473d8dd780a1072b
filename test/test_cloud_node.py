"""cloud_uploader over DDS against weed mini: recorded topics arrive in the bucket exactly once,
also when the node is SIGKILLed in the middle of an upload and restarted."""
from __future__ import annotations

import collections
import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rosbags.highlevel import AnyReader
from sensor_msgs.msg import JointState, Temperature

from harness import S3Server
from twin_bringup.launcher import clean_stale_shared_memory

pytestmark = pytest.mark.integration

CLOUD_UPLOADER = 'cloud_uploader'
BUCKET = 'twin-test'
TOPICS = {'/test/temperature': Temperature, '/test/joint_states': JointState}


class SlowUplink:
    """A loopback TCP relay that forwards client-to-server bytes at ``rate`` B/s."""

    def __init__(self, target_port: int, rate: float) -> None:
        self._target = target_port
        self._rate = rate
        self._listener = socket.create_server(('127.0.0.1', 0))
        self.port = self._listener.getsockname()[1]
        self.last_forward = 0.0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            server = socket.create_connection(('127.0.0.1', self._target))
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, throttle: bool) -> None:
        try:
            while data := source.recv(512):
                if throttle:
                    time.sleep(len(data) / self._rate)
                    self.last_forward = time.monotonic()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                end.close()

    def close(self) -> None:
        self._listener.close()


def parameters(path: Path, spool: Path, endpoint: str) -> Path:
    path.write_text(f"""\
cloud_uploader:
  ros__parameters:
    robot: cell_9
    topics: [{', '.join(TOPICS)}]
    types: [sensor_msgs/msg/Temperature, sensor_msgs/msg/JointState]
    qos: [reliable, reliable]
    spool: {{directory: {spool}, segment_max_s: 0.5, compression: none}}
    s3: {{bucket: {BUCKET}, prefix: run, endpoint_url: '{endpoint}', backoff_min: 0.1,
          backoff_max: 0.5}}
""")
    return path


def start_uploader(start_process, params: Path):
    return start_process(
        'env', f'AWS_ACCESS_KEY_ID={S3Server.ACCESS_KEY}',
        f'AWS_SECRET_ACCESS_KEY={S3Server.SECRET_KEY}', 'AWS_EC2_METADATA_DISABLED=true',
        CLOUD_UPLOADER, '--ros-args', '--params-file', str(params), name='cloud_uploader')


def status_values(probe, component: str) -> dict[str, str]:
    for message in reversed(probe.messages('/diagnostics')):
        for entry in message.status:
            if entry.name == f'cloud_uploader: {component}':
                return {item.key: item.value for item in entry.values}
    return {}


def publish(probe, count: int, rate_hz: float) -> None:
    """``count`` Temperature and JointState messages whose values are their index."""
    publishers = {topic: probe.node.create_publisher(cls, topic, 100)
                  for topic, cls in TOPICS.items()}
    deadline = time.monotonic() + 10.0
    while any(p.get_subscription_count() == 0 for p in publishers.values()):
        assert time.monotonic() < deadline, 'cloud_uploader did not subscribe'
        time.sleep(0.05)
    for index in range(count):
        publishers['/test/temperature'].publish(Temperature(temperature=float(index)))
        publishers['/test/joint_states'].publish(JointState(name=['j'], position=[float(index)]))
        time.sleep(1.0 / rate_hz)


def bucket_messages(server: S3Server, directory: Path) -> collections.Counter:
    """(topic, value) of every message in every object of the bucket, with multiplicity."""
    found: collections.Counter = collections.Counter()
    for key, data in server.objects(BUCKET).items():
        assert key.startswith('run/cell_9/')
        path = directory / Path(key).name
        path.write_bytes(data)
        with AnyReader([path]) as reader:
            assert {t: i.msgtype for t, i in reader.topics.items()} == {
                '/test/temperature': 'sensor_msgs/msg/Temperature',
                '/test/joint_states': 'sensor_msgs/msg/JointState'}
            assert all('float64' in i.msgdef.data for i in reader.topics.values())
            for connection, _, raw in reader.messages():
                message = reader.deserialize(raw, connection.msgtype)
                value = (message.temperature if connection.topic == '/test/temperature'
                         else message.position[0])
                found[(connection.topic, int(value))] += 1
    return found


def expected(count: int) -> collections.Counter:
    return collections.Counter((topic, index) for topic in TOPICS for index in range(count))


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f'timed out waiting for {what}'
        time.sleep(0.05)


def test_recorded_topics_arrive_in_the_bucket_exactly(
        start_process, probe, s3_server: S3Server, tmp_path: Path) -> None:
    spool = tmp_path / 'spool'
    start_uploader(start_process, parameters(tmp_path / 'p.yaml', spool, s3_server.endpoint))
    probe.subscribe('/diagnostics', DiagnosticArray)
    publish(probe, 200, 200.0)
    probe.wait_for('/diagnostics', lambda _: (
        status_values(probe, 'spool').get('messages') == '400'
        and status_values(probe, 'spool').get('pending_segments') == '0'
        and status_values(probe, 'spool').get('spool_mb') == '0'), timeout=20.0)
    upload = status_values(probe, 'upload')
    assert int(upload['uploaded_segments']) >= 2 and upload['last_error'] == ''
    assert bucket_messages(s3_server, tmp_path) == expected(200)


def test_sigkill_in_the_middle_of_an_upload_then_restart_loses_and_duplicates_nothing(
        start_process, probe, s3_server: S3Server, tmp_path: Path) -> None:
    spool = tmp_path / 'spool'
    uplink = SlowUplink(int(s3_server.endpoint.rsplit(':', 1)[1]), rate=4000.0)
    node = start_uploader(start_process, parameters(
        tmp_path / 'slow.yaml', spool, f'http://127.0.0.1:{uplink.port}'))
    probe.subscribe('/diagnostics', DiagnosticArray)
    publish(probe, 300, 100.0)
    probe.wait_for('/diagnostics', lambda _: status_values(probe, 'spool').get(
        'messages') == '600', timeout=10.0)
    time.sleep(1.0)  # every message is in a finalized segment now
    wait_until(lambda: time.monotonic() - uplink.last_forward < 0.05, 10.0, 'an upload')
    os.killpg(node.process.pid, signal.SIGKILL)
    node.process.wait()
    clean_stale_shared_memory()
    uplink.close()
    uploaded = {Path(key).name for key in s3_server.objects(BUCKET)}
    pending = {path.name for path in spool.glob('*.mcap')}
    assert pending, 'nothing was left to upload when the node was killed'
    start_uploader(start_process, parameters(tmp_path / 'direct.yaml', spool,
                                             s3_server.endpoint))
    wait_until(lambda: not list(spool.glob('*.mcap')), 20.0, 'the restarted node to upload')
    keys = list(s3_server.objects(BUCKET))
    assert sorted(Path(key).name for key in keys) == sorted(uploaded | pending)
    assert bucket_messages(s3_server, tmp_path) == expected(300)
