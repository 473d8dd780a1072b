"""Strict typed configuration: every error names its key."""
from dataclasses import dataclass, field

import pytest

from twin_core.config import ConfigError, build, describe, flatten, ros_parameters, unflatten


@dataclass(frozen=True)
class Imu:
    port: str = '/tmp/imu'
    rate_hz: float = field(default=1000.0, metadata=describe('rate', min=1.0, max=5000.0))


@dataclass(frozen=True)
class Node:
    seed: int = 0
    mode: str = field(default='a', metadata=describe('mode', choices=('a', 'b')))
    joints: tuple[str, ...] = ('j1', 'j2')
    imu: Imu = Imu()


def test_build_nested_values_and_defaults():
    config = build(Node, {'seed': 3, 'imu': {'rate_hz': 200.0}}, 'sim')
    assert config == Node(seed=3, imu=Imu(rate_hz=200.0))


@pytest.mark.parametrize('mapping, message', [
    ({'imu': {'rat_hz': 1.0}}, "sim.imu.rat_hz: unknown key (did you mean 'rate_hz'?)"),
    ({'imu': {'rate_hz': 'fast'}}, 'sim.imu.rate_hz: expected a float, got str'),
    ({'imu': {'rate_hz': 100}}, 'sim.imu.rate_hz: expected a float, got the integer 100'),
    ({'imu': {'rate_hz': 0.5}}, 'sim.imu.rate_hz: 0.5 is below the minimum 1.0'),
    ({'imu': {'rate_hz': float('nan')}}, 'sim.imu.rate_hz: NaN'),
    ({'seed': True}, 'sim.seed: expected int, got bool'),
    ({'mode': 'c'}, "sim.mode: 'c' is not one of ['a', 'b']"),
    ({'joints': 'j1'}, 'sim.joints: expected a list'),
    ({'joints': ['j1', 2]}, 'sim.joints[1]: expected str'),
    ({'imu': 3}, 'sim.imu: expected a mapping'),
])
def test_errors_name_the_key(mapping, message):
    with pytest.raises(ConfigError) as error:
        build(Node, mapping, 'sim')
    assert message in str(error.value)


def test_flatten_round_trips_through_dotted_names():
    config = Node(seed=5, imu=Imu(port='/dev/x'))
    flat = flatten(config)
    assert flat['imu.port'] == '/dev/x' and flat['joints'] == ['j1', 'j2']
    assert build(Node, unflatten(flat), 'sim') == config


def test_ros_parameters_merges_wildcard_and_node_sections(tmp_path):
    path = tmp_path / 'p.yaml'
    path.write_text('/**:\n  ros__parameters:\n    seed: 1\n'
                    'sim:\n  ros__parameters:\n    mode: b\n'
                    'other:\n  ros__parameters:\n    seed: 9\n')
    assert ros_parameters(path, 'sim') == {'seed': 1, 'mode': 'b'}


def test_ros_parameters_rejects_a_misspelt_section(tmp_path):
    path = tmp_path / 'p.yaml'
    path.write_text('sim:\n  ros_parameters:\n    seed: 1\n')
    with pytest.raises(ConfigError, match='sim: expected exactly one key, ros__parameters'):
        ros_parameters(path, 'sim')


@dataclass(frozen=True)
class Window:
    low: float = 0.0
    high: float = 1.0

    def __post_init__(self):
        if self.low >= self.high:
            raise ValueError(f'low ({self.low}) must be below high ({self.high})')


def test_cross_field_checks_are_reported_with_their_section():
    with pytest.raises(ConfigError, match=r'^sim.window: low \(2.0\) must be below high \(1.0\)$'):
        build(Window, {'low': 2.0}, 'sim.window')


@dataclass(frozen=True)
class Cell:
    name: str
    windows: tuple[Window, ...] = ()
    poses: dict[str, tuple[float, ...]] = field(default_factory=dict)
    start: float | None = None


def test_lists_of_sections_mappings_and_optionals():
    cell = build(Cell, {'name': 'c', 'windows': [{'low': 0.5}], 'poses': {'home': [0.0, 1.0]}}, 's')
    assert cell == Cell('c', (Window(low=0.5),), {'home': (0.0, 1.0)}, None)
    assert build(Cell, {'name': 'c', 'start': 2.0}, 's').start == 2.0
    with pytest.raises(ConfigError, match=r"^s.windows\[1\].hgh: unknown key \(did you mean 'high'\?\)$"):
        build(Cell, {'name': 'c', 'windows': [{}, {'hgh': 2.0}]}, 's')
    with pytest.raises(ConfigError, match=r'^s.poses.home\[1\]: expected a float'):
        build(Cell, {'name': 'c', 'poses': {'home': [0.0, 'x']}}, 's')
    with pytest.raises(ConfigError, match=r'^s.name: required key is missing$'):
        build(Cell, {}, 's')
