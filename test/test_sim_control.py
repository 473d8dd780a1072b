"""Task controller, commands, recorder and CLI of the workcell simulator."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from twin_core.config import ConfigError, build
from twin_core.paths import config_dir
from twin_core.urdf import urdf_file
from twin_sim.controller import STOP_RAMP_TIME, minimum_jerk
from twin_sim.generate import main
from twin_sim.paths import scenario_path
from twin_sim.scenario import Scenario
from twin_sim.truth import TruthRecorder
from twin_sim.workcell import SimSettings, Workcell

FAST = SimSettings(timestep=0.002, control_period_steps=5)


@pytest.fixture()
def workcell() -> Workcell:
    return Workcell(urdf_file(), Scenario.from_file(scenario_path("nominal")), FAST, seed=2)


def test_minimum_jerk_profile_has_zero_end_derivatives() -> None:
    assert minimum_jerk(0.0) == (0.0, 0.0, 0.0) and minimum_jerk(1.0) == (1.0, 0.0, 0.0)
    assert minimum_jerk(0.5)[0] == pytest.approx(0.5) and minimum_jerk(0.5)[1] == pytest.approx(1.875)


def test_task_cycles_through_phases_and_increments_task_id(workcell: Workcell) -> None:
    period = workcell.controller.trajectory.period
    phases, progress = [], []
    while workcell.time < period * 1.5:
        workcell.step(10)
        truth = workcell.truth()
        if not phases or phases[-1] != truth.task_phase:
            phases.append(truth.task_phase)
        progress.append(truth.task_progress)
    assert phases[:6] == ["approach_pick", "pick", "transfer", "place", "return", "approach_pick"]
    assert workcell.truth().task_id == 2 and 0.0 <= min(progress) and max(progress) < 1.0


def test_reference_is_tracked_closely(workcell: Workcell) -> None:
    errors = []
    for _ in range(200):
        workcell.step(10)
        reference = workcell.controller.trajectory.sample(workcell.controller.task_time)[0]
        errors.append(np.abs(workcell.truth().q - reference).max())
    assert max(errors) < 0.01


def test_speed_override_zero_holds_and_half_slows_the_clock(workcell: Workcell) -> None:
    workcell.set_speed_override(0.5)
    workcell.step(1000)  # 2 s: ramp 1 → 0.5 over 0.5 s, then half speed
    assert workcell.controller.task_time == pytest.approx(0.5 * 2.0 + 0.5 * 0.5 * 0.5, abs=0.02)
    workcell.set_speed_override(7.0)
    assert workcell.truth().speed_override == 1.0
    workcell.set_speed_override(0.0)
    workcell.step(1000)
    held = workcell.truth().q
    workcell.step(500)
    assert np.abs(workcell.truth().q - held).max() < 1e-3  # servo settling only; the task would move ~0.5 rad


def test_protective_stop_ramps_to_standstill_quickly_and_resumes(workcell: Workcell) -> None:
    workcell.step(1000)
    workcell.protective_stop()
    workcell.step(int((STOP_RAMP_TIME + 0.1) / FAST.timestep))
    assert workcell.truth().stopped and np.abs(workcell.truth().qd).max() < 0.02
    task_time = workcell.controller.task_time
    workcell.step(200)
    assert workcell.controller.task_time == task_time
    workcell.resume()
    workcell.step(500)
    assert workcell.controller.task_time > task_time + 0.3 and not workcell.truth().stopped


def test_manual_mode_tracks_clamped_targets_and_rejoins_the_task(workcell: Workcell) -> None:
    with pytest.raises(ValueError):
        workcell.command_joint_positions([0.0, 0.0])
    with pytest.raises(ValueError):
        workcell.command_joint_positions([0.0, float("nan"), 0.0, 0.0])
    workcell.command_joint_positions([0.5, 0.3, 9.0, 0.2])  # joint_3 beyond its 2.5 rad limit
    workcell.step(2500)
    truth = workcell.truth()
    assert truth.mode == "manual" and truth.task_phase == "manual"
    np.testing.assert_allclose(truth.q, [0.5, 0.3, 2.5, 0.2], atol=0.01)
    workcell.resume_task()
    workcell.step(2500)
    assert workcell.truth().mode == "auto"


def test_truth_recorder_writes_rows_and_fault_intervals(tmp_path: Path) -> None:
    document_path = scenario_path("wear_and_faults")
    scenario = Scenario.from_file(document_path)
    workcell = Workcell(urdf_file(), scenario, FAST)
    with TruthRecorder(tmp_path, workcell.joint_names) as recorder:
        for _ in range(3):
            workcell.step(50)
            recorder.record(workcell.truth(), workcell.faults.started(workcell.time))
        with open(recorder.csv_path, encoding="utf-8") as stream:  # flushed while still open
            rows = list(csv.DictReader(stream))
    assert len(rows) == 3 and float(rows[-1]["time"]) == pytest.approx(0.3)
    assert {"q_joint_1", "temp_joint_4", "coulomb_joint_2", "health_joint_3", "vibration_joint_1",
            "task_phase", "faults"} <= set(rows[0])
    assert json.loads((tmp_path / "faults.json").read_text()) == []


def test_generate_cli_writes_truth_faults_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    scenario = tmp_path / "short.yaml"
    text = scenario_path("nominal").read_text().replace(
        "faults: []", "faults:\n  - {type: overheating, target: joint_2, start: 0.5, duration: 1.0}")
    scenario.write_text(text)
    plot = tmp_path / "plot.png"
    assert main(["--scenario", str(scenario), "--duration", "3", "--out", str(tmp_path / "run"),
                 "--truth-rate", "5", "--plot", str(plot)]) == 0
    faults = json.loads((tmp_path / "run" / "faults.json").read_text())
    assert faults == [{"type": "overheating", "target": "joint_2", "start": 0.5, "end": 1.5,
                       "parameters": {"cooling_factor": 0.25}}]
    assert plot.stat().st_size > 10_000 and "sim-s per wall-s" in capsys.readouterr().out


def test_settings_build_from_a_mapping_and_check_consistency() -> None:
    assert build(SimSettings, {"timestep": 0.002, "lidar_n_beams": 180}, "physics").lidar_n_beams == 180
    with pytest.raises(ConfigError, match="physics.timestep_s: unknown key .did you mean 'timestep'"):
        build(SimSettings, {"timestep_s": 0.002}, "physics")
    with pytest.raises(ConfigError, match="physics: lidar_range_min must be below lidar_range_max"):
        build(SimSettings, {"lidar_range_min": 12.0}, "physics")
    assert (config_dir() / "arm.urdf").is_file()
