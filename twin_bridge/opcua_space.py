"""The twin's OPC UA address space: variables by browse path with types and engineering units,
and the conversion of twin data into variable values.

NodeIds are strings, the browse path from Objects joined by '/', in the configured namespace::

    DeviceSet/<device>/MotionDevices/<arm>/Axes/<joint>/ParameterSet/
        ActualPosition rad (HistoryRead), ActualSpeed rad/s, ActualAcceleration rad/s², ActualTorque N·m
    DeviceSet/<device>/MotionDevices/<arm>/PowerTrains/<joint>/Motor/ParameterSet/
        MotorTemperature °C, EffectiveLoadRate %
    DeviceSet/<device>/Controllers/<controller>/ParameterSet/
        SpeedOverride % (the cell's), SpeedOverrideSetpoint % (writable, with a command sink)
    Twin/State/{Time, Predicted, TaskId, TaskProgress, Stopped}
    Twin/Health/{Level, Message, Warnings, Errors}           (diagnostic levels: 0 OK .. 3 STALE)
    Twin/Alerts/{ActiveCount, Active[], LastEvent, LastSeverity}
    Twin/Maintenance/{Revision, Tasks[], Unplaced[], NextComponent, NextAction, NextRisk,
                      NextStart, NextDeadline, NextRul s}

SpeedOverride and SpeedOverrideSetpoint are in % like the Robotics companion specification's
SpeedOverride; the twin's topics carry 0..1. A setpoint write asks for a speed override: it is a
request to the actuation node, which arbitrates and ramps it, never a value sent to the cell.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from asyncua import ua

from twin_bridge.opcua_config import ServerConfig
from twin_core.levels import Level
from twin_core.opcua import engineering_units
from twin_core.signals import joint_signal
from twin_core.stamps import from_seconds, to_seconds
from twin_maintenance.scheduler import PlannedTask

V = ua.VariantType
RADIAN = engineering_units('C81', 'rad', 'radian')
RADIAN_PER_SECOND = engineering_units('2A', 'rad/s', 'radian per second')
RADIAN_PER_SECOND_SQUARED = engineering_units('2B', 'rad/s²', 'radian per second squared')
NEWTON_METRE = engineering_units('NU', 'N·m', 'newton metre')
DEGREE_CELSIUS = engineering_units('CEL', '°C', 'degree Celsius')
PERCENT = engineering_units('P1', '%', 'percent')
SECOND = engineering_units('SEC', 's', 'second')
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SPEED_OVERRIDE_RANGE = (0.0, 100.0)  # % of programmed speed

AXIS = {'ActualPosition': RADIAN, 'ActualSpeed': RADIAN_PER_SECOND,
        'ActualAcceleration': RADIAN_PER_SECOND_SQUARED, 'ActualTorque': NEWTON_METRE}
MOTOR = {'MotorTemperature': DEGREE_CELSIUS, 'EffectiveLoadRate': PERCENT}


@dataclass(frozen=True)
class Variable:
    """One variable; ``history`` is its GetHistory path ('' when it has no HistoryRead).

    ``writable`` variables accept client writes; ``limits`` (low, high) is their EURange.
    """

    path: tuple[str, ...]
    variant: ua.VariantType
    initial: object
    unit: ua.EUInformation | None = None
    history: str = ''
    writable: bool = False
    limits: tuple[float, float] | None = None

    @property
    def node_id(self) -> str:
        return '/'.join(self.path)


def speed_override_command(value: ua.Variant | None) -> float:
    """The speed override (0..1) that a SpeedOverrideSetpoint write of ``value`` (%) asks for.

    Raises TypeError unless ``value`` is a Double, ValueError unless it is finite and within
    :data:`SPEED_OVERRIDE_RANGE`.
    """
    if value is None or value.VariantType != V.Double or not isinstance(value.Value, float):
        given = 'nothing' if value is None else value.VariantType.name
        raise TypeError(f'SpeedOverrideSetpoint takes a Double (%), got {given}')
    low, high = SPEED_OVERRIDE_RANGE
    if not (math.isfinite(value.Value) and low <= value.Value <= high):
        raise ValueError(f'SpeedOverrideSetpoint {value.Value} % outside [{low:g}, {high:g}] %')
    return value.Value / 100.0


def to_datetime(seconds: float) -> datetime:
    """A UTC datetime from s since the epoch."""
    return datetime.fromtimestamp(seconds, UTC)


def from_datetime(moment: datetime | None) -> int:
    """Nanoseconds since the epoch (0 for None or earlier moments, e.g. the OPC UA null DateTime)."""
    if moment is None:
        return 0
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return max(0, from_seconds((moment - EPOCH).total_seconds()))


class TwinAddressSpace:
    """The variables of one twin and conversions to ``{node_id: value}`` updates."""

    def __init__(self, config: ServerConfig, commands: bool = False) -> None:
        """``commands``: offer the writable SpeedOverrideSetpoint (else the space is read-only)."""
        self.joint_names = config.joint_names
        self._arm = ('DeviceSet', config.device, 'MotionDevices', config.motion_device)
        self._controller = ('DeviceSet', config.device, 'Controllers', config.controller, 'ParameterSet')
        variables = [Variable((*self._controller, 'SpeedOverride'), V.Double, 0.0, PERCENT)]
        self.speed_override_setpoint = ''
        if commands:  # 100 %: no operator request yet, the actuation node's default
            setpoint = Variable((*self._controller, 'SpeedOverrideSetpoint'), V.Double, 100.0, PERCENT,
                                writable=True, limits=SPEED_OVERRIDE_RANGE)
            self.speed_override_setpoint = setpoint.node_id
            variables.append(setpoint)
        for joint in self.joint_names:
            variables += [Variable(self._axis(joint, name), V.Double, 0.0, unit,
                                   joint_signal(joint, 'position').name if name == 'ActualPosition' else '')
                          for name, unit in AXIS.items()]
            variables += [Variable(self._motor(joint, name), V.Double, 0.0, unit) for name, unit in MOTOR.items()]
        twin: list[tuple[str, str, ua.VariantType, object, ua.EUInformation | None]] = [
            ('State', 'Time', V.DateTime, EPOCH, None), ('State', 'Predicted', V.Boolean, False, None),
            ('State', 'TaskId', V.UInt64, 0, None), ('State', 'TaskProgress', V.Double, 0.0, None),
            ('State', 'Stopped', V.Boolean, False, None),
            ('Health', 'Level', V.Byte, 3, None), ('Health', 'Message', V.String, 'no diagnostics yet', None),
            ('Health', 'Warnings', V.UInt32, 0, None), ('Health', 'Errors', V.UInt32, 0, None),
            ('Alerts', 'ActiveCount', V.UInt32, 0, None), ('Alerts', 'Active', V.String, [], None),
            ('Alerts', 'LastEvent', V.String, '', None), ('Alerts', 'LastSeverity', V.Byte, 0, None),
            ('Maintenance', 'Revision', V.UInt32, 0, None), ('Maintenance', 'Tasks', V.String, [], None),
            ('Maintenance', 'Unplaced', V.String, [], None), ('Maintenance', 'NextComponent', V.String, '', None),
            ('Maintenance', 'NextAction', V.String, '', None), ('Maintenance', 'NextRisk', V.String, '', None),
            ('Maintenance', 'NextStart', V.DateTime, EPOCH, None),
            ('Maintenance', 'NextDeadline', V.DateTime, EPOCH, None),
            ('Maintenance', 'NextRul', V.Double, 0.0, SECOND)]
        variables += [Variable(('Twin', group, name), variant, initial, unit)
                      for group, name, variant, initial, unit in twin]
        self.variables = {variable.node_id: variable for variable in variables}
        self._active_alerts: dict[str, str] = {}

    def _axis(self, joint: str, name: str) -> tuple[str, ...]:
        return (*self._arm, 'Axes', joint, 'ParameterSet', name)

    def _motor(self, joint: str, name: str) -> tuple[str, ...]:
        return (*self._arm, 'PowerTrains', joint, 'Motor', 'ParameterSet', name)

    def axis(self, joint: str, name: str) -> str:
        """NodeId string of an axis variable, e.g. ``axis('joint_1', 'ActualPosition')``."""
        return '/'.join(self._axis(joint, name))

    def motor(self, joint: str, name: str) -> str:
        """NodeId string of a motor variable, e.g. ``motor('joint_1', 'MotorTemperature')``."""
        return '/'.join(self._motor(joint, name))

    def axes(self, names: Sequence[str], position: Sequence[float] = (), velocity: Sequence[float] = (),
             acceleration: Sequence[float] = (), effort: Sequence[float] = (),
             temperature: Sequence[float] = (), load: Sequence[float] = ()) -> dict[str, object]:
        """Values of the axes and motors; unknown joints and empty arrays are skipped."""
        values: dict[str, object] = {}
        known = set(self.joint_names)
        for array, make in ((position, lambda j: self.axis(j, 'ActualPosition')),
                            (velocity, lambda j: self.axis(j, 'ActualSpeed')),
                            (acceleration, lambda j: self.axis(j, 'ActualAcceleration')),
                            (effort, lambda j: self.axis(j, 'ActualTorque')),
                            (temperature, lambda j: self.motor(j, 'MotorTemperature'))):
            values.update({make(j): float(x) for j, x in zip(names, array) if j in known})
        values.update({self.motor(j, 'EffectiveLoadRate'): 100.0 * float(x) for j, x in zip(names, load) if j in known})
        return values

    def state(self, stamp_ns: int, predicted: bool, task_id: int, task_progress: float, stopped: bool,
              speed_override: float) -> dict[str, object]:
        """Values of Twin/State and the controller's SpeedOverride (0..1 becomes %)."""
        return {'Twin/State/Time': to_datetime(to_seconds(stamp_ns)), 'Twin/State/Predicted': bool(predicted),
                'Twin/State/TaskId': int(task_id), 'Twin/State/TaskProgress': float(task_progress),
                'Twin/State/Stopped': bool(stopped),
                '/'.join((*self._controller, 'SpeedOverride')): 100.0 * float(speed_override)}

    def operator_request(self, speed_override: float) -> dict[str, object]:
        """SpeedOverrideSetpoint after an operator speed override request (0..1, from any client).

        Nothing when the space has no setpoint or the request is invalid (the actuation node refuses it).
        """
        if not self.speed_override_setpoint or not (math.isfinite(speed_override) and 0.0 <= speed_override <= 1.0):
            return {}
        return {self.speed_override_setpoint: 100.0 * float(speed_override)}

    @staticmethod
    def health(statuses: Sequence[tuple[Level, str, str]]) -> dict[str, object]:
        """Twin/Health from (level, name, message) diagnostics: the worst level and its messages."""
        level = max((s[0] for s in statuses), default=Level.STALE)
        worst = '; '.join(f'{name}: {message}' for lvl, name, message in statuses
                          if lvl == level and level > Level.OK)
        message = (worst or 'all OK') if statuses else 'no diagnostics'
        return {'Twin/Health/Level': int(level), 'Twin/Health/Message': message,
                'Twin/Health/Warnings': sum(s[0] == Level.WARN for s in statuses),
                'Twin/Health/Errors': sum(s[0] == Level.ERROR for s in statuses)}

    def alert(self, sensor: str, method: str, severity: int, description: str, active: bool) -> dict[str, object]:
        """Twin/Alerts after one anomaly event raising (``active``) or clearing an alarm."""
        key = f'{sensor} ({method})'
        event = f'{"raised" if active else "cleared"} {key}: {description}'
        if active:
            self._active_alerts[key] = f'{key}: {description}'
        else:
            self._active_alerts.pop(key, None)
        return {'Twin/Alerts/ActiveCount': len(self._active_alerts),
                'Twin/Alerts/Active': sorted(self._active_alerts.values()),
                'Twin/Alerts/LastEvent': event, 'Twin/Alerts/LastSeverity': int(severity)}

    @staticmethod
    def maintenance(revision: int, tasks: Sequence[PlannedTask], unplaced: Sequence[str]) -> dict[str, object]:
        """Twin/Maintenance from a schedule (tasks in start order)."""
        lines = [f'{t.component}: {t.action} [{t.risk}] {to_datetime(t.start):%Y-%m-%dT%H:%M:%SZ}'
                 f'..{to_datetime(t.end):%H:%M:%SZ}, deadline {to_datetime(t.deadline):%Y-%m-%dT%H:%M:%SZ}'
                 for t in tasks]
        first = tasks[0] if tasks else PlannedTask()
        return {'Twin/Maintenance/Revision': int(revision), 'Twin/Maintenance/Tasks': lines,
                'Twin/Maintenance/Unplaced': list(unplaced), 'Twin/Maintenance/NextComponent': first.component,
                'Twin/Maintenance/NextAction': first.action,
                'Twin/Maintenance/NextRisk': str(first.risk) if tasks else '',
                'Twin/Maintenance/NextStart': to_datetime(first.start),
                'Twin/Maintenance/NextDeadline': to_datetime(first.deadline), 'Twin/Maintenance/NextRul': first.rul}
