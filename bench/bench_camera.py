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
* fiducials: frames rendered along one task cycle at ``--fiducial-width`` × height; the tool
  marker's pose from cv2.aruco + solvePnP with the simulated camera's calibration, against the
  ground truth: in the camera frame, and relative to the floor marker beside the base (what a
  real cell, whose camera pose is not known exactly, would use).
Run: ``python bench/bench_camera.py [--duration 20] [--rate 5] [--width 320 --height 240]``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import psutil
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'test'))
from camera_cell import CONFIG, camera_channels, workcell  # noqa: E402
from harness import NodeProcess  # noqa: E402
from twin_core.config import build  # noqa: E402
from twin_sensors.camera import CameraConfig, CameraStream, MjpegReader  # noqa: E402
from twin_sensors.fiducials import FiducialDetector  # noqa: E402
from twin_sensors.stats import DriverStats  # noqa: E402
from twin_sim.camera import CameraChannel, FrameRenderer, calibration, marker_in_world, optical_frame  # noqa: E402
from twin_sim.model import MARKERS  # noqa: E402
from twin_sim.runner import SimRunner  # noqa: E402

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


def fiducial_errors(width: int, height: int, frames: int, period: float) -> dict[str, list[float]]:
    """Tool marker pose errors over ``frames`` frames ``period`` s apart (lists: one value per detection)."""
    cell = workcell()
    renderer = FrameRenderer(cell.model, CameraChannel(width=width, height=height))
    detector = FiducialDetector(calibration(cell.model, width, height), {m[0]: m[-1] for m in MARKERS})
    errors: dict[str, list[float]] = {'camera_mm': [], 'camera_deg': [], 'base_mm': [], 'base_deg': [],
                                      'reprojection_px': []}
    try:
        for _ in range(frames):
            view = cell.camera_view()
            assert view is not None
            found = {pose.marker_id: pose for pose in detector.detect(renderer.render(view))}
            if 1 in found:
                camera_position, camera_axes = optical_frame(cell.model, cell.data)
                tool, tool_axes = marker_in_world(cell.model, cell.data, 1)
                estimate = camera_position + camera_axes @ found[1].position
                errors['camera_mm'].append(1e3 * float(np.linalg.norm(estimate - tool)))
                errors['camera_deg'].append(angle(camera_axes @ found[1].rotation[:, 2], tool_axes[:, 2]))
                errors['reprojection_px'].append(found[1].reprojection_px)
                if 0 in found:  # the tool in the base marker's frame, estimated and true
                    base, base_axes = marker_in_world(cell.model, cell.data, 0)
                    relative = found[0].rotation.T @ (found[1].position - found[0].position)
                    errors['base_mm'].append(1e3 * float(np.linalg.norm(relative - base_axes.T @ (tool - base))))
                    errors['base_deg'].append(angle(found[0].rotation.T @ found[1].rotation[:, 2],
                                                    base_axes.T @ tool_axes[:, 2]))
            cell.step(round(period / cell.settings.timestep))
    finally:
        renderer.close()
    return errors


def angle(a: np.ndarray, b: np.ndarray) -> float:
    """Degrees between two unit vectors."""
    return float(np.degrees(np.arccos(np.clip(a @ b, -1.0, 1.0))))


def fiducial_table(width: int, height: int, frames: int) -> None:
    errors = fiducial_errors(width, height, frames, period=0.25)
    print(f'\nfiducials at {width}x{height}, {frames} frames 0.25 s apart: tool marker found in '
          f'{len(errors["camera_mm"])}, with the base marker in {len(errors["base_mm"])}')
    for key in ('camera_mm', 'camera_deg', 'base_mm', 'base_deg', 'reprojection_px'):
        if errors[key]:
            values = np.array(errors[key])
            print(f'  {key:>16}: median {np.median(values):7.2f}, p95 {np.percentile(values, 95):7.2f}, '
                  f'max {values.max():7.2f}')


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
    parser.add_argument('--fiducial-width', type=int, default=640, help='fiducial frames: width (height 3/4)')
    parser.add_argument('--fiducial-frames', type=int, default=40, help='fiducial frames (one cycle: 40)')
    args = parser.parse_args()
    if args.frames:
        cost_table(args.frames)
    if args.fiducial_frames:
        fiducial_table(args.fiducial_width, args.fiducial_width * 3 // 4, args.fiducial_frames)
    configured = yaml.safe_load((CONFIG / 'workcell.yaml').read_text())['workcell_sim']['ros__parameters']
    channel = build(CameraChannel, configured['channels']['camera'], 'channels.camera')
    channel = replace(channel, enabled=True, port=0, **{key: value for key, value in
                      (('rate_hz', args.rate), ('width', args.width), ('height', args.height)) if value})
    env = dict(os.environ) | {'ROS_DOMAIN_ID': os.environ.get('ROS_DOMAIN_ID', '115'),
                              'FASTDDS_DEFAULT_PROFILES_FILE': str(CONFIG / 'fastdds_loopback.xml'),
                              'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST',
                              'ROS_LOG_DIR': tempfile.mkdtemp(), 'TWIN_DEAD_LETTERS': tempfile.mkdtemp()}
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
