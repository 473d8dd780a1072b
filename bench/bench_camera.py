"""Cell camera cost and delivery: offscreen rendering, JPEG encoding, the MJPEG stream, the driver.

* cost: render and encode time per frame (wall ms, median) and the process CPU per frame
  (OSMesa's llvmpipe renders in worker threads of the process: process CPU counts them) for each
  resolution with and without shadows and reflections.
* live: the simulated cell paced at real time with only its camera channel, first with the
  camera off (the baseline, same duration), then on at the configured rate; the camera's cost is
  the render process's CPU plus the difference of the cell process's CPU (serving, the reader).
  The driver core reads the stream in the same process (frames delivered vs rendered, latency =
  receipt - the wall time at which the physics reached the frame's instant); a camera_driver
  node process reads it too, its CPU from /proc.
* camera check (``twin_anomaly.camera_check``, ``config/camera_check.yaml`` defaults): the cell
  stepped in this process, the twin fed the encoder readings every 10 ms, a frame every
  ``--check-period`` s through the camera's render path (render, JPEG), over ``--fiducial-seconds``
  of the nominal cycle: the tool plate's position as the camera sees it against the simulator's
  ground truth, the image-space discrepancy against the twin, the check's CPU per frame against
  decoding alone; with ``--stuck N``, N encoder_stuck faults on ``--joint`` at different phases
  of the cycle, each in a fresh cell: the time from the onset to the camera alarm.
* OpenCV source (``--capture S``): a 640×480 MJPG AVI written here, read by the driver core's
  CaptureReader (decode, JPEG encode at the configured quality, the frame check) as fast as it
  plays (the file at 1000 fps), then by a camera_driver process at the file's 10 fps for S s each:
  frames/s, CPU per frame, the process's cores and the frames delivered on DDS.
Run: ``python bench/bench_camera.py [--duration 20] [--rate 5] [--width 640 --height 480] [--stuck 5] [--no-live]
[--capture 15]``.
"""
from __future__ import annotations

import argparse
import itertools
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import psutil
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'test'))
from camera_cell import CONFIG, camera_cell, camera_channels, checked_frames, workcell  # noqa: E402
from harness import NodeProcess  # noqa: E402
from twin_anomaly.camera_check import CameraCheck, CameraCheckConfig  # noqa: E402
from twin_core.config import build  # noqa: E402
from twin_core.kinematics import ArmKinematics  # noqa: E402
from twin_core.stamps import from_seconds  # noqa: E402
from twin_sensors.camera import CameraConfig, CameraStream, MjpegReader  # noqa: E402
from twin_sensors.stats import DriverStats  # noqa: E402
from twin_sim.camera import CameraChannel, FrameRenderer, calibration, marker_in_world  # noqa: E402
from twin_sim.runner import SimRunner  # noqa: E402
from twin_sim.scenario import Fault  # noqa: E402
from twin_sim.workcell import Workcell  # noqa: E402

RESOLUTIONS = ((320, 240), (640, 480))
FLAGS = ((False, False), (False, True), (True, False), (True, True))  # (shadows, reflections)


def cost_table(frames: int) -> None:
    cell = workcell()
    view = cell.camera_view()
    assert view is not None
    print(f'{"resolution":>10} {"shadows":>7} {"reflect":>7} {"render ms":>9} {"encode ms":>9} '
          f'{"cpu ms/frame":>12} {"jpeg kB":>7}')
    for width, height in RESOLUTIONS:
        for shadows, reflections in FLAGS:
            renderer = FrameRenderer(cell.model, CameraChannel(width=width, height=height, shadows=shadows,
                                                               reflections=reflections))
            renderer.encode(renderer.render(view))  # first frame: shader and texture upload
            render, encode = [], []
            cpu = time.process_time()
            for _ in range(frames):
                start = time.perf_counter()
                image = renderer.render(view)
                middle = time.perf_counter()
                jpeg = renderer.encode(image)
                render.append(middle - start)
                encode.append(time.perf_counter() - middle)
            cpu_ms = 1e3 * (time.process_time() - cpu) / frames
            renderer.close()
            print(f'{width:>4}x{height:<5} {shadows!s:>7} {reflections!s:>7} {1e3 * np.median(render):9.1f} '
                  f'{1e3 * np.median(encode):9.2f} {cpu_ms:12.1f} {len(jpeg) / 1e3:7.1f}')


