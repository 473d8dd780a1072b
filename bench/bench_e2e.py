"""End-to-end benchmark of the data path over DDS: simulator → drivers → sync → twin state.

Starts the whole graph (``twin_launch`` on a private copy of config/, its own DDS domain, the
loopback-only profile), lets it warm up, then records for a while:

* latency of the twin's outputs: receive time minus header stamp (the stamp is the sensor instant,
  mapped from the device clock), for /twin/live/joint_states (the live mirror of each encoder
  sample) and /twin/joint_states (aligned); the synchronizer's timeline lags by its configured
  ``delay`` on purpose, so the table also shows the aligned state's latency net of that delay.
  The simulator shares the machine: when the load holds it up it sends samples late, which a device
  on its own hardware does not. It logs when each step was due and how late it ran (its
  ``pacing_log``), and a second table gives every latency less that lateness: what the twin adds;
  ``--tap-inputs`` also records /imu/data, /encoders/joint_states, /scan and /twin/synced_frame
  (each tap is one more reader every message is sent to: it costs the graph CPU);
* the baseline measured in the same run: one DDS hop of sensor_msgs/Imu at 1 kHz between two
  plain rclpy processes (the floor any stage pays);
* messages delivered against published per sensor topic: what each driver counted as published
  (its /diagnostics ``messages``, interpolated to the synchronizer's report times) against what the
  synchronizer counted as received (the sum of its per-input ``rate_hz`` reports) and, with
  ``--tap-inputs``, what the bench's own best-effort recorder received over the same interval;
* CPU of every process of the graph (cores, from /proc via psutil): per node where each node has
  its own process, per container (``twin_container``) otherwise;
* with ``--camera on``, the cell camera as well (docs/camera.md: the simulator's camera, camera_driver,
  camera_check): images delivered against rendered and their latency (receive time minus the
  instant the image shows), the camera check's frames judged, its image discrepancy and its alarms
  (on a nominal run every alarm is a false one).

The graph runs once per executor (``--executors``, default both: the twin's lean executor, then
rclpy's SingleThreadedExecutor) and per process layout (``--layouts``: one process per node, all of
the twin's nodes in one container, or groupings between), interleaved ``--repeat`` times in the same
run (A, B, A, B): on a shared machine only ratios within one run count. A summary ends the run.

    python bench/bench_e2e.py --warmup 8 --duration 20
    python bench/bench_e2e.py --executors lean --layouts separate composed tiers --repeat 2
    python bench/bench_e2e.py --executors lean --camera off on --repeat 2
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import rclpy
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Imu, JointState, LaserScan

from twin_bringup.launcher import node_environment
from twin_core.cdr import header_stamp_ns
from twin_interfaces.msg import CameraDiscrepancy, SyncedFrame
from twin_ros.executor import CHOICES, LeanExecutor

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'test'))
from sandbox import enable_camera, isolated_config  # noqa: E402

SIMULATOR = {'workcell_sim', '-m'}  # '-m': the launcher's watchdog
OUTPUTS = {'/twin/live/joint_states': JointState, '/twin/joint_states': JointState}
# Stages tapped on request only: each subscription adds a reader every message of the graph's
# publisher is sent to (about 40 µs of the driver's CPU per IMU message), which the twin alone does not pay.
INPUT_STAGES = {'/imu/data': Imu, '/encoders/joint_states': JointState, '/twin/synced_frame': SyncedFrame}
# Sensor topics: the driver publishing each (its diagnostics count them) and the synchronizer's input name.
SENSORS = {'/imu/data': ('imu_driver', 'imu/data'), '/scan': ('lidar_driver', 'scan'),
           '/encoders/joint_states': ('encoder_driver', 'encoders/joint_states')}
ANALYTICS = ('anomaly_detector', 'maintenance_planner', 'predictor')
DRIVERS = ('imu_driver', 'encoder_driver', 'lidar_driver', 'plan_driver', 'plc_driver', 'camera_driver')
IMAGES, DISCREPANCY = '/camera/image_raw/compressed', '/twin/camera/discrepancy'


def layout_process(layout: str, node: str) -> str:
    """The ``process`` a twin node gets in ``layout`` ('' = its own process)."""
    if layout == 'separate':
        return ''
    if layout == 'composed':
        return 'twin'
    if layout == 'tiers':  # drivers | synchronizer and state | analytics, actuation, health
        return 'drivers' if node in DRIVERS else 'core' if node in ('twin_sync', 'twin_state') else 'analytics'
    if layout == 'pipeline':  # analytics | the rest
        return 'analytics' if node in ANALYTICS else 'pipeline'
    if layout == 'sync_apart':  # the synchronizer alone (it keeps its batch period), the rest together
        return '' if node == 'twin_sync' else 'twin'
    raise ValueError(layout)


LAYOUTS = ('graph', 'separate', 'composed', 'tiers', 'pipeline', 'sync_apart')  # graph: as config/graph.yaml says
RAW_PUBLISHER = '''
import sys, time, rclpy
from sensor_msgs.msg import Imu

rclpy.init()
node = rclpy.create_node('raw_imu_publisher')
pub = node.create_publisher(Imu, '/bench/raw_imu', 100)
period, deadline = 0.001, time.monotonic() + float(sys.argv[1])
next_due = time.monotonic()
while time.monotonic() < deadline:
    message = Imu()
    message.header.stamp = node.get_clock().now().to_msg()
    pub.publish(message)
    next_due += period
    time.sleep(max(0.0, next_due - time.monotonic()))
node.destroy_node()
rclpy.shutdown()
'''


class Recorder:
    """Receive time minus stamp, per topic, from an rclpy node spinning in a thread.

    Stamps are read from the serialized messages (raw subscriptions) and the node spins on the
    twin's lean executor, so that the instrument costs the machine as little as it can: with
    rclpy messages and its default executor it took about a third of a core at these rates.
    """

    def __init__(self, domain_id: int) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node('bench_recorder', context=self.context)
        self.executor = LeanExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.latencies: dict[str, list[float]] = defaultdict(list)  # s
        self.received: dict[str, list[float]] = defaultdict(list)  # receive times
        self.messages: dict[str, list] = defaultdict(list)  # topics recorded as messages
        self.recording = False
        self.thread = threading.Thread(target=self._spin, daemon=True)

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except rclpy.executors.ExternalShutdownException:
            pass

    def subscribe(self, topic: str, msg_type: type, qos, keep: bool = False) -> None:
        """Record the topic's latencies, or its messages (``keep``, and always /diagnostics)."""
        received, latencies = self.received[topic], self.latencies[topic]

        def record(data: bytes) -> None:
            if self.recording:
                now_ns = time.time_ns()
                received.append(now_ns * 1e-9)
                latencies.append((now_ns - header_stamp_ns(data)) * 1e-9)

        def record_message(message) -> None:
            if self.recording:
                received.append(time.time())
                self.messages[topic].append(message)
        if keep or msg_type is DiagnosticArray:
            self.node.create_subscription(msg_type, topic, record_message, qos)
        else:
            self.node.create_subscription(msg_type, topic, record, qos, raw=True)

    def close(self) -> None:
        self.context.try_shutdown()
        self.thread.join(timeout=5.0)
        self.executor.shutdown(timeout_sec=5.0)
        self.node.destroy_node()


