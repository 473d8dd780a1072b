"""A simulated cell serving only its camera (the other channels off), paced in a thread."""
from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from twin_sim.camera import CameraChannel
from twin_sim.hardware import (
    ChannelsConfig,
    CommandChannel,
    EncoderChannel,
    ImuChannel,
    LidarChannel,
    PlanChannel,
    PlcChannel,
)
from twin_sim.runner import SimRunner
from twin_sim.scenario import Scenario
from twin_sim.settings import SimSettings
from twin_sim.workcell import Workcell

CONFIG = Path(__file__).resolve().parents[1] / 'config'


def camera_channels(**camera: object) -> ChannelsConfig:
    """Every channel off but the camera (on, any free port unless given)."""
    return ChannelsConfig(
        imu=ImuChannel(enabled=False), encoders=EncoderChannel(enabled=False), lidar=LidarChannel(enabled=False),
        plan=PlanChannel(enabled=False), command=CommandChannel(enabled=False), plc=PlcChannel(enabled=False),
        camera=CameraChannel(**{'enabled': True, 'port': 0} | camera))  # type: ignore[arg-type]


def workcell(settings: SimSettings = SimSettings()) -> Workcell:
    return Workcell(CONFIG / 'arm.urdf', Scenario.from_file(CONFIG / 'scenarios' / 'nominal.yaml'), settings, seed=3)


@contextlib.contextmanager
def camera_cell(settings: SimSettings = SimSettings(), **camera: object) -> Iterator[SimRunner]:
    """A running cell with its camera serving; stopped on exit."""
    runner = SimRunner(workcell(settings), camera_channels(**camera), speed=1.0)
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, kwargs={'stop_event': stop}, name='sim')
    thread.start()
    try:
        deadline = time.monotonic() + 15.0
        while not runner.stats()['running']:
            assert time.monotonic() < deadline, 'simulated cell did not start'
            time.sleep(0.05)
        yield runner
    finally:
        stop.set()
        thread.join(10.0)
