"""imu_driver whose data handler raises once the stream holds b'fault': a stand-in for any bug in
a reader thread, to show that the node reports it at once and recovers.
"""
import sys

from twin_ros.common import run
from twin_sensors.imu_node import ImuDriver


class FaultyImuDriver(ImuDriver):
    _tail = b''  # the end of the previous chunk: a reader may split the marker over two chunks

    def _on_data(self, chunk: bytes, receive_ns: int) -> None:
        seen = self._tail + chunk
        self._tail = seen[-4:]
        if b'fault' in seen:
            self._tail = b''
            raise RuntimeError('injected fault')
        super()._on_data(chunk, receive_ns)


if __name__ == '__main__':
    sys.exit(run(FaultyImuDriver, 'imu_driver'))
