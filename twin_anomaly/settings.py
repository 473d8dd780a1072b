"""How an anomaly model is fitted and how its scores become alarms (no heavy imports, so the
command line's help comes at once).
"""
from __future__ import annotations

from dataclasses import dataclass

METHODS = ('robust', 'iforest', 'autoencoder', 'convolutional')
# The isolation forest is fitted only when asked for: its score is bounded and saturates just above
# the normal data's own extreme quantile, so a threshold calibrated on held-out normal data leaves
# faults no room above it while a fresh normal run crosses it (bench/bench_anomaly.py measures it).
DEFAULT_METHODS = ('robust', 'autoencoder', 'convolutional')


@dataclass(frozen=True)
class DetectorSettings:
    """How a model is fitted and how its scores become alarms."""

    methods: tuple[str, ...] = DEFAULT_METHODS
    window: int = 10  # frames of the local linear prediction
    gap: int = 5  # frames between the prediction's window and the predicted frame
    target_far: float = 1e-4  # fraction of held-out normal frames above each raw threshold
    # fraction of the normal data kept out of fitting (the end of each of a few blocks in time of
    # every contiguous stretch) and used only to calibrate the thresholds; 0 calibrates on the fitted rows
    holdout: float = 0.25
    gap_steps: float = 10.0  # a time step above this many median steps starts a new stretch
    margin: float = 1.5  # threshold = margin × calibrated quantile
    # frames: least flat/missing threshold; 0.25 s at 100 frames/s rides out the late samples a
    # loaded live data path holds or drops, and still finds a dropout or stuck sensor within 0.3 s
    min_run: int = 25
    debounce: int = 3  # frames above threshold before an alarm rises
    # frames below clear_ratio × threshold before it clears: 0.25 s at 100 frames/s keeps one alarm
    # through a burst and ends it with its cause, not seconds into the normal time after it
    clear: int = 25
    clear_ratio: float = 0.8  # above 1 / margin: normal peaks let an alarm clear
    iforest_trees: int = 50
    iforest_samples: int = 256
    autoencoder_epochs: int = 15
    conv_window: int = 32  # frames of the convolutional autoencoder's window (a multiple of 4)
    conv_fit_windows: int = 20000  # it is trained on at most this many windows
    max_fit_rows: int = 60000  # multivariate models are trained on at most this many rows
    seed: int = 0
