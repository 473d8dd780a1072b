"""Real-time loop of the simulated workcell: paces physics to the wall clock and drives the channels."""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import queue
import select
import struct
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from twin_sim.camera import SimCamera
from twin_sim.hardware import ChannelsConfig, CommandServer, Emitter, build_emitters
from twin_sim.plc import PlcServer, PlcState

_log = logging.getLogger(__name__)

TRUTH_PERIOD = 0.01  # s of simulated time between truth snapshots for other threads
RATE_WINDOW = 1.0  # s of wall time over which channel rates are measured
EARLY_WAKE = 1e-4  # s; closer deadlines are served without sleeping
STEP_TOLERANCE = 1e-3  # fraction of a timestep below which a deadline counts as reached
PACING_RECORD = struct.Struct('<dd')  # a paced step: system-clock time it was due (s), lag (s)


@dataclass
class _Task:
    """A periodic action in simulated time."""

    period: float
    action: Callable[[], None]
    due: float = 0.0


def epoch_of(instant: float) -> float:
    """The system-clock time of the ``time.monotonic()`` reading ``instant``.

    The two clocks are read back to back, again if a thread switch (GIL hand-over, ~5 ms) fell
    between the readings: a mapping made across one would shift every stamp by as much.
    """
    while True:
        before = time.monotonic()
        epoch = time.time()
        after = time.monotonic()
        if after - before < 1e-4:
            return epoch - (0.5 * (before + after) - instant)


