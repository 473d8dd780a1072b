"""Where the package's shared files (config/, launch/) and executables live: source checkout or install."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from twin_core.config import ConfigError

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


def resolve_executable(name: str, package: str = PACKAGE) -> str:
    """Find an executable: the venv's bin, PATH, then ``<prefix>/lib/<package>`` (``ros2 run``)."""
    search = [str(Path(sys.executable).parent), os.environ.get('PATH', '')]
    search += [str(Path(p) / 'lib' / package)
               for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    found = shutil.which(name, path=os.pathsep.join(search))
    if found is None:
        raise ConfigError(f'executable {name!r} of package {package} not found (is it installed?)')
    return found
