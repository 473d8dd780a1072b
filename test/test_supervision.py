"""A worker thread that dies is reported on /diagnostics at once and the node recovers."""
import os
import pty
import sys
import threading
import time
import tty
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Imu

from harness import CONFIG_DIR

pytestmark = pytest.mark.integration
FAULTY_DRIVER = Path(__file__).with_name('faulty_imu_driver.py')


class ImuDevice:
    """An IMU on a pty pair writing CSV lines at ``rate`` Hz until closed."""

    def __init__(self, rate: float = 200.0) -> None:
        self.master, slave = pty.openpty()
        tty.setraw(slave)
        self.port = os.ttyname(slave)
        self._slave = slave
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, args=(1.0 / rate,), daemon=True)
        self._thread.start()

    def write(self, data: bytes) -> None:
        with self._lock:
            os.write(self.master, data)

    def _run(self, period: float) -> None:
        start = time.monotonic()
        while not self._stop.wait(period):
            self.write(f'0.1,0.2,9.81,0.01,0.02,0.03,{time.monotonic() - start:.6f}\n'.encode())

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        os.close(self.master)
        os.close(self._slave)


def workers_status(probe) -> list[tuple[float, DiagnosticStatus]]:
    arrivals = probe.arrivals('/diagnostics')
    return [(at, s) for at, m in zip(arrivals, probe.messages('/diagnostics'))
            for s in m.status if s.name == 'imu_driver: workers']


def test_a_reader_killed_by_an_exception_is_reported_within_a_second_and_recovers(start_process, probe):
    device = ImuDevice()
    probe.subscribe('/imu/data', Imu, qos_profile_sensor_data)
    probe.subscribe('/diagnostics', DiagnosticArray)
    try:
        node = start_process(sys.executable, str(FAULTY_DRIVER), '--ros-args', '--params-file',
                             str(CONFIG_DIR / 'imu_driver.yaml'), '-p', f'serial.port:={device.port}',
                             '-p', 'timestamps.mode:=receipt', name='faulty_imu_driver')
        probe.wait_for('/imu/data', lambda m: len(m) > 50, 20.0)
        probe.wait_for('/diagnostics', lambda m: workers_status(probe), 10.0)
        assert workers_status(probe)[-1][1].level == DiagnosticStatus.OK

        device.write(b'fault\n')
        injected = time.monotonic()
        probe.wait_for('/diagnostics', lambda m: any(s.level == DiagnosticStatus.ERROR
                                                     for _, s in workers_status(probe)), 5.0)
        reported_at, error = next((at, s) for at, s in workers_status(probe) if s.level == DiagnosticStatus.ERROR)
        assert 'reader' in error.message and 'RuntimeError: injected fault' in error.message
        assert reported_at - injected <= 1.0, f'reported {reported_at - injected:.2f} s after the fault'

        before = len(probe.messages('/imu/data'))
        probe.wait_for('/imu/data', lambda m: len(m) > before + 50, 10.0)  # the reader is back
        probe.wait_for('/diagnostics', lambda m: workers_status(probe)[-1][1].level == DiagnosticStatus.OK, 15.0)
        assert node.process.poll() is None
        output = node.output()
        assert 'worker reader' in output and 'failed, restarting: RuntimeError: injected fault' in output
        print(f'\nfault -> ERROR on /diagnostics in {reported_at - injected:.3f} s; data again, status OK')
    finally:
        device.close()
