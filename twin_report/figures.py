"""The report's figures as PNG bytes (matplotlib's Agg canvas, no pyplot state). Times on the
x axes are s since the run's first message.
"""
from __future__ import annotations

import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import DateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from twin_core.levels import Risk
from twin_report.analysis import HorizonError, Tracking, in_fault
from twin_report.page import milliseconds
from twin_report.series import PlanTracking, PredictedTrajectory, Run, Schedule
from twin_state.fidelity import Trajectory

DPI = 100  # 11 in wide figures fill the page's 70em column
RISK_COLORS = {Risk.LOW: 'tab:green', Risk.MEDIUM: 'gold', Risk.HIGH: 'tab:orange', Risk.CRITICAL: 'tab:red'}
HOUR = 3600.0
EXAMPLES = 12  # predictions drawn at most in the prediction figure's example window


def png(figure: Figure) -> bytes:
    """Render ``figure`` with the Agg canvas."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format='png', dpi=DPI, bbox_inches='tight')
    return buffer.getvalue()


@dataclass(frozen=True)
class Line:
    """Joint positions to draw (rad, samples × joints) at ``times`` (s since the run's start)."""

    times: np.ndarray
    positions: np.ndarray
    label: str
    color: str
    width: float


def _joints_figure(joints: Sequence[str], lines: Sequence[Line], title: str, error_times: np.ndarray,
                   error_mrad: np.ndarray, error_label: str, log: bool) -> bytes:
    """Per joint: the ``lines``; last row: the error of every joint (mrad, samples × joints)."""
    figure = Figure(figsize=(11, 1.5 * (len(joints) + 1.5)))
    axes = figure.subplots(len(joints) + 1, 1, sharex=True)
    for column, (axis, joint) in enumerate(zip(axes, joints)):
        for line in lines:
            axis.plot(line.times, line.positions[:, column], color=line.color, lw=line.width, label=line.label)
        axis.set_ylabel(f'{joint}\n[rad]')
    axes[0].legend(loc='upper right', ncol=2, fontsize='small')
    axes[0].set_title(title)
    for column, joint in enumerate(joints):
        axes[-1].plot(error_times, error_mrad[:, column], lw=0.8, label=joint)
    if log:
        axes[-1].set_yscale('log')
        axes[-1].set_ylim(bottom=1e-2)
        axes[-1].yaxis.set_minor_formatter(NullFormatter())  # decades only: minor labels overlap
    axes[-1].set_ylabel(error_label)
    axes[-1].set_xlabel('time [s]')
    axes[-1].legend(loc='upper right', ncol=len(joints), fontsize='small')
    return png(figure)


def tracking_figure(run: Run, tracking: Tracking) -> bytes:
    """Per joint: twin and truth positions; last row: the aligned error of every joint."""
    twin, truth = run.twin, run.truth
    if twin is None or truth is None:
        raise ValueError('a tracking figure needs both the twin and the truth trajectory')
    truth = truth.reordered(twin.joint_names)
    return _joints_figure(
        twin.joint_names, [Line(truth.stamps - run.start, truth.positions, 'truth', '0.55', 2.5),
                           Line(twin.stamps - run.start, twin.positions, 'twin', 'tab:blue', 1)],
        f'Twin vs ground truth ({run.truth_source}); twin behind truth by {milliseconds(tracking.report.latency)}',
        tracking.stamps - run.start, np.abs(tracking.error) * 1e3, '|aligned error|\n[mrad]', log=True)


def plan_figure(run: Run, plan: PlanTracking) -> bytes:
    """Per joint: desired and measured positions; last row: the deviation of every joint."""
    times = plan.stamps - run.start
    return _joints_figure(
        plan.joint_names, [Line(times, plan.desired, 'desired (plan)', '0.55', 2.5),
                           Line(times, plan.measured, 'measured (twin)', 'tab:blue', 1)],
        "Desired vs measured joint positions at the twin state's stamps",
        times, plan.error * 1e3, 'measured −\ndesired [mrad]', log=False)


def _example_window(predictions: Sequence[PredictedTrajectory], span: float) -> tuple[float, float]:
    """``span`` s of prediction origins from the middle of the run."""
    origins = np.array([p.origin for p in predictions])
    middle = float(np.median(origins))
    return middle - span / 2, middle + span / 2


def prediction_figure(run: Run, errors: Sequence[HorizonError], reference: Trajectory) -> bytes:
    """Left: RMSE against horizon; right: some predictions over the reference's most moving joint."""
    figure = Figure(figsize=(11, 3.8))
    left, right = figure.subplots(1, 2, gridspec_kw={'width_ratios': [1, 1.6]})
    for error in errors:
        left.plot(error.horizons, error.rmse * 1e3, marker='.', label=f'vs {error.reference}')
    left.set_xlabel('horizon [s]')
    left.set_ylabel('RMSE [mrad]')
    left.set_title('Prediction error vs horizon')
    left.grid(alpha=0.3)
    left.legend(fontsize='small')
    column = int(np.argmax(np.ptp(reference.positions, axis=0)))
    joint = reference.joint_names[column]
    first, last = _example_window(run.predictions, 6.0)
    shown = (reference.stamps >= first) & (reference.stamps <= last + 1.5)
    right.plot(reference.stamps[shown] - run.start, reference.positions[shown, column],
               color='0.4', lw=2.5, label='actual')
    shown_predictions = [p for p in run.predictions if first <= p.origin <= last]
    stride = max(1, len(shown_predictions) // EXAMPLES)
    examples = shown_predictions[::stride]
    for index, example in enumerate(examples):
        index_in_prediction = example.joint_names.index(joint)
        right.plot(example.origin + example.horizons - run.start,
                   example.positions[:, index_in_prediction], color='tab:purple', lw=1,
                   alpha=0.8, label='predicted' if index == 0 else None)
        right.plot(example.origin - run.start, example.positions[0, index_in_prediction], '.',
                   color='tab:purple')
    right.set_xlabel('time [s]')
    right.set_ylabel(f'{joint} [rad]')
    right.set_title(f'Predictions ({"all" if stride == 1 else f"every {stride}th"}) over the actual {joint}')
    right.legend(fontsize='small')
    return png(figure)


def anomaly_figure(run: Run, grace: float) -> bytes:
    """One row per sensor: bars from rising to clearing of each of its alarms, over the shaded
    fault intervals (lighter: the grace period after a fault in which alarms still count as inside).
    """
    labels = sorted({a.source for a in run.alarms})
    figure = Figure(figsize=(11, 1.2 + 0.35 * max(len(labels), 2)))
    axis = figure.subplots()
    for fault in run.faults:
        axis.axvspan(fault.start - run.start, fault.end - run.start, color='tab:red', alpha=0.15)
        axis.axvspan(fault.end - run.start, fault.end + grace - run.start, color='tab:red',
                     alpha=0.05)
        axis.annotate(fault.label, (fault.start - run.start, 0.0), xycoords=('data', 'axes fraction'),
                      xytext=(2, 3), textcoords='offset points', fontsize='small', color='darkred')
    for alarm in run.alarms:
        row = labels.index(alarm.source)
        end = alarm.end if alarm.end is not None else run.end
        color = 'tab:red' if in_fault(alarm, run.faults, grace) else 'tab:blue'
        axis.barh(row, max(end - alarm.start, 0.05), left=alarm.start - run.start, height=0.6,
                  color=color)
    counts = Counter(a.source for a in run.alarms)
    axis.set_yticks(range(len(labels)), [f'{label} ({counts[label]})' for label in labels],
                    fontsize='small')
    axis.set_ylim(-0.7, max(len(labels), 1) + 0.2)  # room for the fault labels at the bottom
    axis.set_xlim(0.0, run.end - run.start)
    axis.invert_yaxis()
    axis.set_xlabel('time [s]')
    axis.set_title('Anomaly alarms (red: inside a fault interval, blue: outside) '
                   'over ground-truth faults (shaded)', fontsize='medium')
    return png(figure)


def condition_figure(run: Run) -> bytes:
    """Top: ground-truth health and the planner's health estimate; bottom: RUL with its band."""
    figure = Figure(figsize=(11, 6))
    top, bottom = figure.subplots(2, 1, sharex=True)
    colors: dict[str, str] = {}

    def color(component: str) -> str:
        return colors.setdefault(component, f'C{len(colors)}')
    if run.condition is not None:
        for column, joint in enumerate(run.condition.joint_names):
            top.plot(run.condition.stamps - run.start, run.condition.condition[:, column], color=color(joint),
                     label=f'{joint} truth')
    components = list(dict.fromkeys(s.component for s in run.rul))
    for component in components:
        samples = [s for s in run.rul if s.component == component]
        stamps = np.array([s.stamp for s in samples]) - run.start
        top.plot(stamps, [s.condition for s in samples], '--', color=color(component),
                 label=f'{component} twin')
        bottom.plot(stamps, [s.rul / HOUR for s in samples], color=color(component), label=component)
        for bound in ([s.rul_low for s in samples], [s.rul_high for s in samples]):
            bottom.plot(stamps, np.array(bound) / HOUR, ':', lw=1, color=color(component))
    for schedule in run.schedules:
        for task in schedule.tasks:
            if 0.0 < task.rul < np.inf:
                bottom.plot(schedule.stamp - run.start, task.rul / HOUR, 'k^', ms=5)
    bounded = any(np.isfinite(s.rul) for s in run.rul)
    if components and not bounded:
        bottom.text(0.5, 0.5, 'RUL unbounded for every component: no wear trend in the windows yet',
                    transform=bottom.transAxes, ha='center', va='center', color='0.3')
        bottom.set_yticks([])
    top.set_ylabel('health (1 new, 0 failure)')
    top.set_title('Health: ground truth (solid) and twin estimate (dashed)')
    top.legend(fontsize='small', loc='upper left', bbox_to_anchor=(1.01, 1.0))
    bottom.set_ylabel('RUL [h]')
    bottom.set_xlabel('time [s]')
    bottom.set_title('Twin RUL: median, 10 % and 90 % dotted (diagnostics); ▲ RUL of scheduled tasks')
    if bounded:
        bottom.legend(fontsize='small', loc='upper left', bbox_to_anchor=(1.01, 1.0))
    return png(figure)


def _date(stamp: float) -> datetime:
    return datetime.fromtimestamp(stamp, UTC)


def schedule_figure(schedule: Schedule) -> bytes:
    """A Gantt chart of the plan: bars from start to end by risk, ◆ at each deadline."""
    tasks = schedule.tasks
    figure = Figure(figsize=(11, 1.4 + 0.45 * len(tasks)))
    axis = figure.subplots()
    for row, task in enumerate(tasks):
        start, end = _date(task.start), _date(task.end)
        # Dates are plotted through matplotlib's date units, which its annotations do not allow for.
        axis.barh(row, end - start, left=start, height=0.6,  # type: ignore[arg-type]
                  color=RISK_COLORS[task.risk], edgecolor='black' if task.late else None)
        axis.plot(_date(task.deadline), row, 'kD', ms=5)  # type: ignore[arg-type]
    axis.set_yticks(range(len(tasks)), [f'{t.component}: {t.action}' for t in tasks],
                    fontsize='small')
    axis.invert_yaxis()
    axis.xaxis.set_major_formatter(DateFormatter('%m-%d %H:%M'))
    axis.tick_params(axis='x', labelrotation=20)
    axis.set_title(f'Maintenance schedule revision {schedule.revision} (UTC; color: risk, '
                   '◆ deadline, outlined: late)', fontsize='medium')
    return png(figure)
