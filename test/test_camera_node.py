"""camera_driver process against the simulated cell camera over HTTP, a real RTSP camera and video
files (OpenCV), checked on DDS.
"""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage

from camera_cell import CONFIG, RtspCamera, camera_cell, truncate, write_video
from camera_cell import VIDEO_SIZE as SIZE
from twin_core.levels import Level
from twin_core.stamps import from_msg
from twin_ros.common import status_level
from twin_sensors.camera_info import load_camera_info
from twin_sim.scenario import Fault

pytestmark = pytest.mark.integration
IMAGES, INFOS = '/camera/image_raw/compressed', '/camera/camera_info'


def latest_status(probe, prefix: str = 'camera_driver: http') -> tuple[Level, str, dict[str, str]]:
    statuses = [s for m in probe.messages('/diagnostics') for s in m.status if s.name.startswith(prefix)]
    return status_level(statuses[-1]), statuses[-1].message, {kv.key: kv.value for kv in statuses[-1].values}


def test_camera_driver_publishes_the_cell_cameras_frames(start_process, probe) -> None:
    probe.subscribe(IMAGES, CompressedImage, qos_profile_sensor_data)
    probe.subscribe(INFOS, CameraInfo, qos_profile_sensor_data)
    probe.subscribe('/diagnostics', DiagnosticArray)
    with camera_cell(rate_hz=10.0) as runner:
        assert runner.camera is not None
        start_process('camera_driver', '--ros-args', '--params-file', str(CONFIG / 'camera_driver.yaml'),
                      '-p', f'url:={runner.camera.server.url}', '-p', 'frozen_after:=0.5')
        probe.wait_for(IMAGES, lambda m: len(m) >= 10, 20.0)
        rendered, received = runner.camera.rendered, len(probe.messages(IMAGES))
        time.sleep(3.0)
        rendered, received = runner.camera.rendered - rendered, len(probe.messages(IMAGES)) - received
        probe.wait_for('/diagnostics', lambda m: any(s.name.startswith('camera_driver: http')
                                                     for a in m for s in a.status), 5.0)
        healthy = latest_status(probe)
        runner.inject_fault(Fault('camera_frozen', 'camera')).result(2.0)
        time.sleep(2.0)
        frozen = latest_status(probe)
    assert rendered >= 15 and received >= rendered - 2
    images, infos = probe.messages(IMAGES), probe.messages(INFOS)
    image = images[-1]
    assert image.format == 'jpeg' and image.header.frame_id == 'camera_optical_frame'
    assert cv2.imdecode(np.frombuffer(bytes(image.data), np.uint8), 1).shape == (480, 640, 3)
    stamps = [from_msg(m.header.stamp) for m in images]
    assert stamps == sorted(stamps) and abs(stamps[-1] * 1e-9 - time.time()) < 10.0
    by_stamp = {from_msg(m.header.stamp): m for m in infos}
    info = by_stamp[from_msg(images[5].header.stamp)]
    calibration = load_camera_info(CONFIG / 'camera_info.yaml')
    assert (info.width, info.height, tuple(info.k)) == (640, 480, calibration.k)
    assert healthy[0] is Level.OK and healthy[2]['frozen'] == 'False' and healthy[2]['reconnects'] == '0'
    assert frozen[0] is Level.WARN and frozen[1].startswith('frozen') and int(frozen[2]['frozen_frames']) > 0


