"""Bags: the MCAP recording core, the replay core's timing, the twin_record / twin_play
processes against the probe (the camera's images among them), and the RViz config."""
from __future__ import annotations

import os
import re
import statistics
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.highlevel import AnyReader
from rosgraph_msgs.msg import Clock
from sandbox import CAMERA_NODES
from sensor_msgs.msg import CameraInfo, CompressedImage, Temperature
from std_msgs.msg import Header

from harness import CONFIG_DIR, REPO
from twin_bag.config import RecorderConfig
from twin_bag.player import Playback, restamped
from twin_bag.recorder import Recording
from twin_core.status import FINISHED
from twin_interfaces.msg import CommandAudit, MaintenanceSchedule
from twin_report.cli import camera_in, recorded_topics
from twin_report.series import CAMERA_FEED, CAMERA_IMAGES, CAMERA_INFO, TOPICS
from twin_ros.stamps import to_msg

PREFIXES = os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep)
TEMPERATURE, AUDIT = 'sensor_msgs/msg/Temperature', 'twin_interfaces/msg/CommandAudit'
T0 = 1_767_225_600_000_000_000
SPACING_NS = 40_000_000


def write_bag(path: Path, count: int = 10) -> None:
    """``count`` Temperatures on /temp (sensor data) and one audit on /audit per message."""
    from rclpy.serialization import serialize_message
    config = RecorderConfig(output=str(path), topics=('/temp', '/audit'),
                            types=(TEMPERATURE, AUDIT), qos=('sensor_data', 'reliable'))
    recording = Recording(config, PREFIXES, T0)
    for index in range(count):
        stamp = T0 + index * SPACING_NS
        recording.write('/temp', serialize_message(Temperature(temperature=float(index))), stamp)
        recording.write('/audit', serialize_message(CommandAudit()), stamp + 1)
    recording.close()


def test_recording_holds_messages_types_definitions_and_qos(tmp_path: Path) -> None:
    write_bag(tmp_path / 'bag')
    with AnyReader([tmp_path / 'bag']) as reader:
        connections = {c.topic: c for c in reader.connections}
        assert {t: c.msgtype for t, c in connections.items()} == {
            '/temp': TEMPERATURE, '/audit': AUDIT}
        assert all(c.msgcount == 10 for c in connections.values())
        assert 'float64 temperature' in connections['/temp'].msgdef.data
        assert 'MSG: builtin_interfaces/Time' in connections['/audit'].msgdef.data
        assert connections['/temp'].ext.offered_qos_profiles[0].reliability.name == 'BEST_EFFORT'
        values = [reader.deserialize(raw, TEMPERATURE).temperature
                  for c, _, raw in reader.messages([connections['/temp']])]
    assert values == [float(i) for i in range(10)]


def test_playback_keeps_order_and_scaled_spacing_with_filter_and_clock(tmp_path: Path) -> None:
    write_bag(tmp_path / 'bag')
    playback = Playback(tmp_path / 'bag', ['/temp'])
    assert set(playback.topics) == {'/temp'} and playback.topics['/temp'].qos == 'sensor_data'
    published: list[tuple[float, str]] = []
    clock: list[int] = []
    played = playback.run(lambda topic, data: published.append((time.monotonic(), topic)),
                          2.0, False, threading.Event(), clock.append, 0.005)
    playback.close()
    assert played == 10 and {topic for _, topic in published} == {'/temp'}
    gaps = [b - a for (a, _), (b, _) in zip(published, published[1:])]
    assert statistics.median(gaps) == pytest.approx(SPACING_NS / 2e9, abs=0.004)
    assert clock == sorted(clock) and clock[0] == T0 and clock[-1] == T0 + 9 * SPACING_NS
    with pytest.raises(ValueError, match='/nope'):
        Playback(tmp_path / 'bag', ['/nope'])


def test_playback_loops_until_stopped(tmp_path: Path) -> None:
    write_bag(tmp_path / 'bag', count=3)
    playback = Playback(tmp_path / 'bag')
    stop = threading.Event()
    published: list[str] = []

    def publish(topic: str, data: bytes) -> None:
        published.append(topic)
        if len(published) == 15:
            stop.set()
    assert playback.run(publish, 20.0, True, stop) == 15
    playback.close()


