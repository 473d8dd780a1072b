"""rclpy glue shared by the twin's node shells: typed parameters, diagnostics, spinning."""
from __future__ import annotations

import array
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy._rclpy_pybind11 import RCLError
from rclpy.exceptions import (
    InvalidParameterTypeException,
    InvalidParameterValueException,
    ParameterUninitializedException,
)
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from std_msgs.msg import Header

from twin_bringup.config import ConfigError, build, flatten, leaf_fields, unflatten
from twin_bringup.restart import CONFIG_ERROR_EXIT_CODE
from twin_bringup.workers import WorkerFailure, Workers

T = TypeVar('T')

LEVELS = {'OK': DiagnosticStatus.OK, 'WARN': DiagnosticStatus.WARN,
          'ERROR': DiagnosticStatus.ERROR, 'STALE': DiagnosticStatus.STALE}
LEVEL_NAMES = {value: name for name, value in LEVELS.items()}  # DiagnosticStatus.level (bytes) -> name


# Latched configuration and plans: reliable, transient local, the last message only.
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def qos_profile(name: str, depth: int) -> QoSProfile:
    """The profile named in a topic list: ``sensor_data`` (best effort), ``reliable`` (``depth``) or
    ``latched`` (reliable, transient local, last message only).
    """
    if name == 'sensor_data':
        return qos_profile_sensor_data
    if name == 'latched':
        return LATCHED
    return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE)


ARRAY_TYPES = {bool: Parameter.Type.BOOL_ARRAY, int: Parameter.Type.INTEGER_ARRAY,
               float: Parameter.Type.DOUBLE_ARRAY, str: Parameter.Type.STRING_ARRAY}


def declare_config(node: Node, cls: type[T]) -> T:
    """Declare one read-only parameter per field of ``cls`` and build the typed config."""
    fields = leaf_fields(cls)
    defaults = flatten(cls())
    where = node.get_name()
    for name, default in defaults.items():
        hint, metadata = fields[name]
        # An empty list says nothing of its element type: declare the array type instead.
        value = ARRAY_TYPES[typing.get_args(hint)[0]] if default == [] else default
        try:
            node.declare_parameter(name, value, _descriptor(metadata))
        except (InvalidParameterTypeException, InvalidParameterValueException) as error:
            raise ConfigError(f'{where}.{name}: {error}') from None
    values = {name: _value(node, name) for name in defaults}
    return build(cls, unflatten(values), where)


def status(name: str, level: str, message: str, hardware_id: str = '',
           values: Mapping[str, Any] | None = None) -> DiagnosticStatus:
    """A ``DiagnosticStatus`` with ``values`` rendered as key/value strings."""
    return DiagnosticStatus(
        level=LEVELS[level], name=name, message=message, hardware_id=hardware_id,
        values=[KeyValue(key=str(k), value=_format(v)) for k, v in (values or {}).items()])


def supervised_workers(node: Node, period: float = 1.0) -> Workers:
    """The node's :class:`Workers`, on ``diagnostics`` as ``<node>: workers``.

    A worker failure is logged with its traceback and published as ERROR at once; the status
    is published every ``period`` s as well.
    """
    publisher = node.create_publisher(DiagnosticArray, 'diagnostics', 10)
    workers = Workers()

    def publish() -> None:
        level, message, values = workers.health()
        try:
            publisher.publish(DiagnosticArray(header=Header(stamp=node.get_clock().now().to_msg()), status=[
                status(f'{node.get_name()}: workers', level, message, node.get_name(), values)]))
        except Exception:  # a worker failing during shutdown: nothing left to tell
            if node.context.ok():
                raise

    def on_failure(failure: WorkerFailure) -> None:
        node.get_logger().error(f'worker {failure.worker} failed, restarting: {failure.error}\n'
                                f'{failure.traceback}')
        publish()

    workers.on_failure = on_failure
    node.create_timer(period, publish)
    return workers


def run(node_factory: Callable[[], Node], name: str, args: list[str] | None = None) -> int:
    """Init rclpy, build the node, spin until shutdown; a config error exits with code 2."""
    rclpy.init(args=args)
    try:
        node = node_factory()
    except ConfigError as error:
        rclpy.logging.get_logger(name).fatal(f'configuration error: {error}')
        rclpy.try_shutdown()
        return CONFIG_ERROR_EXIT_CODE
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RCLError:
        if rclpy.ok():
            raise
        # SIGINT shut the context down while the executor was building its wait set.
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def _descriptor(metadata: Mapping[str, Any]) -> ParameterDescriptor:
    descriptor = ParameterDescriptor(description=metadata.get('description', ''), read_only=True)
    if 'min' in metadata and 'max' in metadata:
        low, high = metadata['min'], metadata['max']
        if isinstance(low, int) and isinstance(high, int):
            descriptor.integer_range = [IntegerRange(from_value=low, to_value=high, step=0)]
        else:
            descriptor.floating_point_range = [
                FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)]
    if 'choices' in metadata:
        descriptor.additional_constraints = f'one of {list(metadata["choices"])}'
    return descriptor


def _value(node: Node, name: str) -> Any:
    try:
        value = node.get_parameter(name).value
    except ParameterUninitializedException:  # an array declared by type and never set
        return []
    return list(value) if isinstance(value, (array.array, tuple)) else value


def _format(value: Any) -> str:
    return f'{value:.6g}' if isinstance(value, float) else str(value)
