"""twin_anomaly on CSV files of other machines: time columns, labels, usage errors, help."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from twin_anomaly.anomaly_cli import main
from twin_core.channels import read_csv


def write(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    path.write_text('\n'.join(','.join(str(v) for v in row) for row in [header, *rows]) + '\n')
    return path


def test_times_are_read_as_seconds_or_iso_date_times(tmp_path: Path) -> None:
    csv = write(tmp_path / 'mixed.csv', ['time', 'a'], [
        ['2024-03-01T12:00:00', 1.0], ['2024-03-01T12:00:00.5Z', 2.0],
        ['2024-03-01 13:00:01+01:00', 3.0], [1709294402.0, 4.0]])
    series = read_csv(csv)
    np.testing.assert_allclose(series.time - series.time[0], [0.0, 0.5, 1.0, 2.0])
    assert series.time[0] == 1709294400.0  # naive = UTC


@pytest.mark.parametrize(('cell', 'reason'), [('noon', 'neither seconds nor an ISO 8601 date-time'),
                                              ('', 'neither seconds nor an ISO 8601 date-time'),
                                              ('nan', 'not a finite time')])
def test_a_time_that_is_not_one_names_its_row(tmp_path: Path, cell: str, reason: str) -> None:
    csv = write(tmp_path / 'bad.csv', ['time', 'a'], [[0.0, 1.0], [cell, 2.0]])
    with pytest.raises(ValueError, match=f"row 3: time '{cell}' is {reason}"):
        read_csv(csv)


def sensor_file(path: Path, rows: int = 600, start: str | None = None) -> Path:
    rng = np.random.default_rng(0)
    label = (np.arange(rows) >= rows - 50).astype(int)
    values = rng.normal(size=(rows, 2)) + 8.0 * label[:, None]
    times = [f'{start}{i // 60:02d}:{i % 60:02d}' if start else i for i in range(rows)]
    return write(path, ['time', 'pressure', 'flow', 'label'],
                 [[t, f'{a:.4f}', f'{b:.4f}', lab] for t, (a, b), lab in zip(times, values, label)])


def test_the_label_column_is_never_fitted_as_a_sensor(tmp_path: Path, capsys) -> None:
    data = sensor_file(tmp_path / 'run.csv', start='2024-03-01T10:')
    model = tmp_path / 'model'
    assert main(['fit', '--data', str(data), '--model', str(model), '--methods', 'robust']) == 0
    assert 'fitted 2 channels on 550 rows' in capsys.readouterr().out  # labelled rows left out
    from twin_anomaly.anomaly import AnomalyModel
    assert AnomalyModel.load(model).names == ('pressure', 'flow')
    assert main(['evaluate', '--data', str(data), '--model', str(model)]) == 0
    assert 'nan' not in capsys.readouterr().out


@pytest.mark.parametrize(('arguments', 'message'), [
    (['fit', '--data', 'DATA', '--model', 'MODEL', '--time-column', 'stamp'], "no column 'stamp'"),
    (['fit', '--data', 'MISSING', '--model', 'MODEL'], 'No such file or directory'),
    (['evaluate', '--data', 'DATA', '--model', 'MODEL', '--label-column', 'fault'], "no column 'fault'"),
    (['fit', '--data', 'DATA', '--model', 'MODEL', '--methods', 'robust,lstm'],
     "'robust,lstm': choose among robust, iforest, autoencoder"),
])
def test_usage_errors_end_in_one_line_and_exit_2(tmp_path: Path, capsys, arguments: list[str], message: str) -> None:
    data = sensor_file(tmp_path / 'run.csv')
    model = tmp_path / 'model'
    if arguments[0] == 'evaluate':
        assert main(['fit', '--data', str(data), '--model', str(model), '--methods', 'robust']) == 0
        capsys.readouterr()
    paths = {'DATA': str(data), 'MODEL': str(model), 'MISSING': str(tmp_path / 'missing.csv')}
    with pytest.raises(SystemExit) as exit_info:
        main([paths.get(a, a) for a in arguments])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert 'Traceback' not in error
    assert message in error.splitlines()[-1]  # after argparse's usage for an argument error


def test_help_gives_units_and_choices_without_loading_the_models() -> None:
    script = ('import sys\nfrom twin_anomaly.anomaly_cli import main\ntry:\n    main(["fit", "--help"])\n'
              'except SystemExit:\n    pass\nprint("LOADED", sorted({"torch", "sklearn"} & set(sys.modules)))\n')
    output = ' '.join(subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                                     check=True).stdout.split())
    assert 'LOADED []' in output
    assert 'among robust, iforest, autoencoder' in output
    assert 's above threshold before an alarm rises (default: 0.03)' in output
    assert 'before an alarm clears (default: 0.25)' in output
    assert 'default: robust,autoencoder,convolutional; iforest only on request' in output
    assert 'seconds or ISO 8601 date-times' in output


@pytest.mark.parametrize(('step', 'options', 'frames'), [
    (0.01, [], {'window': 10, 'gap': 5, 'min_run': 25, 'debounce': 3, 'clear': 25}),  # the twin's frames
    (1.0, ['--clear', '10', '--debounce', '3'], {'window': 2, 'gap': 0, 'min_run': 1, 'debounce': 3, 'clear': 10}),
])
def test_durations_are_seconds_counted_at_the_data_rate(tmp_path: Path, capsys, step, options, frames) -> None:
    rows = 600
    data = write(tmp_path / 'run.csv', ['time', 'a', 'b'],
                 [[f'{i * step:.3f}', np.sin(i / 7.0), np.cos(i / 5.0)] for i in range(rows)])
    model = tmp_path / 'model'
    assert main(['fit', '--data', str(data), '--model', str(model), '--methods', 'robust', *options]) == 0
    assert f'sampled at {1.0 / step:.4g} Hz' in capsys.readouterr().out
    from twin_anomaly.anomaly import AnomalyModel
    settings = AnomalyModel.load(model).settings
    assert {option: getattr(settings, option) for option in frames} == frames


def test_evaluation_prints_the_baselines_of_the_same_run(tmp_path: Path, capsys) -> None:
    data = sensor_file(tmp_path / 'run.csv')
    model = tmp_path / 'model'
    assert main(['fit', '--data', str(data), '--model', str(model), '--methods', 'robust']) == 0
    assert main(['evaluate', '--data', str(data), '--model', str(model)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert {'all', 'robust', 'baseline', 'always'} <= set(lines)
    assert 'pointwise F1' in lines['always'] and 'FAR 1.00e+00' in lines['always']


def test_a_time_column_that_never_increases_is_refused(tmp_path: Path, capsys) -> None:
    data = write(tmp_path / 'flat.csv', ['time', 'a'], [[5.0, float(i)] for i in range(20)])
    with pytest.raises(SystemExit):
        main(['fit', '--data', str(data), '--model', str(tmp_path / 'model')])
    assert 'cannot infer the sampling rate' in capsys.readouterr().err


def test_the_generated_benchmark_splits_normal_starts_from_labelled_tests(tmp_path: Path, capsys) -> None:
    from twin_anomaly import benchmark
    assert main(['generate', '--out', str(tmp_path), '--experiments', '3', '--seed', '5']) == 0
    fit = read_csv(tmp_path / 'fit.csv', label_column='label')
    test = read_csv(tmp_path / 'test.csv', label_column='label')
    sensors = (*benchmark.SENSORS, 'payload', 'speed_setpoint')
    assert fit.names == test.names == sensors  # unit, experiment and anomaly type are text
    assert len(fit.time) == 3 * benchmark.NORMAL_SECONDS and not fit.labels.any()
    assert len(test.time) == 3 * benchmark.TEST_SECONDS
    assert np.median(np.diff(fit.time)) == 1.0 / benchmark.RATE_HZ
    assert len(np.unique(fit.values[:, -2])) >= 2  # payload regimes
    rows = (tmp_path / 'test.csv').read_text().splitlines()[1:]
    kinds = [row.rsplit(',', 1)[1] for row in rows]
    assert [kind != 'normal' for kind in kinds] == test.labels.astype(bool).tolist()
    events = [kinds[i] for i in range(len(kinds)) if kinds[i] != 'normal' and (i == 0 or kinds[i - 1] != kinds[i])]
    assert len(events) == 3 * benchmark.ANOMALIES_PER_EXPERIMENT
    assert {event.split(':')[0] for event in events} <= set(benchmark.ANOMALY_TYPES)
    dropout = [i for i, kind in enumerate(kinds) if kind.startswith('dropout:')]
    assert not dropout or np.isnan(test.values[dropout]).any(axis=1).all()
    assert not np.isnan(test.values[test.labels == 0]).any()
    # each experiment continues its normal start in time, on a day of its own
    assert test.time[0] == fit.time[benchmark.NORMAL_SECONDS - 1] + 1.0
    assert fit.time[benchmark.NORMAL_SECONDS] - fit.time[0] > 20 * 3600


def test_generate_fit_and_evaluate_on_the_benchmark(tmp_path: Path, capsys) -> None:
    main(['generate', '--out', str(tmp_path), '--experiments', '4', '--seed', '6'])
    assert main(['fit', '--data', str(tmp_path / 'fit.csv'), '--model', str(tmp_path / 'model'),
                 '--methods', 'robust,convolutional', '--window', '10', '--gap', '0', '--min-run', '5',
                 '--debounce', '2', '--clear', '1', '--conv-window', '16']) == 0
    assert 'conv_window 16 samples' in capsys.readouterr().out
    assert main(['evaluate', '--data', str(tmp_path / 'test.csv'), '--model', str(tmp_path / 'model')]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert set(lines) == {'all', 'robust', 'convolutional', 'baseline', 'always'}
    found = int(lines['all'].split()[2].split('/')[0])
    assert found >= 3  # of 12 anomalies, some subtle
