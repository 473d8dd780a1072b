"""predictor node: twin/joint_states in; predicted joint trajectory and its uncertainty out.

Publishes ``trajectory_msgs/JointTrajectory`` on ``twin/predicted_trajectory`` (ensemble-mean
positions with ``time_from_start``) and on ``twin/predicted_trajectory_std`` the same points with
the per-joint ensemble standard deviation (rad) as positions; the last measured torque is held
over the horizon. Refinement runs in a background thread and swaps the weights atomically.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from twin_core.config import ConfigError
from twin_core.paths import config_dir
from twin_core.stamps import from_msg, from_seconds, to_seconds
from twin_predictor.config import PredictorConfig
from twin_predictor.feed import feed_health, joint_vectors
from twin_predictor.predictor import Prediction, Predictor, Refiner, ReplayBuffer
from twin_predictor.registry import PredictionCache, load
from twin_ros.common import declare_config, run, status, supervised_workers
from twin_ros.stamps import to_duration

DEFAULT_MODEL = 'models/predictor'


def trajectory(header: object, joint_names: list[str], times: np.ndarray, rows: np.ndarray) -> JointTrajectory:
    return JointTrajectory(header=header, joint_names=joint_names, points=[
        JointTrajectoryPoint(positions=row.tolist(), time_from_start=to_duration(from_seconds(t)))
        for t, row in zip(times, rows)])


class PredictorNode(Node):
    """Predicts the arm's joint trajectory from the latest joint state at ``rate_hz``."""

    def __init__(self) -> None:
        super().__init__('predictor')
        self._config = config = declare_config(self, PredictorConfig)
        directory = Path(config.model) if config.model else config_dir() / DEFAULT_MODEL
        if not (directory / 'metadata.json').is_file():
            raise ConfigError(f'{self.get_name()}.model: no saved model in {directory}')
        torch.set_num_threads(1)
        model, self._metadata = load(directory)
        self._joints: list[str] = self._metadata['joint_names']
        self._predictor = Predictor(model, self._metadata['version'], config.step,
                                    max(1, round(config.horizon / config.step)), PredictionCache(config.cache_size))
        self._buffer = ReplayBuffer(config.refine.buffer, config.refine.max_gap)
        self._workers = supervised_workers(self)
        self._refiner = Refiner(self._predictor, self._buffer, config.refine.period, config.refine.steps,
                                config.refine.min_samples, config.refine.learning_rate, self._workers)
        self._latest: tuple[JointState, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._last_prediction: Prediction | None = None
        self._order_error = ''
        self._trajectory_pub = self.create_publisher(JointTrajectory, 'twin/predicted_trajectory', 10)
        self._std_pub = self.create_publisher(JointTrajectory, 'twin/predicted_trajectory_std', 10)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, 'diagnostics', 10)
        self.create_subscription(JointState, 'twin/joint_states', self._on_joint_state, qos_profile_sensor_data)
        self.create_timer(1.0 / config.rate_hz, self._on_predict)
        self.create_timer(1.0 / config.diagnostics_rate_hz, self._on_diagnostics)
        if config.refine.enabled:
            self._refiner.start()

    def destroy_node(self) -> None:
        if self._config.refine.enabled:
            self._refiner.stop()
        self._workers.stop()
        super().destroy_node()

    def _on_joint_state(self, msg: JointState) -> None:
        try:
            q, qd, tau = joint_vectors(msg.name, msg.position, msg.velocity, msg.effort, self._joints)
        except ValueError as error:
            self._order_error = str(error)
            return
        self._latest = (msg, q, qd, tau)
        self._buffer.add(to_seconds(from_msg(msg.header.stamp)), q, qd, tau)

    def _on_predict(self) -> None:
        if self._latest is None:
            return
        msg, q, qd, tau = self._latest
        prediction = self._last_prediction = self._predictor.predict(q, qd, tau)
        self._trajectory_pub.publish(trajectory(msg.header, self._joints, prediction.times, prediction.mean))
        self._std_pub.publish(trajectory(msg.header, self._joints, prediction.times, prediction.std))

    def _on_diagnostics(self) -> None:
        prediction, cache = self._last_prediction, self._predictor.cache
        values = {'model': self._metadata['name'], 'model_version': self._predictor.version,
                  'refinements': self._refiner.refinements, 'refine_loss': self._refiner.last_loss,
                  'replay_samples': len(self._buffer), 'cache_hits': cache.hits, 'cache_misses': cache.misses}
        if prediction is not None:
            values['inference_us_per_step'] = self._predictor.micros_per_step
            values['horizon_std_max_rad'] = float(prediction.std[-1].max())
        level, message = feed_health(self._order_error, prediction is not None)
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [status(f'{self.get_name()}: model', level, message, values=values)]
        self._diagnostics_pub.publish(array)


def main(args: list[str] | None = None) -> int:
    return run(PredictorNode, 'predictor', args)
