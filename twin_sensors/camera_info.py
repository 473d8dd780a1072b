"""Camera calibration in the standard camera_info YAML format (camera_calibration_parsers)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from twin_core.config import ConfigError

DISTORTION_MODELS = ('plumb_bob', 'rational_polynomial', 'equidistant')


@dataclass(frozen=True)
class CameraCalibration:
    """Intrinsics of one camera: K (3×3), D, R (3×3), P (3×4), all row-major."""

    camera_name: str
    width: int
    height: int
    k: tuple[float, ...]
    d: tuple[float, ...]
    r: tuple[float, ...]
    p: tuple[float, ...]
    distortion_model: str = 'plumb_bob'

    @classmethod
    def pinhole(cls, name: str, width: int, height: int, focal: float, cx: float, cy: float
                ) -> CameraCalibration:
        """An ideal camera: square pixels, no distortion, P = [K | 0]."""
        return cls(name, width, height, k=(focal, 0.0, cx, 0.0, focal, cy, 0.0, 0.0, 1.0),
                   d=(0.0,) * 5, r=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
                   p=(focal, 0.0, cx, 0.0, 0.0, focal, cy, 0.0, 0.0, 0.0, 1.0, 0.0))

    def to_yaml(self) -> str:
        def matrix(rows: int, cols: int, data: tuple[float, ...]) -> dict[str, Any]:
            return {'rows': rows, 'cols': cols, 'data': [float(x) for x in data]}
        return yaml.safe_dump({
            'image_width': self.width, 'image_height': self.height, 'camera_name': self.camera_name,
            'camera_matrix': matrix(3, 3, self.k), 'distortion_model': self.distortion_model,
            'distortion_coefficients': matrix(1, len(self.d), self.d),
            'rectification_matrix': matrix(3, 3, self.r), 'projection_matrix': matrix(3, 4, self.p),
        }, sort_keys=False, default_flow_style=None)


def load_camera_info(path: str | Path) -> CameraCalibration:
    """Read a camera_info YAML file; ConfigError names the offending key."""
    try:
        root = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f'{path}: {error}') from None
    if not isinstance(root, dict):
        raise ConfigError(f'{path}: expected a mapping')

    def size(key: str) -> int:
        value = root.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f'{path}: {key}: expected a positive integer, got {value!r}')
        return value

    def matrix(key: str, rows: int, cols: int | None = None) -> tuple[float, ...]:
        item = root.get(key)
        data = item.get('data') if isinstance(item, dict) else None
        if not isinstance(data, list) or (cols is not None and len(data) != rows * cols):
            raise ConfigError(f'{path}: {key}.data: expected {rows}×{cols or "n"} numbers')
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in data):
            raise ConfigError(f'{path}: {key}.data: numbers must be finite')
        return tuple(float(x) for x in data)

    model = root.get('distortion_model', 'plumb_bob')
    if model not in DISTORTION_MODELS:
        raise ConfigError(f'{path}: distortion_model: one of {", ".join(DISTORTION_MODELS)}, got {model!r}')
    return CameraCalibration(camera_name=str(root.get('camera_name', '')), width=size('image_width'),
                             height=size('image_height'), k=matrix('camera_matrix', 3, 3),
                             d=matrix('distortion_coefficients', 1), r=matrix('rectification_matrix', 3, 3),
                             p=matrix('projection_matrix', 3, 4), distortion_model=model)