def camera_check(cell: Workcell, width: int, height: int) -> CameraCheck:
    check = CameraCheck(CameraCheckConfig(), ArmKinematics.from_urdf(CONFIG / 'arm.urdf'))
    check.calibrate(calibration(cell.model, width, height))
    return check


def fiducial_table(width: int, height: int, seconds: float, period: float) -> None:
    """The camera check on the nominal cycle, the twin fed the encoder readings: the tool plate's
    position as the camera sees it against the simulator's ground truth, the image-space
    discrepancy against the twin.
    """
    cell = workcell()
    renderer = FrameRenderer(cell.model, CameraChannel(width=width, height=height))
    check = camera_check(cell, width, height)
    seen_mm, image_mm, image_px, frames = [], [], [], 0
    truths: dict[int, np.ndarray] = {}  # the tool plate's true position by stamp (ns): frames are judged later
    try:
        for now, judged in itertools.takewhile(lambda step: step[0] < seconds,
                                               checked_frames(cell, renderer, check, period)):
            truths[from_seconds(now)] = marker_in_world(cell.model, cell.data, check.config.tool_plate.marker_id)[0]
            for frame in judged:
                frames += 1
                comparison = frame.comparison
                if comparison.seen_plate is not None:
                    truth = truths[frame.stamp]
                    seen_mm.append(1e3 * float(np.linalg.norm(comparison.seen_plate[:3, 3] - truth)))
                    image_mm.append(comparison.reprojection_mm)
                    image_px.append(comparison.reprojection_px)
    finally:
        renderer.close()
    print(f'\ncamera check at {width}x{height}, {seconds:g} s of the nominal cycle, a frame every {period:g} s: '
          f'{frames} frames judged, the tool plate seen in {len(seen_mm)}; alarms {check.counts["alarms"]}')
    for name, values in (('seen plate vs ground truth, mm', seen_mm), ('image discrepancy, mm', image_mm),
                         ('image discrepancy, px', image_px)):
        print(f'  {name:>32}: mean {np.mean(values):6.2f}, median {np.median(values):6.2f}, '
              f'p95 {np.percentile(values, 95):6.2f}, max {np.max(values):6.2f}')


def check_cost(width: int, height: int, frames: int) -> None:
    """CPU per frame of the check (decode, detect, compare) against decoding alone, on the same JPEGs."""
    cell = workcell()
    renderer = FrameRenderer(cell.model, CameraChannel(width=width, height=height))
    try:
        shots = []
        for _ in range(frames):
            shots.append((cell.time, cell.truth().q.copy(), renderer.encode(renderer.render(cell.camera_view()))))
            cell.step(round(8.0 / frames / cell.settings.timestep))  # spread over the 8 s cycle
    finally:
        renderer.close()
    check = camera_check(cell, width, height)
    start = time.process_time()
    for _, _, jpeg in shots:
        cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    decode = time.process_time() - start
    start = time.process_time()
    tolerance = check.config.stamp_tolerance
    for stamp, positions, jpeg in shots:  # the twin still around the frame: its states cover the tolerance
        for twin_stamp in np.linspace(stamp - tolerance, stamp + tolerance, 11):
            check.twin_state(from_seconds(twin_stamp), cell.joint_names, positions)
        check.frame(from_seconds(stamp), jpeg)
    checking = time.process_time() - start
    print(f'check CPU per frame at {width}x{height} ({frames} frames): {1e3 * checking / frames:.2f} ms '
          f'(decoding alone, the baseline: {1e3 * decode / frames:.2f} ms); judged {check.counts["judged"]}')


