"""The cell camera: views of the workcell rendered offscreen (OSMesa, no GPU) and served as MJPEG.

The simulation thread only captures a view (joint positions, the instants it shows, the active
camera faults: O(1)); a render process turns the newest view into a JPEG, which a thread hands
to the MJPEG server. A view the renderer could not take before the next one arrived is dropped
and counted, so rendering never delays the physics and a short CPU shows as fewer frames: the
render process runs at the lowest CPU priority, so that on a full machine it, not the physics or
the twin, waits.
"""
from __future__ import annotations

import copy
import multiprocessing
import signal
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import cv2
import mujoco
import numpy as np

from twin_core.config import describe
from twin_core.mjpeg_server import MjpegServer
from twin_core.network import check_host
from twin_core.priority import lower_process_priority
from twin_core.workers import Workers
from twin_sensors.camera_info import CameraCalibration
from twin_sim.model import CAMERA, marker_name

OCCLUDER_GRAY = 40  # the occluding object's shade (0..255)
RESULT_POLL = 0.2  # s; how often a wait for the render process checks for a stop
MUJOCO_TO_OPTICAL = np.diag([1.0, -1.0, -1.0])  # a MuJoCo camera looks along -z with y up


@dataclass(frozen=True)
class CameraChannel:
    enabled: bool = field(default=False, metadata=describe('serve the cell camera as MJPEG over HTTP'))
    host: str = field(default='127.0.0.1', metadata=describe('address the HTTP server binds (0.0.0.0: all)'))
    port: int = field(default=8081, metadata=describe('HTTP port of the stream (0: any free)', min=0, max=65535))
    rate_hz: float = field(default=5.0, metadata=describe('frames per simulated second', min=0.1, max=60.0))
    width: int = field(default=640, metadata=describe('image width (px)', min=16, max=1920))
    height: int = field(default=480, metadata=describe('image height (px)', min=16, max=1080))
    jpeg_quality: int = field(default=80, metadata=describe('JPEG quality (0..100)', min=1, max=100))
    shadows: bool = field(default=False, metadata=describe('render shadows (≈10× the cost per frame)'))
    reflections: bool = field(default=False, metadata=describe('render reflections'))

    def __post_init__(self) -> None:
        check_host(self.host, ipv4_only=True)


@dataclass(frozen=True)
class CameraView:
    """What the camera sees at one instant, captured in the simulation thread."""

    sim_time: float  # s
    device_time: float  # s of the camera's clock
    qpos: np.ndarray
    frozen: bool = False  # the camera repeats its previous image
    occlusion: float = 0.0  # fraction of the image width covered, from the left
    blur_sigma: float = 0.0  # px, Gaussian defocus


def calibration(model: mujoco.MjModel, width: int, height: int) -> CameraCalibration:
    """The pinhole intrinsics of CAMERA at ``width`` × ``height`` (square pixels, no distortion)."""
    fovy = np.radians(model.cam(CAMERA).fovy[0])
    focal = 0.5 * height / np.tan(0.5 * fovy)
    return CameraCalibration.pinhole(CAMERA, width, height, focal, (width - 1) / 2.0, (height - 1) / 2.0)


def optical_frame(model: mujoco.MjModel, data: mujoco.MjData) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth: the world position and axes (3×3) of CAMERA's optical frame (z forward, y down)."""
    camera = model.cam(CAMERA).id
    return data.cam_xpos[camera].copy(), data.cam_xmat[camera].reshape(3, 3) @ MUJOCO_TO_OPTICAL


def marker_in_world(model: mujoco.MjModel, data: mujoco.MjData, marker_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth: the world position and axes (3×3) of a fiducial plate (z: the marker's face)."""
    geom = model.geom(marker_name(marker_id)).id
    return data.geom_xpos[geom].copy(), data.geom_xmat[geom].reshape(3, 3).copy()


def degrade(image: np.ndarray, view: CameraView) -> np.ndarray:
    """The image with the view's occlusion and blur applied."""
    if view.occlusion > 0.0:
        image[:, :round(view.occlusion * image.shape[1])] = OCCLUDER_GRAY
    if view.blur_sigma > 0.0:
        image = cv2.GaussianBlur(image, (0, 0), view.blur_sigma)
    return image


class FrameRenderer:
    """Renders CAMERA views into JPEG bytes with its own model copy and OSMesa context (current
    in the thread that made it).
    """

    def __init__(self, model: mujoco.MjModel, config: CameraChannel) -> None:
        # Imported here: it loads libOSMesa (and selects PyOpenGL's OSMesa platform), which only
        # a cell with its camera on needs.
        from mujoco.osmesa import GLContext

        self.config = config
        self._model = copy.copy(model)
        self._model.vis.global_.offwidth = config.width
        self._model.vis.global_.offheight = config.height
        self._data = mujoco.MjData(self._model)
        self._gl = GLContext(config.width, config.height)
        self._gl.make_current()
        self._context = mujoco.MjrContext(self._model, mujoco.mjtFontScale.mjFONTSCALE_100)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._context)
        self._scene = mujoco.MjvScene(self._model, maxgeom=1000)
        self._scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = config.shadows
        self._scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = config.reflections
        self._option = mujoco.MjvOption()
        self._option.geomgroup[:] = 1  # obstacles are in a group hidden by default
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._camera.fixedcamid = self._model.cam(CAMERA).id
        self._viewport = mujoco.MjrRect(0, 0, config.width, config.height)
        self._pixels = np.empty((config.height, config.width, 3), dtype=np.uint8)

    def render(self, view: CameraView) -> np.ndarray:
        """The view as a BGR image (rows top to bottom), faults applied."""
        self._data.qpos[:] = view.qpos
        mujoco.mj_kinematics(self._model, self._data)
        mujoco.mj_camlight(self._model, self._data)  # camera and light poses
        mujoco.mjv_updateScene(self._model, self._data, self._option, None, self._camera,
                               mujoco.mjtCatBit.mjCAT_ALL, self._scene)
        mujoco.mjr_render(self._viewport, self._scene, self._context)
        mujoco.mjr_readPixels(self._pixels, None, self._viewport, self._context)
        return degrade(np.ascontiguousarray(self._pixels[::-1, :, ::-1]), view)

    def encode(self, image: np.ndarray) -> bytes:
        ok, jpeg = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, self.config.jpeg_quality])
        if not ok:
            raise RuntimeError('JPEG encoding failed')
        return jpeg.tobytes()

    def close(self) -> None:
        self._gl.make_current()
        self._context.free()
        self._gl.free()


