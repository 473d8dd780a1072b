"""Camera driver core against real MJPEG servers (the simulator's camera and its server alone) and, for
the OpenCV sources, real video files written by cv2.VideoWriter (MJPG in AVI) and a real RTSP camera
(GStreamer's RTSP server, RTP/JPEG).
"""
from __future__ import annotations

import multiprocessing
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from sandbox import CAMERA_NODES, enable_camera, isolated_config

from camera_cell import VIDEO_SIZE as SIZE
from camera_cell import RtspCamera, camera_cell, truncate, write_video
from harness import wait_for
from twin_bringup.node_table import load_node_table
from twin_core.config import ConfigError, build
from twin_core.mjpeg_server import MjpegServer, part
from twin_sensors.camera import CameraConfig, CameraStream, Frame, FrameChecker, MjpegReader
from twin_sensors.camera_info import load_camera_info
from twin_sensors.capture import DEVICE, FILE, HTTP, RTSP, CaptureReader, parse_source
from twin_sensors.mjpeg import MultipartParser, StreamRefused, parse_response_head
from twin_sensors.stats import DriverStats
from twin_sim.scenario import Fault
from twin_sim.settings import SimSettings


class Client:
    """The driver core without ROS: reader thread (the MJPEG reader for http://, else OpenCV's), stream
    checks, frames collected with their receive times.
    """

    def __init__(self, url: str, **config: object) -> None:
        self.config = CameraConfig(url=url, **config)  # type: ignore[arg-type]
        self.stats = DriverStats(startup_grace=0.0)
        self.stream = CameraStream(self.config, self.stats)
        self.frames: list[tuple[float, Frame]] = []
        self.states: list[tuple[bool, str]] = []
        self._lock = threading.Lock()
        source = self.config.source
        self.mjpeg = MjpegReader(self.config, self._on_data, self._on_state) if source.kind == HTTP else None
        self.reader: MjpegReader | CaptureReader = self.mjpeg or CaptureReader(
            source, self.config.jpeg_quality, self.config.stall_timeout, self.stats, self._on_jpeg, self._on_state)

    def _on_data(self, chunk: bytes, receive_ns: int) -> None:
        for frame in self.stream.feed(chunk, receive_ns * 1e-9):
            with self._lock:
                self.frames.append((receive_ns * 1e-9, frame))

    def _on_jpeg(self, jpeg: bytes, receive_ns: int) -> None:
        frame = self.stream.check(jpeg, receive_ns * 1e-9, None)
        if frame is not None:
            with self._lock:
                self.frames.append((receive_ns * 1e-9, frame))

    def _on_state(self, connected: bool, detail: str) -> None:
        self.states.append((connected, detail))
        self.stats.set_state(connected, detail)
        if connected and self.mjpeg is not None:
            self.stream.reset(self.mjpeg.boundary)

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
        renderer = next(p for p in multiprocessing.active_children() if p.name == 'camera render')
        threads = [int(task.name) for task in Path(f'/proc/{renderer.pid}/task').iterdir()]
        priorities = [os.getpriority(os.PRIO_PROCESS, thread) for thread in threads]
    assert len(threads) > 1 and set(priorities) == {19}  # the rasterizer's threads too: physics first
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
    bad = tmp_path / 'info.yaml'
    bad.write_text('image_width: 320\nimage_height: 240\ncamera_matrix: {rows: 3, cols: 3, data: [1, 2]}\n')
    with pytest.raises(ConfigError, match='camera_matrix.data'):
        load_camera_info(bad)


