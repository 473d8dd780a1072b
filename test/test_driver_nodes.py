"""Driver node processes against the simulated cell's real channels (ptys, UDP, OPC UA)."""
from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import qos_profile_sensor_data
from sandbox import free_port
from sensor_msgs.msg import Imu, JointState, LaserScan, Temperature
from trajectory_msgs.msg import JointTrajectory

from twin_core.stamps import from_msg, to_seconds
from twin_core.trajectory import JointPlan
from twin_interfaces.msg import CellStatus
from twin_sensors.plan_node import PLAN_QOS
from twin_sim.hardware import (
    ChannelsConfig,
    CommandChannel,
    EncoderChannel,
    ImuChannel,
    LidarChannel,
    PlanChannel,
    PlcChannel,
)
from twin_sim.plc import PlcServer, PlcState
from twin_sim.runner import SimRunner
from twin_sim.scenario import Scenario
from twin_sim.settings import SimSettings
from twin_sim.workcell import Workcell

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config"
JOINTS = ["joint_1", "joint_2", "joint_3", "joint_4"]


def driver(name: str, **parameters: object) -> list[str]:
    """Command line of a driver with its params file and overrides."""
    overrides = [arg for key, value in parameters.items() for arg in ("-p", f"{key}:={value}")]
    return [name, "--ros-args", "--params-file", str(CONFIG / f"{name}.yaml"), *overrides]


def diagnostics_of(probe, name: str) -> dict[str, str]:
    """Key/values of the latest device status whose name starts with ``name`` (not its workers')."""
    statuses = [s for m in probe.messages("/diagnostics") for s in m.status
                if s.name.startswith(name) and not s.name.endswith(": workers")]
    return {kv.key: kv.value for kv in statuses[-1].values} | {"_level": statuses[-1].level,
                                                                 "_name": statuses[-1].name}


def delivered(cell: Cell, probe, channel: str, topic: str, seconds: float) -> tuple[int, int]:
    """(messages the cell emitted, messages the probe received) over ``seconds``."""
    emitted, received = cell.runner.stats()["channels"][channel]["emitted"], len(probe.messages(topic))
    time.sleep(seconds)
    return (cell.runner.stats()["channels"][channel]["emitted"] - emitted,
            len(probe.messages(topic)) - received)


@dataclass
class Cell:
    runner: SimRunner
    config: ChannelsConfig


@pytest.fixture(scope="module")
def cell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cell]:
    links = tmp_path_factory.mktemp("links")
    config = ChannelsConfig(
        imu=ImuChannel(link=str(links / "imu")), encoders=EncoderChannel(link=str(links / "encoders")),
        lidar=LidarChannel(port=free_port(socket.SOCK_DGRAM)), command=CommandChannel(enabled=False, port=0),
        plan=PlanChannel(port=free_port(socket.SOCK_DGRAM)),
        plc=PlcChannel(endpoint=f"opc.tcp://127.0.0.1:{free_port(socket.SOCK_STREAM)}/twin/plc",
                       publish_rate_hz=20))
    settings = SimSettings(device_clock_offset=5.0, device_clock_drift_ppm=100.0)
    workcell = Workcell(REPO / "config" / "arm.urdf", Scenario.from_file(CONFIG / "scenarios" / "nominal.yaml"),
                        settings, seed=2)
    runner = SimRunner(workcell, config, speed=1.0)
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, kwargs={"stop_event": stop}, name="sim")
    thread.start()
    try:
        deadline = time.monotonic() + 15.0
        while not (runner.stats()["running"] and Path(config.imu.link).exists()):
            assert time.monotonic() < deadline, "simulated cell did not start"
            time.sleep(0.05)
        yield Cell(runner, config)
    finally:
        stop.set()
        thread.join(10.0)


