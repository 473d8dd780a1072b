"""rclpy glue shared by the twin's node shells: typed parameters, diagnostics, spinning."""
from __future__ import annotations

import array
import faulthandler
import os
import signal
import sys
import time
import typing
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import rclpy
import rclpy.signals
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy._rclpy_pybind11 import RCLError
from rclpy.exceptions import (
    InvalidParameterTypeException,
    InvalidParameterValueException,
    ParameterUninitializedException,
)
from rclpy.executors import ExternalShutdownException
from rclpy.impl.rcutils_logger import RcutilsLogger
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.publisher import Publisher
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.serialization import deserialize_message, serialize_message
from rclpy.subscription import Subscription
from rclpy.utilities import remove_ros_args
from std_msgs.msg import Header

from twin_core import cdr
from twin_core.config import ConfigError, build, flatten, leaf_fields, unflatten, unknown_parameter
from twin_core.levels import Level
from twin_core.priority import NICE_VARIABLE, lower_process_priority, priority_from_environment
from twin_core.restart import CONFIG_ERROR_EXIT_CODE
from twin_core.workers import WorkerFailure, Workers
from twin_interfaces.msg import SyncedFrame
from twin_ros.executor import LeanExecutor, make_executor
from twin_ros.logs import route_python_logging, unroute_python_logging

T = TypeVar('T')


# Latched configuration and plans: reliable, transient local, the last message only.
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


# Subscriptions to streams whose every sample counts (IMU 1 kHz, encoders 500 Hz, the twin's and the
# plan's 100 Hz joint states): best effort like ``qos_profile_sensor_data``, but 100 messages deep
# instead of 5, so that 100 ms of IMU samples (a second of the twin's state) wait while the executor
# runs other callbacks (of the node, or of the nodes sharing the process: twin_container).
SENSOR_INPUT = QoSProfile(depth=100, reliability=qos_profile_sensor_data.reliability,
                          durability=qos_profile_sensor_data.durability)


ANALYTICS_BATCH_PERIOD_NS = 10_000_000
"""Spin batch period of the nodes fed by the twin's 100 Hz outputs that judge seconds of evidence
(anomaly, maintenance, prediction): one frame period, so a wake-up takes what one frame brought.
"""
TEARDOWN_REPORT_S = 10.0  # a node's teardown taking longer prints every thread's stack on stderr
SHUTDOWN_GRACE_S = 1.0  # an error while spinning counts as the SIGINT shutdown if the context goes down this soon


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


# Parameters rclpy declares once a publisher or subscription asks for them. Those it declares on
# every node (use_sim_time, start_type_description_service) are declared before the schema's.
ROS_PARAMETER_PREFIXES = ('qos_overrides.',)


def listened(publisher: Publisher) -> bool:
    """Whether any subscription is matched to ``publisher`` (about 2 µs): an output nobody takes
    is neither built nor sent, as a late subscriber gets the next one.
    """
    return publisher.get_subscription_count() > 0


def plain_cdr(message_class: type, callback: Callable[[bytes], None]) -> Callable[[bytes], None]:
    """A raw subscription's callback handing ``callback`` plain CDR (what :mod:`twin_core.cdr`
    reads): a message in another encoding (an rmw writing XCDR2 with headers, say) is
    re-serialized by rclpy first.
    """
    def on_data(data: bytes) -> None:
        if data[:2] not in cdr.PLAIN_ENCODINGS:
            data = serialize_message(deserialize_message(data, message_class))
        callback(data)
    return on_data


SYNCED_FRAMES = 'twin/synced_frame'


def subscribe_synced_frames(node: Node, callback: Callable[[cdr.SyncedFrameWire], None],
                            on_error: Callable[[ValueError], None] | None = None) -> Subscription:
    """Take ``twin/synced_frame`` serialized, each frame read by :func:`twin_core.cdr.decode_synced_frame`
    (the message's field names, a third cheaper than rclpy's message). A frame that cannot be read
    goes to ``on_error`` (default: an error log, at most every 5 s).
    """
    def refuse(error: ValueError) -> None:
        node.get_logger().error(f'{SYNCED_FRAMES}: frame refused: {error}', throttle_duration_sec=5.0)

    def on_data(data: bytes) -> None:
        try:
            frame = cdr.decode_synced_frame(data)
        except ValueError as error:
            (on_error or refuse)(error)
            return
        callback(frame)
    return node.create_subscription(SyncedFrame, SYNCED_FRAMES, plain_cdr(SyncedFrame, on_data), 10, raw=True)