def stuck_runs(width: int, height: int, period: float, runs: int, joint: str, warmup: float, spacing: float,
               limit: float) -> None:
    """``runs`` encoder_stuck faults on ``joint``, each in a fresh cell at another phase of the cycle:
    the time from the onset to the camera alarm, and the discrepancy just before the onset.
    """
    config = CameraCheckConfig().alarm
    print(f'\n{runs} x encoder_stuck:{joint}; camera alarm: > {config.bound:g} mm for {config.duration:g} s, '
          f'a frame every {period:g} s at {width}x{height}')
    print('| run | onset [s] | onset -> camera alarm [ms] | peak image discrepancy before the onset [mm] |')
    print('|---|---:|---:|---:|')
    delays = []
    for run in range(runs):
        cell = workcell()
        renderer = FrameRenderer(cell.model, CameraChannel(width=width, height=height))
        check = camera_check(cell, width, height)
        onset_at, onset, alarm, before = warmup + run * spacing, None, None, 0.0
        try:
            for now, judged in checked_frames(cell, renderer, check, period):
                if onset is None and now >= onset_at:
                    onset = now
                    before = check.peak_mm
                    cell.inject_fault(Fault('encoder_stuck', joint, duration=limit))
                if onset is not None and any(e.active for j in judged for e in j.events):
                    alarm = now - onset
                if alarm is not None or (onset is not None and now > onset + limit):
                    break
        finally:
            renderer.close()
        assert onset is not None
        delays.append(alarm)
        print(f'| {run + 1} | {onset:.2f} | {"none" if alarm is None else f"{1e3 * alarm:.0f}"} | {before:.1f} |')
    found = [d for d in delays if d is not None]
    if found:
        print(f'alarm in {len(found)} of {runs} runs; delay median {1e3 * np.median(found):.0f} ms, '
              f'max {1e3 * max(found):.0f} ms')


def live_check(duration: float, env: dict[str, str]) -> None:
    """The camera check live on DDS: the cell paced at real time with its camera, camera_driver, and
    two camera_check processes on the same frames: as configured (the stamp tolerance) and at the
    frame's stamp only (the baseline). The twin's joint states are the simulator's truth every 10 ms,
    stamped with the wall time at which the physics reached it: a twin without error of its own,
    so every discrepancy comes from the camera path and the two clocks.
    """
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Header

    from harness import TopicProbe
    from twin_interfaces.msg import CameraDiscrepancy
    from twin_ros.stamps import to_msg

    probe = TopicProbe(int(env['ROS_DOMAIN_ID']))
    topics = {'stamp tolerance (configured)': '/twin/camera/discrepancy',
              'at the stamp only (baseline)': '/exact/twin/camera/discrepancy'}
    for topic in topics.values():
        probe.subscribe(topic, CameraDiscrepancy)
    publisher = probe.node.create_publisher(JointState, '/twin/joint_states', 10)
    stop, processes = threading.Event(), []
    logs = Path(tempfile.mkdtemp())
    try:
        with camera_cell(rate_hz=5.0) as runner:
            names = list(runner.workcell.joint_names)

            def publish_truth() -> None:
                while not stop.wait(0.01):
                    truth = runner.truth()
                    stamp = to_msg(from_seconds(runner.wall_time_of(truth.time)))
                    publisher.publish(JointState(header=Header(stamp=stamp), name=names, position=truth.q.tolist()))

            thread = threading.Thread(target=publish_truth, daemon=True)
            thread.start()
            assert runner.camera is not None
            processes.append(NodeProcess(['camera_driver', '--ros-args', '--params-file',
                                          str(CONFIG / 'camera_driver.yaml'), '-p', f'url:={runner.camera.server.url}'],
                                         env, logs / 'camera_driver.log'))
            for namespace, extra in (('/', []), ('/exact', ['-p', 'stamp_tolerance:=0.0', '-r', 'camera/image_raw/'
                                     'compressed:=/camera/image_raw/compressed', '-r', 'camera/camera_info:=/camera/'
                                     'camera_info', '-r', 'twin/joint_states:=/twin/joint_states'])):
                processes.append(NodeProcess(['camera_check', '--ros-args', '-r', f'__ns:={namespace}',
                                              '--params-file', str(CONFIG / 'camera_check.yaml'), *extra],
                                             env, logs / f'camera_check{namespace.replace("/", "_")}.log'))
            time.sleep(duration)
            stop.set()
            thread.join()
    finally:
        for process in processes:
            process.stop()
        received = {name: np.array([m.image_mm for m in probe.messages(topic)]) for name, topic in topics.items()}
        probe.close()
    print(f'\ncamera check live, {duration:g} s of the nominal cycle at 5 Hz (the twin = the truth):')
    for name, values in received.items():
        if len(values):
            image = values
            print(f'  {name:>30}: {len(values)} frames judged; image discrepancy mean {image.mean():.2f} mm, '
                  f'p95 {np.percentile(image, 95):.2f} mm, max {image.max():.2f} mm')
        else:
            print(f'  {name:>30}: no frame judged')


