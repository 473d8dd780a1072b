"""twin_fidelity: validate the twin against the simulator's ground truth.

Live (default): record twin/joint_states and the simulator's ground truth (``--truth-topic``:
/workcell_sim/joint_states at its 100 Hz, or /workcell_sim/truth) for ``--duration`` s, then
report (``--record DIR`` also writes twin.csv and truth.csv). Offline: ``--twin-csv`` and
``--truth-csv`` (``time`` and ``q_<joint>`` columns, as the simulator's truth.csv). Where the
camera check runs, its discrepancies (twin/camera/discrepancy; ``--record``: camera.csv, at each
frame's stamp; offline: ``--camera-csv``) are summarised beside.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from twin_core.kinematics import ArmKinematics
from twin_core.stamps import from_msg, to_seconds
from twin_core.urdf import urdf_file
from twin_state.fidelity import (
    Trajectory,
    camera_lines,
    evaluate,
    read_discrepancies,
    read_trajectory,
    write_discrepancies,
    write_trajectory,
)
from twin_state.visual_check import DISCREPANCIES

TRUTH = 'workcell_sim/truth'
TRUTH_JOINT_STATES = 'workcell_sim/joint_states'
CAMERA = 'twin/camera/discrepancy'


def record(duration: float, truth_topic: str, settle: float = 1.0
           ) -> tuple[Trajectory, Trajectory, list[tuple[float, list[float]]]]:
    """Twin and truth joint trajectories and the camera check's discrepancies (the frame's stamp,
    values) received during ``duration`` s, from ``settle`` s after start (discovery and this
    process's own start-up load a small machine while they last).
    """
    import rclpy
    from sensor_msgs.msg import JointState

    from twin_interfaces.msg import CameraDiscrepancy, WorkcellTruth

    rclpy.init()
    node = rclpy.create_node('twin_fidelity')
    twin: list[tuple[float, list[str], list[float]]] = []
    truth: list[tuple[float, list[str], list[float]]] = []

    start = time.monotonic() + settle

    def keep(samples: list, message: JointState | WorkcellTruth, names: list[str]) -> None:
        if time.monotonic() >= start:
            samples.append((to_seconds(from_msg(message.header.stamp)), list(names), list(message.position)))

    camera: list[tuple[float, list[float]]] = []
    node.create_subscription(JointState, 'twin/joint_states', lambda m: keep(twin, m, m.name), 100)
    node.create_subscription(CameraDiscrepancy, CAMERA, lambda m: camera.append((
        to_seconds(from_msg(m.header.stamp)), [getattr(m, name) for name in DISCREPANCIES]))
        if time.monotonic() >= start else None, 10)
    if truth_topic == TRUTH:
        node.create_subscription(WorkcellTruth, TRUTH, lambda m: keep(truth, m, m.joint_names), 100)
    else:
        node.create_subscription(JointState, truth_topic, lambda m: keep(truth, m, m.name), 100)
    deadline = start + duration
    try:
        while time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return _trajectory(twin, 'twin/joint_states'), _trajectory(truth, truth_topic), camera


def _trajectory(samples: list[tuple[float, list[str], list[float]]], topic: str) -> Trajectory:
    if len(samples) < 2:
        raise ValueError(f'{topic}: {len(samples)} messages received')
    samples.sort(key=lambda sample: sample[0])
    return Trajectory(np.array([s[0] for s in samples]), np.array([s[2] for s in samples]),
                      tuple(samples[0][1]))


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--duration', type=float, default=10.0, help='live recording time (s)')
    parser.add_argument('--truth-topic', choices=(TRUTH_JOINT_STATES, TRUTH),
                        default=TRUTH_JOINT_STATES, help='ground-truth topic')
    parser.add_argument('--record', type=Path, help='directory for twin.csv and truth.csv')
    parser.add_argument('--twin-csv', type=Path, help='offline: twin trajectory')
    parser.add_argument('--truth-csv', type=Path, help='offline: truth trajectory')
    parser.add_argument('--camera-csv', type=Path, help='offline: the camera check\'s discrepancies')
    parser.add_argument('--max-lag', type=float, default=0.5, help='latency search range (s)')
    parser.add_argument('--urdf', type=Path, default=urdf_file())
    arguments = parser.parse_args(argv)
    try:
        if arguments.twin_csv or arguments.truth_csv:
            if not (arguments.twin_csv and arguments.truth_csv):
                parser.error('offline mode needs both --twin-csv and --truth-csv')
            twin, truth = read_trajectory(arguments.twin_csv), read_trajectory(arguments.truth_csv)
            camera = read_discrepancies(arguments.camera_csv) if arguments.camera_csv else \
                np.empty((0, len(DISCREPANCIES)))
        else:
            twin, truth, received = record(arguments.duration, arguments.truth_topic)
            camera = np.array([values for _, values in received]).reshape(-1, len(DISCREPANCIES))
            if arguments.record:
                arguments.record.mkdir(parents=True, exist_ok=True)
                write_trajectory(arguments.record / 'twin.csv', twin)
                write_trajectory(arguments.record / 'truth.csv', truth)
                if received:
                    write_discrepancies(arguments.record / 'camera.csv', [t for t, _ in received], camera)
        report = evaluate(twin, truth, ArmKinematics.from_urdf(arguments.urdf), arguments.max_lag)
    except (OSError, ValueError) as error:
        print(f'twin_fidelity: {error}', file=sys.stderr)
        return 1
    print('\n'.join(report.lines() + camera_lines(camera)))
    return 0
