"""workcell_sim node: the simulated robot cell, with its ground truth on ROS topics.

The physics runs in its own thread at real time (× ``speed``) and talks to the twin
only through the hardware channels (serial ptys, UDP, OPC UA). The node adds what a
real cell does not have: ground truth (``~/joint_states``, ``~/truth``), fault
injection (``~/inject_fault``) and its own health on ``/diagnostics``.
"""
from __future__ import annotations

import threading

import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Header

from twin_core.config import ConfigError
from twin_core.stamps import from_seconds
from twin_interfaces.msg import WorkcellTruth
from twin_interfaces.srv import InjectFault
from twin_ros.common import declare_config, run, status
from twin_ros.stamps import to_msg
from twin_sim.diagnostics import channel_statuses, physics_status
from twin_sim.scenario import Fault, ScenarioError
from twin_sim.sim_config import WorkcellSimConfig, build_runner, describe_channels
from twin_sim.workcell import Truth


class WorkcellSimNode(Node):
    """Runs the simulated cell and publishes its ground truth and health."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._physics: threading.Thread | None = None
        self._recorder = None
        super().__init__('workcell_sim')
        self._config = declare_config(self, WorkcellSimConfig)
        self._runner, self._recorder = build_runner(self._config)
        self._joint_names = list(self._runner.workcell.joint_names)
        self._joint_states = self.create_publisher(JointState, '~/joint_states', 10)
        self._truth = self.create_publisher(WorkcellTruth, '~/truth', 10)
        self._diagnostics = self.create_publisher(DiagnosticArray, 'diagnostics', 10)
        self.create_service(InjectFault, '~/inject_fault', self._inject_fault)
        # Ground truth is published from the physics thread, on simulated time, stamped with
        # the instant it describes.
        self._runner.every(1.0 / self._config.joint_states_rate_hz, self._publish_joint_states)
        self._runner.every(1.0 / self._config.truth_rate_hz, self._publish_truth)
        self.create_timer(1.0 / self._config.diagnostics_rate_hz, self._publish_diagnostics)
        self._failure: BaseException | None = None
        self._physics = threading.Thread(target=self._simulate, name='physics')
        self._physics.start()
        self.get_logger().info(
            f'simulating {self._config.scenario} at speed {self._config.speed} '
            f'(seed {self._config.seed}); channels: {describe_channels(self._config.channels)}')

    def _simulate(self) -> None:
        try:
            self._runner.run(None, self._stop)
        except Exception as error:  # reported by the next diagnostics tick, which ends the node
            self._failure = error

    def _header(self, wall_time: float | None = None) -> Header:
        stamp = self.get_clock().now().nanoseconds if wall_time is None else from_seconds(wall_time)
        return Header(stamp=to_msg(stamp), frame_id='base_link')

    def _truth_now(self) -> tuple[Truth, Header]:
        """The workcell's state this instant (physics thread only) and its header."""
        truth = self._runner.workcell.truth()
        return truth, self._header(self._runner.wall_time_of(truth.time))

    def _publish_joint_states(self) -> None:
        truth, header = self._truth_now()
        self._joint_states.publish(JointState(
            header=header, name=self._joint_names, position=truth.q.tolist(),
            velocity=truth.qd.tolist(), effort=truth.tau.tolist()))

    def _publish_truth(self) -> None:
        truth, header = self._truth_now()
        self._truth.publish(WorkcellTruth(
            header=header, sim_time=truth.time, joint_names=self._joint_names,
            position=truth.q.tolist(), velocity=truth.qd.tolist(), effort=truth.tau.tolist(),
            motor_temperature=truth.motor_temp.tolist(),
            coulomb_friction=truth.coulomb_friction.tolist(),
            viscous_friction=truth.viscous_friction.tolist(), wear=truth.wear.tolist(),
            health=truth.health.tolist(), vibration_rms=truth.vibration_rms.tolist(),
            task_id=truth.task_id, task_phase=truth.task_phase,
            task_progress=truth.task_progress, speed_override=truth.speed_override,
            stopped=truth.stopped, mode=truth.mode, active_faults=list(truth.active_faults)))

    def _publish_diagnostics(self) -> None:
        if self._failure is not None:
            raise RuntimeError('the physics thread failed') from self._failure
        stats = self._runner.stats()
        truth = self._runner.truth()
        entries = [physics_status(stats, truth, self._config.speed), *channel_statuses(stats)]
        self._diagnostics.publish(DiagnosticArray(header=self._header(), status=[
            status(f'{self.get_name()}: {e.name}', e.level, e.message, 'workcell_sim', e.values)
            for e in entries]))

    def _inject_fault(self, request: InjectFault.Request,
                      response: InjectFault.Response) -> InjectFault.Response:
        try:
            parameters = {kv.key: yaml.safe_load(kv.value) for kv in request.fault.parameters}
            fault = Fault(type=request.fault.type, target=request.fault.target,
                          duration=request.fault.duration or float('inf'), parameters=parameters)
            self._runner.inject_fault(fault).result(timeout=2.0)
        except (ScenarioError, ConfigError, ValueError, yaml.YAMLError, TimeoutError) as error:
            response.accepted, response.message = False, str(error)
            self.get_logger().warning(f'fault rejected: {error}')
            return response
        response.accepted, response.message = True, f'injected {fault.label}'
        self.get_logger().info(response.message)
        return response

    def destroy_node(self) -> None:
        """Stop the physics thread and close channels and the truth files first."""
        self._stop.set()
        if self._physics is not None:
            self._physics.join(timeout=10.0)
        if self._recorder is not None:
            self._recorder.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Console-script entry point."""
    return run(WorkcellSimNode, 'workcell_sim', args)