def write_video(path: Path, frames: int, fps: float, width: int = 640, height: int = 480) -> Path:
    """An MJPG AVI of textured frames (blurred noise, a moving bar, the frame number)."""
    rng = np.random.default_rng(7)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (height, width, 3), np.uint8), (0, 0), 3)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), fps, (width, height))
    for index in range(frames):
        image = texture.copy()
        x = (index * 13) % width
        image[:, x:x + 40] = (40, 200, 40)
        cv2.putText(image, str(index), (40, 200), cv2.FONT_HERSHEY_SIMPLEX, 5, (255, 255, 255), 10)
        writer.write(image)
    writer.release()
    return path


def capture_bench(seconds: float, env: dict[str, str]) -> None:
    """The OpenCV source on a video file: the core unpaced, then a camera_driver process at 10 fps."""
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CompressedImage

    from harness import TopicProbe
    from twin_sensors.capture import CaptureReader

    work = Path(tempfile.mkdtemp())
    fast = write_video(work / 'fast.avi', 200, 1000.0)
    paced = write_video(work / 'paced.avi', 200, 10.0)
    config = CameraConfig(url=str(fast))
    stats = DriverStats(startup_grace=0.0)
    stream = CameraStream(config, stats)
    sizes: list[int] = []

    def on_jpeg(jpeg: bytes, receive_ns: int) -> None:
        if stream.check(jpeg, receive_ns * 1e-9, None) is not None:
            sizes.append(len(jpeg))

    reader = CaptureReader(config.source, config.jpeg_quality, config.stall_timeout, stats, on_jpeg,
                           lambda connected, detail: stats.set_state(connected, detail))
    cpu, start = time.process_time(), time.monotonic()
    reader.start()
    time.sleep(seconds)
    reader.stop()
    elapsed, cpu = time.monotonic() - start, time.process_time() - cpu
    print(f'\nOpenCV source, 640x480 MJPG AVI, JPEG quality {config.jpeg_quality}, read as fast as it plays '
          f'for {elapsed:.1f} s: {len(sizes) / elapsed:.1f} frames/s, CPU {1e3 * cpu / max(len(sizes), 1):.2f} ms '
          f'per frame (decode, encode {reader.encode_ns * 1e-6 / max(reader.encoded, 1):.2f} ms, check), '
          f'{cpu / elapsed:.2f} cores; JPEG {np.mean(sizes) / 1e3:.1f} kB; {stats.reconnects} restarts at the end')
    probe = TopicProbe(int(env['ROS_DOMAIN_ID']))
    probe.subscribe('/camera/image_raw/compressed', CompressedImage, qos_profile_sensor_data)
    driver = NodeProcess(['camera_driver', '--ros-args', '-p', f'url:={paced}'], env, work / 'camera_driver.log')
    try:
        time.sleep(3.0)  # start-up and discovery
        process = psutil.Process(driver.process.pid)
        before, received, start = process.cpu_times(), len(probe.messages('/camera/image_raw/compressed')), \
            time.monotonic()
        time.sleep(seconds)
        after, elapsed = process.cpu_times(), time.monotonic() - start
        received = len(probe.messages('/camera/image_raw/compressed')) - received
    finally:
        driver.stop()
        probe.close()
        shutil.rmtree(work)
    cores = (after.user + after.system - before.user - before.system) / elapsed
    print(f'camera_driver on the same picture at the file\'s 10 fps, {elapsed:.1f} s: {received / elapsed:.1f} '
          f'frames/s received on DDS, {cores:.3f} cores ({1e3 * cores * elapsed / max(received, 1):.1f} ms CPU '
          f'per frame, the node\'s executor and DDS included)')


