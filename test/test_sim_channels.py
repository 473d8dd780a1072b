"""Device channels of the simulated workcell over real ptys, UDP sockets and OPC UA."""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import serial
from asyncua import Client, ua

from harness import free_port, read_serial, wait_for
from twin_core.config import ConfigError, build
from twin_sensors.wire import (
    Ack,
    FrameDecoder,
    LineDecoder,
    MsgType,
    decode_encoder_payload,
    decode_lidar_payload,
    encode_command,
    make_command,
    parse_ack,
    parse_imu_line,
)
from twin_sim.hardware import (
    ChannelsConfig,
    CommandChannel,
    CommandServer,
    EncoderChannel,
    ImuChannel,
    ImuEmitter,
    LidarChannel,
    PlcChannel,
)
from twin_sim.plc import NAMESPACE, PlcServer
from twin_sim.runner import SimRunner
from twin_sim.scenario import Fault, Scenario
from twin_sim.serial_port import EmulatedSerialPort
from twin_sim.settings import SimSettings
from twin_sim.sim_config import WorkcellSimConfig, build_runner
from twin_sim.workcell import Workcell

REPO = Path(__file__).resolve().parents[1]
URDF = REPO / "config" / "arm.urdf"
SCENARIO = REPO / "config" / "scenarios" / "nominal.yaml"


# --------------------------------------------------------------------------- helpers

class UdpClient:
    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(2.0)

    def request(self, datagram: bytes) -> Ack:
        self.socket.sendto(datagram, self.address)
        return parse_ack(self.socket.recv(65536))

    def close(self) -> None:
        self.socket.close()


class FakeDevice:
    """Stand-in for the Workcell in plumbing tests: fixed readings, records commands."""

    def __init__(self) -> None:
        self.settings = SimSettings()
        self.imu_dropped = False
        self.commands: list[tuple[str, object]] = []

    def device_time(self) -> float:
        return 42.0

    def imu_sample(self) -> np.ndarray | None:
        return None if self.imu_dropped else np.array([0.0, 0.0, 9.81, 0.0, 0.0, 0.1])

    def set_speed_override(self, value: float) -> None:
        self.commands.append(("speed_override", value))

    def protective_stop(self) -> None:
        self.commands.append(("stop", None))

    def resume(self) -> None:
        self.commands.append(("resume", None))

    def command_joint_positions(self, positions: np.ndarray) -> None:
        if len(positions) != 4:
            raise ValueError("expected 4 joint positions")
        self.commands.append(("joint_positions", list(positions)))


# --------------------------------------------------------------------------- plumbing


NO_CHANNELS = ChannelsConfig(imu=ImuChannel(enabled=False), encoders=EncoderChannel(enabled=False),
                             lidar=LidarChannel(enabled=False), command=CommandChannel(enabled=False),
                             plc=PlcChannel(enabled=False))


def test_serial_port_publishes_link_and_survives_unplug_replug(tmp_path: Path) -> None:
    link = tmp_path / "dev" / "imu"
    link.parent.mkdir()
    link.symlink_to("/nonexistent")  # stale link from a crashed run
    device = EmulatedSerialPort(link)
    device.open()
    try:
        assert os.readlink(link) == device.device
        with serial.Serial(str(link), timeout=1.0) as reader:
            assert device.write(b"hello\n")
            assert reader.readline() == b"hello\n"
            device.unplug()
            assert not link.exists() and not device.write(b"lost\n")
            with pytest.raises(serial.SerialException):
                reader.read(1)
        device.replug()
        assert os.readlink(link) == device.device
        with serial.Serial(str(link), timeout=1.0) as reader:
            device.write(b"again\n")
            assert reader.readline() == b"again\n"
    finally:
        device.close()
    assert not link.exists()


def test_serial_port_drops_instead_of_blocking_without_reader(tmp_path: Path) -> None:
    device = EmulatedSerialPort(tmp_path / "imu")
    device.open()
    try:
        start = time.monotonic()
        for _ in range(2000):
            device.write(b"x" * 100)
        assert time.monotonic() - start < 1.0
        assert device.bytes_dropped > 0 and device.bytes_dropped % 100 == 0  # whole messages only
        assert device.bytes_written + device.bytes_pending + device.bytes_dropped == 200_000
    finally:
        device.close()


