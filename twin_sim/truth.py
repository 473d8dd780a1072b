"""Ground-truth recording: one CSV row per truth sample and a JSON list of fault intervals.

Rows are line-buffered and the fault file is replaced atomically whenever a fault starts, so
a crash loses at most the row being written.
"""
from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from twin_sim.scenario import Fault
from twin_sim.workcell import Truth

PER_JOINT_FIELDS = (("q", "q"), ("qd", "qd"), ("tau", "tau"), ("temp", "motor_temp"),
                    ("coulomb", "coulomb_friction"), ("viscous", "viscous_friction"), ("wear", "wear"),
                    ("health", "health"), ("vibration", "vibration_rms"))
SCALAR_FIELDS = ("task_id", "task_phase", "task_progress", "speed_override", "stopped", "mode")


def truth_columns(joint_names: Sequence[str]) -> list[str]:
    return (["time"] + [f"{prefix}_{joint}" for prefix, _ in PER_JOINT_FIELDS for joint in joint_names]
            + list(SCALAR_FIELDS) + ["faults"])


def fault_interval(fault: Fault) -> dict[str, object]:
    return {"type": fault.type, "target": fault.target, "start": fault.start,
            "end": fault.end if math.isfinite(fault.end) else None, "parameters": dict(fault.parameters)}


class TruthRecorder:
    """Writes ``truth.csv`` and ``faults.json`` into ``directory``."""

    def __init__(self, directory: str | Path, joint_names: Sequence[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.directory / "truth.csv"
        self.faults_path = self.directory / "faults.json"
        self._stream = open(self.csv_path, "w", newline="", encoding="utf-8", buffering=1)
        self._writer = csv.writer(self._stream)
        self._writer.writerow(truth_columns(joint_names))
        self._recorded_faults: list[Fault] = []
        self._write_faults()

    def record(self, truth: Truth, started_faults: Iterable[Fault] = ()) -> None:
        """Append one truth row; ``started_faults`` are all faults that have started so far."""
        row: list[object] = [f"{truth.time:.6f}"]
        for _, attribute in PER_JOINT_FIELDS:
            row.extend(f"{value:.6g}" for value in getattr(truth, attribute))
        row.extend([truth.task_id, truth.task_phase, f"{truth.task_progress:.4f}", truth.speed_override,
                    int(truth.stopped), truth.mode, ";".join(truth.active_faults)])
        self._writer.writerow(row)
        started = list(started_faults)
        if len(started) != len(self._recorded_faults):
            self._recorded_faults = started
            self._write_faults()

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> TruthRecorder:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _write_faults(self) -> None:
        temporary = self.faults_path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps([fault_interval(fault) for fault in self._recorded_faults], indent=2))
        os.replace(temporary, self.faults_path)
