"""Safety arbitration, limits, rate limiting, the watchdog, and the command link against a real cell."""
from __future__ import annotations

import dataclasses
import re
import socket
from pathlib import Path

import numpy as np
import pytest

from twin_control.command_link import TIMEOUT, CommandLink
from twin_control.config import ActuationConfig, LinkConfig
from twin_control.safety import (
    Arbiter,
    CellCommand,
    JointLimits,
    Source,
    StateSample,
    limit_step,
    maintenance_cap,
)
from twin_core.config import ConfigError, build
from twin_core.levels import Risk
from twin_core.urdf import read_arm_description
from twin_sensors.wire import CommandName, parse_command
from twin_sim.hardware import CommandChannel, CommandServer
from twin_sim.scenario import Scenario
from twin_sim.settings import SimSettings
from twin_sim.workcell import Workcell

REPO = Path(__file__).resolve().parents[1]
URDF = REPO / 'config' / 'arm.urdf'
CONFIG = ActuationConfig()
LIMITS = JointLimits.from_arm(read_arm_description(URDF), CONFIG.limits.acceleration,
                              CONFIG.limits.position_margin)
INTERVAL = 1.0 / CONFIG.limits.max_commands_per_s
STOP, RESUME = CellCommand(CommandName.STOP), CellCommand(CommandName.RESUME)


def speed(value: float) -> CellCommand:
    return CellCommand(CommandName.SPEED_OVERRIDE, value)


def state(load: float = 0.2, encoder_age: float = 0.01, position=(0.0, 0.0, 0.0, 0.0),
          velocity=(0.0, 0.0, 0.0, 0.0)) -> StateSample:
    return StateSample(position=np.array(position), velocity=np.array(velocity), load=np.full(4, load),
                       speed_override=1.0, input_ages={'encoders/joint_states': encoder_age})


def drain(arbiter: Arbiter, now: float) -> list:
    decisions = []
    while (decision := arbiter.tick(now)) is not None:
        decisions.append(decision)
    return decisions


@pytest.fixture
def arbiter() -> Arbiter:
    arbiter = Arbiter(CONFIG, LIMITS)
    assert arbiter.observe_state(state(), 0.0) is None
    return arbiter


# --------------------------------------------------------------------------- arbitration


def test_operator_stop_beats_every_other_source(arbiter):
    decision = arbiter.operator_stop(0.0)
    assert (decision.source, decision.command, decision.accepted) == (Source.OPERATOR, STOP, True)
    correction = arbiter.correction([0.1, 0.0, 0.0, 0.0], 0.1)
    assert not correction.accepted and correction.command is None and 'stopped' in correction.reason
    assert arbiter.refused['trajectory'] == 1
    # a protective cause while stopped sends nothing more, and a resume only releases the operator's stop
    assert arbiter.protective('anomaly imu', True, 'level score 9', 0.2) is None
    refused = arbiter.operator_resume(0.3)
    assert not refused.accepted and refused.request == RESUME and 'anomaly imu' in refused.reason
    assert arbiter.operator_stop(0.4).reason == 'cell already stopped'
    assert arbiter.protective('anomaly imu', False, '', 0.5) is None
    resumed = arbiter.operator_resume(0.6)
    assert (resumed.command, resumed.source, resumed.accepted) == (RESUME, Source.OPERATOR, True)
    assert arbiter.stop_causes() == []


def test_protective_stop_latches_until_an_operator_resume(arbiter):
    decision = arbiter.protective('anomaly joint_2', True, 'residual', 0.0)
    assert decision.command == STOP and decision.source == Source.PROTECTIVE
    assert decision.reason == 'anomaly joint_2: residual'
    assert arbiter.protective('anomaly joint_2', False, '', 0.5) is None  # cleared, still held
    assert arbiter.stop_causes() == ['anomaly joint_2: residual']
    assert arbiter.operator_resume(0.6).command == RESUME


def test_overload_in_the_twin_state_stops_the_cell(arbiter):
    decision = arbiter.observe_state(state(load=0.95), 0.01)
    assert decision.command == STOP and decision.source == Source.PROTECTIVE
    assert decision.reason.startswith('overload: joint_1 load 0.95 > 0.8')
    assert arbiter.observe_state(state(load=0.95), 0.02) is None  # already stopped
    assert not arbiter.operator_resume(0.03).accepted  # still overloaded
    arbiter.observe_state(state(load=0.2), 0.04)
    assert arbiter.operator_resume(0.05).command == RESUME


