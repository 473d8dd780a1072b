"""Parameters of the workcell_sim node and the objects they build (no ROS types)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from twin_core.config import ConfigError, describe
from twin_core.mjpeg_server import STREAM_PATH
from twin_core.paths import config_dir
from twin_sim.hardware import ChannelsConfig
from twin_sim.runner import SimRunner
from twin_sim.scenario import Scenario, ScenarioError
from twin_sim.settings import SimSettings
from twin_sim.truth import TruthRecorder
from twin_sim.workcell import Workcell

RATE = {'min': 0.1, 'max': 1000.0}


@dataclass(frozen=True)
class WorkcellSimConfig:
    """Everything the simulated cell needs: model, scenario, physics, channels, outputs."""

    seed: int = field(default=0, metadata=describe('seed of every random stream (reproducible runs)',
                                                   min=0, max=2 ** 31 - 1))
    speed: float = field(default=1.0, metadata=describe(
        'simulated seconds per wall-clock second (0 = as fast as possible)', min=0.0, max=1000.0))
    urdf: str = field(default='arm.urdf', metadata=describe('arm URDF; relative paths are in config/'))
    scenario: str = field(default='scenarios/nominal.yaml', metadata=describe(
        'scenario YAML (task, obstacles, wear, faults); relative paths are in config/'))
    truth_dir: str = field(default='', metadata=describe(
        'directory for truth.csv and faults.json ("" = do not record)'))
    pacing_log: str = field(default='', metadata=describe(
        'file to append every paced step to: the system-clock time it was due and how late it ran '
        '(pairs of little-endian float64, s; "" = do not record)'))
    truth_record_rate_hz: float = field(default=10.0, metadata=describe(
        'truth.csv rows per simulated second', **RATE))
    joint_states_rate_hz: float = field(default=100.0, metadata=describe(
        'rate of ~/joint_states (ground truth)', **RATE))
    truth_rate_hz: float = field(default=10.0, metadata=describe('rate of ~/truth', **RATE))
    diagnostics_rate_hz: float = field(default=1.0, metadata=describe('rate of diagnostics', **RATE))
    physics: SimSettings = SimSettings()
    channels: ChannelsConfig = ChannelsConfig()

    def required_paths(self) -> dict[str, Path]:
        return {'urdf': resolve(self.urdf), 'scenario': resolve(self.scenario)}


def resolve(path: str) -> Path:
    """A config path: absolute as given, relative to config/ otherwise."""
    return Path(path) if Path(path).is_absolute() else config_dir() / path


def build_runner(config: WorkcellSimConfig) -> tuple[SimRunner, TruthRecorder | None]:
    """The workcell, its real-time runner and (if configured) its truth recorder."""
    urdf, scenario_file = resolve(config.urdf), resolve(config.scenario)
    for key, path in (('urdf', urdf), ('scenario', scenario_file)):
        if not path.is_file():
            raise ConfigError(f'workcell_sim.{key}: file not found: {path}')
    try:
        scenario = Scenario.from_file(scenario_file)
        workcell = Workcell(urdf, scenario, config.physics, config.seed)
    except ScenarioError as error:
        raise ConfigError(f'workcell_sim.scenario: {scenario_file}: {error}') from None
    except ValueError as error:  # the URDF does not describe a usable arm
        raise ConfigError(f'workcell_sim.urdf: {urdf}: {error}') from None
    if config.pacing_log:  # a path that cannot be written is a configuration error now, not in the run
        Path(config.pacing_log).parent.mkdir(parents=True, exist_ok=True)
        open(config.pacing_log, 'ab').close()
    logging.getLogger('asyncua').setLevel(logging.WARNING)
    runner = SimRunner(workcell, config.channels, speed=config.speed,
                       pacing_log=Path(config.pacing_log) if config.pacing_log else None)
    recorder = None
    if config.truth_dir:
        recorder = TruthRecorder(config.truth_dir, workcell.joint_names)
        runner.every(1.0 / config.truth_record_rate_hz,
                     lambda: recorder.record(workcell.truth(), workcell.faults.started(workcell.time)))
    return runner, recorder


def describe_channels(channels: ChannelsConfig) -> str:
    """One line naming where each enabled channel can be reached."""
    parts = []
    if channels.imu.enabled:
        parts.append(f'imu {channels.imu.link} @ {channels.imu.rate_hz:g} Hz')
    if channels.encoders.enabled:
        parts.append(f'encoders {channels.encoders.link} @ {channels.encoders.rate_hz:g} Hz')
    if channels.lidar.enabled:
        parts.append(f'lidar udp://{channels.lidar.host}:{channels.lidar.port} '
                     f'@ {channels.lidar.rate_hz:g} Hz')
    if channels.plan.enabled:
        parts.append(f'plan udp://{channels.plan.host}:{channels.plan.port} @ {channels.plan.rate_hz:g} Hz')
    if channels.command.enabled:
        parts.append(f'commands udp://{channels.command.host}:{channels.command.port}')
    if channels.plc.enabled:
        parts.append(f'plc {channels.plc.endpoint}')
    if channels.camera.enabled:
        camera = channels.camera
        parts.append(f'camera http://{camera.host}:{camera.port}{STREAM_PATH} '
                     f'{camera.width}x{camera.height} @ {camera.rate_hz:g} Hz')
    return ', '.join(parts) or 'none'
