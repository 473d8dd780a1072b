"""Command arbitration between everything that wants to move or stop the cell, with the safety limits.

Authority, highest first: an operator stop, a protective stop (severe anomaly, overload, the
watchdog), maintenance derating (a cap on the speed override), the operator's speed override,
trajectory corrections. Stops latch: only an operator resume releases them, and only once no
protective cause is still active. Inputs change intents; :meth:`Arbiter.tick` turns the intents
into the next command for the cell. Every input and every command yields a :class:`Decision`
(the command to send, or None, and the reason), so each command sent or refused can be audited.
"""
from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from twin_control.config import ActuationConfig
from twin_core.levels import Level, Risk
from twin_core.status import Status
from twin_core.urdf import ArmDescription
from twin_sensors.wire import CommandName

WATCHDOG = 'watchdog'
OVERLOAD = 'overload'
MISSING = 'missing'  # the anomaly method that reports an input without data


class Source(enum.StrEnum):
    """Who a decision acts for."""

    OPERATOR = 'operator'
    PROTECTIVE = 'protective'
    WATCHDOG = 'watchdog'
    MAINTENANCE = 'maintenance'
    TRAJECTORY = 'trajectory'


@dataclass(frozen=True)
class CellCommand:
    """A command for the cell: a speed override (0..1), stop, resume or joint positions (rad)."""

    name: CommandName
    value: float | tuple[float, ...] | None = None


@dataclass(frozen=True)
class Decision:
    """The outcome of one input or tick: ``command`` is what to send now (None: nothing)."""

    source: Source
    request: CellCommand
    command: CellCommand | None
    accepted: bool
    reason: str


@dataclass(frozen=True)
class StateSample:
    """What the safety layer reads from one twin/state, joint arrays in URDF order."""

    position: np.ndarray
    velocity: np.ndarray
    load: np.ndarray
    speed_override: float
    input_ages: Mapping[str, float]


@dataclass(frozen=True)
class JointLimits:
    """Per-joint limits: positions already shrunk by the margin, velocity, acceleration."""

    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    velocity: np.ndarray
    acceleration: np.ndarray

    @classmethod
    def from_arm(cls, arm: ArmDescription, acceleration: Sequence[float], margin: float) -> JointLimits:
        if len(acceleration) != len(arm.joint_names):
            raise ValueError(f'limits.acceleration needs {len(arm.joint_names)} values, got {len(acceleration)}')
        return cls(arm.joint_names, arm.lower + margin, arm.upper - margin, arm.velocity.copy(),
                   np.asarray(acceleration, dtype=float))


def limit_step(target: np.ndarray, position: np.ndarray, velocity: np.ndarray, dt: float,
               limits: JointLimits) -> tuple[np.ndarray, list[str]]:
    """The reachable part of a move to ``target`` within ``dt``; notes name every limit applied.

    The mean velocity over the step may differ from the current one by at most acceleration × dt,
    stays within the velocity limit, and the result within the position limits.
    """
    notes = []
    wanted = (target - position) / dt
    reachable = np.clip(wanted, velocity - limits.acceleration * dt, velocity + limits.acceleration * dt)
    speed = np.clip(reachable, -limits.velocity, limits.velocity)
    result = np.clip(position + speed * dt, limits.lower, limits.upper)
    for index, name in enumerate(limits.names):
        if speed[index] != reachable[index]:
            notes.append(f'{name} velocity limited to {limits.velocity[index]:g} rad/s')
        elif reachable[index] != wanted[index]:
            notes.append(f'{name} acceleration limited to {limits.acceleration[index]:g} rad/s^2')
        if result[index] != position[index] + speed[index] * dt:
            notes.append(f'{name} position clamped to {result[index]:.3f} rad')
    return result, notes


def maintenance_cap(tasks: Iterable[tuple[str, Risk]], config: ActuationConfig) -> tuple[float, str]:
    """The speed override cap for planned maintenance, given (component, risk) pairs, and why."""
    caps = {Risk.CRITICAL: config.protection.derate_critical, Risk.HIGH: config.protection.derate_high}
    found = sorted((caps[risk], component, risk) for component, risk in tasks if risk in caps)
    if not found:
        return 1.0, 'no HIGH or CRITICAL maintenance risk'
    cap, component, risk = found[0]
    return cap, f'maintenance of {component} at {risk} risk'


