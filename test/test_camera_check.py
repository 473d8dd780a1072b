"""The camera check of the twin on rendered frames: accuracy against the simulator, the alarm,
refused inputs and a stuck encoder.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest
import yaml

from camera_cell import CONFIG, checked_frames, workcell
from twin_anomaly.camera_check import METHOD, CameraCheck, CameraCheckConfig
from twin_core.config import build
from twin_core.kinematics import ArmKinematics
from twin_core.levels import Level
from twin_core.stamps import from_seconds
from twin_sensors.fiducials import MarkerPose
from twin_sim.camera import CameraChannel, FrameRenderer, calibration, marker_in_world, optical_frame
from twin_sim.model import MARKERS
from twin_sim.scenario import Fault
from twin_state.fidelity import camera_lines, read_discrepancies, write_discrepancies
from twin_state.visual_check import VisualCheck

WIDTH, HEIGHT = 640, 480
KINEMATICS = ArmKinematics.from_urdf(CONFIG / 'arm.urdf')


@pytest.fixture(scope='module')
def renderer() -> Iterator[FrameRenderer]:
    frames = FrameRenderer(workcell().model, CameraChannel(width=WIDTH, height=HEIGHT))
    yield frames
    frames.close()


def jpeg_frame(renderer: FrameRenderer, cell) -> np.ndarray:
    """The cell's view as the driver receives it: rendered, JPEG-encoded, decoded."""
    import cv2
    return cv2.imdecode(np.frombuffer(renderer.encode(renderer.render(cell.camera_view())), np.uint8), 1)


def configured() -> CameraCheckConfig:
    parameters = yaml.safe_load((CONFIG / 'camera_check.yaml').read_text())['camera_check']['ros__parameters']
    return build(CameraCheckConfig, parameters, 'camera_check')


def test_the_configured_plates_are_the_simulated_cells() -> None:
    config = configured()
    cell = workcell()
    for plate in (config.base_plate, config.tool_plate):
        position, axes = marker_in_world(cell.model, cell.data, plate.marker_id)
        mounted = KINEMATICS.transforms(dict(zip(cell.joint_names, cell.truth().q)))[plate.frame] @ plate.mounting()
        assert np.linalg.norm(mounted[:3, 3] - position) < 0.002  # the plate's half thickness
        assert np.allclose(mounted[:3, :3], axes, atol=1e-6)
        assert plate.side == next(m[-1] for m in MARKERS if m[0] == plate.marker_id)


def test_camera_and_twin_agree_along_the_cycle(renderer: FrameRenderer) -> None:
    cell = workcell()
    check = VisualCheck(KINEMATICS, calibration(cell.model, WIDTH, HEIGHT))
    image_mm, position_mm = [], []
    for _ in range(8):  # one frame a second over the 8 s cycle
        comparison = check.compare(jpeg_frame(renderer, cell), [dict(zip(cell.joint_names, cell.truth().q))])
        camera, _ = optical_frame(cell.model, cell.data)
        assert comparison.camera is not None and np.linalg.norm(comparison.camera[:3, 3] - camera) < 0.02
        if comparison.seen_plate is not None:
            image_mm.append(comparison.reprojection_mm)
            position_mm.append(comparison.position_mm)
        cell.step(1000)
    assert len(image_mm) >= 6
    assert max(image_mm) < 4.0 and np.median(position_mm) < 20.0 and max(position_mm) < 60.0


def test_a_joint_offset_in_the_twin_shows_in_the_image(renderer: FrameRenderer) -> None:
    cell = workcell()
    check = VisualCheck(KINEMATICS, calibration(cell.model, WIDTH, HEIGHT))
    image = jpeg_frame(renderer, cell)
    truth = dict(zip(cell.joint_names, cell.truth().q))
    agreed = check.compare(image, [truth])
    offset = truth | {'joint_2': truth['joint_2'] + 0.03}
    off = check.compare(image, [offset])
    assert agreed.reprojection_mm < 4.0 and off.reprojection_mm > 15.0 and off.position_mm > 15.0
    best = check.compare(image, [offset, truth])  # of the twin's candidate instants, the one that fits
    assert best.candidate == 1 and best.reprojection_mm == agreed.reprojection_mm