def test_camera_driver_publishes_a_video_files_frames_stamped_on_receipt(tmp_path: Path, start_process,
                                                                        probe) -> None:
    video = write_video(tmp_path / 'cell.avi', frames=20, fps=10.0)  # 2 s, then again
    cut = truncate(video, tmp_path / 'cut.avi')
    for topic, kind in ((IMAGES, CompressedImage), (INFOS, CameraInfo)):
        probe.subscribe(topic, kind, qos_profile_sensor_data)
    probe.subscribe('/diagnostics', DiagnosticArray)
    start_process('camera_driver', '--ros-args', '--params-file', str(CONFIG / 'camera_driver.yaml'),
                  '-p', f'url:={video}', '-p', 'timestamps.mode:=receipt', '-p', 'jpeg_quality:=85')
    driver = start_process('camera_driver', '--ros-args', '-r', '__node:=cut_driver', '-p', f'url:={cut}',
                           '-p', 'frame_id:=cut_frame')  # the defaults: stamped on receipt
    images = probe.wait_for(IMAGES, lambda m: len(m) >= 25, 30.0)  # past the end of the file
    prefix = f'camera_driver: {video}'
    probe.wait_for('/diagnostics', lambda m: any(s.name == prefix and int(
        {kv.key: kv.value for kv in s.values}.get('reconnects', 0)) >= 1 for a in m for s in a.status), 10.0)
    cut_prefix = f'cut_driver: {cut}'
    probe.wait_for('/diagnostics', lambda m: any(s.name == cut_prefix and int(
        {kv.key: kv.value for kv in s.values}.get('errors.truncated', 0)) >= 1 for a in m for s in a.status), 20.0)
    assert driver.process.poll() is None  # the truncated file did not end the node
    level, _, values = latest_status(probe, prefix)
    assert level in (Level.OK, Level.ERROR)  # ERROR only in the instant between two passes
    assert int(values['frame_count']) == 20 and values['frozen'] == 'False' and 'errors.truncated' not in values
    image = [m for m in images if m.header.frame_id == 'camera_optical_frame'][-1]
    assert image.format == 'jpeg' and image.header.frame_id == 'camera_optical_frame'
    assert cv2.imdecode(np.frombuffer(bytes(image.data), np.uint8), cv2.IMREAD_COLOR).shape == (SIZE[1], SIZE[0], 3)
    stamps = [from_msg(m.header.stamp) for m in images if m.header.frame_id == 'camera_optical_frame']
    assert stamps == sorted(stamps) and abs(stamps[-1] * 1e-9 - time.time()) < 5.0  # receive time
    infos = {from_msg(m.header.stamp) for m in probe.messages(INFOS)}
    assert from_msg(image.header.stamp) in infos
    _, _, cut_values = latest_status(probe, cut_prefix)
    assert 'of 20 frames' in cut_values['last_error'] and int(cut_values['messages']) > 0


def test_camera_driver_publishes_an_rtsp_cameras_frames_and_reconnects(start_process, probe) -> None:
    probe.subscribe(IMAGES, CompressedImage, qos_profile_sensor_data)
    probe.subscribe('/diagnostics', DiagnosticArray)
    camera = RtspCamera()
    camera.start()
    try:
        start_process('camera_driver', '--ros-args', '--params-file', str(CONFIG / 'camera_driver.yaml'),
                      '-p', f'url:={camera.url}', '-p', 'timestamps.mode:=receipt', '-p', 'stall_timeout:=1.0')
        probe.wait_for(IMAGES, lambda m: len(m) >= 30, 30.0)
        prefix = f'camera_driver: {camera.url}'
        healthy = latest_status(probe, prefix)
        camera.stop()
        probe.wait_for('/diagnostics', lambda m: latest_status(probe, prefix)[0] is Level.ERROR, 10.0)
        lost = latest_status(probe, prefix)
        before = len(probe.messages(IMAGES))
        camera.start()
        probe.wait_for(IMAGES, lambda m: len(m) >= before + 10, 30.0)
    finally:
        camera.stop()
    images = probe.messages(IMAGES)
    assert cv2.imdecode(np.frombuffer(bytes(images[-1].data), np.uint8), cv2.IMREAD_COLOR).shape == (240, 320, 3)
    stamps = [from_msg(m.header.stamp) for m in images]
    assert stamps == sorted(stamps) and abs(stamps[-1] * 1e-9 - time.time()) < 5.0  # receive time
    assert healthy[0] is Level.OK and healthy[2]['reconnects'] == '0'
    assert 'no frame from' in lost[1]
    probe.wait_for('/diagnostics', lambda m: int(latest_status(probe, prefix)[2]['reconnects']) >= 1, 5.0)


def test_a_device_clock_asked_of_a_video_file_is_a_configuration_error(tmp_path: Path, start_process) -> None:
    video = write_video(tmp_path / 'cell.avi', frames=2)
    node = start_process('camera_driver', '--ros-args', '--params-file', str(CONFIG / 'camera_driver.yaml'),
                         '-p', f'url:={video}')  # the file's timestamps.mode is device
    assert node.wait(timeout=60.0) == 2
    assert 'needs a device clock' in node.output()
