"""LeanExecutor: the same callbacks as rclpy's SingleThreadedExecutor, over real DDS in one process."""
# No "from __future__ import annotations": rclpy finds the TimerInfo parameter by its annotation object.

import threading
import time
from collections.abc import Callable, Iterator

import pytest
import rclpy
from rcl_interfaces.msg import ListParametersResult
from rcl_interfaces.srv import GetParameters, ListParameters
from rclpy.node import Node
from rclpy.qos import QoSProfile
from rclpy.timer import Timer, TimerInfo
from std_msgs.msg import Int32

from twin_ros.executor import TOOL_SERVICES, LeanExecutor, _Entities

RELIABLE_DEEP = QoSProfile(depth=1000)


@pytest.fixture
def context(ros_env: dict[str, str]) -> Iterator[rclpy.Context]:
    ros_context = rclpy.Context()
    rclpy.init(context=ros_context, domain_id=int(ros_env['ROS_DOMAIN_ID']))
    yield ros_context
    ros_context.try_shutdown()


@pytest.fixture
def executor(context: rclpy.Context) -> Iterator[LeanExecutor]:
    lean = LeanExecutor(context=context)
    yield lean
    for node in lean.get_nodes():
        node.destroy_node()
    lean.shutdown()


def spin_until(executor: LeanExecutor, done: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    return done()


def node_in(executor: LeanExecutor, context: rclpy.Context, name: str) -> Node:
    node = rclpy.create_node(name, context=context)
    executor.add_node(node)
    return node


def wait_for_subscriber(executor: LeanExecutor, publisher, count: int = 1) -> None:
    assert spin_until(executor, lambda: publisher.get_subscription_count() >= count)


def test_every_message_arrives_in_order_with_and_without_message_info(executor, context) -> None:
    node = node_in(executor, context, 'lean_messages')
    plain: list[int] = []
    with_info: list[tuple[int, int]] = []
    node.create_subscription(Int32, 'numbers', lambda m: plain.append(m.data), RELIABLE_DEEP)
    node.create_subscription(Int32, 'numbers', lambda m, info: with_info.append(
        (m.data, info['source_timestamp'])), RELIABLE_DEEP)
    publisher = node.create_publisher(Int32, 'numbers', RELIABLE_DEEP)
    wait_for_subscriber(executor, publisher, 2)
    for value in range(500):  # published faster than one wake-up each: batches are taken whole
        publisher.publish(Int32(data=value))
    assert spin_until(executor, lambda: len(plain) == 500 and len(with_info) == 500)
    assert plain == list(range(500))
    assert [value for value, _ in with_info] == list(range(500))
    assert all(stamp > 0 for _, stamp in with_info)


def test_timers_fire_at_their_rate_and_get_timer_info_when_asked(executor, context) -> None:
    node = node_in(executor, context, 'lean_timers')
    ticks: list[float] = []
    infos: list[TimerInfo] = []

    def with_info(info: TimerInfo) -> None:
        infos.append(info)
    node.create_timer(0.01, lambda: ticks.append(time.monotonic()))
    node.create_timer(0.05, with_info)
    started = time.monotonic()
    spin_until(executor, lambda: time.monotonic() - started > 1.0, timeout=1.0)
    assert 85 <= len(ticks) <= 101
    assert 17 <= len(infos) <= 21
    assert all(i.actual_call_time.nanoseconds >= i.expected_call_time.nanoseconds for i in infos)


def test_services_parameters_and_futures_go_through_the_executor(executor, context) -> None:
    server = node_in(executor, context, 'lean_server')
    server.declare_parameter('gain', 1.5)
    server.create_service(ListParameters, 'list_names', lambda request, response: ListParameters.Response(
        result=ListParametersResult(names=['pong'])))
    caller = rclpy.create_node('lean_caller', context=context)
    executor.add_node(caller)
    client = caller.create_client(ListParameters, 'list_names')
    assert spin_until(executor, client.service_is_ready)
    future = client.call_async(ListParameters.Request())
    executor.spin_until_future_complete(future, timeout_sec=10.0)
    assert list(future.result().result.names) == ['pong']

    parameters = caller.create_client(GetParameters, '/lean_server/get_parameters')
    assert spin_until(executor, parameters.service_is_ready)
    reply = parameters.call_async(GetParameters.Request(names=['gain']))
    assert spin_until(executor, reply.done)
    assert reply.result().values[0].double_value == 1.5


def test_the_tools_services_wait_with_the_qos_events_and_the_nodes_own_services_on_every_wake_up(
        executor, context) -> None:
    server = node_in(executor, context, 'lean_services')
    server.create_service(ListParameters, 'list_names', lambda request, response: response)
    entities = _Entities(executor)
    try:
        assert sorted(s.srv_name for s in entities.tool_services) == sorted(
            f'lean_services/{name}' for name in TOOL_SERVICES)
        assert [s.srv_name for s in entities.others['service']] == ['list_names']
    finally:
        entities.close()


def test_a_coroutine_callback_runs_as_a_task(executor, context) -> None:
    node = node_in(executor, context, 'lean_coroutine')
    received: list[int] = []

    async def on_message(message: Int32) -> None:
        received.append(message.data)
    node.create_subscription(Int32, 'awaited', on_message, RELIABLE_DEEP)
    publisher = node.create_publisher(Int32, 'awaited', RELIABLE_DEEP)
    wait_for_subscriber(executor, publisher)
    for value in range(5):
        publisher.publish(Int32(data=value))
    assert spin_until(executor, lambda: len(received) == 5)
    assert received == list(range(5))


def test_entities_created_and_destroyed_while_spinning_are_followed(executor, context) -> None:
    node = node_in(executor, context, 'lean_dynamic')
    first: list[int] = []
    second: list[int] = []
    publisher = node.create_publisher(Int32, 'dynamic', RELIABLE_DEEP)
    subscription = node.create_subscription(Int32, 'dynamic', lambda m: first.append(m.data), RELIABLE_DEEP)
    wait_for_subscriber(executor, publisher)
    publisher.publish(Int32(data=1))
    assert spin_until(executor, lambda: first == [1])

    node.destroy_subscription(subscription)
    node.create_subscription(Int32, 'dynamic', lambda m: second.append(m.data), RELIABLE_DEEP)
    executor.spin_once(timeout_sec=0.1)  # the wake-up of the create/destroy
    assert spin_until(executor, lambda: publisher.get_subscription_count() == 1)
    publisher.publish(Int32(data=2))
    assert spin_until(executor, lambda: second == [2])
    assert first == [1]


def test_spin_returns_when_the_context_shuts_down(executor, context) -> None:
    node = node_in(executor, context, 'lean_shutdown')
    node.create_timer(0.1, lambda: None)
    threading.Timer(0.3, context.shutdown).start()
    started = time.monotonic()
    with pytest.raises(rclpy.executors.ExternalShutdownException):
        executor.spin()
    assert time.monotonic() - started < 2.0


def test_a_shutdown_during_a_batch_ends_the_spin_without_touching_the_queue_again(executor, context) -> None:
    """As a SIGINT while a callback runs: the messages still queued are not taken from a context
    that is gone (rclpy's handles would raise RuntimeError).
    """
    node = node_in(executor, context, 'lean_interrupted')
    received: list[int] = []

    def on_message(message: Int32) -> None:
        received.append(message.data)
        context.shutdown()
    node.create_subscription(Int32, 'interrupted', on_message, RELIABLE_DEEP)
    publisher = node.create_publisher(Int32, 'interrupted', RELIABLE_DEEP)
    wait_for_subscriber(executor, publisher)
    for value in range(50):
        publisher.publish(Int32(data=value))
    time.sleep(0.2)  # all queued: one wake-up takes them as a batch
    with pytest.raises(rclpy.executors.ExternalShutdownException):
        for _ in range(100):
            executor.spin_once(timeout_sec=0.05)
    assert received == [0]


def test_the_executor_is_chosen_by_environment_and_a_wrong_name_is_refused(monkeypatch, context) -> None:
    from rclpy.executors import SingleThreadedExecutor

    from twin_core.config import ConfigError
    from twin_ros.executor import make_executor
    monkeypatch.setenv('TWIN_EXECUTOR', 'rclpy')
    assert type(make_executor(context=context)) is SingleThreadedExecutor
    monkeypatch.delenv('TWIN_EXECUTOR')
    assert type(make_executor(context=context)) is LeanExecutor
    monkeypatch.setenv('TWIN_EXECUTOR', 'events')
    with pytest.raises(ConfigError, match='TWIN_EXECUTOR=events: unknown executor'):
        make_executor(context=context)


def test_qos_events_are_still_delivered(executor, context) -> None:
    from rclpy.event_handler import SubscriptionEventCallbacks
    from rclpy.qos import ReliabilityPolicy
    node = node_in(executor, context, 'lean_events')
    incompatible: list[object] = []
    node.create_subscription(Int32, 'mismatched', lambda m: None, QoSProfile(depth=1),
                             event_callbacks=SubscriptionEventCallbacks(incompatible_qos=incompatible.append))
    node.create_publisher(Int32, 'mismatched', QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT))
    assert spin_until(executor, lambda: bool(incompatible), timeout=5.0)
    assert incompatible[0].total_count == 1


