"""A simulated cell serving only its camera (the other channels off), paced in a thread; the camera
check run offline on a cell stepped in this process; video files and an RTSP camera (GStreamer's
RTSP server, rtsp_server.py) for the driver's OpenCV sources.
"""
from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from twin_anomaly.camera_check import CameraCheck, Judged
from twin_core.stamps import from_seconds
from twin_sim.camera import CameraChannel, FrameRenderer
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
RTSP_SERVER = Path(__file__).resolve().parent / 'rtsp_server.py'
VIDEO_SIZE = (320, 240)  # width, height of write_video's frames


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


TWIN_PERIOD = 0.01  # s between the twin's joint states (its 100 Hz)


def checked_frames(cell: Workcell, renderer: FrameRenderer, check: CameraCheck, period: float
                   ) -> Iterator[tuple[float, list[Judged]]]:
    """Steps ``cell`` without end; every TWIN_PERIOD hands ``check`` the encoder reading as the twin's
    joint state, every ``period`` s a frame through the cell camera's own path (render, JPEG), both
    stamped with the simulated time. Yields the simulated time and what was judged at each step.
    """
    steps = round(TWIN_PERIOD / cell.settings.timestep)
    next_frame = cell.time
    while True:
        cell.step(steps)
        judged = []
        reading = cell.encoder_sample()
        if reading is not None:
            judged += check.twin_state(from_seconds(cell.time), cell.joint_names, reading[0], reading[1])
        if cell.time >= next_frame - 0.5 * TWIN_PERIOD:
            next_frame += period
            view = cell.camera_view()
            if view is not None:
                judged += check.frame(from_seconds(view.sim_time), renderer.encode(renderer.render(view)))
        yield cell.time, judged


def write_video(path: Path, frames: int, fps: float = 20.0) -> Path:
    """An MJPG AVI of ``frames`` frames, each with its number drawn (none black, none repeated)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), fps, VIDEO_SIZE)
    assert writer.isOpened()
    for index in range(frames):
        image = np.full((VIDEO_SIZE[1], VIDEO_SIZE[0], 3), 60, np.uint8)
        cv2.putText(image, str(index), (40, 170), cv2.FONT_HERSHEY_SIMPLEX, 4, (255, 255, 255), 8)
        writer.write(image)
    writer.release()
    return path


def truncate(path: Path, out: Path, fraction: float = 0.5) -> Path:
    data = path.read_bytes()
    out.write_bytes(data[:int(len(data) * fraction)])
    return out


class RtspCamera:
    """rtsp_server.py in its own process (the system Python, which has GStreamer's bindings): a
    live 10 fps test pattern at :attr:`url` (``still``: the same picture in every frame); :meth:`stop`
    and :meth:`start` again keep the port.
    """

    def __init__(self, still: bool = False) -> None:
        self.still = still
        with socket.socket() as probe:
            probe.bind(('127.0.0.1', 0))
            self.port = probe.getsockname()[1]
        self.url = f'rtsp://127.0.0.1:{self.port}/camera'
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(['/usr/bin/python3', str(RTSP_SERVER), str(self.port),
                                         *(['still'] if self.still else [])],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.strip() == 'ready', f'RTSP server did not start: {line}{self.process.stdout.read()}'

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.communicate(timeout=10.0)
            self.process = None
