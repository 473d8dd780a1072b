"""Progress bars of the long jobs: drawn on a terminal, silent into a pipe or a file."""
from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import numpy as np
import pytest
import torch

from harness import REPO
from twin_anomaly.anomaly import AnomalyModel, DetectorSettings
from twin_core.channels import Series
from twin_core.progress import advance_to, progress_bar
from twin_predictor.dynamics import PhysicsInformedArm
from twin_predictor.training import Samples, fit


class Terminal:
    """A pseudo-terminal 100 columns wide, read back from its controller side."""

    def __init__(self) -> None:
        self.controller, self.device = pty.openpty()
        fcntl.ioctl(self.device, termios.TIOCSWINSZ, struct.pack('HHHH', 24, 100, 0, 0))
        self.device_open = True

    def writer(self) -> TextIO:
        """A text stream on the terminal (a file of its own)."""
        return open(os.dup(self.device), 'w')

    def close_device(self) -> None:
        if self.device_open:
            os.close(self.device)
            self.device_open = False

    def output(self) -> str:
        """What was written on the terminal, once every other writer has closed it."""
        self.close_device()
        chunks = []
        while True:
            try:
                chunk = os.read(self.controller, 4096)
            except OSError:  # EIO: no writer left
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b''.join(chunks).decode()


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    opened = Terminal()
    yield opened
    opened.close_device()
    os.close(opened.controller)


def test_the_bar_is_drawn_on_a_terminal(terminal: Terminal) -> None:
    with terminal.writer() as stream, progress_bar(10, 'simulating', 'sim-s', stream) as bar:
        assert not bar.disable
        bar.set_postfix_str('loss=0.5')
        advance_to(bar, 3.2)
    shown = terminal.output()
    assert 'simulating:' in shown and '3/10 sim-s' in shown and 'loss=0.5' in shown, shown


@pytest.mark.parametrize('kind', ['pipe', 'file'])
def test_the_bar_is_silent_off_a_terminal(tmp_path: Path, kind: str) -> None:
    if kind == 'pipe':
        reader, writer = os.pipe()
        stream = open(writer, 'w')
    else:
        stream = open(tmp_path / 'log.txt', 'w')
    with stream, progress_bar(10, 'simulating', 'sim-s', stream) as bar:
        assert bar.disable
        advance_to(bar, 10)
    if kind == 'pipe':
        shown = os.read(reader, 4096)
        os.close(reader)
    else:
        shown = (tmp_path / 'log.txt').read_bytes()
    assert shown == b''


def test_advance_to_counts_whole_units_up_to_the_total(terminal: Terminal) -> None:
    short = 3.0 - 1e-12  # a simulated clock's last tick, a rounding error short of 3 s
    with terminal.writer() as stream, progress_bar(short, 'simulating', 'sim-s', stream) as bar:
        assert bar.total == 3
        advance_to(bar, 0.99)
        assert bar.n == 0
        advance_to(bar, 1.5)
        assert bar.n == 1
        advance_to(bar, short)
        assert bar.n == 3
        advance_to(bar, 7.0)
        assert bar.n == 3


def test_training_cut_by_its_time_limit_ends_its_bar_at_the_steps_done(terminal: Terminal) -> None:
    torch.manual_seed(0)
    q, qd, tau = torch.randn(3, 500, 1)
    samples = Samples(q, qd, tau, 2.0 * tau - 8.0 * torch.sin(q), torch.zeros(500, 1))
    model = PhysicsInformedArm(1, 1, hidden=(16,), **samples.scales())
    with terminal.writer() as stream, progress_bar(1_000_000, 'training', 'step', stream) as bar:
        history = fit(model, samples, 1_000_000, batch=64, time_limit=0.3, progress=bar)
        assert 0 < len(history) < 1_000_000
        assert bar.n == bar.total == len(history)
        assert bar.postfix == f'loss={history[-1]:.3g}'


def test_the_autoencoder_moves_its_bar_an_epoch_at_a_time(terminal: Terminal) -> None:
    rng = np.random.default_rng(0)
    normal = Series(np.arange(400) / 100.0, ('a', 'b', 'c'), rng.normal(size=(400, 3)))
    with terminal.writer() as stream, progress_bar(99, 'autoencoder', 'epoch', stream) as bar:
        AnomalyModel.fit(normal, DetectorSettings(methods=('autoencoder',), autoencoder_epochs=3), progress=bar)
        assert bar.n == bar.total == 3
        assert bar.postfix.startswith('loss=')


def sim_frames(out: Path, stderr: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, '-m', 'twin_maintenance.sim_frames', '--duration', '3', '--out', str(out)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=stderr)


def test_a_job_run_with_pipes_prints_no_bar(tmp_path: Path) -> None:
    job = sim_frames(tmp_path, subprocess.PIPE)
    out, err = job.communicate(timeout=60)
    assert job.returncode == 0, err.decode()
    assert b'\r' not in err and b'sim-s' not in err, err
    assert b'300 frames' in out


def test_the_same_job_on_a_terminal_shows_simulated_seconds(tmp_path: Path, terminal: Terminal) -> None:
    job = sim_frames(tmp_path, terminal.device)
    shown = terminal.output()
    job.communicate(timeout=60)
    assert job.returncode == 0, shown
    assert '3/3 sim-s' in shown and 'sim-s/s' in shown, shown
