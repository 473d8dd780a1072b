"""predictor node: twin/joint_states (and the cell's plan) in; predicted joint trajectory and its uncertainty out.

Publishes ``trajectory_msgs/JointTrajectory`` on ``twin/predicted_trajectory`` (ensemble-mean
positions with ``time_from_start``) and on ``twin/predicted_trajectory_std`` the same points with
the per-joint ensemble standard deviation (rad) as positions, and ``twin_interfaces/PredictionInfo``
on ``twin/prediction_info`` with the same header: which mode made it. With a recent plan on
``plan/joint_trajectory`` the model is driven by the identified controller model along it over
``plan.horizon`` (mode ``plan``); without one the last measured torque is held over ``horizon``
(mode ``torque_hold``). Refits of the controller model (``adapt``) and of the dynamics (``refine``)
run in background workers on a recent window of joint states; a refit is swapped in atomically
(a new model version) only when it predicts the window's held-out end better
(``twin_predictor.adaptation``); ``predictor: adaptation`` on /diagnostics counts them.
"""
from __future__ import annotations

import math
from collections import Counter, deque
from pathlib import Path

import numpy as np
import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from twin_core.config import ConfigError
from twin_core.levels import Level
from twin_core.paths import config_dir
from twin_core.stamps import from_msg, from_seconds, to_seconds
from twin_core.trajectory import JointPlan
from twin_interfaces.msg import PredictionInfo
from twin_predictor.adaptation import ControllerRefit, Guard, GuardSettings, Refiner
from twin_predictor.config import PredictorConfig
from twin_predictor.feed import feed_health, joint_vectors
from twin_predictor.heldout import TrackingWindow
from twin_predictor.plan import CONTROLLER_FILE, ControllerModel, supports_plan
from twin_predictor.predictor import Prediction, Predictor, ReplayBuffer
from twin_predictor.registry import PredictionCache, load
from twin_ros.common import ANALYTICS_BATCH_PERIOD_NS, SENSOR_INPUT, declare_config, run, status, supervised_workers
from twin_ros.stamps import to_duration

DEFAULT_MODEL = 'models/predictor'
PLAN_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
PLANS_KEPT = 64  # recent plans, to pick the one in force at a joint state's stamp


def trajectory(header: object, joint_names: list[str], times: np.ndarray, rows: np.ndarray) -> JointTrajectory:
    return JointTrajectory(header=header, joint_names=joint_names, points=[
        JointTrajectoryPoint(positions=row.tolist(), time_from_start=to_duration(from_seconds(t)))
        for t, row in zip(times, rows)])


