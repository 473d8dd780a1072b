"""twin_container: several of the twin's nodes in one process, on one executor.

    twin_container twin_sync.sync_node twin_state.state_node --ros-args --params-file
        config/sync.yaml --params-file config/state.yaml -r twin_state:from:=to

Each MODULE is a node module (``*_node.py``) whose one Node subclass is built with its own name
(or ``module:Class`` to name the class). The ROS arguments are the process's: parameter files
keyed by node name reach only that node, ``node:from:=to`` remaps only that node's topics, while
``-p``, ``/**`` sections and plain remappings reach every node (the launchers never pass those to
a container: twin_core.graph.ProcessGroup). Errors and exit codes are those of a single node
(``twin_ros.common.run_nodes``): a configuration error anywhere exits with code 2.
"""
from __future__ import annotations

import importlib
import inspect
import sys

import rclpy
from rclpy.node import Node
from rclpy.utilities import remove_ros_args

from twin_core.config import ConfigError
from twin_core.restart import CONFIG_ERROR_EXIT_CODE
from twin_ros.common import run_nodes

USAGE = 'usage: twin_container MODULE[:Class] [MODULE[:Class] ...] [--ros-args ...]'


def node_class(spec: str) -> type[Node]:
    """The Node subclass named by ``module:Class``, or the only one ``module`` defines."""
    module_name, _, class_name = spec.partition(':')
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(f'{spec}: cannot import {module_name}: {error}') from None
    if class_name:
        found = getattr(module, class_name, None)
        if not (inspect.isclass(found) and issubclass(found, Node)):
            raise ConfigError(f'{spec}: {module_name} has no Node subclass {class_name}')
        return found
    defined = [value for value in vars(module).values()
               if inspect.isclass(value) and issubclass(value, Node) and value.__module__ == module.__name__]
    if len(defined) != 1:
        raise ConfigError(f'{spec}: expected one Node subclass in {module_name}, found '
                          f'{[c.__name__ for c in defined]} (name one as {module_name}:Class)')
    return defined[0]


def main(args: list[str] | None = None) -> int:
    argv = sys.argv if args is None else args
    specs = remove_ros_args(argv)[1:]
    try:
        if not specs:
            raise ConfigError(USAGE)
        classes = [node_class(spec) for spec in specs]
    except ConfigError as error:
        rclpy.logging.get_logger('twin_container').fatal(f'configuration error: {error}')
        return CONFIG_ERROR_EXIT_CODE
    return run_nodes(classes, specs, argv)


if __name__ == '__main__':
    sys.exit(main())
