"""Several nodes in one process: the node table's process groups, twin_container, both over DDS."""
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

import psutil
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.srv import GetParameters

from harness import single_node_config, wait_for
from twin_bringup.container_cli import node_class
from twin_bringup.node_table import load_node_table
from twin_core.config import ConfigError
from twin_core.fastdds_shm import stale_fastdds_segments
from twin_core.graph import NodeEntry, ProcessGroup, group_processes, node_module
from twin_core.paths import config_dir

LAUNCH = [sys.executable, '-m', 'twin_bringup.launcher']
INTERRUPTED_NODE = Path(__file__).with_name('interrupted_node.py')
TEARDOWN_NODE = Path(__file__).with_name('teardown_node.py')
SYNC = {'executable': 'sync_node', 'name': 'twin_sync', 'parameters': ['sync.yaml'],
        'config': 'twin_sync.sync_config:SyncConfig'}
STATE = {'executable': 'state_node', 'name': 'twin_state', 'parameters': ['state.yaml'],
         'config': 'twin_state.config:StateConfig'}
HEALTH = {'executable': 'health_monitor', 'name': 'health_monitor', 'parameters': ['health.yaml'],
          'config': 'twin_bringup.health:HealthConfig'}


def entry(name, process='', **fields):
    return NodeEntry(executable=f'{name}_exe', name=name, config='m:C', process=process, **fields)


def test_entries_of_one_process_form_one_group_where_the_first_stands():
    a, b, c, d = entry('a', 'core'), entry('b'), entry('c', 'core'), entry('d', 'alone')
    processes = group_processes([a, b, c, d])
    assert processes == [ProcessGroup('core', (a, c)), b, d]  # a group of one runs on its own
    assert processes[0].qualified_name == '/core' and processes[0].role == 'twin'


def test_a_process_is_per_robot_and_holds_one_role():
    robots = [[entry(name, 'core', namespace=f'robot_{i}') for name in 'ab'] for i in (1, 2)]
    assert group_processes(robots[0] + robots[1]) == [ProcessGroup('core', tuple(r)) for r in robots]
    with pytest.raises(ConfigError, match=r"process core: one role per process .*not \['sim', 'twin'\]"):
        group_processes([entry('a', 'core'), entry('b', 'core', role='sim')])
    mixed = [entry('a', 'twin'), entry('b', 'twin', role='device')]
    assert group_processes(mixed) == [ProcessGroup('twin', tuple(mixed))]


def test_a_process_runs_at_its_most_urgent_entrys_priority():
    quiet, urgent, normal = entry('a', 'core', nice=12), entry('b', 'core', nice=5), entry('c', nice=0)
    group, alone = group_processes([quiet, urgent, normal])
    assert group.nice == 5 and group.environment() == {'TWIN_NICE': '5'}
    assert alone.environment() == {} and entry('d', nice=19).environment() == {'TWIN_NICE': '19'}


def test_a_container_gets_each_node_its_file_and_its_remappings_but_no_global_parameter(tmp_path):
    config = tmp_path / 'config'
    config.mkdir()
    (config / 'sync.yaml').write_text(yaml.safe_dump({
        '/**': {'ros__parameters': {'delay': 0.05}}, 'twin_sync': {'ros__parameters': {'mode': 'timeline'}}}))
    (config / 'state.yaml').write_text(yaml.safe_dump({'twin_state': {'ros__parameters': {'frame_prefix': ''}}}))
    sync = NodeEntry('sync_node', 'twin_sync', 'm:C', parameters=('sync.yaml',), process='core',
                     remappings=('imu/data:=imu/filtered',), overrides=('output_rate_hz:=50.0',))
    state = NodeEntry('state_node', 'twin_state', 'm:C', parameters=('state.yaml',), process='core')
    (group,) = group_processes([sync, state])
    command = group.command_line(config, tmp_path)
    assert command[:4] == ['twin_container', 'twin_sync.sync_node', 'twin_state.state_node', '--ros-args']
    assert '-p' not in command and 'imu/data:=imu/filtered' not in command
    assert command[command.index('-r') + 1] == 'twin_sync:imu/data:=imu/filtered'
    files = [yaml.safe_load(Path(command[i + 1]).read_text()) for i, a in enumerate(command) if a == '--params-file']
    # The /** section and the override reach the synchronizer only, under its own name.
    assert files == [{'/twin_sync': {'ros__parameters': {'delay': 0.05, 'mode': 'timeline', 'output_rate_hz': 50.0}}},
                     {'/twin_state': {'ros__parameters': {'frame_prefix': ''}}}]