def declare_config(node: Node, cls: type[T]) -> T:
    """Declare one read-only parameter per field of ``cls`` and build the typed config.

    A parameter given to the node (``--params-file``, ``-p``, constructor overrides) that is
    neither a field of ``cls`` nor one of rclpy's own (``use_sim_time``, ``qos_overrides.*``, ...)
    is a :class:`ConfigError`, worded like the launchers' check of the parameter files.
    """
    fields = leaf_fields(cls)
    defaults = flatten(cls())
    where = node.get_name()
    # rclpy has no public accessor for the overrides the node was given.
    for name in sorted(node._parameter_overrides):
        if not (name in defaults or node.has_parameter(name) or name.startswith(ROS_PARAMETER_PREFIXES)):
            raise unknown_parameter(where, name, defaults)
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


def status(name: str, level: Level, message: str, hardware_id: str = '',
           values: Mapping[str, Any] | None = None) -> DiagnosticStatus:
    """A ``DiagnosticStatus`` with ``values`` rendered as key/value strings."""
    return DiagnosticStatus(
        level=bytes((level,)), name=name, message=message, hardware_id=hardware_id,
        values=[KeyValue(key=str(k), value=_format(v)) for k, v in (values or {}).items()])


def status_level(entry: DiagnosticStatus) -> Level:
    """The level of a received status; one outside the scale counts as ERROR."""
    try:
        return Level(entry.level[0] if isinstance(entry.level, bytes) else entry.level)
    except ValueError:
        return Level.ERROR


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
    """Init rclpy, build the node, spin until shutdown; return the exit code.

    A configuration the node cannot start with ends the process with one FATAL line and
    :data:`CONFIG_ERROR_EXIT_CODE`, which launchers do not restart: a parameter file that is
    missing or that rclpy cannot parse, or a :class:`ConfigError` or :class:`OSError` (a missing
    or unreadable file) raised while the node is built.

    A node with a ``spin_batch_period_ns`` attribute (latency it can spare per input) is spun with
    that batch period (see :class:`~twin_ros.executor.LeanExecutor`).
    """
    return run_nodes([node_factory], [name], args)


def run_nodes(node_factories: Sequence[Callable[[], Node]], names: Sequence[str],
              args: list[str] | None = None) -> int:
    """:func:`run` for several nodes in one process, built in order and spun on one executor.

    ``names`` label each factory's errors. A configuration error in any node ends the process
    (code :data:`CONFIG_ERROR_EXIT_CODE`, one line from that node's logger); the node being built
    is torn down as in :func:`run`, the ones already built are destroyed. The batch period is the
    smallest any node asks for (none: 0), so no node's output waits longer than it allows. The
    process runs at the CPU priority the launcher gives it (``TWIN_NICE``, the node table's ``nice``).
    Once the teardown begins, the process ignores SIGINT and SIGTERM to its end (SIGKILL stops it).
    """
    logger = rclpy.logging.get_logger(names[0])
    argv = sys.argv if args is None else args
    try:
        _check_parameter_files(argv)
        nice = priority_from_environment(os.environ)
        if nice is not None:  # before rclpy starts the DDS threads: they inherit it
            lower_process_priority(nice)
        rclpy.init(args=argv)
    except (ConfigError, RCLError) as error:
        return _configuration_error(logger, error)
    if nice is not None:
        logger.info(f'process at CPU priority nice {nice} (the node table\'s nice: {NICE_VARIABLE})')
    handler = route_python_logging(logger)
    try:
        return _build_and_spin(node_factories, names)
    finally:
        unroute_python_logging(handler)


def _build_and_spin(node_factories: Sequence[Callable[[], Node]], names: Sequence[str]) -> int:
    nodes: list[Node] = []
    try:
        executor = make_executor()
        for factory in node_factories:
            nodes.append(factory())
    except BaseException as error:
        _ignore_further_interrupts()
        # Read before rclpy's signal thread is joined: a shutdown it has pending would not happen then.
        interrupted = isinstance(error, (KeyboardInterrupt, ExternalShutdownException)) or not rclpy.ok()
        _stop_signal_handling()
        half_built = _node_under_construction(error)
        if half_built is not None:
            _destroy_half_built(half_built)
        for node in reversed(nodes):
            node.destroy_node()
        rclpy.try_shutdown()
        if isinstance(error, (ConfigError, OSError)):
            return _configuration_error(rclpy.logging.get_logger(names[len(nodes)]), error)
        if interrupted:  # SIGINT/SIGTERM while a node was being built
            return 0
        raise
    try:
        if isinstance(executor, LeanExecutor):
            executor.batch_period_ns = min(getattr(node, 'spin_batch_period_ns', 0) for node in nodes)
        for node in nodes:
            executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:  # RCLError among them
        _ignore_further_interrupts()  # a second Ctrl-C must not cut the wait short
        if not _shutting_down():
            raise
    finally:
        # A teardown that hangs (seen rarely, at rclpy's or the DDS layer's exit) says where it is.
        faulthandler.dump_traceback_later(TEARDOWN_REPORT_S)
        _stop_signal_handling()
        executor.shutdown()  # releases the entities it holds
        for node in reversed(nodes):
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


