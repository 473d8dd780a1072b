"""mqtt_bridge node processes against a real Mosquitto: round trips, faults, auth and TLS."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from paho.mqtt.enums import CallbackAPIVersion
from rclpy.qos import QoSProfile
from std_msgs.msg import Empty, Float64, Header

from mqtt_fixtures import bridge_params, make_certificates
from twin_core.dead_letters import DeadLetters

pytestmark = pytest.mark.integration

BRIDGE = 'mqtt_bridge'
# Header messages ROS -> MQTT -> ROS as JSON and as CDR, plus the default command inputs.
LOOP = {
    'ros_to_mqtt': {'ros_topics': ['/test/in', '/test/cdr_in'], 'types': ['std_msgs/msg/Header'] * 2,
                    'mqtt_topics': ['test/loop', 'test/cdr'], 'qos': [1, 1], 'retain': [False, False],
                    'payloads': ['json', 'cdr']},
    'mqtt_to_ros': {'mqtt_topics': ['test/loop', 'test/cdr', 'plant/commands/speed_override', 'plant/commands/stop'],
                    'ros_topics': ['/test/out', '/test/cdr_out', '/twin/commands/speed_override',
                                   '/twin/commands/stop'],
                    'types': ['std_msgs/msg/Header', 'std_msgs/msg/Header', 'std_msgs/msg/Float64',
                              'std_msgs/msg/Empty'],
                    'qos': [1, 1, 1, 1], 'payloads': ['json', 'cdr', 'json', 'json'],
                    'limits': ['', '', 'data=0.0..1.0', '']}}


def start_bridge(start_process, tmp_path: Path, port: int, name: str = 'mqtt_bridge', **overrides: Any):
    params = bridge_params(tmp_path / f'{name}.yaml', port, tmp_path / 'outbox', {**LOOP, **overrides})
    return start_process(BRIDGE, '--ros-args', '--params-file', str(params), name='mqtt_bridge')


def bridge_status(probe) -> dict[str, str]:
    """Key/values (and level) of the bridge's latest diagnostics status."""
    statuses = [s for m in probe.messages('/diagnostics') for s in m.status if s.name.startswith('mqtt_bridge: mqtt')]
    assert statuses, 'no mqtt_bridge diagnostics yet'
    return {kv.key: kv.value for kv in statuses[-1].values} | {'_level': statuses[-1].level,
                                                                '_message': statuses[-1].message}


