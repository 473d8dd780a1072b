"""The cell camera as an independent check of the twin: the tool plate seen vs where the twin's
forward kinematics puts it.

Two ArUco plates: one fixed beside the base (its pose in base_link known from the cell's layout)
and one on the tool (its pose in a link of the arm). The fixed plate gives the camera's pose in
base_link (extrinsics), so the camera's own placement need not be known. For each frame:

* **image space** (no pose estimate of the tool plate at all): the tool plate's corners at the
  twin's joint positions are projected with the calibrated intrinsics and the extrinsics; the RMS
  distance to the detected corners is the discrepancy in px, and in mm at the plate's distance
  (px × depth / focal length). This is the value the alarm watches. A frame's stamp and the
  twin's may disagree by tens of ms (two devices' clocks, each mapped by its driver): the caller
  may give the twin's positions at several instants around the stamp, and the one that fits best
  is compared. A stuck or offset joint fits at no instant.
* **pose**: the tool plate's pose from its corners alone (IPPE): the better fit of the two poses
  of the planar ambiguity, or, where both fit about as well, the one nearer in orientation to the
  previous estimate (continuity). Never chosen with the twin's pose, so the check stays
  independent of it. Its distance to the twin's plate centre is the discrepancy in mm.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from transforms3d.euler import euler2mat

from twin_core.config import describe
from twin_core.kinematics import BASE_FRAME, ArmKinematics
from twin_sensors.camera_info import CameraCalibration
from twin_sensors.fiducials import FiducialDetector, MarkerPose, square_corners


@dataclass(frozen=True)
class PlateConfig:
    """An ArUco plate: its marker and where it is mounted."""

    marker_id: int = field(default=0, metadata=describe('ArUco id of the plate\'s marker.', min=0, max=49))
    side: float = field(default=0.2, metadata=describe('Side of the marker\'s black square (m).', min=0.001, max=5.0))
    frame: str = field(default=BASE_FRAME, metadata=describe(
        'Frame it is mounted in: base_link for a fixed plate, a link of the arm for one that moves.'))
    xyz: tuple[float, ...] = field(default=(0.0, 0.0, 0.0), metadata=describe(
        'Centre of the square in that frame (m).'))
    rpy: tuple[float, ...] = field(default=(0.0, 0.0, 0.0), metadata=describe(
        'Orientation of the marker frame (x along the top edge, z out of the face) in that frame: '
        'roll, pitch, yaw (rad).'))

    def __post_init__(self) -> None:
        if len(self.xyz) != 3 or len(self.rpy) != 3:
            raise ValueError('xyz and rpy need three values each')

    def mounting(self) -> np.ndarray:
        """4×4 transform of the marker frame in ``frame``."""
        out = np.eye(4)
        out[:3, :3] = euler2mat(*self.rpy, axes='sxyz')
        out[:3, 3] = self.xyz
        return out


# Two poses fit the plate's corners ambiguously when the worse one's RMS reprojection error is below
# this multiple of the better one's (on the nominal cycle at 640x480 the worse fit was 6 to 120
# times worse, and the better one within 1° of the true orientation).
AMBIGUOUS_FIT = 2.0
DISCREPANCIES = ('image_mm', 'image_px', 'position_mm')  # a judged frame's values: fields of CameraDiscrepancy


BASE_PLATE = PlateConfig(0, 0.2, BASE_FRAME, (0.0, -0.35, 0.0005), (0.0, 0.0, 0.0))
TOOL_PLATE = PlateConfig(1, 0.2, 'tool0', (0.0, 0.0, -0.22), (math.pi, 0.0, 0.0))


@dataclass(frozen=True)
class Comparison:
    """One frame's check. Poses are 4×4 transforms in base_link; None where not seen."""

    camera: np.ndarray | None  # the camera optical frame (from the fixed plate)
    twin_plate: np.ndarray  # the tool plate at the twin's joint positions
    seen_plate: np.ndarray | None  # the tool plate as the camera sees it
    reprojection_px: float = math.nan  # RMS corner discrepancy in the image
    reprojection_mm: float = math.nan  # the same at the plate's distance
    position_mm: float = math.nan  # seen vs twin plate centre
    candidate: int = 0  # which of the twin's candidate instants fit best

    def discrepancies(self) -> list[float]:
        """The values named by DISCREPANCIES."""
        return [self.reprojection_mm, self.reprojection_px, self.position_mm]


