"""Style and static checks over the whole package (ruff: pyflakes, pycodestyle, isort, docstrings)."""
import subprocess
import sys

from harness import REPO


def test_ruff_finds_nothing():
    result = subprocess.run([sys.executable, '-m', 'ruff', 'check', '--output-format', 'concise', str(REPO)],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
