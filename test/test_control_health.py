"""Health of the actuation: the command link, the arbitration and the watchdog."""
from test_arbiter_anomaly import URDF, arbiter

from twin_control.command_link import CommandLink
from twin_control.config import ActuationConfig, LinkConfig
from twin_control.safety import Arbiter, JointLimits
from twin_core.levels import Level
from twin_core.urdf import read_arm_description


def test_the_link_is_an_error_only_while_commands_go_unacked():
    link = CommandLink(LinkConfig(host='127.0.0.1', port=9))
    idle = link.health(now=5.0)
    assert (idle.name, idle.level, idle.message, idle.hardware_id) == (
        'link', Level.OK, '127.0.0.1:9: no command sent yet', '127.0.0.1:9')
    assert idle.values['last_ack_age_s'] == 'never' and idle.values['in_flight'] == 0
    link.up, link.stats.last_ack, link.stats.last_round_trip = True, 4.0, 0.002
    acked = link.health(now=5.0)
    assert acked.level == Level.OK and acked.values['last_ack_age_s'] == 1.0
    assert acked.values['last_round_trip_ms'] == 2.0
    link.up, link.stats.last_error = False, 'timeout'
    assert link.health(now=6.0).level == Level.ERROR


def test_arbitration_warns_while_holding_the_cell_and_the_watchdog_while_disarmed_or_stale():
    config = ActuationConfig()
    limits = JointLimits.from_arm(read_arm_description(URDF), config.limits.acceleration,
                                  config.limits.position_margin)
    fresh = Arbiter(config, limits)
    arbitration, watchdog = fresh.health(now=0.0)
    assert (arbitration.level, arbitration.message) == (Level.OK, 'no stop requested')
    assert (watchdog.level, watchdog.values) == (Level.WARN, {'timeout_s': config.watchdog.timeout})
    armed = arbiter()
    armed.operator_stop(0.1)
    arbitration, watchdog = armed.health(now=0.1)
    assert (arbitration.level, arbitration.message) == (Level.WARN, 'holding the cell stopped: operator stop')
    assert (watchdog.level, watchdog.message) == (Level.OK, 'ok')
    assert armed.health(now=config.watchdog.timeout + 1.0)[1].level == Level.ERROR
