"""MQTT core without ROS processes: payload conversion and validation, outbox, dedup, real broker."""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Pose, Twist
from paho.mqtt.enums import CallbackAPIVersion
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Imu, JointState, LaserScan
from std_msgs.msg import Empty, Float64, Header

from twin_bridge.mqtt_config import MqttBridgeConfig, parse_limits
from twin_bridge.mqtt_core import MqttBridge
from twin_bridge.outbox import Outbox, SeenIds, open_store
from twin_bridge.payload import PayloadError, Schema, encode_cdr, encode_json, to_dict
from twin_core.config import ConfigError, build
from twin_core.dead_letters import DeadLetters
from twin_core.levels import Level
from twin_core.workers import Workers
from twin_interfaces.msg import TwinState


def sample_messages() -> list[Any]:
    imu = Imu(header=Header(frame_id='imu_link'))
    imu.header.stamp.sec, imu.header.stamp.nanosec = 12, 345
    imu.orientation.w, imu.angular_velocity.z, imu.linear_acceleration.z = 1.0, 0.25, 9.81
    imu.orientation_covariance[0] = 0.01
    joints = JointState(name=['joint_1', 'joint_2'], position=[0.1, -0.2], velocity=[1.0, 2.0], effort=[])
    diagnostics = DiagnosticArray(status=[DiagnosticStatus(
        level=DiagnosticStatus.WARN, name='x: y', message='hot', values=[KeyValue(key='t', value='80')])])
    state = TwinState(joint_names=['joint_1'], position=[0.5], task_id=2**63 + 5, status=1,
                      input_qualities=[0, 2], speed_override=0.5, end_effector_pose=Pose())
    return [imu, joints, diagnostics, state, Header(frame_id='f'), Empty(), Twist()]


@pytest.mark.parametrize('message', sample_messages(), ids=lambda m: type(m).__name__)
def test_json_round_trip(message: Any) -> None:
    payload = encode_json(message, 'epoch/7', 123)
    decoded = Schema(type(message), {}).decode_json(payload)
    assert decoded.message == message
    assert (decoded.message_id, decoded.stamp_ns) == ('epoch/7', 123)
    assert json.loads(payload)['_id'] == 'epoch/7'


def test_cdr_round_trip_checks_limits() -> None:
    schema = Schema(Float64, parse_limits('data=0.0..1.0'))
    decoded = schema.decode_cdr(encode_cdr(serialize_message(Float64(data=0.5)), 'e/1', 9), deserialize_message)
    assert (decoded.message, decoded.message_id, decoded.stamp_ns) == (Float64(data=0.5), 'e/1', 9)
    assert decoded.serialized == serialize_message(Float64(data=0.5))  # published as it came
    for payload in (encode_cdr(serialize_message(Float64(data=2.0)), 'e/2', 9),
                    encode_cdr(b'\x00\x01garbage', 'e/3', 9), b'{"data": 0.5}'):
        with pytest.raises(PayloadError):
            schema.decode_cdr(payload, deserialize_message)


@pytest.mark.parametrize('payload', [
    b'{"data": 1.5}', b'{"data": -0.1}', b'{"data": "0.5"}', b'{"data": true}', b'{"data": NaN}',
    b'{"data": Infinity}', b'{}', b'{"data": 0.5, "extra": 1}', b'[0.5]', b'0.5', b'not json',
    b'\xff\xfe', b'{"data": 0.5, "_id": 7}', b'{"data": 0.5, "_stamp_ns": "now"}', b'{"data": null}'])
def test_schema_rejects_bad_commands(payload: bytes) -> None:
    with pytest.raises(PayloadError):
        Schema(Float64, parse_limits('data=0.0..1.0')).decode_json(payload)


def test_schema_checks_nested_types_and_limits() -> None:
    schema = Schema(Twist, parse_limits('linear.x=-1.0..1.0'))
    good = to_dict(Twist())
    assert schema.decode_json(json.dumps(good).encode()).message == Twist()
    for path, value in (('linear', 'x'), ('angular', {'x': 0.0})):
        bad = json.loads(json.dumps(good))
        bad[path] = value
        with pytest.raises(PayloadError):
            schema.decode_json(json.dumps(bad).encode())
    good['linear']['x'] = 2.0
    with pytest.raises(PayloadError, match='linear.x'):
        schema.decode_json(json.dumps(good).encode())
    state = to_dict(TwinState())
    state['status'] = 256
    with pytest.raises(PayloadError, match='status'):
        Schema(TwinState, {}).decode_json(json.dumps(state).encode())
    with pytest.raises(LookupError):
        Schema(Float64, parse_limits('speed=0.0..1.0'))


