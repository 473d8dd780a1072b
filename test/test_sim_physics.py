"""Physics of the workcell simulator checked against independent computations."""
from __future__ import annotations

import copy
import math
from pathlib import Path

import mujoco
import numpy as np
import pytest
import yaml

from twin_core.urdf import read_arm_description
from twin_sim.model import build_model, load_urdf_spec
from twin_sim.scenario import Fault, Scenario, ScenarioError
from twin_sim.thermal import MotorParameters, MotorThermalModel
from twin_sim.wear import WearModel, WearParameters
from twin_sim.workcell import SimSettings, Workcell

CONFIG = Path(__file__).resolve().parent.parent / "config"
URDF = CONFIG / "arm.urdf"
G = 9.81
QUIET = SimSettings(timestep=0.002, control_period_steps=5, imu_accel_noise=0.0, imu_gyro_noise=0.0,
                    imu_accel_bias=0.0, imu_gyro_bias=0.0, encoder_velocity_noise=0.0, effort_noise=0.0,
                    lidar_range_noise=0.0)
FAST = SimSettings(timestep=0.002, control_period_steps=5)


@pytest.fixture(scope="module")
def nominal_document() -> dict:
    return yaml.safe_load((CONFIG / "scenarios" / "nominal.yaml").read_text())


def scenario_with(document: dict, **changes: object) -> Scenario:
    changed = copy.deepcopy(document)
    changed.update(changes)
    return Scenario.from_mapping(changed)


# --- (a) energy -------------------------------------------------------------------------------

def free_arm(damping: bool) -> tuple[mujoco.MjModel, mujoco.MjData]:
    """The arm with motors, contacts and limits off, integrated with RK4."""
    model, _ = build_model(URDF, read_arm_description(URDF), timestep=0.0005)
    model.opt.integrator = mujoco.mjtIntegrator.mjINT_RK4
    model.opt.disableflags |= (mujoco.mjtDisableBit.mjDSBL_ACTUATION | mujoco.mjtDisableBit.mjDSBL_CONTACT
                               | mujoco.mjtDisableBit.mjDSBL_LIMIT)
    model.dof_frictionloss[:] = 0.0
    if not damping:
        model.dof_damping[:] = 0.0
    data = mujoco.MjData(model)
    data.qpos[:] = [0.3, 0.8, -0.5, 0.4]
    data.qvel[:] = [1.0, -0.5, 0.8, 0.0]
    mujoco.mj_forward(model, data)
    return model, data


def mechanical_energy(model: mujoco.MjModel, data: mujoco.MjData) -> float:
    """Kinetic energy from each body's COM twist plus potential energy of the COMs."""
    energy = 0.0
    twist = np.zeros(6)
    for body in range(1, model.nbody):
        mass = model.body_mass[body]
        if mass == 0.0:
            continue
        mujoco.mj_objectVelocity(model, data, mujoco.mjtObj.mjOBJ_BODY, body, twist, 1)  # COM frame
        angular, linear = twist[:3], twist[3:]
        energy += 0.5 * mass * linear @ linear + 0.5 * angular @ (model.body_inertia[body] * angular)
        energy += mass * G * data.xipos[body, 2]
    return energy + 0.5 * model.dof_armature @ (data.qvel * data.qvel)


def test_energy_is_conserved_in_free_motion_without_losses() -> None:
    model, data = free_arm(damping=False)
    initial = mechanical_energy(model, data)
    energies = []
    for _ in range(4000):  # 2 s
        mujoco.mj_step(model, data)
        energies.append(mechanical_energy(model, data))
    assert np.ptp(data.qpos) > 0.5  # the arm really moved
    assert np.max(np.abs(np.array(energies) - initial)) < 1e-5 * abs(initial) + 1e-4


def test_energy_lost_equals_damping_dissipation() -> None:
    model, data = free_arm(damping=True)
    initial = mechanical_energy(model, data)
    damping = model.dof_damping.copy()
    dt = model.opt.timestep
    previous_power = damping @ data.qvel ** 2
    dissipated = 0.0
    for _ in range(4000):
        mujoco.mj_step(model, data)
        power = damping @ data.qvel ** 2
        dissipated += 0.5 * (power + previous_power) * dt
        previous_power = power
    lost = initial - mechanical_energy(model, data)
    assert dissipated > 0.5
    assert lost == pytest.approx(dissipated, rel=0.01)


# --- (b) two-link planar arm against the textbook closed form ----------------------------------

