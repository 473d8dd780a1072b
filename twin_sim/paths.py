"""The named scenarios in config/."""
from __future__ import annotations

from pathlib import Path

from twin_core.paths import config_dir


def scenario_path(name_or_path: str) -> Path:
    """A scenario file path, or the name of one in ``config/scenarios`` (with or without .yaml)."""
    candidate = Path(name_or_path)
    if candidate.is_file():
        return candidate
    named = config_dir() / 'scenarios' / (candidate.name if candidate.suffix else f'{candidate.name}.yaml')
    if named.is_file():
        return named
    raise FileNotFoundError(f'scenario not found: {name_or_path}')
