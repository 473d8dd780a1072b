"""sync_node over DDS: interpolated frames at the configured rate; a dead input turns STALE."""
import threading
import time

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Imu, JointState, LaserScan

from twin_interfaces.msg import SensorSample, SyncedFrame

SYNC_NODE = 'sync_node'
PARAMETERS = """\
twin_sync:
  ros__parameters:
    topics: [imu/data, encoders/joint_states, scan]
    types: [sensor_msgs/msg/Imu, sensor_msgs/msg/JointState, sensor_msgs/msg/LaserScan]
    modes: [interpolate, interpolate, hold]
    timeouts: [0.05, 0.05, 0.2]
    lower_bounds: [0.0, 0.0, 0.0]
"""


class SyntheticSensors:
    """Publishes IMU (200 Hz), encoders (100 Hz) and lidar (20 Hz) whose values are linear in
    the stamp: linear_acceleration.x = s since start, joint_1.position = 2 s since start."""

    def __init__(self, node) -> None:
        self._node = node
        self.start_ns = node.get_clock().now().nanoseconds
        self.scan_alive = True
        self._stop = threading.Event()
        self._imu = node.create_publisher(Imu, '/imu/data', qos_profile_sensor_data)
        self._joints = node.create_publisher(JointState, '/encoders/joint_states',
                                             qos_profile_sensor_data)
        self._scan = node.create_publisher(LaserScan, '/scan', qos_profile_sensor_data)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        tick = 0
        while not self._stop.is_set():
            now = self._node.get_clock().now()
            seconds = (now.nanoseconds - self.start_ns) / 1e9
            stamp = now.to_msg()
            imu = Imu()
            imu.header.stamp = stamp
            imu.linear_acceleration.x = seconds
            imu.orientation_covariance[0] = -1.0
            self._imu.publish(imu)
            if tick % 2 == 0:
                joints = JointState(name=['joint_1'], position=[2.0 * seconds])
                joints.header.stamp = stamp
                self._joints.publish(joints)
            if tick % 10 == 0 and self.scan_alive:
                scan = LaserScan(ranges=[1.5] * 10)
                scan.header.stamp = stamp
                self._scan.publish(scan)
            tick += 1
            time.sleep(0.005)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)


@pytest.mark.integration
def test_frames_at_rate_interpolated_and_a_dead_input_turns_stale(start_process, probe, tmp_path):
    parameters = tmp_path / 'sync.yaml'
    parameters.write_text(PARAMETERS)
    probe.subscribe('/twin/synced_frame', SyncedFrame)
    probe.subscribe('/diagnostics', DiagnosticArray)
    node = start_process(SYNC_NODE, '--ros-args', '--params-file', str(parameters))
    sensors = SyntheticSensors(probe.node)
    try:
        probe.wait_for('/twin/synced_frame', lambda m: any(f.complete for f in m), timeout=20)
        before, since = len(probe.messages('/twin/synced_frame')), time.monotonic()
        time.sleep(2.0)
        frames = probe.messages('/twin/synced_frame')[before:]
        assert 80 <= len(frames) / (time.monotonic() - since) <= 120
        stamps = [f.header.stamp.sec * 10**9 + f.header.stamp.nanosec for f in frames]
        assert all(b - a == 10**7 and b % 10**7 == 0 for a, b in zip(stamps, stamps[1:]))  # every grid time
        complete = [(t, f) for t, f in zip(stamps, frames) if f.complete]
        assert len(complete) >= 0.9 * len(frames)
        aligned = [f.samples[0].quality in (SensorSample.QUALITY_EXACT,
                                            SensorSample.QUALITY_INTERPOLATED) for f in frames]
        assert sum(aligned) >= 0.9 * len(frames)  # else HELD: the next IMU sample came late
        for stamp, frame in complete:
            imu, joints, scan = frame.samples
            assert [s.topic for s in frame.samples] == ['imu/data', 'encoders/joint_states', 'scan']
            assert imu.names[0] == 'linear_acceleration.x' and joints.names == ['joint_1.position']
            seconds = (stamp - sensors.start_ns) / 1e9
            imu_time = seconds if imu.quality != SensorSample.QUALITY_HELD else \
                (imu.stamp.sec * 10**9 + imu.stamp.nanosec - sensors.start_ns) / 1e9
            assert imu.values[0] == pytest.approx(imu_time, abs=1e-6)
            if joints.quality == SensorSample.QUALITY_INTERPOLATED:
                assert joints.values[0] == pytest.approx(2.0 * seconds, abs=1e-6)
            assert scan.quality == SensorSample.QUALITY_HELD and 0.0 <= scan.age <= 0.2
            assert (scan.type, list(scan.values)) == ('sensor_msgs/msg/LaserScan', [1.5] * 10)

        sensors.scan_alive = False
        time.sleep(0.6)
        before, since = len(probe.messages('/twin/synced_frame')), time.monotonic()
        time.sleep(1.0)
        frames = probe.messages('/twin/synced_frame')[before:]
        assert len(frames) / (time.monotonic() - since) >= 80
        assert all(f.samples[2].quality == SensorSample.QUALITY_STALE and not f.complete
                   and f.samples[0].quality != SensorSample.QUALITY_STALE for f in frames)
        probe.wait_for('/diagnostics', lambda m: any(
            s.name == 'twin_sync: scan' and s.message == 'stale' for a in m for s in a.status),
            timeout=5)
    finally:
        sensors.close()
    assert node.stop() == 0


@pytest.mark.integration
def test_approximate_mode_publishes_one_frame_per_matched_set(start_process, probe, tmp_path):
    parameters = tmp_path / 'sync.yaml'
    parameters.write_text(PARAMETERS + '    mode: approximate\n')
    probe.subscribe('/twin/synced_frame', SyncedFrame)
    node = start_process(SYNC_NODE, '--ros-args', '--params-file', str(parameters))
    sensors = SyntheticSensors(probe.node)
    try:
        probe.wait_for('/twin/synced_frame', lambda m: len(m) >= 2, timeout=20)
        before, since = len(probe.messages('/twin/synced_frame')), time.monotonic()
        time.sleep(2.0)
        frames = probe.messages('/twin/synced_frame')[before:]
    finally:
        sensors.close()
    assert 12 <= len(frames) / (time.monotonic() - since) <= 22  # one set per scan (<= 20 Hz)
    for frame in frames:
        stamps = [s.stamp.sec * 10**9 + s.stamp.nanosec for s in frame.samples]
        assert frame.complete and frame.max_skew == 0.0 and len(set(stamps)) == 1
        assert frame.samples[0].values[0] == pytest.approx(
            (stamps[0] - sensors.start_ns) / 1e9, abs=1e-6)
    assert node.stop() == 0
