"""Device programs run inside a network namespace by test_network_device.py.

    python network_devices.py lidar --host H --port P --scans N   send N scans to udp://H:P, exit
    python network_devices.py plc --endpoint URL                  serve the cell PLC until SIGINT/SIGTERM
    python network_devices.py talker --topic T                    publish std_msgs/String until stopped
    python network_devices.py listener --topic T --count N        exit 0 after N messages (1 on timeout)

The lidar and the PLC are the simulator's own channels (twin_sim.hardware, twin_sim.plc), so the
bytes on the wire are real device frames; only the scan content is a fixed pattern the test knows.
"""
from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
import time
from collections.abc import Sequence

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from std_msgs.msg import String

from twin_sim.hardware import LidarChannel, LidarEmitter, PlcChannel
from twin_sim.plc import PlcServer, PlcState
from twin_sim.settings import SimSettings

JOINTS = ('joint_1', 'joint_2', 'joint_3', 'joint_4')
NO_RETURN_BEAM, TOO_CLOSE_BEAM = 7, 8
PLC_STATE = PlcState(motor_temperatures=(31.5, 32.5, 33.5, 34.5), speed_override=0.75, stopped=False,
                     task_id=4242, task_progress=0.25, device_time=100.0)


def pattern_ranges(beams: int) -> np.ndarray:
    """Beam i reads 0.5 m + i cm; one beam has no return (NaN), one is closer than range_min."""
    ranges = 0.5 + 0.01 * np.arange(beams, dtype=np.float64)
    ranges[NO_RETURN_BEAM] = math.nan
    ranges[TOO_CLOSE_BEAM] = 0.01
    return ranges


class PatternLidar:
    """The parts of the workcell a ``LidarEmitter`` reads: geometry, device clock and a known scan."""

    def __init__(self) -> None:
        self.settings = SimSettings()
        self._start = time.monotonic()

    def device_time(self) -> float:
        return 1000.0 + time.monotonic() - self._start

    def lidar_scan(self) -> np.ndarray:
        return pattern_ranges(self.settings.lidar_n_beams)


def send_scans(host: str, port: int, scans: int, rate_hz: float) -> int:
    """Send ``scans`` frames at ``rate_hz`` with the simulator's lidar channel; return the number sent."""
    emitter = LidarEmitter(LidarChannel(host=host, port=port, rate_hz=rate_hz))
    device = PatternLidar()
    emitter.open()
    try:
        for _ in range(scans):
            emitter.emit(device)  # type: ignore[arg-type]  # only the lidar parts are used
            time.sleep(emitter.period)
    finally:
        emitter.close()
    print(f'sent {emitter.emitted} scans, {emitter.send_errors} send errors', flush=True)
    return 0 if emitter.emitted == scans and emitter.send_errors == 0 else 1


def serve_plc(endpoint: str) -> int:
    """Serve ``PLC_STATE`` at ``endpoint`` until SIGINT or SIGTERM."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server = PlcServer(PlcChannel(endpoint=endpoint, publish_rate_hz=20.0), JOINTS)
    server.start()
    try:
        server.publish(PLC_STATE)
        print(f'ready {endpoint}', flush=True)
        stop.wait()
    finally:
        server.stop()
    return 0


def talk(topic: str, rate_hz: float) -> int:
    """Publish numbered std_msgs/String messages until SIGINT or SIGTERM."""
    rclpy.init()
    node = rclpy.create_node('network_talker')
    publisher = node.create_publisher(String, topic, 10)
    count = 0
    try:
        while rclpy.ok():
            publisher.publish(String(data=f'twin over the network {count}'))
            count += 1
            rclpy.spin_once(node, timeout_sec=1.0 / rate_hz)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def listen(topic: str, count: int, timeout: float) -> int:
    """Print each std_msgs/String on ``topic``; exit 0 after ``count`` of them, 1 after ``timeout`` s."""
    rclpy.init()
    node = rclpy.create_node('network_listener')
    received: list[str] = []

    def record(message: String) -> None:
        received.append(message.data)
        print(f'received {message.data}', flush=True)

    node.create_subscription(String, topic, record, 10)
    deadline = time.monotonic() + timeout
    try:
        while len(received) < count and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0 if len(received) >= count else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    programs = parser.add_subparsers(dest='program', required=True)
    lidar = programs.add_parser('lidar')
    lidar.add_argument('--host', required=True)
    lidar.add_argument('--port', type=int, required=True)
    lidar.add_argument('--scans', type=int, default=40)
    lidar.add_argument('--rate', type=float, default=20.0)
    plc = programs.add_parser('plc')
    plc.add_argument('--endpoint', required=True)
    talker = programs.add_parser('talker')
    talker.add_argument('--topic', required=True)
    talker.add_argument('--rate', type=float, default=10.0)
    listener = programs.add_parser('listener')
    listener.add_argument('--topic', required=True)
    listener.add_argument('--count', type=int, default=5)
    listener.add_argument('--timeout', type=float, default=30.0)
    options = parser.parse_args(argv)
    if options.program == 'lidar':
        return send_scans(options.host, options.port, options.scans, options.rate)
    if options.program == 'plc':
        return serve_plc(options.endpoint)
    if options.program == 'talker':
        return talk(options.topic, options.rate)
    return listen(options.topic, options.count, options.timeout)


if __name__ == '__main__':
    sys.exit(main())
