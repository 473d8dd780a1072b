"""Predictor core: Lagrangian structure, learning a known system, registry, cache, thermal fit, CLIs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from twin_core.urdf import urdf_file
from twin_predictor import eval_cli, train_cli
from twin_predictor.adaptation import Refiner
from twin_predictor.dynamics import PhysicsInformedArm
from twin_predictor.joint_data import JointData, sha256_file
from twin_predictor.predictor import Predictor, ReplayBuffer
from twin_predictor.registry import create, load, save
from twin_predictor.thermal import fit_thermal
from twin_predictor.training import Samples, fit, validation_loss
from twin_sim.generate import run
from twin_sim.paths import scenario_path
from twin_sim.scenario import Scenario
from twin_sim.settings import SimSettings
from twin_sim.workcell import Workcell

torch.set_num_threads(1)
ONES = torch.ones(4)


def arm(members: int = 3, joints: int = 4, **kwargs: object) -> PhysicsInformedArm:
    torch.manual_seed(0)
    ones = torch.ones(joints)
    return PhysicsInformedArm(joints, members, ones * 10.0, ones * 5.0, ones, **kwargs)


def test_mass_matrix_is_positive_definite_for_random_configurations() -> None:
    model = arm()
    q = torch.rand(3, 200, 4) * 2 * np.pi - np.pi
    with torch.no_grad():
        mass = model.terms(q, torch.zeros_like(q))[0]
    assert torch.allclose(mass, mass.transpose(-1, -2))
    assert float(torch.linalg.eigvalsh(mass).min()) > 0.0


def test_gravity_and_coriolis_match_autograd() -> None:
    model = arm(members=2)
    q = torch.randn(2, 5, 4, requires_grad=True)
    qd = torch.randn(2, 5, 4)
    mass, coriolis, gravity, _, potential = model.terms(q, qd)
    assert torch.allclose(gravity, torch.autograd.grad(potential.sum(), q, retain_graph=True)[0], atol=1e-4)
    # Christoffel form: c = Ṁ qd − ½ ∂(qdᵀ M qd)/∂q, with Ṁ = Σ_k ∂M/∂q_k qd_k
    m_dot = torch.autograd.functional.jvp(lambda x: model.terms(x, qd)[0], q.detach(), qd)[1]
    kinetic = torch.einsum('mbi,mbij,mbj->', qd, mass, qd)
    expected = (m_dot @ qd.unsqueeze(-1)).squeeze(-1) - 0.5 * torch.autograd.grad(kinetic, q)[0]
    assert torch.allclose(coriolis, expected, atol=1e-4)


def pendulum(count: int, seed: int) -> Samples:
    """m l² qdd = tau − m g l sin q − b qd with m l² = 0.5, m g l = 4.0, b = 0.3."""
    generator = torch.Generator().manual_seed(seed)
    q = (torch.rand(count, 1, generator=generator) * 2 - 1) * np.pi
    qd = torch.randn(count, 1, generator=generator) * 2.0
    tau = torch.randn(count, 1, generator=generator) * 3.0
    return Samples(q, qd, tau, (tau - 4.0 * torch.sin(q) - 0.3 * qd) / 0.5, torch.zeros(count, 1))


def test_lagrangian_model_recovers_a_damped_pendulum() -> None:
    train, test = pendulum(4000, 1), pendulum(1000, 2)
    model = PhysicsInformedArm(1, 1, hidden=(32, 32), coulomb_velocity=0.05, **train.scales())
    untrained = validation_loss(model, test)
    fit(model, train, steps=600, batch=256, learning_rate=1e-2)
    assert validation_loss(model, test) < 0.01 < 0.1 * untrained
    q = torch.linspace(-np.pi, np.pi, 50).reshape(1, -1, 1)
    mass, _, gravity, _, _ = model.terms(q, torch.zeros_like(q))
    assert torch.allclose(mass.squeeze(), torch.full((50,), 0.5), rtol=0.1)
    assert torch.allclose(gravity.squeeze(), 4.0 * torch.sin(q.squeeze()), atol=0.3)


def test_save_load_round_trip_keeps_weights_metadata_and_version(tmp_path: Path) -> None:
    data_file = tmp_path / 'data.csv'
    data_file.write_text('time,q_a\n0,0\n')
    model = create('ensemble', 4, {'tau_scale': ONES, 'qdd_scale': ONES, 'qd_scale': ONES}, members=2)
    training = {'data': str(data_file), 'sha256': sha256_file(data_file)}
    first = save(model, tmp_path / 'm', 'ensemble', ('a', 'b', 'c', 'd'), training, {'validation_loss': 0.5})
    second = save(model, tmp_path / 'm', 'ensemble', ('a', 'b', 'c', 'd'), training, {'validation_loss': 0.5})
    loaded, metadata = load(tmp_path / 'm')
    assert (first['version'], second['version'], metadata['version']) == (1, 2, 2)
    assert metadata['training']['sha256'] == sha256_file(data_file) and len(metadata['training']['sha256']) == 64
    assert metadata['inputs'] == {'q': 'rad', 'qd': 'rad/s', 'tau': 'N*m'} and metadata['name'] == 'ensemble'
    assert metadata['hyperparameters']['members'] == 2 and metadata['metrics'] == {'validation_loss': 0.5}
    q, qd, tau = torch.randn(3, 2, 7, 4).unbind(0)
    assert torch.equal(loaded.acceleration(q, qd, tau), model.acceleration(q, qd, tau))


def test_prediction_cache_hits_on_the_same_rounded_state_and_misses_after_a_swap() -> None:
    predictor = Predictor(arm(members=3), version=1, step=0.01, horizon_steps=20)
    state = np.array([0.1, 0.2, 0.3, 0.4])
    first = predictor.predict(state, state * 0, state * 10)
    again = predictor.predict(state + 1e-5, state * 0, state * 10)
    assert not first.cached and again.cached and np.array_equal(first.mean, again.mean)
    assert first.mean.shape == first.std.shape == (21, 4) and float(first.std[-1].max()) > 0.0
    predictor.swap(arm(members=3))
    assert not predictor.predict(state, state * 0, state * 10).cached
    assert (predictor.cache.hits, predictor.cache.misses, predictor.version) == (1, 2, 2)


def test_refiner_fine_tunes_on_the_replay_buffer_and_swaps_the_model() -> None:
    predictor = Predictor(arm(members=1), version=1, step=0.01, horizon_steps=5)
    buffer = ReplayBuffer(capacity=100)
    for k in range(60):
        buffer.add(k * 0.01, np.full(4, 0.01 * k), np.full(4, 0.1), np.ones(4))
    refiner = Refiner(predictor, buffer, period=60.0, steps=3, min_samples=50, learning_rate=1e-3)
    before = predictor.model
    assert len(buffer) == 59 and refiner.once()
    assert predictor.model is not before and predictor.version == 2 and np.isfinite(refiner.last_loss)


def test_thermal_fit_recovers_known_heat_balance() -> None:
    rng = np.random.default_rng(0)
    dt, seconds, ambient = 0.1, 3600.0, 25.0
    copper, mechanical, cooling = np.array([2e-4, 5e-4]), np.array([1e-3, 3e-3]), np.array([1 / 300, 1 / 500])
    count = int(seconds / dt)
    level = np.repeat(rng.uniform(0.0, 40.0, (count // 600 + 1, 2)), 600, axis=0)[:count]
    tau = level + rng.normal(0.0, 2.0, (count, 2))
    qd = rng.normal(0.0, 1.0, (count, 2))
    temperature = np.empty((count, 2))
    temperature[0] = ambient
    for k in range(count - 1):
        rate = copper * tau[k] ** 2 + mechanical * np.abs(tau[k] * qd[k]) - cooling * (temperature[k] - ambient)
        temperature[k + 1] = temperature[k] + dt * rate
    data = JointData(('a', 'b'), np.arange(count) * dt, np.zeros((count, 2)), qd, tau, temperature, '')
    model = fit_thermal(data, ambient, window=5.0)
    np.testing.assert_allclose(model.copper, copper, rtol=0.1)
    np.testing.assert_allclose(model.cooling, cooling, rtol=0.1)
    np.testing.assert_allclose(model.mechanical, mechanical, rtol=0.25)


@pytest.fixture(scope='module')
def truth_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp('truth')
    workcell = Workcell(urdf_file(), Scenario.from_file(scenario_path('identification')),
                        SimSettings(control_period_steps=10))
    run(workcell, 1.5, 1000.0, out)
    return out / 'truth.csv'


def test_train_and_evaluate_clis_on_simulator_data(truth_csv: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    for name in ('physics_informed', 'mlp'):
        assert train_cli.main(['--model', name, '--data', str(truth_csv), '--out', str(tmp_path / name),
                               '--steps', '20', '--batch', '64', '--invariant-joints', 'joint_1'
                               if name == 'physics_informed' else '']) == 0
    assert train_cli.main(['--model', 'thermal', '--data', str(truth_csv), '--out', str(tmp_path / 'thermal'),
                           '--window', '0.25']) == 0
    metadata = json.loads((tmp_path / 'physics_informed' / 'metadata.json').read_text())
    assert metadata['training']['sha256'] == sha256_file(truth_csv)
    assert metadata['hyperparameters']['invariant_joints'] == [0]
    assert eval_cli.main(['--data', str(truth_csv), '--model', str(tmp_path / 'physics_informed'),
                          '--model', str(tmp_path / 'mlp'), '--windows', '2', '--horizon', '0.2',
                          '--json', str(tmp_path / 'scores.json')]) == 0
    scores = json.loads((tmp_path / 'scores.json').read_text())
    assert len(scores) == 4 and scores['analytic, exact']['rmse_100ms'] < 1e-3
    assert 'RMSE@0.1s' in capsys.readouterr().out
