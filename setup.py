"""Install the twin_bringup ament_python package: all layers, launch and config files."""
from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = 'twin_bringup'


def config_files() -> list[tuple[str, list[str]]]:
    """Every file under config/, installed into share/twin_bringup/config keeping its folders."""
    folders: dict[str, list[str]] = {}
    for path in sorted(Path('config').rglob('*')):
        if path.is_file():
            folders.setdefault(f'share/{PACKAGE}/{path.parent}', []).append(str(path))
    return list(folders.items())


setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*', 'bench', 'twin_interfaces']),
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        (f'share/{PACKAGE}', ['package.xml']),
        (f'share/{PACKAGE}/launch', glob('launch/*.py')),
        *config_files(),
    ],
    install_requires=['setuptools'],
    extras_require={'test': ['pytest']},
    zip_safe=True,
    maintainer='ros2-digital-twin maintainers',
    maintainer_email='maintainers@ros2-digital-twin.org',
    description='A live digital twin of a ROS 2 robot cell.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'workcell_sim = twin_sim.sim_node:main',
            'twin_sim_generate = twin_sim.generate:main',
            'health_monitor = twin_bringup.health_node:main',
            'sync_node = twin_sync.sync_node:main',
            'twin_launch = twin_bringup.launcher:main',
            'twin_container = twin_bringup.container_cli:main',
            'state_node = twin_state.state_node:main',
            'twin_fidelity = twin_state.fidelity_cli:main',
            'imu_driver = twin_sensors.imu_node:main',
            'encoder_driver = twin_sensors.encoder_node:main',
            'lidar_driver = twin_sensors.lidar_node:main',
            'camera_driver = twin_sensors.camera_node:main',
            'plan_driver = twin_sensors.plan_node:main',
            'plc_driver = twin_sensors.plc_node:main',
            'predictor_node = twin_predictor.predictor_node:main',
            'fleet_node = twin_fleet.fleet_node:main',
            'twin_train = twin_predictor.train_cli:main',
            'twin_eval_predictor = twin_predictor.eval_cli:main',
            'anomaly_node = twin_anomaly.anomaly_node:main',
            'camera_check = twin_anomaly.camera_check_node:main',
            'maintenance_node = twin_maintenance.maintenance_node:main',
            'twin_anomaly = twin_anomaly.anomaly_cli:main',
            'twin_rul = twin_maintenance.rul_cli:main',
            'mqtt_bridge = twin_bridge.mqtt_node:main',
            'cloud_uploader = twin_bridge.cloud_node:main',
            'opcua_bridge = twin_bridge.opcua_node:main',
            'actuation_node = twin_control.actuation_node:main',
            'twin_record = twin_bag.recorder_node:main',
            'twin_view = twin_bridge.view_node:main',
            'twin_play = twin_bag.player_node:main',
            'twin_report = twin_report.cli:main',
            'twin_dead_letters = twin_core.dead_letters:main',
        ],
    },
)
