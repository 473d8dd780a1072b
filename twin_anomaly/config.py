"""Parameters of the anomaly detector node."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from twin_core.config import describe
from twin_core.paths import config_dir


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

    def required_paths(self) -> dict[str, Path]:
        return {'model': config_dir() / self.model / 'model.json'}
