"""Record synchronized frames through the live data path for fitting the anomaly detector.

Runs the simulated cell and the whole twin (``twin_launch`` on a private copy of config/,
loopback DDS, the caller's ``ROS_DOMAIN_ID``), records ``/twin/synced_frame`` and the
simulator's truth with ``twin_record`` after a warm-up, and writes ``frames.csv``
(``twin_anomaly frames``) split in time into ``fit.csv`` (first two thirds, for
``twin_anomaly fit --data-also``) and ``held.csv`` (the rest, for
``bench/bench_analytics.py --live``).

    python scripts/live_frames.py --duration 330 --out out/analytics/live
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from twin_anomaly.anomaly_cli import main as twin_anomaly
from twin_bringup.launcher import node_environment
from twin_core.paths import resolve_executable
from twin_core.progress import advance_to, progress_bar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'test'))
from sandbox import isolated_config  # noqa: E402

TOPICS = ('/twin/synced_frame:twin_interfaces/msg/SyncedFrame', '/workcell_sim/truth:twin_interfaces/msg/WorkcellTruth')
POLL_PERIOD = 1.0  # s between looks at the clock and the recorder


def split(frames: Path, fit: Path, held: Path, fraction: float = 2 / 3) -> None:
    header, *rows = frames.read_text().splitlines()
    cut = int(len(rows) * fraction)
    fit.write_text('\n'.join([header, *rows[:cut]]) + '\n')
    held.write_text('\n'.join([header, *rows[cut:]]) + '\n')


def follow(bar: tqdm, started: float, finished: Callable[[], bool]) -> None:
    """Move ``bar`` to the seconds since ``started`` (monotonic clock) until ``finished()``."""
    while not finished():
        time.sleep(POLL_PERIOD)
        advance_to(bar, time.monotonic() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--duration', type=float, default=330.0, help='s of frames to record')
    parser.add_argument('--warmup', type=float, default=40.0, help='s after start before recording')
    parser.add_argument('--out', type=Path, default=Path('out/analytics/live'))
    arguments = parser.parse_args()
    arguments.out.mkdir(parents=True, exist_ok=True)
    bag = arguments.out / 'bag'
    if bag.exists():
        parser.error(f'{bag} exists: remove it to record again')
    work = Path(tempfile.mkdtemp(prefix='live_frames_'))
    config = isolated_config(work)
    env = node_environment(str(config / 'fastdds_loopback.xml'))
    started = time.monotonic()
    with (open(arguments.out / 'launch.log', 'w') as log,
          progress_bar(arguments.warmup + arguments.duration, 'warm-up', 's') as bar):
        launcher = subprocess.Popen(
            [resolve_executable('twin_launch'), '--config-dir', str(config), '--duration',
             str(arguments.warmup + arguments.duration + 30.0)], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            follow(bar, started, lambda: time.monotonic() - started >= arguments.warmup)
            bar.set_description_str('recording')
            recorder = subprocess.Popen(
                [resolve_executable('twin_record'), '--out', str(bag), '--duration', str(arguments.duration),
                 '--compression', 'zstd', '--topics', *TOPICS], env=env, stdout=log, stderr=subprocess.STDOUT)
            follow(bar, started, lambda: recorder.poll() is not None)
        finally:
            launcher.terminate()
            launcher.wait(timeout=60)
    if recorder.returncode:
        parser.exit(1, f'twin_record failed with exit code {recorder.returncode}: see {log.name}\n')
    frames = arguments.out / 'frames.csv'
    code = twin_anomaly(['frames', '--bag', str(bag), '--out', str(frames)])
    if code == 0:
        split(frames, arguments.out / 'fit.csv', arguments.out / 'held.csv')
    return code


if __name__ == '__main__':
    raise SystemExit(main())