def test_outbox_is_bounded_and_persistent(tmp_path: Path) -> None:
    outbox = Outbox(open_store(tmp_path / 'o.sqlite'), capacity=5)
    ids = [outbox.add('t', 1, False, str.encode).payload.decode() for _ in range(8)]
    assert (outbox.depth, outbox.dropped) == (5, 3)
    outbox.flush()  # rows are written in one transaction per commit
    reopened = Outbox(open_store(tmp_path / 'o.sqlite'), capacity=5)
    pending = reopened.after(0, 100)
    assert [p.payload.decode() for p in pending] == ids[3:]
    reopened.remove([pending[0].seq, pending[1].seq])
    reopened.flush()
    assert reopened.depth == 3
    assert reopened.add('t', 1, False, str.encode).seq == 9  # ids are never reused
    assert reopened.epoch == outbox.epoch


def test_seen_ids_window_survives_reopen(tmp_path: Path) -> None:
    seen = SeenIds(open_store(tmp_path / 's.sqlite'), window=3)
    for message_id in 'abcd':
        seen.add(message_id)
    seen.flush()
    again = SeenIds(open_store(tmp_path / 's.sqlite'), window=3)
    assert [i in again for i in 'abcd'] == [False, True, True, True]


def test_config_rejects_inconsistent_mappings() -> None:
    with pytest.raises(ConfigError, match='equal lengths'):
        build(MqttBridgeConfig, {'ros_to_mqtt': {'qos': [1]}}, 'mqtt_bridge')
    with pytest.raises(ConfigError, match='min..max'):
        build(MqttBridgeConfig, {'mqtt_to_ros': {'limits': ['data=1..0', '']}}, 'mqtt_bridge')
    with pytest.raises(ConfigError, match='pkg/msg/Name'):
        build(MqttBridgeConfig, {'mqtt_to_ros': {'types': ['Float64', 'std_msgs/msg/Empty']}}, 'mqtt_bridge')


class Collector:
    """Records what the bridge delivers to ROS."""

    def __init__(self) -> None:
        self.messages: list[tuple[int, Any]] = []
        self.states: list[tuple[bool, str]] = []
        self.event = threading.Event()

    def deliver(self, index: int, message: Any) -> None:
        self.messages.append((index, message))
        self.event.set()

    def on_state(self, connected: bool, detail: str) -> None:
        self.states.append((connected, detail))

    def wait(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.messages) >= count, f'{len(self.messages)} of {count} delivered'


def loop_config(port: int, directory: Path, capacity: int = 1000) -> MqttBridgeConfig:
    """Header messages out on test/loop and back in: the round trip through the broker."""
    return build(MqttBridgeConfig, {
        'broker': {'port': port},
        'client': {'client_id': 'core_test', 'reconnect_min': 0.1, 'reconnect_max': 0.5},
        'outbox': {'directory': str(directory), 'capacity': capacity},
        'ros_to_mqtt': {'ros_topics': ['/a'], 'types': ['std_msgs/msg/Header'], 'mqtt_topics': ['test/loop'],
                        'qos': [1], 'retain': [False], 'payloads': ['json']},
        'mqtt_to_ros': {'mqtt_topics': ['test/loop'], 'ros_topics': ['/b'], 'types': ['std_msgs/msg/Header'],
                        'qos': [1], 'payloads': ['json'], 'limits': ['']}}, 'core_test')


class Core:
    """A bridge core with its own workers and dead-letter store, stopped like the node stops it."""

    def __init__(self, config: MqttBridgeConfig, collector: Collector, directory: Path) -> None:
        self.workers = Workers()
        self.dead_letters = DeadLetters(directory / f'dead-{id(self)}.sqlite')
        self.bridge = MqttBridge(config, collector.deliver, deserialize_message, collector.on_state,
                                 self.workers, self.dead_letters)

    def stop(self) -> None:
        self.bridge.stop()
        self.workers.stop()
        self.dead_letters.close()


