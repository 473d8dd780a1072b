"""twin_report: one self-contained HTML page of plots from a run.

    twin_report BAG --out report.html [--images-dir docs --image-prefix report_]
    twin_report BAG --replay --out report.html [--bag twin_outputs_bag]
    twin_report --live --duration 60 --out report.html [--bag run_bag] [--summary]

From a bag (``twin_record``): twin vs ground-truth tracking, prediction vs actual, anomaly
alarms against fault intervals, health and RUL, the maintenance schedule. A bag of the twin's
inputs only (no /twin/joint_states, like test/data/bags) is first replayed through the twin's
nodes on a private ROS domain (twin_report.replay), or always with ``--replay``, never with
``--no-replay``. ``--live`` first records the report's topics with ``twin_record`` for
``--duration`` s (the graph must be running), and the camera's images and camera_info where the
node table starts a camera driver (``--camera`` / ``--no-camera`` decide instead).
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from xml.etree.ElementTree import ParseError

from twin_bag.reading import read_topics
from twin_core.graph import read_node_table
from twin_core.kinematics import ArmKinematics
from twin_core.paths import config_dir, resolve_executable
from twin_core.urdf import urdf_file
from twin_report import replay
from twin_report.bag import read_run
from twin_report.report import Report, ReportOptions, build_report
from twin_report.series import CAMERA_FEED, SCHEDULE, TOPICS, TWIN_JOINTS, Run
from twin_report.text import summary_text

RECORDER = 'twin_record'
RECORDER_GRACE_S = 30.0  # beyond --duration, for the recorder to start and finish the bag
CAMERA_DRIVER = 'camera_driver'  # the executable whose presence in the node table means a camera


def camera_in(configs: Path) -> bool:
    """Whether the node table in ``configs`` starts a camera driver (the cell camera is off by default)."""
    return any(entry.executable == CAMERA_DRIVER for entry in read_node_table(configs / 'graph.yaml')[0])


def recorded_topics(camera: bool) -> list[str]:
    """``twin_record --topics`` specs: the report's topics, with ``camera`` the camera's feed too."""
    specs = [f'{topic}:{msgtype}' + (':latched' if topic == SCHEDULE else '') for topic, msgtype in TOPICS.items()]
    return specs + ([f'{topic}:{msgtype}:sensor_data' for topic, msgtype in CAMERA_FEED.items()] if camera else [])


def record(bag: Path, duration: float, camera: bool = False) -> None:
    """Record the report's topics (with ``camera`` the camera's images and camera_info too) into
    ``bag`` for ``duration`` s with ``twin_record``; ``ValueError`` if it is not installed,
    ``RuntimeError`` if it fails.
    """
    topics = recorded_topics(camera)
    command = [resolve_executable(RECORDER), '--out', str(bag), '--duration', f'{duration:g}', '--topics', *topics]
    print(f'twin_report: recording {len(topics)} topics for {duration:g} s into {bag}'
          + (' (with the camera\'s images)' if camera else ''), file=sys.stderr)
    with subprocess.Popen(command) as recorder:
        try:
            code = recorder.wait(timeout=duration + RECORDER_GRACE_S)
        except (KeyboardInterrupt, subprocess.TimeoutExpired):
            recorder.send_signal(signal.SIGINT)  # the recorder finishes the bag
            code = recorder.wait(timeout=RECORDER_GRACE_S)
    if code != 0:
        raise RuntimeError(f'{RECORDER} exited with code {code}')


def say(text: str) -> None:
    print(f'twin_report: {text}', file=sys.stderr, flush=True)


def wants_replay(bag: Path, asked: bool | None) -> bool:
    """Whether to run the twin over ``bag`` first (``asked``: --replay / --no-replay / neither),
    said on stderr.
    """
    if asked is not None:
        say(f'replaying {bag} through the twin as asked' if asked else f'reporting {bag} as recorded, as asked')
        return asked
    if TWIN_JOINTS in read_topics(bag, {}).counts:
        say(f'{bag} holds the twin\'s outputs: reporting it as recorded (--replay runs the twin anew)')
        return False
    say(f'{bag} has no {TWIN_JOINTS}, only the twin\'s inputs: replaying it through the twin first '
        '(--no-replay reports it as recorded)')
    return True


def replayed_run(bag: Path, output: Path | None, configs: Path, domain: int | None) -> Run:
    """The run of ``bag`` replayed through the twin (its outputs recorded into ``output``, default
    a temporary bag), on ``domain`` (default a random private ROS domain). The processes' logs are
    removed after a replay that worked, kept after one that did not.
    """
    work = Path(tempfile.mkdtemp(prefix='twin_report_'))
    setup = replay.plan(bag, output or work / 'outputs', configs, work)
    env = replay.environment(os.environ, configs, domain)
    say(f'replaying {setup.duration:.1f} s through {", ".join(setup.nodes)} (parameters from '
        f'{configs}, health window {setup.window:g} s) on ROS_DOMAIN_ID {env["ROS_DOMAIN_ID"]}')
    try:
        replay.run(setup, env, work / 'logs', say)
    except BaseException:
        say(f'the replay\'s logs are kept in {work / "logs"}')
        raise
    if output is not None:
        say(f'recorded the twin\'s outputs into {output}')
    run = read_run(bag, setup.output)
    shutil.rmtree(work)
    return run


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
    parser.add_argument('--replay', action=argparse.BooleanOptionalAction,
                        help='run the twin over BAG first (default: when BAG has no /twin/joint_states)')
    parser.add_argument('--config-dir', type=Path, default=None,
                        help='replay: graph.yaml and the parameter files; live: the node table that says whether '
                             'the camera is on (default: the installed config/)')
    parser.add_argument('--domain-id', type=int, help='replay: ROS_DOMAIN_ID (default: a random private one)')
    parser.add_argument('--live', action='store_true', help='record a run first (see --duration)')
    parser.add_argument('--duration', type=float, default=60.0, help='live recording time (s)')
    parser.add_argument('--camera', action=argparse.BooleanOptionalAction,
                        help='live: also record the camera\'s images and camera_info (default: when the node '
                             'table, graph.yaml in --config-dir, starts a camera_driver)')
    parser.add_argument('--bag', dest='live_bag', type=Path,
                        help='live: bag directory to create (default: <out without suffix>_bag); '
                             'replay: bag directory for the twin\'s outputs (default: a temporary one)')
    parser.add_argument('--urdf', type=Path, default=urdf_file())
    parser.add_argument('--max-lag', type=float, default=ReportOptions.max_lag,
                        help='latency search range of the fidelity evaluation (s)')
    parser.add_argument('--grace', type=float, default=ReportOptions.grace,
                        help='s after a fault in which a rising alarm still counts as inside')
    parser.add_argument('--summary', action='store_true',
                        help='also print a summary of every layer, with what each figure means')
    arguments = parser.parse_args(argv)
    if arguments.live == (arguments.bag is not None):
        parser.error('give either a BAG or --live')
    if arguments.live and arguments.replay is not None:
        parser.error('--replay and --no-replay are for a BAG, not --live')
    if arguments.duration <= 0.0 or arguments.max_lag <= 0.0 or arguments.grace < 0.0:
        parser.error('--duration and --max-lag must be > 0, --grace >= 0')
    if arguments.domain_id is not None and not 0 <= arguments.domain_id <= 232:
        parser.error('--domain-id must be in 0..232')
    bag = arguments.bag
    try:
        if arguments.live:
            bag = arguments.live_bag or arguments.out.with_name(f'{arguments.out.stem}_bag')
            camera = arguments.camera if arguments.camera is not None else \
                camera_in(arguments.config_dir or config_dir())
            record(bag, arguments.duration, camera)
            run = read_run(bag)
        elif wants_replay(bag, arguments.replay):
            run = replayed_run(bag, arguments.live_bag, arguments.config_dir or config_dir(), arguments.domain_id)
        else:
            run = read_run(bag)
        report = build_report(run, ArmKinematics.from_urdf(arguments.urdf),
                              ReportOptions(arguments.max_lag, arguments.grace))
        write(report, arguments.out, arguments.images_dir, arguments.image_prefix)
    except (OSError, ValueError, RuntimeError, ParseError) as error:
        print(f'twin_report: {error}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print('twin_report: interrupted', file=sys.stderr)
        return 130
    print(f'twin_report: wrote {arguments.out} ({len(report.images)} figures) from {bag}')
    if arguments.summary:
        kinematics = ArmKinematics.from_urdf(arguments.urdf)
        print(summary_text(run, kinematics, arguments.max_lag, arguments.grace,
                           [f'{arguments.out} (the report page)', f'{bag} (the recorded bag)']))
    return 0
