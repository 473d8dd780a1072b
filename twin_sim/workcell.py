"""The simulated workcell: arm physics, task controller, motors, wear, devices and faults.

Everything random draws from generators seeded by ``seed`` (one independent stream per
subsystem), so a run is reproducible and the ground truth does not depend on how often the
devices are sampled.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from twin_core.urdf import read_arm_description
from twin_sim.camera import CameraView
from twin_sim.controller import Mode, PickAndPlaceController, Plan
from twin_sim.faults import FaultSchedule
from twin_sim.model import GRAVITY, build_model
from twin_sim.scenario import Fault, Scenario, ScenarioError
from twin_sim.sensors import Encoders, Imu, LaserScanner
from twin_sim.settings import SimSettings
from twin_sim.thermal import MotorParameters, MotorThermalModel
from twin_sim.wear import WearModel, WearParameters

__all__ = ["SimSettings", "Truth", "Workcell"]

TOOL_FRAME = "tool0"


@dataclass(frozen=True)
class Truth:
    """Ground-truth snapshot (per-joint arrays ordered like ``Workcell.joint_names``)."""

    time: float  # s
    q: np.ndarray  # rad
    qd: np.ndarray  # rad/s
    tau: np.ndarray  # N·m, motor torque at the joint
    motor_temp: np.ndarray  # °C
    coulomb_friction: np.ndarray  # N·m
    viscous_friction: np.ndarray  # N·m·s/rad
    wear: np.ndarray  # 0 new .. 1 failure threshold
    health: np.ndarray  # 1 new .. 0 failure threshold
    vibration_rms: np.ndarray  # N·m
    task_id: int
    task_phase: str
    task_progress: float  # 0..1 within the cycle
    speed_override: float
    stopped: bool
    mode: str
    active_faults: tuple[str, ...]

    @property
    def friction(self) -> np.ndarray:
        """(n_joints, 2): Coulomb (N·m) and viscous (N·m·s/rad) friction per joint."""
        return np.stack((self.coulomb_friction, self.viscous_friction), axis=1)


class Workcell:
    """Deterministic simulation of the robot cell for a given scenario and seed."""

    def __init__(self, urdf_path: str | Path, scenario: Scenario, settings: SimSettings = SimSettings(),
                 seed: int = 0, motor: MotorParameters = MotorParameters(),
                 wear_parameters: WearParameters = WearParameters()) -> None:
        self.scenario = scenario
        self.settings = settings
        self.arm = read_arm_description(urdf_path)
        self.joint_names: tuple[str, ...] = self.arm.joint_names
        self.model, self.gains = build_model(urdf_path, self.arm, scenario.obstacles, settings.timestep,
                                             motor.rotor_inertia, settings.control_bandwidth_hz)
        self.data = mujoco.MjData(self.model)
        self._dofs = np.array([self.model.joint(name).dofadr[0] for name in self.joint_names])
        qpos = np.array([self.model.joint(name).qposadr[0] for name in self.joint_names])
        wear_rng, imu_rng, encoder_rng, lidar_rng = (
            np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(4))

        self.controller = PickAndPlaceController(scenario.task, self.arm)
        self.data.qpos[qpos] = self.controller.initial_position
        self.thermal = MotorThermalModel(motor, self.arm.gear_ratio, settings.ambient_temperature)
        self.wear = WearModel(wear_parameters, self.arm, scenario.wear.rate, self._initial_wear(scenario), wear_rng)
        self.imu = Imu(self.model, settings, imu_rng)
        self.encoders = Encoders(settings, encoder_rng)
        self.lidar = LaserScanner(self.model, settings, lidar_rng)
        self.faults = FaultSchedule()
        for index, fault in enumerate(scenario.faults):
            self._check_fault_target(fault, f"faults[{index}].target")
            self.faults.add(fault, now=0.0)

        self._tool_body = self.model.body(TOOL_FRAME).id
        self._payload_weight = np.array([0.0, 0.0, -scenario.task.payload_mass * GRAVITY])
        self._payload_force = np.zeros(self.model.nv)
        self._inertial_force = np.zeros(self.model.nv)
        self._stuck_encoders: dict[int, float] = {}
        self._imu_fault_bias = np.zeros(6)
        self._cooling = np.ones(len(self.joint_names))
        self._step_count = 0
        self._clock_skip = 0.0  # s the devices' clocks ran on while the simulation could not
        self._steps_to_control = 0
        self._control_dt = settings.control_period_steps * settings.timestep
        self._last_slow_update = 0.0
        self._square_torque_integral = np.zeros(len(self.joint_names))  # N²·m²·s
        self._friction_energy = np.zeros(len(self.joint_names))  # J
        self._apply_friction()
        mujoco.mj_forward(self.model, self.data)

    # --- time --------------------------------------------------------------------------------

    @property
    def time(self) -> float:
        """Simulated seconds since start."""
        return self._step_count * self.settings.timestep

    def device_time(self) -> float:
        """The devices' own clock: offset and drifting against simulated time."""
        elapsed = self.time + self._clock_skip
        return elapsed * (1.0 + self.settings.device_clock_drift_ppm * 1e-6) + self.settings.device_clock_offset

    @property
    def clock_skip(self) -> float:
        """Seconds the devices' clocks ran on while the simulation could not (see ``skip_clock``)."""
        return self._clock_skip

    def skip_clock(self, seconds: float) -> None:
        """The simulation fell ``seconds`` behind real time and was re-anchored there: real
        device clocks would have kept running, so the devices' clock moves on by as much.
        """
        self._clock_skip += seconds

    def step(self, n: int = 1) -> None:
        """Advance ``n`` physics steps (the controller runs every ``control_period_steps``)."""
        remaining = int(n)
        while remaining > 0:
            if self._steps_to_control == 0:
                self._refresh_faults()
                self._control()
                self._steps_to_control = self.settings.control_period_steps
            chunk = min(remaining, self._steps_to_control)
            mujoco.mj_step(self.model, self.data, nstep=chunk)
            self._step_count += chunk
            remaining -= chunk
            self._steps_to_control -= chunk
            if self._steps_to_control == 0:
                self._accumulate_losses()
                if self.time - self._last_slow_update >= self.settings.slow_update_period - 1e-12:
                    self._slow_update()

    # --- devices -----------------------------------------------------------------------------

    def imu_sample(self) -> np.ndarray | None:
        """[ax, ay, az (m/s², specific force), gx, gy, gz (rad/s)] in imu_link; None during dropout."""
        self._refresh_faults()
        if self.faults.is_dropped("imu"):
            return None
        return self.imu.sample(self.data, self._imu_fault_bias)

    def encoder_sample(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Positions (rad, quantised), velocities (rad/s), efforts (N·m); None during dropout."""
        self._refresh_faults()
        if self.faults.is_dropped("encoders"):
            return None
        return self.encoders.sample(self.data.qpos[self._dofs], self.data.qvel[self._dofs],
                                    self.data.actuator_force.copy(), self._stuck_encoders)

    def lidar_scan(self) -> np.ndarray | None:
        """Ranges (m, float32) over the configured beams; None during dropout."""
        self._refresh_faults()
        if self.faults.is_dropped("lidar"):
            return None
        return self.lidar.scan(self.data)

    def plan_sample(self, targets: int) -> Plan | None:
        """The controller's commanded trajectory from now (see ``PickAndPlaceController.plan``);
        None during a dropout of the ``plan`` channel.
        """
        self._refresh_faults()
        if self.faults.is_dropped("plan"):
            return None
        return self.controller.plan(targets)

    def camera_view(self) -> CameraView | None:
        """What the cell camera sees now, with its active faults; None during a ``camera`` dropout."""
        self._refresh_faults()
        if self.faults.is_dropped("camera"):
            return None
        faults = self.faults
        return CameraView(
            sim_time=self.time, device_time=self.device_time(), qpos=self.data.qpos.copy(),
            frozen=bool(faults.active_of("camera_frozen")),
            occlusion=max((f.parameters["fraction"] for f in faults.active_of("camera_occlusion")), default=0.0),
            blur_sigma=max((f.parameters["sigma"] for f in faults.active_of("camera_blur")), default=0.0))

    def motor_temperatures(self) -> np.ndarray | None:
        """Winding temperatures (°C) as reported by the PLC; None during a PLC dropout."""
        self._refresh_faults()
        if self.faults.is_dropped("plc"):
            return None
        return self.thermal.temperatures.copy()

    # --- commands ----------------------------------------------------------------------------

    def set_speed_override(self, value: float) -> None:
        self.controller.set_speed_override(value)

    def protective_stop(self) -> None:
        self.controller.protective_stop()

    def resume(self) -> None:
        """Release a protective stop (the speed ramps back up to the override)."""
        self.controller.resume()

    def command_joint_positions(self, positions: Sequence[float]) -> None:
        """Manual mode: move to ``positions`` (clamped to the URDF limits)."""
        self.controller.command_positions(positions)

    def resume_task(self) -> None:
        """Leave manual mode and continue the pick-and-place cycle."""
        self.controller.resume_task()

    @property
    def mode(self) -> Mode:
        return self.controller.mode

    def inject_fault(self, fault: Fault) -> Fault:
        """Add a fault at run time (no start time: starts now). Returns the scheduled fault."""
        self._check_fault_target(fault, "fault.target")
        scheduled = self.faults.add(fault, now=self.time)
        self._refresh_faults()
        return scheduled

    # --- ground truth ------------------------------------------------------------------------

    def truth(self) -> Truth:
        self._refresh_faults()
        controller = self.controller
        return Truth(
            time=self.time,
            q=self.data.qpos[self._dofs].copy(),
            qd=self.data.qvel[self._dofs].copy(),
            tau=self.data.actuator_force.copy(),
            motor_temp=self.thermal.temperatures.copy(),
            coulomb_friction=self.model.dof_frictionloss[self._dofs].copy(),
            viscous_friction=self.model.dof_damping[self._dofs].copy(),
            wear=self.wear.wear.copy(),
            health=self.wear.health,
            vibration_rms=self.wear.vibration_rms,
            task_id=controller.task_id,
            task_phase=controller.phase,
            task_progress=controller.progress,
            speed_override=controller.speed_override,
            stopped=controller.stopped,
            mode=controller.mode.value,
            active_faults=tuple(fault.label for fault in self.faults.active),
        )

    # --- internals ---------------------------------------------------------------------------

    def _control(self) -> None:
        """PD servo reference + feed-forward (bias, inertia, payload) for the next control period."""
        model, data = self.model, self.data
        reference = self.controller.update(self._control_dt)
        applied = np.zeros(model.nv)
        applied[self._dofs] = self.wear.vibration_torque(self._control_dt, data.qvel[self._dofs])
        self._payload_force[:] = 0.0
        if self.controller.carrying_payload and self._payload_weight[2] != 0.0:
            mujoco.mj_applyFT(model, data, self._payload_weight, np.zeros(3), data.xpos[self._tool_body],
                              self._tool_body, self._payload_force)
        data.qfrc_applied[:] = applied + self._payload_force
        desired_acceleration = np.zeros(model.nv)
        desired_acceleration[self._dofs] = reference.acceleration
        mujoco.mj_mulM(model, data, self._inertial_force, desired_acceleration)
        feedforward = (data.qfrc_bias + self._inertial_force - self._payload_force)[self._dofs]
        data.ctrl[:] = reference.position + (self.gains.kd * reference.velocity + feedforward) / self.gains.kp

    def _accumulate_losses(self) -> None:
        dt = self._control_dt
        torque = self.data.actuator_force
        velocity = self.data.qvel[self._dofs]
        self.wear.accumulate(dt, torque, velocity)
        self._square_torque_integral += torque * torque * dt
        friction_power = (self.model.dof_frictionloss[self._dofs] * np.abs(velocity)
                          + self.model.dof_damping[self._dofs] * velocity * velocity)
        self._friction_energy += friction_power * dt

    def _slow_update(self) -> None:
        """Integrate motor temperatures and wear over the time since the last slow update."""
        elapsed = self.time - self._last_slow_update
        self.thermal.step(elapsed, self._square_torque_integral / elapsed, self._friction_energy / elapsed,
                          self._cooling)
        self.wear.update()
        self._apply_friction()
        self._square_torque_integral[:] = 0.0
        self._friction_energy[:] = 0.0
        self._last_slow_update = self.time

    def _apply_friction(self) -> None:
        self.model.dof_frictionloss[self._dofs] = self.wear.coulomb_friction
        self.model.dof_damping[self._dofs] = self.wear.viscous_damping

    def _refresh_faults(self) -> None:
        change = self.faults.update(self.time)
        if change is None:
            return
        started, ended = change
        for fault in ended:
            if fault.type == "encoder_stuck":
                self._stuck_encoders.pop(self.joint_names.index(fault.target), None)
        for fault in started:
            if fault.type == "encoder_stuck":
                joint = self.joint_names.index(fault.target)
                self._stuck_encoders[joint] = float(self.encoders.quantise(self.data.qpos[self._dofs[joint]]))
        self.data.xfrc_applied[:] = 0.0
        self._imu_fault_bias[:] = 0.0
        self._cooling[:] = 1.0
        for fault in self.faults.active:
            parameters = fault.parameters
            if fault.type == "collision":
                self.data.xfrc_applied[self.model.body(fault.target).id, :3] += parameters["force"]
            elif fault.type == "imu_bias_jump":
                self._imu_fault_bias += np.concatenate((parameters["accel_bias"], parameters["gyro_bias"]))
            elif fault.type == "overheating":
                self._cooling[self.joint_names.index(fault.target)] *= parameters["cooling_factor"]

    def _check_fault_target(self, fault: Fault, path: str) -> None:
        if fault.type in ("encoder_stuck", "overheating") and fault.target not in self.joint_names:
            raise ScenarioError(f"{path}: unknown joint '{fault.target}' (joints: {', '.join(self.joint_names)})")
        if fault.type == "collision" and fault.target not in self.arm.link_names:
            raise ScenarioError(f"{path}: unknown link '{fault.target}' (links: {', '.join(self.arm.link_names)})")

    def _initial_wear(self, scenario: Scenario) -> np.ndarray:
        for joint in scenario.wear.initial:
            if joint not in self.joint_names:
                raise ScenarioError(f"wear.initial.{joint}: unknown joint (joints: {', '.join(self.joint_names)})")
        return np.array([scenario.wear.initial.get(name, 0.0) for name in self.joint_names])
