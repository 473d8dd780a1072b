"""Twin fidelity against ground truth: joint RMSE, end-effector error and latency.

The twin's joint trajectory is compared with the simulator's truth after the best time
alignment: the latency L minimizes the RMSE between twin(t) and truth(t − L), i.e. the twin's
state stamped t describes the truth of instant t − L (L > 0: the twin lags).
"""
from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from twin_core.kinematics import END_EFFECTOR, ArmKinematics
from twin_state.visual_check import DISCREPANCIES


@dataclass(frozen=True)
class Trajectory:
    """Joint positions (rad, n × joints, columns like ``joint_names``) at increasing stamps (s)."""

    stamps: np.ndarray
    positions: np.ndarray
    joint_names: tuple[str, ...]

    def at(self, stamps: np.ndarray) -> np.ndarray:
        """Linearly interpolated positions at ``stamps`` (inside the recorded span)."""
        return np.stack([np.interp(stamps, self.stamps, column) for column in self.positions.T],
                        axis=1)

    def reordered(self, joint_names: Sequence[str]) -> Trajectory:
        columns = [self.joint_names.index(name) for name in joint_names]
        return Trajectory(self.stamps, self.positions[:, columns], tuple(joint_names))


@dataclass(frozen=True)
class FidelityReport:
    samples: int  # twin samples compared
    latency: float  # s, best alignment
    joint_rmse: np.ndarray  # rad per joint, after alignment
    joint_rmse_unaligned: np.ndarray  # rad per joint, twin(t) vs truth(t)
    ee_error_mean: float  # m, end-effector position error after alignment
    ee_error_p95: float
    ee_error_max: float
    joint_names: tuple[str, ...]

    def lines(self) -> list[str]:
        """A human-readable summary."""
        joints = ', '.join(f'{n} {v:.5f}' for n, v in zip(self.joint_names, self.joint_rmse))
        raw = ', '.join(f'{n} {v:.5f}' for n, v in zip(self.joint_names, self.joint_rmse_unaligned))
        return [f'samples compared      {self.samples}',
                f'latency               {self.latency * 1e3:.2f} ms',
                f'joint RMSE (aligned)  {joints} rad',
                f'joint RMSE (as is)    {raw} rad',
                f'end-effector error    mean {self.ee_error_mean * 1e3:.2f} mm, '
                f'p95 {self.ee_error_p95 * 1e3:.2f} mm, max {self.ee_error_max * 1e3:.2f} mm']


def camera_lines(discrepancies: np.ndarray) -> list[str]:
    """The camera check's judged frames (rows of DISCREPANCIES) summarised; none without frames."""
    if not len(discrepancies):
        return []
    image_mm, image_px, position_mm = np.asarray(discrepancies, dtype=float).T
    return [f'camera frames judged  {len(discrepancies)}',
            f'camera vs twin        image mean {image_mm.mean():.2f} mm ({image_px.mean():.2f} px), '
            f'p95 {np.percentile(image_mm, 95):.2f} mm, max {image_mm.max():.2f} mm; seen plate mean '
            f'{position_mm.mean():.2f} mm, p95 {np.percentile(position_mm, 95):.2f} mm']


def read_discrepancies(path: str | Path) -> np.ndarray:
    """A CSV with a ``time`` column and the DISCREPANCIES columns (rows: frames × DISCREPANCIES)."""
    with open(path, newline='', encoding='utf-8') as stream:
        rows = list(csv.DictReader(stream))
    missing = [name for name in DISCREPANCIES if rows and name not in rows[0]]
    if missing:
        raise ValueError(f'{path}: no column {", ".join(missing)}')
    return np.array([[float(row[name]) for name in DISCREPANCIES] for row in rows]).reshape(-1, len(DISCREPANCIES))


def write_discrepancies(path: str | Path, stamps: Sequence[float], discrepancies: np.ndarray) -> None:
    """Write what :func:`read_discrepancies` reads."""
    with open(path, 'w', newline='', encoding='utf-8') as stream:
        writer = csv.writer(stream)
        writer.writerow(['time', *DISCREPANCIES])
        for stamp, row in zip(stamps, discrepancies):
            writer.writerow([f'{stamp:.9f}'] + [f'{value:.9g}' for value in row])


