"""Camera driver core against real MJPEG servers: the simulator's camera and its server alone."""
from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import cv2
import numpy as np
import pytest

from camera_cell import camera_cell
from harness import wait_for
from twin_core.config import ConfigError
from twin_sensors.camera import CameraConfig, CameraStream, Frame, FrameChecker, MjpegReader
from twin_sensors.camera_info import load_camera_info
from twin_sensors.mjpeg import MultipartParser, StreamRefused, parse_response_head
from twin_sensors.stats import DriverStats
from twin_sim.mjpeg_server import MjpegServer, part
from twin_sim.scenario import Fault
from twin_sim.settings import SimSettings


class Client:
    """The driver core without ROS: reader thread, stream, frames collected with their receive times."""

    def __init__(self, url: str, **config: object) -> None:
        self.config = CameraConfig(url=url, **config)  # type: ignore[arg-type]
        self.stats = DriverStats(startup_grace=0.0)
        self.stream = CameraStream(self.config, self.stats)
        self.frames: list[tuple[float, Frame]] = []
        self.states: list[tuple[bool, str]] = []
        self.reader = MjpegReader(self.config, self._on_data, self._on_state)
        self._lock = threading.Lock()

    def _on_data(self, chunk: bytes, receive_ns: int) -> None:
        for frame in self.stream.feed(chunk, receive_ns * 1e-9):
            with self._lock:
                self.frames.append((receive_ns * 1e-9, frame))

    def _on_state(self, connected: bool, detail: str) -> None:
        self.states.append((connected, detail))
        self.stats.set_state(connected, detail)
        if connected:
            self.stream.reset(self.reader.boundary)

    def count(self) -> int:
        with self._lock:
            return len(self.frames)


@pytest.fixture
def client_of() -> Iterator:
    clients: list[Client] = []

    def start(url: str, **config: object) -> Client:
        client = Client(url, **config)
        client.reader.start()
        clients.append(client)
        return client
    yield start
    for client in clients:
        client.reader.stop()


def jpeg_of(image: np.ndarray) -> bytes:
    return cv2.imencode('.jpg', image)[1].tobytes()


def test_frames_from_the_simulated_camera(client_of) -> None:
    with camera_cell(SimSettings(device_clock_offset=50.0), rate_hz=10.0) as runner:
        assert runner.camera is not None
        client = client_of(runner.camera.server.url)
        assert wait_for(lambda: client.count() >= 15, 15.0)
        received = client.stats.messages  # before the server's count: the client goes on reading
        camera = runner.stats()['channels']['camera']
    times = [frame.device_time for _, frame in client.frames]
    assert all(t is not None and t > 50.0 for t in times) and times == sorted(times)
    image = cv2.imdecode(np.frombuffer(client.frames[-1][1].jpeg, np.uint8), 1)
    assert image.shape == (480, 640, 3) and not client.frames[-1][1].black
    assert sum(client.stats.errors.values()) == 0 and client.stream.parser.bytes_skipped == 0
    assert not client.stream.checker.frozen and received <= camera['parts_sent']


def test_reconnects_after_the_server_restarts(client_of) -> None:
    server = MjpegServer('127.0.0.1', 0)
    server.open()
    port = server.address[1]
    client = client_of(server.url, stall_timeout=1.0)
    image = np.full((48, 64, 3), 120, np.uint8)
    for index in range(3):
        assert wait_for(lambda: client.stats.connected, 5.0)
        image[:, :, 0] = index  # every frame differs
        server.publish(jpeg_of(image), float(index))
        assert wait_for(lambda expected=index + 1: client.count() == expected, 5.0)
        if index < 2:
            server.close()
            assert wait_for(lambda: not client.stats.connected, 5.0)
            server = MjpegServer('127.0.0.1', port)
            server.open()
    server.close()
    assert client.stats.reconnects == 2 and [f.device_time for _, f in client.frames] == [0.0, 1.0, 2.0]
    assert [connected for connected, _ in client.states][:5] == [True, False, True, False, True]


def test_a_stalled_stream_is_dropped_and_reopened(client_of) -> None:
    with socket.create_server(('127.0.0.1', 0)) as listener:
        port = listener.getsockname()[1]
        client = client_of(f'http://127.0.0.1:{port}/stream.mjpg', stall_timeout=0.3)
        connections = []
        for _ in range(2):
            connection, _ = listener.accept()
            connection.recv(4096)
            connection.sendall(b'HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace;boundary=b\r\n\r\n')
            connections.append(connection)  # then silence
        assert wait_for(lambda: client.stats.reconnects >= 1, 5.0)
        assert any('no data for 0.3 s' in detail for _, detail in client.states)
        for connection in connections:
            connection.close()