# OpenCV sources: a video file written here, read like a camera
def test_sources_are_told_apart_and_only_http_carries_a_device_clock(tmp_path: Path) -> None:
    assert parse_source('http://127.0.0.1:8081/stream.mjpg').kind == HTTP
    assert parse_source('rtsp://10.0.0.7:554/stream1').kind == RTSP
    assert parse_source('/dev/video2').kind == DEVICE and parse_source('/dev/video2').target == '/dev/video2'
    assert parse_source('0').target == 0 and parse_source('0').kind == DEVICE
    assert parse_source(str(tmp_path / 'cell.avi')).kind == FILE
    for url in ('ftp://host/x.avi', 'http:///stream.mjpg', 'http://127.0.0.1:99999/x', '/dev/videoX', '',
                'rtsp:///stream'):
        with pytest.raises(ValueError):
            CameraConfig(url=url)
    with pytest.raises(ValueError, match='device clock'):
        load_config_with(url='rtsp://10.0.0.7/stream', mode='device')
    with pytest.raises(ValueError, match='device clock'):
        load_config_with(url=str(tmp_path / 'cell.avi'), mode='device')
    assert load_config_with(url='http://127.0.0.1:8081/stream.mjpg', mode='device').source.clock
    video = CameraConfig(url=str(tmp_path / 'cell.avi'))
    assert video.required_paths()['url'] == tmp_path / 'cell.avi'
    assert 'url' not in CameraConfig(url='/dev/video0').required_paths()  # a device may come later


def load_config_with(url: str, mode: str) -> CameraConfig:
    try:
        return build(CameraConfig, {'url': url, 'timestamps': {'mode': mode}}, 'camera_driver')
    except ConfigError as error:
        raise ValueError(str(error)) from None


def test_a_video_file_plays_at_its_rate_as_jpeg_and_starts_over_at_its_end(tmp_path: Path, client_of) -> None:
    video = write_video(tmp_path / 'cell.avi', frames=20, fps=20.0)  # 1 s
    client = client_of(str(video), jpeg_quality=90)
    assert wait_for(lambda: client.count() >= 30, 10.0)
    frames = [frame for _, frame in client.frames]
    images = [cv2.imdecode(np.frombuffer(f.jpeg, np.uint8), cv2.IMREAD_COLOR) for f in frames[:20]]
    assert all(image is not None and image.shape == (SIZE[1], SIZE[0], 3) for image in images)
    assert all(f.device_time is None and not f.black for f in frames)
    times = np.array([t for t, _ in client.frames[:19]])
    rate = (len(times) - 1) / (times[-1] - times[0])
    assert 5.0 < rate < 26.0, rate  # the file's 20 fps (less under load), not as fast as it can be decoded
    lost = [detail for connected, detail in client.states if not connected]
    assert lost and 'end of' in lost[0] and 'after 20 frames' in lost[0]
    assert client.stats.reconnects >= 1 and not client.stats.errors
    # the same picture again after the restart: frame 0 of the second pass is frame 0 of the first
    assert np.array_equal(cv2.imdecode(np.frombuffer(frames[20].jpeg, np.uint8), cv2.IMREAD_GRAYSCALE),
                          cv2.imdecode(np.frombuffer(frames[0].jpeg, np.uint8), cv2.IMREAD_GRAYSCALE))


def test_the_jpeg_quality_is_the_configured_one(tmp_path: Path, client_of) -> None:
    video = write_video(tmp_path / 'cell.avi', frames=5)
    low, high = client_of(str(video), jpeg_quality=20), client_of(str(video), jpeg_quality=95)
    assert wait_for(lambda: low.count() >= 3 and high.count() >= 3, 10.0)
    assert len(low.frames[0][1].jpeg) < 0.6 * len(high.frames[0][1].jpeg)