def transform(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = rotation, translation
    return out


def rotation_angle(a: np.ndarray, b: np.ndarray) -> float:
    """Angle (rad) of the rotation between two 3×3 orientations."""
    return math.acos(float(np.clip((np.trace(a.T @ b) - 1.0) / 2.0, -1.0, 1.0)))


def check_plates(kinematics: ArmKinematics, base: PlateConfig, tool: PlateConfig) -> None:
    """ValueError unless ``base`` is fixed in base_link, ``tool`` on a frame of the arm, each its own marker."""
    if base.frame != BASE_FRAME:
        raise ValueError(f'the fixed plate must be mounted in {BASE_FRAME}, not {base.frame}')
    if tool.frame not in kinematics.frames:
        raise ValueError(f'the tool plate\'s frame {tool.frame} is no frame of the arm')
    if base.marker_id == tool.marker_id:
        raise ValueError(f'both plates show marker {base.marker_id}')


class VisualCheck:
    """Compares frames of a calibrated camera with the twin's joint positions (one instance per camera)."""

    def __init__(self, kinematics: ArmKinematics, calibration: CameraCalibration,
                 base: PlateConfig = BASE_PLATE, tool: PlateConfig = TOOL_PLATE,
                 dictionary: str = 'DICT_4X4_50') -> None:
        check_plates(kinematics, base, tool)
        self.kinematics, self.base, self.tool = kinematics, base, tool
        self.detector = FiducialDetector(calibration, {base.marker_id: base.side, tool.marker_id: tool.side},
                                         dictionary)
        self.focal = float(np.sqrt(self.detector.k[0, 0] * self.detector.k[1, 1]))
        self.camera: np.ndarray | None = None  # the latest extrinsics
        self._previous: np.ndarray | None = None  # the latest seen tool plate

    def compare(self, image: np.ndarray, candidates: Sequence[Mapping[str, float]]) -> Comparison:
        """The check of ``image`` (BGR or grey) against the twin's joint positions (rad by name) at
        the instants that may be the one it shows (the frame's stamp first): the one the tool plate's
        corners fit best is compared (``candidate``: its index; 0 where the plate is not seen).
        """
        plates = [self.kinematics.transforms(positions)[self.tool.frame] @ self.tool.mounting()
                  for positions in candidates]
        corners = self.detector.corners(image)
        if self.base.marker_id in corners:
            seen = self.detector.solutions(self.base.marker_id, corners[self.base.marker_id])[0]
            self.camera = self.base.mounting() @ np.linalg.inv(transform(seen.rotation, seen.position))
        if self.camera is None or self.tool.marker_id not in corners:
            return Comparison(self.camera, plates[0], None)
        detected = corners[self.tool.marker_id]
        in_camera = [np.linalg.inv(self.camera) @ plate for plate in plates]
        errors = [self._reprojection_px(plate, detected) for plate in in_camera]
        best = int(np.argmin(errors))
        seen_plate = self.camera @ self._pose(self.detector.solutions(self.tool.marker_id, detected))
        self._previous = seen_plate
        return Comparison(self.camera, plates[best], seen_plate, errors[best],
                          1e3 * errors[best] * float(in_camera[best][2, 3]) / self.focal,
                          1e3 * float(np.linalg.norm(seen_plate[:3, 3] - plates[best][:3, 3])), best)

    def _reprojection_px(self, plate_in_camera: np.ndarray, detected: np.ndarray) -> float:
        """RMS distance (px) of the plate's projected corners from the ``detected`` ones."""
        points = (plate_in_camera[:3, :3] @ square_corners(self.tool.side).T + plate_in_camera[:3, 3:]).T
        projected, _ = cv2.projectPoints(points, np.zeros(3), np.zeros(3), self.detector.k, self.detector.d)
        return float(np.sqrt(np.mean(np.sum((projected.reshape(4, 2) - detected) ** 2, axis=1))))

    def _pose(self, solutions: list[MarkerPose]) -> np.ndarray:
        """The tool plate in the camera frame: the best fit, unless the other fits almost as well
        (within AMBIGUOUS_FIT): then the one nearer the previous orientation.
        """
        chosen = solutions[0]
        ambiguous = len(solutions) > 1 and solutions[1].reprojection_px < AMBIGUOUS_FIT * solutions[0].reprojection_px
        if ambiguous and self._previous is not None and self.camera is not None:
            previous = (np.linalg.inv(self.camera) @ self._previous)[:3, :3]
            chosen = min(solutions, key=lambda pose: rotation_angle(pose.rotation, previous))
        return transform(chosen.rotation, chosen.position)