class PredictorNode(Node):
    """Predicts the arm's joint trajectory from the latest joint state at ``rate_hz``."""

    def __init__(self) -> None:
        super().__init__('predictor')
        self._config = config = declare_config(self, PredictorConfig)
        self.spin_batch_period_ns = ANALYTICS_BATCH_PERIOD_NS
        directory = Path(config.model) if config.model else config_dir() / DEFAULT_MODEL
        if not (directory / 'metadata.json').is_file():
            raise ConfigError(f'{self.get_name()}.model: no saved model in {directory}')
        torch.set_num_threads(1)
        model, self._metadata = load(directory)
        self._joints: list[str] = self._metadata['joint_names']
        self._order_error = ''
        self._plan_error = ''
        controller = self._load_controller(directory, model)
        self._predictor = Predictor(model, self._metadata['version'], config.step,
                                    max(1, round(config.horizon / config.step)), PredictionCache(config.cache_size),
                                    controller)
        self._buffer = ReplayBuffer(config.refine.buffer, config.refine.max_gap)
        self._workers = supervised_workers(self)
        adapt = config.adapt
        self._window = TrackingWindow(adapt.window)
        self._guard = Guard(self._predictor, self._window, GuardSettings(
            adapt.window, adapt.holdout, adapt.margin, config.plan.horizon, config.plan.step, adapt.starts))
        self._refiner = Refiner(self._predictor, self._buffer, config.refine.period, config.refine.steps,
                                config.refine.min_samples, config.refine.learning_rate, self._workers, self._guard)
        self._adapting = adapt.enabled and controller is not None
        self._refit = ControllerRefit(self._guard, adapt.period, self._workers)
        self._latest: tuple[JointState, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._last_prediction: Prediction | None = None
        self._plans: deque[JointPlan] = deque(maxlen=PLANS_KEPT)
        self._plans_received = 0
        self._modes: Counter[str] = Counter()
        self._plan_age = math.nan
        self._plan_steps = max(1, round(config.plan.horizon / config.plan.step))
        self._info_pub = self.create_publisher(PredictionInfo, 'twin/prediction_info', 10)
        if controller is not None:
            self.create_subscription(JointTrajectory, 'plan/joint_trajectory', self._on_plan, PLAN_QOS)
        self._trajectory_pub = self.create_publisher(JointTrajectory, 'twin/predicted_trajectory', 10)
        self._std_pub = self.create_publisher(JointTrajectory, 'twin/predicted_trajectory_std', 10)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, 'diagnostics', 10)
        self.create_subscription(JointState, 'twin/joint_states', self._on_joint_state, SENSOR_INPUT)
        self.create_timer(1.0 / config.rate_hz, self._on_predict)
        self.create_timer(1.0 / config.diagnostics_rate_hz, self._on_diagnostics)
        if config.refine.enabled:
            self._refiner.start()
        if self._adapting:
            self._refit.start()

    def _load_controller(self, directory: Path, model: object) -> ControllerModel | None:
        """The controller model to follow plans with; None when plans are off."""
        plan = self._config.plan
        if not plan.enabled:
            return None
        path = Path(plan.controller) if plan.controller else directory / CONTROLLER_FILE
        if not path.is_file():
            if plan.controller:
                raise ConfigError(f'{self.get_name()}.plan.controller: file not found: {path}')
            self._plan_error = f'no controller model ({path}): plans are not followed'
            self.get_logger().warning(self._plan_error)
            return None
        if not supports_plan(model):  # type: ignore[arg-type]
            raise ConfigError(f'{self.get_name()}.plan.enabled: the model in {directory} cannot follow a plan '
                              '(needs a physics-informed model)')
        try:
            controller = ControllerModel.load(path)
        except ValueError as error:
            raise ConfigError(f'{self.get_name()}.plan.controller: {error}') from None
        if list(controller.joint_names) != self._joints:
            raise ConfigError(f'{self.get_name()}.plan.controller: joints {list(controller.joint_names)} '
                              f'are not the model\'s {self._joints}')
        return controller

    def _on_plan(self, msg: JointTrajectory) -> None:
        try:
            plan = JointPlan.from_message(msg)
        except ValueError as error:
            self._plan_error = f'plan refused: {error}'
            return
        if list(plan.joint_names) != self._joints:
            self._plan_error = f'plan joints {list(plan.joint_names)} are not {self._joints}'
            return
        self._plan_error = ''
        self._plans.append(plan)
        self._plans_received += 1

    def _plan_at(self, stamp: int) -> JointPlan | None:
        """The newest plan stamped at or before ``stamp`` and at most ``plan.timeout`` older."""
        for plan in reversed(self._plans):
            if plan.stamp <= stamp:
                return plan if to_seconds(stamp - plan.stamp) <= self._config.plan.timeout else None
        return None

    def destroy_node(self) -> None:
        self._workers.stop()  # the refiner's and the controller refit's too
        super().destroy_node()

    def _on_joint_state(self, msg: JointState) -> None:
        try:
            q, qd, tau = joint_vectors(msg.name, msg.position, msg.velocity, msg.effort, self._joints)
        except ValueError as error:
            self._order_error = str(error)
            return
        self._latest = (msg, q, qd, tau)
        stamp = from_msg(msg.header.stamp)
        self._buffer.add(to_seconds(stamp), q, qd, tau)
        if self._adapting or self._config.refine.enabled:
            plan = self._plan_at(stamp) if self._predictor.controller is not None else None
            self._window.add(to_seconds(stamp), q, qd, tau, plan,
                             to_seconds(stamp - plan.stamp) if plan is not None else math.nan)

    def _on_predict(self) -> None:
        if self._latest is None:
            return
        msg, q, qd, tau = self._latest
        stamp = from_msg(msg.header.stamp)
        plan = self._plan_at(stamp) if self._predictor.controller is not None else None
        if plan is not None:
            age = to_seconds(stamp - plan.stamp)
            prediction = self._predictor.predict_with_plan(q, qd, plan, age, self._config.plan.step, self._plan_steps)
        else:
            age = math.nan
            prediction = self._predictor.predict(q, qd, tau)
        self._last_prediction, self._plan_age = prediction, age
        self._modes[prediction.mode] += 1
        self._info_pub.publish(PredictionInfo(header=msg.header, mode=prediction.mode,
                                              horizon=float(prediction.times[-1]), plan_age=age,
                                              model_version=prediction.version))
        self._trajectory_pub.publish(trajectory(msg.header, self._joints, prediction.times, prediction.mean))
        self._std_pub.publish(trajectory(msg.header, self._joints, prediction.times, prediction.std))

    def _on_diagnostics(self) -> None:
        prediction, cache = self._last_prediction, self._predictor.cache
        values = {'model': self._metadata['name'], 'model_version': self._predictor.version,
                  'refinements': self._refiner.refinements, 'refine_loss': self._refiner.last_loss,
                  'replay_samples': len(self._buffer), 'cache_hits': cache.hits, 'cache_misses': cache.misses}
        values |= {f'predictions.{mode}': count for mode, count in sorted(self._modes.items())}
        if self._predictor.controller is not None:
            values |= {'plans_received': self._plans_received, 'plan_age_s': self._plan_age}
        if prediction is not None:
            values['mode'] = prediction.mode
            values['horizon_s'] = float(prediction.times[-1])
            values['inference_us_per_step'] = self._predictor.micros_per_step
            values['horizon_std_max_rad'] = float(prediction.std[-1].max())
        level, message = feed_health(self._order_error or self._plan_error, prediction is not None)
        if prediction is not None and not (self._order_error or self._plan_error):
            message = f'predicting ({prediction.mode})'

        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [status(f'{self.get_name()}: model', level, message, values=values), self._adaptation_status()]
        self._diagnostics_pub.publish(array)

    def _adaptation_status(self) -> DiagnosticStatus:
        """Refits per part (controller, dynamics): accepted, rejected, last held-out errors, the last outcome."""
        values: dict[str, object] = {'model_version': self._predictor.version,
                                     'window_samples': len(self._window)}
        for part, verdict in self._guard.verdicts.items():
            values |= {f'{part}.accepted': verdict.accepted, f'{part}.rejected': verdict.rejected,
                       f'{part}.current_error_mrad': 1e3 * verdict.current_error,
                       f'{part}.candidate_error_mrad': 1e3 * verdict.candidate_error, f'{part}.last': verdict.last}
        parts = [name for name, on in (('controller', self._adapting), ('dynamics', self._config.refine.enabled)) if on]
        message = ('refitting ' + ' and '.join(parts)) if parts else 'no online refits'
        return status(f'{self.get_name()}: adaptation', Level.OK, message, values=values)


def main(args: list[str] | None = None) -> int:
    return run(PredictorNode, 'predictor', args)