def run_cell(channel: CameraChannel, duration: float, driver_env: dict[str, str] | None) -> dict[str, float]:
    """Run the cell for ``duration`` s; with the camera on, read its stream in-process and by a driver node."""
    runner = SimRunner(workcell(), camera_channels(**channel.__dict__), speed=1.0)
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, kwargs={'stop_event': stop}, name='sim')
    thread.start()
    while not runner.stats()['running']:
        time.sleep(0.05)
    process, latencies, driver, reader = psutil.Process(), [], None, None
    try:
        if runner.camera is not None:
            reader, stats = stream_reader(runner, latencies)
            if driver_env is not None:
                driver = NodeProcess(['camera_driver', '--ros-args', '--params-file',
                                      str(CONFIG / 'camera_driver.yaml'), '-p', f'url:={runner.camera.server.url}'],
                                     driver_env, Path(tempfile.mkdtemp()) / 'camera_driver.log')
        deadline = time.monotonic() + 60.0  # start-up: render process, driver process, first frames
        while runner.camera is not None and not latencies and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(3.0)
        before = runner.stats()
        delivered = len(latencies)
        renderers = [c for c in process.children() if 'spawn_main' in ' '.join(c.cmdline())]
        cpu = process.cpu_times()
        render_cpu = [c.cpu_times() for c in renderers]
        driver_cpu = psutil.Process(driver.process.pid).cpu_times() if driver else None
        start = time.monotonic()
        time.sleep(duration)
        elapsed = time.monotonic() - start
        after = runner.stats()
        render_cores = sum(sum(c.cpu_times()[:2]) - sum(t[:2]) for c, t in zip(renderers, render_cpu)) / elapsed
        result = {'cores': (sum(process.cpu_times()[:2]) - sum(cpu[:2])) / elapsed, 'render_cores': render_cores,
                  'late_events': after['late_events'] - before['late_events'],
                  'resyncs': after['resyncs'] - before['resyncs'], 'max_lag_ms': 1e3 * after['max_lag_s']}
        if driver is not None and driver_cpu is not None:
            now = psutil.Process(driver.process.pid).cpu_times()
            result['driver_cores'] = (now.user + now.system - driver_cpu.user - driver_cpu.system) / elapsed
        if runner.camera is not None:
            camera, first = after['channels']['camera'], before['channels']['camera']
            window = latencies[delivered:]
            result |= {key: camera[key] - first[key] for key in ('emitted', 'dropped', 'captured')}
            result |= {'delivered': len(window), 'render_ms': camera['render_ms'], 'encode_ms': camera['encode_ms'],
                       'latency_p50_ms': 1e3 * float(np.median(window)),
                       'latency_p99_ms': 1e3 * float(np.percentile(window, 99)),
                       'errors': sum(stats.errors.values())}
        return result
    finally:
        if driver is not None:
            driver.stop()
        if reader is not None:
            reader.stop()
        stop.set()
        thread.join(10.0)


