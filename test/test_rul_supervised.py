"""Supervised RUL: the fleet benchmark generator, regime normalisation, window features, boosting
trees read into arrays, conformal coverage, and twin_rul's supervised path end to end.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from twin_maintenance.fleet_data import MODES, PAYLOADS, SENSORS, SETTINGS, SPEEDS, simulate_fleet, write_fleet
from twin_maintenance.rul_cli import main
from twin_maintenance.supervised import Conformal, Regimes, Runs, Trees, window_features


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline='') as stream:
        return list(csv.DictReader(stream))


@pytest.fixture(scope='module')
def fleet(tmp_path_factory: pytest.TempPathFactory):
    return write_fleet(tmp_path_factory.mktemp('fleet'), train_units=20, test_units=10, seed=3)


def test_the_fleet_runs_train_units_to_failure_and_cuts_test_units_before_it(fleet):
    train, test, truth = rows(fleet.train), rows(fleet.test), rows(fleet.truth)
    assert list(train[0]) == ['unit', 'time', *SENSORS, *SETTINGS, 'wear', 'rul']
    assert list(test[0]) == ['unit', 'time', *SENSORS, *SETTINGS]
    for run, number in zip(fleet.train_runs, range(1, 21)):
        unit = [r for r in train if r['unit'] == f'train_{number}']
        assert [int(r['rul']) for r in unit] == list(range(run.life - 1, -1, -1))
        assert 1.0 > float(unit[-1]['wear']) > 0.9 > float(unit[0]['wear'])  # at the start of the failing cycle
    assert [r['unit'] for r in truth] == [f'test_{n}' for n in range(1, 11)]
    for run, cut, row, number in zip(fleet.test_runs, fleet.cuts, truth, range(1, 11)):
        assert run.life // 10 <= cut < run.life
        assert int(row['rul']) == run.life - cut >= 1
        assert sum(r['unit'] == f'test_{number}' for r in test) == cut
    regimes = {(float(r['payload']), float(r['speed'])) for r in train}
    assert regimes == {(p, s) for p in PAYLOADS for s in SPEEDS}


def test_both_failure_modes_occur_and_show_in_their_own_sensors():
    runs = simulate_fleet(60, np.random.default_rng(5))
    assert {run.mode for run in runs} == set(MODES)
    every = np.concatenate([run.values for run in runs])
    regimes = Regimes.fit(every[:, len(SENSORS):], every[:, :len(SENSORS)])
    change = {mode: [] for mode in MODES}  # normalised sensors, last 20 cycles minus first 20
    for run in runs:
        z = regimes.normalise(run.values[:, len(SENSORS):], run.values[:, :len(SENSORS)])
        change[run.mode].append(z[-20:].mean(axis=0) - z[:20].mean(axis=0))
    gearbox, bearing = (np.mean(change[mode], axis=0) for mode in MODES)
    vibration, torque = SENSORS.index('vibration'), SENSORS.index('torque')
    assert gearbox[vibration] > bearing[vibration] + 0.5
    assert bearing[torque] > gearbox[torque] + 0.5
    assert 10 < min(run.life for run in runs) and max(run.life for run in runs) < 2000


def test_regimes_remove_the_settings_shift_exactly_or_by_clusters():
    rng = np.random.default_rng(0)
    settings = rng.choice([[0.0, 1.0], [5.0, 1.0], [5.0, 2.0]], 3000)
    shift = np.column_stack((10 * settings[:, 0] + 3 * settings[:, 1], settings[:, 1] ** 2))
    sensors = shift + rng.normal(0, 1, (3000, 2))
    for given, clusters in ((settings, None), (settings + rng.normal(0, 0.01, settings.shape), 3)):
        regimes = Regimes.fit(given, sensors, clusters)
        assert len(regimes.centers) == 3
        z = regimes.normalise(given, sensors)
        for label in range(3):
            inside = regimes.label(given) == label
            assert np.allclose(z[inside].mean(axis=0), 0.0, atol=1e-9)
            assert np.allclose(z[inside].std(axis=0), 1.0, atol=1e-9)
    assert np.abs(np.corrcoef(sensors[:, 0], settings[:, 0])[0, 1]) > 0.9


def test_window_features_restart_at_each_unit():
    units = np.array(['a'] * 6 + ['b'] * 4)
    time = np.r_[np.arange(1, 7), np.arange(1, 5)].astype(float)
    values = np.r_[2.0 * np.arange(6), 100.0 - np.arange(4)][:, None]
    runs = Runs(units, time, values, np.zeros((10, 0)))
    last, mean, slope, age = window_features(runs, values, 3).T
    assert np.array_equal(last, values[:, 0]) and np.array_equal(age, time)
    assert np.allclose(slope, [0, 2, 2, 2, 2, 2, 0, -1, -1, -1])
    assert np.allclose(mean, [0, 1, 2, 4, 6, 8, 100, 99.5, 99, 98])


def test_boosting_trees_read_into_arrays_predict_as_scikit_learn_does():
    from sklearn.ensemble import HistGradientBoostingRegressor
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 4))
    y = np.sin(x[:, 0]) + x[:, 1] * x[:, 2] + rng.normal(0, 0.1, 500)
    trees = Trees.fit(x, y, seed=0)
    reference = HistGradientBoostingRegressor(max_iter=200, learning_rate=0.05, min_samples_leaf=40,
                                              early_stopping=False, random_state=0).fit(x, y)
    probe = rng.normal(size=(200, 4))
    assert np.allclose(trees.predict(probe), reference.predict(probe))


def test_conformal_intervals_cover_the_asked_share_of_new_units():
    """Residuals grow with the remaining life; intervals from 300 calibration units cover about
    80 % of 3000 new ones in every band of predicted life, not only on average.
    """
    rng = np.random.default_rng(2)

    def units(count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = 5
        true = rng.uniform(0, 200, (count, rows))
        predicted = true + rng.normal(0, 2 + 0.2 * true)
        names = np.repeat(np.arange(count), rows)
        return predicted.ravel(), true.ravel(), names
    conformal = Conformal.fit(*units(300), coverage=0.8)
    predicted, true, _ = units(3000)
    low, high = conformal.interval(predicted)
    inside = (low <= true) & (true <= high)
    assert 0.77 < inside.mean() < 0.85
    for band in range(3):
        chosen = np.searchsorted(conformal.edges, predicted) == band
        assert 0.74 < inside[chosen].mean() < 0.87
    assert np.mean(high - low)[()] < 0.6 * np.mean(2 * 1.28 * (2 + 0.2 * 200))  # adaptive, not the worst band's


def test_twin_rul_trains_and_evaluates_the_supervised_model_against_the_baselines(fleet, tmp_path, capsys):
    model, out = tmp_path / 'model', tmp_path / 'per_unit.csv'
    assert main(['train', '--method', 'supervised', '--data', str(fleet.train), '--settings', 'payload,speed',
                 '--model', str(model), '--epochs', '2', '--window', '10']) == 0
    text = capsys.readouterr().out
    assert 'cnn, cap' in text and 'boosting, cap none' in text and '6 regimes' in text
    assert {p.name for p in model.iterdir()} >= {'model.json', 'trees.npz'}
    assert main(['evaluate', '--data', str(fleet.test), '--truth', str(fleet.truth), '--model', str(model),
                 '--at', 'last', '--predictions', str(out)]) == 0
    text = capsys.readouterr().out
    for name in ('mean remaining life', 'linear regression, last window', 'gradient boosting, last window',
                 '(regimes, cap'):
        assert name in text
    predictions, truth = rows(out), rows(fleet.truth)
    assert {r['unit']: float(r['rul_true']) for r in predictions} == {r['unit']: float(r['rul']) for r in truth}
    assert {r['unit']: float(r['time']) for r in predictions} == {f'test_{n}': c for n, c in enumerate(fleet.cuts, 1)}
    assert all(0 <= float(r['rul_low']) <= float(r['rul_predicted']) <= float(r['rul_high']) for r in predictions)
    assert len({r['rul_mean'] for r in predictions}) == 1 and len({r['rul_boosting'] for r in predictions}) > 1


@pytest.mark.parametrize(('arguments', 'message'), [
    (['train', '--method', 'supervised', '--settings', 'load', '--model', 'MODEL'], 'no settings column load'),
    (['train', '--method', 'supervised', '--models', 'forest', '--model', 'MODEL'], '--models: comma-separated'),
    (['train', '--method', 'supervised', '--cap', 'soon', '--model', 'MODEL'], '--cap: a remaining life'),
    (['evaluate', '--truth', 'TRUTH', '--model', 'CURVE'], 'no remaining life of unit test_1'),
])
def test_supervised_usage_errors_end_in_one_line_and_exit_2(fleet, tmp_path, capsys, arguments, message):
    truth = tmp_path / 'truth.csv'
    truth.write_text('unit,rul\ntest_2,5\n')
    curve = tmp_path / 'curve.json'
    assert main(['train', '--data', str(fleet.train), '--model', str(curve)]) == 0
    data = fleet.test if arguments[0] == 'evaluate' else fleet.train
    replace = {'MODEL': str(tmp_path / 'model'), 'TRUTH': str(truth), 'CURVE': str(curve)}
    with pytest.raises(SystemExit) as exit_info:
        main([arguments[0], '--data', str(data), *(replace.get(a, a) for a in arguments[1:])])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert 'Traceback' not in error and message in error.splitlines()[-1]


def test_the_command_line_loads_neither_torch_nor_scikit_learn_until_it_trains():
    import subprocess
    import sys
    code = ('import sys, twin_maintenance.rul_cli, twin_maintenance.supervised, twin_maintenance.fleet_data; '
            'print(sorted({"torch", "sklearn"} & set(sys.modules)))')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == '[]'


@pytest.mark.parametrize('models', [('cnn',), ('boosting',)])
def test_a_saved_model_predicts_as_the_fitted_one(fleet, tmp_path, models):
    from twin_maintenance.rul_cli import read_table, runs_of
    from twin_maintenance.supervised import FitOptions, SupervisedRul
    table = read_table(fleet.train)
    runs = runs_of(table, SETTINGS)
    model = SupervisedRul.fit(runs, table.rul, SENSORS, SETTINGS, FitOptions(window=10, cap='none', models=models,
                                                                             epochs=1), log=lambda line: None)
    assert model.kind == models[0] and len(model.members) == 5
    model.save(tmp_path / 'model')
    loaded = SupervisedRul.load(tmp_path / 'model')
    rows = np.arange(0, len(table.rul), 7)
    assert np.allclose(loaded.predict(runs, rows), model.predict(runs, rows))
    assert np.allclose(loaded.conformal.interval(model.predict(runs, rows)), model.conformal.interval(
        model.predict(runs, rows)))
