"""Supervised workers and the dead-letter store: nothing dies silently, nothing unbounded."""
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from harness import wait_for
from twin_core.dead_letters import DeadLetters
from twin_core.dead_letters import main as dead_letters_main
from twin_core.levels import Level
from twin_core.workers import WorkerFailure, Workers


def test_a_failing_worker_is_reported_at_once_and_restarted():
    failures: list[tuple[float, WorkerFailure]] = []
    runs: list[float] = []
    workers = Workers(on_failure=lambda failure: failures.append((time.monotonic(), failure)),
                      recovered_after=2.0)

    def work() -> None:
        runs.append(time.monotonic())
        if len(runs) == 1:
            raise ValueError('cannot convert float NaN to integer')
        workers.wait(60.0)

    workers.spawn('reader', work)
    try:
        assert wait_for(lambda: len(runs) == 2, timeout=5.0)
        ((reported_at, failure),) = failures
        assert failure.worker == 'reader' and failure.error == 'ValueError: cannot convert float NaN to integer'
        assert 'Traceback' in failure.traceback and reported_at - runs[0] < 0.1
        assert 0.4 < runs[1] - runs[0] < 1.0  # the first restart delay, 0.5 s
        level, message, values = workers.health()
        assert level == Level.ERROR and 'reader failed: ValueError' in message and values['reader.failures'] == 1
        assert wait_for(lambda: workers.health()[0] == Level.OK, timeout=4.0)  # running again since
    finally:
        workers.stop()


def test_a_worker_that_returns_while_running_counts_as_failed_and_stop_ends_all():
    failures: list[WorkerFailure] = []
    workers = Workers(on_failure=failures.append)
    own_stop = threading.Event()
    workers.spawn('quitter', lambda: None)
    thread = workers.spawn('steady', lambda: own_stop.wait(), own_stop)
    assert wait_for(lambda: failures, timeout=2.0)
    assert failures[0].error == 'RuntimeError: returned while the node is running'
    own_stop.set()  # a worker's own stop request ends just that worker, without a failure
    thread.join(2.0)
    assert not thread.is_alive() and [f.worker for f in failures] == ['quitter'] * len(failures)
    workers.stop(timeout=2.0)


def test_dead_letters_count_everything_and_keep_a_bounded_sample(tmp_path: Path):
    now = [10_000_000_000]
    store = DeadLetters(tmp_path / 'node.sqlite', capacity=5, per_second=3, clock=lambda: now[0])
    for index in range(10):
        store.add('mqtt plant/x', 'not_json', f'bad {index}', b'\xff' * 100_000)
    store.add('mqtt plant/x', 'non_finite', 'data: inf', '{"data": 1e400}')
    assert store.counts == {'not_json': 10, 'non_finite': 1}
    letters = store.recent()
    assert [letter.error for letter in letters] == ['bad 2', 'bad 1', 'bad 0']  # 3 per second kept
    assert letters[0].size == 100_000 and len(letters[0].payload) == 64 * 1024
    for index in range(8):
        now[0] += 400_000_000
        store.add('serial /dev/imu', 'non_numeric', f'line {index}', b'abc')
    rows = sqlite3.connect(store.path).execute('SELECT COUNT(*) FROM letters').fetchone()[0]
    assert rows == 5 and store.recent(1)[0].error == 'line 7'  # the newest 5 kept
    store.close()


def test_a_full_disk_loses_no_count_and_says_so(tmp_path: Path):
    store = DeadLetters(tmp_path / 'node.sqlite')
    pages = store._db.execute('PRAGMA page_count').fetchone()[0]  # noqa: SLF001 - make the file full
    store._db.execute(f'PRAGMA max_page_count={pages}')  # noqa: SLF001
    store.add('udp 127.0.0.1:7502', 'payload', 'short', b'x' * 50_000)
    assert store.counts == {'payload': 1, 'dead_letter_store_failed': 1}
    assert 'cannot store dead letter' in store.last_error and 'full' in store.last_error
    store.close()


def test_the_dead_letter_tool_lists_what_a_node_rejected(tmp_path: Path, capsys: pytest.CaptureFixture):
    store = DeadLetters.for_node('/robot_1/mqtt_bridge', tmp_path)
    store.add('mqtt plant/commands/speed_override', 'too_deep', 'not JSON: nested too deeply', b'[[[[')
    store.close()
    assert dead_letters_main(['--dir', str(tmp_path)]) == 0
    output = capsys.readouterr().out
    assert '== robot_1__mqtt_bridge' in output and 'too_deep: not JSON: nested too deeply' in output