def set_parameter(config: Path, filename: str, node: str, keys: tuple[str, ...], value: Any) -> None:
    """Set one (nested) parameter of ``node`` in the parameter file ``filename``."""
    document = yaml.safe_load((config / filename).read_text())
    section = document[node]['ros__parameters']
    for key in keys[:-1]:
        section = section[key]
    section[keys[-1]] = value
    (config / filename).write_text(yaml.safe_dump(document))


def set_imu_rate(config: Path, rate_hz: float) -> None:
    """The simulated IMU's output rate, and the driver's noise model to match."""
    set_parameter(config, 'workcell.yaml', 'workcell_sim', ('channels', 'imu', 'rate_hz'), rate_hz)
    set_parameter(config, 'imu_driver.yaml', 'imu_driver', ('noise', 'rate_hz'), rate_hz)


def device_lateness(pacing: np.ndarray, received: list[float], latencies: list[float]) -> np.ndarray:
    """Per message, how late the simulator ran when the sample it carries was due (s): the
    simulator's pacing log (rows: due time, lag) read at the message's stamp.
    """
    stamps = np.asarray(received) - np.asarray(latencies)
    return np.interp(stamps, pacing[:, 0], pacing[:, 1]) if len(pacing) else np.zeros(len(stamps))


def apply_layout(config: Path, layout: str) -> None:
    """Set the ``process`` of every twin node of the node table as ``layout`` groups them."""
    if layout == 'graph':
        return
    document = yaml.safe_load((config / 'graph.yaml').read_text())
    for entry in document['nodes']:
        entry.pop('process', None)
        process = layout_process(layout, entry['name']) if entry.get('role', 'twin') in ('twin', 'device') else ''
        if process:
            entry['process'] = process
    (config / 'graph.yaml').write_text(yaml.safe_dump(document, sort_keys=False))


