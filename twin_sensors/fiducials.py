"""Fiducial poses: ArUco markers found in an image, each one's pose in the camera optical frame.

The corners are refined by the AprilTag method (on the simulated cell's JPEG frames more accurate
than sub-pixel refinement, most of all on the small tool marker: docs/camera.md). The pose comes
from the four corners by ``cv2.solvePnP`` (IPPE for squares) with the camera's calibration (K and
D of its camera_info). A square seen at a grazing angle has two poses that fit its corners almost
equally (the planar ambiguity): ``solutions`` gives both, best first. The marker frame: origin at
the square's centre, z out of the marker towards the camera that sees it, x along its top edge.
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


def square_corners(side: float) -> np.ndarray:
    """The corners (4×3, m) of a marker's black square in the marker frame, in ArUco's order
    (top left, top right, bottom right, bottom left).
    """
    half = 0.5 * side
    return np.array([[-half, half, 0.0], [half, half, 0.0], [half, -half, 0.0], [-half, -half, 0.0]])


class FiducialDetector:
    """Finds the markers of ``sizes`` (ArUco id → black square side in m) and estimates their poses."""

    def __init__(self, calibration: CameraCalibration, sizes: Mapping[int, float],
                 dictionary: str = 'DICT_4X4_50') -> None:
        self.sizes = dict(sizes)
        self.k = np.array(calibration.k).reshape(3, 3)
        self.d = np.array(calibration.d)
        parameters = cv2.aruco.DetectorParameters()
        parameters.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_APRILTAG
        self._detector = cv2.aruco.ArucoDetector(
            cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, dictionary)), parameters)

    def corners(self, image: np.ndarray) -> dict[int, np.ndarray]:
        """The image corners (4×2 px, ArUco order) of each known marker visible in ``image`` (BGR or grey)."""
        corners, ids, _ = self._detector.detectMarkers(image)
        if ids is None:
            return {}
        return {int(marker_id): points.reshape(4, 2) for marker_id, points in zip(ids.ravel(), corners)
                if int(marker_id) in self.sizes}

    def detect(self, image: np.ndarray) -> list[MarkerPose]:
        """The best-fitting pose of each known marker visible in ``image``."""
        return [self.solutions(marker_id, points)[0] for marker_id, points in self.corners(image).items()]

    def solutions(self, marker_id: int, corners: np.ndarray) -> list[MarkerPose]:
        """Both poses of the planar ambiguity that fit the marker's ``corners``, best fit first."""
        model = square_corners(self.sizes[marker_id])
        _, rvecs, tvecs, _ = cv2.solvePnPGeneric(model, corners, self.k, self.d, flags=cv2.SOLVEPNP_IPPE_SQUARE)
        poses = []
        for rvec, tvec in zip(rvecs, tvecs):
            projected, _ = cv2.projectPoints(model, rvec, tvec, self.k, self.d)
            error = float(np.sqrt(np.mean(np.sum((projected.reshape(4, 2) - corners) ** 2, axis=1))))
            poses.append(MarkerPose(marker_id, tvec.ravel(), cv2.Rodrigues(rvec)[0], error))
        return sorted(poses, key=lambda pose: pose.reprojection_px)
