"""A node that says when it spins and, as it is destroyed, which of the process's threads outside
Fast DDS (whose threads are named dds.*) have ended since, and how it then handles SIGINT and SIGTERM.
"""
import os
import signal
import sys

from rclpy.node import Node

from twin_ros.common import run


def threads_outside_dds() -> set[str]:
    return {task for task in os.listdir('/proc/self/task')
            if not open(f'/proc/self/task/{task}/comm').read().startswith('dds.')}


class TeardownNode(Node):
    def __init__(self) -> None:
        super().__init__('teardown_node')
        self._threads = threads_outside_dds()
        self._started = self.create_timer(0.05, self._say_spinning)

    def _say_spinning(self) -> None:
        self.destroy_timer(self._started)
        print('spinning', flush=True)

    def destroy_node(self) -> None:
        ended = len(self._threads - threads_outside_dds())
        print(f'destroyed: {ended} thread(s) ended, SIGINT {signal.getsignal(signal.SIGINT)!r}, '
              f'SIGTERM {signal.getsignal(signal.SIGTERM)!r}', flush=True)
        super().destroy_node()


if __name__ == '__main__':
    sys.exit(run(TeardownNode, 'teardown_node', sys.argv[:1]))
