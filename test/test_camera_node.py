"""camera_driver process against the simulated cell camera over HTTP, checked on DDS."""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage

from camera_cell import CONFIG, camera_cell
from twin_core.levels import Level
from twin_core.stamps import from_msg
from twin_ros.common import status_level
from twin_sensors.camera_info import load_camera_info
from twin_sim.scenario import Fault

pytestmark = pytest.mark.integration
IMAGES, INFOS = '/camera/image_raw/compressed', '/camera/camera_info'


def latest_status(probe) -> tuple[Level, str, dict[str, str]]:
    statuses = [s for m in probe.messages('/diagnostics') for s in m.status
                if s.name.startswith('camera_driver: http')]
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
