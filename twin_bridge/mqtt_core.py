"""MQTT side of the bridge, without rclpy: the broker link and the mapping pipeline.

:class:`MqttLink` wraps a paho-mqtt 2.x client running in its own network thread. QoS 1/2
messages go through the on-disk :class:`~twin_bridge.outbox.Outbox` first; a sender thread commits
the outbox (new messages, acknowledged ones to delete and inbound ids seen, in one transaction)
when the messages it can hand over are all sent and new ones wait, and whatever waits at least
every ``COMMIT_S``; it hands committed messages to paho in order, at most ``max_inflight``
unacknowledged.
paho re-sends unacknowledged messages after a reconnect, and a restarted bridge re-sends the
whole outbox, so nothing is lost; receivers drop the resulting duplicates by id.
:class:`MqttBridge` encodes outbound ROS messages, validates and deduplicates inbound payloads,
and counts everything for the diagnostics.
"""
from __future__ import annotations

import itertools
import secrets
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from twin_bridge.mqtt_config import BrokerConfig, ClientConfig, MqttBridgeConfig
from twin_bridge.outbox import Outbox, SeenIds, open_store
from twin_bridge.payload import PayloadError, Schema, encode_cdr, encode_json
from twin_core.config import ConfigError
from twin_core.dead_letters import DeadLetters
from twin_core.levels import Level
from twin_core.restart import Backoff
from twin_core.stamps import to_seconds
from twin_core.workers import Workers
from twin_ros.messages import message_class

StateCallback = Callable[[bool, str], None]
COMMIT_S = 0.05  # longest time a queued outbox row or inbound id waits for the sender's commit
QOS0 = -1  # marker of an in-flight message without an outbox entry (QoS 0, status)
MAX_ROUTES = 1024  # inbound topics whose mapping is remembered


@dataclass
class LinkStats:
    """Counters of the broker link."""

    connected: bool = False
    connects: int = 0
    failures: int = 0
    sent: int = 0
    acked: int = 0
    rejected: int = 0
    unsent_qos0: int = 0
    last_error: str = ''


