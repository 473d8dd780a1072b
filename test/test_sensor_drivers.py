"""Driver cores: serial/UDP readers on real ptys and sockets, parsing, calibration, clock estimation."""
from __future__ import annotations

import math
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import wait_for
from twin_sensors.encoders import EncoderConfig, EncoderStream
from twin_sensors.imu import CalibrationConfig, ImuConfig, ImuStream, NoiseConfig
from twin_sensors.lidar import LidarStream
from twin_sensors.readers import SerialConfig, SerialReader, UdpConfig, UdpReader
from twin_sensors.stats import DriverStats
from twin_sensors.timestamps import Stamper, TimestampConfig
from twin_sensors.wire import (
    LidarScan,
    MsgType,
    encode_encoder_payload,
    encode_frame,
    encode_lidar_payload,
    format_imu_line,
)
from twin_sim.serial_port import EmulatedSerialPort


class Collector:
    """Reader callbacks that record chunks and state changes."""

    def __init__(self) -> None:
        self.chunks: list[tuple[bytes, int]] = []
        self.states: list[bool] = []

    def data(self, chunk: bytes, receive_ns: int) -> None:
        self.chunks.append((chunk, receive_ns))

    def state(self, connected: bool, _detail: str) -> None:
        self.states.append(connected)


# --------------------------------------------------------------------------- IMU lines


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=80) | st.sampled_from(
    [b"\n", b"1,2,3,4,5,6,7\n", b"nan,0,0,0,0,0,1\n", b"1,2,3\n", b"\xff\n"]), max_size=40))
def test_imu_stream_never_raises_and_counts_every_bad_line(chunks: list[bytes]) -> None:
    stats = DriverStats()
    stream = ImuStream(ImuConfig(max_line_length=64), stats)
    stream.decoder.feed(b"\n")  # joined at a line boundary: no line is discarded as partial
    readings = [r for chunk in chunks for r in stream.feed(chunk)]
    lines = stream.decoder.lines_ok + stream.decoder.overflows
    assert len(readings) == stats.messages
    assert stats.messages + sum(stats.errors.values()) == lines
    assert all(np.all(np.isfinite(r.values)) for r in readings)


def test_imu_lines_with_and_without_device_time_and_defects_are_counted_per_reason() -> None:
    stats = DriverStats()
    stream = ImuStream(ImuConfig(), stats)
    readings = stream.feed(b"cut,line\n1,2,3,4,5,6,7.5\n1,2,3,4,5,6\nnan,2,3,4,5,6,7\n1,2\n1,2,x,4,5,6\n")
    assert [r.device_time for r in readings] == [7.5, None]
    assert dict(stats.errors) == {"non_finite": 1, "field_count": 1, "non_numeric": 1}
    assert stream.decoder.bytes_discarded == len(b"cut,line\n")


def test_calibration_is_matrix_times_bias_corrected_raw_and_shapes_the_covariance() -> None:
    rng = np.random.default_rng(4)
    matrix, bias = rng.normal(size=(6, 6)), rng.normal(size=6)
    noise = NoiseConfig(accel_density=0.01, gyro_density=0.001, rate_hz=400.0)
    config = ImuConfig(calibration=CalibrationConfig(tuple(bias), tuple(matrix.ravel())), noise=noise)
    stream = ImuStream(config, DriverStats())
    raw = np.round(rng.normal(size=6), 5)  # exactly representable in the CSV line
    stream.decoder.feed(b"\n")
    (reading,) = stream.feed(format_imu_line(raw, 1.0))
    expected = matrix @ (raw - bias)
    assert reading.values == pytest.approx(expected, abs=1e-9)
    raw_variance = np.repeat([0.01 ** 2 * 400.0, 0.001 ** 2 * 400.0], 3)
    covariance = matrix @ np.diag(raw_variance) @ matrix.T
    assert stream.accel_covariance == pytest.approx(covariance[:3, :3].ravel())
    assert stream.gyro_covariance == pytest.approx(covariance[3:, 3:].ravel())
    with pytest.raises(ValueError):
        CalibrationConfig(matrix=(1.0,) * 35)


# --------------------------------------------------------------------------- serial reader on a pty


@pytest.mark.parametrize("batch_period", [0.0, 0.01])
def test_serial_reader_sustains_1khz_imu_lines_without_loss(tmp_path: Path, batch_period: float) -> None:
    device = EmulatedSerialPort(tmp_path / "imu")
    device.open()
    stats = DriverStats()
    stream = ImuStream(ImuConfig(), stats)
    received: list[float] = []
    chunks: list[int] = []
    collector = Collector()

    def on_data(chunk: bytes, _receive_ns: int) -> None:
        chunks.append(len(chunk))
        received.extend(r.device_time for r in stream.feed(chunk))

    reader = SerialReader(SerialConfig(port=str(device.link), batch_period=batch_period), on_data, collector.state)
    reader.start()
    try:
        assert wait_for(lambda: collector.states == [True])
        stream.decoder.feed(b"\n")  # the writer starts at a line boundary
        total, start = 3000, time.monotonic()
        for index in range(total):  # paced at 1 kHz, like the device
            while time.monotonic() < start + index * 1e-3:
                time.sleep(0.0002)
            assert device.write(format_imu_line(np.arange(6.0), index * 1e-3))
        assert wait_for(lambda: len(received) == total)
    finally:
        reader.stop()
        device.close()
    assert received == pytest.approx([i * 1e-3 for i in range(total)])
    assert not stats.errors and device.bytes_dropped == 0
    if batch_period:  # 10 ms of lines per read, not one wake-up per line
        assert len(chunks) < total / 5


