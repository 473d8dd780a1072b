"""Player node: replays a bag onto its topics (raw CDR) at a rate factor, optionally looped,
filtered, restamped to the time it plays, in its namespace and with the bag time on ``/clock``;
reports the messages published per topic on ``diagnostics``; exits at the end of the bag unless
looping.

    twin_play run1 --rate 2.0 --topics scan twin/state --clock --loop
    twin_play run1 --loop --restamp --namespaced --ros-args -r __ns:=/robot_2
"""
from __future__ import annotations

import argparse
import threading
from pathlib import Path
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy._rclpy_pybind11 import RCLError
from rclpy.exceptions import InvalidHandle
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosbags.highlevel import AnyReaderError
from rosgraph_msgs.msg import Clock
from std_msgs.msg import Header

from twin_bag.config import RELIABLE_DEPTH, PlayerConfig
from twin_bag.player import Playback
from twin_core.config import ConfigError
from twin_core.levels import Level
from twin_ros.common import declare_config, qos_profile, run_cli, status
from twin_ros.messages import message_class
from twin_ros.stamps import to_msg

CLOCK_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)


class Player(Node):
    """Replays the bag from a worker thread; shuts the context down when the bag ends.

    A message it cannot restamp stops the replay: the node stays up with the error as ERROR
    on ``diagnostics``.
    """

    def __init__(self, overrides: list[Parameter] | None = None) -> None:
        super().__init__('twin_player', parameter_overrides=overrides or [])
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._play, daemon=True)
        self._playback: Playback | None = None
        self._failure = ''
        self._config = config = declare_config(self, PlayerConfig)
        topics = [f'/{t.lstrip("/")}' if config.namespaced else self.resolve_topic_name(t) for t in config.topics]
        try:
            self._playback = Playback(Path(config.bag).expanduser(), topics)
        except (AnyReaderError, OSError, ValueError) as error:
            raise ConfigError(f'{self.get_name()}.bag: {error}') from None
        try:
            self._outputs = {
                topic.name: self.create_publisher(
                    message_class(topic.msgtype), topic.name.lstrip('/') if config.namespaced else topic.name,
                    qos_profile(topic.qos, RELIABLE_DEPTH))
                for topic in self._playback.topics.values()}
        except LookupError as error:
            raise ConfigError(f'{self.get_name()}.bag: {error}') from None
        self._bag_clock = self.create_publisher(Clock, '/clock', CLOCK_QOS) if config.clock else None
        self._diagnostics = self.create_publisher(DiagnosticArray, 'diagnostics', 10)
        self.create_timer(1.0 / config.diagnostics_rate_hz, self._publish_diagnostics)
        self._worker.start()

    def _publish(self, topic: str, data: bytes) -> None:
        self._outputs[topic].publish(data)

    def _publish_diagnostics(self) -> None:
        """``<node>: playback`` (passes, or the error that stopped it) and ``<node>: <topic>``
        per topic with the messages published so far (cumulative).
        """
        playback = self._playback
        if playback is None:
            return
        name, bag = self.get_name(), self._config.bag
        level, message = (Level.ERROR, self._failure) if self._failure else (Level.OK, 'playing')
        self._diagnostics.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()), status=[
            status(f'{name}: playback', level, message, bag, {'passes': playback.passes}),
            *(status(f'{name}: {self._outputs[topic].topic_name}', Level.OK, 'published', bag, {'messages': count})
              for topic, count in playback.published.items())]))

    def _publish_clock(self, stamp_ns: int) -> None:
        assert self._bag_clock is not None
        self._bag_clock.publish(Clock(clock=to_msg(stamp_ns)))

    def _play(self) -> None:
        config = self._config
        self.get_logger().info(f'playing {config.bag} ({len(self._outputs)} topics) at '
                               f'{config.rate}x{" in a loop" if config.loop else ""}')
        if self._stop.wait(config.delay_s):
            return
        try:
            played = self._playback.run(
                self._publish, config.rate, config.loop, self._stop,
                self._publish_clock if self._bag_clock else None, 1.0 / config.clock_rate_hz, config.restamp)
        except (RCLError, InvalidHandle):  # the context shut down mid-publish
            return
        except ValueError as error:  # a recorded message without the header it should have
            self._failure = f'replay stopped: {error}'
            self.get_logger().error(self._failure)
            return
        self.get_logger().info(f'played {played} messages')
        rclpy.try_shutdown(context=self.context)

    def destroy_node(self) -> None:
        """Stop the replay and close the bag (once: rclpy also calls this at shutdown)."""
        if self._playback is not None:
            self._stop.set()
            if self._worker.is_alive() and self._worker is not threading.current_thread():
                self._worker.join()
            self._playback.close()
            self._playback = None
        super().destroy_node()


def cli_overrides(argv: list[str]) -> dict[str, Any]:
    """Parameters from ``BAG [--rate R] [--loop] [--topics T ...] [--clock] [--delay S] [--restamp]
    [--namespaced]``.
    """
    parser = argparse.ArgumentParser(prog='twin_play', description=__doc__.splitlines()[0])
    parser.add_argument('bag', nargs='?', help='bag directory or .mcap file')
    parser.add_argument('--rate', type=float, help='speed factor (2.0: twice as fast)')
    parser.add_argument('--loop', action='store_true', default=None, help='start over at the end')
    parser.add_argument('--topics', nargs='+', help='replay only these topics')
    parser.add_argument('--clock', action='store_true', default=None, help='publish /clock')
    parser.add_argument('--delay', type=float, help='seconds to wait before the first message')
    parser.add_argument('--restamp', action='store_true', default=None,
                        help='set header stamps to the time each message plays at')
    parser.add_argument('--namespaced', action='store_true', default=None,
                        help="play the bag's topics in the node's namespace (--ros-args -r __ns:=/robot_1)")
    options = vars(parser.parse_args(argv))
    options['delay_s'] = options.pop('delay')
    return {key: value for key, value in options.items() if value is not None}


def main(args: list[str] | None = None) -> int:
    """Console-script entry point."""
    return run_cli(Player, 'twin_player', cli_overrides, args)