M1, M2, L1, LC1, LC2, I1, I2 = 3.0, 2.0, 0.5, 0.25, 0.2, 0.07, 0.03
TWO_LINK_URDF = f"""<robot name="two_link">
  <link name="base_link"/>
  <joint name="shoulder" type="revolute"><parent link="base_link"/><child link="upper"/>
    <origin xyz="0 0 0"/><axis xyz="0 1 0"/><limit lower="-3" upper="3" effort="100" velocity="5"/></joint>
  <link name="upper"><inertial><origin xyz="0 0 {LC1}"/><mass value="{M1}"/>
    <inertia ixx="0.07" ixy="0" ixz="0" iyy="{I1}" iyz="0" izz="0.01"/></inertial></link>
  <joint name="elbow" type="revolute"><parent link="upper"/><child link="fore"/>
    <origin xyz="0 0 {L1}"/><axis xyz="0 1 0"/><limit lower="-3" upper="3" effort="100" velocity="5"/></joint>
  <link name="fore"><inertial><origin xyz="0 0 {LC2}"/><mass value="{M2}"/>
    <inertia ixx="0.03" ixy="0" ixz="0" iyy="{I2}" iyz="0" izz="0.005"/></inertial></link>
</robot>"""


def closed_form_dynamics(q: np.ndarray, qd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mass matrix and bias (Coriolis + gravity) of a planar 2R arm, angles from the vertical."""
    c2, s2 = math.cos(q[1]), math.sin(q[1])
    m11 = I1 + I2 + M1 * LC1 ** 2 + M2 * (L1 ** 2 + LC2 ** 2 + 2 * L1 * LC2 * c2)
    m12 = I2 + M2 * (LC2 ** 2 + L1 * LC2 * c2)
    m22 = I2 + M2 * LC2 ** 2
    h = M2 * L1 * LC2 * s2
    coriolis = np.array([-h * (2 * qd[0] * qd[1] + qd[1] ** 2), h * qd[0] ** 2])
    # potential V = g (m1 lc1 cos q1 + m2 (l1 cos q1 + lc2 cos(q1 + q2))); bias gravity = dV/dq
    gravity = -G * np.array([M1 * LC1 * math.sin(q[0]) + M2 * (L1 * math.sin(q[0]) + LC2 * math.sin(q[0] + q[1])),
                             M2 * LC2 * math.sin(q[0] + q[1])])
    return np.array([[m11, m12], [m12, m22]]), coriolis + gravity


@pytest.mark.parametrize("q, qd", [((0.3, -0.7), (0.0, 0.0)), ((1.2, 0.9), (0.8, -1.5)), ((-2.0, 2.5), (2.0, 1.0))])
def test_two_link_mass_matrix_and_bias_match_closed_form(tmp_path: Path, q: tuple, qd: tuple) -> None:
    urdf = tmp_path / "two_link.urdf"
    urdf.write_text(TWO_LINK_URDF)
    spec = load_urdf_spec(urdf)
    spec.option.gravity = [0.0, 0.0, -G]
    model = spec.compile()
    data = mujoco.MjData(model)
    data.qpos[:], data.qvel[:] = q, qd
    mujoco.mj_forward(model, data)
    mass_matrix = np.zeros((2, 2))
    mujoco.mj_fullM(model, mass_matrix, data.qM)
    expected_mass, expected_bias = closed_form_dynamics(np.array(q), np.array(qd))
    np.testing.assert_allclose(mass_matrix, expected_mass, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(data.qfrc_bias, expected_bias, rtol=1e-9, atol=1e-9)


# --- (c) IMU at rest --------------------------------------------------------------------------

def test_imu_at_rest_reads_gravity_reaction_in_sensor_frame(nominal_document: dict) -> None:
    workcell = Workcell(URDF, scenario_with(nominal_document), QUIET)
    workcell.set_speed_override(0.0)
    workcell.step(1500)  # ramp down and settle: 3 s
    q = workcell.truth().q
    yaw, pitch = q[0], q[1] + q[2] + q[3]  # imu_link = Rz(q1) · Ry(q2 + q3 + q4), fixed mounts unrotated
    rotation = (np.array([[math.cos(yaw), -math.sin(yaw), 0], [math.sin(yaw), math.cos(yaw), 0], [0, 0, 1]])
                @ np.array([[math.cos(pitch), 0, math.sin(pitch)], [0, 1, 0], [-math.sin(pitch), 0, math.cos(pitch)]]))
    sample = workcell.imu_sample()
    assert np.abs(workcell.truth().qd).max() < 1e-3
    np.testing.assert_allclose(sample[:3], rotation.T @ [0.0, 0.0, G], atol=0.02)
    np.testing.assert_allclose(sample[3:], 0.0, atol=1e-3)


# --- (d) laser scanner ------------------------------------------------------------------------

def test_lidar_ranges_match_obstacle_geometry(nominal_document: dict) -> None:
    obstacles = [{"name": "box", "shape": "box", "position": [1.0, 0.0, 0.3], "size": [0.2, 0.4, 0.6]},
                 {"name": "post", "shape": "cylinder", "position": [0.0, -1.5, 0.5], "size": [0.1, 1.0]}]
    workcell = Workcell(URDF, scenario_with(nominal_document, obstacles=obstacles), QUIET)
    workcell.step(200)
    ranges = workcell.lidar_scan()
    angles = workcell.lidar.angles
    assert ranges.dtype == np.float32 and ranges.shape == (360,)
    on_face = np.abs(0.9 * np.tan(angles)) < 0.199
    on_face &= np.abs(angles) < 1.0
    np.testing.assert_allclose(ranges[on_face], 0.9 / np.cos(angles[on_face]), atol=1e-5)
    assert ranges[np.argmin(np.abs(angles + math.pi / 2))] == pytest.approx(1.4, abs=1e-5)
    assert np.isinf(ranges[np.argmin(np.abs(angles - math.pi / 2))])  # nothing there, and the arm is not seen
    assert np.isinf(ranges[np.argmin(np.abs(np.abs(angles) - math.pi))])


# --- (e) determinism --------------------------------------------------------------------------

def run_and_sample(document: dict, seed: int) -> tuple[list, list]:
    workcell = Workcell(URDF, scenario_with(document), FAST, seed=seed)
    truths, samples = [], []
    for _ in range(5):
        workcell.step(50)
        truth = workcell.truth()
        truths.append(np.concatenate((truth.q, truth.qd, truth.tau, truth.motor_temp, truth.wear)))
        samples.append(np.concatenate((workcell.imu_sample(), *workcell.encoder_sample(), workcell.lidar_scan())))
    return truths, samples


def test_same_seed_is_identical_and_other_seed_changes_noise(nominal_document: dict) -> None:
    truths_a, samples_a = run_and_sample(nominal_document, seed=3)
    truths_b, samples_b = run_and_sample(nominal_document, seed=3)
    _, samples_c = run_and_sample(nominal_document, seed=4)
    np.testing.assert_array_equal(np.array(truths_a), np.array(truths_b))
    np.testing.assert_array_equal(np.array(samples_a), np.array(samples_b))
    assert not np.allclose(np.array(samples_a)[:, :6], np.array(samples_c)[:, :6])


# --- (f) thermal ------------------------------------------------------------------------------

@pytest.mark.parametrize("cooling", [1.0, 0.25])
def test_thermal_steady_state_is_power_times_resistance_plus_ambient(cooling: float) -> None:
    parameters = MotorParameters()
    gear = np.array([100.0])
    thermal = MotorThermalModel(parameters, gear, ambient=25.0)
    torque, friction_power = 25.0, 2.0
    for _ in range(2000):
        thermal.step(60.0, np.array([torque ** 2]), np.array([friction_power]), cooling)
    current = torque / (gear[0] * parameters.torque_constant)
    resistance_th = parameters.thermal_resistance / cooling
    alpha, r20 = parameters.resistance_temperature_coefficient, parameters.winding_resistance
    # T = Ta + R_th (I² R20 (1 + α (T − 20)) + P_f), solved for T
    expected = ((25.0 + resistance_th * (current ** 2 * r20 * (1 - 20 * alpha) + friction_power))
                / (1 - resistance_th * current ** 2 * r20 * alpha))
    power = current ** 2 * thermal.winding_resistance(thermal.temperatures[0]) + friction_power
    assert thermal.temperatures[0] == pytest.approx(expected, abs=1e-6)
    assert thermal.temperatures[0] == pytest.approx(25.0 + power * resistance_th, abs=1e-6)
    assert expected - 25.0 > 10.0


def test_thermal_integration_is_independent_of_step_size() -> None:
    coarse = MotorThermalModel(MotorParameters(), np.array([80.0]), ambient=20.0)
    fine = MotorThermalModel(MotorParameters(), np.array([80.0]), ambient=20.0)
    coarse.step(300.0, np.array([900.0]), np.array([1.0]))
    for _ in range(3000):
        fine.step(0.1, np.array([900.0]), np.array([1.0]))
    assert coarse.temperatures[0] == pytest.approx(fine.temperatures[0], abs=1e-9)
    assert coarse.temperatures[0] > 25.0


# --- (g) wear ---------------------------------------------------------------------------------

def test_wear_raises_friction_and_lowers_health_monotonically() -> None:
    arm = read_arm_description(URDF)
    wear = WearModel(WearParameters(), arm, rate=2e5, initial_wear=np.zeros(4), rng=np.random.default_rng(1))
    frictions, healths = [wear.coulomb_friction], [wear.health]
    for _ in range(400):
        wear.accumulate(1.0, np.array([10.0, 40.0, 20.0, 5.0]), np.array([0.5, 0.4, 0.6, 0.8]))
        wear.update()
        frictions.append(wear.coulomb_friction)
        healths.append(wear.health)
    assert np.all(np.diff(frictions, axis=0) >= 0.0) and np.all(np.diff(healths, axis=0) <= 0.0)
    assert np.all(healths[-1] < 0.9) and np.all(frictions[-1] > arm.friction)


def test_wear_is_applied_to_the_engine_and_excites_vibration(nominal_document: dict) -> None:
    document = copy.deepcopy(nominal_document)
    document["wear"] = {"rate": 3e6, "initial": {"joint_2": 0.5}}
    workcell = Workcell(URDF, Scenario.from_mapping(document), FAST)
    initial_friction = workcell.model.dof_frictionloss.copy()
    workcell.step(1500)
    truth = workcell.truth()
    assert np.all(workcell.model.dof_frictionloss[1:3] > initial_friction[1:3])
    np.testing.assert_array_equal(truth.coulomb_friction, workcell.model.dof_frictionloss)
    assert truth.health[1] < 0.5 and truth.vibration_rms[1] > 0.1
    new_arm = Workcell(URDF, scenario_with(nominal_document), FAST)
    new_arm.step(1500)
    assert np.all(new_arm.truth().vibration_rms == 0.0)


# --- (h) faults -------------------------------------------------------------------------------

START, DURATION = 0.6, 0.4


def fault_run(document: dict, fault: dict | None) -> list[tuple]:
    """Sample every device and the truth every 0.05 s for 1.4 s."""
    workcell = Workcell(URDF, scenario_with(document, faults=[fault] if fault else []), FAST, seed=5)
    records = []
    for _ in range(28):
        workcell.step(25)
        records.append((workcell.truth(), workcell.imu_sample(), workcell.encoder_sample(),
                        workcell.lidar_scan(), workcell.motor_temperatures()))
    return records


def fault_spec(fault_type: str, target: str, **parameters: object) -> dict:
    return {"type": fault_type, "target": target, "start": START, "duration": DURATION, "parameters": parameters}


@pytest.fixture(scope="module")
def baseline(nominal_document: dict) -> list[tuple]:
    return fault_run(nominal_document, None)


def is_active(time: float) -> bool:
    return START <= time < START + DURATION


def test_fault_labels_are_reported_only_while_active(nominal_document: dict) -> None:
    for record in fault_run(nominal_document, fault_spec("overheating", "joint_2")):
        assert (record[0].active_faults == ("overheating:joint_2",)) == is_active(record[0].time)


def test_collision_disturbs_motion_only_from_its_start(nominal_document: dict, baseline: list) -> None:
    records = fault_run(nominal_document, fault_spec("collision", "link_3", force=[0.0, 400.0, 0.0]))
    for (truth, *_), (base, *_) in zip(records, baseline):
        difference = np.abs(truth.tau - base.tau).max()
        if truth.time < START:
            assert difference == 0.0
        elif is_active(truth.time) and truth.time > START + 0.04:  # the servo has had time to react
            assert difference > 5.0


def test_encoder_stuck_holds_its_value_only_while_active(nominal_document: dict) -> None:
    records = fault_run(nominal_document, fault_spec("encoder_stuck", "joint_2"))
    held = [record[2][0][1] for record in records if is_active(record[0].time)]
    true_during = [record[0].q[1] for record in records if is_active(record[0].time)]
    assert len(set(held)) == 1 and np.ptp(true_during) > 0.01
    for truth, _, (positions, _, _), _, _ in records:
        if not is_active(truth.time):
            assert abs(positions[1] - truth.q[1]) < 1e-5


def test_imu_bias_jump_shifts_readings_only_while_active(nominal_document: dict, baseline: list) -> None:
    bias = np.array([0.5, -0.2, 0.1, 0.0, 0.0, 0.03])
    records = fault_run(nominal_document, fault_spec("imu_bias_jump", "imu", accel_bias=list(bias[:3]),
                                                      gyro_bias=list(bias[3:])))
    for record, base in zip(records, baseline):
        expected = bias if is_active(record[0].time) else np.zeros(6)
        np.testing.assert_allclose(record[1] - base[1], expected, atol=1e-9)


@pytest.mark.parametrize("channel, index", [("imu", 1), ("encoders", 2), ("lidar", 3), ("plc", 4)])
def test_sensor_dropout_silences_its_channel_only_while_active(nominal_document: dict, channel: str,
                                                                index: int) -> None:
    for record in fault_run(nominal_document, fault_spec("sensor_dropout", channel)):
        assert (record[index] is None) == is_active(record[0].time)
        assert all(record[other] is not None for other in range(1, 5) if other != index)


def test_overheating_heats_its_motor_only_from_its_start(nominal_document: dict, baseline: list) -> None:
    records = fault_run(nominal_document, fault_spec("overheating", "joint_2", cooling_factor=0.1))
    for record, base in zip(records, baseline):
        rise = record[4] - base[4]
        if record[0].time <= START:
            assert np.all(rise == 0.0)
        elif record[0].time > START + 0.1:
            assert rise[1] > 0.0 and np.all(rise[[0, 2, 3]] == 0.0)


def test_runtime_injection_starts_now(nominal_document: dict) -> None:
    workcell = Workcell(URDF, scenario_with(nominal_document), FAST)
    workcell.step(100)
    scheduled = workcell.inject_fault(Fault("sensor_dropout", "lidar", duration=0.1))
    assert scheduled.start == pytest.approx(0.2) and workcell.lidar_scan() is None
    workcell.step(60)
    assert workcell.lidar_scan() is not None


# --- (i) scenario validation ------------------------------------------------------------------

@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["faults"].append({"type": "overheating", "target": "joint_1", "start": 1, "duraton": 2}),
     "faults[0].duraton: unknown key (did you mean 'duration'?)"),
    (lambda d: d["faults"].append({"type": "overheat", "target": "joint_1"}), "faults[0].type"),
    (lambda d: d["faults"].append({"type": "collision", "target": "link_2", "start": "soon"}), "faults[0].start"),
    (lambda d: d["faults"].append({"type": "sensor_dropout", "target": "radar"}), "faults[0].target"),
    (lambda d: d["faults"].append({"type": "camera_blur", "target": "imu"}), "faults[0].target"),
    (lambda d: d["faults"].append({"type": "camera_occlusion", "target": "camera", "parameters": {"fraction": 2}}),
     "faults[0].parameters.fraction"),
    (lambda d: d["task"]["cycle"][1].update(dwel=1.0), "task.cycle[1].dwel: unknown key (did you mean 'dwell'?)"),
    (lambda d: d["task"]["cycle"][0].update(to="nowhere"), "task.cycle[0].to"),
    (lambda d: d["obstacles"][0].update(size=[1.0, 2.0]), "obstacles[0].size"),
    (lambda d: d.update(wear={"rate": -1.0}), "wear.rate"),
    (lambda d: d.update(speed=3), "speed: unknown key"),
])
def test_scenario_errors_name_the_offending_key(nominal_document: dict, mutate, message: str) -> None:
    document = copy.deepcopy(nominal_document)
    mutate(document)
    with pytest.raises(ScenarioError) as error:
        Scenario.from_mapping(document)
    assert message in str(error.value)


def test_workcell_rejects_unknown_fault_targets_and_too_fast_moves(nominal_document: dict) -> None:
    with pytest.raises(ScenarioError, match=r"faults\[0\].target: unknown joint 'joint_9'"):
        Workcell(URDF, scenario_with(nominal_document, faults=[{"type": "encoder_stuck", "target": "joint_9"}]), FAST)
    document = copy.deepcopy(nominal_document)
    document["task"]["cycle"][3]["duration"] = 0.3
    with pytest.raises(ScenarioError, match=r"task.cycle\[3\].duration"):
        Workcell(URDF, Scenario.from_mapping(document), FAST)
