"""Joint data for the predictor from the simulator's truth.csv (or any CSV with the same columns)."""
from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class JointData:
    """Uniformly sampled joint signals; arrays are (N, n_joints) except ``time`` (N,)."""

    joint_names: tuple[str, ...]
    time: np.ndarray  # s
    q: np.ndarray  # rad
    qd: np.ndarray  # rad/s
    tau: np.ndarray  # N·m
    temperature: np.ndarray  # °C
    sha256: str

    @property
    def dt(self) -> float:
        return float(np.median(np.diff(self.time)))

    def acceleration(self) -> np.ndarray:
        """Forward difference of qd (rad/s²), one row shorter: the acceleration over each interval."""
        return np.diff(self.qd, axis=0) / np.diff(self.time)[:, None]

    def slice(self, start: int, stop: int) -> JointData:
        part = slice(start, stop)
        return JointData(self.joint_names, self.time[part], self.q[part], self.qd[part], self.tau[part],
                         self.temperature[part], self.sha256)


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for block in iter(lambda: stream.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def load_truth(path: str | Path) -> JointData:
    """Read ``time`` and the ``q_/qd_/tau_/temp_<joint>`` columns of a truth CSV."""
    with open(path, newline='', encoding='utf-8') as stream:
        header = next(csv.reader(stream))
    joints = tuple(column[2:] for column in header if column.startswith('q_'))
    if not joints:
        raise ValueError(f'{path}: no q_<joint> columns')
    groups = [[header.index(f'{prefix}_{joint}') for joint in joints] for prefix in ('q', 'qd', 'tau', 'temp')]
    columns = [header.index('time')] + [index for group in groups for index in group]
    table = np.loadtxt(path, delimiter=',', skiprows=1, usecols=columns, ndmin=2)
    n = len(joints)
    q, qd, tau, temperature = (table[:, 1 + i * n:1 + (i + 1) * n] for i in range(4))
    return JointData(joints, table[:, 0], q, qd, tau, temperature, sha256_file(path))
