"""twin_rul on run-to-failure files: usage errors, last-row evaluation, per-unit predictions."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from twin_maintenance.rul_cli import main


def run_to_failure(path: Path, units: dict[str, float], offset: dict[str, float] | None = None,
                   cut: dict[str, float] | None = None, seed: int = 0) -> Path:
    """Units wearing linearly to failure at their life (cycles); a sensor reads wear (+ offset)."""
    rng = np.random.default_rng(seed)
    with open(path, 'w', newline='') as stream:
        writer = csv.writer(stream)
        writer.writerow(['unit', 'cycle', 'vibration', 'wear', 'rul'])
        for unit, life in units.items():
            end = (cut or {}).get(unit, life)
            for cycle in np.arange(0.0, end + 1e-9, 1.0):
                wear = cycle / life
                sensor = 2.0 * wear + (offset or {}).get(unit, 0.0) + rng.normal(0.0, 0.01)
                writer.writerow([unit, cycle, f'{sensor:.5f}', f'{wear:.5f}', f'{life - cycle:g}'])
    return path


@pytest.fixture
def model(tmp_path: Path) -> Path:
    data = run_to_failure(tmp_path / 'train.csv', {'A': 100.0, 'B': 120.0, 'C': 80.0}, offset={'A': 0.3})
    path = tmp_path / 'rul.json'
    assert main(['train', '--data', str(data), '--model', str(path), '--time-column', 'cycle',
                 '--window', '30']) == 0
    return path


def predictions(path: Path) -> list[dict[str, str]]:
    with open(path, newline='') as stream:
        return list(csv.DictReader(stream))


def test_last_row_evaluation_gives_one_estimate_per_unit_at_its_last_known_row(tmp_path, model, capsys):
    test = run_to_failure(tmp_path / 'test.csv', {'U1': 90.0, 'U2': 110.0}, cut={'U1': 60.0, 'U2': 40.0}, seed=1)
    out = tmp_path / 'per_unit.csv'
    assert main(['evaluate', '--data', str(test), '--model', str(model), '--time-column', 'cycle',
                 '--at', 'last', '--predictions', str(out)]) == 0
    assert '2 predictions: RMSE' in capsys.readouterr().out
    rows = predictions(out)
    assert [(r['unit'], float(r['time']), float(r['rul_true'])) for r in rows] == [
        ('U1', 60.0, 30.0), ('U2', 40.0, 70.0)]
    assert all(float(r['rul_low']) <= float(r['rul_predicted']) <= float(r['rul_high']) for r in rows)
    assert abs(float(rows[0]['rul_predicted']) - 30.0) < 10.0

    spread = tmp_path / 'one_point.csv'  # --points 1 is the last row too, not the first
    assert main(['evaluate', '--data', str(test), '--model', str(model), '--time-column', 'cycle',
                 '--points', '1', '--predictions', str(spread)]) == 0
    assert [float(r['time']) for r in predictions(spread)] == [60.0, 40.0]


def test_a_test_unit_named_like_a_training_unit_does_not_inherit_its_calibration(tmp_path, model):
    """Training unit A reads 0.3 high and is calibrated for it; a new machine also called A is not."""
    def predicted(name: str, *flags: str) -> float:
        test = run_to_failure(tmp_path / f'{name}.csv', {name: 100.0}, cut={name: 50.0}, seed=2)
        out = tmp_path / f'{name}{len(flags)}.csv'
        assert main(['evaluate', '--data', str(test), '--model', str(model), '--time-column', 'cycle',
                     '--at', 'last', '--predictions', str(out), *flags]) == 0
        return float(predictions(out)[0]['rul_predicted'])
    assert predicted('A') == predicted('NEW')
    assert predicted('A', '--calibrated-units') != predicted('A')


@pytest.mark.parametrize(('arguments', 'message'), [
    (['train', '--model', 'MODEL'], "no column time"),
    (['train', '--model', 'MODEL', '--time-column', 'cycle', '--wear-column', 'health'],
     "no rows with a wear state in column 'health'"),
    (['evaluate', '--model', 'MODEL', '--time-column', 'cycle', '--rul-column', 'remaining'],
     'no row with a known remaining life'),
])
def test_usage_errors_end_in_one_line_and_exit_2(tmp_path, model, capsys, arguments, message):
    data = run_to_failure(tmp_path / 'data.csv', {'U': 50.0})
    command = [arguments[0], '--data', str(data)] + [str(model) if a == 'MODEL' else a for a in arguments[1:]]
    with pytest.raises(SystemExit) as exit_info:
        main(command)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert 'Traceback' not in error and message in error.splitlines()[-1]


def test_help_names_the_columns_and_the_evaluation_modes(capsys):
    with pytest.raises(SystemExit):
        main(['train', '--help'])
    assert 'normalized wear, 0 new .. 1 failure threshold' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(['evaluate', '--help'])
    text = capsys.readouterr().out
    assert '{last,spread}' in text and 'test units cut before failure' in text
