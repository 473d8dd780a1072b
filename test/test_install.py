"""The packages install the ROS 2 way: a clone in a workspace's src/ builds with colcon."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import REPO

pytestmark = pytest.mark.integration

CLONE = 'ros2-digital-twin'
NOT_SOURCES = shutil.ignore_patterns('.git', '.venv', 'build', 'install', 'log', 'out', '__pycache__',
                                     '*.egg-info', '.pytest_cache', '.hypothesis')


def test_a_workspace_builds_both_packages_with_the_documented_command(tmp_path: Path) -> None:
    workspace = tmp_path / 'ws'
    shutil.copytree(REPO, workspace / 'src' / CLONE, ignore=NOT_SOURCES)
    prefix = sys.prefix  # the ROS 2 underlay: the venv here, /opt/ros/<distro> on a full install
    env = {**os.environ, 'AMENT_PREFIX_PATH': prefix, 'CMAKE_PREFIX_PATH': prefix,
           'PYTHONPATH': '', 'COLCON_HOME': str(tmp_path / 'colcon_home')}
    build = subprocess.run(
        ['colcon', 'build', '--base-paths', 'src', f'src/{CLONE}/twin_interfaces',
         '--cmake-args', f'-DPython3_EXECUTABLE={sys.executable}', '-DBUILD_TESTING=OFF'],
        cwd=workspace, env=env, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    assert 'Summary: 2 packages finished' in build.stdout, build.stdout

    installed = workspace / 'install' / 'twin_bringup'
    assert {'workcell_sim', 'health_monitor', 'imu_driver', 'sync_node', 'state_node', 'twin_launch'} <= {
        p.name for p in (installed / 'lib' / 'twin_bringup').iterdir()}
    assert (installed / 'share' / 'twin_bringup' / 'launch' / 'twin.launch.py').is_file()
    # What `ros2 run twin_bringup ...` does after `source install/setup.bash`: the installed
    # package (not this checkout) finds its config through the ament index and the generated
    # messages of the other package.
    script = (f'source install/setup.bash && cd {tmp_path} && '
              'python -c "from twin_interfaces.msg import AnomalyEvent, TwinState\n'
              'from twin_core.paths import config_dir\n'
              'from twin_bringup.node_table import load_node_table\n'
              'print(config_dir(), len(load_node_table(config_dir()).nodes))" && '
              f'{installed}/lib/twin_bringup/twin_launch --help')
    check = subprocess.run(['bash', '-c', script], cwd=workspace, env={**env, 'PATH': os.environ['PATH']},
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    config, count = check.stdout.splitlines()[0].split()
    assert config == str(installed / 'share' / 'twin_bringup' / 'config') and int(count) >= 8
    assert 'usage: twin_launch' in check.stdout