def test_imu_dropout_emits_nothing(tmp_path: Path) -> None:
    emitter = ImuEmitter(ImuChannel(link=str(tmp_path / "imu")))
    device = FakeDevice()
    emitter.open()
    try:
        with serial.Serial(str(tmp_path / "imu"), timeout=0.2) as reader:
            device.imu_dropped = True
            emitter.emit(device)
            device.imu_dropped = False
            emitter.emit(device)
            sample = parse_imu_line(reader.readline())
            assert reader.read(1) == b""
    finally:
        emitter.close()
    assert (emitter.emitted, emitter.dropouts) == (1, 1)
    assert sample.accel == (0.0, 0.0, 9.81) and sample.device_time == 42.0


def test_command_server_acks_and_rejects() -> None:
    server = CommandServer(CommandChannel(port=0))
    device = FakeDevice()
    server.open()
    client = UdpClient(server.address)
    try:
        replies = {}
        for name, datagram in {
            "ok": encode_command(make_command(1, "speed_override", 0.5)),
            "garbage": b"\x00not json",
            "unknown": json.dumps({"seq": 3, "cmd": "self_destruct"}).encode(),
            "refused": encode_command(make_command(4, "joint_positions", [0.1, 0.2])),
            "stop": encode_command(make_command(5, "stop")),
        }.items():
            client.socket.sendto(datagram, server.address)
            assert wait_for(lambda: server.poll(device) == 1, 1.0)
            replies[name] = parse_ack(client.socket.recv(65536))
    finally:
        client.close()
        server.close()
    assert replies["ok"] == Ack(1, True, None)
    assert replies["garbage"].seq is None and "malformed_json" in replies["garbage"].error
    assert replies["unknown"].seq == 3 and "bad_cmd" in replies["unknown"].error
    assert replies["refused"].seq == 4 and "expected 4 joint positions" in replies["refused"].error
    assert replies["stop"] == Ack(5, True, None)
    assert device.commands == [("speed_override", 0.5), ("stop", None)]
    assert (server.accepted, server.rejected) == (2, 3)


@pytest.mark.parametrize("host", ["192.168.10.20", "10.200.0.2", "0.0.0.0", "twin-edge.plant.example"])
def test_channels_accept_addresses_on_the_network(host: str) -> None:
    """The simulator is a stand-in device: it may run on another machine than the twin."""
    assert LidarChannel(host=host).host == host
    assert CommandChannel(host=host).host == host
    assert PlcChannel(endpoint=f"opc.tcp://{host}:4840/twin/plc").endpoint == f"opc.tcp://{host}:4840/twin/plc"