def write_stamped_bag(path: Path, count: int) -> None:
    """``count`` Temperatures on /temp stamped as logged, and an audit (no header) on /audit each."""
    from rclpy.serialization import serialize_message
    config = RecorderConfig(output=str(path), topics=('/temp', '/audit'),
                            types=(TEMPERATURE, AUDIT), qos=('sensor_data', 'reliable'))
    recording = Recording(config, PREFIXES, T0)
    for index in range(count):
        stamp = T0 + index * SPACING_NS
        header = Header(stamp=Time(sec=stamp // 10**9, nanosec=stamp % 10**9))
        recording.write('/temp', serialize_message(Temperature(header=header, temperature=float(index))), stamp)
        recording.write('/audit', serialize_message(CommandAudit(stamp=header.stamp)), stamp)
    recording.close()


def test_restamped_loop_plays_every_message_once_per_pass_stamped_at_its_play_time(tmp_path: Path) -> None:
    write_stamped_bag(tmp_path / 'bag', count=5)
    playback = Playback(tmp_path / 'bag')
    period_s = playback.loop_period_ns / 1e9
    assert period_s == pytest.approx(5 * SPACING_NS / 1e9, abs=1e-6)  # the span plus one spacing
    stop = threading.Event()
    played: list[tuple[int, str, bytes]] = []

    def publish(topic: str, data: bytes) -> None:
        played.append((time.time_ns(), topic, data))
        if len(played) == 40:  # four passes of both topics
            stop.set()
    started = time.monotonic()
    assert playback.run(publish, 2.0, True, stop, restamp=True) == 40
    elapsed = time.monotonic() - started
    assert playback.passes == 4 and dict(playback.published) == {'/temp': 20, '/audit': 20}
    playback.close()
    assert elapsed == pytest.approx(3 * period_s / 2 + 4 * SPACING_NS / 2e9, abs=0.05)  # no drift over passes
    stamps = [deserialize_message(data, Temperature).header.stamp for _, topic, data in played if topic == '/temp']
    stamps_ns = [s.sec * 10**9 + s.nanosec for s in stamps]
    published_ns = [at for at, topic, _ in played if topic == '/temp']
    assert all(0 <= at - stamp < 20_000_000 for at, stamp in zip(published_ns, stamps_ns))
    assert all(b - a == pytest.approx(SPACING_NS / 2, abs=2_000) for a, b in zip(stamps_ns, stamps_ns[1:]))
    audits = {deserialize_message(data, CommandAudit).stamp.sec for _, topic, data in played if topic == '/audit'}
    assert audits == {T0 // 10**9}  # not a header first: as recorded


def test_a_message_too_short_for_its_header_is_refused() -> None:
    with pytest.raises(ValueError, match='not a CDR message with a header'):
        restamped(b'\x00\x01\x00\x00\x01', T0, T0, 1.0)
    data = serialize_message(Temperature(header=Header(stamp=Time(sec=5, nanosec=8))))
    moved = deserialize_message(restamped(data, 5 * 10**9, 9 * 10**9, 2.0), Temperature)
    assert (moved.header.stamp.sec, moved.header.stamp.nanosec) == (9, 4)  # 8 ns after the origin, at rate 2


@pytest.mark.integration
def test_twin_record_writes_what_the_probe_publishes(start_process, probe, tmp_path: Path) -> None:
    temperature = probe.node.create_publisher(Temperature, '/bag_test/temp', qos_profile_sensor_data)
    audit = probe.node.create_publisher(CommandAudit, '/bag_test/audit', 10)
    recorder = start_process(
        'twin_record', '--out', str(tmp_path / 'bag'), '--duration', '4', '--topics',
        f'/bag_test/temp:{TEMPERATURE}:sensor_data', f'/bag_test/audit:{AUDIT}')
    deadline = time.monotonic() + 10.0
    while temperature.get_subscription_count() < 1 or audit.get_subscription_count() < 1:
        assert time.monotonic() < deadline, recorder.output()
        time.sleep(0.05)
    time.sleep(0.3)
    for index in range(20):
        temperature.publish(Temperature(temperature=float(index)))
        audit.publish(CommandAudit(source=str(index)))
        time.sleep(0.02)
    assert recorder.wait(15.0) == 0, recorder.output()
    with AnyReader([tmp_path / 'bag']) as reader:
        connections = {c.topic: c for c in reader.connections}
        assert {t: c.msgtype for t, c in connections.items()} == {
            '/bag_test/temp': TEMPERATURE, '/bag_test/audit': AUDIT}
        assert all(c.msgdef.data for c in connections.values())
        assert connections['/bag_test/temp'].msgcount >= 18  # best effort
        audits = [reader.deserialize(raw, AUDIT).source
                  for _, _, raw in reader.messages([connections['/bag_test/audit']])]
    assert audits == [str(i) for i in range(20)]


@pytest.mark.integration
def test_twin_record_gets_a_latched_message_published_before_it_started(start_process, probe, tmp_path: Path) -> None:
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    plan = probe.node.create_publisher(MaintenanceSchedule, '/bag_test/plan', latched)
    plan.publish(MaintenanceSchedule(revision=7))
    recorder = start_process('twin_record', '--out', str(tmp_path / 'bag'), '--duration', '3',
                             '--topics', '/bag_test/plan:twin_interfaces/msg/MaintenanceSchedule:latched')
    assert recorder.wait(15.0) == 0, recorder.output()
    playback = Playback(tmp_path / 'bag')
    assert playback.topics['/bag_test/plan'].qos == 'latched'  # and replayed latched
    playback.close()
    with AnyReader([tmp_path / 'bag']) as reader:
        (connection,) = reader.connections
        (revision,) = [reader.deserialize(raw, connection.msgtype).revision
                       for _, _, raw in reader.messages([connection])]
    assert revision == 7


def test_a_topic_without_messages_is_still_listed_in_the_recording(tmp_path: Path) -> None:
    config = RecorderConfig(output=str(tmp_path / 'bag'), topics=('/temp', '/audit'),
                            types=(TEMPERATURE, AUDIT), qos=('sensor_data', 'reliable'))
    recording = Recording(config, PREFIXES, T0)
    from rclpy.serialization import serialize_message
    recording.write('/temp', serialize_message(Temperature(temperature=1.0)), T0)
    recording.close()
    with AnyReader([tmp_path / 'bag']) as reader:
        assert {c.topic: c.msgcount for c in reader.connections} == {'/temp': 1, '/audit': 0}


@pytest.mark.integration
def test_twin_record_says_it_finished_on_diagnostics_at_the_end_of_its_duration(start_process, probe,
                                                                                 tmp_path: Path) -> None:
    probe.subscribe('/diagnostics', DiagnosticArray)
    recorder = start_process('twin_record', '--out', str(tmp_path / 'bag'), '--duration', '2',
                             '--topics', f'/bag_test/temp:{TEMPERATURE}')
    assert recorder.wait(15.0) == 0, recorder.output()
    probe.sleep(0.5)
    bag = [s for array in probe.messages('/diagnostics') for s in array.status if s.name == 'twin_recorder: bag']
    assert bag, recorder.output()
    assert [{v.key: v.value for v in s.values}.get(FINISHED) for s in bag] == [None] * (len(bag) - 1) + ['true']
    assert bag[-1].message == 'finished'


@pytest.mark.integration
def test_twin_play_replays_at_rate_with_filter_and_clock(start_process, probe, tmp_path: Path) -> None:
    write_bag(tmp_path / 'bag', count=15)
    probe.subscribe('/temp', Temperature, qos_profile_sensor_data)
    probe.subscribe('/audit', CommandAudit)
    probe.subscribe('/clock', Clock, qos_profile_sensor_data)
    player = start_process('twin_play', str(tmp_path / 'bag'), '--rate', '2.0',
                           '--topics', '/temp', '--clock', '--delay', '1.5')
    assert player.wait(20.0) == 0, player.output()
    arrivals = probe.arrivals('/temp')
    assert [m.temperature for m in probe.messages('/temp')] == [float(i) for i in range(15)]
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    assert statistics.median(gaps) == pytest.approx(SPACING_NS / 2e9, abs=0.006)
    assert probe.messages('/audit') == []
    clock = [m.clock.sec * 10**9 + m.clock.nanosec for m in probe.messages('/clock')]
    assert len(clock) > 15 and clock == sorted(clock)
    assert T0 <= clock[0] and clock[-1] == T0 + 14 * SPACING_NS


def camera_images(count: int) -> list[CompressedImage]:
    """``count`` real JPEGs (noise, a different picture each), stamped 0.1 s apart."""
    rng = np.random.default_rng(3)
    return [CompressedImage(header=Header(stamp=to_msg(T0 + index * 100_000_000), frame_id='camera_optical_frame'),
                            format='jpeg', data=cv2.imencode('.jpg', rng.integers(0, 255, (240, 320, 3), np.uint8))[1]
                            .tobytes()) for index in range(count)]


@pytest.mark.integration
def test_camera_images_recorded_over_dds_read_back_and_replay_byte_for_byte(start_process, probe,
                                                                             tmp_path: Path) -> None:
    sent = camera_images(10)
    images = probe.node.create_publisher(CompressedImage, CAMERA_IMAGES, qos_profile_sensor_data)
    infos = probe.node.create_publisher(CameraInfo, CAMERA_INFO, qos_profile_sensor_data)
    camera_specs = [spec for spec in recorded_topics(camera=True) if spec.split(':')[0] in CAMERA_FEED]
    recorder = start_process('twin_record', '--out', str(tmp_path / 'bag'), '--duration', '5', '--topics',
                             *camera_specs)  # as twin_report --live records them where the camera is on
    deadline = time.monotonic() + 10.0
    while images.get_subscription_count() < 1 or infos.get_subscription_count() < 1:
        assert time.monotonic() < deadline, recorder.output()
        time.sleep(0.05)
    time.sleep(0.3)
    for image in sent:
        images.publish(image)
        infos.publish(CameraInfo(header=image.header, width=320, height=240))
        time.sleep(0.1)
    assert recorder.wait(15.0) == 0, recorder.output()
    by_stamp = {(m.header.stamp.sec, m.header.stamp.nanosec): bytes(m.data) for m in sent}
    with AnyReader([tmp_path / 'bag']) as reader:
        connections = {c.topic: c for c in reader.connections}
        assert {t: c.msgtype for t, c in connections.items()} == CAMERA_FEED
        recorded = [reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages([connections[CAMERA_IMAGES]])]
    assert len(recorded) >= 8  # best effort, on loopback
    assert all(bytes(m.data) == by_stamp[(m.header.stamp.sec, m.header.stamp.nanosec)] and m.format == 'jpeg'
               for m in recorded)
    probe.subscribe(CAMERA_IMAGES, CompressedImage, qos_profile_sensor_data)
    player = start_process('twin_play', str(tmp_path / 'bag'), '--topics', CAMERA_IMAGES, '--delay', '1.5')
    assert player.wait(20.0) == 0, player.output()
    played = probe.messages(CAMERA_IMAGES)
    assert len(played) >= len(recorded) - 1
    assert all(bytes(m.data) == by_stamp[(m.header.stamp.sec, m.header.stamp.nanosec)] for m in played)


def test_a_live_report_records_the_camera_only_where_the_node_table_starts_one(tmp_path: Path) -> None:
    assert not camera_in(CONFIG_DIR)  # the camera is off by default
    graph = yaml.safe_load((CONFIG_DIR / 'graph.yaml').read_text())
    graph['nodes'].append(dict(CAMERA_NODES[0]))  # the driver alone
    (tmp_path / 'graph.yaml').write_text(yaml.safe_dump(graph))
    assert camera_in(tmp_path)
    without, with_camera = recorded_topics(camera=False), recorded_topics(camera=True)
    assert [spec.split(':')[0] for spec in without] == list(TOPICS)
    assert with_camera[len(without):] == [f'{CAMERA_IMAGES}:sensor_msgs/msg/CompressedImage:sensor_data',
                                          f'{CAMERA_INFO}:sensor_msgs/msg/CameraInfo:sensor_data']


def test_rviz_config_shows_the_graphs_topics() -> None:
    config = yaml.safe_load((REPO / 'config' / 'twin.rviz').read_text())
    manager = config['Visualization Manager']
    assert manager['Global Options']['Fixed Frame'] == 'base_link'
    topics = {d['Class'].split('/')[-1]: [] for d in manager['Displays']}
    for display in manager['Displays']:
        topic = display.get('Topic') or display.get('Description Topic')
        if topic:
            topics[display['Class'].split('/')[-1]].append(topic['Value'])
    assert topics['MarkerArray'] == ['/twin/markers', '/twin/predicted_markers']
    assert topics['LaserScan'] == ['/scan'] and topics['Pose'] == ['/twin/end_effector_pose']
    assert topics['RobotModel'] == ['/robot_description']
    sources = '\n'.join(p.read_text() for p in REPO.glob('twin_*/*_node.py'))
    for topic in ('twin/markers', 'scan', 'twin/end_effector_pose'):  # relative: a namespace prefixes them
        assert re.search(rf"create_publisher\(\w+, '{re.escape(topic)}'", sources), topic