def process_label(command: list[str]) -> str:
    """A node's executable, or a container's node modules (``sync_node+state_node``)."""
    name = Path(command[1]).name
    if name != 'twin_container':
        return name
    modules = command[2:command.index('--ros-args')] if '--ros-args' in command else command[2:]
    return '+'.join(module.rpartition('.')[2] for module in modules)


def graph_cpu(launcher: psutil.Process) -> dict[tuple[str, int], float]:
    """CPU seconds used so far by each process of the graph and by the processes those started
    (the simulated camera's renderer: ``workcell_sim (subprocess)``), keyed by (label, pid):
    robots of a fleet run the same executables.
    """
    usage = {}
    for child in launcher.children():
        try:
            label = process_label(child.cmdline())
            for process in (child, *child.children(recursive=True)):
                times = process.cpu_times()
                usage[(label if process is child else f'{label} (subprocess)', process.pid)] = times.user + times.system
        except (psutil.NoSuchProcess, IndexError):
            continue
    return usage


def simulated(label: str) -> bool:
    """Whether a process of :func:`graph_cpu` is the simulator's (or the launcher's watchdog)."""
    return label.partition(' ')[0] in SIMULATOR


def delivery(diagnostics: list[DiagnosticArray], received: dict[str, list[float]],
             sensors: dict[str, tuple[str, str]] = SENSORS) -> tuple[dict[str, tuple[float, float, int]], float]:
    """Per sensor topic of ``sensors`` (topic -> the status that counts its published ``messages``,
    by node name or full status name, and the synchronizer's input name): (published, received by
    the synchronizer, received by the recorder: ``received`` arrival times) between the first and
    the last synchronizer report; the seconds between. Reports are placed at their header stamps
    (when they were published), the published count interpolated to the synchronizer's that fall
    within its own.
    """
    publishers = {publisher for publisher, _ in sensors.values()}
    published: dict[str, list[tuple[float, float]]] = defaultdict(list)  # publisher -> (time, messages)
    synced: dict[str, list[tuple[float, float]]] = defaultdict(list)  # input -> (time, received since last)
    for array in diagnostics:
        published_at = array.header.stamp.sec + array.header.stamp.nanosec * 1e-9  # not delayed by a busy recorder
        for entry in array.status:
            node, _, component = entry.name.partition(': ')
            values = {kv.key: kv.value for kv in entry.values}
            publisher = entry.name if entry.name in publishers else node
            if publisher in publishers and 'messages' in values:
                published[publisher].append((published_at, float(values['messages'])))
            elif node == 'twin_sync' and 'rate_hz' in values:
                synced[component].append((published_at, float(values['rate_hz'])))
    counts, span = {}, 0.0
    for topic, (publisher, name) in sensors.items():
        reports, counted = synced.get(name, []), published.get(publisher, [])
        if len(reports) < 2 or len(counted) < 2:
            continue
        times, totals = np.array(counted).T
        # the synchronizer's reports within the publisher's (interpolated there, never extrapolated)
        inside = [(at, rate) for at, rate in reports if times[0] <= at <= times[-1]]
        if len(inside) < 2:
            continue
        start, end = inside[0][0], inside[-1][0]
        span = end - start
        sent = float(np.interp(end, times, totals) - np.interp(start, times, totals))
        arrivals = np.asarray(received.get(topic, []))
        counts[topic] = (sent, sum(rate for _, rate in inside[1:]),
                         int(((arrivals > start) & (arrivals <= end)).sum()))
    return counts, span


def counter_change(diagnostics: list[DiagnosticArray], name: str, key: str) -> float:
    """How much the counter ``key`` of a status grew over the recording (nan: fewer than two
    reports); ``name`` is the status's full name or its node's.
    """
    reports = [float(kv.value) for array in diagnostics for entry in array.status
               if name in (entry.name, entry.name.partition(': ')[0]) for kv in entry.values if kv.key == key]
    return reports[-1] - reports[0] if len(reports) >= 2 else float('nan')


