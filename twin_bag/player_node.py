"""Player node: replays a bag onto its topics (raw CDR) at a rate factor, optionally looped,
filtered and with the bag time on ``/clock``; exits at the end of the bag unless looping.

    twin_play run1 --rate 2.0 --topics scan twin/state --clock --loop
"""
from __future__ import annotations

import argparse
import threading
from pathlib import Path
from typing import Any

import rclpy
from rclpy._rclpy_pybind11 import RCLError
from rclpy.exceptions import InvalidHandle
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosbags.highlevel import AnyReaderError
from rosgraph_msgs.msg import Clock

from twin_bag.config import RELIABLE_DEPTH, PlayerConfig
from twin_bag.player import Playback
from twin_core.config import ConfigError
from twin_ros.common import declare_config, qos_profile, run_cli
from twin_ros.messages import message_class
from twin_ros.stamps import to_msg

CLOCK_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)


class Player(Node):
    """Replays the bag from a worker thread; shuts the context down when the bag ends."""

    def __init__(self, overrides: list[Parameter] | None = None) -> None:
        super().__init__('twin_player', parameter_overrides=overrides or [])
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._play, daemon=True)
        self._playback: Playback | None = None
        self._config = config = declare_config(self, PlayerConfig)
        try:
            self._playback = Playback(Path(config.bag).expanduser(),
                                      [self.resolve_topic_name(t) for t in config.topics])
        except (AnyReaderError, OSError, ValueError) as error:
            raise ConfigError(f'{self.get_name()}.bag: {error}') from None
        try:
            self._outputs = {
                topic.name: self.create_publisher(
                    message_class(topic.msgtype), topic.name,
                    qos_profile(topic.qos, RELIABLE_DEPTH))
                for topic in self._playback.topics.values()}
        except LookupError as error:
            raise ConfigError(f'{self.get_name()}.bag: {error}') from None
        self._clock = self.create_publisher(Clock, '/clock', CLOCK_QOS) if config.clock else None
        self._worker.start()

    def _publish(self, topic: str, data: bytes) -> None:
        self._outputs[topic].publish(data)

    def _publish_clock(self, stamp_ns: int) -> None:
        assert self._clock is not None
        self._clock.publish(Clock(clock=to_msg(stamp_ns)))

    def _play(self) -> None:
        config = self._config
        self.get_logger().info(f'playing {config.bag} ({len(self._outputs)} topics) at '
                               f'{config.rate}x{" in a loop" if config.loop else ""}')
        if self._stop.wait(config.delay_s):
            return
        try:
            played = self._playback.run(
                self._publish, config.rate, config.loop, self._stop,
                self._publish_clock if self._clock else None, 1.0 / config.clock_rate_hz)
        except (RCLError, InvalidHandle):  # the context shut down mid-publish
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
    """Parameters from ``BAG [--rate R] [--loop] [--topics T ...] [--clock] [--delay S]``."""
    parser = argparse.ArgumentParser(prog='twin_play', description=__doc__.splitlines()[0])
    parser.add_argument('bag', nargs='?', help='bag directory or .mcap file')
    parser.add_argument('--rate', type=float, help='speed factor (2.0: twice as fast)')
    parser.add_argument('--loop', action='store_true', default=None, help='start over at the end')
    parser.add_argument('--topics', nargs='+', help='replay only these topics')
    parser.add_argument('--clock', action='store_true', default=None, help='publish /clock')
    parser.add_argument('--delay', type=float, help='seconds to wait before the first message')
    options = vars(parser.parse_args(argv))
    options['delay_s'] = options.pop('delay')
    return {key: value for key, value in options.items() if value is not None}


def main(args: list[str] | None = None) -> int:
    """Console-script entry point."""
    return run_cli(Player, 'twin_player', cli_overrides, args)