def overwrite_middle(path: Path, out: Path) -> Path:
    """``path`` with 2000 bytes in its middle overwritten (a damaged copy, as long as the original)."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2:len(data) // 2 + 2000] = b'\x55' * 2000
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize('damage', [truncate, overwrite_middle])
def test_a_truncated_or_corrupt_file_is_reported_and_read_again(tmp_path: Path, client_of, damage) -> None:
    video = damage(write_video(tmp_path / 'cell.avi', frames=40, fps=40.0), tmp_path / 'damaged.avi')
    client = client_of(str(video))
    assert wait_for(lambda: client.stats.errors['truncated'] >= 2, 15.0)
    detail = client.stats.last_error
    assert 'truncated or corrupt: ended after' in detail and 'of 40 frames' in detail
    first_pass = int(detail.split('ended after ')[1].split(' ')[0])
    assert 0 < first_pass < 40 and client.count() >= 2 * first_pass - 1  # frames before the cut, every pass


def test_a_file_that_is_no_video_is_retried_with_backoff(tmp_path: Path, client_of) -> None:
    garbage = tmp_path / 'noise.avi'
    garbage.write_bytes(np.random.default_rng(1).bytes(20_000))
    client = client_of(str(garbage))
    time.sleep(1.5)
    assert client.count() == 0 and client.reader.connected is False
    assert client.states == [(False, f'cannot open {garbage}: OpenCV cannot open {garbage} as a video source')]
    next_delay = client.reader.backoff.delay()  # 0.1 s doubling: a few attempts in 1.5 s, not hundreds
    assert next_delay >= 0.8


def test_a_v4l2_device_that_is_not_there_is_reported_and_retried_with_backoff(client_of) -> None:
    device = next(f'/dev/video{n}' for n in range(64) if not Path(f'/dev/video{n}').exists())
    client = client_of(device)
    time.sleep(1.5)
    assert client.count() == 0 and client.reader.connected is False
    assert client.states == [(False, f'cannot open {device}: OpenCV cannot open {device} as a video source')]
    assert client.reader.backoff.delay() >= 0.8  # a few attempts in 1.5 s, not hundreds


@pytest.fixture
def rtsp_camera() -> Iterator[RtspCamera]:
    camera = RtspCamera()
    camera.start()
    yield camera
    camera.stop()


def decoded(frame: Frame) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR)


def test_an_rtsp_camera_streams_its_frames_at_its_rate_stamped_on_receipt(rtsp_camera, client_of) -> None:
    client = client_of(rtsp_camera.url)
    assert wait_for(lambda: client.count() >= 30, 30.0)  # past the frames buffered while FFmpeg probed
    start = client.count()
    time.sleep(2.0)
    rate = (client.count() - start) / 2.0
    assert 6.0 <= rate <= 14.0, rate  # the camera's 10 fps
    frames = [frame for _, frame in client.frames]
    assert all(f.device_time is None and not f.black for f in frames)
    assert decoded(frames[-1]).shape == (240, 320, 3)
    assert not np.array_equal(decoded(frames[-1]), decoded(frames[-2]))  # the ball moves
    assert client.states[0][0] and not client.stats.errors and not client.stream.checker.frozen


def test_an_rtsp_camera_that_goes_away_is_reopened_when_it_is_back(rtsp_camera, client_of) -> None:
    client = client_of(rtsp_camera.url, stall_timeout=1.0)
    assert wait_for(lambda: client.count() >= 5, 30.0)
    rtsp_camera.stop()
    assert wait_for(lambda: not client.stats.connected, 10.0)
    assert any(f'no frame from {rtsp_camera.url}' in detail for connected, detail in client.states if not connected)
    before = client.count()
    time.sleep(1.0)  # attempts to reopen fail meanwhile
    rtsp_camera.start()
    assert wait_for(lambda: client.count() >= before + 5, 30.0)
    assert client.stats.connected and client.stats.reconnects >= 1


def test_a_frozen_rtsp_camera_is_detected(client_of) -> None:
    camera = RtspCamera(still=True)
    camera.start()
    try:
        client = client_of(camera.url, frozen_after=0.5)
        assert wait_for(lambda: client.stream.checker.frozen, 30.0)
    finally:
        camera.stop()
    assert client.stream.checker.frozen_episodes == 1 and not client.stats.errors


def test_the_camera_nodes_docs_show_are_the_ones_a_configuration_adds(tmp_path: Path) -> None:
    docs = (Path(__file__).resolve().parents[1] / 'docs' / 'camera.md').read_text()
    snippet = docs.partition('add the driver to `config/graph.yaml`:')[2].partition('```yaml')[2].partition('```')[0]
    assert yaml.safe_load(snippet) == list(CAMERA_NODES)
    config = isolated_config(tmp_path)
    assert not load_node_table(config).select(with_sim=True)[-1].name.startswith('camera')
    enable_camera(config)
    table = load_node_table(config)  # the parameter files validated against the nodes' schemas
    assert [entry.name for entry in table.select(with_sim=True)][-2:] == ['camera_driver', 'camera_check']
    workcell = yaml.safe_load((config / 'workcell.yaml').read_text())['workcell_sim']['ros__parameters']
    assert workcell['channels']['camera']['enabled'] is True
