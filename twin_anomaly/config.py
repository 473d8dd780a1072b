"""Parameters of the anomaly detector node."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from twin_core.config import describe
from twin_core.paths import config_dir


@dataclass(frozen=True)
class TrackingAlarmConfig:
    """Per-joint alarms on the twin state's tracking error (measured − desired position)."""

    enabled: bool = field(default=True, metadata=describe(
        'Subscribe to twin/state and raise a tracking alarm per joint off its path.'))
    bound: float = field(default=0.01, metadata=describe(
        'An alarm rises when |tracking error| exceeds this (rad) for `duration` '
        '(the nominal cycle tracks within 0.002 rad; actuation stops the cell at 0.03).', min=1e-6, max=10.0))
    duration: float = field(default=0.05, metadata=describe(
        'Time (s) the error must stay beyond `bound` before the alarm rises.', min=0.0, max=60.0))
    clear_ratio: float = field(default=0.5, metadata=describe(
        'Hysteresis: the alarm clears once |tracking error| stays below clear_ratio × bound ...',
        min=0.0, max=1.0))
    clear_duration: float = field(default=0.5, metadata=describe(
        '... for this many s.', min=0.0, max=3600.0))


@dataclass(frozen=True)
class AnomalyConfig:
    """Parameters of the ``anomaly_detector`` node."""

    model: str = field(default='models/anomaly', metadata=describe(
        'Model directory written by `twin_anomaly fit` (relative paths: in config/).'))
    batch_frames: int = field(default=4, metadata=describe(
        'Frames scored together (micro-batch); the decision waits at most this many frames.',
        min=1, max=1000))
    diagnostics_rate_hz: float = field(default=1.0, metadata=describe(
        'Rate of /diagnostics.', min=0.1, max=10.0))
    tracking: TrackingAlarmConfig = TrackingAlarmConfig()

    def required_paths(self) -> dict[str, Path]:
        return {'model': config_dir() / self.model / 'model.json'}