@pytest.mark.parametrize("host, message", [
    ("10.0.0.256", "host '10.0.0.256' is not a valid IPv4 address"),
    ("10.0.0.5:7502", "without scheme or port"),
    ("twin edge", "host must be an IP address or a host name"),
    ("::1", "the socket is IPv4"),
])
def test_udp_channels_reject_malformed_hosts(host: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        LidarChannel(host=host)
    with pytest.raises(ValueError, match=re.escape(message)):
        CommandChannel(host=host)


@pytest.mark.parametrize("endpoint, message", [
    ("opc.tcp://10.0.0.5/twin/plc", "the port is missing"),
    ("opc.tcp://10.0.0.5:70000/twin/plc", "the port must be a number in 1..65535"),
    ("http://10.0.0.5:4840/twin/plc", "endpoint must look like opc.tcp://<host>:<port>/<path>"),
    ("opc.tcp://10.0.0.500:4840/twin/plc", "host '10.0.0.500' is not a valid IPv4 address"),
])
def test_plc_channel_rejects_malformed_endpoints(endpoint: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        PlcChannel(endpoint=endpoint)


def test_channels_config_builds_from_yaml_mapping() -> None:
    config = build(ChannelsConfig, {"imu": {"rate_hz": 200.0}, "plc": {"enabled": False},
                                    "lidar": {"port": 9000}}, "channels")
    assert config.imu == ImuChannel(rate_hz=200.0) and not config.plc.enabled and config.lidar.port == 9000
    assert config.encoders == EncoderChannel()
    with pytest.raises(ConfigError, match="channels.imu.rate: unknown key"):
        build(ChannelsConfig, {"imu": {"rate": 200.0}}, "channels")
    with pytest.raises(ConfigError, match="channels.gps: unknown key"):
        build(ChannelsConfig, {"gps": {}}, "channels")
    with pytest.raises(ConfigError, match=r"channels.lidar: host '10.0.0.1.2' is not a valid IPv4 address"):
        build(ChannelsConfig, {"lidar": {"host": "10.0.0.1.2"}}, "channels")
    assert build(ChannelsConfig, {"lidar": {"host": "10.0.0.1"}}, "channels").lidar.host == "10.0.0.1"


def test_runner_as_fast_as_possible_emits_on_simulated_time(tmp_path: Path) -> None:
    workcell = Workcell(URDF, Scenario.from_file(SCENARIO), SimSettings(), seed=3)
    config = ChannelsConfig(imu=ImuChannel(link=str(tmp_path / "imu"), rate_hz=1000),
                            encoders=EncoderChannel(link=str(tmp_path / "enc"), rate_hz=300),
                            lidar=LidarChannel(enabled=False), command=CommandChannel(enabled=False),
                            plc=PlcChannel(enabled=False))
    runner = SimRunner(workcell, config, speed=math.inf)
    start = time.monotonic()
    runner.run(duration=2.0)
    assert time.monotonic() - start < 10.0
    assert runner.truth().time == pytest.approx(2.001, abs=1e-9)
    channels = runner.stats()["channels"]
    assert channels["imu"]["emitted"] == pytest.approx(2000, abs=1)
    assert channels["encoders"]["emitted"] == pytest.approx(600, abs=1)
    assert not (tmp_path / "imu").exists() and not (tmp_path / "enc").exists()


def test_devices_clock_keeps_to_real_time_when_a_starved_simulation_skips_ahead(tmp_path: Path) -> None:
    workcell = Workcell(URDF, Scenario.from_file(SCENARIO), SimSettings(), seed=3)
    runner = SimRunner(workcell, NO_CHANNELS, speed=1.0, max_lag=0.1)
    offsets = []  # wall time the run maps the current instant to, minus the devices' clock

    def sample() -> None:
        offsets.append(runner.wall_time_of(workcell.time) - workcell.device_time())
        if len(offsets) == 5:
            time.sleep(0.3)  # the simulation thread is starved for 0.3 s
    runner.every(0.05, sample)
    runner.run(duration=1.0)
    assert runner.stats()["resyncs"] == 1
    # The run re-anchored simulated time ~0.3 s later on the wall clock; the devices' clock moved
    # with it, so a driver mapping device time to wall time sees no clock step.
    assert np.ptp(offsets) < 1e-3, offsets


def test_the_pacing_log_records_when_each_step_was_due_and_how_late_it_ran(tmp_path: Path) -> None:
    workcell = Workcell(URDF, Scenario.from_file(SCENARIO), SimSettings(), seed=3)
    runner = SimRunner(workcell, NO_CHANNELS, speed=1.0, pacing_log=tmp_path / "pacing")
    calls = []

    def stall_once() -> None:
        calls.append(time.time())
        if len(calls) == 5:
            time.sleep(0.08)  # the simulation thread is held up: the next steps run late
    runner.every(0.05, stall_once)
    start = time.time()
    runner.run(duration=0.5)
    due, lag = np.fromfile(tmp_path / "pacing", dtype="<f8").reshape(-1, 2).T
    assert len(due) > 10 and np.all(np.diff(due) > 0) and np.all(lag >= 0.0)
    assert start - 0.01 < due[0] and due[-1] < time.time()
    after_stall = due > calls[4]
    assert 0.07 < lag[after_stall][0] < 0.2, lag[after_stall][:3]
    assert np.median(lag[~after_stall]) < 0.01


def test_a_pacing_log_that_cannot_be_written_does_not_stop_the_run(caplog: pytest.LogCaptureFixture) -> None:
    workcell = Workcell(URDF, Scenario.from_file(SCENARIO), SimSettings(), seed=3)
    runner = SimRunner(workcell, NO_CHANNELS, speed=1.0, pacing_log=Path("/dev/full"))
    runner.run(duration=0.2)
    assert runner.truth().time == pytest.approx(0.201, abs=1e-6)
    assert "pacing log /dev/full: [Errno 28] No space left on device; no longer recorded" in caplog.text


# --------------------------------------------------------------------------- the running cell


@dataclass
class Cell:
    runner: SimRunner
    config: ChannelsConfig
    lidar_socket: socket.socket
    command_address: tuple[str, int]


@pytest.fixture(scope="module")
def cell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cell]:
    links = tmp_path_factory.mktemp("links")
    lidar_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    lidar_socket.bind(("127.0.0.1", 0))
    config = ChannelsConfig(
        imu=ImuChannel(link=str(links / "imu")),
        encoders=EncoderChannel(link=str(links / "encoders")),
        lidar=LidarChannel(port=lidar_socket.getsockname()[1]),
        command=CommandChannel(port=0),
        plc=PlcChannel(endpoint=f"opc.tcp://127.0.0.1:{free_port()}/twin/plc", publish_rate_hz=20),
    )
    workcell = Workcell(URDF, Scenario.from_file(SCENARIO), SimSettings(), seed=1)
    runner = SimRunner(workcell, config, speed=1.0)
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, kwargs={"stop_event": stop}, name="sim")
    thread.start()
    try:
        assert wait_for(lambda: runner.stats()["running"] and Path(config.imu.link).exists(), 15.0)
        yield Cell(runner, config, lidar_socket, runner.command_server.address)
    finally:
        stop.set()
        thread.join(10.0)
        lidar_socket.close()
    assert not thread.is_alive()
    assert not Path(config.imu.link).exists() and not Path(config.encoders.link).exists()