def test_a_robot_of_a_fleet_runs_its_container_in_its_namespace(tmp_path):
    table = load_node_table(config_dir())
    grouped = [replace(e, process='core' if e.name in ('twin_sync', 'twin_state') else '')
               for e in table.select(with_sim=False, robots=2)]
    groups = [p for p in group_processes(grouped) if isinstance(p, ProcessGroup)]
    assert [g.qualified_name for g in groups] == ['/robot_1/core', '/robot_2/core']
    arguments = groups[1].ros_arguments(config_dir(), tmp_path)
    assert arguments[:3] == ['--ros-args', '-r', '__ns:=/robot_2']
    files = [yaml.safe_load(Path(arguments[i + 1]).read_text()) for i, a in enumerate(arguments)
             if a == '--params-file']
    assert [list(f) for f in files] == [['/robot_2/twin_sync'], ['/robot_2/twin_state']]
    assert files[1]['/robot_2/twin_state']['ros__parameters']['frame_prefix'] == 'robot_2/'


def test_every_node_of_the_graph_can_be_composed():
    table = load_node_table(config_dir())
    for node in table.select(with_sim=True, with_view=True) + [table.fleet.aggregator]:
        assert node_class(node_module(node.executable)).__module__ == node_module(node.executable)
    with pytest.raises(ConfigError, match=r"expected one Node subclass in twin_core.graph, found \[\]"):
        node_class('twin_core.graph')
    with pytest.raises(ConfigError, match='no Node subclass Missing'):
        node_class('twin_sync.sync_node:Missing')


def test_the_default_graph_runs_drivers_core_and_analytics_apart_and_the_health_and_actuation_alone():
    table = load_node_table(config_dir())
    processes = group_processes(table.select(with_sim=True, with_view=True))
    assert [p.name for p in processes] == ['workcell_sim', 'health_monitor', 'drivers', 'core', 'actuation',
                                           'analytics', 'twin_view']
    members = {p.name: [e.name for e in p.entries] for p in processes if isinstance(p, ProcessGroup)}
    assert members == {
        'analytics': ['anomaly_detector', 'maintenance_planner', 'predictor'],
        'drivers': ['imu_driver', 'encoder_driver', 'lidar_driver', 'plan_driver', 'plc_driver'],
        'core': ['twin_sync', 'twin_state']}
    assert {p.name: p.nice for p in processes if p.nice} == {'analytics': 10}


def parameter(probe, node, name):
    """The node's parameter ``name`` (its ParameterValue), None if the node has no such parameter."""
    client = probe.node.create_client(GetParameters, f'/{node}/get_parameters')
    assert client.wait_for_service(timeout_sec=20.0)
    future = client.call_async(GetParameters.Request(names=[name]))
    deadline = time.monotonic() + 10.0
    while not future.done() and time.monotonic() < deadline:
        time.sleep(0.05)
    values = future.result().values
    return values[0] if values else None


def node_processes(launcher_pid):
    return [p for p in psutil.Process(launcher_pid).children() if 'twin_bringup.lifetime' not in p.cmdline()]


def assert_priority(process: psutil.Process, nice: int) -> None:
    """Every thread of ``process`` at ``nice``, and its scheduling group too where the kernel has them."""
    threads = {thread.id for thread in process.threads()}
    assert len(threads) > 3 and {os.getpriority(os.PRIO_PROCESS, t) for t in threads} == {nice}
    group = Path(f'/proc/{process.pid}/autogroup')
    if group.exists():
        assert group.read_text().split()[-1] == str(nice)


@pytest.mark.integration
def test_twin_launch_runs_three_nodes_in_one_container_and_restarts_them_together(start_process, probe, tmp_path):
    config = single_node_config(tmp_path, {**HEALTH, 'process': 'core', 'overrides': ['publish_rate_hz:=4.0'],
                                           'remappings': ['diagnostics_agg:=health/aggregate'], 'nice': 12})
    graph = yaml.safe_load((config / 'graph.yaml').read_text())
    graph['nodes'] += [{**SYNC, 'process': 'core', 'nice': 7}, {**STATE, 'process': 'core', 'nice': 9}]
    (config / 'graph.yaml').write_text(yaml.safe_dump(graph))
    probe.subscribe('/diagnostics', DiagnosticArray)
    probe.subscribe('/health/aggregate', DiagnosticArray)
    probe.subscribe('/diagnostics_agg', DiagnosticArray)
    launcher = start_process(*LAUNCH, '--no-sim', '--config-dir', str(config), name='twin_launch')

    def all_report(messages):
        names = {s.name.partition(':')[0] for m in messages for s in m.status}
        return {'health_monitor', 'twin_sync', 'twin_state'} <= names
    probe.wait_for('/diagnostics', all_report, timeout=30)
    probe.wait_for('/health/aggregate', lambda m: len(m) >= 2, timeout=10)
    (container,) = node_processes(launcher.process.pid)
    assert 'twin_container' in container.cmdline()[1]
    assert_priority(container, 7)  # the most urgent node's, in every thread (DDS ones included)
    # Each node has its own parameters: the override and the remapping reached the monitor only.
    assert parameter(probe, 'health_monitor', 'publish_rate_hz').double_value == 4.0
    assert parameter(probe, 'twin_sync', 'publish_rate_hz') is None
    assert parameter(probe, 'twin_sync', 'delay').double_value == yaml.safe_load(
        (config / 'sync.yaml').read_text())['twin_sync']['ros__parameters']['delay']
    assert not probe.messages('/diagnostics_agg')

    container.send_signal(signal.SIGKILL)
    before = len(probe.messages('/health/aggregate'))
    probe.wait_for('/health/aggregate', lambda m: len(m) > before + 1, timeout=30)
    (restarted,) = node_processes(launcher.process.pid)
    assert restarted.pid != container.pid
    assert_priority(restarted, 7)
    assert launcher.stop() == 0
    output = launcher.output()
    assert 'twin_launch: starting core (health_monitor, twin_sync, twin_state)' in output
    assert '[core] exited with code -9; restarting in 0.5 s' in output
    assert output.count("process at CPU priority nice 7 (the node table's nice: TWIN_NICE)") == 2
    assert "twin_launch: stopped 3 nodes in 1 processes; restarts: {'core': 1}" in output


