"""twin_anomaly frames: synchronized frames of a twin_record bag as a labelled CSV."""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from rclpy.serialization import serialize_message
from std_msgs.msg import Header

from twin_anomaly.anomaly_cli import main
from twin_anomaly.bag_frames import FRAMES, TRUTH, TYPES
from twin_bag.config import RecorderConfig
from twin_bag.recorder import Recording
from twin_core.channels import read_csv
from twin_core.stamps import NS_PER_S, from_seconds
from twin_interfaces.msg import SensorSample, SyncedFrame, WorkcellTruth
from twin_ros.stamps import to_msg

PREFIXES = os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep)
T0 = 1_767_225_600


def stamp(t: float) -> Time:
    return to_msg(T0 * NS_PER_S + from_seconds(t))


def frame(t: float, stale: bool) -> SyncedFrame:
    imu = SensorSample(topic='imu/data', type='sensor_msgs/msg/Imu', names=['angular_velocity.x'], values=[t],
                       quality=SensorSample.QUALITY_STALE if stale else SensorSample.QUALITY_INTERPOLATED)
    scan = SensorSample(topic='scan', type='sensor_msgs/msg/LaserScan', names=[], values=[2.0, 0.5, math.inf],
                        quality=SensorSample.QUALITY_HELD)
    return SyncedFrame(header=Header(stamp=stamp(t)), samples=[imu, scan], complete=not stale)


def test_frames_of_a_bag_become_a_labelled_csv(tmp_path: Path) -> None:
    recording = Recording(RecorderConfig(output=str(tmp_path / 'bag'), topics=(FRAMES, TRUTH),
                                         types=(TYPES[FRAMES], TYPES[TRUTH]), qos=('reliable', 'reliable')),
                          PREFIXES, T0 * NS_PER_S)
    for k in range(100):  # 1 s of frames; the IMU is stale for frames 40-49
        recording.write(FRAMES, serialize_message(frame(k / 100, 40 <= k < 50)), T0 * NS_PER_S + k * 10**7)
    for k in range(10):  # a fault active from 0.5 s to 0.8 s
        faults = ['collision:link_3'] if 5 <= k < 8 else []
        truth = WorkcellTruth(header=Header(stamp=stamp(k / 10)), active_faults=faults)
        recording.write(TRUTH, serialize_message(truth), T0 * NS_PER_S + k * 10**8 + 1)
    recording.close()

    assert main(['frames', '--bag', str(tmp_path / 'bag'), '--out', str(tmp_path / 'frames.csv')]) == 0
    series = read_csv(tmp_path / 'frames.csv', label_column='label')
    assert series.names == ('imu.angular_velocity.x', 'scan.min')
    assert np.allclose(series.time - T0, np.arange(100) / 100, atol=1e-5)
    imu = series.values[:, 0]
    assert np.isnan(imu[40:50]).all() and np.allclose(imu[:40], np.arange(40) / 100, atol=1e-6)
    assert (series.values[:, 1] == 0.5).all()  # the scan's nearest finite range
    assert np.flatnonzero(series.labels).tolist() == list(range(50, 80))


def test_a_bag_without_frames_is_a_clear_error(tmp_path: Path, capsys) -> None:
    recording = Recording(RecorderConfig(output=str(tmp_path / 'bag'), topics=(TRUTH,), types=(TYPES[TRUTH],),
                                         qos=('reliable',)), PREFIXES, T0 * NS_PER_S)
    recording.write(TRUTH, serialize_message(WorkcellTruth()), T0 * NS_PER_S)
    recording.close()
    with pytest.raises(SystemExit) as exit_info:
        main(['frames', '--bag', str(tmp_path / 'bag'), '--out', str(tmp_path / 'frames.csv')])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert 'twin_anomaly frames: error:' in error and 'no /twin/synced_frame messages' in error
