"""OPC UA bridge cost: ROS publish -> opcua_bridge -> asyncua client data-change notification,
against a raw asyncua server write -> client notification in the same run, on loopback.

paced: ``--count`` updates at ``--rate``/s; latency = notification - send (p50/p99).
burst: ``--count`` updates as fast as possible; notifications/s = notifications / (last - first
send). The bridge writes the latest value at ``--write-rate`` Hz, so a burst is coalesced.
Client subscriptions use publishing interval 0 (as fast as the server can).
reconnect: the PLC server (twin_sim.plc.PlcServer) that the bridge subscribes to in client
mode is stopped for 1 s and started again; time from the restarted server accepting
connections to the first new value on the ROS topic.
Run: ``python bench/bench_opcua.py [--count 1000] [--rate 200] [--write-rate 1000]``.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from asyncua import Client, Server, ua
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from std_msgs.msg import Float64

from twin_interfaces.msg import TwinState
from twin_sim.hardware import PlcChannel
from twin_sim.plc import NAMESPACE, PlcServer, PlcState

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'test'))
from sandbox import free_port  # noqa: E402

from harness import NodeProcess  # noqa: E402

logging.getLogger('asyncua').setLevel(logging.ERROR)
TWIN_NAMESPACE = 'urn:ros2-digital-twin:twin'
POSITION = 'DeviceSet/cell_1/MotionDevices/arm/Axes/joint_1/ParameterSet/ActualPosition'


class Arrivals:
    """Notification times by sequence number (the variable's value)."""

    def __init__(self) -> None:
        self.sent: dict[int, int] = {}
        self.received: dict[int, int] = {}

    def datachange_notification(self, _node: Any, value: Any, _data: Any) -> None:
        if value is not None and int(value) in self.sent:
            self.received.setdefault(int(value), time.perf_counter_ns())


async def measure(node_id: ua.NodeId | str, endpoint: str, namespace: str, send: Callable[[int], Any],
                  count: int, rate: float) -> tuple[float, float, float]:
    """(burst notifications/s, paced p50 ms, paced p99 ms) of a client subscribed at ``endpoint``."""
    async with Client(endpoint, timeout=10) as client:
        index = await client.get_namespace_index(namespace)
        arrivals = Arrivals()
        subscription = await client.create_subscription(0, arrivals)
        await subscription.subscribe_data_change(client.get_node(ua.NodeId(node_id, index)), queuesize=count)
        latencies = []
        for phase, pace in (('paced', rate), ('burst', None)):
            arrivals.sent.clear()
            arrivals.received.clear()
            start = time.perf_counter()
            for i in range(count):
                if pace:
                    await asyncio.sleep(max(0.0, start + i / pace - time.perf_counter()))
                elif i % 50 == 0:
                    await asyncio.sleep(0)
                arrivals.sent[i] = time.perf_counter_ns()
                await send(i)
            deadline = time.monotonic() + 5.0
            while count - 1 not in arrivals.received and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            if phase == 'paced':
                latencies = [(arrivals.received[i] - arrivals.sent[i]) / 1e6 for i in arrivals.received]
            else:
                span = (max(arrivals.received.values()) - arrivals.sent[0]) / 1e9
                burst = len(arrivals.received) / span
        return burst, float(np.percentile(latencies, 50)), float(np.percentile(latencies, 99))


async def raw_server(count: int, rate: float) -> tuple[float, float, float]:
    server = Server()
    server.disable_clock()
    await server.init()
    endpoint = f'opc.tcp://127.0.0.1:{free_port()}/raw'
    server.set_endpoint(endpoint)
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    index = await server.register_namespace(TWIN_NAMESPACE)
    variable = await server.nodes.objects.add_variable(ua.NodeId(POSITION, index), 'ActualPosition', -1.0)
    async with server:
        async def send(i: int) -> None:
            value = ua.DataValue(ua.Variant(float(i), ua.VariantType.Double))
            await server.write_attribute_value(variable.nodeid, value)
        return await measure(POSITION, endpoint, TWIN_NAMESPACE, send, count, rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--count', type=int, default=1000, help='updates per measurement')
    parser.add_argument('--rate', type=float, default=200.0, help='paced rate, updates/s')
    parser.add_argument('--write-rate', type=float, default=1000.0, help='bridge write_rate_hz')
    options = parser.parse_args()
    os.environ['ROS_DOMAIN_ID'] = str(random.randint(1, 101))
    directory = Path(tempfile.mkdtemp(prefix='twin-bench-opcua-'))
    endpoint = f'opc.tcp://127.0.0.1:{free_port()}/twin'
    channel = PlcChannel(endpoint=f'opc.tcp://127.0.0.1:{free_port()}/twin/plc', publish_rate_hz=20.0)
    plc = PlcServer(channel, ['joint_1'])
    plc.publish(PlcState([40.0], 0.5, False, 1, 0.0, 0.0))
    plc.start()
    params = directory / 'bridge.yaml'
    params.write_text(f"""\
opcua_bridge:
  ros__parameters:
    server: {{endpoint: "{endpoint}", write_rate_hz: {options.write_rate}, security: {{enabled: false}}}}
    client: {{enabled: true, opcua: {{endpoint: "{channel.endpoint}", namespace: "{NAMESPACE}",
              publishing_interval: 0.0}}, variables: [Workcell.SpeedOverride], topics: [/plc/speed_override],
              kinds: [float64]}}
    history: {{enabled: false}}
""")
    bridge = NodeProcess(['opcua_bridge', '--ros-args', '--params-file', str(params)],
                         dict(os.environ), directory / 'bridge.log')
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('bench_opcua', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    overrides: list[tuple[float, float]] = []
    node.create_subscription(Float64, '/plc/speed_override', lambda m: overrides.append((time.monotonic(), m.data)), 10)
    def spin() -> None:
        try:
            executor.spin()
        except ExternalShutdownException:
            pass

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    publisher = node.create_publisher(TwinState, '/twin/state', 1000)
    state = TwinState(joint_names=['joint_1'], position=[-1.0])

    async def publish(i: int) -> None:
        state.position = [float(i)]
        publisher.publish(state)

    try:
        print(f'{options.count} updates per run, paced at {options.rate:g}/s; bridge write_rate_hz '
              f'{options.write_rate:g}; asyncua {__import__("asyncua").__version__}, loopback, no security')
        print(f'{"path":<46}{"burst notif/s":>14}{"p50 ms":>9}{"p99 ms":>9}')
        raw = asyncio.run(raw_server(options.count, options.rate))
        print(f'{"raw asyncua write -> client":<46}{raw[0]:>14.0f}{raw[1]:>9.2f}{raw[2]:>9.2f}')
        for _ in range(100):  # the bridge's server and its DDS discovery
            try:
                bridged = asyncio.run(measure(POSITION, endpoint, TWIN_NAMESPACE, publish, options.count,
                                              options.rate))
                break
            except (OSError, TimeoutError):
                time.sleep(0.2)
        print(f'{"ROS /twin/state -> opcua_bridge -> client":<46}{bridged[0]:>14.0f}{bridged[1]:>9.2f}'
              f'{bridged[2]:>9.2f}')
        times = []
        for value in (0.25, 0.75, 0.35):
            plc.stop()
            time.sleep(1.0)
            plc = PlcServer(channel, ['joint_1'])
            plc.publish(PlcState([40.0], value, False, 1, 0.0, 0.0))
            plc.start()
            up = time.monotonic()
            deadline = up + 30.0
            while not any(v == value for _, v in overrides) and time.monotonic() < deadline:
                time.sleep(0.005)
            times.append(next(t for t, v in overrides if v == value) - up)
        print(f'PLC restart (1 s down) -> first new value on ROS: {", ".join(f"{t:.2f}" for t in times)} s')
    finally:
        bridge.stop()
        plc.stop()
        context.try_shutdown()
        spinner.join(5.0)
        executor.shutdown()
        node.destroy_node()


if __name__ == '__main__':
    main()
