"""PLC driver core: the cell PLC's OPC UA variables to per-motor temperatures and a cell status."""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from twin_core.config import describe
from twin_core.urdf import default_joint_names
from twin_sensors.opcua_client import OpcUaConfig
from twin_sensors.stats import DriverStats
from twin_sensors.timestamps import TimestampConfig

CELL_VARIABLES = ('SpeedOverride', 'Stopped', 'TaskId', 'TaskProgress')
DEVICE_TIME = 'Workcell.DeviceTime'


@dataclass(frozen=True)
class PlcDriverConfig:
    """Parameters of the plc_driver node."""

    opcua: OpcUaConfig = field(default_factory=OpcUaConfig)
    joint_names: tuple[str, ...] = field(default_factory=default_joint_names, metadata=describe(
        'Motors whose Workcell.Motors.<joint>.Temperature is published (default: the URDF\'s joints).'))
    temperature_variance: float = field(default=0.25, metadata=describe(
        'Variance of the motor temperature readings, degC^2.', min=0.0, max=1e4))
    timestamps: TimestampConfig = field(default_factory=TimestampConfig)


def temperature_variable(joint: str) -> str:
    return f'Workcell.Motors.{joint}.Temperature'


@dataclass(frozen=True, slots=True)
class CellValues:
    """The PLC's process view; ``task_id`` 0 means no task (the PLC's -1)."""

    task_id: int
    task_progress: float
    speed_override: float
    stopped: bool


@dataclass(frozen=True, slots=True)
class PlcUpdate:
    """What one batch of changes means: new temperatures, and the cell status if any of it changed."""

    temperatures: dict[str, float]
    cell: CellValues | None
    device_time: float | None


class PlcView:
    """The latest value of every subscribed variable; turns change batches into updates."""

    def __init__(self, config: PlcDriverConfig, stats: DriverStats) -> None:
        self.stats = stats
        self.joints = {temperature_variable(joint): joint for joint in config.joint_names}
        self.cell_variables = tuple(f'Workcell.{name}' for name in CELL_VARIABLES)
        self.latest: dict[str, Any] = {}

    @property
    def variables(self) -> list[str]:
        return [*self.joints, *self.cell_variables, DEVICE_TIME]

    def apply(self, changes: Mapping[str, Any]) -> PlcUpdate:
        """Fold a change batch in; values that are not finite numbers are counted, never used."""
        checked = {name: self._checked(name, value) for name, value in changes.items()}
        self.latest.update(checked)
        temperatures: dict[str, float] = {}
        for variable, joint in self.joints.items():
            if variable not in changes:
                continue
            if changes[variable] is None:
                self.stats.error('sensor_failure', f'{joint} motor temperature has a bad status')
            elif (temperature := checked[variable]) is not None:
                temperatures[joint] = temperature
        self.stats.messages += len(temperatures)
        cell_changed = any(name in changes for name in self.cell_variables)
        return PlcUpdate(temperatures, self._cell() if cell_changed else None, self.latest.get(DEVICE_TIME))

    def _checked(self, name: str, value: Any) -> float | None:
        """``value`` as a finite float; None (counted) for a bad status, a non-number or NaN/inf."""
        if value is None:
            return None
        if isinstance(value, bool):
            return float(value)
        if not isinstance(value, (int, float)):
            self.stats.error('wrong_type', f'{name} is {type(value).__name__} {str(value)[:40]!r}, not a number',
                             payload=repr(value)[:1000])
            return None
        if not math.isfinite(value):
            self.stats.error('non_finite', f'{name} is {value}', payload=repr(value))
            return None
        return float(value)

    def _cell(self) -> CellValues | None:
        if any(self.latest.get(name) is None for name in self.cell_variables):
            return None
        override, stopped, task_id, progress = (self.latest[name] for name in self.cell_variables)
        return CellValues(max(int(task_id), 0), float(progress), float(override), bool(stopped))