def wait_status(probe, predicate, timeout: float = 15.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses = [s for m in probe.messages('/diagnostics') for s in m.status
                    if s.name.startswith('mqtt_bridge: mqtt')]
        if statuses and predicate(bridge_status(probe)):
            return bridge_status(probe)
        time.sleep(0.1)
    raise AssertionError(f'bridge status not reached: {bridge_status(probe)}')


def publisher_for(probe, topic: str, msg_type: type, depth: int = 100):
    publisher = probe.node.create_publisher(msg_type, topic, QoSProfile(depth=depth))
    deadline = time.monotonic() + 10.0
    while publisher.get_subscription_count() == 0:
        assert time.monotonic() < deadline, f'nobody subscribes {topic}'
        time.sleep(0.05)
    return publisher


class MqttPeer:
    """A plain paho client: publishes raw payloads and records a topic filter."""

    def __init__(self, port: int, subscribe: str | None = None) -> None:
        self.received: list[tuple[str, bytes, bool]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = lambda _c, _u, m: self.received.append((m.topic, m.payload, m.retain))
        self.client.connect('127.0.0.1', port)
        if subscribe:
            self.client.subscribe(subscribe, qos=1)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5.0)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_round_trip_status_and_command_validation(mosquitto, start_process, probe, tmp_path: Path) -> None:
    broker = mosquitto()
    for topic, msg_type in (('/test/out', Header), ('/test/cdr_out', Header), ('/diagnostics', DiagnosticArray),
                            ('/twin/commands/speed_override', Float64), ('/twin/commands/stop', Empty)):
        probe.subscribe(topic, msg_type)
    bridge = start_bridge(start_process, tmp_path, broker.port)
    peer = MqttPeer(broker.port, subscribe='twin/status')
    json_in, cdr_in = publisher_for(probe, '/test/in', Header), publisher_for(probe, '/test/cdr_in', Header)
    for i in range(20):
        json_in.publish(Header(frame_id=f'json {i}'))
        cdr_in.publish(Header(frame_id=f'cdr {i}'))
    probe.wait_for('/test/out', lambda m: len(m) >= 20, 10.0)
    probe.wait_for('/test/cdr_out', lambda m: len(m) >= 20, 10.0)
    assert [m.frame_id for m in probe.messages('/test/out')] == [f'json {i}' for i in range(20)]
    assert [m.frame_id for m in probe.messages('/test/cdr_out')] == [f'cdr {i}' for i in range(20)]

    bad = [b'{"data": 1.5}', b'{"data": "0.5"}', b'not json', b'{"data": 0.5, "extra": 1}', b'{}', b'[0.5]',
           b'{"data": NaN}']
    for payload in bad:
        peer.publish('plant/commands/speed_override', payload)
    peer.publish('plant/commands/speed_override', b'{"data": 0.25}')
    peer.publish('plant/commands/stop', b'{"reason": "x"}')
    peer.publish('plant/commands/stop', b'{}')
    probe.wait_for('/twin/commands/stop', lambda m: len(m) == 1, 10.0)
    assert [m.data for m in probe.messages('/twin/commands/speed_override')] == [0.25]
    values = wait_status(probe, lambda v: v['invalid_inbound'] == str(len(bad) + 1))
    assert values['connected'] == 'True' and values['received'] == str(40 + 2)
    assert 'stop' in values['last_invalid'] and values['dropped'] == '0'
    assert bridge.output().count('connected to') == 1

    assert ('twin/status', b'online', False) in peer.received or ('twin/status', b'online', True) in peer.received
    assert bridge.stop() == 0
    deadline = time.monotonic() + 5.0
    while peer.received[-1][1] != b'offline' and time.monotonic() < deadline:
        time.sleep(0.05)
    assert peer.received[-1][:2] == ('twin/status', b'offline')
    peer.close()


def test_a_poison_message_is_acknowledged_dead_lettered_and_never_stops_the_link(
        mosquitto, start_process, probe, tmp_path: Path, ros_env: dict[str, str]) -> None:
    broker = mosquitto()
    probe.subscribe('/twin/commands/speed_override', Float64)
    probe.subscribe('/diagnostics', DiagnosticArray)
    started_ns = time.time_ns()  # other tests of the run write to the same dead-letter store
    bridge = start_bridge(start_process, tmp_path, broker.port)
    wait_status(probe, lambda v: v['connected'] == 'True')
    peer = MqttPeer(broker.port)
    poisons = {'not_json': b'{"data": ' + b'1' * 5000 + b'}', 'too_deep': b'[' * 100_000 + b']' * 100_000,
               'non_finite': b'{"data": 1e400}'}
    for payload in poisons.values():
        peer.publish('plant/commands/speed_override', payload)
    peer.publish('plant/commands/speed_override', b'{"data": 0.5}')
    probe.wait_for('/twin/commands/speed_override', lambda m: [x.data for x in m] == [0.5], 10.0)
    values = wait_status(probe, lambda v: all(v.get(f'invalid.{reason}') == '1' for reason in poisons))
    assert values['_level'] == DiagnosticStatus.WARN and values['connected'] == 'True'
    store = DeadLetters.for_node('/mqtt_bridge', Path(ros_env['TWIN_DEAD_LETTERS']))
    letters = [letter for letter in store.recent() if letter.time_ns >= started_ns]
    assert sorted(letter.reason for letter in letters) == sorted(poisons)
    assert {letter.payload for letter in letters} <= {p[:64 * 1024] for p in poisons.values()}

    # Acknowledged: a restarted bridge (same client id, persistent session) gets none of them again.
    assert bridge.stop() == 0
    start_bridge(start_process, tmp_path, broker.port)
    wait_status(probe, lambda v: v['connected'] == 'True' and v['received'] == '0')  # the new process
    peer.publish('plant/commands/speed_override', b'{"data": 0.25}')
    probe.wait_for('/twin/commands/speed_override', lambda m: [x.data for x in m] == [0.5, 0.25], 10.0)
    assert wait_status(probe, lambda v: v['received'] == '1')['invalid_inbound'] == '0'
    peer.close()


def test_broker_restart_with_messages_in_flight_loses_and_duplicates_nothing(
        mosquitto, start_process, probe, tmp_path: Path) -> None:
    broker = mosquitto()
    probe.subscribe('/test/out', Header, QoSProfile(depth=5000))
    probe.subscribe('/diagnostics', DiagnosticArray)
    start_bridge(start_process, tmp_path, broker.port)
    publisher = publisher_for(probe, '/test/in', Header, depth=5000)
    count = 3000

    def stream() -> None:
        for i in range(count):
            publisher.publish(Header(frame_id=str(i)))
            time.sleep(0.001)

    sender = threading.Thread(target=stream)
    sender.start()
    probe.wait_for('/test/out', lambda m: len(m) >= 300, 15.0)
    broker.restart(down_for=1.0)  # the stream goes on while the broker is down
    sender.join()
    probe.wait_for('/test/out', lambda m: len(m) >= count, 60.0)
    probe.sleep(1.0)
    received = [int(m.frame_id) for m in probe.messages('/test/out')]
    assert sorted(received) == list(range(count))  # every message exactly once
    values = wait_status(probe, lambda v: v['connected'] == 'True' and v['outbox_depth'] == '0')
    assert int(values['reconnects']) >= 1 and values['dropped'] == '0'


def test_wrong_password_gives_one_clear_error_and_the_node_stays_up(
        mosquitto, start_process, probe, tmp_path: Path) -> None:
    broker = mosquitto(password=('twin', 'right'))
    (tmp_path / 'password').write_text('wrong\n')
    probe.subscribe('/diagnostics', DiagnosticArray)
    bridge = start_bridge(start_process, tmp_path, broker.port,
                          broker={'username': 'twin', 'password_file': str(tmp_path / 'password')})
    values = wait_status(probe, lambda v: int(v['connect_failures']) >= 3)
    assert values['_level'] == bytes([2]) and values['connected'] == 'False'
    assert 'Not authorized (reason code 135)' in values['last_error']  # mosquitto 2.0's answer
    errors = [line for line in bridge.output().splitlines() if 'refused the connection' in line]
    assert len(errors) == 1 and 'reason code 135' in errors[0]
    assert 'wrong' not in bridge.output()
    assert bridge.process.poll() is None


def test_tls_with_client_certificates(mosquitto, broker_directory: Path, start_process, probe,
                                      tmp_path: Path) -> None:
    trusted = make_certificates(broker_directory / 'pki', 'twin')
    other = make_certificates(broker_directory / 'pki', 'other')
    broker = mosquitto(f'cafile {trusted["ca.crt"]}\ncertfile {trusted["server.crt"]}\n'
                       f'keyfile {trusted["server.key"]}\nrequire_certificate true')
    probe.subscribe('/test/out', Header)
    probe.subscribe('/diagnostics', DiagnosticArray)
    tls = {'enabled': True, 'ca_file': str(trusted['ca.crt']), 'cert_file': str(trusted['client.crt']),
           'key_file': str(trusted['client.key']), 'alpn': ''}
    start_bridge(start_process, tmp_path, broker.port, broker={'tls': tls})
    publisher_for(probe, '/test/in', Header).publish(Header(frame_id='over tls'))
    assert probe.wait_for('/test/out', lambda m: len(m) == 1, 10.0)[0].frame_id == 'over tls'

    # A broker certificate from an unknown CA, and a client certificate the broker does not trust.
    untrusted = start_bridge(start_process, tmp_path, broker.port, name='untrusted', client={'client_id': 'untrusted'},
                             broker={'tls': {**tls, 'ca_file': str(other['ca.crt'])}})
    rejected = start_bridge(start_process, tmp_path, broker.port, name='rejected', client={'client_id': 'rejected'},
                            broker={'tls': {**tls, 'cert_file': str(other['client.crt']),
                                            'key_file': str(other['client.key'])}})
    time.sleep(4.0)  # several retries with backoff
    for bridge, expected in ((untrusted, 'certificate verify failed'),
                             (rejected, 'closed the connection before accepting it')):
        errors = [line for line in bridge.output().splitlines() if '[ERROR]' in line]
        assert len(errors) == 1 and expected in errors[0], bridge.output()
        assert bridge.process.poll() is None