@pytest.mark.integration
def test_a_configuration_error_in_one_node_stops_the_container_naming_it(start_process, tmp_path):
    state = tmp_path / 'state.yaml'
    state.write_text(yaml.safe_dump({'twin_state': {'ros__parameters': {'frame_prefx': ''}}}))
    container = start_process('twin_container', 'twin_sync.sync_node', 'twin_state.state_node', '--ros-args',
                              '--params-file', str(config_dir() / 'sync.yaml'), '--params-file', str(state))
    assert container.wait(timeout=60) == 2
    fatal = [line for line in container.output().splitlines() if 'FATAL' in line]
    assert len(fatal) == 1 and "twin_state.frame_prefx: unknown key (did you mean 'frame_prefix'?)" in fatal[0]


@pytest.mark.integration
@pytest.mark.parametrize('when', ['starting', 'spinning'])
def test_a_second_ctrl_c_does_not_cut_the_teardown_short(start_process, probe, when):
    """Under ros2 launch a Ctrl-C reaches each node from the terminal and again from the launch."""
    probe.subscribe('/diagnostics', DiagnosticArray)
    container = start_process('twin_container', 'twin_sync.sync_node', 'twin_state.state_node', '--ros-args',
                              '--params-file', str(config_dir() / 'sync.yaml'),
                              '--params-file', str(config_dir() / 'state.yaml'))
    assert wait_for(lambda: probe.node.count_publishers('/twin/joint_states') > 0, timeout=30.0), container.output()
    if when == 'spinning':
        assert probe.wait_for('/diagnostics', lambda messages: len(messages) > 0, timeout=30.0)
    segments_before = {path.name for path in Path('/dev/shm').glob('fastdds_*')}
    stale_before = stale_fastdds_segments()  # left by some other process: not this container's
    for _ in range(100):  # SIGINTs every 20 ms: the first stops the spin, the others land in the teardown
        if container.process.poll() is not None:
            break
        os.killpg(container.process.pid, signal.SIGINT)
        time.sleep(0.02)
    assert container.wait(timeout=30) == 0, container.output()
    assert 'Traceback' not in container.output()
    left = {path.name for path in Path('/dev/shm').glob('fastdds_*')} & segments_before
    assert not (stale_fastdds_segments() - stale_before) & left, 'the container left its Fast DDS segment'


def test_an_error_rclpy_raises_as_a_sigint_shuts_the_context_down_ends_the_node_cleanly(start_process):
    node = start_process(sys.executable, str(INTERRUPTED_NODE), 'interrupted', name='interrupted_node')
    assert node.wait(timeout=30) == 0, node.output()
    assert 'Traceback' not in node.output()


def test_the_same_error_without_a_shutdown_is_not_hidden(start_process):
    node = start_process(sys.executable, str(INTERRUPTED_NODE), 'bug', name='raising_node')
    assert node.wait(timeout=30) == 1
    assert "RuntimeError: Unable to convert call argument '0' to Python object" in node.output()


def test_the_teardown_runs_with_rclpy_signal_thread_joined_and_signals_ignored(start_process):
    """rclpy's signal thread wakes executors and shuts contexts down without the interpreter lock:
    it must be gone before the executor and the nodes are destroyed.
    """
    node = start_process(sys.executable, str(TEARDOWN_NODE), name='teardown_node')
    assert wait_for(lambda: 'spinning' in node.output(), timeout=30.0), node.output()
    node.process.send_signal(signal.SIGINT)
    assert node.wait(timeout=30) == 0, node.output()
    assert ('destroyed: 1 thread(s) ended, SIGINT <Handlers.SIG_IGN: 1>, SIGTERM <Handlers.SIG_IGN: 1>'
            in node.output())