def test_imu_lines_arrive_at_1khz_without_loss(cell: Cell) -> None:
    lines = LineDecoder().feed(read_serial(Path(cell.config.imu.link), 1.0))
    samples = [parse_imu_line(line) for line in lines[1:]]  # the first may be a partial line
    times = np.array([s.device_time for s in samples])
    assert 900 <= len(samples) <= 1100
    assert np.allclose(np.diff(times), 0.001, atol=2e-6), "IMU lines lost or out of order"
    accel_norm = np.linalg.norm([s.accel for s in samples], axis=1)
    assert 8.0 < np.median(accel_norm) < 12.0
    assert np.all(np.abs([s.gyro for s in samples]) < 10.0)


def test_encoder_frames_arrive_at_500hz(cell: Cell) -> None:
    decoder = FrameDecoder()
    frames = decoder.feed(read_serial(Path(cell.config.encoders.link), 0.4))
    samples = [decode_encoder_payload(f.payload) for f in frames if f.msg_type == MsgType.ENCODERS]
    # Opening the port flushes what the kernel held; frames still in the device's transmit buffer
    # arrive first, so the stream is contiguous from the last gap on.
    times = np.array([s.device_time for s in samples])
    gaps = np.flatnonzero(np.abs(np.diff(times) - 0.002) > 2e-6)
    steady = samples[int(gaps.max(initial=-1)) + 1:]
    assert len(gaps) <= 1 and decoder.crc_errors == 0
    assert 160 <= len(steady) <= 240
    assert all(s.positions.shape == (4,) and s.counts_per_rev == 2**20 for s in samples)
    truth = cell.runner.truth()
    assert np.allclose(samples[-1].positions, truth.q, atol=0.2)


def test_lidar_scans_arrive_over_udp(cell: Cell) -> None:
    cell.lidar_socket.settimeout(1.0)
    decoder = FrameDecoder()
    scans = []
    for _ in range(5):
        scans += [decode_lidar_payload(f.payload) for f in decoder.feed(cell.lidar_socket.recv(65536))]
    assert len(scans) == 5 and decoder.crc_errors == 0
    assert np.allclose(np.diff([s.device_time for s in scans]), 0.05, atol=1e-6)
    scan = scans[-1]
    assert len(scan.ranges) == 360 and scan.angle_increment == pytest.approx(math.radians(1.0), rel=1e-6)
    finite = scan.ranges[np.isfinite(scan.ranges)]
    assert len(finite) > 300, "the fenced cell should return most beams"
    assert np.all((finite >= scan.range_min) & (finite <= scan.range_max))


def test_command_round_trip_reaches_the_workcell(cell: Cell) -> None:
    client = UdpClient(cell.command_address)
    runner = cell.runner
    try:
        assert client.request(encode_command(make_command(10, "stop"))) == Ack(10, True, None)
        assert wait_for(lambda: runner.truth().stopped, 1.0)
        assert client.request(encode_command(make_command(11, "resume"))) == Ack(11, True, None)
        bad = client.request(b'{"seq": 12, "cmd": "speed_override", "value": 7}')
        assert bad.seq == 12 and not bad.ok and "within [0, 1]" in bad.error
        wrong_length = client.request(encode_command(make_command(13, "joint_positions", [0.0])))
        assert not wrong_length.ok and "expected 4" in wrong_length.error
        assert client.request(encode_command(make_command(14, "speed_override", 0.8))).ok
        assert wait_for(lambda: runner.truth().speed_override == 0.8 and not runner.truth().stopped, 1.0)
    finally:
        client.close()
    counters = runner.stats()["channels"]["command"]
    assert counters["accepted"] >= 3 and counters["rejected"] >= 2