def _rmse(twin: Trajectory, truth: Trajectory, stamps: np.ndarray, rows: np.ndarray,
          lag: float) -> float:
    return float(np.sqrt(np.mean((twin.positions[rows] - truth.at(stamps - lag)) ** 2)))


def estimate_latency(twin: Trajectory, truth: Trajectory, max_lag: float = 0.5,
                     resolution: float = 1e-4) -> float:
    """The lag in [−max_lag, max_lag] minimizing the joint RMSE (coarse grid, then refined)."""
    rows = np.flatnonzero((twin.stamps >= truth.stamps[0] + max_lag)
                          & (twin.stamps <= truth.stamps[-1] - max_lag))
    if len(rows) < 2:
        raise ValueError('twin and truth overlap by less than 2 × max_lag')
    stamps = twin.stamps[rows]
    step = max(float(np.median(np.diff(truth.stamps))) / 2.0, resolution)
    centre, half_width = 0.0, max_lag
    while True:
        lags = np.arange(centre - half_width, centre + half_width + step / 2, step)
        lags = lags[np.abs(lags) <= max_lag + 1e-12]
        errors = [_rmse(twin, truth, stamps, rows, lag) for lag in lags]
        centre = float(lags[int(np.argmin(errors))])
        if step <= resolution:
            return centre
        half_width, step = step, max(step / 10.0, resolution)


def evaluate(twin: Trajectory, truth: Trajectory, kinematics: ArmKinematics,
             max_lag: float = 0.5, end_effector: str = END_EFFECTOR) -> FidelityReport:
    """Compare ``twin`` with ``truth`` over their overlap (see the module docstring)."""
    truth = truth.reordered(twin.joint_names)
    latency = estimate_latency(twin, truth, max_lag)
    first, last = truth.stamps[0] + max(latency, 0.0), truth.stamps[-1] + min(latency, 0.0)
    inside = (twin.stamps >= first) & (twin.stamps <= last)
    stamps, measured = twin.stamps[inside], twin.positions[inside]
    aligned, unaligned = truth.at(stamps - latency), truth.at(stamps)

    def tool(positions: np.ndarray) -> np.ndarray:
        return np.array([kinematics.end_effector(dict(zip(twin.joint_names, row)), end_effector)
                         .position for row in positions])

    error = np.linalg.norm(tool(measured) - tool(aligned), axis=1)
    return FidelityReport(
        samples=len(stamps), latency=latency,
        joint_rmse=np.sqrt(np.mean((measured - aligned) ** 2, axis=0)),
        joint_rmse_unaligned=np.sqrt(np.mean((measured - unaligned) ** 2, axis=0)),
        ee_error_mean=float(error.mean()), ee_error_p95=float(np.percentile(error, 95)),
        ee_error_max=float(error.max()), joint_names=twin.joint_names)


def read_trajectory(path: str | Path) -> Trajectory:
    """A CSV with a ``time`` column and ``q_<joint>`` columns (the simulator's truth.csv format)."""
    with open(path, newline='', encoding='utf-8') as stream:
        rows = list(csv.DictReader(stream))
    if not rows:
        raise ValueError(f'{path}: no samples')
    joints = tuple(name[2:] for name in rows[0] if name.startswith('q_'))
    return Trajectory(np.array([float(row['time']) for row in rows]),
                      np.array([[float(row[f'q_{joint}']) for joint in joints] for row in rows]),
                      joints)


def write_trajectory(path: str | Path, trajectory: Trajectory) -> None:
    """Write ``trajectory`` in the format :func:`read_trajectory` reads."""
    with open(path, 'w', newline='', encoding='utf-8') as stream:
        writer = csv.writer(stream)
        writer.writerow(['time'] + [f'q_{joint}' for joint in trajectory.joint_names])
        for stamp, row in zip(trajectory.stamps, trajectory.positions):
            writer.writerow([f'{stamp:.9f}'] + [f'{value:.9g}' for value in row])