def camera_results(recorder: Recorder, elapsed: float, rate: float) -> dict[str, float]:
    """Print the camera's delivery, latency and check; return their summary."""
    diagnostics = recorder.messages['/diagnostics']
    rendered = counter_change(diagnostics, 'workcell_sim: camera channel', 'emitted')
    dropped = counter_change(diagnostics, 'workcell_sim: camera channel', 'dropped')
    published = counter_change(diagnostics, 'camera_driver', 'messages')
    frames, judged, alarms = (counter_change(diagnostics, 'camera_check: camera', key)
                              for key in ('frames', 'judged', 'alarms'))
    print(row(IMAGES, recorder.latencies[IMAGES], elapsed, rate))
    print(f'camera: {rendered:.0f} images rendered and served ({dropped:.0f} views dropped), {published:.0f} '
          f'published by camera_driver, {len(recorder.latencies[IMAGES])} received here; camera_check: '
          f'{frames:.0f} frames, {judged:.0f} judged, {alarms:.0f} alarms')
    image_mm = np.asarray([m.image_mm for m in recorder.messages[DISCREPANCY]] or [np.nan])
    print(f'image discrepancy (mm at the tool plate): mean {np.nanmean(image_mm):.2f}, '
          f'p95 {np.nanpercentile(image_mm, 95):.2f}, max {np.nanmax(image_mm):.2f} over {image_mm.size} frames')
    images = np.asarray(recorder.latencies[IMAGES] or [np.nan]) * 1e3
    return {'camera fps': len(recorder.latencies[IMAGES]) / elapsed, 'camera p99 ms': float(np.percentile(images, 99)),
            'camera judged': judged, 'camera alarms': alarms,
            'discrepancy p95 mm': float(np.nanpercentile(image_mm, 95))}


def row(name: str, values: list[float], duration: float, rated: float) -> str:
    if not values:
        return f'{name:34s} {rated:8.0f} {"no messages":>10s}'
    ms = np.asarray(values) * 1e3
    return (f'{name:34s} {rated:8.0f} {len(values) / duration:8.1f} {np.percentile(ms, 50):8.2f} '
            f'{np.percentile(ms, 99):8.2f} {ms.max():8.2f}')


