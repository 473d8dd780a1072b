"""twin_report on a shipped bag of inputs: it replays the bag through the twin first (one replay
for the module), every section then has data, no process or shared memory is left behind (also
after Ctrl-C or a node that fails), and headless Chromium renders the page with its figures.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
import pytest
import yaml
from PIL import Image

from harness import CONFIG_DIR, REPLAY_DOMAIN_OFFSET, REPO, stale_fastdds_segments, wait_for
from twin_core.paths import resolve_executable
from twin_report import replay as twin_replay
from twin_report.screenshot import screenshot
from twin_report.series import ANOMALIES, DIAGNOSTICS, OPTIONAL_TOPICS, PREDICTION, SCHEDULE, TOPICS, TWIN_JOINTS

pytestmark = pytest.mark.integration

BAG = REPO / 'test' / 'data' / 'bags' / 'collision'
SECTIONS = ('summary', 'tracking', 'prediction', 'anomalies', 'health', 'schedule')
FIGURES = ('anomalies', 'health', 'prediction', 'schedule', 'tracking')
WINDOW = (1280, 2400)  # px: the summary and the tracking figure
TWIN_BLUE = (31, 119, 180)  # matplotlib's tab:blue, the twin's line in the tracking figure


@dataclass
class Reported:
    code: int
    stderr: str
    html: Path
    images: Path
    leftovers: list[str]
    leaked: set[str]


def domain(ros_env: dict[str, str]) -> str:
    """A domain of this test run for the report's replay only."""
    return str(int(ros_env['ROS_DOMAIN_ID']) + REPLAY_DOMAIN_OFFSET)


def processes_on(domain_id: str) -> list[str]:
    """Command lines of the living processes (but this one) on ROS_DOMAIN_ID ``domain_id``."""
    found = []
    for process in psutil.process_iter(['pid', 'cmdline']):
        try:
            if process.pid != os.getpid() and process.environ().get('ROS_DOMAIN_ID') == domain_id:
                found.append(' '.join(process.info['cmdline'] or []))
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return found


def chromium_processes() -> list[int]:
    """Living processes of a Chromium started by twin_report.screenshot (its profile twin_chromium_*)."""
    found = []
    for process in psutil.process_iter(['pid', 'cmdline', 'status']):
        if process.info['status'] != psutil.STATUS_ZOMBIE and any(
                'twin_chromium_' in part for part in process.info['cmdline'] or []):
            found.append(process.pid)
    return found