class Arbiter:
    """Intents of every source, the limits, the watchdog and what the cell was last told."""

    def __init__(self, config: ActuationConfig, limits: JointLimits) -> None:
        self.config = config
        self.limits = limits
        self.refused: dict[str, int] = {source.value: 0 for source in Source}
        self._interval = 1.0 / config.limits.max_commands_per_s
        self._next_slot = -math.inf
        self._operator_stop = False
        self._latched: dict[str, str] = {}  # protective cause -> description, until an operator resume
        self._active: dict[str, str] = {}  # protective causes present now
        self._resume = False
        self._operator_speed: float | None = None
        self._cap, self._cap_reason = 1.0, ''
        self._speed_owned = False
        self._correction: tuple[Source, np.ndarray] | None = None
        self._cell_stopped: bool | None = None
        self._cell_speed: float | None = None
        self._state: StateSample | None = None
        self._state_time = -math.inf

    # ---------------------------------------------------------------- inputs

    def operator_stop(self, now: float) -> Decision:
        self._operator_stop = True
        self._resume = False
        return self._after(now, Source.OPERATOR, CellCommand(CommandName.STOP), 'cell already stopped')

    def operator_resume(self, now: float) -> Decision:
        request = CellCommand(CommandName.RESUME)
        self._operator_stop = False
        self._latched = {cause: text for cause, text in self._latched.items() if cause in self._active}
        if self._latched:
            return self._refuse(Source.OPERATOR, request, f'protective stop still active: {self._describe_latched()}')
        self._resume = True
        return self._after(now, Source.OPERATOR, request, 'resume deferred by the rate limit')

    def operator_speed(self, value: float, now: float) -> Decision:
        request = CellCommand(CommandName.SPEED_OVERRIDE, value)
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            return self._refuse(Source.OPERATOR, request, f'speed override {value} outside [0, 1]')
        self._operator_speed = value
        return self._after(now, Source.OPERATOR, request, self._speed_note())

    def protective(self, cause: str, active: bool, description: str, now: float) -> Decision | None:
        """A protective cause rising (latches a stop) or clearing (the stop stays until a resume)."""
        if active:
            self._active[cause] = self._latched[cause] = description
        else:
            self._active.pop(cause, None)
        return self.tick(now)

    def anomaly(self, sensor: str, method: str, severity: int, active: bool, description: str,
                now: float) -> Decision | None:
        """An anomaly event: one at least ``anomaly_severity`` rising raises a protective cause, any
        clearing clears it. Dropouts are the watchdog's: it stops on stale inputs and clears on fresh ones.
        """
        protection = self.config.protection
        severe = severity >= protection.anomaly_severity
        if not protection.stop_on_anomaly or method == MISSING or (active and not severe):
            return None
        return self.protective(f'anomaly {sensor}', active, description, now)

    def maintenance(self, cap: float, reason: str, now: float) -> Decision | None:
        """Cap the speed override (1.0: no cap)."""
        if (cap, reason) == (self._cap, self._cap_reason):
            return None
        self._cap, self._cap_reason = cap, reason
        return self.tick(now)

    def correction(self, positions: Sequence[float], now: float) -> Decision:
        """A trajectory correction: joint position targets in URDF order."""
        target = np.asarray(positions, dtype=float)
        request = CellCommand(CommandName.JOINT_POSITIONS, tuple(target.tolist()))
        if target.shape != self.limits.lower.shape or not np.all(np.isfinite(target)):
            return self._refuse(Source.TRAJECTORY, request, f'needs {len(self.limits.names)} finite positions')
        if self._stop_required() or self._cell_stopped:
            return self._refuse(Source.TRAJECTORY, request, 'cell is stopped')
        stale = self._staleness(now)
        if stale:
            return self._refuse(Source.TRAJECTORY, request, stale)
        self._correction = (Source.TRAJECTORY, target)
        return self._after(now, Source.TRAJECTORY, request, 'correction deferred by the rate limit')

    def observe_state(self, state: StateSample, now: float) -> Decision | None:
        """A twin/state arrived: feeds the watchdog (armed by the first one) and the overload check."""
        self._state, self._state_time = state, now
        limit = self.config.protection.overload
        over = np.flatnonzero(state.load > limit)
        return self.protective(OVERLOAD, len(over) > 0, ', '.join(
            f'{self.limits.names[i]} load {state.load[i]:.2f} > {limit:g}' for i in over), now)

    def link_lost(self, command: CellCommand) -> None:
        """The cell never acknowledged ``command``: forget what it was told so that it is sent again."""
        if command.name is CommandName.STOP:
            self._cell_stopped = None
        elif command.name is CommandName.RESUME:
            self._resume = True
        elif command.name is CommandName.SPEED_OVERRIDE:
            self._cell_speed = None

    # ---------------------------------------------------------------- decisions

    def tick(self, now: float) -> Decision | None:
        """The next command the cell needs, or None; stops are never delayed by the rate limit."""
        stale = self._staleness(now)
        if stale and self._state is not None:
            self._active[WATCHDOG] = self._latched[WATCHDOG] = stale
        else:
            self._active.pop(WATCHDOG, None)
        if self._stop_required() and not self._cell_stopped:
            self._cell_stopped = True
            self._resume, self._correction = False, None
            source, reason = self._stop_cause()
            return self._send(source, CellCommand(CommandName.STOP), reason, now)
        if now < self._next_slot:
            return None
        if self._resume and not self._stop_required():
            self._resume, self._cell_stopped = False, False
            return self._send(Source.OPERATOR, CellCommand(CommandName.RESUME), 'operator resume', now)
        speed = self._speed_command()
        if speed is not None:
            return self._send(*speed, now)
        if self._correction is not None:
            return self._send_correction(now)
        return None

    def watchdog_state(self, now: float) -> str:
        """'disarmed' before the first state, else 'ok' or why the inputs are stale."""
        if self._state is None:
            return 'disarmed: no twin/state yet'
        return self._staleness(now) or 'ok'

    def stop_causes(self) -> list[str]:
        """Why the cell is held stopped (empty when it is not)."""
        return (['operator stop'] if self._operator_stop else []) + [
            f'{cause}: {text}' for cause, text in self._latched.items()]

    def health(self, now: float) -> list[Status]:
        """Arbitration (WARN while holding the cell stopped) and the watchdog (WARN disarmed, ERROR on stale inputs)."""
        causes, watchdog = self.stop_causes(), self.watchdog_state(now)
        return [
            Status('arbitration', Level.WARN if causes else Level.OK,
                   f'holding the cell stopped: {"; ".join(causes)}' if causes else 'no stop requested',
                   {f'refused.{source}': count for source, count in self.refused.items()}),
            Status('watchdog', Level.OK if watchdog == 'ok' else Level.WARN if watchdog.startswith('disarmed')
                   else Level.ERROR, watchdog, {'timeout_s': self.config.watchdog.timeout})]

    # ---------------------------------------------------------------- internals

    def _stop_required(self) -> bool:
        return self._operator_stop or bool(self._latched)

    def _stop_cause(self) -> tuple[Source, str]:
        if self._operator_stop:
            return Source.OPERATOR, 'operator stop'
        cause, text = next(iter(self._latched.items()))
        return (Source.WATCHDOG if cause == WATCHDOG else Source.PROTECTIVE), f'{cause}: {text}'

    def _describe_latched(self) -> str:
        return '; '.join(f'{cause}: {text}' for cause, text in self._latched.items())

    def _staleness(self, now: float) -> str:
        if self._state is None:
            return 'no twin/state yet'
        timeout = self.config.watchdog.timeout
        age = now - self._state_time
        if age > timeout:
            return f'no twin/state for {age:.2f} s (> {timeout:g} s)'
        for topic in self.config.watchdog.required_inputs:
            input_age = self._state.input_ages.get(topic, math.inf) + age
            if input_age > timeout:
                return f'{topic} is {input_age:.2f} s old (> {timeout:g} s)'
        return ''

    def _target_speed(self) -> tuple[float, Source, str] | None:
        if self._operator_speed is None and self._cap >= 1.0 and not self._speed_owned:
            return None
        wanted = 1.0 if self._operator_speed is None else self._operator_speed
        if self._cap < wanted:
            return self._cap, Source.MAINTENANCE, f'capped at {self._cap:g} by {self._cap_reason}'
        if self._operator_speed is None:
            return wanted, Source.MAINTENANCE, f'derating lifted ({self._cap_reason})'
        return wanted, Source.OPERATOR, f'operator speed override {wanted:g}'

    def _speed_command(self) -> tuple[Source, CellCommand, str] | None:
        target = self._target_speed()
        if target is None:
            return None
        value, source, reason = target
        if value == self._cell_speed:
            return None
        reference = self._cell_speed
        if reference is None and self._state is not None:
            reference = self._state.speed_override
        step = self.config.limits.max_speed_step
        if reference is not None and value > reference + step:
            value = round(reference + step, 9)
            reason += f'; ramping by {step:g} per command'
        self._cell_speed = value
        self._speed_owned = True
        return source, CellCommand(CommandName.SPEED_OVERRIDE, value), reason

    def _speed_note(self) -> str:
        target = self._target_speed()
        if target is not None and target[0] == self._cell_speed:
            return f'cell already at {target[0]:g}: {target[2]}'
        return 'speed override deferred by the rate limit'

    def _send_correction(self, now: float) -> Decision:
        assert self._correction is not None  # tick sends one only when there is one
        source, target = self._correction
        self._correction = None
        request = CellCommand(CommandName.JOINT_POSITIONS, tuple(target.tolist()))
        stale = self._staleness(now)
        if stale:
            return self._refuse(source, request, stale)
        assert self._state is not None  # without a state, the inputs are stale
        positions, notes = limit_step(target, self._state.position, self._state.velocity, self._interval,
                                      self.limits)
        command = CellCommand(CommandName.JOINT_POSITIONS, tuple(positions.tolist()))
        return self._send(source, command, '; '.join(['trajectory correction', *notes]), now, request)

    def _after(self, now: float, source: Source, request: CellCommand, idle_reason: str) -> Decision:
        """The decision for an accepted input: the command it led to, or why nothing was sent now."""
        decision = self.tick(now)
        if decision is not None:
            return decision
        return Decision(source, request, None, True, idle_reason)

    def _send(self, source: Source, command: CellCommand, reason: str, now: float,
              request: CellCommand | None = None) -> Decision:
        if command.name is not CommandName.STOP:
            self._next_slot = now + self._interval
        return Decision(source, request or command, command, True, reason)

    def _refuse(self, source: Source, request: CellCommand, reason: str) -> Decision:
        self.refused[source.value] += 1
        return Decision(source, request, None, False, reason)
