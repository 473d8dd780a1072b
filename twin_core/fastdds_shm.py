"""Fast DDS shared memory that killed processes leave in /dev/shm, found and removed.

Each participant keeps a segment there (and a port per shared-memory locator) with ``_el`` /
``_sl`` lock files it holds flock-ed while it runs, and removes them on a clean exit. A process
killed by SIGKILL cannot: like ``fastdds shm clean``, only segments whose locks no living
process holds are stale.
"""
from __future__ import annotations

import fcntl
import os
import re
import time
from pathlib import Path

SHM_DIR = Path('/dev/shm')
STALE_MIN_AGE_S = 1.0  # younger lock files may belong to a participant being created
_SHM_LOCK = re.compile(r'^(fastdds_(?:port\d+|[0-9a-z]{16}))_(el|sl)$')


def stale_fastdds_segments(min_age: float = 0.0, directory: Path = SHM_DIR) -> set[str]:
    """Fast DDS segments and ports in ``directory`` whose locks no living process holds (left behind).

    Each has ``_el`` / ``_sl`` lock files that its owner keeps flock-ed while it runs. Lock files
    younger than ``min_age`` s are skipped: their participant may not have locked them yet.
    """
    locks: dict[str, list[Path]] = {}
    for path in directory.glob('fastdds_*_[es]l'):
        match = _SHM_LOCK.match(path.name)
        if match:
            locks.setdefault(match.group(1), []).append(path)
    now = time.time()
    stale = set()
    for name, files in locks.items():
        try:
            if any(now - f.stat().st_mtime < min_age for f in files):
                continue
        except FileNotFoundError:  # removed by its owner meanwhile
            continue
        if not any(_locked(f) for f in files):
            stale.add(name)
    return stale


def remove_stale_fastdds_segments(min_age: float = STALE_MIN_AGE_S,
                                  directory: Path = SHM_DIR) -> tuple[set[str], list[str]]:
    """Remove stale segments and ports (data, locks, a port's semaphore), as ``fastdds shm clean``.

    Returns the names removed and one message per file that could not be removed.
    """
    removed, failures = set(), []
    for name in stale_fastdds_segments(min_age, directory):
        for path in (directory / name, directory / f'{name}_el', directory / f'{name}_sl',
                     directory / f'sem.{name}_mutex'):
            try:
                path.unlink(missing_ok=True)
            except OSError as error:
                failures.append(f'{path}: {error.strerror or error}')
        removed.add(name)
    return removed, failures


def removal_failures_message(failures: list[str]) -> str:
    """One line for the files ``remove_stale_fastdds_segments`` could not remove."""
    more = f' (and {len(failures) - 1} more)' if len(failures) > 1 else ''
    return f'cannot remove stale Fast DDS shared memory: {failures[0]}{more}'


def _locked(lock: Path) -> bool:
    """True if a living process holds a flock on ``lock`` (or it cannot be opened to check)."""
    try:
        descriptor = os.open(lock, os.O_RDONLY)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