def start_pose_check(renderer: FrameRenderer) -> tuple[CameraCheck, bytes, list[float], tuple[str, ...]]:
    """A check calibrated for the cell camera that compares the twin at the frame's stamp only, the
    frame at the start pose (JPEG), its joint positions and names.
    """
    cell = workcell()
    check = CameraCheck(CameraCheckConfig(stamp_tolerance=0.0), KINEMATICS)
    check.calibrate(calibration(cell.model, WIDTH, HEIGHT))
    return check, renderer.encode(renderer.render(cell.camera_view())), cell.truth().q.tolist(), cell.joint_names


def test_the_alarm_rises_on_a_lasting_discrepancy_and_clears_with_hysteresis(renderer: FrameRenderer) -> None:
    check, jpeg, truth, names = start_pose_check(renderer)
    offset = list(truth)
    offset[names.index('joint_2')] += 0.03
    events = []
    for index in range(30):  # 5 Hz: 1 s agreeing, 2 s off, 3 s agreeing again
        stamp = 100.0 + 0.2 * index
        positions = offset if 5 <= index < 15 else truth
        check.twin_state(from_seconds(stamp), names, positions)
        events += [(stamp, e) for judged in check.frame(from_seconds(stamp), jpeg) for e in judged.events]
    assert [(round(stamp, 1), e.active, e.method) for stamp, e in events] == [
        (101.6, True, METHOD), (104.0, False, METHOD)]  # 0.5 s (3 frames) beyond the bound, 1 s below half
    assert check.counts['judged'] == 30 and check.counts['alarms'] == 1


def test_a_frame_waits_for_the_twin_and_bad_inputs_are_counted(renderer: FrameRenderer) -> None:
    uncalibrated = CameraCheck(CameraCheckConfig(stamp_tolerance=0.0), KINEMATICS)
    check, jpeg, truth, names = start_pose_check(renderer)
    assert uncalibrated.frame(from_seconds(1.0), jpeg) == [] and uncalibrated.counts['no_calibration'] == 1
    check.twin_state(from_seconds(0.99), names, truth)
    assert check.frame(from_seconds(1.0), jpeg) == []  # the twin has not reached the frame yet
    judged = check.twin_state(from_seconds(1.01), names, truth)
    assert [j.stamp for j in judged] == [from_seconds(1.0)] and judged[0].comparison.reprojection_mm < 4.0
    assert check.frame(from_seconds(1.02), b'\xff\xd8 not a jpeg') == []
    assert check.counts['undecodable'] == 1 and 'undecodable' in check.report().message
    assert check.twin_state(from_seconds(1.03), names[:-1], truth[:-1]) == []
    assert check.counts['rejected_twin_states'] == 1 and names[-1] in check.report().message
    assert check.twin_state(from_seconds(1.03), names, [math.nan, *truth[1:]]) == []
    assert check.counts['rejected_twin_states'] == 2 and 'non-finite' in check.report().message
    check.frame(from_seconds(5.0), jpeg)  # far beyond the twin's newest state: no twin state there
    check.frame(from_seconds(5.2), jpeg)
    assert check.counts["no_twin_state"] == 1 and check.report().level is Level.OK  # the earlier judged frame


def test_a_stuck_encoder_raises_the_camera_alarm(renderer: FrameRenderer) -> None:
    cell = workcell()
    check = CameraCheck(CameraCheckConfig(), KINEMATICS)
    check.calibrate(calibration(cell.model, WIDTH, HEIGHT))
    onset, alarm = 2.0, None
    for now, judged in itertools.takewhile(lambda step: step[0] < onset + 3.0,
                                            checked_frames(cell, renderer, check, 0.2)):
        if now >= onset and not cell.faults.active_of('encoder_stuck'):
            assert not check.alarm.active
            cell.inject_fault(Fault('encoder_stuck', 'joint_2', duration=10.0))
        if alarm is None and any(e.active for j in judged for e in j.events):
            alarm = now - onset
    assert alarm is not None and alarm < 2.5


