"""Where the configuration files live, in a source checkout or an installed ROS 2 package."""
from __future__ import annotations

from pathlib import Path

PACKAGE_SHARE = "twin_bringup"


def config_dir() -> Path:
    """``config/`` next to the package in a source checkout, else ``share/twin_bringup/config``."""
    source_config = Path(__file__).resolve().parent.parent / "config"
    if source_config.is_dir():
        return source_config
    try:
        from ament_index_python.packages import get_package_share_directory
    except ImportError as error:
        raise FileNotFoundError(f"no {source_config} and ament_index_python is not available") from error
    return Path(get_package_share_directory(PACKAGE_SHARE)) / "config"


def default_urdf() -> Path:
    return config_dir() / "arm.urdf"


def scenario_path(name_or_path: str) -> Path:
    """A scenario file path, or the name of one in ``config/scenarios`` (with or without .yaml)."""
    candidate = Path(name_or_path)
    if candidate.is_file():
        return candidate
    named = config_dir() / "scenarios" / (candidate.name if candidate.suffix else f"{candidate.name}.yaml")
    if named.is_file():
        return named
    raise FileNotFoundError(f"scenario not found: {name_or_path}")
