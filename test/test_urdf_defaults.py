"""The shipped URDF is the one source of the default robot description and joint names."""
from pathlib import Path

from harness import CONFIG_DIR
from twin_bridge.opcua_config import OpcUaBridgeConfig
from twin_core.urdf import default_joint_names, read_arm_description, urdf_file
from twin_maintenance.config import MaintenanceConfig
from twin_sensors.encoders import EncoderConfig
from twin_sensors.plc import PlcDriverConfig
from twin_sync.sync_config import SyncConfig


def test_an_empty_urdf_parameter_means_the_shipped_arm() -> None:
    assert urdf_file('') == urdf_file() == CONFIG_DIR / 'arm.urdf'
    assert urdf_file('/tmp/other.urdf') == Path('/tmp/other.urdf')


def test_joint_lists_default_to_the_urdf_joints() -> None:
    joints = read_arm_description(CONFIG_DIR / 'arm.urdf').joint_names
    assert default_joint_names() == joints
    assert EncoderConfig().joint_names == PlcDriverConfig().joint_names == joints
    assert OpcUaBridgeConfig().server.joint_names == MaintenanceConfig().joints == joints
    assert [t for t in SyncConfig().topics if t.startswith('motors/')] == [f'motors/{j}/temperature' for j in joints]