def twin_report(ros_env: dict[str, str], *arguments: str) -> subprocess.Popen[str]:
    """twin_report started with SIGINT at its default, as from a terminal, also when the tests run
    in a shell that ignores it (a background job without job control: the ignore is inherited).
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # a handler, reset at exec
    try:
        return subprocess.Popen([resolve_executable('twin_report'), *arguments, '--domain-id', domain(ros_env)],
                                env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope='module')
def reported(ros_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Reported:
    directory = tmp_path_factory.mktemp('report_replay')
    before = stale_fastdds_segments()
    report = twin_report(ros_env, str(BAG), '--out', str(directory / 'report.html'),
                         '--images-dir', str(directory / 'images'))
    _, stderr = report.communicate(timeout=240)
    time.sleep(1.0)  # processes killed at the very end are reaped
    return Reported(report.returncode, stderr, directory / 'report.html', directory / 'images',
                    processes_on(domain(ros_env)), stale_fastdds_segments() - before)


def test_a_bag_of_inputs_is_replayed_and_every_section_has_data(reported: Reported) -> None:
    assert reported.code == 0, reported.stderr
    assert f'has no {TWIN_JOINTS}, only the twin\'s inputs: replaying it through the twin' in reported.stderr
    html = reported.html.read_text()
    for anchor in SECTIONS:
        assert f'<section id="{anchor}">' in html
    assert 'Not recorded' not in html and 'No data' not in html and 'not recorded' not in html
    assert sorted(p.stem for p in reported.images.iterdir()) == [f'report_{name}' for name in FIGURES]
    for topic in TOPICS:  # the bag's truth and the replay's outputs (the camera check is not in the bag)
        assert (f'<th>messages {topic}</th><td class="num">' in html) == (topic not in OPTIONAL_TOPICS), topic
    for topic in (TWIN_JOINTS, PREDICTION, ANOMALIES, SCHEDULE, DIAGNOSTICS):
        assert f'<th>messages {topic}</th><td class="num">0</td>' not in html, topic
    # The collision is caught, the predictor's shipped horizon is the one compared.
    horizon = yaml.safe_load((CONFIG_DIR / 'predictor.yaml').read_text())['predictor']['ros__parameters']['horizon']
    assert f'prediction RMSE at {horizon:g} s vs twin' in html
    assert '<td>collision:link_3</td>' in html
    assert 'inside / outside fault intervals</th><td>0 / ' not in html
    # Every plan is stamped in the bag's time (2026), none at the epoch.
    assert 'planned at 2026-' in html and 'planned at 1970' not in html
    assert '-0.0 ms' not in html


def test_the_replay_leaves_no_process_nor_shared_memory(reported: Reported) -> None:
    assert reported.code == 0, reported.stderr
    assert reported.leftovers == []
    assert not reported.leaked


def test_chromium_renders_the_page_with_its_figures(reported: Reported, tmp_path: Path) -> None:
    png = tmp_path / 'page.png'
    screenshot(reported.html, png, *WINDOW)
    with Image.open(png) as shot:
        assert shot.size == WINDOW
        pixels = np.asarray(shot.convert('RGB'))
    colors = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colors) > 1000, len(colors)  # text, tables and plots, not a blank or error page
    near_blue = (np.abs(pixels.astype(int) - TWIN_BLUE).sum(axis=2) < 30).sum()
    assert near_blue > 1000, near_blue  # the tracking figure's twin lines are drawn (none without it)
    assert chromium_processes() == []


def test_ctrl_c_during_the_replay_stops_every_process(ros_env: dict[str, str], tmp_path: Path) -> None:
    before = stale_fastdds_segments()
    report = twin_report(ros_env, str(BAG), '--out', str(tmp_path / 'report.html'))
    assert report.stderr is not None
    lines = []
    for line in report.stderr:  # until the bag plays: every node and the recorder are up
        lines.append(line)
        if 'playing' in line:
            break
    assert any('playing' in line for line in lines), ''.join(lines)
    time.sleep(2.0)
    report.send_signal(signal.SIGINT)
    _, rest = report.communicate(timeout=60)
    assert report.returncode == 130, ''.join(lines) + rest
    assert 'interrupted' in rest
    time.sleep(1.0)
    assert processes_on(domain(ros_env)) == []
    assert not stale_fastdds_segments() - before
    assert not (tmp_path / 'report.html').exists()


def test_a_node_that_fails_ends_the_report_with_one_line_and_no_process_left(ros_env: dict[str, str],
                                                                            tmp_path: Path) -> None:
    config = tmp_path / 'config'
    shutil.copytree(CONFIG_DIR, config)
    maintenance = config / 'maintenance.yaml'
    maintenance.write_text(maintenance.read_text().replace('urdf: ""', 'urdf: /nonexistent/arm.urdf'))
    report = twin_report(ros_env, str(BAG), '--out', str(tmp_path / 'report.html'), '--config-dir', str(config))
    _, stderr = report.communicate(timeout=120)
    assert report.returncode == 1, stderr
    error = [line for line in stderr.splitlines() if 'exited with code' in line]
    assert len(error) == 1 and error[0].startswith('twin_report: maintenance_planner exited with code 2'), stderr
    assert 'Traceback' not in stderr
    time.sleep(1.0)
    assert processes_on(domain(ros_env)) == []


# A recorder stand-in: writes its bag's metadata.yaml (or not), then ignores SIGINT and hangs.
HANGING_RECORDER = '''
import signal, sys, time
from pathlib import Path
signal.signal(signal.SIGINT, signal.SIG_IGN)
if sys.argv[1] == 'wrote':
    Path(sys.argv[2], 'metadata.yaml').write_text('rosbag2_bagfile_information: {}')
print('recording', flush=True)
time.sleep(60)
'''


@pytest.mark.parametrize('bag', ['wrote', 'unfinished'])
def test_a_recorder_that_hangs_at_exit_is_killed_and_fails_the_replay_only_without_its_bag(
        tmp_path: Path, bag: str) -> None:
    output = tmp_path / 'bag'
    output.mkdir()
    processes = twin_replay.Processes(os.environ, tmp_path / 'logs')
    processes.start(twin_replay.RECORDER_NODE, [sys.executable, '-c', HANGING_RECORDER, bag, str(output)])
    time.sleep(1.0)  # past its start
    said: list[str] = []
    try:
        if bag == 'wrote':
            twin_replay.finish_recording(processes, output, said.append, grace=0.5)
            assert said == [f'twin_recorder finished the bag but did not exit within 0.5 s; killed '
                            f'(where it stopped: {tmp_path}/logs/twin_recorder.log)']
        else:
            with pytest.raises(RuntimeError, match='twin_recorder exited with code -9: recording'):
                twin_replay.finish_recording(processes, output, said.append, grace=0.5)
    finally:
        processes.stop(grace=0.5)
    assert processes.started[twin_replay.RECORDER_NODE][0].returncode == -signal.SIGKILL


# A node stand-in that holds a Fast DDS segment in /dev/shm as a participant does (its lock file
# flock-ed), then ignores SIGINT and hangs, or exits on it.
SEGMENT_HOLDER = '''
import fcntl, os, signal, sys, time
name, hang = sys.argv[1], sys.argv[2] == 'hang'
open(f'/dev/shm/{name}', 'wb').close()
lock = os.open(f'/dev/shm/{name}_el', os.O_CREAT | os.O_RDWR)
fcntl.flock(lock, fcntl.LOCK_EX)
if hang:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
print('holding', flush=True)
try:
    time.sleep(60)
except KeyboardInterrupt:
    os.unlink(f'/dev/shm/{name}'), os.unlink(f'/dev/shm/{name}_el')
'''


def test_processes_killed_at_stop_are_named_and_their_shared_memory_is_removed(tmp_path: Path) -> None:
    segments = {role: f'fastdds_{secrets.token_hex(8)}' for role in ('hangs', 'exits')}
    processes = twin_replay.Processes(os.environ, tmp_path / 'logs')
    for role, segment in segments.items():
        processes.start(role, [sys.executable, '-c', SEGMENT_HOLDER, segment, 'hang' if role == 'hangs' else 'exit'])
    try:
        assert wait_for(lambda: all('holding' in processes.tail(role) for role in segments), timeout=10.0)
        time.sleep(1.1)  # older than the age below which a segment may be one being created
        assert processes.stop(grace=1.0) == ['hangs']
        assert not [path for segment in segments.values() for path in Path('/dev/shm').glob(f'{segment}*')]
    finally:
        processes.stop(grace=0.5)
        for segment in segments.values():
            for path in (Path('/dev/shm') / segment, Path('/dev/shm') / f'{segment}_el'):
                path.unlink(missing_ok=True)
