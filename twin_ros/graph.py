"""The ROS graph seen from outside the nodes: whether the expected subscriptions and publishers are there.

    python -m twin_ros.graph --subscribed /scan= /twin/anomalies=twin_recorder --published /twin/anomalies

exits 0 once the graph on the environment's ROS_DOMAIN_ID shows them, 1 after ``--timeout`` s.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterable, Mapping

import rclpy
from rclpy.node import Node


def graph_shows(node: Node, subscribed: Mapping[str, str], published: Iterable[str]) -> bool:
    """Whether each topic of ``subscribed`` has a subscription by the node named there ('' any
    node) and each of ``published`` a publisher, as ``node`` sees the graph now.
    """
    for topic, name in subscribed.items():
        subscribers = {info.node_name for info in node.get_subscriptions_info_by_topic(topic)}
        if not subscribers or (name and name not in subscribers):
            return False
    return all(node.count_publishers(topic) for topic in published)


def main(argv: list[str] | None = None) -> int:
    """Wait for the graph (discovery runs in the middleware's threads: the node is never spun)."""
    parser = argparse.ArgumentParser(prog='python -m twin_ros.graph', description=__doc__.split('\n')[0])
    parser.add_argument('--subscribed', nargs='*', default=[], metavar='TOPIC=NODE',
                        help='a subscription to TOPIC by NODE (empty: by any node)')
    parser.add_argument('--published', nargs='*', default=[], metavar='TOPIC')
    parser.add_argument('--timeout', type=float, default=60.0, help='s')
    arguments = parser.parse_args(argv)
    subscribed = dict(spec.partition('=')[::2] for spec in arguments.subscribed)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(os.environ.get('ROS_DOMAIN_ID', '0')))
    node = rclpy.create_node('twin_graph_watch', context=context)
    try:
        deadline = time.monotonic() + arguments.timeout
        while not graph_shows(node, subscribed, arguments.published):
            if time.monotonic() > deadline:
                return 1
            time.sleep(0.1)
        return 0
    except KeyboardInterrupt:
        return 1
    finally:
        node.destroy_node()
        context.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
