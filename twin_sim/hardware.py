"""The workcell's device channels: IMU and encoders on serial ports, lidar and plan over UDP, a UDP
command port; the camera (MJPEG over HTTP) is in ``twin_sim.camera``.
"""

from __future__ import annotations

import logging
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from twin_core.config import describe
from twin_core.network import UdpEndpoint, check_host, check_opcua_endpoint
from twin_sensors.wire import (
    MAX_DATAGRAM,
    Ack,
    CommandName,
    LidarScan,
    MsgType,
    PlanMode,
    PlanSample,
    WireError,
    encode_ack,
    encode_encoder_payload,
    encode_frame,
    encode_lidar_payload,
    encode_plan_payload,
    format_imu_line,
    parse_command,
    request_seq,
)
from twin_sim.camera import CameraChannel
from twin_sim.serial_port import EmulatedSerialPort

_log = logging.getLogger(__name__)


class Device(Protocol):
    """The part of the Workcell the channels read and command; ``settings`` is a ``SimSettings``."""

    settings: Any

    def device_time(self) -> float: ...
    def imu_sample(self) -> np.ndarray | None: ...
    def encoder_sample(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None: ...
    def lidar_scan(self) -> np.ndarray | None: ...
    def plan_sample(self, targets: int) -> Any: ...
    def set_speed_override(self, value: float) -> None: ...
    def protective_stop(self) -> None: ...
    def resume(self) -> None: ...
    def command_joint_positions(self, positions: Any) -> None: ...


# --------------------------------------------------------------------------- configuration

RATE = {'min': 0.01, 'max': 10000.0}
PORT = {'min': 0, 'max': 65535}


@dataclass(frozen=True)
class ImuChannel:
    enabled: bool = field(default=True, metadata=describe('emit IMU readings'))
    link: str = field(default="/tmp/twin_sim/imu", metadata=describe("symlink to the IMU's serial port"))
    rate_hz: float = field(default=1000.0, metadata=describe("CSV lines per simulated second", **RATE))


@dataclass(frozen=True)
class EncoderChannel:
    enabled: bool = field(default=True, metadata=describe('emit encoder frames'))
    link: str = field(default="/tmp/twin_sim/encoders",
                      metadata=describe("symlink to the encoder interface's serial port"))
    rate_hz: float = field(default=500.0, metadata=describe("frames per simulated second", **RATE))


@dataclass(frozen=True)
class LidarChannel:
    enabled: bool = field(default=True, metadata=describe('send lidar scans'))
    host: str = field(default="127.0.0.1",
                      metadata=describe("destination of the scan datagrams (the lidar driver's address)"))
    port: int = field(default=7502, metadata=describe("destination UDP port", min=1, max=65535))
    rate_hz: float = field(default=20.0, metadata=describe("scans per simulated second", **RATE))

    def __post_init__(self) -> None:
        check_host(self.host, ipv4_only=True)


@dataclass(frozen=True)
class PlanChannel:
    enabled: bool = field(default=True, metadata=describe("send the controller's commanded trajectory"))
    host: str = field(default="127.0.0.1",
                      metadata=describe("destination of the plan datagrams (the plan driver's address)"))
    port: int = field(default=7504, metadata=describe("destination UDP port", min=1, max=65535))
    rate_hz: float = field(default=100.0, metadata=describe("plans per simulated second", **RATE))
    targets: int = field(default=6, metadata=describe(
        "segment ends sent after the current reference (goal reached, end of its dwell)", min=1, max=31))

    def __post_init__(self) -> None:
        check_host(self.host, ipv4_only=True)


@dataclass(frozen=True)
class CommandChannel:
    enabled: bool = field(default=True, metadata=describe('accept commands from the twin'))
    host: str = field(default="127.0.0.1", metadata=describe("address the command socket binds (0.0.0.0: all)"))
    port: int = field(default=7600, metadata=describe("UDP port for command datagrams (0: any free)", **PORT))

    def __post_init__(self) -> None:
        check_host(self.host, ipv4_only=True)


@dataclass(frozen=True)
class PlcChannel:
    enabled: bool = field(default=True, metadata=describe('serve the cell PLC over OPC UA'))
    endpoint: str = field(default="opc.tcp://127.0.0.1:4840/twin/plc",
                          metadata=describe("OPC UA endpoint of the cell PLC; the host is the bind address"))
    publish_rate_hz: float = field(default=10.0, metadata=describe("PLC variable update rate", **RATE))

    def __post_init__(self) -> None:
        check_opcua_endpoint(self.endpoint)


@dataclass(frozen=True)
class ChannelsConfig:
    """All device channels; each can be disabled."""

    imu: ImuChannel = ImuChannel()
    encoders: EncoderChannel = EncoderChannel()
    lidar: LidarChannel = LidarChannel()
    plan: PlanChannel = PlanChannel()
    command: CommandChannel = CommandChannel()
    plc: PlcChannel = PlcChannel()
    camera: CameraChannel = CameraChannel()


# --------------------------------------------------------------------------- emitters

class Emitter(ABC):
    """A periodic device output; ``emit`` is called every ``period`` of simulated time."""

    name: str

    def __init__(self, rate_hz: float) -> None:
        self.period = 1.0 / rate_hz
        self.emitted = 0
        self.dropouts = 0

    @abstractmethod
    def open(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def _message(self, device: Device) -> bytes | None:
        """The next message, or None while the sensor has dropped out."""

    @abstractmethod
    def _send(self, message: bytes) -> None: ...

    def emit(self, device: Device) -> None:
        message = self._message(device)
        if message is None:
            self.dropouts += 1
            return
        self._send(message)
        self.emitted += 1

    def counters(self) -> dict[str, int]:
        return {"emitted": self.emitted, "dropouts": self.dropouts}


class SerialEmitter(Emitter, ABC):
    """An emitter writing to an emulated serial port."""

    def __init__(self, link: str, rate_hz: float) -> None:
        super().__init__(rate_hz)
        self.port = EmulatedSerialPort(link)

    def open(self) -> None:
        self.port.open()

    def close(self) -> None:
        self.port.close()

    def _send(self, message: bytes) -> None:
        self.port.write(message)

    def counters(self) -> dict[str, int]:
        return super().counters() | {"bytes_dropped": self.port.bytes_dropped,
                                     "writes_dropped": self.port.writes_dropped}


class ImuEmitter(SerialEmitter):
    """IMU readings as CSV lines."""

    name = "imu"

    def __init__(self, config: ImuChannel) -> None:
        super().__init__(config.link, config.rate_hz)

    def _message(self, device: Device) -> bytes | None:
        reading = device.imu_sample()
        return None if reading is None else format_imu_line(reading, device.device_time())


class EncoderEmitter(SerialEmitter):
    """Joint encoder readings as binary frames."""

    name = "encoders"

    def __init__(self, config: EncoderChannel) -> None:
        super().__init__(config.link, config.rate_hz)
        self._seq = 0

    def _message(self, device: Device) -> bytes | None:
        sample = device.encoder_sample()
        if sample is None:
            return None
        payload = encode_encoder_payload(device.device_time(), device.settings.encoder_counts_per_rev, *sample)
        self._seq = (self._seq + 1) & 0xFFFF
        return encode_frame(MsgType.ENCODERS, self._seq, payload)


class UdpEmitter(UdpEndpoint, Emitter, ABC):
    """An emitter sending one frame per UDP datagram to ``config.host``:``config.port``."""

    def __init__(self, config: LidarChannel | PlanChannel) -> None:
        super().__init__(config.rate_hz)
        self.config = config
        self.send_errors = 0
        self._seq = 0

    def _frame(self, msg_type: int, payload: bytes) -> bytes:
        self._seq = (self._seq + 1) & 0xFFFF
        return encode_frame(msg_type, self._seq, payload)

    def _send(self, message: bytes) -> None:
        if self._socket is None:
            raise RuntimeError(f"{self.name} channel is not open")
        try:
            self._socket.sendto(message, (self.config.host, self.config.port))
        except OSError as error:
            self.send_errors += 1
            if self.send_errors == 1:
                _log.warning("%s datagram not sent: %s", self.name, error)

    def counters(self) -> dict[str, int]:
        return super().counters() | {"send_errors": self.send_errors}


class LidarEmitter(UdpEmitter):
    """Lidar scans as binary frames, one per UDP datagram."""

    name = "lidar"

    def _message(self, device: Device) -> bytes | None:
        ranges = device.lidar_scan()
        if ranges is None:
            return None
        geometry = device.settings
        beams = len(ranges)
        scan = LidarScan(
            device_time=device.device_time(), angle_min=geometry.lidar_angle_min,
            angle_increment=(geometry.lidar_angle_max - geometry.lidar_angle_min) / max(beams - 1, 1),
            range_min=geometry.lidar_range_min, range_max=geometry.lidar_range_max, scan_time=self.period,
            ranges=ranges,
        )
        return self._frame(MsgType.LIDAR, encode_lidar_payload(scan))


class PlanEmitter(UdpEmitter):
    """The controller's commanded trajectory as a binary frame, one per UDP datagram."""

    name = "plan"
    config: PlanChannel

    def _message(self, device: Device) -> bytes | None:
        plan = device.plan_sample(self.config.targets)
        if plan is None:
            return None
        sample = PlanSample(device.device_time(), PlanMode[plan.mode.upper()], plan.times, plan.positions,
                            plan.velocities, plan.accelerations)
        return self._frame(MsgType.PLAN, encode_plan_payload(sample))


def build_emitters(config: ChannelsConfig) -> list[Emitter]:
    """The periodic emitters of the enabled channels."""
    builders: list[tuple[Any, Callable[[Any], Emitter]]] = [
        (config.imu, ImuEmitter), (config.encoders, EncoderEmitter), (config.lidar, LidarEmitter),
        (config.plan, PlanEmitter)]
    return [build(channel) for channel, build in builders if channel.enabled]


# --------------------------------------------------------------------------- command server

def _apply(device: Device, name: CommandName, value: Any) -> None:
    if name is CommandName.SPEED_OVERRIDE:
        device.set_speed_override(value)
    elif name is CommandName.STOP:
        device.protective_stop()
    elif name is CommandName.RESUME:
        device.resume()
    else:
        device.command_joint_positions(np.asarray(value, dtype=np.float64))


class CommandServer:
    """UDP command port: validates each datagram, applies it to the device and replies with an ack."""

    def __init__(self, config: CommandChannel) -> None:
        self.config = config
        self.accepted = 0
        self.rejected = 0
        self._socket: socket.socket | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); useful with port 0."""
        if self._socket is None:
            raise RuntimeError("command server is not open")
        return self._socket.getsockname()

    def fileno(self) -> int:
        return -1 if self._socket is None else self._socket.fileno()

    def open(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._socket.bind((self.config.host, self.config.port))
        except OSError:
            self._socket.close()
            self._socket = None
            raise
        self._socket.setblocking(False)
        _log.info("command server on udp://%s:%d", *self.address)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def poll(self, device: Device) -> int:
        """Handle every pending datagram; return how many were handled."""
        if self._socket is None:
            return 0
        handled = 0
        while True:
            try:
                datagram, sender = self._socket.recvfrom(MAX_DATAGRAM + 1)
            except (BlockingIOError, InterruptedError):
                return handled
            except ConnectionRefusedError:  # an earlier ack's receiver went away
                continue
            ack = self._execute(device, datagram)
            try:
                self._socket.sendto(encode_ack(ack), sender)
            except OSError as error:
                _log.warning("ack %s to %s not sent: %s", ack.seq, sender, error)
            handled += 1

    def _execute(self, device: Device, datagram: bytes) -> Ack:
        try:
            command = parse_command(datagram)
            _apply(device, command.cmd, command.value)
        except WireError as error:
            self.rejected += 1
            return Ack(request_seq(datagram), False, str(error))
        except ValueError as error:
            self.rejected += 1
            return Ack(command.seq, False, f"rejected: {error}")
        self.accepted += 1
        return Ack(command.seq, True, None)

    def counters(self) -> dict[str, int]:
        return {"accepted": self.accepted, "rejected": self.rejected}