def test_plc_serves_temperatures_and_takes_speed_override(cell: Cell) -> None:
    async def session() -> tuple[list[float], float, int, type[Exception] | None]:
        async with Client(cell.config.plc.endpoint, timeout=5) as client:
            index = await client.get_namespace_index(NAMESPACE)
            sensors = [client.get_node(ua.NodeId(f"Workcell.Motors.{joint}.Temperature", index))
                       for joint in cell.runner.workcell.joint_names]
            for _ in range(50):  # the PLC's first values follow its first publish cycle
                temperatures = [await sensor.read_value() for sensor in sensors]
                if not any(math.isnan(t) for t in temperatures):
                    break
                await asyncio.sleep(0.05)
            device_time = await client.get_node(ua.NodeId("Workcell.DeviceTime", index)).read_value()
            task_id = await client.get_node(ua.NodeId("Workcell.TaskId", index)).read_value()
            override = client.get_node(ua.NodeId("Workcell.SpeedOverride", index))
            await override.write_value(ua.DataValue(ua.Variant(0.3, ua.VariantType.Double)))
            rejected = None
            try:
                await override.write_value(ua.DataValue(ua.Variant(1.5, ua.VariantType.Double)))
            except ua.UaStatusCodeError as error:
                rejected = type(error)
            return temperatures, device_time, task_id, rejected

    temperatures, device_time, task_id, rejected = asyncio.run(session())
    assert len(temperatures) == 4 and all(20.0 < t < 80.0 for t in temperatures)
    assert device_time > 0.0 and isinstance(task_id, int)
    assert rejected is ua.uaerrors.BadOutOfRange
    assert wait_for(lambda: cell.runner.truth().speed_override == 0.3, 1.0)
    assert cell.runner.stats()["channels"]["plc"]["rejected_writes"] == 1


def test_runner_keeps_real_time_and_reports_rates(cell: Cell) -> None:
    assert wait_for(lambda: cell.runner.stats()["channels"]["imu"]["rate_hz"] > 0, 3.0)
    stats = cell.runner.stats()
    assert stats["real_time_factor"] == pytest.approx(1.0, abs=0.05)
    assert stats["resyncs"] == 0
    for name, target in (("imu", 1000.0), ("encoders", 500.0), ("lidar", 20.0)):
        assert stats["channels"][name]["rate_hz"] == pytest.approx(target, rel=0.05)


def test_injected_fault_is_forwarded_to_the_simulation_thread(cell: Cell) -> None:
    runner = cell.runner
    dropouts_before = runner.stats()["channels"]["imu"]["dropouts"]
    scheduled = runner.inject_fault(Fault("sensor_dropout", "imu", duration=0.2)).result(1.0)
    assert scheduled.start is not None
    assert wait_for(lambda: "sensor_dropout:imu" in runner.truth().active_faults, 1.0)
    assert wait_for(lambda: "sensor_dropout:imu" not in runner.truth().active_faults, 2.0)
    assert runner.stats()["channels"]["imu"]["dropouts"] - dropouts_before == pytest.approx(200, abs=2)


def test_plc_start_reports_a_busy_port() -> None:
    threads_before = set(threading.enumerate())
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        plc = PlcServer(PlcChannel(endpoint=f"opc.tcp://127.0.0.1:{occupant.getsockname()[1]}/twin/plc"), ["j"])
        with pytest.raises(OSError, match="address already in use"):
            plc.start()
    assert set(threading.enumerate()) <= threads_before


def test_the_pacing_logs_directory_is_created_and_an_unwritable_path_refused_at_start(tmp_path: Path) -> None:
    log = tmp_path / "bench" / "pacing"
    build_runner(WorkcellSimConfig(pacing_log=str(log), channels=NO_CHANNELS))
    assert log.is_file()
    with pytest.raises(IsADirectoryError):
        build_runner(WorkcellSimConfig(pacing_log=str(tmp_path), channels=NO_CHANNELS))
