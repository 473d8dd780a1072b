"""A node whose timer raises a RuntimeError, as rclpy does when a SIGINT lands while it converts a
taken message (``interrupted``: the context is shut down first, as rclpy's SIGINT handler does) or
as a bug would (``bug``).
"""
import sys

from rclpy.node import Node

from twin_ros.common import run


class RaisingNode(Node):
    def __init__(self) -> None:
        super().__init__('raising_node')
        self.create_timer(0.1, self._raise)

    def _raise(self) -> None:
        if sys.argv[1] == 'interrupted':
            self.context.shutdown()
        raise RuntimeError("Unable to convert call argument '0' to Python object")


if __name__ == '__main__':
    sys.exit(run(RaisingNode, 'raising_node', sys.argv[:1] + sys.argv[2:]))