def test_serial_reader_waits_for_the_port_and_survives_unplug_replug(tmp_path: Path) -> None:
    device = EmulatedSerialPort(tmp_path / "enc")
    collector = Collector()
    stats = DriverStats()
    stream = EncoderStream(EncoderConfig(joint_names=("a", "b")), stats)

    def on_state(connected: bool, detail: str) -> None:
        collector.state(connected, detail)
        stats.set_state(connected, detail)
        if connected:
            stream.restart()

    samples = []
    reader = SerialReader(SerialConfig(port=str(device.link)), lambda c, _t: samples.extend(stream.feed(c)), on_state)
    reader.start()
    try:
        assert wait_for(lambda: collector.states == [False])  # reported once, however many retries
        assert stats.last_error == f'cannot open {device.link}: No such file or directory'
        time.sleep(0.5)
        device.open()
        assert wait_for(lambda: collector.states == [False, True])
        for seq in range(1, 6):
            payload = encode_encoder_payload(seq * 0.002, 4096, np.array([0.5, -1.0]), np.zeros(2), np.ones(2))
            frame = encode_frame(MsgType.ENCODERS, seq, payload)
            device.write(frame[:10])
            device.write(frame[10:])
        assert wait_for(lambda: len(samples) == 5)
        device.unplug()
        assert wait_for(lambda: collector.states == [False, True, False])
        device.open()
        assert wait_for(lambda: collector.states == [False, True, False, True])
        device.write(encode_frame(MsgType.ENCODERS, 9, encode_encoder_payload(
            1.0, 4096, np.array([0.5, -1.0]), np.zeros(2), np.ones(2))))
        assert wait_for(lambda: len(samples) == 6)
    finally:
        reader.stop()
        device.close()
    assert stats.reconnects == 1 and "lost" in stats.last_error
    assert samples[0].positions == pytest.approx([0.5, -1.0], abs=2 * math.pi / 4096)
    assert stream.decoder.frames_missed == 3 and stream.decoder.crc_errors == 0


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), st.integers(0, 599))
def test_encoder_stream_never_raises_on_corrupted_bytes(noise: bytes, cut: int) -> None:
    stats = DriverStats()
    stream = EncoderStream(EncoderConfig(joint_names=("a", "b")), stats)
    good = encode_frame(MsgType.ENCODERS, 1, encode_encoder_payload(1.0, 1000, np.ones(2), np.ones(2), np.ones(2)))
    wrong_joints = encode_frame(MsgType.ENCODERS, 2, encode_encoder_payload(
        1.0, 1000, np.ones(1), np.ones(1), np.ones(1)))
    data = noise[:cut] + good + noise[cut:] + wrong_joints
    samples = [s for i in range(0, len(data), 7) for s in stream.feed(data[i:i + 7])]
    assert len(samples) >= 1 and stats.errors["joint_count"] == 1
    assert stats.messages == len(samples)
    assert all(np.isfinite(s.velocities).all() and np.isfinite(s.efforts).all() for s in samples)


def test_a_corrupt_length_field_does_not_hold_back_the_frames_behind_it() -> None:
    stats = DriverStats()
    stream = EncoderStream(EncoderConfig(joint_names=("a", "b")), stats)
    frames = [encode_frame(MsgType.ENCODERS, seq, encode_encoder_payload(
        seq * 0.002, 1000, np.ones(2), np.ones(2), np.ones(2))) for seq in range(1, 6)]
    corrupt = bytearray(frames[0])
    corrupt[5:7] = (3000).to_bytes(2, "little")  # the header's length field, now far beyond a 2-joint frame
    out = stream.feed(bytes(corrupt) + b"".join(frames[1:]))
    assert [round(s.device_time / 0.002) for s in out] == [2, 3, 4, 5]  # at once, not after 3 kB more
    assert stream.decoder.bad_headers == 1


# --------------------------------------------------------------------------- lidar datagrams