class MqttLink:
    """A paho client (network thread) plus a sender thread feeding it from the outbox."""

    def __init__(self, broker: BrokerConfig, client: ClientConfig, outbox: Outbox,
                 subscriptions: list[tuple[str, int]], on_message: Callable[[str, bytes], None],
                 on_state: StateCallback, workers: Workers) -> None:
        self.broker, self.config, self.outbox = broker, client, outbox
        self._workers = workers
        self.stats = LinkStats()
        self.status_topic = f'{client.status_prefix}/status'
        self._subscriptions = subscriptions
        self._on_message = on_message
        self._on_state = on_state
        self._wake = threading.Condition()
        self._inflight: dict[int, int] = {}  # paho mid -> outbox seq (QOS0 for QoS 0)
        self._early: dict[int, Any] = {}  # mid -> reason, acknowledged before publish() returned
        self._volatile: deque[tuple[str, bytes, bool]] = deque(maxlen=client.max_inflight * 50)
        self._volatile_ids = itertools.count()
        self._boot = secrets.token_hex(6)
        self._batch = max(1, client.max_inflight // 4)  # messages handed to paho per wake-up, at least
        self._stopping = False
        self._client = self._make_client()

    def start(self) -> None:
        properties = None
        if self.config.protocol == 'v5':
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = self.config.session_expiry
            self._client.connect_async(self.broker.host, self.broker.port, self.config.keepalive,
                                       clean_start=self.config.clean_start, properties=properties)
        else:
            self._client.connect_async(self.broker.host, self.broker.port, self.config.keepalive)
        self._workers.spawn('mqtt network', self._network_loop)
        self._workers.spawn('mqtt sender', self._send_loop)

    def stop(self) -> None:
        """Publish the retained "offline" status, disconnect and let both workers end.

        Queued outbox rows are committed, so a stopped bridge has lost nothing (unless the disk
        cannot be written: that is logged with the number of messages lost).
        """
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if not self.outbox.store.commit():
            self._on_state(False, f'{self.outbox.store.error}: {self.outbox.waiting} messages lost on stop')
        if self.stats.connected:
            self._client.publish(self.status_topic, 'offline', qos=1, retain=True).wait_for_publish(2.0)
        self._client.disconnect()

    def _network_loop(self) -> None:
        """Connect, serve the connection, reconnect with backoff; returns after :meth:`stop`.

        paho's single-thread interface (``reconnect`` and ``loop``) run in this worker: with the
        write hook of :meth:`_make_client`, a publish from another thread only queues its packet
        and wakes this loop, so the socket has one writer and packets leave whole and in order.
        A restarted worker starts from a new connection (the old socket may hold a half-read packet).
        """
        client = self._client
        backoff = Backoff(self.config.reconnect_min, self.config.reconnect_max)
        while not self._stopping:
            try:
                client.reconnect()
            except OSError:
                self._on_connect_fail(client, None)
            else:
                while client.loop(timeout=1.0) == MQTTErrorCode.MQTT_ERR_SUCCESS:
                    if client.is_connected():
                        backoff.reset()
            with self._wake:
                self._wake.wait_for(lambda: self._stopping, timeout=backoff.delay())

    def publish(self, topic: str, qos: int, retain: bool, payload_for: Callable[[str], bytes]) -> None:
        """Queue a message; QoS 1/2 is queued in the outbox and on disk at the sender's next commit."""
        if qos == 0:
            payload = payload_for(f'{self._boot}/{next(self._volatile_ids)}')
            with self._wake:
                if len(self._volatile) == self._volatile.maxlen:
                    self.stats.unsent_qos0 += 1
                self._volatile.append((topic, payload, retain))
                self._wake.notify()
            return
        self.outbox.add(topic, qos, retain, payload_for)
        with self._wake:
            self._wake.notify()

    def _make_client(self) -> mqtt.Client:
        v5 = self.config.protocol == 'v5'
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.config.client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if v5 else self.config.clean_start)
        client.max_inflight_messages_set(self.config.max_inflight)
        client.will_set(self.status_topic, 'offline', qos=1, retain=True)
        if self.broker.username:
            client.username_pw_set(self.broker.username, self._password())
        if self.broker.tls.enabled:
            client.tls_set_context(self._tls_context())
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        # Only the network worker writes to the socket: without this hook paho writes from the
        # publishing thread too, and two writers reorder (or interleave) packets.
        client.on_socket_register_write = lambda _client, _userdata, _socket: None
        client.on_message = lambda _client, _userdata, message: self._on_message(
            message.topic, bytes(message.payload))  # paho decodes bytes; typed bytes | bytearray
        return client

    def _password(self) -> str | None:
        if not self.broker.password_file:
            return None
        try:
            return Path(self.broker.password_file).expanduser().read_text().splitlines()[0]
        except (OSError, IndexError) as error:
            raise ConfigError(f'broker.password_file: cannot read a password: {error}') from None

    def _tls_context(self) -> ssl.SSLContext:
        tls = self.broker.tls
        try:
            context = ssl.create_default_context(cafile=tls.ca_file or None)
            if tls.cert_file:
                context.load_cert_chain(tls.cert_file, tls.key_file or None)
        except (OSError, ssl.SSLError) as error:
            raise ConfigError(f'broker.tls: {error}') from None
        if tls.alpn:
            context.set_alpn_protocols([tls.alpn])
        return context

    def _set_state(self, connected: bool, detail: str) -> None:
        """Report a change of state once (repeated identical failures stay silent)."""
        changed = connected != self.stats.connected or (not connected and detail != self.stats.last_error)
        self.stats.connected = connected
        if not connected:
            self.stats.failures += 1
            self.stats.last_error = detail
        if changed:
            self._on_state(connected, detail)

    def _on_connect(self, client: mqtt.Client, _userdata: Any, flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            self._set_state(False, f'broker {self._address()} refused the connection: {reason} '
                                   f'(reason code {reason.value}); retrying with backoff')
            return
        self.stats.connects += 1
        # One connection carries both directions: without this, Nagle's algorithm holds small
        # packets (PUBACKs) until the broker's delayed TCP ACK, ~40 ms.
        if isinstance(sock := client.socket(), socket.socket):  # TCP, with or without TLS
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._track(client.publish(self.status_topic, 'online', qos=1, retain=True), QOS0)
        for topic, qos in self._subscriptions:
            client.subscribe(topic, qos)
        self._set_state(True, f'connected to {self._address()} '
                              f'(session {"resumed" if flags.session_present else "new"})')
        with self._wake:
            self._wake.notify()

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        if self.stats.connected or not self.stats.last_error.startswith('cannot connect'):
            self._set_state(False, f'cannot connect to {self._address()}: {self._diagnose()}; '
                                   'retrying with backoff')
        else:
            self.stats.failures += 1

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any,
                       _props: Any) -> None:
        if self._stopping:
            return
        if self.stats.connected:
            self._set_state(False, f'disconnected from {self._address()}: {reason}; reconnecting')
        elif not self.stats.last_error.startswith(f'broker {self._address()} refused'):
            self._set_state(False, f'broker {self._address()} closed the connection before accepting it '
                                   f'({reason}; a rejected client certificate looks like this); '
                                   'retrying with backoff')

    def _diagnose(self) -> str:
        """Why a TCP (and TLS) connection to the broker fails, for the one error message."""
        try:
            with socket.create_connection((self.broker.host, self.broker.port), timeout=3.0) as raw:
                if self.broker.tls.enabled:
                    with self._tls_context().wrap_socket(raw, server_hostname=self.broker.host):
                        pass
        except (OSError, ssl.SSLError) as error:
            return str(error)
        return 'connection closed during the handshake'

    def _address(self) -> str:
        return f'{self.broker.host}:{self.broker.port}'

    def _on_publish(self, _client: mqtt.Client, _userdata: Any, mid: int, reason: Any, _props: Any) -> None:
        with self._wake:
            seq = self._inflight.pop(mid, None)
            if seq is None:
                self._early[mid] = reason
                return
            self._complete(seq, reason)

    def _complete(self, seq: int, reason: Any) -> None:
        """An acknowledgement (or QoS 0 write) of a handed-over message; caller holds ``_wake``."""
        if seq == QOS0:
            self._wake.notify()
            return
        if reason.is_failure:
            self.stats.rejected += 1
            self.stats.last_error = f'broker rejected a message: {reason} (reason code {reason.value})'
        else:
            self.stats.acked += 1
        self.outbox.remove([seq])  # deleted with the next commit
        if self.config.max_inflight - len(self._inflight) >= self._batch:
            self._wake.notify()

    def _commit_due(self) -> bool:
        """Whether rows wait and ``COMMIT_S`` has passed since the last commit (or attempt)."""
        return self.outbox.store.dirty and self._until_commit() == 0.0

    def _until_commit(self) -> float:
        """Seconds until rows waiting now are due for a commit (``COMMIT_S`` after the last one)."""
        if not self.outbox.store.dirty:
            return COMMIT_S
        return max(0.0, self.outbox.store.committed_at + COMMIT_S - time.monotonic())

    def _ready(self) -> bool:
        """Whether the sender has work: room for a quarter of ``max_inflight`` and something to
        hand over or commit, QoS 0 messages to drop, a commit due, or stopping.
        """
        if self._stopping or self._commit_due():
            return True
        if not self.stats.connected:
            return bool(self._volatile)
        room = self.config.max_inflight - len(self._inflight) >= self._batch
        return room and (bool(self._volatile) or self.outbox.waiting > 0 or self.outbox.ready)

    def _send_loop(self) -> None:
        while not self._workers.stopping.is_set():
            with self._wake:
                self._wake.wait_for(self._ready, timeout=self._until_commit())
                if self._stopping:
                    return
                volatile = list(self._volatile)
                self._volatile.clear()
                connected = self.stats.connected
                room = self.config.max_inflight - len(self._inflight) if connected else 0
            # One commit per batch: when nothing committed is left to hand over, or when due.
            if (room > 0 and self.outbox.waiting > 0 and not self.outbox.ready) or self._commit_due():
                self.outbox.store.commit()  # a failure is kept in store.error, retried when due
            if not connected:
                self.stats.unsent_qos0 += len(volatile)
                continue
            for topic, payload, retain in volatile:
                self._hand(self._client.publish(topic, payload, 0, retain), QOS0)
            if room > 0:
                for entry in self.outbox.take(room):
                    self._hand(self._client.publish(entry.topic, entry.payload, entry.qos, entry.retain),
                               entry.seq)

    def _hand(self, info: mqtt.MQTTMessageInfo, seq: int) -> None:
        self.stats.sent += 1
        self._track(info, seq)

    def _track(self, info: mqtt.MQTTMessageInfo, seq: int) -> None:
        """Wait for the acknowledgement of ``info`` (QOS0: no outbox entry to delete)."""
        with self._wake:
            if info.mid in self._early:
                self._complete(seq, self._early.pop(info.mid))
            else:
                self._inflight[info.mid] = seq


