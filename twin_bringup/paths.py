"""Where the package's shared files (config/, launch/) live: source checkout or install."""
from __future__ import annotations

from pathlib import Path

PACKAGE = 'twin_bringup'
_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def share_dir() -> Path:
    """The package's share directory: the repo root in a checkout, else the ament index's."""
    if (_SOURCE_ROOT / 'package.xml').is_file() and (_SOURCE_ROOT / 'config').is_dir():
        return _SOURCE_ROOT
    from ament_index_python.packages import get_package_share_directory
    return Path(get_package_share_directory(PACKAGE))


def config_dir() -> Path:
    """The directory holding graph.yaml, parameter files, the URDF and scenarios."""
    return share_dir() / 'config'
