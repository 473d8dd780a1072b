"""Obstacles from a planar laser scan: beams clustered into segments, expressed in base_link."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ScanGeometry:
    """Beam angles and valid range interval of the scanner (REP 117: ±inf are not hits)."""

    angle_min: float
    angle_max: float
    range_min: float
    range_max: float

    def angles(self, beams: int) -> np.ndarray:
        return np.linspace(self.angle_min, self.angle_max, beams)


@dataclass(frozen=True)
class Obstacle:
    """A cluster of consecutive scan hits, in base_link."""

    points: np.ndarray  # k × 3
    centroid: np.ndarray  # 3
    radius: float  # m, largest distance of a point from the centroid
    distance: float  # m, nearest point to the scanner


def extract_obstacles(ranges: np.ndarray, geometry: ScanGeometry, laser_in_base: np.ndarray,
                      gap: float = 0.1, min_points: int = 3) -> tuple[Obstacle, ...]:
    """Split the hits into clusters where neighbouring points are closer than ``gap`` (m).

    A full-circle scan joins its first and last cluster when they touch. ``laser_in_base`` is the
    laser frame's 4×4 transform in base_link.
    """
    ranges = np.asarray(ranges, float)
    angles = geometry.angles(len(ranges))
    valid = np.isfinite(ranges) & (ranges >= geometry.range_min) & (ranges <= geometry.range_max)
    if not valid.any():
        return ()
    r, a = ranges[valid], angles[valid]
    local = np.stack((r * np.cos(a), r * np.sin(a), np.zeros_like(r)), axis=1)
    breaks = np.flatnonzero(np.linalg.norm(np.diff(local, axis=0), axis=1) > gap) + 1
    clusters = np.split(np.arange(len(r)), breaks)
    span = geometry.angle_max - geometry.angle_min
    full_circle = span + span / max(len(ranges) - 1, 1) >= 2.0 * np.pi - 1e-6
    if len(clusters) > 1 and full_circle and np.linalg.norm(local[0] - local[-1]) <= gap:
        clusters = [np.concatenate((clusters[-1], clusters[0]))] + clusters[1:-1]
    points = local @ laser_in_base[:3, :3].T + laser_in_base[:3, 3]
    obstacles = []
    for members in clusters:
        if len(members) < min_points:
            continue
        cluster = points[members]
        centroid = cluster.mean(axis=0)
        obstacles.append(Obstacle(cluster, centroid,
                                  float(np.linalg.norm(cluster - centroid, axis=1).max()),
                                  float(r[members].min())))
    return tuple(obstacles)