def run_graph(args: argparse.Namespace, executor: str, layout: str, camera: bool) -> dict[str, float]:
    """Start the graph with the given executor, layout and camera, record, print its tables;
    return the summary (twin cores, processes, sensor delivery, live and aligned latency, camera).
    """
    domain = random.randint(1, 101)
    os.environ['ROS_DOMAIN_ID'] = str(domain)
    workdir = Path(tempfile.mkdtemp(prefix='bench_e2e_'))
    config = isolated_config(workdir)
    set_imu_rate(config, args.imu_rate)
    pacing_log = workdir / 'pacing'
    set_parameter(config, 'workcell.yaml', 'workcell_sim', ('pacing_log',), str(pacing_log))
    if camera:
        enable_camera(config)
    apply_layout(config, layout)
    env = node_environment(str(config / 'fastdds_loopback.xml'))
    env['ROS_LOG_DIR'] = str(workdir / 'ros_log')
    env['TWIN_EXECUTOR'] = executor
    os.environ.update({k: env[k] for k in ('FASTDDS_DEFAULT_PROFILES_FILE', 'RMW_IMPLEMENTATION')})
    delay = yaml.safe_load((config / 'sync.yaml').read_text())['twin_sync']['ros__parameters']['delay']

    stages = {**INPUT_STAGES, **OUTPUTS} if args.tap_inputs else OUTPUTS
    recorder = Recorder(domain)
    for topic, msg_type in stages.items():
        recorder.subscribe(topic, msg_type, qos_profile_sensor_data)
    if args.tap_inputs:
        recorder.subscribe('/scan', LaserScan, qos_profile_sensor_data)
    recorder.subscribe('/diagnostics', DiagnosticArray, 100)
    recorder.subscribe('/bench/raw_imu', Imu, 100)
    if camera:
        recorder.subscribe(IMAGES, CompressedImage, qos_profile_sensor_data)
        recorder.subscribe(DISCREPANCY, CameraDiscrepancy, 10, keep=True)
    recorder.thread.start()

    log = open(workdir / 'launch.log', 'w')
    launcher = subprocess.Popen([sys.executable, '-m', 'twin_bringup.launcher', '--config-dir', str(config)],
                                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        time.sleep(args.warmup)
        if launcher.poll() is not None:  # refused (a port in use, a configuration error): nothing to measure
            print(f'\nexecutor {executor}, layout {layout}: twin_launch exited with code {launcher.returncode}: '
                  f'{(workdir / "launch.log").read_text().strip()}')
            return {}
        raw = subprocess.Popen([sys.executable, '-c', RAW_PUBLISHER, str(args.duration)], env=env)
        parent = psutil.Process(launcher.pid)
        cpu_before, wall_before = graph_cpu(parent), time.monotonic()
        recorder.recording = True
        time.sleep(args.duration)
        recorder.recording = False
        cpu_after, elapsed = graph_cpu(parent), time.monotonic() - wall_before
        raw.wait(timeout=30)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, 2)
        launcher.wait(timeout=30)
        recorder.close()

    processes = sum(not simulated(key[0]) for key in cpu_after)
    print(f'\nexecutor {executor}, layout {layout}, camera {"on" if camera else "off"}: {processes} twin processes, '
          f'IMU {args.imu_rate:g} Hz, '
          f'domain {domain}, recorded {elapsed:.1f} s after {args.warmup:.0f} s warm-up; {os.cpu_count()} cores, '
          f'load {os.getloadavg()[0]:.1f}')
    print(f'{"stage (receive time - stamp)":34s} {"rated":>8s} {"msg/s":>8s} {"p50 ms":>8s} {"p99 ms":>8s} '
          f'{"max ms":>8s}')
    rated = {'/imu/data': args.imu_rate, '/encoders/joint_states': 500.0, '/twin/live/joint_states': 500.0,
             '/twin/synced_frame': 100.0, '/twin/joint_states': 100.0, '/bench/raw_imu': 1000.0}
    print(row('baseline: one DDS hop, Imu 1 kHz', recorder.latencies['/bench/raw_imu'], elapsed, 1000.0))
    for topic in stages:
        print(row(topic, recorder.latencies[topic], elapsed, rated[topic]))
    net = [v - delay for v in recorder.latencies['/twin/joint_states']]
    print(row(f'/twin/joint_states - {delay * 1e3:.0f} ms delay', net, elapsed, 100.0))
    counts, span = delivery(recorder.messages['/diagnostics'], recorder.received)
    tapped = f' {"to bench":>10s}' if args.tap_inputs else ''
    print(f'{"sensor topic":34s} {"published":>10s} {"to sync":>10s}{tapped}')
    for topic, (sent, synced, benched) in counts.items():
        print(f'{topic:34s} {sent:10.0f} {synced:10.0f}' + (f' {benched:10d}' if args.tap_inputs else ''))
    print(f'{"process":34s} {"cores":>8s}')
    twin = 0.0
    for key in sorted(cpu_after):
        cores = (cpu_after[key] - cpu_before.get(key, 0.0)) / elapsed
        twin += cores if not simulated(key[0]) else 0.0
        print(f'{key[0]:34s} {cores:8.3f}')
    total = sum(cpu_after[n] - cpu_before.get(n, 0.0) for n in cpu_after) / elapsed
    print(f'{"twin (every node but the simulator)":34s} {twin:8.3f}')
    print(f'{"total":34s} {total:8.3f}')
    resyncs, late = (counter_change(recorder.messages['/diagnostics'], 'workcell_sim: physics', key)
                     for key in ('resyncs', 'late_events'))
    print(f'simulator: {resyncs:.0f} skips ahead (more than its max lag behind the wall clock), {late:.0f} late steps')
    pacing = np.fromfile(pacing_log, dtype='<f8').reshape(-1, 2)
    pacing = pacing[np.argsort(pacing[:, 0])]
    live = np.asarray(recorder.latencies['/twin/live/joint_states'] or [np.nan]) * 1e3
    aligned = np.asarray(net or [np.nan]) * 1e3
    net_of_device = print_net_of_device(recorder, stages, pacing, delay, elapsed, rated)
    # CPU per sensor message the synchronizer took: comparable when a loaded machine starves a layout.
    synced_rate = sum(synced for _, synced, _ in counts.values()) / span if span else float('nan')
    summary = {'twin cores': twin, 'processes': processes, 'twin us/input': 1e6 * twin / synced_rate,
            **{f'{topic.split("/")[1]} to sync %': 100.0 * synced / sent
               for topic, (sent, synced, _) in counts.items() if sent},
            'live p50 ms': float(np.percentile(live, 50)), 'live p99 ms': float(np.percentile(live, 99)),
            'aligned p50 ms': float(np.percentile(aligned, 50)), 'aligned p99 ms': float(np.percentile(aligned, 99)),
            'sim skips ahead': resyncs, **net_of_device}
    if camera:
        workcell = yaml.safe_load((config / 'workcell.yaml').read_text())['workcell_sim']['ros__parameters']
        summary |= camera_results(recorder, elapsed, workcell['channels']['camera']['rate_hz'])
    return summary