def test_corrupt_and_black_frames_are_told_apart(client_of) -> None:
    server = MjpegServer('127.0.0.1', 0)
    server.open()
    try:
        client = client_of(server.url)
        assert wait_for(lambda: client.stats.connected, 5.0)
        good = jpeg_of(np.random.default_rng(1).integers(0, 255, (48, 64, 3), np.uint8))
        for jpeg in (good[:len(good) // 2], b'\xff\xd8' + bytes(100) + b'\xff\xd9',
                     jpeg_of(np.zeros((48, 64, 3), np.uint8)), good):
            sent = client.stats.messages + sum(client.stats.errors.values())
            server.publish(jpeg, 1.0)
            assert wait_for(lambda sent=sent: client.stats.messages + sum(client.stats.errors.values()) > sent, 5.0)
    finally:
        server.close()
    assert client.stats.errors['corrupt_jpeg'] == 2 and client.stats.messages == 2
    assert [frame.black for _, frame in client.frames] == [True, False]
    assert client.stream.checker.black_frames == 1


def test_a_frozen_camera_is_detected_and_recovers(client_of) -> None:
    with camera_cell(rate_hz=10.0) as runner:
        assert runner.camera is not None
        client = client_of(runner.camera.server.url, frozen_after=0.5)
        assert wait_for(lambda: client.count() >= 5, 15.0)
        assert not client.stream.checker.frozen
        fault = runner.inject_fault(Fault('camera_frozen', 'camera', duration=1.5)).result(2.0)
        assert wait_for(lambda: client.stream.checker.frozen, 5.0)
        assert wait_for(lambda: runner.truth().time > fault.end + 0.3, 5.0)
        assert wait_for(lambda: not client.stream.checker.frozen, 5.0)
    checker = client.stream.checker
    assert checker.frozen_episodes == 1 and checker.frozen_frames >= 3


def test_frozen_needs_identical_frames_for_longer_than_the_limit() -> None:
    checker = FrameChecker(frozen_after=1.0, black_level=8.0)
    same, other = np.zeros((4, 4), np.uint8), np.ones((4, 4), np.uint8)
    for now in (0.0, 0.5, 1.0):
        checker.note(same, now)
    assert not checker.frozen
    checker.note(same, 1.1)
    assert checker.frozen and checker.frozen_frames == 1
    checker.note(other, 1.2)
    assert not checker.frozen and checker.frozen_episodes == 1


def test_parts_with_and_without_content_length_split_anywhere() -> None:
    bodies = [b'\xff\xd8one\xff\xd9', b'\xff\xd8two\r\n--not-it\xff\xd9', b'\xff\xd8three\xff\xd9']
    stream = (part(bodies[0], 1.0) + b'--frame\r\nContent-Type: image/jpeg\r\n\r\n' + bodies[1] + b'\r\n'
              + part(bodies[2], 3.0))
    for split in range(1, len(stream)):
        parser = MultipartParser(DriverStats())
        parser.reset(b'frame')
        parts = parser.feed(stream[:split]) + parser.feed(stream[split:])
        if split < len(stream) - len(bodies[2]):
            assert [p.body for p in parts] == bodies, split
    assert parser.bytes_skipped == 0


def test_a_damaged_part_costs_that_part_only() -> None:
    stats = DriverStats()
    parser = MultipartParser(stats, max_part=100)
    parser.reset(b'frame')
    stream = (b'junk before' + part(b'a' * 10, 1.0) + b'--frame\r\nContent-Length: 5000\r\n\r\n' + b'b' * 200
              + b'\r\n' + b'--frame\r\nContent-Length: x\r\n\r\n' + part(b'c' * 10, 2.0))
    assert [p.body for p in parser.feed(stream)] == [b'a' * 10, b'c' * 10]
    assert stats.errors == {'oversize': 1, 'bad_part': 1} and parser.bytes_skipped >= len('junk before')


@pytest.mark.parametrize('head, message', [
    (b'HTTP/1.1 404 Not Found\r\nContent-Type: text/html', 'HTTP 404 Not Found'),
    (b'HTTP/1.1 200 OK\r\nContent-Type: image/jpeg', 'not a multipart stream'),
    (b'HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace', 'no boundary'),
    (b'SSH-2.0-OpenSSH', 'not an HTTP response'),
])
def test_responses_that_are_no_mjpeg_stream_are_refused(head: bytes, message: str) -> None:
    with pytest.raises(StreamRefused, match=message):
        parse_response_head(head)


def test_boundary_forms() -> None:
    assert parse_response_head(b'HTTP/1.0 200 OK\r\ncontent-type: multipart/x-mixed-replace; boundary="--myboundary"'
                               ) == b'myboundary'


def test_config_and_calibration_errors(tmp_path) -> None:
    for url in ('rtsp://127.0.0.1/stream', 'http:///stream.mjpg', 'http://127.0.0.1:99999/x'):
        with pytest.raises(ValueError):
            CameraConfig(url=url)
    bad = tmp_path / 'info.yaml'
    bad.write_text('image_width: 320\nimage_height: 240\ncamera_matrix: {rows: 3, cols: 3, data: [1, 2]}\n')
    with pytest.raises(ConfigError, match='camera_matrix.data'):
        load_camera_info(bad)
