"""Prediction with and without the plan on the controlled cycle: joint error against horizon.

Simulates the nominal pick-and-place cycle (the simulator's own controller, physics at 1 kHz),
sampling every 10 ms what the twin receives: encoder readings (quantised positions, noisy
velocities and efforts), the desired joint state and the controller's plan (the current reference
and the next segment ends, as the plan channel sends them). The first ``--identify`` seconds fit the
controller model (``twin_predictor.plan.identify``) for the saved physics-informed ensemble; the
next ``--evaluate`` seconds score, from a start every ``--every`` s, in the same run:

* plan-aware: the ensemble driven by the identified controller along the plan (``plan_rollout``);
* plan-unaware: the ensemble holding the last measured torque (the predictor without a plan);
* hold: the joints stay where they were measured.

With ``--adapt SECONDS`` the predictor instead starts from a mis-identified controller model (the
identified kp and kd times ``--mis-gain``) and, over the next SECONDS, refits it online every
``--period`` s on a ``--window`` s window exactly as the node does (``twin_predictor.adaptation``:
fitted on the older part, kept only when its rollout error on the held-out end is ``--margin``
lower); the evaluation, after them, then shows the plan-aware error before and after the refits.
``--start-from FILE`` starts the refits from a saved controller model instead, ``--bandwidth HZ``
retunes the simulated cell's servos (the simulator's default is 6 Hz).

Error: predicted minus true joint position at each horizon, RMS over all joints and starts (mrad),
and the ratio of the hold baseline to the plan-aware error. Run:
``nice python bench/bench_plan.py [--identify 30] [--evaluate 60] [--step 0.04] [--save DIR]
[--adapt 120 --mis-gain 0.5 --period 10 --window 30]``.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import torch

from twin_core.paths import config_dir
from twin_predictor.adaptation import ControllerRefit, Guard, GuardSettings
from twin_predictor.config import PlanConfig
from twin_predictor.dynamics import PhysicsInformedArm
from twin_predictor.heldout import TrackingWindow
from twin_predictor.plan import ControllerModel, identify, plan_rollout
from twin_predictor.predictor import Predictor
from twin_predictor.registry import load
from twin_sim.recording import SAMPLE_PERIOD, Recording, record

HORIZONS = (0.25, 0.5, 1.0)
PREDICTIONS = 50  # timed with and without a concurrent refit


def at_horizons(times: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Rows (T, n) linearly interpolated at HORIZONS: (len(HORIZONS), n)."""
    return np.array([[np.interp(h, times, rows[:, j]) for j in range(rows.shape[1])] for h in HORIZONS])


def adapt_online(model: PhysicsInformedArm, start: ControllerModel, data: Recording, rows: range,
                 arguments: argparse.Namespace) -> ControllerModel:
    """Stream ``rows`` of ``data`` into a tracking window, refit every ``--period`` s; the controller kept."""
    predictor = Predictor(model, 1, arguments.step, 1, controller=start)
    window = TrackingWindow(arguments.window)
    guard = Guard(predictor, window, GuardSettings(arguments.window, arguments.holdout, arguments.margin,
                                                   max(HORIZONS), arguments.step, arguments.starts))
    refit = ControllerRefit(guard, arguments.period)
    every = round(arguments.period / SAMPLE_PERIOD)
    verdict = guard.verdicts['controller']
    for index in rows:
        window.add(index * SAMPLE_PERIOD, data.q[index], data.qd[index], data.tau[index], data.plans[index], 0.0)
        if (index - rows.start + 1) % every == 0:
            begin, attempts = time.perf_counter(), verdict.accepted + verdict.rejected
            refit.once()
            judged = verdict.accepted + verdict.rejected > attempts
            print(f'  {index * SAMPLE_PERIOD:5.0f} s: ' + (f'{verdict.last} ({time.perf_counter() - begin:.1f} s)'
                                                             if judged else 'window not full yet'))
    idle, busy = (prediction_ms(predictor, data, rows[-PREDICTIONS:], refit if busy else None) for busy in (0, 1))
    print(f'ms per plan-aware prediction (median of {PREDICTIONS}): {idle:.1f} alone, {busy:.1f} while a refit '
          'runs in a worker thread')
    return predictor.controller or start


