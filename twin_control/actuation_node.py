"""actuation node: the twin's decisions and the operator's commands, arbitrated, sent to the cell."""
from __future__ import annotations

import time

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Empty, Float64, Header

from twin_control.command_link import TIMEOUT, CommandLink, Outcome
from twin_control.config import ActuationConfig
from twin_control.safety import Arbiter, Decision, JointLimits, StateSample, maintenance_cap
from twin_control.tracking import Deviation, TrackingMonitor
from twin_core import cdr
from twin_core.config import ConfigError
from twin_core.levels import Level, Risk
from twin_core.stamps import from_seconds
from twin_core.urdf import read_arm_description, urdf_file
from twin_interfaces.msg import AnomalyEvent, CommandAudit, MaintenanceSchedule, TwinState
from twin_ros.common import LATCHED, SENSOR_INPUT, declare_config, plain_cdr, run, status

Tag = tuple[Decision, Time]
TRACKING = 'tracking'  # the protective cause of a tracking deviation


class ActuationNode(Node):
    """Feeds inputs to the arbiter, sends its commands over the command link and audits both."""

    def __init__(self) -> None:
        super().__init__('actuation')
        self._config = config = declare_config(self, ActuationConfig)
        # inputs taken together within a quarter of the shortest deviation it judges (tracking.duration)
        self.spin_batch_period_ns = from_seconds(config.tracking.duration) // 4
        urdf = urdf_file(config.limits.urdf)
        if not urdf.is_file():
            raise ConfigError(f'{self.get_name()}.limits.urdf: no such file: {urdf}')
        try:
            limits = JointLimits.from_arm(read_arm_description(urdf), config.limits.acceleration,
                                          config.limits.position_margin)
        except ValueError as error:
            raise ConfigError(f'{self.get_name()}.{error}') from None
        self._arbiter = Arbiter(config, limits)
        self._link: CommandLink[Tag] = CommandLink(config.link)
        self._link.open()
        self._audit = self.create_publisher(CommandAudit, 'twin/actuation/audit', 10)
        self._diagnostics = self.create_publisher(DiagnosticArray, 'diagnostics', 10)
        arbiter = self._arbiter
        self.create_subscription(TwinState, 'twin/state', self._on_state, 10)
        self.create_subscription(Float64, 'twin/commands/speed_override',
                                 lambda m: self._handle(arbiter.operator_speed(m.data, time.monotonic())), 10)
        self.create_subscription(Empty, 'twin/commands/stop',
                                 lambda _: self._handle(arbiter.operator_stop(time.monotonic())), 10)
        self.create_subscription(Empty, 'twin/commands/resume',
                                 lambda _: self._handle(arbiter.operator_resume(time.monotonic())), 10)
        self.create_subscription(AnomalyEvent, 'twin/anomalies', self._on_anomaly, 10)
        self.create_subscription(MaintenanceSchedule, 'twin/maintenance_schedule', self._on_schedule, LATCHED)
        self.create_subscription(JointState, 'twin/corrections/joint_positions', self._on_correction, 10)
        tracking = config.tracking
        self._tracking = TrackingMonitor(limits.names, tracking.bound, tracking.duration, tracking.max_gap,
                                         tracking.settle)
        self._tracking_fault = False
        if tracking.enabled:
            self.create_subscription(JointState, 'plan/desired_joint_states',
                                     plain_cdr(JointState, self._on_desired), SENSOR_INPUT, raw=True)
            self.create_subscription(JointState, tracking.measured, plain_cdr(JointState, self._on_measured),
                                     SENSOR_INPUT, raw=True)
        self.create_timer(1.0 / config.tick_rate_hz, self._tick)
        self.create_timer(1.0 / config.diagnostics_rate_hz, self._publish_diagnostics)
        self.get_logger().info(f'commanding udp://{config.link.host}:{config.link.port}')

    # ---------------------------------------------------------------- inputs

    def _on_state(self, message: TwinState) -> None:
        index = {name: i for i, name in enumerate(message.joint_names)}
        try:
            order = [index[name] for name in self._arbiter.limits.names]
        except KeyError as missing:
            self.get_logger().warning(f'twin/state without joint {missing}', throttle_duration_sec=10.0)
            return
        sample = StateSample(
            position=_pick(message.position, order), velocity=_pick(message.velocity, order),
            load=_pick(message.load, order), speed_override=message.speed_override,
            input_ages=dict(zip(message.input_topics, message.input_ages)))
        self._handle(self._arbiter.observe_state(sample, time.monotonic()))

    def _tracked_positions(self, data: bytes) -> tuple[int, np.ndarray] | None:
        """Stamp and positions of the tracked joints in a serialized JointState; None without them."""
        try:
            message = cdr.decode_joint_state(data)
        except ValueError as error:
            self.get_logger().warning(f'joint state refused: {error}', throttle_duration_sec=10.0)
            return None
        positions = dict(zip(message.name, message.position))
        if not all(name in positions for name in self._tracking.joint_names):
            return None
        return message.stamp_ns, np.array([positions[name] for name in self._tracking.joint_names], dtype=float)

    def _on_desired(self, data: bytes) -> None:
        if (tracked := self._tracked_positions(data)) is not None:
            self._judge_tracking(self._tracking.desired(*tracked))

    def _on_measured(self, data: bytes) -> None:
        if (tracked := self._tracked_positions(data)) is not None:
            self._judge_tracking(self._tracking.measured(*tracked))

    def _judge_tracking(self, judged: list[Deviation]) -> None:
        for deviation in judged:
            if deviation.exceeded != self._tracking_fault:
                self._tracking_fault = deviation.exceeded
                self._handle(self._arbiter.protective(TRACKING, deviation.exceeded, deviation.description,
                                                      time.monotonic()))

    def _on_anomaly(self, event: AnomalyEvent) -> None:
        description = event.description or f'{event.method} score {event.score:.3g} > {event.threshold:.3g}'
        self._handle(self._arbiter.anomaly(event.sensor, event.method, event.severity, event.active, description,
                                           time.monotonic()))

    def _on_schedule(self, schedule: MaintenanceSchedule) -> None:
        cap, reason = maintenance_cap(((t.component, Risk.named(t.risk)) for t in schedule.tasks), self._config)
        self._handle(self._arbiter.maintenance(cap, reason, time.monotonic()))

    def _on_correction(self, message: JointState) -> None:
        targets = dict(zip(message.name, message.position))
        positions = [targets[name] for name in self._arbiter.limits.names if name in targets]
        self._handle(self._arbiter.correction(positions, time.monotonic()))

    # ---------------------------------------------------------------- commands and audit

    def _tick(self) -> None:
        now = time.monotonic()
        for outcome in self._link.poll(now):
            self._finish(outcome)
        while (decision := self._arbiter.tick(now)) is not None:
            self._handle(decision)

    def _handle(self, decision: Decision | None) -> None:
        if decision is None:
            return
        stamp = self.get_clock().now().to_msg()
        if decision.command is None:
            self._publish_audit(decision, stamp, False, '')
            return
        seq, superseded = self._link.send(decision.command, (decision, stamp), time.monotonic())
        self.get_logger().info(f'seq {seq} {decision.command.name} {decision.command.value or ""} '
                               f'({decision.source}): {decision.reason}')
        for outcome in superseded:
            self._finish(outcome)

    def _finish(self, outcome: Outcome[Tag]) -> None:
        decision, stamp = outcome.tag
        if outcome.error == TIMEOUT:
            self._arbiter.link_lost(outcome.command)
            self.get_logger().error(f'{outcome.command.name} seq {outcome.seq}: no ack after {outcome.attempts} sends')
        self._publish_audit(decision, stamp, outcome.ok, outcome.error)

    def _publish_audit(self, decision: Decision, stamp: Time, ack_ok: bool, ack_error: str) -> None:
        command = decision.command or decision.request
        value = command.value
        self._audit.publish(CommandAudit(
            stamp=stamp, source=decision.source.value, command=command.name.value,
            value=[] if value is None else list(value) if isinstance(value, tuple) else [value],
            accepted=decision.accepted, reason=decision.reason, ack_ok=ack_ok, ack_error=ack_error))
        if not decision.accepted:
            self.get_logger().warning(f'refused {command.name} from {decision.source}: {decision.reason}')

    # ---------------------------------------------------------------- health

    def _publish_diagnostics(self) -> None:
        now, name = time.monotonic(), self.get_name()
        reports = [self._link.health(now), *self._arbiter.health(now)]
        statuses = [status(f'{name}: {r.name}', r.level, r.message, r.hardware_id, r.values) for r in reports]
        if self._config.tracking.enabled:
            latest = self._tracking.latest
            level, message = ((Level.WARN, 'no desired joint states paired yet') if latest is None else
                              (Level.ERROR, latest.description) if self._tracking_fault else
                              (Level.WARN, latest.description) if not latest.paired else
                              (Level.OK, f'within {self._config.tracking.bound:g} rad of the plan'))
            statuses.append(status(f'{name}: tracking', level, message, values=self._tracking.values()))
        self._diagnostics.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()),
                                                  status=statuses))

    def destroy_node(self) -> None:
        """Close the command socket (absent when the configuration was refused)."""
        link = getattr(self, '_link', None)
        if link is not None:
            link.close()
        super().destroy_node()


def _pick(values: object, order: list[int]) -> np.ndarray:
    return np.asarray(values, dtype=float)[order]


def main(args: list[str] | None = None) -> int:
    """Console-script entry point."""
    return run(ActuationNode, 'actuation', args)