class SimRunner:
    """Steps a Workcell in real time (× ``speed``; ≤ 0 or inf: as fast as possible) and serves its channels.

    ``run`` blocks in the calling thread (the simulation thread); every other method is
    thread-safe. Calls into the Workcell from other threads go through ``submit``.
    """

    def __init__(self, workcell: Any, channels: ChannelsConfig, speed: float = 1.0,
                 late_tolerance: float = 0.002, max_lag: float = 0.25, pacing_log: Path | None = None) -> None:
        self.workcell = workcell
        self.channels = channels
        self.speed = speed if 0.0 < speed < math.inf else math.inf
        self.late_tolerance = late_tolerance
        self.max_lag = max_lag
        self.pacing_log = pacing_log
        self._pacing_file: BinaryIO | None = None
        self.emitters: list[Emitter] = build_emitters(channels)
        self.command_server = CommandServer(channels.command) if channels.command.enabled else None
        self.plc = PlcServer(channels.plc, workcell.joint_names) if channels.plc.enabled else None
        self.camera = SimCamera(channels.camera, workcell.model) if channels.camera.enabled else None
        self._calls: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running = False
        self._truth = workcell.truth()
        self._stats: dict[str, Any] = {"steps": 0, "late_events": 0, "resyncs": 0, "max_lag_s": 0.0, "lag_s": 0.0,
                                       "plc_published": 0, "real_time_factor": math.nan}
        self._rates: dict[str, float] = {}
        self._extra_tasks: list[_Task] = []
        self._pacing = (math.nan, 0.0)  # (system-clock time, simulated time) of the pacing origin

    # ----------------------------------------------------------------- thread-safe accessors

    def truth(self) -> Any:
        """The latest ground-truth snapshot (refreshed every 10 ms of simulated time)."""
        return self._truth

    def submit(self, function: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run ``function(*args)`` in the simulation thread between steps (inline if not running)."""
        future: Future[Any] = Future()
        with self._lock:
            if self._running:
                self._calls.put((future, function, args))
                return future
            _call_into(future, function, args)
        return future

    def inject_fault(self, fault: Any) -> Future[Any]:
        """Forward ``fault`` to ``Workcell.inject_fault`` in the simulation thread."""
        return self.submit(self.workcell.inject_fault, fault)

    def wall_time_of(self, sim_time: float) -> float:
        """The system-clock time (s since the epoch) at which the paced run reaches ``sim_time``.

        Stamps ground truth with the instant it describes rather than when it was published.
        Unpaced runs have no such mapping: they return the current time.
        """
        epoch_origin, sim_origin = self._pacing
        if self.speed == math.inf or math.isnan(epoch_origin):
            return time.time()
        return epoch_origin + (sim_time - sim_origin) / self.speed

    def every(self, period: float, action: Callable[[], None]) -> None:
        """Call ``action`` in the simulation thread every ``period`` s of simulated time."""
        self._extra_tasks.append(_Task(period, action))

    def stats(self) -> dict[str, Any]:
        """Loop and channel statistics, suitable for a diagnostics message."""
        with self._lock:
            stats = dict(self._stats)
            rates = dict(self._rates)
        stats |= {"running": self._running, "speed": self.speed, "sim_time": self._truth.time}
        channels: dict[str, dict[str, Any]] = {
            e.name: {"target_hz": 1.0 / e.period, "rate_hz": rates.get(e.name, math.nan)} | e.counters()
            for e in self.emitters}
        if self.command_server is not None:
            channels["command"] = self.command_server.counters()
        if self.camera is not None:
            channels["camera"] = {"target_hz": 1.0 / self.camera.period,
                                  "rate_hz": rates.get("camera", math.nan)} | self.camera.counters()
        if self.plc is not None:
            channels["plc"] = {"published": stats.pop("plc_published"), "rejected_writes": self.plc.rejected_writes}
        else:
            stats.pop("plc_published")
        return stats | {"channels": channels}

    # ----------------------------------------------------------------- simulation thread

    def run(self, duration: float | None = None, stop_event: threading.Event | None = None) -> None:
        """Simulate ``duration`` s (None: until ``stop_event`` is set) with all channels open."""
        stop_event = stop_event or threading.Event()
        with self._channels_open():
            with self._lock:
                self._running = True
            try:
                self._loop(math.inf if duration is None else duration, stop_event)
            finally:
                with self._lock:
                    self._running = False
                self._serve_calls()

    @contextlib.contextmanager
    def _channels_open(self) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            if self.plc is not None:
                self.plc.start()
                stack.callback(self.plc.stop)
            for endpoint in [*self.emitters, self.command_server, self.camera]:
                if endpoint is not None:
                    endpoint.open()
                    stack.callback(endpoint.close)
            if self.pacing_log is not None:
                self._pacing_file = stack.enter_context(open(self.pacing_log, 'ab', buffering=0))
                stack.callback(setattr, self, '_pacing_file', None)
            yield

    def _tasks(self) -> list[_Task]:
        tasks = [_Task(e.period, functools.partial(e.emit, self.workcell)) for e in self.emitters]
        tasks.append(_Task(TRUTH_PERIOD, self._refresh_truth))
        tasks.extend(self._extra_tasks)
        if self.plc is not None:
            tasks.append(_Task(1.0 / self.channels.plc.publish_rate_hz, self._publish_plc))
        if self.camera is not None:
            camera = self.camera
            tasks.append(_Task(camera.period, lambda: camera.capture(self.workcell.camera_view())))
        return tasks

    def _loop(self, duration: float, stop_event: threading.Event) -> None:
        workcell = self.workcell
        timestep = self._measure_timestep()
        tasks = self._tasks()
        end = workcell.time + duration
        for task in tasks:
            task.due = workcell.time
        wall_origin, sim_origin = time.monotonic(), workcell.time
        self._pacing = (epoch_of(wall_origin), sim_origin)
        window = (wall_origin, sim_origin, self._emitted_counts())
        paced = self.speed < math.inf
        while not stop_event.is_set() and workcell.time < end - 0.5 * timestep:
            self._service()
            next_due = min(min(task.due for task in tasks), end)
            now = time.monotonic()
            if paced:
                wall_due = wall_origin + (next_due - sim_origin) / self.speed
                if wall_due - now > EARLY_WAKE:
                    self._sleep(wall_due - now)
                    continue
                lag = max(0.0, now - wall_due)
                self._record_pacing(next_due, lag)
                if lag > self.max_lag:
                    wall_origin, sim_origin = now, next_due
                    self._pacing = (epoch_of(now), sim_origin)
                    _log.warning("simulation %.3f s behind the wall clock; skipping ahead", lag)
                    workcell.skip_clock(lag * self.speed)
                    self._stats["resyncs"] += 1
                self._note_lag(lag)
            steps = math.ceil((next_due - workcell.time) / timestep - STEP_TOLERANCE)
            if steps > 0:
                workcell.step(steps)
                self._stats["steps"] += steps
            reached = workcell.time + 2 * STEP_TOLERANCE * timestep
            for task in tasks:
                if task.due <= reached:
                    task.action()
                    task.due = max(task.due + task.period, reached)
            if now - window[0] >= RATE_WINDOW:
                window = self._update_rates(window, now)
        self._refresh_truth()

    def _measure_timestep(self) -> float:
        before = self.workcell.time
        self.workcell.step(1)
        self._stats["steps"] += 1
        return self.workcell.time - before

    def _sleep(self, seconds: float) -> None:
        if self.command_server is not None:
            select.select([self.command_server], [], [], seconds)
        else:
            time.sleep(seconds)

    def _service(self) -> None:
        if self.command_server is not None:
            self.command_server.poll(self.workcell)
        if self.plc is not None:
            for value in self.plc.take_speed_override_requests():
                self.workcell.set_speed_override(value)
                self._publish_plc()
        self._serve_calls()

    def _serve_calls(self) -> None:
        while not self._calls.empty():
            future, function, args = self._calls.get_nowait()
            _call_into(future, function, args)

    def _note_lag(self, lag: float) -> None:
        self._stats["lag_s"] = lag
        if lag > self.late_tolerance:
            self._stats["late_events"] += 1
        if lag > self._stats["max_lag_s"]:
            self._stats["max_lag_s"] = lag

    def _record_pacing(self, due: float, lag: float) -> None:
        """Append when the step to ``due`` (simulated s) was due and how late it ran to the pacing log."""
        if self._pacing_file is None:
            return
        try:
            self._pacing_file.write(PACING_RECORD.pack(self.wall_time_of(due), lag))
        except OSError as error:
            _log.warning("pacing log %s: %s; no longer recorded", self.pacing_log, error)
            self._pacing_file = None

    def _refresh_truth(self) -> None:
        self._truth = self.workcell.truth()

    def _publish_plc(self) -> None:
        assert self.plc is not None  # scheduled only with a PLC
        truth = self.workcell.truth()
        temperatures = self.workcell.motor_temperatures()
        self.plc.publish(PlcState(
            motor_temperatures=None if temperatures is None else [float(t) for t in temperatures],
            speed_override=truth.speed_override, stopped=truth.stopped,
            task_id=truth.task_id, task_progress=truth.task_progress,
            device_time=self.workcell.device_time()))
        self._stats["plc_published"] += 1

    def _emitted_counts(self) -> dict[str, int]:
        counts = {e.name: e.emitted for e in self.emitters}
        if self.camera is not None:
            counts["camera"] = self.camera.rendered
        return counts

    def _update_rates(self, window: tuple[float, float, dict[str, int]], now: float
                      ) -> tuple[float, float, dict[str, int]]:
        wall_start, sim_start, counts_start = window
        counts = self._emitted_counts()
        elapsed = now - wall_start
        with self._lock:
            self._rates = {name: (counts[name] - counts_start[name]) / elapsed for name in counts}
            self._stats["real_time_factor"] = (self.workcell.time - sim_start) / elapsed
        return now, self.workcell.time, counts


def _call_into(future: Future[Any], function: Callable[..., Any], args: tuple[Any, ...]) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        future.set_result(function(*args))
    except Exception as error:  # handed to the caller through the future
        future.set_exception(error)
