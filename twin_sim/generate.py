"""Headless data-set generation: run a scenario as fast as possible and record the ground truth.

Example::

    python -m twin_sim.generate --scenario wear_and_faults --duration 10800 --out out/run1 \
        --truth-rate 1 --plot docs/degradation.png
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from twin_core.progress import SIM_SECONDS, advance_to, progress_bar
from twin_core.urdf import urdf_file
from twin_sim.paths import scenario_path
from twin_sim.scenario import Scenario
from twin_sim.settings import SimSettings
from twin_sim.truth import TruthRecorder
from twin_sim.workcell import Workcell


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="nominal", help="scenario file or name in config/scenarios")
    parser.add_argument("--urdf", type=Path, default=None, help="arm URDF (default: config/arm.urdf)")
    parser.add_argument("--duration", type=float, default=60.0, help="simulated seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("out"), help="output directory")
    parser.add_argument("--truth-rate", type=float, default=10.0, help="truth rows per simulated second")
    parser.add_argument("--timestep", type=float, default=SimSettings.timestep, help="physics step (s)")
    parser.add_argument("--control-period-steps", type=int, default=10,
                        help="physics steps per controller update (the joint PD runs every step)")
    parser.add_argument("--plot", type=Path, default=None, help="write a degradation plot (PNG)")
    arguments = parser.parse_args(argv)
    if arguments.duration <= 0 or arguments.truth_rate <= 0:
        parser.error("--duration and --truth-rate must be > 0")
    return arguments


def run(workcell: Workcell, duration: float, truth_rate: float, out: Path) -> float:
    """Simulate ``duration`` s, recording truth at ``truth_rate`` Hz; returns sim-seconds per wall-second."""
    steps_per_row = max(1, round(1.0 / (truth_rate * workcell.settings.timestep)))
    row_period = steps_per_row * workcell.settings.timestep
    rows = int(duration / row_period)
    wall_start = time.perf_counter()
    with (TruthRecorder(out, workcell.joint_names) as recorder,
          progress_bar(rows * row_period, workcell.scenario.name, SIM_SECONDS) as bar):
        recorder.record(workcell.truth(), workcell.faults.started(workcell.time))
        for _ in range(rows):
            workcell.step(steps_per_row)
            recorder.record(workcell.truth(), workcell.faults.started(workcell.time))
            advance_to(bar, workcell.time)
    return workcell.time / (time.perf_counter() - wall_start)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    scenario = Scenario.from_file(scenario_path(arguments.scenario))
    settings = SimSettings(timestep=arguments.timestep, control_period_steps=arguments.control_period_steps)
    workcell = Workcell(urdf_file(arguments.urdf or ''), scenario, settings, seed=arguments.seed)
    speed = run(workcell, arguments.duration, arguments.truth_rate, arguments.out)
    step_cost = 1e6 * settings.timestep / speed
    print(f"{scenario.name}: {workcell.time:.1f} sim-s at {speed:.1f} sim-s per wall-s "
          f"({step_cost:.1f} µs per physics step); truth in {arguments.out}")
    if arguments.plot:
        from twin_sim.plot import plot_degradation
        arguments.plot.parent.mkdir(parents=True, exist_ok=True)
        plot_degradation(arguments.out / "truth.csv", arguments.out / "faults.json", arguments.plot)
        print(f"plot written to {arguments.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
