"""Camera check of the twin: camera frames against the twin's joint states, and an alarm when they
disagree.

Each JPEG frame is judged against the twin's joint positions around the frame's stamp
(interpolated between the twin's joint states, every ``stamp_step`` within ± ``stamp_tolerance``;
the best fit counts: the frame's and the twin's clocks come from different devices; a frame waits
until the twin has passed its stamp by the tolerance), by
:class:`twin_state.visual_check.VisualCheck`. An
alarm (method ``camera``) rises when the image-space discrepancy of the tool plate stays above
``alarm.bound`` mm for ``alarm.duration`` s and clears, with hysteresis, once it stays below
``clear_ratio × bound`` for ``clear_duration`` s. A stuck or slipping encoder, a wrong joint
offset or a bent tool show this way: the twin follows the encoders, the camera sees the arm.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from twin_anomaly.anomaly import AnomalyEvent
from twin_anomaly.hysteresis import HeldAlarm
from twin_core.config import describe
from twin_core.kinematics import ArmKinematics
from twin_core.levels import Level
from twin_core.stamps import from_seconds, to_seconds
from twin_core.status import Status
from twin_core.tracking import DesiredStates
from twin_sensors.camera_info import CameraCalibration
from twin_state.visual_check import BASE_PLATE, TOOL_PLATE, Comparison, PlateConfig, VisualCheck, check_plates

METHOD = 'camera'
SENSOR = 'camera.tool_plate'  # the alarm's sensor: the tool plate's discrepancy


@dataclass(frozen=True)
class CameraAlarmConfig:
    bound: float = field(default=15.0, metadata=describe(
        'An alarm rises when the image-space discrepancy of the tool plate exceeds this (mm at the '
        'plate\'s distance) for `duration` (on the nominal cycle: about 1 mm, at most 2).', min=0.1, max=1e4))
    duration: float = field(default=0.5, metadata=describe(
        'Time (s) the discrepancy must stay beyond `bound` before the alarm rises.', min=0.0, max=60.0))
    clear_ratio: float = field(default=0.5, metadata=describe(
        'Hysteresis: the alarm clears once the discrepancy stays below clear_ratio × bound ...',
        min=0.0, max=1.0))
    clear_duration: float = field(default=1.0, metadata=describe('... for this many s.', min=0.0, max=3600.0))


@dataclass(frozen=True)
class CameraCheckConfig:
    """Parameters of the ``camera_check`` node."""

    urdf: str = field(default='', metadata=describe('Robot description (empty: the arm in config/).'))
    frame_prefix: str = field(default='', metadata=describe(
        'Prefix of the published poses\' frame (base_link), e.g. robot_1/ in a fleet.'))
    base_plate: PlateConfig = BASE_PLATE
    tool_plate: PlateConfig = TOOL_PLATE
    dictionary: str = field(default='DICT_4X4_50', metadata=describe('ArUco dictionary of both markers.'))
    max_gap: float = field(default=0.1, metadata=describe(
        'Twin joint states further apart than this (s), or a frame this far beyond the newest, '
        'leave a frame unjudged.', min=0.001, max=10.0))
    stamp_tolerance: float = field(default=0.25, metadata=describe(
        'How far (s) the instant a frame shows may be from its stamp on the twin\'s clock: the twin\'s '
        'positions within ± this of the stamp are tried and the best fit compared (0: the stamp only).',
        min=0.0, max=2.0))
    stamp_step: float = field(default=0.02, metadata=describe(
        'Spacing (s) of the instants tried within stamp_tolerance.', min=0.001, max=1.0))
    diagnostics_rate_hz: float = field(default=1.0, metadata=describe('Rate of /diagnostics.', min=0.1, max=10.0))
    alarm: CameraAlarmConfig = CameraAlarmConfig()


@dataclass(frozen=True)
class Judged:
    """A frame's check at its stamp (ns), the twin's instant compared (s from the stamp) and the
    alarm events it caused.
    """

    stamp: int
    comparison: Comparison
    offset: float
    events: list[AnomalyEvent]


class CameraCheck:
    """Frames and the twin's joint states in, judged frames and alarm events out."""

    def __init__(self, config: CameraCheckConfig, kinematics: ArmKinematics) -> None:
        check_plates(kinematics, config.base_plate, config.tool_plate)
        self.config, self.kinematics = config, kinematics
        self.joint_names = kinematics.joint_names
        self._twin = DesiredStates(config.max_gap)
        self._check: VisualCheck | None = None
        self._calibration: CameraCalibration | None = None
        self._pending: tuple[int, np.ndarray] | None = None  # a frame waiting for the twin: stamp (ns), image
        steps = round(config.stamp_tolerance / config.stamp_step)
        self._offsets = sorted((config.stamp_step * k for k in range(-steps, steps + 1)), key=abs)  # s, 0 first
        self._wait = from_seconds(config.stamp_step * steps)  # ns the twin must pass a frame's stamp
        alarm = config.alarm
        self.alarm = HeldAlarm(alarm.bound, alarm.duration, alarm.clear_ratio, alarm.clear_duration)
        self.counts = dict.fromkeys(('frames', 'judged', 'no_calibration', 'undecodable', 'no_twin_state',
                                     'no_extrinsics', 'tool_not_seen', 'rejected_twin_states', 'alarms'), 0)
        self.latest: Comparison | None = None
        self.latest_offset = math.nan  # s, the twin's instant that fit the latest judged frame best
        self.peak_mm = 0.0
        self._newest_judged = -math.inf  # s, the stamp of the newest judged frame
        self.rejection = ''  # why the last refused input was refused

    def calibrate(self, calibration: CameraCalibration) -> None:
        """The camera's intrinsics (its camera_info); a change starts the check afresh."""
        if calibration != self._calibration:
            self._calibration = calibration
            config = self.config
            self._check = VisualCheck(self.kinematics, calibration, config.base_plate, config.tool_plate,
                                      config.dictionary)

    def twin_state(self, stamp: int, names: Sequence[str], positions: Sequence[float],
                   velocities: Sequence[float] = ()) -> list[Judged]:
        """One twin joint state (stamp in ns); the waiting frame once the twin has reached it."""
        order = {name: index for index, name in enumerate(names)}
        missing = [name for name in self.joint_names if name not in order]
        if missing or len(positions) != len(names) or (len(velocities) and len(velocities) != len(names)):
            self.counts['rejected_twin_states'] += 1
            self.rejection = f'twin joint state without {", ".join(missing)}' if missing else \
                f'{len(positions)} positions, {len(velocities)} velocities for {len(names)} joints'
            return []
        columns = [order[name] for name in self.joint_names]
        position = np.asarray(positions, dtype=float)[columns]
        if not np.isfinite(position).all():
            self.counts['rejected_twin_states'] += 1
            self.rejection = 'non-finite twin joint position'
            return []
        self._twin.add(stamp, position, np.asarray(velocities, dtype=float)[columns] if len(velocities) else None)
        if self._pending is not None and stamp >= self._pending[0] + self._wait:
            return self._judge_pending()
        return []

    def frame(self, stamp: int, jpeg: bytes) -> list[Judged]:
        """One camera frame (stamp in ns, JPEG bytes): judged now if the twin has passed its stamp by
        the tolerance, else kept until it does (a frame still waiting when the next one comes is then
        judged as far as the twin goes).
        """
        self.counts['frames'] += 1
        if self._calibration is None:
            self.counts['no_calibration'] += 1
            return []
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE) if jpeg else None
        if image is None:
            self.counts['undecodable'] += 1
            self.rejection = f'undecodable JPEG ({len(jpeg)} bytes)'
            return []
        judged = self._judge_pending() if self._pending is not None else []
        self._pending = (stamp, image)
        newest = self._twin.newest
        if newest is not None and newest >= stamp + self._wait:
            judged += self._judge_pending()
        return judged

    def _judge_pending(self) -> list[Judged]:
        """The waiting frame judged at its stamp (nothing when the twin has no state there)."""
        assert self._pending is not None and self._check is not None
        (stamp, image), self._pending = self._pending, None
        if self._twin.at(stamp) is None:
            self.counts['no_twin_state'] += 1
            return []
        offsets, candidates = [], []
        for offset in self._offsets:
            twin = self._twin.at(stamp + from_seconds(offset))
            if twin is not None:
                offsets.append(offset)
                candidates.append(dict(zip(self.joint_names, twin.position.tolist())))
        comparison = self._check.compare(image, candidates)
        offset = offsets[comparison.candidate]
        seconds = to_seconds(stamp)
        if comparison.camera is None:
            self.counts['no_extrinsics'] += 1
        elif comparison.seen_plate is None:
            self.counts['tool_not_seen'] += 1
        else:
            self.counts['judged'] += 1
            self.latest = comparison
            self.peak_mm = max(self.peak_mm, comparison.reprojection_mm)
            self.latest_offset = offset
            return [Judged(stamp, comparison, offset, self._alarm_events(seconds, comparison.reprojection_mm))]
        return [Judged(stamp, comparison, offset, [])]

    def _alarm_events(self, stamp: float, discrepancy: float) -> list[AnomalyEvent]:
        if stamp < self._newest_judged:  # time went back (a replay restarted)
            self.alarm.restart_timers()
        self._newest_judged = stamp
        change = self.alarm.update(stamp, discrepancy)
        bound = self.config.alarm.bound
        if change:
            self.counts['alarms'] += 1
            return [AnomalyEvent(stamp, SENSOR, METHOD, discrepancy, bound, Level.WARN,
                                 f'the camera sees the tool plate {discrepancy:.1f} mm from the twin\'s '
                                 f'(> {bound:g} for {self.config.alarm.duration:g} s)', True)]
        if change is False:
            return [AnomalyEvent(stamp, SENSOR, METHOD, discrepancy, bound, Level.OK,
                                 f'camera and twin agree again ({discrepancy:.1f} mm)', False)]
        return []

    def report(self) -> Status:
        """Counts, the latest discrepancies and the alarm; WARN while it is active or an input was refused."""
        latest = self.latest
        values: dict[str, float | int] = dict(self.counts) | {
            'discrepancy_px': latest.reprojection_px if latest else math.nan,
            'discrepancy_mm': latest.reprojection_mm if latest else math.nan,
            'position_mm': latest.position_mm if latest else math.nan, 'peak_discrepancy_mm': self.peak_mm,
            'offset_ms': 1e3 * self.latest_offset}
        if self.alarm.active:
            level, message = Level.WARN, f'camera and twin disagree: {values["discrepancy_mm"]:.1f} mm'
        elif self.rejection:
            level, message = Level.WARN, f'refused: {self.rejection}'
        elif self._calibration is None:
            level, message = Level.WARN, 'no camera_info yet'
        elif latest is None:
            level, message = Level.WARN, 'the tool plate not judged yet'
        else:
            level, message = Level.OK, f'camera and twin agree within {values["discrepancy_mm"]:.1f} mm'
        self.rejection = ''
        return Status('camera', level, message, values)
