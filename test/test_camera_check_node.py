"""camera_check process against the simulated cell camera (through camera_driver), checked on DDS:
the discrepancy published, and the alarm raised when the twin's joint states are offset.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import JointState
from std_msgs.msg import Header

from camera_cell import CONFIG, camera_cell
from twin_core.levels import Level
from twin_interfaces.msg import AnomalyEvent, CameraDiscrepancy
from twin_ros.common import status_level
from twin_ros.stamps import to_msg

pytestmark = pytest.mark.integration
DISCREPANCY, EVENTS = '/twin/camera/discrepancy', '/twin/anomalies'
SEEN, TWIN = '/twin/camera/tool_pose', '/twin/camera/twin_tool_pose'


class TwinJointStates:
    """Publishes the still arm's joint positions as the twin's joint states at 50 Hz, stamped now,
    with ``offset`` (rad) added to joint_2.
    """

    def __init__(self, probe, names: tuple[str, ...], positions: list[float]) -> None:
        self.offset = 0.0
        self._publisher = probe.node.create_publisher(JointState, '/twin/joint_states', 10)
        self._names, self._positions = list(names), positions
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            positions = list(self._positions)
            positions[self._names.index('joint_2')] += self.offset
            self._publisher.publish(JointState(header=Header(stamp=to_msg(time.time_ns())), name=self._names,
                                               position=positions))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5.0)


@pytest.fixture
def still_cell() -> Iterator:
    """The cell camera serving at 5 Hz with the arm stopped (protective stop) and at rest."""
    with camera_cell(rate_hz=5.0) as runner:
        runner.submit(runner.workcell.protective_stop).result(5.0)
        time.sleep(1.5)
        yield runner


def camera_status(probe) -> list[tuple[Level, str]]:
    return [(status_level(s), s.message) for m in probe.messages('/diagnostics') for s in m.status
            if s.name == 'camera_check: camera']


def test_camera_check_publishes_the_discrepancy_and_alarms_on_an_offset(still_cell, start_process, probe) -> None:
    for topic, kind in ((DISCREPANCY, CameraDiscrepancy), (EVENTS, AnomalyEvent), (SEEN, PoseStamped),
                        (TWIN, PoseStamped), ('/diagnostics', DiagnosticArray)):
        probe.subscribe(topic, kind)
    twin = TwinJointStates(probe, still_cell.workcell.joint_names, still_cell.truth().q.tolist())
    try:
        start_process('camera_driver', '--ros-args', '--params-file', str(CONFIG / 'camera_driver.yaml'),
                      '-p', f'url:={still_cell.camera.server.url}')
        start_process('camera_check', '--ros-args', '--params-file', str(CONFIG / 'camera_check.yaml'))
        agreeing = probe.wait_for(DISCREPANCY, lambda m: len(m) >= 5, 30.0)
        probe.wait_for('/diagnostics', lambda m: any(level is Level.OK for level, _ in camera_status(probe)), 5.0)
        twin.offset = 0.05
        raised = probe.wait_for(EVENTS, lambda m: any(e.active for e in m), 10.0)
        probe.wait_for('/diagnostics', lambda m: camera_status(probe)[-1][0] is Level.WARN, 5.0)
        twin.offset = 0.0
        cleared = probe.wait_for(EVENTS, lambda m: any(not e.active for e in m), 10.0)
    finally:
        twin.close()
    assert all(m.image_mm < 5.0 and m.header.frame_id == 'base_link' for m in agreeing[:5])
    assert all(abs(m.offset_ms) <= 250.0 + 1e-6 for m in agreeing)  # within the stamp tolerance
    assert raised[0].method == 'camera' and raised[0].score > raised[0].threshold
    assert [e.active for e in cleared] == [True, False]
    seen, modelled = probe.messages(SEEN)[0], probe.messages(TWIN)[0]
    assert seen.header.frame_id == 'base_link' and modelled.header.stamp == seen.header.stamp
    seen_stamps = {(m.header.stamp.sec, m.header.stamp.nanosec) for m in probe.messages(SEEN)}
    assert all((m.header.stamp.sec, m.header.stamp.nanosec) in seen_stamps for m in agreeing)  # the frame's stamp


def test_a_tool_plate_on_no_frame_of_the_arm_is_refused_at_start(start_process) -> None:
    node = start_process('camera_check', '--ros-args', '--params-file', str(CONFIG / 'camera_check.yaml'),
                         '-p', 'tool_plate.frame:=gripper')
    assert node.wait(timeout=60.0) == 2
    assert "the tool plate's frame gripper is no frame of the arm" in node.output()
