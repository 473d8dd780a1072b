"""Progress of the long offline jobs (simulation, fitting, training): a tqdm bar on stderr with
rate and ETA, shown only on a terminal, so that CI logs and captured output stay free of it.
"""
from __future__ import annotations

import math
import sys
from typing import TextIO

from tqdm import tqdm

SIM_SECONDS = 'sim-s'  # unit of a simulation's bar: its rate is the speed-up over real time
BAR_FORMAT = '{l_bar}{bar}| {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}, {rate_fmt}{postfix}]'
ROUNDING = 1e-6  # a clock this close below a whole unit has reached it


def whole_units(amount: float) -> int:
    """``amount`` in whole units, counting one reached to within rounding (2.9999999 is 3)."""
    return math.floor(amount + ROUNDING)


def progress_bar(total: float, description: str, unit: str, stream: TextIO | None = None) -> tqdm:
    """A bar of ``total`` ``unit`` (whole units) on ``stream`` (default: stderr), disabled unless
    it is a terminal.
    """
    stream = sys.stderr if stream is None else stream
    return tqdm(total=whole_units(total), desc=description, unit=unit, file=stream, disable=not stream.isatty(),
                bar_format=BAR_FORMAT, dynamic_ncols=True, mininterval=0.5)


def advance_to(bar: tqdm, done: float) -> None:
    """Move ``bar`` to the whole units of ``done`` (simulated seconds, say), at most its total."""
    reached = min(whole_units(done), bar.total)
    if reached > bar.n:
        bar.update(reached - bar.n)