def test_imu_driver_publishes_1khz_calibrated_imu(cell: Cell, start_process, probe) -> None:
    probe.subscribe("/imu/data", Imu, qos_profile_sensor_data)
    probe.subscribe("/diagnostics", DiagnosticArray)
    bias = [0.0, 0.0, 100.0, 0.0, 0.0, 0.0]  # far outside what the cell's IMU reads
    start_process(*driver("imu_driver", **{"serial.port": cell.config.imu.link, "noise.rate_hz": 1000.0,
                                            "calibration.bias": str(bias)}))
    probe.wait_for("/imu/data", lambda m: len(m) > 500, 15.0)
    dropped = cell.runner.stats()["channels"]["imu"]["bytes_dropped"]
    emitted, received = delivered(cell, probe, "imu", "/imu/data", 2.0)
    # the driver keeps up (the pty never fills); the in-process probe shares its GIL with the simulation
    assert cell.runner.stats()["channels"]["imu"]["bytes_dropped"] == dropped
    assert emitted > 1000 and received > 0.5 * emitted
    message = probe.messages("/imu/data")[-1]
    assert message.header.frame_id == "imu_link" and message.orientation_covariance[0] == -1.0
    assert -120.0 < message.linear_acceleration.z < -80.0
    assert message.linear_acceleration_covariance[0] == pytest.approx(0.002 ** 2 * 1000.0)
    received = probe.messages("/imu/data")
    arrived = probe.arrivals("/imu/data")[len(received) - 1]  # the newest message's arrival, monotonic
    stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in received[-500:]]
    assert all(b > a for a, b in zip(stamps, stamps[1:]))
    assert abs(stamps[-1] - (time.time() - (time.monotonic() - arrived))) < 0.5  # host clock; the device's is 5 s off
    probe.wait_for("/diagnostics", lambda m: "clock_drift_ppm" in diagnostics_of(probe, "imu_driver"), 25.0)
    values = diagnostics_of(probe, "imu_driver")
    assert values["_name"] == f"imu_driver: {cell.config.imu.link}" and values["connected"] == "True"
    # The rate follows what the in-process simulator emits, which lags while it shares the GIL
    # with the probe: some second of the next ten shows the full rate.
    probe.wait_for("/diagnostics", lambda m: float(diagnostics_of(probe, "imu_driver")["rate_hz"]) > 800.0, 10.0)
    time.sleep(5.0)  # a few seconds of envelope: the sim's pacing to the wall clock adds its own jitter
    # Seconds of live data pin the slope to tens of ppm (synthetic clocks: ±2 ppm, test_sensor_drivers).
    assert float(diagnostics_of(probe, "imu_driver")["clock_drift_ppm"]) == pytest.approx(100.0, abs=80.0)


def test_encoder_driver_publishes_joint_states(cell: Cell, start_process, probe) -> None:
    probe.subscribe("/encoders/joint_states", JointState, qos_profile_sensor_data)
    probe.subscribe("/diagnostics", DiagnosticArray)
    start_process(*driver("encoder_driver", **{"serial.port": cell.config.encoders.link}))
    probe.wait_for("/encoders/joint_states", lambda m: len(m) > 200, 15.0)
    emitted, received = delivered(cell, probe, "encoders", "/encoders/joint_states", 2.0)
    assert emitted > 500 and received == pytest.approx(emitted, rel=0.05)
    message = probe.messages("/encoders/joint_states")[-1]
    assert list(message.name) == JOINTS and len(message.position) == len(message.effort) == 4
    assert list(message.position) == pytest.approx(list(cell.runner.truth().q), abs=0.2)
    probe.wait_for("/diagnostics", lambda m: any(s.name.startswith("encoder_driver") for a in m for s in a.status),
                   5.0)
    values = diagnostics_of(probe, "encoder_driver")
    assert values["errors.crc"] == "0" and values["connected"] == "True"


def test_lidar_driver_publishes_scans(cell: Cell, start_process, probe) -> None:
    probe.subscribe("/scan", LaserScan, qos_profile_sensor_data)
    probe.subscribe("/diagnostics", DiagnosticArray)
    start_process(*driver("lidar_driver", **{"udp.port": cell.config.lidar.port}))
    probe.wait_for("/scan", lambda m: len(m) >= 20, 15.0)
    emitted, received = delivered(cell, probe, "lidar", "/scan", 2.0)
    assert emitted >= 20 and received == pytest.approx(emitted, abs=2)
    scan = probe.messages("/scan")[-1]
    assert scan.header.frame_id == "laser" and len(scan.ranges) == 360
    assert scan.angle_max == pytest.approx(scan.angle_min + 359 * scan.angle_increment)
    finite = [r for r in scan.ranges if math.isfinite(r)]
    assert len(finite) > 300 and all(scan.range_min <= r <= scan.range_max for r in finite)
    probe.wait_for("/diagnostics", lambda m: any(s.name.startswith("lidar_driver") for a in m for s in a.status),
                   5.0)
    assert diagnostics_of(probe, "lidar_driver")["_name"] == f"lidar_driver: udp://127.0.0.1:{cell.config.lidar.port}"