@dataclass
class InboundStats:
    """Counters of the MQTT -> ROS direction."""

    delivered: int = 0
    duplicates: int = 0
    invalid: int = 0
    last_invalid: str = ''
    latency_ms: float = 0.0  # moving average of receive time - sender stamp


class MqttBridge:
    """Outbound ROS messages to MQTT and validated, deduplicated inbound payloads to ``deliver``.

    ``deliver(index, message)`` publishes a message of inbound mapping ``index`` (for CDR mappings
    its validated CDR bytes, which ROS publishers take as they are);
    ``deserialize(data, cls)`` turns CDR bytes into a message (``rclpy.serialization``).
    """

    def __init__(self, config: MqttBridgeConfig, deliver: Callable[[int, Any], None],
                 deserialize: Callable[[bytes, type], Any], on_state: StateCallback,
                 workers: Workers, dead_letters: DeadLetters) -> None:
        self.config = config
        self.outbound = config.ros_to_mqtt.mappings()
        self.inbound = config.mqtt_to_ros.mappings()
        try:
            self.schemas = [Schema(message_class(m.type_name), m.limits) for m in self.inbound]
        except LookupError as error:
            raise ConfigError(f'mqtt_to_ros: {error.args[0]}') from None
        self.stats = InboundStats()
        self._routes: dict[str, int | None] = {}  # MQTT topic -> inbound mapping (None: no mapping)
        self._deliver = deliver
        self._deserialize = deserialize
        self.dead_letters = dead_letters
        self._reported = (0, 0, 0)  # outbox drops, broker rejections, invalid at the last report
        store = open_store(Path(config.outbox.directory).expanduser() / f'{config.client.client_id}.sqlite')
        self.outbox = Outbox(store, config.outbox.capacity)
        self.seen = SeenIds(store, config.outbox.dedup_window)
        self.link = MqttLink(config.broker, config.client, self.outbox,
                             [(m.mqtt_topic, m.qos) for m in self.inbound], self._on_mqtt, on_state, workers)

    def start(self) -> None:
        self.link.start()

    def stop(self) -> None:
        self.link.stop()

    def send(self, index: int, message: Any, stamp_ns: int | None = None) -> None:
        """Forward outbound mapping ``index``'s message (CDR mappings: the serialized bytes)."""
        mapping = self.outbound[index]
        stamp = time.time_ns() if stamp_ns is None else stamp_ns
        encode = encode_json if mapping.payload == 'json' else encode_cdr
        self.link.publish(mapping.mqtt_topic, mapping.qos, mapping.retain,
                          lambda message_id: encode(message, message_id, stamp))

    def _on_mqtt(self, topic: str, payload: bytes) -> None:
        """Handle one inbound message; nothing it contains can raise into paho's loop.

        A payload that cannot be processed is counted and dead-lettered; returning normally
        lets paho acknowledge it, so the broker never redelivers a poison message.
        """
        try:
            self._handle(topic, payload)
        except PayloadError as error:
            self._reject(topic, payload, error.reason, str(error))
        except Exception as error:  # delivery failed: the message is kept as a dead letter
            self._reject(topic, payload, 'delivery_failed', f'{type(error).__name__}: {error}')

    def _reject(self, topic: str, payload: bytes, reason: str, error: str) -> None:
        self.stats.invalid += 1
        self.stats.last_invalid = f'{topic}: {error}'[:300]
        self.dead_letters.add(f'mqtt {topic}', reason, error, payload)

    def _route(self, topic: str) -> int | None:
        """The inbound mapping whose filter ``topic`` matches first (remembered per topic)."""
        if topic not in self._routes:
            if len(self._routes) >= MAX_ROUTES:  # filters with wildcards can match endless topics
                self._routes.clear()
            self._routes[topic] = next((i for i, mapping in enumerate(self.inbound)
                                        if mqtt.topic_matches_sub(mapping.mqtt_topic, topic)), None)
        return self._routes[topic]

    def _handle(self, topic: str, payload: bytes) -> None:
        index = self._route(topic)
        if index is None:
            return
        mapping, schema = self.inbound[index], self.schemas[index]
        inbound = (schema.decode_json(payload) if mapping.payload == 'json'
                   else schema.decode_cdr(payload, self._deserialize))
        if inbound.message_id is not None and inbound.message_id in self.seen:
            self.stats.duplicates += 1
            return
        self._deliver(index, inbound.message if inbound.serialized is None else inbound.serialized)
        self.stats.delivered += 1
        if inbound.message_id is not None:
            self.seen.add(inbound.message_id)
        if inbound.stamp_ns is not None:
            latency = to_seconds(time.time_ns() - inbound.stamp_ns) * 1e3  # ms
            self.stats.latency_ms += 0.1 * (latency - self.stats.latency_ms)

    def health(self) -> tuple[Level, str, dict[str, Any]]:
        """(level, message, values) for the diagnostics.

        Drops and rejections since the last call are an ERROR, invalid inbound payloads a WARN.
        """
        link, outbox = self.link.stats, self.outbox
        counts = (outbox.dropped, link.rejected, self.stats.invalid)
        new_drops, new_rejections, new_invalid = (now - before for now, before in zip(counts, self._reported))
        self._reported = counts
        if not link.connected:
            level, message = Level.ERROR, f'disconnected: {link.last_error or "connecting"}'
        elif new_drops or new_rejections:
            level, message = Level.ERROR, (f'{new_drops} messages dropped (outbox full), '
                                       f'{new_rejections} rejected by the broker')
        elif new_invalid:
            level, message = Level.WARN, f'{new_invalid} invalid inbound payloads: {self.stats.last_invalid}'
        else:
            level, message = Level.OK, f'connected, outbox {outbox.depth}'
        if outbox.store.error:
            level, message = Level.ERROR, f'{outbox.store.error} ({outbox.waiting} messages kept in memory); {message}'
        values = {'connected': link.connected, 'outbox_depth': outbox.depth,
                  'outbox_capacity': outbox.capacity, 'outbox_error': outbox.store.error,
                  'sent': link.sent, 'acked': link.acked, 'dropped': outbox.dropped, 'rejected': link.rejected,
                  'unsent_qos0': link.unsent_qos0, 'connects': link.connects,
                  'reconnects': max(0, link.connects - 1), 'connect_failures': link.failures,
                  'received': self.stats.delivered, 'duplicates': self.stats.duplicates,
                  'invalid_inbound': self.stats.invalid, 'last_invalid': self.stats.last_invalid,
                  **{f'invalid.{reason}': n for reason, n in sorted(self.dead_letters.counts.items())},
                  'latency_ms': round(self.stats.latency_ms, 3), 'last_error': link.last_error}
        return level, message, values
