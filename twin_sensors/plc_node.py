"""plc_driver node: the cell PLC over OPC UA to motors/<joint>/temperature and cell/status."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Temperature

from twin_interfaces.msg import CellStatus
from twin_ros.common import run
from twin_sensors.driver_node import DriverNode
from twin_sensors.opcua_client import OpcUaSubscriber
from twin_sensors.plc import PlcDriverConfig, PlcView


class PlcDriver(DriverNode):
    """Subscribes to the PLC (asyncua in its own thread) and republishes every change."""

    def __init__(self) -> None:
        super().__init__('plc_driver', PlcDriverConfig)
        self._view = PlcView(self.config, self.stats)
        self._temperatures = {
            joint: self.create_publisher(Temperature, f'motors/{joint}/temperature', qos_profile_sensor_data)
            for joint in self.config.joint_names}
        self._status = self.create_publisher(CellStatus, 'cell/status', 10)
        self.attach(OpcUaSubscriber(self.config.opcua, self._view.variables, self._on_values,
                                    self.on_state, self.now_ns, self.workers), self.config.opcua.endpoint)

    def _on_values(self, changes: Mapping[str, Any], receive_ns: int) -> None:
        update = self._view.apply(changes)
        stamp = self.stamp(receive_ns, update.device_time)
        for joint, celsius in update.temperatures.items():
            message = Temperature(temperature=celsius, variance=self.config.temperature_variance)
            message.header.stamp, message.header.frame_id = stamp, f'{joint}_motor'
            self.publish(self._temperatures[joint], message)
        if update.cell is not None:
            cell = update.cell
            message = CellStatus(task_id=cell.task_id, task_progress=cell.task_progress,
                                 speed_override=cell.speed_override, stopped=cell.stopped)
            message.header.stamp = stamp
            self.publish(self._status, message)


def main(args: list[str] | None = None) -> int:
    """Console-script entry point."""
    return run(PlcDriver, 'plc_driver', args)
