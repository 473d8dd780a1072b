"""The simulated cell camera: offscreen rendering, faults, calibration, fiducials and its MJPEG server."""
from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import cv2
import numpy as np
import pytest

from camera_cell import CONFIG, camera_cell, workcell
from twin_core.mjpeg_server import BOUNDARY, MjpegServer
from twin_sensors.camera_info import load_camera_info
from twin_sensors.fiducials import FiducialDetector
from twin_sim.camera import CameraChannel, FrameRenderer, calibration, marker_in_world, optical_frame
from twin_sim.model import MARKERS
from twin_sim.scenario import Fault
from twin_sim.settings import SimSettings


@pytest.fixture(scope='module')
def renderer() -> Iterator[FrameRenderer]:
    cell = workcell()
    frames = FrameRenderer(cell.model, CameraChannel(width=160, height=120))
    yield frames
    frames.close()


def test_camera_info_in_config_is_the_simulated_cameras_calibration() -> None:
    assert load_camera_info(CONFIG / 'camera_info.yaml') == calibration(workcell().model, 640, 480)


def test_rendered_views_show_the_arm_move(renderer: FrameRenderer) -> None:
    cell = workcell()
    first = renderer.render(cell.camera_view())
    cell.step(1500)  # 1.5 s into the approach to the conveyor
    second = renderer.render(cell.camera_view())
    assert first.shape == (120, 160, 3) and first.std() > 20.0  # a scene, not a flat colour
    changed = np.abs(first.astype(int) - second.astype(int)).max(axis=2) > 30
    assert 0.002 < changed.mean() < 0.3  # the arm moved, the cell did not
    jpeg = renderer.encode(second)
    assert jpeg[:2] == b'\xff\xd8' and cv2.imdecode(np.frombuffer(jpeg, np.uint8), 1).shape == (120, 160, 3)


def test_occlusion_and_blur_faults_change_the_image(renderer: FrameRenderer) -> None:
    cell = workcell()
    clear = renderer.render(cell.camera_view())
    cell.inject_fault(Fault('camera_occlusion', 'camera', parameters={'fraction': 0.25}))
    cell.inject_fault(Fault('camera_blur', 'camera', parameters={'sigma': 3.0}))
    view = cell.camera_view()
    assert view is not None and view.occlusion == 0.25 and view.blur_sigma == 3.0
    degraded = renderer.render(view)
    assert np.abs(degraded[:, :30].astype(int) - 40).max() <= 1  # the occluder, blurred at its edge only
    sharpness = [cv2.Laplacian(cv2.cvtColor(image[:, 60:], cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()
                 for image in (clear, degraded)]
    assert sharpness[1] < 0.3 * sharpness[0]


def test_dropout_and_frozen_faults() -> None:
    cell = workcell()
    cell.inject_fault(Fault('sensor_dropout', 'camera', duration=0.1))
    assert cell.camera_view() is None
    cell.step(200)
    cell.inject_fault(Fault('camera_frozen', 'camera'))
    view = cell.camera_view()
    assert view is not None and view.frozen


def read_parts(url: str, count: int) -> list[tuple[float, bytes]]:
    """(X-Timestamp, JPEG) of the first ``count`` parts of an MJPEG stream, read with urllib."""
    parts = []
    with urllib.request.urlopen(url, timeout=10.0) as response:
        assert response.headers['Content-Type'] == f'multipart/x-mixed-replace; boundary={BOUNDARY}'
        while len(parts) < count:
            assert response.readline() == f'--{BOUNDARY}\r\n'.encode()
            headers = {}
            while (line := response.readline().decode()) != '\r\n':
                name, _, value = line.partition(':')
                headers[name.lower()] = value.strip()
            parts.append((float(headers['x-timestamp']), response.read(int(headers['content-length']))))
            assert response.readline() == b'\r\n'
    return parts


def test_the_cell_serves_frames_stamped_with_the_device_time_they_show() -> None:
    with camera_cell(SimSettings(device_clock_offset=100.0), rate_hz=10.0) as runner:
        assert runner.camera is not None
        parts = read_parts(runner.camera.server.url, 8)
        stats = runner.stats()
        runner.inject_fault(Fault('camera_frozen', 'camera')).result(2.0)
        frozen = read_parts(runner.camera.server.url, 4)
    times = [t for t, _ in parts]
    assert all(100.0 < t < 100.0 + stats['sim_time'] + 1.0 for t in times)
    assert np.allclose(np.diff(times), 0.1, atol=0.002) or stats['channels']['camera']['dropped'] > 0
    assert all(cv2.imdecode(np.frombuffer(jpeg, np.uint8), 1).shape == (480, 640, 3) for _, jpeg in parts)
    assert len({jpeg for _, jpeg in frozen[1:]}) == 1 and len({t for t, _ in frozen}) == 4  # new times, same image
    camera = stats['channels']['camera']
    # every captured view rendered or dropped, but the one being rendered and the one waiting for it
    assert camera['captured'] - 2 <= camera['emitted'] + camera['dropped'] <= camera['captured']
    assert camera['render_ms'] > 0.0


def test_server_paths_and_snapshot() -> None:
    server = MjpegServer('127.0.0.1', 0)
    server.open()
    try:
        server.publish(b'\xff\xd8 not really \xff\xd9', 1.5)
        host, port = server.address
        with urllib.request.urlopen(f'http://{host}:{port}/snapshot.jpg', timeout=5.0) as response:
            assert response.read() == b'\xff\xd8 not really \xff\xd9'
        with pytest.raises(urllib.error.HTTPError, match='404'):
            urllib.request.urlopen(f'http://{host}:{port}/other', timeout=5.0)
    finally:
        server.close()


def test_fiducial_poses_match_the_ground_truth_at_the_start_pose() -> None:
    cell = workcell()
    frames = FrameRenderer(cell.model, CameraChannel(width=640, height=480))
    try:
        image = frames.render(cell.camera_view())
    finally:
        frames.close()
    detector = FiducialDetector(calibration(cell.model, 640, 480), {m[0]: m[-1] for m in MARKERS})
    found = {pose.marker_id: pose for pose in detector.detect(image)}
    assert set(found) == {0, 1}
    camera, axes = optical_frame(cell.model, cell.data)
    for marker_id, pose in found.items():
        position, marker_axes = marker_in_world(cell.model, cell.data, marker_id)
        assert np.linalg.norm(camera + axes @ pose.position - position) < 0.03  # m, at 2 to 2.3 m
        assert (axes @ pose.rotation[:, 2]) @ marker_axes[:, 2] > np.cos(np.radians(5.0))
        assert pose.reprojection_px < 1.0