def test_maintenance_derating_caps_the_operator_speed_override(arbiter):
    assert arbiter.operator_speed(0.9, 0.0).command == speed(0.9)
    cap, reason = maintenance_cap([('joint_2', Risk.HIGH), ('joint_3', Risk.CRITICAL), ('imu', Risk.LOW)], CONFIG)
    assert (cap, reason) == (0.5, 'maintenance of joint_3 at CRITICAL risk')
    derated = arbiter.maintenance(cap, reason, 0.1)
    assert derated.command == speed(0.5) and derated.source == Source.MAINTENANCE
    assert 'joint_3 at CRITICAL' in derated.reason
    held = arbiter.operator_speed(0.7, 0.2)
    assert held.accepted and held.command is None and held.reason.startswith('cell already at 0.5')
    assert arbiter.operator_speed(0.3, 0.3).command == speed(0.3)  # lower than the cap: the operator's
    assert arbiter.maintenance(*maintenance_cap([], CONFIG), 0.4) is None  # 0.3 needs no change
    assert arbiter.operator_speed(0.6, 0.5).command == speed(0.55)  # ramped: +0.25 per command


def test_invalid_operator_values_are_refused_not_clamped(arbiter):
    for value in (1.5, -0.1, float('nan')):
        decision = arbiter.operator_speed(value, 0.0)
        assert not decision.accepted and decision.command is None and 'outside [0, 1]' in decision.reason
    assert arbiter.refused['operator'] == 3
    wrong = arbiter.correction([0.1, 0.2], 0.0)
    assert not wrong.accepted and 'needs 4 finite positions' in wrong.reason


def test_no_speed_command_before_anyone_asks_for_one(arbiter):
    assert drain(arbiter, 0.9) == []


# --------------------------------------------------------------------------- limits


def test_limit_step_applies_velocity_acceleration_and_position_limits():
    dt = 0.1
    still = np.zeros(4)
    target = np.array([1.0, 0.05, 0.0, 10.0])
    positions, notes = limit_step(target, still, still, dt, LIMITS)
    # from rest the mean velocity may reach acceleration x dt: 0.4, 0.3, 0.5, 0.8 rad/s
    assert positions == pytest.approx([0.04, 0.03, 0.0, 0.08])
    assert notes == ['joint_1 acceleration limited to 4 rad/s^2', 'joint_2 acceleration limited to 3 rad/s^2',
                     'joint_4 acceleration limited to 8 rad/s^2']
    moving = np.array([1.95, 0.0, 0.0, 0.0])
    positions, notes = limit_step(np.array([5.0, 0.0, 0.0, 0.0]), np.zeros(4), moving, dt, LIMITS)
    assert positions[0] == pytest.approx(0.2) and notes == ['joint_1 velocity limited to 2 rad/s']
    near_limit = np.array([2.9, 0.0, 0.0, 0.0])
    positions, notes = limit_step(np.array([3.5, 0.0, 0.0, 0.0]), near_limit, moving, dt, LIMITS)
    assert positions[0] == pytest.approx(2.967 - 0.05)
    assert notes == ['joint_1 velocity limited to 2 rad/s', 'joint_1 position clamped to 2.917 rad']


def test_limits_need_one_acceleration_per_joint():
    with pytest.raises(ValueError, match='limits.acceleration needs 4 values'):
        JointLimits.from_arm(read_arm_description(URDF), (1.0, 2.0), 0.0)


def test_a_correction_is_clamped_from_the_twins_measured_state(arbiter):
    arbiter.observe_state(state(position=(2.9, 0.0, 0.0, 0.0), velocity=(1.0, 0.0, 0.0, 0.0)), 0.0)
    decision = arbiter.correction([3.5, 0.0, 0.0, 0.0], 0.0)
    assert decision.source == Source.TRAJECTORY and decision.accepted
    assert decision.request.value == (3.5, 0.0, 0.0, 0.0)
    assert decision.command.value[0] == pytest.approx(2.917)
    assert 'joint_1 position clamped' in decision.reason


