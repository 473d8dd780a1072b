"""twin_view over the real Foxglove WebSocket protocol: a client subscribes and decodes the CDR."""
from __future__ import annotations

import asyncio
import json
import re
import struct
import threading
import time
import urllib.request

import cv2
import numpy as np
import pytest
import websockets
from rclpy.qos import qos_profile_sensor_data
from rclpy.serialization import deserialize_message
from sandbox import free_port
from sensor_msgs.msg import CompressedImage, JointState
from std_msgs.msg import Header, String

from harness import CONFIG_DIR
from twin_bridge.view import joint_transforms, transforms_message
from twin_core.kinematics import ArmKinematics
from twin_core.stamps import from_seconds
from twin_core.urdf import urdf_file
from twin_ros.stamps import to_msg

pytestmark = pytest.mark.integration
SUBPROTOCOL = 'foxglove.sdk.v1'
MESSAGE_DATA = 0x01  # binary opcode: subscription id (u32), receive time (u64), payload


async def watch(url: str, topics: list[str], seconds: float) -> tuple[dict, dict[str, list[tuple[int, bytes]]]]:
    """Advertised channels by topic, and the messages of ``topics`` received for ``seconds``."""
    received: dict[str, list[tuple[int, bytes]]] = {topic: [] for topic in topics}
    async with websockets.connect(url, subprotocols=[SUBPROTOCOL], max_size=None) as socket:
        channels: dict[str, dict] = {}
        while not set(topics) <= set(channels):
            message = json.loads(await asyncio.wait_for(socket.recv(), 10.0))
            if message['op'] == 'advertise':
                channels.update({c['topic']: c for c in message['channels']})
        by_subscription = {index: topic for index, topic in enumerate(topics)}
        await socket.send(json.dumps({'op': 'subscribe', 'subscriptions': [
            {'id': index, 'channelId': channels[topic]['id']} for index, topic in by_subscription.items()]}))
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                frame = await asyncio.wait_for(socket.recv(), left)
            except TimeoutError:
                break
            if isinstance(frame, bytes) and frame[0] == MESSAGE_DATA:
                subscription, stamp = struct.unpack_from('<IQ', frame, 1)
                received[by_subscription[subscription]].append((stamp, frame[13:]))
    return channels, received


def test_a_viewer_gets_the_twin_topics_as_cdr_with_their_ros2_definitions(start_process, probe):
    port = free_port()
    node = start_process('twin_view', '--ros-args', '--params-file', str(CONFIG_DIR / 'view.yaml'),
                         '-p', f'port:={port}', '-p', 'camera.http_port:=0', name='twin_view')
    publisher = probe.node.create_publisher(JointState, '/twin/joint_states', 10)
    deadline = time.monotonic() + 20.0
    while publisher.get_subscription_count() == 0:
        assert time.monotonic() < deadline, f'twin_view never subscribed:\n{node.output()}'
        time.sleep(0.05)
    stop = False

    def publish() -> None:
        index = 0
        while not stop:
            publisher.publish(JointState(header=Header(stamp=to_msg(from_seconds(100.0 + index / 100.0)),
                                                       frame_id='base_link'),
                                         name=['joint_1', 'joint_2'], position=[0.01 * index, -0.5]))
            index += 1
            time.sleep(0.01)
    sender = threading.Thread(target=publish)
    sender.start()
    try:
        channels, received = asyncio.run(watch(f'ws://127.0.0.1:{port}',
                                               ['/twin/joint_states', '/robot_description', '/tf'], 3.0))
    finally:
        stop = True
        sender.join()

    served = sorted(channels)
    print(f'\nserved: {served}')
    assert {'/twin/joint_states', '/twin/live/joint_states', '/twin/markers', '/scan', '/diagnostics',
            '/twin/anomalies', '/twin/maintenance_schedule', '/robot_description'} <= set(served)
    joint_channel = channels['/twin/joint_states']
    assert (joint_channel['encoding'], joint_channel['schemaName'], joint_channel['schemaEncoding']) == (
        'cdr', 'sensor_msgs/msg/JointState', 'ros2msg')
    assert joint_channel['schema'].startswith('std_msgs/Header header\nstring[] name')
    assert 'MSG: builtin_interfaces/Time' in joint_channel['schema']

    joint_states = [deserialize_message(payload, JointState) for _, payload in received['/twin/joint_states']]
    rate = len(joint_states) / 3.0
    print(f'/twin/joint_states: {len(joint_states)} messages in 3 s ({rate:.0f}/s); last: '
          f'{list(joint_states[-1].name)} {list(joint_states[-1].position)}')
    assert rate > 50
    positions = [m.position[0] for m in joint_states]
    assert positions == sorted(positions) and all(list(m.name) == ['joint_1', 'joint_2'] for m in joint_states)
    description = deserialize_message(received['/robot_description'][0][1], String).data
    assert '<robot' in description and 'joint_1' in description

    tf_channel = channels['/tf']
    assert (tf_channel['encoding'], tf_channel['schemaName']) == ('protobuf', 'foxglove.FrameTransforms')
    transforms = [payload for _, payload in received['/tf']]
    print(f'/tf: {len(transforms)} messages in 3 s')
    assert 30 <= len(transforms) <= 3.0 * 30 + 3  # from 100 joint states a second, at most 30 a second
    kinematics = ArmKinematics.from_urdf(urdf_file())
    expected = {transforms_message(joint_transforms(kinematics, {'joint_1': m.position[0], 'joint_2': -0.5}),
                                   m.header.stamp.sec, m.header.stamp.nanosec).encode() for m in joint_states}
    assert sum(payload in expected for payload in transforms) >= len(transforms) - 2  # in flight at the ends
    assert b'base_link' in transforms[-1] and b'tool0' in transforms[-1]
    assert node.process.poll() is None


