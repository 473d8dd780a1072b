"""Static checks over the whole package: style (ruff), types of the cores (mypy) and the layer rules
(import-linter, grimp).
"""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import REPO
from layer_rules import layer_packages

PACKAGES = layer_packages(REPO)


def test_ruff_finds_nothing():
    result = subprocess.run([sys.executable, '-m', 'ruff', 'check', '--output-format', 'concise', str(REPO)],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_nothing_in_the_cores():
    # The files and settings are mypy.ini's; the cache stays out of the source tree.
    result = subprocess.run([sys.executable, '-m', 'mypy', '--cache-dir', str(REPO / 'build' / 'mypy_cache')],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` with the repository's contracts over the packages under ``root``."""
    return subprocess.run(
        [sys.executable, '-c', 'import sys; from importlinter.cli import lint_imports_command as c; c()',
         '--config', str(REPO / '.importlinter'), '--no-cache'],
        capture_output=True, text=True, cwd=root, env={'PYTHONPATH': str(root), 'PATH': ''})


def copy_packages(destination: Path) -> Path:
    """The layer packages' Python files copied to ``destination`` (to break a rule in a copy)."""
    for package in PACKAGES:
        shutil.copytree(REPO / package, destination / package, ignore=shutil.ignore_patterns('__pycache__'))
    return destination


def rclpy_outside_shells(root: Path) -> list[str]:
    """Import chains to rclpy from modules that are neither entry-point shells nor the ROS glue."""
    result = subprocess.run([sys.executable, str(Path(__file__).with_name('layer_rules.py')), str(root)],
                            capture_output=True, text=True, cwd=root, env={'PATH': ''})
    assert result.returncode in (0, 1), result.stderr
    return result.stdout.splitlines()


def test_every_package_is_in_the_layer_contract():
    listed = (REPO / '.importlinter').read_text()
    assert [p for p in PACKAGES if p not in listed] == []


def test_layer_contracts_are_kept():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'Contracts: 2 kept, 0 broken.' in result.stdout


def test_an_import_against_the_layers_breaks_the_contract(tmp_path: Path):
    root = copy_packages(tmp_path)
    config = root / 'twin_core' / 'config.py'
    config.write_text(config.read_text() + '\nimport twin_state.history  # noqa\n')
    result = lint_imports(root)
    assert result.returncode == 1
    assert 'Layers: each package imports only from the layers below it BROKEN' in result.stdout
    assert 'twin_core.config -> twin_state.history' in result.stdout


def test_rclpy_is_imported_only_by_entry_points_and_the_ros_glue():
    assert rclpy_outside_shells(REPO) == []


@pytest.mark.parametrize('module', ['twin_state/history.py', 'twin_sync/timeline.py'])
def test_a_core_that_imports_the_ros_glue_is_reported(tmp_path: Path, module: str):
    root = copy_packages(tmp_path)
    core = root / module
    core.write_text(core.read_text() + '\nimport twin_ros.common  # noqa\n')
    dotted = module.removesuffix('.py').replace('/', '.')
    assert f'{dotted} -> twin_ros.common -> rclpy' in rclpy_outside_shells(root)