# --------------------------------------------------------------------------- rate limit


def test_rate_limit_defers_commands_but_never_a_stop(arbiter):
    assert arbiter.operator_speed(0.4, 0.0).command == speed(0.4)
    deferred = arbiter.operator_speed(0.2, INTERVAL / 2)
    assert deferred.accepted and deferred.command is None and 'rate limit' in deferred.reason
    assert arbiter.operator_stop(INTERVAL / 2).command == STOP  # at once
    assert drain(arbiter, INTERVAL * 0.9) == []
    (sent,) = drain(arbiter, INTERVAL * 1.01)
    assert sent.command == speed(0.2)


def test_speed_increases_ramp_by_the_maximum_step(arbiter):
    arbiter.operator_speed(0.1, 0.0)
    arbiter.operator_speed(1.0, 0.01)
    values = [d.command.value for k in range(1, 7) for d in drain(arbiter, k * INTERVAL)]
    assert values == pytest.approx([0.35, 0.6, 0.85, 1.0])


# --------------------------------------------------------------------------- watchdog


def test_watchdog_stops_the_cell_when_the_twin_state_goes_stale():
    arbiter = Arbiter(CONFIG, LIMITS)
    assert drain(arbiter, 100.0) == [] and arbiter.watchdog_state(100.0).startswith('disarmed')
    arbiter.observe_state(state(), 100.0)
    timeout = CONFIG.watchdog.timeout
    assert drain(arbiter, 100.0 + timeout * 0.99) == [] and arbiter.watchdog_state(100.5) == 'ok'
    (stop,) = drain(arbiter, 100.0 + timeout * 1.01)
    assert stop.command == STOP and stop.source == Source.WATCHDOG
    assert stop.reason.startswith(f'watchdog: no twin/state for 1.01 s (> {timeout:g} s)')
    assert not arbiter.operator_resume(100.0 + timeout * 1.02).accepted  # inputs still stale
    arbiter.observe_state(state(), 102.0)
    assert arbiter.operator_resume(102.0).command == RESUME


def test_watchdog_checks_the_age_of_required_inputs(arbiter):
    assert arbiter.observe_state(state(encoder_age=0.9), 1.0) is None
    (stop,) = drain(arbiter, 1.11)
    assert stop.source == Source.WATCHDOG and 'encoders/joint_states is 1.01 s old' in stop.reason
    missing = Arbiter(dataclasses.replace(CONFIG, watchdog=dataclasses.replace(
        CONFIG.watchdog, required_inputs=('/scan',))), LIMITS)
    assert missing.observe_state(state(), 0.0).command == STOP  # a required input absent from the state


def test_a_lost_command_is_sent_again(arbiter):
    first = arbiter.operator_speed(0.5, 0.0)
    arbiter.link_lost(first.command)
    (again,) = drain(arbiter, INTERVAL)
    assert again.command == speed(0.5)
    stop = arbiter.operator_stop(1.0)
    arbiter.link_lost(stop.command)
    assert [d.command for d in drain(arbiter, 1.0)] == [STOP]


# --------------------------------------------------------------------------- command link


@pytest.fixture(scope='module')
def workcell() -> Workcell:
    return Workcell(URDF, Scenario.from_file(REPO / 'config' / 'scenarios' / 'nominal.yaml'), SimSettings(), seed=2)


@pytest.fixture
def server():
    server = CommandServer(CommandChannel(port=0))
    server.open()
    yield server
    server.close()


def link_to(port: int, **changes) -> CommandLink:
    link = CommandLink(dataclasses.replace(LinkConfig(port=port), **changes))
    link.open()
    return link


def wait_outcomes(link: CommandLink, server: CommandServer, workcell: Workcell, now: float, count: int = 1):
    outcomes = []
    for _ in range(200):
        server.poll(workcell)
        outcomes += link.poll(now)
        if len(outcomes) >= count:
            return outcomes
    raise AssertionError('no ack')


