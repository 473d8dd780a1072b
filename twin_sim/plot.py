"""Degradation plot: temperature, vibration, friction and health per joint, faults shaded."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

PANELS = (("temp", "motor temperature (°C)"), ("vibration", "vibration RMS, 1-min mean (N·m)"),
          ("coulomb", "Coulomb friction (N·m)"), ("health", "health (1 = new)"))
FAULT_COLOURS = {"collision": "tab:red", "encoder_stuck": "tab:purple", "imu_bias_jump": "tab:olive",
                 "sensor_dropout": "tab:gray", "overheating": "tab:orange"}
MINIMUM_SHADE_FRACTION = 0.004  # short faults are widened to this fraction of the time axis
SMOOTHED_PANELS = {"vibration": 60.0}  # s, moving-average window (vibration follows the task cycle)


def plot_degradation(truth_csv: str | Path, faults_json: str | Path, png_path: str | Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(truth_csv, encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    columns = {key: [row[key] for row in rows] for key in rows[0]}
    time = np.array(columns["time"], dtype=float)
    hours = time[-1] > 7200.0
    scale, unit = (3600.0, "h") if hours else (1.0, "s")
    joints = [key[len("temp_"):] for key in columns if key.startswith("temp_")]
    faults = json.loads(Path(faults_json).read_text())

    figure, axes = plt.subplots(len(PANELS), 1, sharex=True, figsize=(11, 10))
    for axis, (prefix, label) in zip(axes, PANELS):
        for joint in joints:
            values = np.array(columns[f"{prefix}_{joint}"], dtype=float)
            if prefix in SMOOTHED_PANELS:
                values = _moving_average(values, time, SMOOTHED_PANELS[prefix])
            axis.plot(time / scale, values, label=joint, lw=1.0)
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        _shade_faults(axis, faults, time[-1], scale)
    axes[0].legend(loc="upper left", ncol=len(joints), fontsize=8)
    for fault in faults:
        start = fault["start"] / scale
        axes[0].annotate(f"{fault['type']}\n{fault['target']}", (start, 1.0), xycoords=("data", "axes fraction"),
                         fontsize=7, rotation=90, va="top", ha="right",
                         color=FAULT_COLOURS.get(fault["type"], "black"))
    axes[-1].set_xlabel(f"simulated time ({unit})")
    figure.suptitle("Workcell degradation: wear raises friction and vibration; faults shaded")
    figure.tight_layout()
    figure.savefig(png_path, dpi=110)
    plt.close(figure)


def _shade_faults(axis, faults: list[dict], duration: float, scale: float) -> None:
    minimum_width = MINIMUM_SHADE_FRACTION * duration
    for fault in faults:
        start = fault["start"]
        end = fault["end"] if fault["end"] is not None else duration
        end = max(end, start + minimum_width)
        axis.axvspan(start / scale, end / scale, color=FAULT_COLOURS.get(fault["type"], "black"), alpha=0.2)


def _moving_average(values: np.ndarray, time: np.ndarray, window: float) -> np.ndarray:
    """Centred moving average; the window shrinks at the ends instead of padding with zeros."""
    step = float(np.median(np.diff(time))) if len(time) > 1 else window
    kernel = np.ones(max(1, min(int(round(window / step)), len(values))))
    return np.convolve(values, kernel, mode="same") / np.convolve(np.ones_like(values), kernel, mode="same")