def prediction_ms(predictor: Predictor, data: Recording, rows: range, refit: ControllerRefit | None) -> float:
    """Median milliseconds of ``predict_with_plan`` at ``rows``, with ``refit`` running back to back meanwhile."""
    if refit is not None:
        refit.period = 1e-3
        refit.start()
    costs = []
    for index in rows:
        begin = time.perf_counter()
        predictor.predict_with_plan(data.q[index], data.qd[index], data.plans[index], 0.0, predictor.step,
                                    round(max(HORIZONS) / predictor.step))
        costs.append(time.perf_counter() - begin)
    if refit is not None:
        refit.stop()
    return 1e3 * float(np.median(costs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--scenario', default='nominal')
    parser.add_argument('--identify', type=float, default=30.0, help='seconds to fit the controller model on')
    parser.add_argument('--evaluate', type=float, default=60.0, help='seconds scored after them')
    parser.add_argument('--every', type=float, default=0.1, help='seconds between prediction starts')
    parser.add_argument('--step', type=float, default=PlanConfig().step,
                        help="integration step of the rollouts (s; the predictor's default)")
    parser.add_argument('--seed', type=int, default=3)
    parser.add_argument('--save', default='', help='write the identified controller.json into this directory')
    parser.add_argument('--adapt', type=float, default=0.0, help='seconds of online refits before the evaluation')
    parser.add_argument('--mis-gain', type=float, default=0.5, help='factor on kp and kd the refits start from')
    parser.add_argument('--start-from', default='', help='controller.json the refits start from instead')
    parser.add_argument('--bandwidth', type=float, default=None, help="the cell's servo bandwidth (Hz; retunes it)")
    parser.add_argument('--period', type=float, default=10.0, help='seconds between online refits')
    parser.add_argument('--window', type=float, default=30.0, help='window of an online refit (s)')
    parser.add_argument('--holdout', type=float, default=0.25, help='held-out fraction of the window')
    parser.add_argument('--margin', type=float, default=0.05, help='relative improvement a refit needs')
    parser.add_argument('--starts', type=int, default=40, help='held-out prediction starts scored per refit')
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    model, metadata = load(config_dir() / 'models' / 'predictor')
    assert isinstance(model, PhysicsInformedArm)
    joints = tuple(metadata['joint_names'])
    horizon = max(HORIZONS)
    start = time.perf_counter()
    data = record(arguments.scenario, arguments.identify + arguments.adapt + arguments.evaluate + horizon + 0.1,
                  arguments.seed, arguments.bandwidth)
    print(f'simulated {len(data.q) * SAMPLE_PERIOD:.0f} s of the {arguments.scenario} cycle in '
          f'{time.perf_counter() - start:.0f} s (model: {metadata["name"]} v{metadata["version"]})')
    fit = slice(0, round(arguments.identify / SAMPLE_PERIOD))
    controller = identify(model, joints, data.q[fit], data.qd[fit], data.tau[fit], data.desired[fit],
                          data.desired_velocity[fit], data.desired_acceleration[fit])
    show = lambda c: ' '.join(f'{k} {np.round(getattr(c, k), 1).tolist()}' for k in ('kp', 'kd'))  # noqa: E731
    print(f'controller model (per joint): {show(controller)} a', np.round(controller.feedforward, 3).tolist(),
          'b', np.round(controller.offset, 3).tolist(), 'residual N·m', np.round(controller.residual_rms, 3).tolist())
    if arguments.save:
        print(f'saved {controller.save(arguments.save)}')
    controllers = {'plan-aware': controller}
    evaluated = fit.stop + round(arguments.adapt / SAMPLE_PERIOD)
    if arguments.adapt:
        gain = arguments.mis_gain
        mis = ControllerModel.load(arguments.start_from) if arguments.start_from else replace(
            controller, kp=tuple(gain * np.array(controller.kp)), kd=tuple(gain * np.array(controller.kd)))
        origin = arguments.start_from or f'kp kd × {arguments.mis_gain:g}'
        print(f'online refits from {arguments.identify:g} s to {evaluated * SAMPLE_PERIOD:g} s, starting from '
              f'{origin}: {show(mis)}')
        adapted = adapt_online(model, mis, data, range(fit.stop, evaluated), arguments)
        print(f'after them: {show(adapted)}')
        controllers = {'plan-aware, identified offline': controller, f'plan-aware, {origin}': mis,
                       'plan-aware, after online refits': adapted}
    steps = round(horizon / arguments.step) + 1
    times = arguments.step * np.arange(steps + 1)
    unaware = Predictor(model, metadata['version'], arguments.step, steps)
    lag = round(horizon / SAMPLE_PERIOD) + 1
    starts = range(evaluated, len(data.q) - lag, round(arguments.every / SAMPLE_PERIOD))
    errors: dict[str, list[np.ndarray]] = {name: [] for name in (*controllers, 'plan-unaware', 'hold position')}
    timing = dict.fromkeys((*controllers, 'plan-unaware'), 0.0)
    for index in starts:
        truth = at_horizons(SAMPLE_PERIOD * np.arange(lag), data.truth[index:index + lag])
        q, qd, tau = data.q[index], data.qd[index], data.tau[index]
        desired = data.plans[index].sample(times[1:])
        for name, driver in controllers.items():
            begin = time.perf_counter()
            aware = plan_rollout(model, driver, q, qd, desired.position, desired.velocity, desired.acceleration,
                                 arguments.step).mean(0)
            timing[name] += time.perf_counter() - begin
            errors[name].append(at_horizons(times, aware) - truth)
        begin = time.perf_counter()
        blind = unaware.predict(q, qd, tau).mean
        timing['plan-unaware'] += time.perf_counter() - begin
        errors['plan-unaware'].append(at_horizons(times, blind) - truth)
        errors['hold position'].append(q[None, :] - truth)
    rms = {name: 1e3 * np.sqrt(np.mean(np.square(rows), axis=(0, 2))) for name, rows in errors.items()}
    end = evaluated * SAMPLE_PERIOD + arguments.evaluate
    print(f'\n{len(starts)} predictions from {evaluated * SAMPLE_PERIOD:g} s to {end:g} s '
          f'of the cycle, every {arguments.every:g} s; rollout step {arguments.step:g} s; '
          f'joint position error RMS over the {len(joints)} joints [mrad]')
    print('| prediction | ' + ' | '.join(f'{h:g} s' for h in HORIZONS) + ' | ms per prediction |')
    print('|---|' + '---:|' * (len(HORIZONS) + 1))
    for name, values in rms.items():
        cost = f'{1e3 * timing[name] / len(starts):.1f}' if name in timing else '–'
        print(f'| {name} | ' + ' | '.join(f'{v:.1f}' for v in values) + f' | {cost} |')
    ratio = rms['hold position'] / rms[next(iter(controllers))]
    print(f'| hold / {next(iter(controllers))} | ' + ' | '.join(f'{r:.1f}×' for r in ratio) + ' | |')


if __name__ == '__main__':
    main()