def test_plan_driver_publishes_the_plan_and_desired_joint_states(cell: Cell, start_process, probe) -> None:
    probe.subscribe("/plan/joint_trajectory", JointTrajectory, PLAN_QOS)
    probe.subscribe("/plan/desired_joint_states", JointState, qos_profile_sensor_data)
    probe.subscribe("/diagnostics", DiagnosticArray)
    start_process(*driver("plan_driver", **{"udp.port": cell.config.plan.port}))
    probe.wait_for("/plan/desired_joint_states", lambda m: len(m) >= 100, 15.0)
    emitted, received = delivered(cell, probe, "plan", "/plan/desired_joint_states", 2.0)
    assert emitted >= 150 and received == pytest.approx(emitted, rel=0.05)
    plan, desired = probe.messages("/plan/joint_trajectory")[-1], probe.messages("/plan/desired_joint_states")[-1]
    assert list(plan.joint_names) == JOINTS == list(desired.name) and len(plan.points) == 7
    first = plan.points[0]
    assert first.time_from_start.sec == first.time_from_start.nanosec == 0
    assert list(first.positions) == pytest.approx(list(cell.runner.truth().q), abs=0.3)
    # the plan predicts the desired states that follow it (quintic between segment ends)
    last = from_msg(desired.header.stamp)
    joint_plan = JointPlan.from_message(next(m for m in reversed(probe.messages("/plan/joint_trajectory"))
                                             if to_seconds(last - from_msg(m.header.stamp)) > 1.0))
    later = [m for m in probe.messages("/plan/desired_joint_states")
             if 0.1 < to_seconds(from_msg(m.header.stamp) - joint_plan.stamp) < 1.0]
    # 90 at 100 Hz, fewer where the simulator fell behind the wall clock and skipped ahead (0.46 s
    # once on a loaded machine): the desired states of the skipped time were never sent
    assert len(later) > 30
    for message in later:
        sample = joint_plan.sample(to_seconds(from_msg(message.header.stamp) - joint_plan.stamp))
        assert list(message.position) == pytest.approx(sample.position[0].tolist(), abs=0.02)
    probe.wait_for("/diagnostics", lambda m: any(s.name.startswith("plan_driver") for a in m for s in a.status),
                   5.0)
    values = diagnostics_of(probe, "plan_driver")
    assert values["mode"] == "auto" and values["errors.crc"] == "0"


def test_plc_driver_publishes_temperatures_and_cell_status(cell: Cell, start_process, probe) -> None:
    for joint in JOINTS:
        probe.subscribe(f"/motors/{joint}/temperature", Temperature, qos_profile_sensor_data)
    probe.subscribe("/cell/status", CellStatus)
    start_process(*driver("plc_driver", **{"opcua.endpoint": cell.config.plc.endpoint}))
    probe.wait_for("/cell/status", lambda m: len(m) >= 5, 20.0)
    for joint in JOINTS:
        (message, *_) = probe.wait_for(f"/motors/{joint}/temperature", lambda m: len(m) > 0, 5.0)
        assert message.header.frame_id == f"{joint}_motor" and 20.0 < message.temperature < 80.0
        assert message.variance == 0.25
    status = probe.messages("/cell/status")[-1]
    assert 0.0 <= status.task_progress <= 1.0 and status.speed_override == pytest.approx(1.0)


def test_plc_driver_resubscribes_after_a_server_restart(start_process, probe) -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_port(socket.SOCK_STREAM)}/twin/plc"
    probe.subscribe("/cell/status", CellStatus)
    probe.subscribe("/diagnostics", DiagnosticArray)

    def serve(task_id: int) -> PlcServer:
        server = PlcServer(PlcChannel(endpoint=endpoint, publish_rate_hz=20), JOINTS)
        server.start()
        server.publish(PlcState([30.0] * 4, 0.5, False, task_id, 0.1, 1.0))
        return server

    start_process(*driver("plc_driver", **{"opcua.endpoint": endpoint}))
    time.sleep(1.0)  # the driver starts before its server: it must keep retrying
    server = serve(task_id=1)
    try:
        probe.wait_for("/cell/status", lambda m: any(s.task_id == 1 for s in m), 20.0)
    finally:
        server.stop()
    probe.wait_for("/diagnostics", lambda m: diagnostics_of(probe, "plc_driver")["connected"] == "False", 15.0)
    server = serve(task_id=2)
    try:
        probe.wait_for("/cell/status", lambda m: any(s.task_id == 2 for s in m), 20.0)
        probe.wait_for("/diagnostics", lambda m: diagnostics_of(probe, "plc_driver")["reconnects"] == "1", 5.0)
    finally:
        server.stop()
