"""The workcell_sim node and the whole graph, as processes over DDS."""
import csv
import sys

import numpy as np
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from sensor_msgs.msg import JointState

from harness import isolated_config, read_serial, statuses
from twin_bringup.node_table import load_node_table
from twin_core.kinematics import ArmKinematics
from twin_interfaces.msg import Fault, SyncedFrame, WorkcellTruth
from twin_interfaces.srv import InjectFault
from twin_sensors.wire import LineDecoder, parse_imu_line
from twin_state.fidelity import Trajectory, evaluate

pytestmark = pytest.mark.integration
LAUNCH = [sys.executable, '-m', 'twin_bringup.launcher']


def trajectory(messages):
    stamps = np.array([m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in messages])
    order = np.argsort(stamps)
    return Trajectory(stamps[order], np.array([m.position for m in messages])[order], tuple(messages[0].name))


def kept_real_time(probe, truth_topic, stamps, tolerance=0.05, margin=0.5):
    """Which ``stamps`` lie away (``margin`` s) from moments the simulated cell ran behind real
    time: its ground truth arrived more than ``tolerance`` s later than usual after the instant
    it describes (a starved simulator; its devices' data came late too, so the twin lagged).
    """
    arrivals = probe.arrivals(truth_topic)
    truth = probe.messages(truth_topic)[:len(arrivals)]  # the probe keeps recording in between
    described = np.array([m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in truth])
    delay = np.array(arrivals) - described
    late = described[delay - delay.min() > tolerance]
    return ~(np.abs(stamps[:, None] - late[None, :]) < margin).any(axis=1)


def call(probe, service, request, timeout=10.0):
    client = probe.node.create_client(InjectFault, service)
    assert client.wait_for_service(timeout_sec=timeout), f'{service} not available'
    future = client.call_async(request)
    deadline_spins = int(timeout / 0.05)
    for _ in range(deadline_spins):
        if future.done():
            return future.result()
        probe.sleep(0.05)
    raise AssertionError(f'{service} did not answer within {timeout} s')


def test_sim_node_publishes_truth_serves_devices_and_injects_faults(start_process, probe, tmp_path):
    config = isolated_config(tmp_path)
    probe.subscribe('/workcell_sim/joint_states', JointState)
    probe.subscribe('/workcell_sim/truth', WorkcellTruth)
    probe.subscribe('/diagnostics', DiagnosticArray)
    sim = start_process('workcell_sim', '--ros-args', '--params-file', str(config / 'workcell.yaml'))

    def arm_moved(states):
        return len(states) > 1 and max(
            abs(a - b) for a, b in zip(states[0].position, states[-1].position)) > 0.05
    states = probe.wait_for('/workcell_sim/joint_states', arm_moved, timeout=30)  # the task runs
    assert states[-1].name == ['joint_1', 'joint_2', 'joint_3', 'joint_4']

    imu_lines = LineDecoder().feed(read_serial(tmp_path / 'dev' / 'imu', 0.5))
    samples = [parse_imu_line(line) for line in imu_lines[1:]]
    rate = yaml.safe_load((config / 'workcell.yaml').read_text())['workcell_sim']['ros__parameters'][
        'channels']['imu']['rate_hz']
    assert len(samples) > 0.35 * rate  # 0.5 s through the real pty, minus start-up
    assert 9.0 < sum(abs(x) for x in samples[-1].accel) < 30.0  # gravity is felt

    def keeping_real_time(messages):
        physics = statuses(messages[-1:], 'workcell_sim').get('workcell_sim: physics')
        return physics is not None and physics.message.startswith('running')
    physics = probe.wait_for('/diagnostics', keeping_real_time, timeout=10)
    assert statuses(physics[-1:], 'workcell_sim')['workcell_sim: physics'].level == DiagnosticStatus.OK

    dropout = Fault(type='sensor_dropout', target='imu', duration=30.0)
    reply = call(probe, '/workcell_sim/inject_fault', InjectFault.Request(fault=dropout))
    assert reply.accepted, reply.message
    probe.wait_for('/workcell_sim/truth',
                   lambda m: 'sensor_dropout:imu' in m[-1].active_faults, timeout=5)
    assert read_serial(tmp_path / 'dev' / 'imu', 0.3) == b''  # the device went silent

    bad = Fault(type='overheating', target='joint_2', duration=1.0,
                parameters=[KeyValue(key='cooling_factor', value='3.0')])
    reply = call(probe, '/workcell_sim/inject_fault', InjectFault.Request(fault=bad))
    assert not reply.accepted and 'cooling_factor' in reply.message

    assert sim.stop() == 0
    with open(tmp_path / 'truth' / 'truth.csv') as stream:
        rows = list(csv.DictReader(stream))
    times = [float(row['time']) for row in rows]
    assert len(rows) >= 10 and max(abs(b - a - 0.1) for a, b in zip(times, times[1:])) < 1e-6
    assert 'sensor_dropout:imu' in rows[-1]['faults']


