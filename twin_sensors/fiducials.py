"""Fiducial poses: ArUco markers found in an image, each one's pose in the camera optical frame.

The pose comes from the four corners by ``cv2.solvePnP`` (IPPE for squares) with the camera's
calibration (K and D of its camera_info). The marker frame: origin at the square's centre, z out
of the marker towards the camera that sees it, x along its top edge.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from twin_sensors.camera_info import CameraCalibration


@dataclass(frozen=True)
class MarkerPose:
    marker_id: int
    position: np.ndarray  # m, in the camera optical frame (z forward, x right, y down)
    rotation: np.ndarray  # 3×3, the marker's axes in the camera optical frame
    reprojection_px: float  # RMS distance of the reprojected corners from the detected ones


class FiducialDetector:
    """Finds the markers of ``sizes`` (ArUco id → black square side in m) and estimates their poses."""

    def __init__(self, calibration: CameraCalibration, sizes: Mapping[int, float],
                 dictionary: str = 'DICT_4X4_50') -> None:
        self.sizes = dict(sizes)
        self._k = np.array(calibration.k).reshape(3, 3)
        self._d = np.array(calibration.d)
        parameters = cv2.aruco.DetectorParameters()
        parameters.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
        self._detector = cv2.aruco.ArucoDetector(
            cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, dictionary)), parameters)

    def detect(self, image: np.ndarray) -> list[MarkerPose]:
        """The poses of the known markers visible in ``image`` (BGR or grey)."""
        corners, ids, _ = self._detector.detectMarkers(image)
        if ids is None:
            return []
        return [self._pose(int(marker_id), points.reshape(4, 2))
                for marker_id, points in zip(ids.ravel(), corners) if int(marker_id) in self.sizes]

    def _pose(self, marker_id: int, corners: np.ndarray) -> MarkerPose:
        half = 0.5 * self.sizes[marker_id]
        model = np.array([[-half, half, 0.0], [half, half, 0.0], [half, -half, 0.0], [-half, -half, 0.0]])
        _, rvec, tvec = cv2.solvePnP(model, corners, self._k, self._d, flags=cv2.SOLVEPNP_IPPE_SQUARE)
        projected, _ = cv2.projectPoints(model, rvec, tvec, self._k, self._d)
        error = float(np.sqrt(np.mean(np.sum((projected.reshape(4, 2) - corners) ** 2, axis=1))))
        return MarkerPose(marker_id, tvec.ravel(), cv2.Rodrigues(rvec)[0], error)