def stream_reader(runner: SimRunner, latencies: list[float]) -> tuple[MjpegReader, DriverStats]:
    """The driver core reading the cell's stream; latency of each frame into ``latencies`` (s)."""
    assert runner.camera is not None
    config = CameraConfig(url=runner.camera.server.url)
    stats = DriverStats()
    stream = CameraStream(config, stats)
    workcell_ = runner.workcell

    def on_data(chunk: bytes, receive_ns: int) -> None:
        for frame in stream.feed(chunk, receive_ns * 1e-9):
            assert frame.device_time is not None
            shown = runner.wall_time_of(frame.device_time - workcell_.clock_skip)
            latencies.append(receive_ns * 1e-9 - shown)

    def on_state(connected: bool, detail: str) -> None:
        if connected:
            stream.reset(reader.boundary)

    reader = MjpegReader(config, on_data, on_state)
    reader.start()
    return reader, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--duration', type=float, default=20.0, help='seconds measured per live run')
    parser.add_argument('--frames', type=int, default=30, help='frames per row of the cost table')
    parser.add_argument('--rate', type=float, default=None, help='camera rate (default: config/workcell.yaml)')
    parser.add_argument('--width', type=int, default=None)
    parser.add_argument('--height', type=int, default=None)
    parser.add_argument('--fiducial-width', type=int, default=640, help='camera check frames: width (height 3/4)')
    parser.add_argument('--fiducial-seconds', type=float, default=16.0,
                        help='s of the nominal cycle the camera check runs on (one cycle: 8; 0: skip)')
    parser.add_argument('--check-period', type=float, default=0.2, help='s between frames of the camera check')
    parser.add_argument('--stuck', type=int, default=0, help='encoder_stuck runs for the camera alarm')
    parser.add_argument('--joint', default='joint_2', help='the stuck encoder\'s joint')
    parser.add_argument('--warmup', type=float, default=5.0, help='s simulated before the first onset')
    parser.add_argument('--spacing', type=float, default=0.37, help='s between the onsets across runs')
    parser.add_argument('--no-live', action='store_true', help='skip the live runs')
    parser.add_argument('--capture', type=float, default=0.0,
                        help='s per run of the OpenCV source on a video file (0: skip)')
    parser.add_argument('--live-check', type=float, default=0.0,
                        help='s of the camera check live on DDS against its baseline (0: skip)')
    args = parser.parse_args()
    width, height = args.fiducial_width, args.fiducial_width * 3 // 4
    if args.frames:
        cost_table(args.frames)
    if args.fiducial_seconds:
        fiducial_table(width, height, args.fiducial_seconds, args.check_period)
        check_cost(width, height, 20)
    if args.stuck:
        stuck_runs(width, height, args.check_period, args.stuck, args.joint, args.warmup, args.spacing, 5.0)
    env = dict(os.environ) | {'ROS_DOMAIN_ID': os.environ.get('ROS_DOMAIN_ID', '115'),
                              'FASTDDS_DEFAULT_PROFILES_FILE': str(CONFIG / 'fastdds_loopback.xml'),
                              'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST',
                              'ROS_LOG_DIR': tempfile.mkdtemp(), 'TWIN_DEAD_LETTERS': tempfile.mkdtemp()}
    if args.capture:
        capture_bench(args.capture, env)
    if args.live_check:
        live_check(args.live_check, env)
    if args.no_live:
        print(f'load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores')
        return
    configured = yaml.safe_load((CONFIG / 'workcell.yaml').read_text())['workcell_sim']['ros__parameters']
    channel = build(CameraChannel, configured['channels']['camera'], 'channels.camera')
    channel = replace(channel, enabled=True, port=0, **{key: value for key, value in
                      (('rate_hz', args.rate), ('width', args.width), ('height', args.height)) if value})
    print(f'\nlive, {args.duration:g} s each: camera {channel.width}x{channel.height} @ {channel.rate_hz:g} Hz, '
          f'shadows {channel.shadows}, reflections {channel.reflections}')
    baseline = run_cell(replace(channel, enabled=False), args.duration, None)
    live = run_cell(channel, args.duration, env)
    print(f'cell process, camera off: {baseline["cores"]:.3f} cores (late events {baseline["late_events"]}, '
          f'resyncs {baseline["resyncs"]})')
    print(f'cell process, camera on:  {live["cores"]:.3f} cores (late events {live["late_events"]}, '
          f'resyncs {live["resyncs"]}); camera + in-process reader: {live["cores"] - baseline["cores"]:.3f} cores')
    print(f'render process: {live["render_cores"]:.3f} cores')
    print(f'camera_driver process: {live.get("driver_cores", float("nan")):.3f} cores')
    print(f'frames captured {live["captured"]}, rendered {live["emitted"]}, dropped {live["dropped"]} '
          f'(renderer busy), delivered to the reader {live["delivered"]}, rejected {live["errors"]}')
    print(f'render {live["render_ms"]:.1f} ms + encode {live["encode_ms"]:.2f} ms per frame (mean, wall); '
          f'latency physics instant -> receipt p50 {live["latency_p50_ms"]:.1f} ms, '
          f'p99 {live["latency_p99_ms"]:.1f} ms')
    print(f'load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores')


if __name__ == '__main__':
    main()
