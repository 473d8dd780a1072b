"""MuJoCo model of the workcell, built from the arm's URDF plus the scenario's obstacles.

The URDF is the single source of truth for kinematics, inertia, joint limits, damping and
friction. This module adds what URDF cannot express: motor actuators, rotor inertia, the IMU and
laser-scanner sites with their sensors, the floor and the obstacles of the cell.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from twin_core.urdf import ArmDescription
from twin_sim.scenario import Obstacle

IMU_FRAME = "imu_link"
LASER_FRAME = "laser"
IMU_SITE = "imu"
LASER_SITE = "laser"
CAMERA = "cell_camera"
CAMERA_POSITION = (-0.5, -1.6, 1.9)  # m, world frame: high on the right fence, behind the arm
CAMERA_TARGET = (0.3, 0.2, 0.6)  # m, world frame: where the camera looks (the arm's work area)
CAMERA_FOVY = 50.0  # degrees, vertical field of view
ARUCO_DICTIONARY = "DICT_4X4_50"
# Fiducials: (ArUco id, body, plate centre (m) and orientation (w, x, y, z) in the body frame, black
# square side (m)). The marker reads right on the plate's +z face (its -z face shows it mirrored):
# up on the floor, and up on the tool at the start (tool0's z points down).
MARKERS = ((0, "world", (0.0, -0.35, 0.0005), (1.0, 0.0, 0.0, 0.0), 0.2),
           (1, "tool0", (0.0, 0.0, -0.22), (0.0, 1.0, 0.0, 0.0), 0.2))
MARKER_BORDER = 0.25  # white margin around the black square, fraction of its side
ACCELEROMETER = "imu_accelerometer"
GYRO = "imu_gyro"
ROBOT_GEOM_GROUP = 0
FLOOR_GEOM_GROUP = 2
OBSTACLE_GEOM_GROUP = 3  # the only group the laser scanner sees
GRAVITY = 9.81  # m/s^2


@dataclass(frozen=True)
class ControlGains:
    """Joint-space PD gains: ``tau = kp (q_ref - q) + kd (qd_ref - qd)``."""

    kp: np.ndarray  # N·m/rad
    kd: np.ndarray  # N·m·s/rad


def load_urdf_spec(urdf_path: str | Path) -> mujoco.MjSpec:
    """Parse the URDF into an editable MuJoCo spec (fixed frames kept as bodies)."""
    spec = mujoco.MjSpec.from_file(str(urdf_path))
    spec.compiler.fusestatic = False
    spec.compiler.discardvisual = False
    return spec


def build_model(urdf_path: str | Path, arm: ArmDescription, obstacles: Sequence[Obstacle] = (),
                timestep: float = 0.001, rotor_inertia: float = 0.0,
                bandwidth_hz: float = 6.0) -> tuple[mujoco.MjModel, ControlGains]:
    """Compile the workcell model; PD gains are tuned to the joint inertias at the zero pose."""
    spec = load_urdf_spec(urdf_path)
    spec.option.timestep = timestep
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.gravity = [0.0, 0.0, -GRAVITY]
    for name, gear in zip(arm.joint_names, arm.gear_ratio):
        spec.joint(name).armature = rotor_inertia * gear ** 2  # reflected rotor inertia
    _add_sensors(spec)
    _add_cell(spec, obstacles)
    _add_camera(spec)
    gains = _tune_gains(spec.compile(), arm, bandwidth_hz)
    for index, name in enumerate(arm.joint_names):
        _add_motor(spec, name, gains.kp[index], gains.kd[index], arm.effort[index])
    return spec.compile(), gains


def _add_sensors(spec: mujoco.MjSpec) -> None:
    imu = spec.body(IMU_FRAME).add_site(name=IMU_SITE, size=[0.01, 0.01, 0.01])
    spec.body(LASER_FRAME).add_site(name=LASER_SITE, size=[0.02, 0.02, 0.02])
    for name, sensor_type in ((ACCELEROMETER, mujoco.mjtSensor.mjSENS_ACCELEROMETER),
                              (GYRO, mujoco.mjtSensor.mjSENS_GYRO)):
        spec.add_sensor(name=name, type=sensor_type, objtype=mujoco.mjtObj.mjOBJ_SITE, objname=imu.name)


def _add_cell(spec: mujoco.MjSpec, obstacles: Sequence[Obstacle]) -> None:
    spec.worldbody.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[5.0, 5.0, 0.1],
                            group=FLOOR_GEOM_GROUP, rgba=[0.8, 0.8, 0.8, 1.0])
    for obstacle in obstacles:
        if obstacle.shape == "box":
            geom_type, size = mujoco.mjtGeom.mjGEOM_BOX, [extent / 2.0 for extent in obstacle.size]
        else:
            geom_type, size = mujoco.mjtGeom.mjGEOM_CYLINDER, [obstacle.size[0], obstacle.size[1] / 2.0, 0.0]
        half_yaw = obstacle.yaw / 2.0
        spec.worldbody.add_geom(name=obstacle.name, type=geom_type, size=size, pos=list(obstacle.position),
                                quat=[math.cos(half_yaw), 0.0, 0.0, math.sin(half_yaw)],
                                group=OBSTACLE_GEOM_GROUP, rgba=[0.2, 0.5, 0.8, 1.0])


def _add_camera(spec: mujoco.MjSpec) -> None:
    """A fixed camera looking from CAMERA_POSITION at CAMERA_TARGET, image rows upright."""
    position, target = np.array(CAMERA_POSITION), np.array(CAMERA_TARGET)
    forward = (target - position) / np.linalg.norm(target - position)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)  # a MuJoCo camera looks along its -z, with +y up in the image
    spec.worldbody.add_camera(name=CAMERA, pos=list(position), fovy=CAMERA_FOVY,
                              xyaxes=[*right, *up])
    for marker in MARKERS:
        _add_marker(spec, *marker)
    spec.worldbody.add_light(name="cell_light", pos=[0.5, -0.5, 3.0], dir=[-0.1, 0.1, -1.0],
                             castshadow=True, diffuse=[0.7, 0.7, 0.7])


def marker_name(marker_id: int) -> str:
    return f"aruco_{marker_id}"


def _add_marker(spec: mujoco.MjSpec, marker_id: int, body: str, centre: tuple[float, float, float],
                orientation: tuple[float, float, float, float], side: float) -> None:
    """A thin plate showing ArUco marker ``marker_id``, in the visual-only group 1."""
    import cv2  # the camera's dependency; only the marker texture needs it here

    pixels = 60  # the black square: 4x4 bits and a one-bit border, 10 px each
    square = cv2.aruco.generateImageMarker(cv2.aruco.getPredefinedDictionary(
        getattr(cv2.aruco, ARUCO_DICTIONARY)), marker_id, pixels)
    margin = round(MARKER_BORDER * pixels)
    image = np.pad(square, margin, constant_values=255)
    name = marker_name(marker_id)
    spec.add_texture(name=name, type=mujoco.mjtTexture.mjTEXTURE_2D, width=image.shape[1],
                     height=image.shape[0], nchannel=3)
    spec.texture(name).data = np.repeat(image[:, :, None], 3, axis=2).tobytes()
    spec.add_material(name=name, textures=["", name], texuniform=False, texrepeat=[1.0, 1.0])
    half = 0.5 * side * (1.0 + 2.0 * MARKER_BORDER)
    parent = spec.worldbody if body == "world" else spec.body(body)
    parent.add_geom(name=name, type=mujoco.mjtGeom.mjGEOM_BOX, size=[half, half, 0.0005], pos=list(centre),
                    quat=list(orientation), material=name, group=1, contype=0, conaffinity=0, mass=0.0)


def _tune_gains(model: mujoco.MjModel, arm: ArmDescription, bandwidth_hz: float) -> ControlGains:
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    mass_matrix = np.zeros((model.nv, model.nv))
    mujoco.mj_fullM(model, mass_matrix, data.qM)
    dofs = [model.joint(name).dofadr[0] for name in arm.joint_names]
    inertia = np.diag(mass_matrix)[dofs]
    omega = 2.0 * math.pi * bandwidth_hz
    return ControlGains(kp=inertia * omega ** 2, kd=2.0 * inertia * omega)


def _add_motor(spec: mujoco.MjSpec, joint: str, kp: float, kd: float, effort: float) -> None:
    """A PD servo computed by the engine every physics step: force = kp·ctrl − kp·q − kd·qd.

    The controller folds the velocity reference and feed-forward torque into ``ctrl``.
    """
    spec.add_actuator(name=f"motor_{joint}", target=joint, trntype=mujoco.mjtTrn.mjTRN_JOINT,
                      gaintype=mujoco.mjtGain.mjGAIN_FIXED, gainprm=[kp] + [0.0] * 9,
                      biastype=mujoco.mjtBias.mjBIAS_AFFINE, biasprm=[0.0, -kp, -kd] + [0.0] * 7,
                      ctrllimited=False, forcelimited=math.isfinite(effort),
                      forcerange=[-effort, effort] if math.isfinite(effort) else [0.0, 0.0])
