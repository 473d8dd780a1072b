"""The live view's shipped Foxglove layout and its transforms, without a server."""
import json

import numpy as np
import pytest
from transforms3d.quaternions import quat2mat

from harness import CONFIG_DIR
from twin_bridge.view import SERVED, TRANSFORMS_TOPIC, Newest, ViewCameraConfig, ViewConfig, is_jpeg, joint_transforms
from twin_core.kinematics import END_EFFECTOR, ArmKinematics
from twin_core.urdf import urdf_file

LAYOUT = CONFIG_DIR / 'foxglove_layout.json'


def panels(node) -> list[str]:
    return [node] if isinstance(node, str) else panels(node['first']) + panels(node['second'])


def test_the_layout_shows_only_topics_the_view_serves_and_places_every_panel():
    layout = json.loads(LAYOUT.read_text())
    served = {f'/{topic}' for topic, _, _ in SERVED} | {
        '/robot_description', f'/{TRANSFORMS_TOPIC}', f'/{ViewConfig().camera.topic}'}
    config = layout['configById']
    used = set()
    for panel in config.values():
        used |= set(panel.get('topics', {}))
        used |= {layer['topic'] for layer in panel.get('layers', {}).values() if 'topic' in layer}
        used |= {path['value'].split('.')[0] for path in panel.get('paths', [])}
        used |= {panel[key].split('.')[0] for key in ('topicPath', 'topicToRender') if key in panel}
        used |= {panel['imageMode']['imageTopic']} if 'imageMode' in panel else set()
    assert used and used <= served, used - served
    assert sorted(panels(layout['layout'])) == sorted(config)


def test_the_joint_transforms_chain_up_to_the_forward_kinematics():
    kinematics = ArmKinematics.from_urdf(urdf_file())
    positions = {'joint_1': 0.3, 'joint_2': -0.7, 'joint_3': 1.1, 'joint_4': 0.2}
    frames = {'base_link': np.eye(4)}
    for transform in joint_transforms(kinematics, positions):  # parents come first
        local = np.eye(4)
        x, y, z, w = transform.rotation
        local[:3, :3], local[:3, 3] = quat2mat([w, x, y, z]), transform.translation
        frames[transform.child] = frames[transform.parent] @ local
    np.testing.assert_allclose(frames[END_EFFECTOR], kinematics.transforms(positions)[END_EFFECTOR], atol=1e-12)
    assert {t.child for t in joint_transforms(kinematics, positions, 'robot_2/')} == {
        f'robot_2/{frame}' for frame in kinematics.frames if frame != 'base_link'}


def test_the_camera_is_served_once_and_only_as_jpeg():
    assert ViewConfig().camera.enabled and ViewConfig().camera.topic == 'camera/image_raw/compressed'
    with pytest.raises(ValueError, match='list it once'):
        ViewConfig(topics=('camera/image_raw/compressed',), types=('sensor_msgs/msg/CompressedImage',),
                   qos=('sensor_data',))
    assert ViewConfig(topics=('camera/image_raw/compressed',), types=('sensor_msgs/msg/CompressedImage',),
                      qos=('sensor_data',), camera=ViewCameraConfig(enabled=False)).topics
    assert is_jpeg('jpeg') and is_jpeg('bgr8; jpeg compressed bgr8') and not is_jpeg('png')
    newest = Newest()
    assert newest.take() is None
    for raw in (b'a', b'b', b'c'):
        newest.put(raw)
    assert newest.take() == b'c' and newest.take() is None  # only the newest, handed on once
    assert (newest.received, newest.taken) == (3, 1)
