"""A run's summary as plain text for a terminal: what the twin got right against the ground truth,
how the arm followed the controller's plan, its alarms with a verdict each, health, RUL and risk
per joint, and its prediction beside the hold-position baseline; each figure with one line on
what it means.
"""
from __future__ import annotations

from collections.abc import Sequence

from twin_core.kinematics import ArmKinematics
from twin_report.analysis import hold_baseline, horizon_error, in_fault, plan_deviation, tracking
from twin_report.report import hours
from twin_report.series import ANOMALIES, DIAGNOSTICS, PREDICTION, SCHEDULE, TRUTH, TWIN_JOINTS, Run

WIDTH = 26  # label column


def _row(label: str, value: str, meaning: str = '') -> str:
    return f'  {label:<{WIDTH}} {value:<22} {meaning}'.rstrip()


def _fidelity(run: Run, kinematics: ArmKinematics, max_lag: float) -> list[str]:
    lines = [f'Twin vs ground truth ({run.truth_source}, the simulated arm itself)']
    if run.twin is None or run.truth is None:
        missing = TWIN_JOINTS if run.twin is None else f'{run.truth_source} / {TRUTH}'
        return [*lines, _row('not recorded', missing)]
    try:
        fidelity = tracking(run.twin, run.truth, kinematics, max_lag).report
    except ValueError as error:
        return [*lines, _row('not computable', str(error))]
    worst = int(fidelity.joint_rmse.argmax())
    return [*lines,
            _row('samples compared', str(fidelity.samples)),
            _row('latency', f'{fidelity.latency * 1e3:.1f} ms',
                 'how long after the arm moves the twin shows it'),
            _row('joint error, aligned', f'{fidelity.joint_rmse[worst] * 1e3:.3f} mrad RMS',
                 f'worst joint ({fidelity.joint_names[worst]}), the latency taken out'),
            _row('joint error, as is', f'{fidelity.joint_rmse_unaligned.max() * 1e3:.3f} mrad RMS',
                 'what a live viewer sees: that error plus the latency'),
            _row('tool position error', f'{fidelity.ee_error_mean * 1e3:.2f} mm mean',
                 f'p95 {fidelity.ee_error_p95 * 1e3:.2f} mm, max {fidelity.ee_error_max * 1e3:.2f} mm '
                 '(forward kinematics of both)')]


def _plan(run: Run) -> list[str]:
    """The block on the plan; none when no twin state carried one."""
    if run.plan is None:
        return []
    deviation = plan_deviation(run.plan)
    lines = ['Tracking: desired vs measured (the controller\'s plan against the twin)']
    lines.append(_row('states compared', str(deviation.samples), 'measured − desired position at each state'))
    lines += [_row(joint, f'{rms * 1e3:.3f} mrad RMS', f'peak {peak * 1e3:.3f} mrad')
              for joint, rms, peak in zip(deviation.joint_names, deviation.rms, deviation.peak)]
    return lines


def _alarms(run: Run, grace: float) -> list[str]:
    lines = ['Anomaly alarms']
    if ANOMALIES not in run.counts:
        return [*lines, _row('not recorded', ANOMALIES)]
    faults = ', '.join(f.label for f in run.faults) if run.faults else 'none'
    lines += [_row('ground-truth faults', faults if TRUTH in run.counts else f'not recorded ({TRUTH})'),
              _row('alarms', str(len(run.alarms)),
                   'each one checked against the faults the simulator injected')]
    for alarm in run.alarms:
        verdict = ('during a fault: detection' if in_fault(alarm, run.faults, grace)
                   else 'no fault: false alarm')
        cleared = 'active' if alarm.end is None else f'{alarm.end - run.start:.1f} s'
        lines.append(_row(f'{alarm.sensor}', f'{alarm.start - run.start:.1f} s to {cleared}',
                          f'{alarm.method}, severity {alarm.severity}: {verdict}'))
    return lines


def _condition(run: Run) -> list[str]:
    lines = ['Health, remaining useful life and risk per joint']
    if DIAGNOSTICS not in run.counts:
        return [*lines, _row('not recorded', DIAGNOSTICS)]
    if not run.rul:
        return [*lines, _row('no assessment yet', 'the planner assesses each full window of frames')]
    tasks = run.schedules[-1].tasks if run.schedules else ()
    risks = {t.component: t.risk.name for t in tasks}
    latest = {sample.component: sample for sample in run.rul}
    lines.append(_row('component', 'health', 'health: 1 new, 0 worn out; RUL [h]: median [10 %, 90 %]'))
    for component, sample in sorted(latest.items()):
        risk = risks.get(component, 'LOW (no task)' if run.schedules else f'not recorded ({SCHEDULE})')
        lines.append(_row(component, f'{sample.condition:.3f}',
                          f'RUL {hours(sample.rul, sample.rul_low, sample.rul_high)}, risk {risk}'))
    lines += [_row(t.component, '', f'{t.action}, risk {t.risk.name}') for t in tasks if t.component not in latest]
    return lines


def _prediction(run: Run) -> list[str]:
    lines = ['Prediction']
    if not run.predictions or run.twin is None:
        return [*lines, _row('not recorded', PREDICTION if not run.predictions else TWIN_JOINTS)]
    model = horizon_error(run.predictions, run.twin, 'twin')
    held = horizon_error(hold_baseline(run.predictions, run.twin), run.twin, 'held')
    if model is None or held is None:
        return [*lines, _row('not computable', 'no predicted point inside the recorded twin trajectory')]
    horizon = float(model.horizons[-1])
    lines += [_row('predictions compared', str(model.predictions)),
              _row(f'error at {horizon:g} s', f'{model.at(horizon) * 1e3:.1f} mrad RMS',
                   'predicted joint positions vs where the twin then was'),
              _row('position held (baseline)', f'{held.at(horizon) * 1e3:.1f} mrad RMS',
                   'the same horizon, predicting that the arm stays put')]
    return lines


def summary_text(run: Run, kinematics: ArmKinematics, max_lag: float, grace: float,
                 files: Sequence[str] = ()) -> str:
    """The summary of ``run`` (``files``: what was written, listed last)."""
    blocks = [_fidelity(run, kinematics, max_lag), _plan(run), _alarms(run, grace), _condition(run), _prediction(run)]
    blocks = [block for block in blocks if block]
    if files:
        blocks.append(['Written', *(f'  {path}' for path in files)])
    return '\n\n'.join('\n'.join(block) for block in blocks)
