"""twin_report: one self-contained HTML page of plots from a run.

    twin_report BAG --out report.html [--images-dir docs --image-prefix report_]
    twin_report --live --duration 60 --out report.html [--bag run_bag]

From a bag (``twin_record``): twin vs ground-truth tracking, prediction vs actual, anomaly
alarms against fault intervals, health and RUL, the maintenance schedule. ``--live`` first
records the report's topics with ``twin_record`` for ``--duration`` s (the graph must be running).
"""
from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path
from xml.etree.ElementTree import ParseError

from twin_core.kinematics import ArmKinematics
from twin_core.paths import resolve_executable
from twin_core.urdf import urdf_file
from twin_report.bag import read_run
from twin_report.report import Report, ReportOptions, build_report
from twin_report.series import SCHEDULE, TOPICS

RECORDER = 'twin_record'
RECORDER_GRACE_S = 30.0  # beyond --duration, for the recorder to start and finish the bag


def record(bag: Path, duration: float) -> None:
    """Record the report's topics into ``bag`` for ``duration`` s with ``twin_record``;
    ``ValueError`` if it is not installed, ``RuntimeError`` if it fails.
    """
    command = [resolve_executable(RECORDER), '--out', str(bag), '--duration', f'{duration:g}', '--topics',
               *(f'{topic}:{msgtype}' + (':latched' if topic == SCHEDULE else '') for topic, msgtype in TOPICS.items())]
    print(f'twin_report: recording {len(TOPICS)} topics for {duration:g} s into {bag}', file=sys.stderr)
    with subprocess.Popen(command) as recorder:
        try:
            code = recorder.wait(timeout=duration + RECORDER_GRACE_S)
        except (KeyboardInterrupt, subprocess.TimeoutExpired):
            recorder.send_signal(signal.SIGINT)  # the recorder finishes the bag
            code = recorder.wait(timeout=RECORDER_GRACE_S)
    if code != 0:
        raise RuntimeError(f'{RECORDER} exited with code {code}')


def write(report: Report, out: Path, images_dir: Path | None, prefix: str) -> None:
    """The page to ``out``; with ``images_dir`` also each figure as ``<prefix><name>.png``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report.html, encoding='utf-8')
    if images_dir is not None:
        images_dir.mkdir(parents=True, exist_ok=True)
        for name, png in report.images.items():
            (images_dir / f'{prefix}{name}.png').write_bytes(png)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    parser = argparse.ArgumentParser(prog='twin_report', description=__doc__.split('\n')[0])
    parser.add_argument('bag', nargs='?', type=Path, help='bag directory (or .mcap file)')
    parser.add_argument('--out', type=Path, required=True, help='HTML file to write')
    parser.add_argument('--images-dir', type=Path, help='also write each figure as a PNG here')
    parser.add_argument('--image-prefix', default='report_', help='file name prefix of the PNGs')
    parser.add_argument('--live', action='store_true', help='record a run first (see --duration)')
    parser.add_argument('--duration', type=float, default=60.0, help='live recording time (s)')
    parser.add_argument('--bag', dest='live_bag', type=Path,
                        help='live: bag directory to create (default: <out without suffix>_bag)')
    parser.add_argument('--urdf', type=Path, default=urdf_file())
    parser.add_argument('--max-lag', type=float, default=ReportOptions.max_lag,
                        help='latency search range of the fidelity evaluation (s)')
    parser.add_argument('--grace', type=float, default=ReportOptions.grace,
                        help='s after a fault in which a rising alarm still counts as inside')
    arguments = parser.parse_args(argv)
    if arguments.live == (arguments.bag is not None):
        parser.error('give either a BAG or --live')
    if arguments.duration <= 0.0 or arguments.max_lag <= 0.0 or arguments.grace < 0.0:
        parser.error('--duration and --max-lag must be > 0, --grace >= 0')
    bag = arguments.bag
    try:
        if arguments.live:
            bag = arguments.live_bag or arguments.out.with_name(f'{arguments.out.stem}_bag')
            record(bag, arguments.duration)
        run = read_run(bag)
        report = build_report(run, ArmKinematics.from_urdf(arguments.urdf),
                              ReportOptions(arguments.max_lag, arguments.grace))
        write(report, arguments.out, arguments.images_dir, arguments.image_prefix)
    except (OSError, ValueError, RuntimeError, ParseError) as error:
        print(f'twin_report: {error}', file=sys.stderr)
        return 1
    print(f'twin_report: wrote {arguments.out} ({len(report.images)} figures) from {bag}')
    return 0
