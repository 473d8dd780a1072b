"""A run as one self-contained HTML page: a summary table, then one section per view, each
with its figure (embedded PNG) and numbers, or a note naming the topic the run did not record
(or recorded without what the view needs).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from twin_core.kinematics import ArmKinematics
from twin_report import figures
from twin_report.analysis import (
    HorizonError,
    PlanDeviation,
    Tracking,
    alarms_inside,
    detections,
    hold_baseline,
    horizon_error,
    in_fault,
    plan_deviation,
    tracking,
)
from twin_report.page import document, image, milliseconds, nodata, not_recorded, note, pairs, section, table
from twin_report.series import (
    ANOMALIES,
    CAMERA_FEED,
    DIAGNOSTICS,
    OPTIONAL_TOPICS,
    PREDICTION,
    SCHEDULE,
    TOPICS,
    TRUTH,
    TRUTH_JOINTS,
    TWIN_JOINTS,
    Run,
)

HOUR = 3600.0
HELD = 'twin, baseline: position held'


@dataclass(frozen=True)
class ReportOptions:
    max_lag: float = 0.5  # s, latency search range of the fidelity evaluation
    grace: float = 2.0  # s after a fault's end in which a rising alarm still counts as inside


@dataclass
class Report:
    """The page and its figures by name (tracking, plan, prediction, anomalies, health, schedule)."""

    html: str = ''
    images: dict[str, bytes] = field(default_factory=dict)
    summary: list[tuple[str, object]] = field(default_factory=list)


def utc(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime('%Y-%m-%d %H:%M:%S UTC')


def mrad(value: float) -> str:
    return f'{value * 1e3:.2f} mrad'


def hours(rul: float, low: float, high: float) -> str:
    """An RUL (s) as ``median [10 %, 90 %]`` in h; 'unbounded' without a wear trend (infinite)."""
    if not np.isfinite(rul):
        return 'unbounded (no wear trend)'
    return f'{rul / HOUR:.2f} [{low / HOUR:.2f}, {high / HOUR:.2f}]'


def _absent(run: Run, topic: str, consequence: str, empty: str) -> str:
    """Why a series is missing: ``topic`` not recorded, or recorded without what it needs (``empty``)."""
    return nodata(empty) if topic in run.counts else not_recorded(topic, consequence)


def _tracking(run: Run, report: Report, kinematics: ArmKinematics, options: ReportOptions) -> str:
    title = ('tracking', 'Twin vs physical joint tracking')
    if run.twin is None:
        return section(*title, [_absent(run, TWIN_JOINTS, "the twin's joint states",
                                        f'{TWIN_JOINTS} holds fewer than two samples.')])
    if run.truth is None:
        truth = TRUTH_JOINTS if TRUTH_JOINTS in run.counts else TRUTH
        return section(*title, [_absent(run, truth, f'nor {TRUTH}: the ground truth',
                                        f'{truth} holds fewer than two samples.')])
    try:
        result: Tracking = tracking(run.twin, run.truth, kinematics, options.max_lag)
    except ValueError as error:
        return section(*title, [nodata(f'fidelity not computable: {error}.')])
    fidelity = result.report
    report.summary += [
        ('latency (twin behind truth)', milliseconds(fidelity.latency)),
        ('joint RMSE, aligned (max over joints)', mrad(float(fidelity.joint_rmse.max()))),
        ('end-effector error mean / p95 / max',
         f'{fidelity.ee_error_mean * 1e3:.2f} / {fidelity.ee_error_p95 * 1e3:.2f} / '
         f'{fidelity.ee_error_max * 1e3:.2f} mm')]
    report.images['tracking'] = figures.tracking_figure(run, result)
    rows = [(joint, mrad(aligned), mrad(raw)) for joint, aligned, raw in
            zip(fidelity.joint_names, fidelity.joint_rmse, fidelity.joint_rmse_unaligned)]
    return section(*title, [
        note(f'Ground truth: {run.truth_source}. Twin samples compared: {fidelity.samples}; the '
             f'latency L minimizes the RMSE between twin(t) and truth(t − L) within '
             f'±{options.max_lag:g} s.'),
        image(report.images['tracking'], 'twin and truth joint positions and error'),
        table(('joint', 'RMSE aligned', 'RMSE as is'), rows),
        pairs([('latency', milliseconds(fidelity.latency)),
               ('end-effector error mean', f'{fidelity.ee_error_mean * 1e3:.2f} mm'),
               ('end-effector error p95', f'{fidelity.ee_error_p95 * 1e3:.2f} mm'),
               ('end-effector error max', f'{fidelity.ee_error_max * 1e3:.2f} mm')])])


def _plan(run: Run, report: Report) -> list[str]:
    """The section on the plan; none when no twin state carried one (a cell without a plan)."""
    if run.plan is None:
        return []
    deviation: PlanDeviation = plan_deviation(run.plan)
    worst = int(deviation.peak.argmax())
    report.summary.append(('plan deviation peak (worst joint)',
                           f'{mrad(float(deviation.peak[worst]))} ({deviation.joint_names[worst]})'))
    report.images['plan'] = figures.plan_figure(run, run.plan)
    return [section('plan', 'Tracking: desired vs measured', [
        note(f'{deviation.samples} twin states with a plan: the measured joint positions against '
             "the controller's desired ones (plan/desired_joint_states) interpolated at each state's stamp."),
        image(report.images['plan'], 'desired and measured joint positions and their deviation'),
        table(('joint', 'deviation RMS', 'deviation peak'),
              [(joint, mrad(rms), mrad(peak)) for joint, rms, peak in
               zip(deviation.joint_names, deviation.rms, deviation.peak)])])]


def _prediction(run: Run, report: Report) -> str:
    title = ('prediction', 'Prediction vs actual')
    if not run.predictions:
        return section(*title, [_absent(run, PREDICTION, "the twin's predictions",
                                        f'{PREDICTION} holds no prediction with points.')])
    errors: list[HorizonError] = [e for e in (
        horizon_error(run.predictions, run.twin, 'twin') if run.twin else None,
        horizon_error(run.predictions, run.truth, 'truth') if run.truth else None,
        horizon_error(hold_baseline(run.predictions, run.twin), run.twin, HELD) if run.twin else None) if e]
    if not errors:
        return section(*title, [nodata('no predicted point falls inside a recorded twin or truth '
                                       'trajectory.')])
    reference = run.twin or run.truth
    assert reference is not None  # an error was measured against one of them
    report.images['prediction'] = figures.prediction_figure(run, errors, reference)
    last = errors[0].horizons[-1]
    report.summary += [(f'prediction RMSE at {last:g} s vs {e.reference}', mrad(e.at(last)))
                       for e in errors]
    marks = sorted({float(h) for h in (0.1, 0.25, 0.5, last) if h <= last})
    rows = [(f'{h:g} s', *(mrad(e.at(h)) for e in errors)) for h in marks]
    invalid = sum(not np.isfinite(p.positions).all() for p in run.predictions)
    if invalid:
        report.summary.append(('predictions with non-finite positions', invalid))
    return section(*title, [
        note(f'{len(run.predictions)} predictions ({invalid} with non-finite positions, left '
             f'out; compared: {", ".join(f"{e.predictions} vs {e.reference}" for e in errors)}); '
             'each point is compared with the recorded '
             'trajectory at origin (header stamp) + time_from_start, at the same stamps '
             '(the truth comparison therefore includes the twin\'s latency). The baseline '
             'predicts that the arm stays where the twin was at the origin.'),
        image(report.images['prediction'], 'prediction error against horizon'),
        table(('horizon', *(f'RMSE vs {e.reference}' for e in errors)), rows)])


def _anomalies(run: Run, report: Report, options: ReportOptions) -> str:
    title = ('anomalies', 'Anomaly timeline against ground-truth faults')
    recorded, truth = ANOMALIES in run.counts, TRUTH in run.counts
    alarms_missing = not_recorded(ANOMALIES, "the twin's alarms")
    faults_missing = not_recorded(TRUTH, 'the ground-truth fault intervals')
    if not recorded and not truth:
        report.summary.append(('anomaly alarms', f'not recorded: {ANOMALIES}'))
        return section(*title, [alarms_missing, faults_missing])
    report.summary.append(('ground-truth faults', len(run.faults) if truth else f'not recorded: {TRUTH}'))
    parts = [] if truth else [faults_missing]
    if not recorded:
        report.summary.append(('anomaly alarms', f'not recorded: {ANOMALIES}'))
        parts.append(alarms_missing)
    elif truth:
        inside = alarms_inside(run, options.grace)
        report.summary.append(('anomaly alarms inside / outside fault intervals',
                               f'{inside} / {len(run.alarms) - inside}'))
        parts.append(note(f'Alarms: {len(run.alarms)}; inside a fault interval (or up to {options.grace:g} s '
                          f'after it): {inside}; outside: {len(run.alarms) - inside}.'))
    else:
        report.summary.append(('anomaly alarms', len(run.alarms)))
    report.images['anomalies'] = figures.anomaly_figure(run, options.grace)
    parts.append(image(report.images['anomalies'], 'anomaly alarms over fault intervals'))
    if run.faults:
        parts.append(table(('fault', 'start [s]', 'end [s]', 'alarms', 'first alarm after'), [
            (d.fault.label, round(d.fault.start - run.start, 2), round(d.fault.end - run.start, 2),
             d.alarms if recorded else '—', '—' if d.delay is None else f'{d.delay * 1e3:.0f} ms')
            for d in detections(run, options.grace)]))
    if run.alarms:
        parts.append(table(('sensor', 'method', 'rise [s]', 'clear [s]', 'severity', 'in fault'), [
            (a.sensor, a.method, round(a.start - run.start, 2),
             '—' if a.end is None else round(a.end - run.start, 2), a.severity,
             'yes' if in_fault(a, run.faults, options.grace) else 'no') for a in run.alarms]))
    return section(*title, parts)


def _condition(run: Run, report: Report) -> str:
    title = ('health', 'Health and remaining useful life')
    missing = [] if run.condition is not None else [
        _absent(run, TRUTH, 'the ground-truth health', f'{TRUTH} carries no health.')]
    if not run.rul:
        missing.append(_absent(run, DIAGNOSTICS, "the maintenance planner's health and RUL",
                               f'no maintenance planner RUL statuses among the {DIAGNOSTICS} messages.'))
    if run.condition is None and not run.rul:
        return section(*title, missing)
    report.images['health'] = figures.condition_figure(run)
    parts = [image(report.images['health'], 'health and RUL trends'), *missing]
    latest = {s.component: s for s in run.rul}
    truth = dict(zip(run.condition.joint_names, run.condition.condition[-1])) if run.condition else {}
    rows = [(component, f'{truth[component]:.3f}' if component in truth else '—',
             f'{latest[component].condition:.3f}' if component in latest else '—',
             hours(latest[component].rul, latest[component].rul_low, latest[component].rul_high)
             if component in latest else '—')
            for component in dict.fromkeys([*truth, *latest])]
    parts.append(table(('component', 'truth health (last)', 'twin health (last)',
                        'twin RUL [h] median [10 %, 90 %]'), rows))
    parts.append(note('Truth health: 1 new, 0 at the failure threshold. Twin health: the '
                      "maintenance planner's health index of its RUL model."))
    return section(*title, parts)


def _schedule(run: Run, report: Report) -> str:
    title = ('schedule', 'Maintenance schedule')
    if not run.schedules:
        report.summary.append(('maintenance plan', 'none' if SCHEDULE in run.counts else f'not recorded: {SCHEDULE}'))
        return section(*title, [_absent(
            run, SCHEDULE, 'record it as latched: '
            f'twin_record --topics {SCHEDULE}:twin_interfaces/msg/MaintenanceSchedule:latched',
            f'{SCHEDULE} was recorded without a message.')])
    latest = run.schedules[-1]
    late = sum(task.late for task in latest.tasks)
    report.summary.append(('maintenance plan', f'revision {latest.revision}: '
                           f'{len(latest.tasks)} tasks, {late} late'))
    parts = [note(f'Latest plan: revision {latest.revision}, planned at {utc(latest.stamp)}; '
                  f'{len(run.schedules)} revisions in the run.')]
    if not latest.tasks:
        return section(*title, [*parts, nodata('the latest plan has no tasks.')])
    report.images['schedule'] = figures.schedule_figure(latest)
    parts += [image(report.images['schedule'], 'maintenance schedule'),
              table(('component', 'action', 'risk', 'start', 'end', 'deadline',
                     'RUL [h] median [10 %, 90 %]', 'resources', 'late'), [
                  (t.component, t.action, t.risk.name, utc(t.start), utc(t.end), utc(t.deadline),
                   hours(t.rul, t.rul_low, t.rul_high) if t.rul > 0.0 else '—', ', '.join(t.resources),
                   'yes' if t.late else 'no')
                  for t in latest.tasks])]
    if latest.unplaced:
        parts.append(note(f'Unplaced (no slot in the horizon): {", ".join(latest.unplaced)}.'))
    return section(*title, parts)


def _camera(run: Run, report: Report) -> None:
    """The camera check's discrepancies in the summary, where the run has them."""
    if run.camera is None:
        return
    image_mm, _, position_mm = run.camera.T
    report.summary += [
        ('camera vs twin: frames judged', len(run.camera)),
        ('camera vs twin: image discrepancy mean / p95 / max',
         f'{image_mm.mean():.2f} / {np.percentile(image_mm, 95):.2f} / {image_mm.max():.2f} mm'),
        ('camera vs twin: tool plate seen, mean / p95', f'{position_mm.mean():.2f} / '
         f'{np.percentile(position_mm, 95):.2f} mm')]


def build_report(run: Run, kinematics: ArmKinematics, options: ReportOptions = ReportOptions()) -> Report:
    """The page of ``run``: summary first, then the sections (the plan's only with a plan)."""
    report = Report()
    report.summary += [('source', run.source), ('start', utc(run.start)),
                       ('duration', f'{run.end - run.start:.1f} s')]
    report.summary += [(f'messages {topic}', run.counts.get(topic, 'not recorded')) for topic in TOPICS
                       if topic in run.counts or topic not in OPTIONAL_TOPICS]
    report.summary += [(f'messages {topic}', run.counts[topic]) for topic in CAMERA_FEED if topic in run.counts]
    _camera(run, report)
    sections = [_tracking(run, report, kinematics, options), *_plan(run, report), _prediction(run, report),
                _anomalies(run, report, options), _condition(run, report), _schedule(run, report)]
    summary = section('summary', 'Summary', [pairs(report.summary)])
    report.html = document('Digital twin run report', [summary, *sections])
    return report