def _shutting_down(grace: float = SHUTDOWN_GRACE_S) -> bool:
    """Whether the context goes down within ``grace`` s: an error rclpy raised while a SIGINT shut
    it down is that shutdown. rclpy shuts the contexts down from its own thread, and an interrupt
    that lands while it builds a message or a wait set surfaces as a RuntimeError ("Unable to
    convert call argument", an invalid wait set) rather than a KeyboardInterrupt.
    """
    deadline = time.monotonic() + grace
    while rclpy.ok():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _ignore_further_interrupts() -> None:
    """Let the teardown run to its end: under ros2 launch a Ctrl-C reaches every node twice (from
    the terminal and from the launch), and a second KeyboardInterrupt would leave the node's DDS
    participant, and its /dev/shm segment, behind. SIGTERM still ends the process.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop_signal_handling() -> None:
    """Begin a teardown: SIGINT and SIGTERM are ignored to its end (it ends the process), and
    rclpy's signal thread is joined. That thread wakes the executors and shuts the contexts down
    on each signal without the interpreter lock, so it must not run while the executor and the
    nodes are destroyed. A teardown that hangs still yields to SIGKILL, as launchers send last.
    """
    _ignore_further_interrupts()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    rclpy.signals.uninstall_signal_handlers()


def _configuration_error(logger: RcutilsLogger, error: BaseException) -> int:
    if isinstance(error, OSError) and error.filename is not None:
        message = f'{error.filename}: {error.strerror}'
    else:
        message = str(error)
    # One line, whatever the message (rcl's run over several: "..., at parser.c:271, ...").
    logger.fatal(f'configuration error: {" ".join(message.split())}')
    return CONFIG_ERROR_EXIT_CODE


def _check_parameter_files(argv: list[str]) -> None:
    """Every ``--params-file`` of the ROS arguments must exist.

    rcl refuses a missing one too, but logs an error of its own besides ours.
    """
    in_ros_args = False
    for option, value in zip(argv, argv[1:] + ['']):
        if option == '--ros-args':
            in_ros_args = True
        elif option == '--':
            in_ros_args = False
        elif in_ros_args and option == '--params-file' and not Path(value).is_file():
            raise ConfigError(f'--params-file: file not found: {value}')


def _node_under_construction(error: BaseException) -> Node | None:
    """The node whose constructor raised ``error``: ``self`` of the outermost node frame in
    its traceback (``run`` -> the node class's ``__init__`` -> ...).
    """
    frames = error.__traceback__
    while frames is not None:
        candidate = frames.tb_frame.f_locals.get('self')
        if isinstance(candidate, Node):
            return candidate
        frames = frames.tb_next
    return None


def _destroy_half_built(node: Node) -> None:
    """Destroy a node whose constructor raised, before ``rclpy.try_shutdown`` would: the context
    destroys every node it tracks, and a node's own ``destroy_node`` expects a complete node.

    That ``destroy_node`` stops what the constructor started as far as it gets; when it reaches a
    part that was never built, rclpy's ``Node.destroy_node`` releases the node's ROS entities.
    """
    try:
        node.destroy_node()
    except AttributeError:
        try:
            Node.destroy_node(node)
        except AttributeError:  # rclpy's own constructor did not finish: the context never tracked it
            pass


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


def run_cli(node_class: Callable[[list[Parameter]], Node], name: str,
            overrides: Callable[[list[str]], Mapping[str, Any]], args: list[str] | None) -> int:
    """Run ``node_class`` with the parameters ``overrides`` makes of the non-ROS arguments
    (those win over ``--ros-args -p``/``--params-file`` values).
    """
    argv = sys.argv if args is None else args
    parameters = [Parameter(key, value=value)
                  for key, value in overrides(remove_ros_args(argv)[1:]).items()]
    return run(partial(node_class, parameters), name, argv)