@pytest.mark.parametrize('key, value', [('scenario', 'scenarios/missing.yaml'), ('urdf', 'missing.urdf')])
def test_missing_model_files_are_configuration_errors(start_process, tmp_path, key, value):
    config = isolated_config(tmp_path)
    params_file = config / 'workcell.yaml'
    params = yaml.safe_load(params_file.read_text())
    params['workcell_sim']['ros__parameters'][key] = value
    params_file.write_text(yaml.safe_dump(params))
    sim = start_process('workcell_sim', '--ros-args', '--params-file', str(params_file))
    assert sim.wait(timeout=30) == 2
    assert f'workcell_sim.{key}: file not found' in sim.output()
    assert 'Traceback' not in sim.output()


def test_launcher_starts_the_graph_with_the_simulator(start_process, probe, tmp_path):
    config = isolated_config(tmp_path)
    expected = load_node_table(config).select(with_sim=True)
    probe.subscribe('/twin/synced_frame', SyncedFrame)
    probe.subscribe('/diagnostics_agg', DiagnosticArray)
    probe.subscribe('/twin/joint_states', JointState)
    probe.subscribe('/workcell_sim/joint_states', JointState)
    launcher = start_process(*LAUNCH, '--config-dir', str(config), name='twin_launch')
    # A complete frame: every driver's input (IMU, encoders, scan, temperatures, cell status)
    # reached the synchronizer and is fresh.
    frames = probe.wait_for('/twin/synced_frame', lambda m: m and m[-1].complete, timeout=40)
    assert {s.topic for s in frames[-1].samples} >= {
        'imu/data', 'encoders/joint_states', 'scan', 'cell/status', 'motors/joint_4/temperature'}
    encoders = next(s for s in frames[-1].samples if s.topic == 'encoders/joint_states')
    assert len(encoders.values) == 12 and 'joint_4.effort' in encoders.names
    reporters = [e.name for e in expected if e.name != 'health_monitor']  # it publishes the aggregate
    aggregated = probe.wait_for('/diagnostics_agg', lambda m: m and all(
        any(s.name.startswith(f'{name}:') for s in m[-1].status) for name in reporters), timeout=20)
    levels = {s.name: s.level for s in aggregated[-1].status}
    assert levels['workcell_sim: physics'] != DiagnosticStatus.STALE

    # Fidelity: the twin's joints against the simulator's ground truth, once the drivers' clock
    # estimators have settled, while the simulated cell kept real time. On a busy machine the cell
    # falls behind at times: recording goes on 10 s at a time (at most 40 s) until 10 s of states
    # were taken while it kept up; at least 5 s must be.
    probe.sleep(3.0)
    start = len(probe.messages('/twin/joint_states'))
    for _ in range(4):
        probe.sleep(10.0)
        twin = trajectory(probe.messages('/twin/joint_states')[start:])
        kept = kept_real_time(probe, '/workcell_sim/joint_states', twin.stamps)
        if kept.sum() > 1000:
            break
    report = evaluate(Trajectory(twin.stamps[kept], twin.positions[kept], twin.joint_names),
                      trajectory(probe.messages('/workcell_sim/joint_states')),
                      ArmKinematics.from_urdf(config / 'arm.urdf'))
    assert report.samples > 500, f'{(~kept).sum()} of {kept.size} samples while the cell lagged'
    assert abs(report.latency) < 0.1, report.lines()
    assert max(report.joint_rmse) < 0.02 and report.ee_error_mean < 0.01, report.lines()
    assert launcher.stop() == 0
    assert f'twin_launch: stopped {len(expected)} nodes' in launcher.output()
