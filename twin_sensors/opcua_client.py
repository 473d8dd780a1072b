"""OPC UA subscription client on its own asyncio loop thread; reconnects and resubscribes on its own.

Variables are named by the string part of their NodeId in one namespace URI (the index is
looked up on every connection, since a restarted server may renumber it). Changes arriving in
one publish response are delivered together as ``on_values({name: value or None}, receive_ns)``;
None marks a value with a bad status (e.g. a failed sensor). The asyncio loop runs in a supervised
worker: an error in a callback on it ends the loop, is reported, and the worker starts it anew.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from asyncua import Client, ua
from asyncua.common.node import Node
from asyncua.common.subscription import DataChangeNotif

from twin_core.config import describe
from twin_core.network import check_opcua_endpoint
from twin_core.opcua import node_id
from twin_core.workers import Workers
from twin_sensors.readers import StateCallback, reconnect_backoff

ValuesCallback = Callable[[Mapping[str, Any], int], None]

for _name in ('asyncua', 'asyncua.client', 'asyncua.common'):
    logging.getLogger(_name).setLevel(logging.WARNING)
# A lost server makes the session's publish loop log a traceback per retry; the subscriber
# reports the loss and its reconnects itself.
logging.getLogger('asyncua.client.ua_session').setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class OpcUaConfig:
    """An OPC UA server and how to subscribe to it."""

    endpoint: str = field(default='opc.tcp://127.0.0.1:4840/twin/plc', metadata=describe(
        'Server endpoint URL, opc.tcp://<host>:<port>/<path>.'))
    namespace: str = field(default='urn:ros2-digital-twin:workcell', metadata=describe(
        'Namespace URI of the subscribed variables.'))
    publishing_interval: float = field(default=0.05, metadata=describe(
        'Subscription publishing (and sampling) interval, s.', min=0.0, max=60.0))
    timeout: float = field(default=4.0, metadata=describe('Request timeout, s.', min=0.1, max=60.0))

    def __post_init__(self) -> None:
        check_opcua_endpoint(self.endpoint)


class OpcUaSubscriber:
    """Keeps one subscription to ``names`` alive; all asyncua work happens in its own thread."""

    def __init__(self, config: OpcUaConfig, names: Sequence[str], on_values: ValuesCallback,
                 on_state: StateCallback, clock: Callable[[], int] = time.time_ns,
                 workers: Workers | None = None) -> None:
        self.config, self.names = config, tuple(names)
        self.on_values, self.on_state, self.clock = on_values, on_state, clock
        self.workers = workers or Workers()
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self.connected: bool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending: dict[str, Any] = {}
        self._session_client: tuple[Client, int] | None = None

    def start(self) -> None:
        self._thread = self.workers.spawn(f'opcua {self.config.endpoint}', lambda: asyncio.run(self._main()),
                                          self._stop)
        self._started.wait(5.0)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._loop is not None and self._stopping is not None:
            try:
                self._loop.call_soon_threadsafe(self._stopping.set)
            except RuntimeError:  # the loop has ended (being restarted): the stop event suffices
                pass
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    # ----------------------------------------------------------------- asyncua thread

    async def _main(self) -> None:
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        self._failure = None
        self._loop.set_exception_handler(self._on_loop_error)
        if self._stop.is_set():
            return
        self._started.set()
        backoff = reconnect_backoff()
        while not self._stopping.is_set():
            try:
                await self._session()
                backoff.reset()
            except Exception as error:  # any failure of one session leads to a reconnect, never a crash
                self._set_state(False, f'{self.config.endpoint}: {error or type(error).__name__}')
            if self._failure is not None:  # our own code failed: the worker reports and restarts
                raise self._failure
            if not self._stopping.is_set():
                await self._sleep(backoff.delay())

    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """An exception in a callback on the loop (e.g. ``on_values``): end the loop with it."""
        self._failure = context.get('exception') or RuntimeError(context.get('message', 'loop error'))
        assert self._stopping is not None
        self._stopping.set()

    async def _session(self) -> None:
        assert self._stopping is not None
        client = Client(self.config.endpoint, timeout=self.config.timeout)
        lost = asyncio.Event()

        async def on_lost(_error: Exception) -> None:
            lost.set()

        client.connection_lost_callback = on_lost
        try:
            await client.connect()
            index = await client.get_namespace_index(self.config.namespace)
            nodes = {node_id(name, index): name for name in self.names}
            interval_ms = self.config.publishing_interval * 1000.0
            if nodes:
                subscription = await client.create_subscription(interval_ms, _Handler(self, nodes))
                # sampling_interval is annotated as asyncua's ua.Double class; it takes a float.
                await subscription.subscribe_data_change(  # type: ignore[call-overload]
                    [client.get_node(n) for n in nodes], sampling_interval=interval_ms)
            self._session_client = client, index
            self._set_state(True, f'subscribed to {len(nodes)} variables at {self.config.endpoint}')
            stop_task = asyncio.ensure_future(self._stopping.wait())
            lost_task = asyncio.ensure_future(lost.wait())
            await asyncio.wait([stop_task, lost_task], return_when=asyncio.FIRST_COMPLETED)
            stop_task.cancel()
            lost_task.cancel()
            if lost.is_set():
                raise ConnectionError('connection lost')
        finally:
            self._session_client = None
            try:
                await asyncio.wait_for(client.disconnect(), 1.0)
            except Exception:  # the connection may already be gone; nothing left to release
                pass

    async def _sleep(self, seconds: float) -> None:
        assert self._stopping is not None
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass

    def _set_state(self, connected: bool, detail: str) -> None:
        if connected != self.connected:
            self.connected = connected
            self.on_state(connected, detail)

    def _take(self, name: str, value: Any) -> None:
        if not self._pending:
            assert self._loop is not None
            self._loop.call_soon(self._flush)  # after the rest of this publish response
        self._pending[name] = value

    def _flush(self) -> None:
        values, self._pending = self._pending, {}
        self.on_values(values, self.clock())


class _Handler:
    """asyncua subscription handler: routes each change to the subscriber by variable name."""

    def __init__(self, subscriber: OpcUaSubscriber, names: Mapping[ua.NodeId, str]) -> None:
        self.subscriber, self.names = subscriber, names

    def datachange_notification(self, node: Node, value: Any, data: DataChangeNotif) -> None:
        status = data.monitored_item.Value.StatusCode
        good = status is None or status.is_good()
        self.subscriber._take(self.names[node.nodeid], value if good else None)
