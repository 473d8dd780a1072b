"""ApproximateTime matching of N timestamped streams (the message_filters C++ policy).

The policy pivots on the topic whose oldest queued message is the newest, keeps the best
candidate set while a later one could still beat it, and emits a set once it is provably
the best one (optionally proved early with per-input lower bounds on the message period).
Guarantees: each message is used at most once, sets never cross, every set spans at most
``max_interval_ns``, and the output depends only on the stamps (given per-input stamp order
and a queue large enough for the inputs' latency differences).

Stamps are integer nanoseconds. A message older than the last one accepted on its input is
counted in ``out_of_order`` and dropped; one with the same stamp is counted in
``duplicate_stamps`` and queued after it as a message of its own. Messages closer to their
predecessor than the input's lower bound are counted in ``bound_violations``: the bound is then
wrong and sets may come out suboptimal. Every discarded message
goes to ``on_drop``. Callbacks run after the internal lock is released.
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Entry = tuple[int, Any]  # (stamp_ns, message)
SetCallback = Callable[[tuple[Entry, ...]], None]
DropCallback = Callable[[int, int, Any], None]  # (input index, stamp_ns, message)
NO_PIVOT = -1


@dataclass(frozen=True)
class ApproximateStats:
    """Counters since construction, one entry per input where per input."""

    received: tuple[int, ...]
    dropped: tuple[int, ...]
    out_of_order: tuple[int, ...]
    duplicate_stamps: tuple[int, ...]
    bound_violations: tuple[int, ...]
    sets: int
    newest: tuple[int | None, ...] = ()  # stamp of the newest message accepted, per input


class ApproximateTimePolicy:
    """Emits matched sets (one ``(stamp_ns, message)`` per input) through ``on_set``."""

    def __init__(self, inputs: int, on_set: SetCallback, *, queue_size: int = 10,
                 max_interval_ns: int | None = None, age_penalty: float = 0.1,
                 lower_bounds_ns: Sequence[int] | None = None,
                 on_drop: DropCallback | None = None) -> None:
        if inputs < 2 or queue_size < 1 or age_penalty < 0:
            raise ValueError('need inputs >= 2, queue_size >= 1 and age_penalty >= 0')
        bounds = tuple(lower_bounds_ns or (0,) * inputs)
        if len(bounds) != inputs or min(bounds) < 0:
            raise ValueError('lower_bounds_ns needs one non-negative bound per input')
        self._n = inputs
        self._on_set = on_set
        self._on_drop = on_drop
        self._queue_size = queue_size
        self._max_interval = max_interval_ns
        self._factor = 1.0 + age_penalty
        self._bounds = bounds
        self._lock = threading.Lock()
        self._deques: list[deque[Entry]] = [deque() for _ in range(inputs)]
        self._past: list[list[Entry]] = [[] for _ in range(inputs)]
        self._has_dropped = [False] * inputs
        self._non_empty = 0
        self._candidate: list[Entry] = []
        self._candidate_start = self._candidate_end = 0
        self._pivot = NO_PIVOT
        self._pivot_time = 0
        self._last_stamp: list[int | None] = [None] * inputs
        self._received = [0] * inputs
        self._dropped = [0] * inputs
        self._out_of_order = [0] * inputs
        self._duplicates = [0] * inputs
        self._violations = [0] * inputs
        self._sets = 0
        self._emitted: list[tuple[Entry, ...]] = []
        self._discarded: list[tuple[int, Entry]] = []

    def add(self, index: int, stamp_ns: int, message: Any) -> None:
        """Queue ``message`` on input ``index``; emit and drop what that decides."""
        with self._lock:
            self._add(index, (stamp_ns, message))
            emitted, self._emitted = self._emitted, []
            discarded, self._discarded = self._discarded, []
        for matched in emitted:
            self._on_set(matched)
        if self._on_drop is not None:
            for dropped_index, (stamp, dropped) in discarded:
                self._on_drop(dropped_index, stamp, dropped)

    def stats(self) -> ApproximateStats:
        """A snapshot of the counters."""
        with self._lock:
            return ApproximateStats(tuple(self._received), tuple(self._dropped),
                                    tuple(self._out_of_order), tuple(self._duplicates),
                                    tuple(self._violations), self._sets, tuple(self._last_stamp))

    def _add(self, i: int, entry: Entry) -> None:
        self._received[i] += 1
        last = self._last_stamp[i]
        if last is not None:
            gap = entry[0] - last
            if gap < 0:
                self._out_of_order[i] += 1
                self._drop(i, entry)
                return
            self._duplicates[i] += gap == 0
            self._violations[i] += gap < self._bounds[i]
        self._last_stamp[i] = entry[0]
        queue = self._deques[i]
        queue.append(entry)
        self._non_empty += len(queue) == 1
        if self._non_empty == self._n:
            self._process()
        elif self._pivot != NO_PIVOT:  # the new message may complete the proof of optimality
            self._virtual_search()
            self._process()
        if len(queue) + len(self._past[i]) > self._queue_size:
            self._recover_all()
            self._drop(i, queue.popleft())
            if not queue:
                self._non_empty -= 1
            self._has_dropped[i] = True
            if self._pivot != NO_PIVOT:
                self._candidate = []
                self._pivot = NO_PIVOT
                self._process()

    def _drop(self, i: int, entry: Entry) -> None:
        self._dropped[i] += 1
        self._discarded.append((i, entry))

    def _recover_all(self) -> None:
        """Put every message set aside during the candidate search back in its queue."""
        for queue, past in zip(self._deques, self._past):
            queue.extendleft(reversed(past))
            past.clear()
        self._non_empty = sum(1 for queue in self._deques if queue)

    def _recover(self, moves: list[int]) -> None:
        """Undo the last ``moves[i]`` moves to the past of each input."""
        for queue, past, count in zip(self._deques, self._past, moves):
            for _ in range(count):
                queue.appendleft(past.pop())
        self._non_empty = sum(1 for queue in self._deques if queue)

    def _publish_candidate(self) -> None:
        self._emitted.append(tuple(self._candidate))
        self._sets += 1
        self._candidate = []
        self._pivot = NO_PIVOT
        self._recover_all()
        for queue in self._deques:  # the candidate is at the front of every queue
            queue.popleft()
        self._non_empty = sum(1 for queue in self._deques if queue)

    def _make_candidate(self) -> None:
        self._candidate = [queue[0] for queue in self._deques]
        for i, past in enumerate(self._past):
            for entry in past:
                self._drop(i, entry)
            past.clear()

    def _delete_front(self, i: int) -> None:
        queue = self._deques[i]
        self._drop(i, queue.popleft())
        if not queue:
            self._non_empty -= 1

    def _move_front_to_past(self, i: int) -> None:
        queue = self._deques[i]
        self._past[i].append(queue.popleft())
        if not queue:
            self._non_empty -= 1

    def _virtual_time(self, i: int) -> int:
        queue = self._deques[i]
        if queue:
            return queue[0][0]
        return max(self._past[i][-1][0] + self._bounds[i], self._pivot_time)

    def _boundaries(self, times: list[int]) -> tuple[int, int, int, int]:
        """(start index, start time, end index, end time): first earliest and last latest head."""
        start = end = 0
        for i in range(1, self._n):
            if times[i] < times[start]:
                start = i
            if times[i] >= times[end]:
                end = i
        return start, times[start], end, times[end]

    def _cannot_improve(self, end_time: int, reference: int) -> bool:
        """No candidate ending at ``end_time`` beats the current one for this ``reference``."""
        return (end_time - self._candidate_end) * self._factor >= reference - self._candidate_start

    def _process(self) -> None:
        while self._non_empty == self._n:
            start, start_time, end, end_time = self._boundaries(
                [queue[0][0] for queue in self._deques])
            for i in range(self._n):
                if i != end:
                    self._has_dropped[i] = False
            if self._pivot == NO_PIVOT:
                too_wide = self._max_interval is not None and \
                    end_time - start_time > self._max_interval
                if too_wide or self._has_dropped[end]:
                    self._delete_front(start)
                    continue
                self._make_candidate()
                self._candidate_start, self._candidate_end = start_time, end_time
                self._pivot, self._pivot_time = end, end_time
            elif not self._cannot_improve(end_time, start_time):
                self._make_candidate()
                self._candidate_start, self._candidate_end = start_time, end_time
            self._move_front_to_past(start)
            if start == self._pivot or self._cannot_improve(end_time, self._pivot_time):
                self._publish_candidate()
            elif self._non_empty < self._n:
                self._virtual_search()

    def _virtual_search(self) -> None:
        """Try to prove the candidate optimal from the inputs' lower bounds on their period."""
        moves = [0] * self._n
        while True:
            start, start_time, _, end_time = self._boundaries(
                [self._virtual_time(i) for i in range(self._n)])
            if self._cannot_improve(end_time, self._pivot_time):
                self._publish_candidate()
                return
            if not self._cannot_improve(end_time, start_time):
                self._recover(moves)
                return
            self._move_front_to_past(start)
            moves[start] += 1