def wait_connected(bridge: MqttBridge, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not bridge.link.stats.connected:
        assert time.monotonic() < deadline, bridge.link.stats
        time.sleep(0.01)


def test_outbox_survives_a_core_restart_and_duplicates_are_dropped(mosquitto, tmp_path: Path) -> None:
    broker = mosquitto()
    broker.stop()  # down: everything stays in the outbox
    collector = Collector()
    first_core = Core(loop_config(broker.port, tmp_path), collector, tmp_path)
    first = first_core.bridge
    first.start()
    for i in range(50):
        first.send(0, Header(frame_id=str(i)))
    time.sleep(0.3)
    first_core.stop()
    assert first.outbox.depth == 50 and not collector.messages
    assert sum(not connected for connected, _ in collector.states) == 1  # one error, not one per retry
    assert 'cannot connect' in collector.states[0][1] and 'refused' in collector.states[0][1].lower()

    broker.start()
    second_core = Core(loop_config(broker.port, tmp_path), collector, tmp_path)
    second = second_core.bridge
    second.start()
    try:
        collector.wait(50)
        assert [m.frame_id for _, m in collector.messages] == [str(i) for i in range(50)]
        deadline = time.monotonic() + 5.0
        while second.outbox.depth and time.monotonic() < deadline:
            time.sleep(0.01)
        assert second.outbox.depth == 0
        duplicate = encode_json(Header(frame_id='dup'), 'x/1', time.time_ns())
        publisher = mqtt.Client(CallbackAPIVersion.VERSION2)
        publisher.connect('127.0.0.1', broker.port)
        publisher.loop_start()
        for _ in range(3):
            publisher.publish('test/loop', duplicate, qos=1).wait_for_publish(5.0)
        publisher.publish('test/loop', b'{"frame_id": 1}', qos=1).wait_for_publish(5.0)
        publisher.loop_stop()
        collector.wait(51)
        time.sleep(0.3)
        assert len(collector.messages) == 51
        assert (second.stats.duplicates, second.stats.invalid) == (2, 1)
        level, _, values = second.health()
        assert level == Level.WARN and values['invalid_inbound'] == 1 and values['connected']
        assert values['invalid.schema'] == 1
        (letter,) = second.dead_letters.recent()
        assert (letter.source, letter.reason, letter.payload) == ('mqtt test/loop', 'schema', b'{"frame_id": 1}')
    finally:
        second_core.stop()


def test_a_burst_arrives_in_the_order_it_was_sent(mosquitto, tmp_path: Path) -> None:
    """The sender thread hands messages to paho while the network thread acks and reads: the
    packets must still leave in order, whole (one writer of the socket)."""
    broker = mosquitto()
    collector = Collector()
    core = Core(loop_config(broker.port, tmp_path, capacity=5000), collector, tmp_path)
    core.bridge.start()
    try:
        wait_connected(core.bridge)
        for i in range(3000):
            core.bridge.send(0, Header(frame_id=str(i)))
        collector.wait(3000, timeout=60.0)
        received = [int(m.frame_id) for _, m in collector.messages]
        assert received == list(range(3000)), next(
            f'at {k}: {v}' for k, v in enumerate(received) if v != k)
    finally:
        core.stop()


def test_full_outbox_drops_the_oldest_and_reports_error(mosquitto, tmp_path: Path) -> None:
    broker = mosquitto()
    broker.stop()
    collector = Collector()
    core = Core(loop_config(broker.port, tmp_path, capacity=10), collector, tmp_path)
    bridge = core.bridge
    for i in range(25):
        bridge.send(0, Header(frame_id=str(i)))
    assert (bridge.outbox.depth, bridge.outbox.dropped) == (10, 15)
    level, message, values = bridge.health()
    assert level == Level.ERROR and values['dropped'] == 15
    broker.start()
    bridge.start()
    try:
        collector.wait(10)
        assert [m.frame_id for _, m in collector.messages] == [str(i) for i in range(15, 25)]
        wait_connected(bridge)
        assert bridge.health()[0] == Level.OK
    finally:
        core.stop()



def outbox_path(directory: Path) -> Path:
    return directory / 'core_test.sqlite'


def test_messages_are_committed_in_batches_and_on_disk_before_paho_sends_them(mosquitto, tmp_path: Path) -> None:
    broker = mosquitto()
    collector = Collector()
    core = Core(loop_config(broker.port, tmp_path, capacity=5000), collector, tmp_path)
    bridge, count = core.bridge, 2000
    reader = sqlite3.connect(outbox_path(tmp_path), check_same_thread=False)  # sees committed rows only
    not_on_disk: list[int] = []
    publish = bridge.link._client.publish

    def checked_publish(topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> mqtt.MQTTMessageInfo:
        if topic == 'test/loop':
            seq = int(json.loads(payload)['_id'].split('/')[1])
            if reader.execute('SELECT count(*) FROM outbox WHERE seq = ?', (seq,)).fetchone()[0] != 1:
                not_on_disk.append(seq)
        return publish(topic, payload, qos, retain)

    commits = 0
    commit = bridge.outbox.store.commit

    def counted_commit() -> bool:  # messages keep coming while the sender is busy
        nonlocal commits
        commits += 1
        committed = commit()
        time.sleep(0.002)
        return committed

    bridge.link._client.publish = checked_publish  # type: ignore[method-assign]
    bridge.outbox.store.commit = counted_commit  # type: ignore[method-assign]
    bridge.start()
    try:
        wait_connected(bridge)
        for i in range(count):  # in groups, so the sender also finds messages it has not committed
            bridge.send(0, Header(frame_id=str(i)))
            if i % 50 == 49:
                time.sleep(0.005)
        collector.wait(count, timeout=60.0)
        assert [int(m.frame_id) for _, m in collector.messages] == list(range(count))
        assert not_on_disk == []
        assert commits < count / 10, f'{commits} commits for {count} messages'
    finally:
        core.stop()
        reader.close()


def test_broker_restart_in_the_middle_of_a_burst_loses_and_duplicates_nothing(mosquitto, tmp_path: Path) -> None:
    broker = mosquitto()
    collector = Collector()
    core = Core(loop_config(broker.port, tmp_path, capacity=5000), collector, tmp_path)
    bridge, count = core.bridge, 3000
    bridge.start()
    try:
        wait_connected(bridge)
        for i in range(count // 2):
            bridge.send(0, Header(frame_id=str(i)))
        collector.wait(100, timeout=30.0)
        broker.stop()  # batches committed, in flight and not yet committed
        for i in range(count // 2, count):
            bridge.send(0, Header(frame_id=str(i)))
        broker.start()
        collector.wait(count, timeout=60.0)
        time.sleep(0.5)  # any duplicate would arrive meanwhile
        received = [int(m.frame_id) for _, m in collector.messages]
        assert sorted(received) == list(range(count))  # every message exactly once
        assert bridge.link.stats.connects >= 2 and bridge.outbox.dropped == 0
    finally:
        core.stop()


def test_a_full_disk_is_reported_and_loses_none_of_the_messages_taken(mosquitto, tmp_path: Path) -> None:
    broker = mosquitto()
    collector = Collector()
    core = Core(loop_config(broker.port, tmp_path, capacity=5000), collector, tmp_path)
    bridge, store = core.bridge, core.bridge.outbox.store
    bridge.start()
    try:
        wait_connected(bridge)
        with store.lock:
            pages = store.db.execute('PRAGMA page_count').fetchone()[0]
            store.db.execute(f'PRAGMA max_page_count = {pages}')  # SQLITE_FULL once it would grow
        for i in range(500):
            bridge.send(0, Header(frame_id=str(i)))
        time.sleep(0.5)
        level, message, values = bridge.health()
        assert level == Level.ERROR and 'database or disk is full' in values['outbox_error']
        assert 'cannot write the outbox' in message and '500 messages kept in memory' in message
        assert not collector.messages  # nothing uncommitted reaches the broker
        with store.lock:
            store.db.execute('PRAGMA max_page_count = 1073741823')  # space again
        collector.wait(500, timeout=30.0)
        assert [int(m.frame_id) for _, m in collector.messages] == list(range(500))
        bridge.health()
        assert bridge.health()[0] == Level.OK and bridge.health()[2]['outbox_error'] == ''
    finally:
        core.stop()


def test_outbound_json_is_strict_json_with_null_for_what_json_cannot_carry() -> None:
    payload = encode_json(LaserScan(ranges=[1.5, float('inf'), float('-inf'), float('nan')], range_max=float('nan')),
                          'id/1', 7)
    document = json.loads(payload, parse_constant=lambda name: pytest.fail(f'{name} in outbound JSON'))
    assert document['ranges'] == [1.5, None, None, None] and document['range_max'] is None