def test_link_commands_reach_the_cell_and_are_acked(server, workcell):
    link = link_to(server.address[1])
    try:
        seq, superseded = link.send(speed(0.35), 'tag', 0.0)
        assert superseded == []
        (outcome,) = wait_outcomes(link, server, workcell, 0.0)
        assert (outcome.seq, outcome.ok, outcome.error, outcome.tag, outcome.attempts) == (seq, True, '', 'tag', 1)
        assert workcell.controller.speed_override == 0.35
        link.send(STOP, 'stop', 0.0)
        assert wait_outcomes(link, server, workcell, 0.0)[0].ok and workcell.controller.stopped
        link.send(CellCommand(CommandName.JOINT_POSITIONS, (0.0,)), 'bad', 0.0)
        (rejected,) = wait_outcomes(link, server, workcell, 0.0)
        assert not rejected.ok and 'expected 4' in rejected.error
        link.send(RESUME, 'resume', 0.0)
        assert wait_outcomes(link, server, workcell, 0.0)[0].ok and not workcell.controller.stopped
        assert link.up and (link.stats.acked, link.stats.rejected) == (3, 1)
    finally:
        link.close()


def test_link_retries_with_the_same_seq_and_reports_a_timeout():
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(('127.0.0.1', 0))
    silent.settimeout(1.0)
    link = link_to(silent.getsockname()[1], ack_timeout=0.1, attempts=3)
    try:
        seq, _ = link.send(speed(0.5), 'tag', 0.0)
        assert link.poll(0.05) == [] and link.poll(0.11) == [] and link.poll(0.22) == []
        (lost,) = link.poll(0.33)
        assert (lost.ok, lost.error, lost.attempts, lost.round_trip) == (False, TIMEOUT, 3, None)
        received = [parse_command(silent.recv(1000)) for _ in range(3)]
        assert {c.seq for c in received} == {seq} and {c.value for c in received} == {0.5}
        assert link.up is False and link.stats.retries == 2 and link.stats.lost == 1
    finally:
        link.close()
        silent.close()


def test_a_retry_is_idempotent_and_the_duplicate_ack_ignored(server, workcell):
    link = link_to(server.address[1], ack_timeout=0.1)
    try:
        seq, _ = link.send(speed(0.6), 'tag', 0.0)
        assert link.poll(0.15) == []  # the cell has not answered yet: sent again, same seq
        (outcome,) = wait_outcomes(link, server, workcell, 0.16)
        assert outcome.ok and outcome.seq == seq and outcome.attempts == 2
        assert server.accepted >= 2 and workcell.controller.speed_override == 0.6
        for _ in range(50):
            server.poll(workcell)
            assert link.poll(0.17) == []
        assert link.stats.unexpected == 1  # the second ack of the same seq
    finally:
        link.close()


def test_a_newer_command_of_the_same_kind_supersedes_an_unacked_one(server, workcell):
    link = link_to(server.address[1])
    try:
        old, _ = link.send(speed(0.2), 'old', 0.0)
        link.send(STOP, 'stop', 0.0)
        new, superseded = link.send(speed(0.7), 'new', 0.0)
        assert [(o.seq, o.ok, o.error) for o in superseded] == [(old, False, f'superseded by seq {new}')]
        outcomes = wait_outcomes(link, server, workcell, 0.0, count=2)
        assert sorted(o.tag for o in outcomes) == ['new', 'stop']
        assert workcell.controller.speed_override == 0.7  # both datagrams arrived, in order
    finally:
        link.close()


@pytest.mark.parametrize('host', ['192.168.10.21', '10.200.0.2', 'cell-7.plant.example', 'localhost'])
def test_the_link_reaches_a_cell_on_the_network(host):
    assert build(ActuationConfig, {'link': {'host': host}}, 'actuation').link.host == host


@pytest.mark.parametrize('host, message', [
    ('192.168.10.300', "host '192.168.10.300' is not a valid IPv4 address"),
    ('192.168.10.21:7600', 'without scheme or port'),
    ('udp://cell-7', 'without scheme or port'),
    ('cell 7', 'host must be an IP address or a host name'),
    ('', 'empty value'),
    ('fd00::7', 'IPv4 address or a host name'),
])
def test_the_config_rejects_a_malformed_link_host(host, message):
    with pytest.raises(ConfigError, match=f'^actuation.link: .*{re.escape(message)}'):
        build(ActuationConfig, {'link': {'host': host}}, 'actuation')