def test_udp_reader_and_lidar_stream_decode_each_datagram_on_its_own() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stats = DriverStats()
    stream = LidarStream(stats)
    collector = Collector()
    scans = []
    reader = UdpReader(UdpConfig(port=port), lambda d, _t: scans.extend(stream.feed(d)), collector.state)
    reader.start()
    ranges = np.array([0.5, np.nan, 0.01, 3.25])
    frame = encode_frame(MsgType.LIDAR, 1, encode_lidar_payload(LidarScan(2.0, -1.0, 0.5, 0.05, 10.0, 0.05, ranges)))
    try:
        assert wait_for(lambda: collector.states == [True])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(frame[:-5], ("127.0.0.1", port))
            sender.sendto(frame[-5:] + frame, ("127.0.0.1", port))
            assert wait_for(lambda: len(scans) == 1)
    finally:
        reader.stop()
    assert stats.errors["truncated"] == 1
    assert scans[0].ranges.tolist() == [0.5, math.inf, -math.inf, 3.25]
    assert scans[0].ranges.dtype == np.float32


def test_udp_reader_retries_a_busy_port() -> None:
    occupant = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    occupant.bind(("127.0.0.1", 0))
    collector = Collector()
    reader = UdpReader(UdpConfig(port=occupant.getsockname()[1]), collector.data, collector.state)
    reader.start()
    try:
        assert wait_for(lambda: collector.states == [False])
        occupant.close()
        assert wait_for(lambda: collector.states == [False, True])
    finally:
        reader.stop()
        occupant.close()


# --------------------------------------------------------------------------- clock estimation


def synthetic_clock(seconds: float, rate_hz: float, offset: float, drift_ppm: float, seed: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true ROS times, device times, receive times): one-sided jittered delays, spikes and a stall."""
    rng = np.random.default_rng(seed)
    true = 1.7e9 + np.arange(0.0, seconds, 1.0 / rate_hz)
    device = (true - true[0]) * (1.0 + drift_ppm * 1e-6) + offset
    delay = 2e-4 + rng.exponential(3e-4, true.size)
    spikes = rng.random(true.size) < 0.05
    delay[spikes] += rng.uniform(5e-3, 0.1, spikes.sum())
    stall = (true - true[0] > 50.0) & (true - true[0] < 50.6)
    delay[stall] += 0.03
    return true, device, true + delay


@pytest.mark.parametrize(("offset", "drift_ppm"), [(17.0, 80.0), (-3.5, -250.0), (1000.0, 0.0)])
def test_clock_estimator_recovers_offset_and_drift(offset: float, drift_ppm: float) -> None:
    true, device, receive = synthetic_clock(60.0, 1000.0, offset, drift_ppm, seed=int(abs(offset)))
    stamper = Stamper(TimestampConfig(mode="device", latency_compensation=2e-4))
    stamps = np.array([stamper.stamp(round(r * 1e9), d) for r, d in zip(receive, device)])
    fit = stamper.estimator.fit
    assert fit is not None and fit.drift_ppm == pytest.approx(drift_ppm, abs=2.0)
    assert fit.outliers >= 1  # the stall
    error = stamps[-20000:] * 1e-9 - true[-20000:]
    assert np.max(np.abs(error)) < 2e-4
    assert np.all(np.diff(stamps) > 0)
    values = stamper.values()
    assert float(values["clock_offset_s"]) == pytest.approx(true[-1] - device[-1], abs=2e-4 + 1e-3)


@pytest.mark.parametrize("step", [0.25, -0.25])
def test_clock_estimator_follows_a_lasting_offset_step_within_two_seconds(step: float) -> None:
    true, device, receive = synthetic_clock(40.0, 1000.0, 5.0, 40.0, seed=3)
    device = np.where(true - true[0] > 20.0, device - step, device)  # the device clock steps
    stamper = Stamper(TimestampConfig(mode="device"))
    stamps = np.array([stamper.stamp(round(r * 1e9), d) for r, d in zip(receive, device)])
    settled = true - true[0] > 22.0
    assert stamper.estimator.steps == 1
    assert np.max(np.abs(stamps[settled] * 1e-9 - true[settled])) < 2e-3
    assert abs(stamper.estimator.fit.drift_ppm) < 1000.0


def test_stamper_restarts_on_a_device_reboot_and_stays_monotonic() -> None:
    stamper = Stamper(TimestampConfig(mode="device"))
    first = [stamper.stamp(1_000_000_000 + i * 10_000_000, 100.0 + i * 0.01) for i in range(300)]
    after = [stamper.stamp(4_000_000_000 + i * 10_000_000, i * 0.01) for i in range(300)]
    assert stamper.estimator.resets == 1
    assert np.all(np.diff(first + after) > 0)
    assert after[-1] == pytest.approx(4_000_000_000 + 299 * 10_000_000, abs=1e5)


def test_receipt_mode_subtracts_latency_and_ignores_device_time() -> None:
    stamper = Stamper(TimestampConfig(mode="receipt", latency_compensation=0.001))
    assert stamper.stamp(5_000_000_000, 123.0) == 4_999_000_000
    assert stamper.stamp(5_000_000_000, None) == 4_999_000_001  # same receive time: still increasing
