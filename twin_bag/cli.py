"""Command-line options of the bag tools as parameter overrides of their nodes."""
from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.utilities import remove_ros_args

from twin_ros.common import run


def run_cli(node_class: Callable[[list[Parameter]], Node], name: str,
            overrides: Callable[[list[str]], Mapping[str, Any]], args: list[str] | None) -> int:
    """Run ``node_class`` with the parameters ``overrides`` makes of the non-ROS arguments
    (those win over ``--ros-args -p``/``--params-file`` values).
    """
    argv = sys.argv if args is None else args
    parameters = [Parameter(key, value=value)
                  for key, value in overrides(remove_ros_args(argv)[1:]).items()]
    return run(partial(node_class, parameters), name, argv)
