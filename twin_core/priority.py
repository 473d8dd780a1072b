"""CPU priority of threads and processes: background work yields the cores to the threads that
serve callbacks, and a process the node table marks (``nice:``) yields them to the others.

Linux schedules each thread on its own, so a priority is set per thread. Where the kernel
groups processes by session (autogroup, the default of desktop and many server kernels), a
process that leads its own session (``twin_launch`` starts each so) is its own scheduling group,
and only the group's priority weighs against the other processes: it is set too.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path

from twin_core.config import ConfigError

NICE_VARIABLE = 'TWIN_NICE'  # set by the launchers from the node table's ``nice``
NICE_RANGE = range(20)  # 0: normal; 19: runs when nothing else wants the core
AUTOGROUP = Path('/proc/self/autogroup')


def lower_priority(nice: int = 19) -> None:
    """Run the calling thread at CPU priority ``nice``; a no-op where threads cannot be reniced."""
    _renice(threading.get_native_id(), nice)


def lower_process_priority(nice: int = 19) -> None:
    """Run every thread of this process at CPU priority ``nice``: those already running (the
    thread pools of libraries imported) and, as threads inherit it, those started later; and
    this process's scheduling group, if the process leads its session.
    """
    tasks = Path('/proc/self/task')
    for thread in [int(task.name) for task in tasks.iterdir()] if tasks.is_dir() else [threading.get_native_id()]:
        _renice(thread, nice)
    if os.getsid(0) == os.getpid() and AUTOGROUP.exists():
        try:
            AUTOGROUP.write_text(f'{nice}\n')
        except OSError:  # autogroup disabled at boot: the threads' priority is what counts
            pass


def priority_from_environment(environ: Mapping[str, str]) -> int | None:
    """The nice value the launcher gave this process (``TWIN_NICE``), or None; ``ConfigError`` if
    it is not an integer from 0 to 19.
    """
    value = environ.get(NICE_VARIABLE, '').strip()
    if not value:
        return None
    try:
        nice = int(value)
    except ValueError:
        nice = -1
    if nice not in NICE_RANGE:
        raise ConfigError(f'{NICE_VARIABLE}={value!r}: expected an integer from 0 (normal) to 19 (lowest priority)')
    return nice


def _renice(thread: int, nice: int) -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, thread, nice)
    except (AttributeError, OSError):  # no per-thread priorities here, or the thread has ended
        pass
