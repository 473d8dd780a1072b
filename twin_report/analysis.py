"""The numbers of a report: fidelity (via twin_state.fidelity), tracking of the plan (measured
against desired), prediction error against horizon, and anomaly alarms against the ground-truth
fault intervals.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from twin_core.kinematics import ArmKinematics
from twin_report.series import Alarm, FaultInterval, PlanTracking, PredictedTrajectory, Run
from twin_state.fidelity import FidelityReport, Trajectory, evaluate

HORIZON_RESOLUTION = 1e-3  # s: predicted points whose horizons agree to this are pooled


@dataclass(frozen=True)
class Tracking:
    """The fidelity report and the twin's aligned joint error over time (twin − truth(t − L))."""

    report: FidelityReport
    stamps: np.ndarray
    error: np.ndarray  # rad, samples × joints


@dataclass(frozen=True)
class HorizonError:
    """Prediction RMSE (over joints and predictions) per horizon against one reference."""

    reference: str
    horizons: np.ndarray  # s
    rmse: np.ndarray  # rad
    predictions: int  # predictions with at least one point inside the reference's span

    def at(self, horizon: float) -> float:
        """The RMSE at the horizon nearest ``horizon``."""
        return float(self.rmse[int(np.argmin(np.abs(self.horizons - horizon)))])


def tracking(twin: Trajectory, truth: Trajectory, kinematics: ArmKinematics,
             max_lag: float) -> Tracking:
    """:func:`twin_state.fidelity.evaluate` plus the error series it summarizes."""
    report = evaluate(twin, truth, kinematics, max_lag)
    truth = truth.reordered(twin.joint_names)
    first = truth.stamps[0] + max(report.latency, 0.0)
    last = truth.stamps[-1] + min(report.latency, 0.0)
    inside = (twin.stamps >= first) & (twin.stamps <= last)
    stamps = twin.stamps[inside]
    return Tracking(report, stamps, twin.positions[inside] - truth.at(stamps - report.latency))


@dataclass(frozen=True)
class PlanDeviation:
    """Per joint, the RMS and the peak |measured − desired position| (rad) over a run's states."""

    joint_names: tuple[str, ...]
    rms: np.ndarray
    peak: np.ndarray
    samples: int


def plan_deviation(plan: PlanTracking) -> PlanDeviation:
    error = plan.error
    return PlanDeviation(plan.joint_names, np.sqrt(np.mean(error ** 2, axis=0)), np.abs(error).max(axis=0),
                         len(error))


def horizon_error(predictions: Sequence[PredictedTrajectory], reference: Trajectory,
                  name: str) -> HorizonError | None:
    """RMSE of the predicted positions against ``reference`` at ``origin + horizon``, pooled per
    horizon over every point inside the reference's span; a prediction with a non-finite
    position (diverged) is left out entirely. None: no point to compare.
    """
    squared: dict[int, list[np.ndarray]] = {}
    used = 0
    for prediction in predictions:
        reference_columns = reference.reordered(prediction.joint_names)
        stamps = prediction.origin + prediction.horizons
        inside = (stamps >= reference.stamps[0]) & (stamps <= reference.stamps[-1])
        if not inside.any() or not np.isfinite(prediction.positions).all():
            continue
        used += 1
        errors = prediction.positions[inside] - reference_columns.at(stamps[inside])
        for horizon, row in zip(prediction.horizons[inside], errors):
            squared.setdefault(round(horizon / HORIZON_RESOLUTION), []).append(row ** 2)
    if not squared:
        return None
    keys = sorted(squared)
    return HorizonError(name, np.array(keys) * HORIZON_RESOLUTION,
                        np.array([np.sqrt(np.mean(squared[k])) for k in keys]), used)


def hold_baseline(predictions: Sequence[PredictedTrajectory], reference: Trajectory) -> list[PredictedTrajectory]:
    """The same predictions made by holding the reference's position at each origin: the floor
    a predictor has to beat to be worth running.
    """
    inside = [p for p in predictions if reference.stamps[0] <= p.origin <= reference.stamps[-1]]
    held = [reference.reordered(p.joint_names).at(np.array([p.origin])) for p in inside]
    return [PredictedTrajectory(p.origin, p.horizons, np.tile(q, (len(p.horizons), 1)), p.joint_names)
            for p, q in zip(inside, held)]


def in_fault(alarm: Alarm, faults: Sequence[FaultInterval], grace: float) -> bool:
    """Whether ``alarm`` rose during a fault interval or up to ``grace`` s after it ended."""
    return any(f.start <= alarm.start <= f.end + grace for f in faults)


@dataclass(frozen=True)
class Detection:
    """The alarms that rose during one fault interval (or its grace period)."""

    fault: FaultInterval
    alarms: int
    delay: float | None  # s from the fault's start to its first alarm; None: undetected


def detections(run: Run, grace: float) -> list[Detection]:
    """Per ground-truth fault: how many alarms it raised and how soon."""
    result = []
    for fault in run.faults:
        starts = [a.start for a in run.alarms if in_fault(a, [fault], grace)]
        result.append(Detection(fault, len(starts), min(starts) - fault.start if starts else None))
    return result


def alarms_inside(run: Run, grace: float) -> int:
    """How many alarms rose inside a fault interval (or its grace period); the rest are outside."""
    return sum(in_fault(a, run.faults, grace) for a in run.alarms)
