"""The ROS graph seen from outside the nodes: whether the expected subscriptions and publishers are there."""
from __future__ import annotations

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


class GraphWatch:
    """A node of its own context on ``domain_id``, only for graph queries (it is never spun:
    discovery runs in the middleware's threads). Close it with :meth:`close`.
    """

    def __init__(self, domain_id: int) -> None:
        self._context = rclpy.Context()
        rclpy.init(context=self._context, domain_id=domain_id)
        self.node = rclpy.create_node('twin_graph_watch', context=self._context)

    def shows(self, subscribed: Mapping[str, str], published: Iterable[str]) -> bool:
        """:func:`graph_shows` on this watch's domain."""
        return graph_shows(self.node, subscribed, published)

    def close(self) -> None:
        self.node.destroy_node()
        self._context.try_shutdown()