def read_stream(url: str, seconds: float) -> list[bytes]:
    """The JPEGs of the MJPEG stream at ``url`` received within ``seconds``."""
    parts: list[bytes] = []
    buffer = b''
    deadline = time.monotonic() + seconds
    with urllib.request.urlopen(url, timeout=seconds) as response:
        assert response.headers['Content-Type'].startswith('multipart/x-mixed-replace')
        while time.monotonic() < deadline:
            try:
                chunk = response.read1(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            buffer += chunk
            while (head_end := buffer.find(b'\r\n\r\n')) >= 0:
                length = int(re.search(rb'Content-Length: (\d+)', buffer[:head_end]).group(1))
                if len(buffer) < head_end + 4 + length:
                    break
                parts.append(buffer[head_end + 4:head_end + 4 + length])
                buffer = buffer[head_end + 4 + length:]
    return parts


def noise_jpeg(seed: int) -> bytes:
    return cv2.imencode('.jpg', np.random.default_rng(seed).integers(0, 255, (240, 320, 3), np.uint8))[1].tobytes()


def test_the_cameras_newest_image_is_served_over_http_at_a_few_hz(start_process, probe) -> None:
    port, camera_port = free_port(), free_port()
    node = start_process('twin_view', '--ros-args', '--params-file', str(CONFIG_DIR / 'view.yaml'),
                         '-p', f'port:={port}', '-p', f'camera.http_port:={camera_port}', '-p', 'camera.rate_hz:=2.0',
                         name='twin_view')
    publisher = probe.node.create_publisher(CompressedImage, '/camera/image_raw/compressed', qos_profile_sensor_data)
    deadline = time.monotonic() + 20.0
    while publisher.get_subscription_count() == 0:
        assert time.monotonic() < deadline, f'twin_view never subscribed:\n{node.output()}'
        time.sleep(0.05)
    time.sleep(0.5)  # both ends matched: a best-effort message sent before is dropped
    first = noise_jpeg(1)
    publisher.publish(CompressedImage(header=Header(stamp=to_msg(from_seconds(100.25)), frame_id='camera'),
                                      format='jpeg', data=first))
    base = f'http://127.0.0.1:{camera_port}'
    with urllib.request.urlopen(f'{base}/snapshot.jpg', timeout=10.0) as response:
        assert response.headers['Content-Type'] == 'image/jpeg'
        assert response.read() == first  # the bytes as published, not decoded or re-encoded
    with urllib.request.urlopen(f'{base}/', timeout=5.0) as response:
        page = response.read().decode()
    assert '<img src="stream.mjpg"' in page and 'at most 2 per second' in page
    stop = threading.Event()
    sent = [noise_jpeg(seed) for seed in range(2, 62)]

    def publish() -> None:  # 60 images at 20 Hz
        for jpeg in sent:
            if stop.wait(0.05):
                return
            publisher.publish(CompressedImage(header=Header(stamp=to_msg(time.time_ns())), format='jpeg', data=jpeg))
    sender = threading.Thread(target=publish)
    sender.start()
    try:
        parts = read_stream(f'{base}/stream.mjpg', 2.5)
    finally:
        stop.set()
        sender.join()
    print(f'\n{len(parts)} images on the stream in 2.5 s while 20 a second were published')
    assert 3 <= len(parts) <= 2.5 * 2 + 2  # the newest one at the start, then at most 2 a second
    assert all(part in sent or part == first for part in parts)
    assert node.process.poll() is None
