"""The package installs the ROS 2 way: colcon build puts executables, launch and config in place."""
import os
import subprocess
import sys

import pytest

from harness import REPO

pytestmark = pytest.mark.integration


def test_colcon_install_layout_serves_the_node_table(tmp_path):
    env = dict(os.environ)
    build = subprocess.run(
        ['colcon', '--log-base', str(tmp_path / 'log'), 'build', '--base-paths', str(REPO),
         '--packages-select', 'twin_bringup', '--build-base', str(tmp_path / 'build'),
         '--install-base', str(tmp_path / 'install')],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    prefix = tmp_path / 'install' / 'twin_bringup'
    assert {'workcell_sim', 'health_monitor', 'imu_driver', 'sync_node', 'state_node'} <= {
        p.name for p in (prefix / 'lib' / 'twin_bringup').iterdir()}
    assert (prefix / 'share' / 'twin_bringup' / 'launch' / 'twin.launch.py').is_file()
    env['AMENT_PREFIX_PATH'] = f'{prefix}{os.pathsep}{env.get("AMENT_PREFIX_PATH", "")}'
    env['PYTHONPATH'] = f'{prefix / "lib" / "python3.11" / "site-packages"}{os.pathsep}{env.get("PYTHONPATH", "")}'
    check = subprocess.run(
        [sys.executable, '-c', 'from twin_bringup.paths import config_dir\n'
         'from twin_bringup.node_table import load_node_table\n'
         'print(config_dir()); print(len(load_node_table(config_dir()).nodes))'],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    config, count = check.stdout.split()
    assert config == str(prefix / 'share' / 'twin_bringup' / 'config') and int(count) >= 8
