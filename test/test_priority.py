"""CPU priorities: a background thread, a whole process, and the launchers' ``TWIN_NICE``."""
import os
import subprocess
import sys
import threading

import pytest

from twin_core.config import ConfigError
from twin_core.priority import lower_priority, priority_from_environment

# Prints the nice of each thread and the autogroup nice after lower_process_priority(7), with a
# thread started before the call and one after.
PROCESS_PROBE = '''
import os, threading, time
from pathlib import Path
from twin_core.priority import lower_process_priority
stop = threading.Event()
early = threading.Thread(target=stop.wait); early.start()
lower_process_priority(7)
late = threading.Thread(target=stop.wait); late.start()
print(sorted({os.getpriority(os.PRIO_PROCESS, int(t)) for t in os.listdir('/proc/self/task')}))
group = Path('/proc/self/autogroup')
print(group.read_text().split()[-1:] if group.exists() else 'none')
stop.set()
'''
AUTOGROUPS = os.path.exists('/proc/self/autogroup')


def autogroup_nice() -> list[str]:
    """This process's autogroup nice, or [] in the boot session's group, which is no autogroup."""
    return open('/proc/self/autogroup').read().split()[-1:]


def test_lower_priority_renices_only_the_calling_thread():
    seen: list[int] = []

    def background() -> None:
        lower_priority(15)
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    thread = threading.Thread(target=background)
    thread.start()
    thread.join()
    assert seen == [15] and os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before


def probe_process(new_session: bool) -> tuple[str, str]:
    out = subprocess.run([sys.executable, '-c', PROCESS_PROBE], capture_output=True, text=True, timeout=60,
                         start_new_session=new_session, check=True).stdout.split('\n')
    return out[0], out[1]


def test_a_process_leading_its_session_lowers_every_thread_and_its_scheduling_group():
    threads, group = probe_process(new_session=True)
    assert threads == '[7]'
    assert group == (str(['7']) if AUTOGROUPS else 'none')


@pytest.mark.skipif(not AUTOGROUPS, reason='the kernel does not group processes by session')
def test_a_process_sharing_its_session_leaves_the_sessions_group_alone():
    """Under ``ros2 launch`` every node shares the launch's session: its group is not theirs to lower."""
    before = autogroup_nice()
    threads, group = probe_process(new_session=False)
    assert threads == '[7]' and group == str(before)


@pytest.mark.parametrize('value, nice', [('', None), ('0', 0), (' 10 ', 10), ('19', 19)])
def test_the_launchers_priority_is_read_from_the_environment(value, nice):
    assert priority_from_environment({'TWIN_NICE': value} if value else {}) == nice


@pytest.mark.parametrize('value', ['-5', '20', 'low', '2.5'])
def test_a_priority_outside_0_to_19_is_a_configuration_error(value):
    with pytest.raises(ConfigError, match=rf"TWIN_NICE='{value}': expected an integer from 0"):
        priority_from_environment({'TWIN_NICE': value})