class SimCamera:
    """Captures views in the simulation thread; a render process renders and encodes them, a thread
    of this process hands them over and serves the results.

    The renderer runs in its own process because MuJoCo's rendering calls hold the GIL (about
    10 ms of CPU a frame at 320×240): in a thread they would delay the physics steps.
    """

    def __init__(self, config: CameraChannel, model: mujoco.MjModel, workers: Workers | None = None) -> None:
        self.config = config
        self.period = 1.0 / config.rate_hz
        self.server = MjpegServer(config.host, config.port, workers)
        self._model = model
        self._workers = self.server.workers
        self._pending: CameraView | None = None
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_jpeg = b''
        self.captured = self.rendered = self.dropped = self.dropouts = self.repeated = 0
        self.render_s = self.encode_s = 0.0  # totals over the rendered frames (wall time)

    def capture(self, view: CameraView | None) -> None:
        """Hand the renderer the newest view (None: the camera has dropped out)."""
        if view is None:
            self.dropouts += 1
            return
        with self._ready:
            if self._pending is not None:
                self.dropped += 1
            self._pending = view
            self.captured += 1
            self._ready.notify()

    def open(self) -> None:
        self.server.open()
        self._stop.clear()
        self._thread = self._workers.spawn('camera render', self._render_loop, self._stop)

    def close(self) -> None:
        self._stop.set()
        with self._ready:
            self._ready.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.server.close()

    def counters(self) -> dict[str, int | float]:
        frames = max(self.rendered - self.repeated, 1)
        return {'emitted': self.rendered, 'dropouts': self.dropouts, 'captured': self.captured,
                'dropped': self.dropped, 'repeated': self.repeated, 'render_ms': 1e3 * self.render_s / frames,
                'encode_ms': 1e3 * self.encode_s / frames} | self.server.counters()

    def _next_view(self) -> CameraView | None:
        with self._ready:
            while self._pending is None and not self._stop.is_set():
                self._ready.wait()
            view, self._pending = self._pending, None
        return view

    def _render_loop(self) -> None:
        """Start the render process, feed it the views, serve its frames; stop it when stopping."""
        context = multiprocessing.get_context('spawn')  # no fork of a process running DDS threads
        connection, child_end = context.Pipe()
        process = context.Process(target=render_process, args=(child_end, self._model, self.config),
                                  name='camera render', daemon=True)
        process.start()
        child_end.close()
        try:
            while (view := self._next_view()) is not None:
                self._serve(connection, view)
        finally:
            connection.close()  # the process ends at the end of its pipe
            process.join(5.0)
            if process.is_alive():
                process.kill()
                process.join()

    def _serve(self, connection: Connection, view: CameraView) -> None:
        if view.frozen and self._last_jpeg:
            self.repeated += 1
        else:
            connection.send(view)
            while not connection.poll(RESULT_POLL):
                if self._stop.is_set():
                    return
            self._last_jpeg, render_s, encode_s = connection.recv()
            self.render_s += render_s
            self.encode_s += encode_s
        self.server.publish(self._last_jpeg, view.device_time)
        self.rendered += 1


def render_process(connection: Connection, model: mujoco.MjModel, config: CameraChannel) -> None:
    """Render each view received into (JPEG, render s, encode s) until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C to the group: the parent closes the pipe
    lower_process_priority()  # before the renderer starts its rasterizer threads: they inherit it
    renderer = FrameRenderer(model, config)
    try:
        while True:
            try:
                view = connection.recv()
            except EOFError:
                return
            start = time.perf_counter()
            image = renderer.render(view)
            rendered = time.perf_counter()
            jpeg = renderer.encode(image)
            connection.send((jpeg, rendered - start, time.perf_counter() - rendered))
    finally:
        renderer.close()
