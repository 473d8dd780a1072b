"""anomaly_node and maintenance_node over DDS, fed synthetic SyncedFrames in their own time."""
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import DurabilityPolicy, QoSProfile
from std_msgs.msg import Header

from twin_anomaly.anomaly import AnomalyModel, DetectorSettings
from twin_core.channels import Series
from twin_core.stamps import from_seconds
from twin_interfaces.msg import AnomalyEvent, MaintenanceSchedule, SensorSample, SyncedFrame, TwinState
from twin_interfaces.srv import GetSchedule
from twin_maintenance.rul import RulModel
from twin_ros.stamps import to_msg

RATE = 100.0
JOINT = 'joint_1'
NAMES = [f'{JOINT}.position', f'{JOINT}.velocity', f'{JOINT}.effort']


def signals(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Joint position, velocity and effort of a periodic move, with sensor noise."""
    phase = 2 * np.pi * t / 4.0
    clean = np.column_stack((np.sin(phase), np.cos(phase), 10.0 + 5.0 * np.sin(phase)))
    return clean + rng.normal(0.0, [1e-4, 2e-3, 5e-2], clean.shape)


def frame(t: float, values: np.ndarray) -> SyncedFrame:
    stamp = to_msg(from_seconds(t))
    joints = SensorSample(topic='encoders/joint_states', type='sensor_msgs/msg/JointState', stamp=stamp,
                          quality=SensorSample.QUALITY_INTERPOLATED, names=NAMES, values=values.tolist())
    motor = SensorSample(topic=f'motors/{JOINT}/temperature', type='sensor_msgs/msg/Temperature',
                         stamp=stamp, quality=SensorSample.QUALITY_HELD, names=['temperature'], values=[30.0])
    return SyncedFrame(header=Header(stamp=stamp, frame_id='base_link'), samples=[joints, motor], complete=True)


@pytest.fixture
def models(tmp_path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    t = np.arange(int(120 * RATE)) / RATE
    normal = Series(t, tuple(NAMES), signals(t, rng))
    AnomalyModel.fit(normal, DetectorSettings(autoencoder_epochs=2)).save(tmp_path / 'anomaly')
    life = np.arange(100.0, 0.0, -1.0)
    RulModel.fit(('vibration', 'friction_power'), np.zeros(life.size), np.column_stack((1 / life, life)),
                 life).save(tmp_path / 'rul.json')
    return tmp_path / 'anomaly', tmp_path / 'rul.json'


class FramePublisher:
    """Publishes frames at 100 Hz (frame time starts at 1000 s); adds ``step`` to the effort."""

    def __init__(self, node) -> None:
        self.step = 0.0
        self.step_time: float | None = None
        self._publisher = node.create_publisher(SyncedFrame, '/twin/synced_frame', 10)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        rng = np.random.default_rng(1)
        index = 0
        while not self._stop.is_set():
            t = 1000.0 + index / RATE
            values = signals(np.array([t]), rng)[0]
            if self.step and self.step_time is None:
                self.step_time = t
            values[2] += self.step
            self._publisher.publish(frame(t, values))
            index += 1
            time.sleep(1.0 / RATE)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)


@pytest.mark.integration
def test_a_step_raises_an_anomaly_event_and_the_schedule_service_answers(start_process, probe, tmp_path, models):
    anomaly_model, rul_model = models
    (tmp_path / 'params.yaml').write_text(f"""\
anomaly_detector:
  ros__parameters:
    model: {anomaly_model}
maintenance_planner:
  ros__parameters:
    rul_model: {rul_model}
    joints: [{JOINT}]
    sensors: ["encoders:{JOINT}.position"]
    window: 1.0
    batch_frames: 10
""")
    parameters = ('--ros-args', '--params-file', str(tmp_path / 'params.yaml'))
    probe.subscribe('/twin/anomalies', AnomalyEvent)
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    probe.subscribe('/twin/maintenance_schedule', MaintenanceSchedule, latched)
    start_process('anomaly_node', *parameters)
    start_process('maintenance_node', *parameters)
    frames = FramePublisher(probe.node)
    try:
        probe.wait_for('/twin/maintenance_schedule', lambda m: len(m) >= 1, timeout=30)
        client = probe.node.create_client(GetSchedule, '/maintenance_planner/get_schedule')
        assert client.wait_for_service(timeout_sec=10)
        future = client.call_async(GetSchedule.Request())
        deadline = time.monotonic() + 10
        while not future.done():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert future.result().schedule.revision >= 1
        probe.sleep(3.0)  # normal operation: no alarm
        assert not [e for e in probe.messages('/twin/anomalies') if e.active]
        frames.step = 2.0  # 40 noise sigmas on the effort
        events = probe.wait_for('/twin/anomalies', lambda m: any(e.active for e in m), timeout=10)
    finally:
        frames.close()
    raised = [e for e in events if e.active]
    # the effort's own score, or a multivariate one (the autoencoders: their worst channel, on a
    # model trained for two epochs, may be a correlated joint_1 channel)
    assert all(e.sensor == f'{JOINT}.effort'
               or (e.sensor == 'multivariate' and f'worst channel {JOINT}.' in e.description)
               for e in raised), [(e.sensor, e.description) for e in raised]
    assert raised[0].score > raised[0].threshold and raised[0].severity >= 1
    onset = raised[0].header.stamp.sec + raised[0].header.stamp.nanosec * 1e-9
    assert 0.0 <= onset - frames.step_time < 0.2  # in frame time


@pytest.mark.integration
def test_a_joint_off_its_path_raises_and_clears_a_tracking_alarm(start_process, probe, models):
    anomaly_model, _ = models
    probe.subscribe('/twin/anomalies', AnomalyEvent)
    probe.subscribe('/diagnostics', DiagnosticArray)
    start_process('anomaly_node', '--ros-args', '-p', f'model:={anomaly_model}', '-p', 'tracking.bound:=0.01',
                  '-p', 'tracking.duration:=0.05', '-p', 'tracking.clear_duration:=0.2')
    states = probe.node.create_publisher(TwinState, '/twin/state', 10)
    deadline = time.monotonic() + 20
    while states.get_subscription_count() == 0:
        assert time.monotonic() < deadline, 'anomaly_node never subscribed to /twin/state'
        time.sleep(0.05)
    errors = [0.001] * 20 + [0.02] * 30 + [0.0] * 40  # joint_2 off its path from the 21st state
    for index, error in enumerate(errors):
        states.publish(TwinState(header=Header(stamp=to_msg(from_seconds(1000.0 + index / RATE))),
                                 joint_names=['joint_1', 'joint_2'], tracking_error=[0.0, error]))
        time.sleep(1.0 / RATE)
    events = probe.wait_for('/twin/anomalies', lambda m: any(not e.active for e in m), timeout=10)
    assert [(e.sensor, e.method, e.active) for e in events] == [
        ('joint_2.tracking_error', 'tracking', True), ('joint_2.tracking_error', 'tracking', False)]
    rise, clear = (e.header.stamp.sec + e.header.stamp.nanosec * 1e-9 - 1000.0 for e in events)
    # 50 ms beyond the bound, 200 ms back below half of it (within a state period: stamps are whole ns)
    assert rise == pytest.approx(0.25, abs=0.011) and clear == pytest.approx(0.70, abs=0.011)

    def reported(messages: list) -> bool:
        return any(s.name == 'anomaly_detector: tracking' and ('peak_error.joint_2', '0.02') in
                   [(kv.key, kv.value) for kv in s.values] for m in messages for s in m.status)
    probe.wait_for('/diagnostics', reported, timeout=5)