def print_net_of_device(recorder: Recorder, stages: dict[str, type], pacing: np.ndarray, delay: float,
                        elapsed: float, rated: dict[str, float]) -> dict[str, float]:
    """Print the latencies again, less how late the simulated device sent each sample; return the
    live and aligned p99 so measured and the simulator's own p99 lag over the recording.

    The simulator shares the machine with the twin: when the twin's load holds its physics thread
    up, it sends samples late, and the receive time minus stamp counts that too. A device on its
    own hardware sends on time, so this is the latency the twin itself adds.
    """
    live = recorder.received['/twin/live/joint_states']
    window = (pacing[:, 0] >= min(live, default=0.0)) & (pacing[:, 0] <= max(live, default=0.0))
    lag_ms = pacing[window, 1] * 1e3 if window.any() else np.array([np.nan])
    print(f'simulator lag when a step was due, over the recording: p50 {np.percentile(lag_ms, 50):.2f} ms, '
          f'p99 {np.percentile(lag_ms, 99):.2f} ms, max {lag_ms.max():.2f} ms; the same stages less it:')
    results = {'sim lag p99 ms': float(np.percentile(lag_ms, 99))}
    for topic in stages:
        received, latencies = recorder.received[topic], recorder.latencies[topic]
        net = np.asarray(latencies) - device_lateness(pacing, received, latencies)
        if topic == '/twin/joint_states':
            topic, net = f'/twin/joint_states - {delay * 1e3:.0f} ms delay', net - delay
            results['aligned net p99 ms'] = float(np.percentile(net, 99)) * 1e3 if len(net) else np.nan
        if topic == '/twin/live/joint_states':
            results['live net p99 ms'] = float(np.percentile(net, 99)) * 1e3 if len(net) else np.nan
        print(row(topic, list(net), elapsed, rated[topic.split(' ')[0]]))
    return results


def print_summary(results: list[tuple[str, dict[str, float]]]) -> None:
    """One row per run, in the order run (aligned latency net of the timeline's delay)."""
    columns = list(dict.fromkeys(key for _, summary in results for key in summary))
    print('\nsummary (aligned = /twin/joint_states net of the timeline delay)')
    widths = [max(16, len(c)) for c in columns]
    print(f'{"run":24s} ' + ' '.join(f'{c:>{w}s}' for c, w in zip(columns, widths)))
    for name, summary in results:
        print(f'{name:24s} ' + ' '.join(f'{summary.get(c, float("nan")):{w}.3f}' for c, w in zip(columns, widths)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--warmup', type=float, default=8.0)
    parser.add_argument('--duration', type=float, default=20.0)
    parser.add_argument('--imu-rate', type=float, default=1000.0, help='IMU output rate (Hz)')
    parser.add_argument('--executors', nargs='+', choices=CHOICES, default=list(CHOICES),
                        help='run the graph once per executor, one after the other')
    parser.add_argument('--layouts', nargs='+', choices=LAYOUTS, default=['graph'],
                        help='process layouts: graph (config/graph.yaml), separate (one process per node), '
                             'composed (the twin in one container), tiers (drivers | sync and state | the '
                             'rest), sync_apart (the synchronizer alone, the rest in one container)')
    parser.add_argument('--tap-inputs', action='store_true',
                        help='also record the sensor topics and the synced frame (adds readers to the graph)')
    parser.add_argument('--camera', nargs='+', choices=('off', 'on'), default=['off'],
                        help='run without and/or with the cell camera, its driver and its check')
    parser.add_argument('--repeat', type=int, default=1, help='run every layout and executor this many times, '
                                                              'interleaved')
    args = parser.parse_args()
    results = [(f'{layout}/{executor}{"/camera" if camera == "on" else ""} #{round_ + 1}',
                run_graph(args, executor, layout, camera == 'on'))
               for round_ in range(args.repeat) for layout in args.layouts for executor in args.executors
               for camera in args.camera]
    print_summary(results)


if __name__ == '__main__':
    main()