def test_fidelity_summarises_recorded_camera_discrepancies(tmp_path) -> None:
    rows = np.array([[1.0, 0.25, 5.0], [3.0, 0.75, 15.0]])
    write_discrepancies(tmp_path / 'camera.csv', [10.0, 10.2], rows)
    assert np.array_equal(read_discrepancies(tmp_path / 'camera.csv'), rows)
    lines = camera_lines(rows)
    assert 'image mean 2.00 mm (0.50 px)' in lines[1] and 'max 3.00 mm' in lines[1]
    assert 'seen plate mean 10.00' in lines[1]
    assert camera_lines(np.empty((0, 3))) == []
    (tmp_path / 'other.csv').write_text('time,image_mm\n1.0,2.0\n')
    with pytest.raises(ValueError, match='image_px, position_mm'):
        read_discrepancies(tmp_path / 'other.csv')


def test_the_ambiguous_pose_is_resolved_by_continuity_a_clear_one_by_its_fit() -> None:
    check = VisualCheck(KINEMATICS, calibration(workcell().model, WIDTH, HEIGHT))
    check.camera = np.eye(4)
    upright, mirrored = np.eye(3), np.diag([1.0, -1.0, -1.0])
    check._previous = np.eye(4)  # the plate was last seen upright
    solutions = [MarkerPose(1, np.ones(3), mirrored, 0.10), MarkerPose(1, np.ones(3), upright, 0.15)]
    assert np.array_equal(check._pose(solutions)[:3, :3], upright)
    clear = [MarkerPose(1, np.ones(3), mirrored, 0.10), MarkerPose(1, np.ones(3), upright, 0.50)]
    assert np.array_equal(check._pose(clear)[:3, :3], mirrored)


def test_plates_that_do_not_fit_the_arm_are_refused() -> None:
    config = CameraCheckConfig()
    with pytest.raises(ValueError, match='both plates show marker 0'):
        CameraCheck(replace(config, tool_plate=replace(config.tool_plate, marker_id=0)), KINEMATICS)
    with pytest.raises(ValueError, match='must be mounted in base_link, not tool0'):
        CameraCheck(replace(config, base_plate=replace(config.base_plate, frame='tool0')), KINEMATICS)


def test_a_twin_clock_ahead_of_the_cameras_is_compared_at_the_instant_the_frame_shows(renderer: FrameRenderer
                                                                                       ) -> None:
    cell = workcell()
    exact, tolerant = (CameraCheck(CameraCheckConfig(stamp_tolerance=tolerance), KINEMATICS)
                       for tolerance in (0.0, 0.25))
    for check in (exact, tolerant):
        check.calibrate(calibration(cell.model, WIDTH, HEIGHT))
    cell.step(1000)  # moving towards the conveyor
    ahead, frame, judged = 0.1, None, []  # s: the twin stamps what the arm does at t as t + 0.1
    for _ in range(80):
        cell.step(10)
        for check in (exact, tolerant):
            judged += check.twin_state(from_seconds(cell.time + ahead), cell.joint_names, cell.truth().q)
        if frame is None and cell.time >= 1.3:
            frame = (from_seconds(cell.time), renderer.encode(renderer.render(cell.camera_view())))
            judged += exact.frame(*frame) + tolerant.frame(*frame)
    assert len(judged) == 2 and all(j.comparison.seen_plate is not None for j in judged)
    at_stamp, best = (j for j in sorted(judged, key=lambda j: j.offset == 0.0, reverse=True))
    assert abs(best.offset - ahead) <= 0.02 and best.comparison.reprojection_mm < 4.0
    assert at_stamp.comparison.reprojection_mm > 3.0 * best.comparison.reprojection_mm