def test_a_batch_period_takes_what_arrived_meanwhile_in_one_wake_up(context) -> None:
    batching = LeanExecutor(context=context, batch_period_ns=20_000_000)
    node = node_in(batching, context, 'lean_batch')
    arrivals: list[float] = []
    node.create_subscription(Int32, 'batched', lambda m: arrivals.append(time.monotonic()), RELIABLE_DEEP)
    publisher = node.create_publisher(Int32, 'batched', RELIABLE_DEEP)
    try:
        wait_for_subscriber(batching, publisher)

        def publish() -> None:
            for value in range(200):  # 1 ms apart: 200 wake-ups without a batch period
                publisher.publish(Int32(data=value))
                time.sleep(0.001)
        sender = threading.Thread(target=publish)
        sender.start()
        assert spin_until(batching, lambda: len(arrivals) == 200)
        sender.join()
    finally:
        node.destroy_node()
        batching.shutdown()
    wake_ups = 1 + sum(1 for a, b in zip(arrivals, arrivals[1:]) if b - a > 0.005)
    assert wake_ups <= 25  # about one per 20 ms over the ~250 ms of sending


def test_a_timer_destroyed_in_its_callback_is_not_called_again(context) -> None:
    """As a one-shot timer that starts a periodic one: its handle stays in the wait set until the
    executor lists the entities again, but it is gone and must not fire once more meanwhile.
    """
    batching = LeanExecutor(context=context, batch_period_ns=5_000_000)  # > the timer's period
    node = node_in(batching, context, 'lean_one_shot')
    calls: list[float] = []
    timers: list[Timer] = []

    def once() -> None:
        calls.append(time.monotonic())
        node.destroy_timer(timers[0])
    timers.append(node.create_timer(0.001, once))
    try:
        assert spin_until(batching, lambda: bool(calls))
        deadline = time.monotonic() + 0.1
        while time.monotonic() < deadline:
            batching.spin_once(timeout_sec=0.01)
    finally:
        node.destroy_node()
        batching.shutdown()
    assert len(calls) == 1
