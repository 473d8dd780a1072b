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
    output = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, check=True).stdout
    assert 'LOADED []' in output
    assert 'among robust, iforest, autoencoder' in output
    assert 'frames above threshold before an alarm rises' in output
    assert 'seconds or ISO 8601 date-times' in output
