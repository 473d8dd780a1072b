"""Poses as geometry_msgs."""
from __future__ import annotations

from geometry_msgs.msg import Point, Quaternion
from geometry_msgs.msg import Pose as PoseMsg

from twin_core.kinematics import Pose


def pose_msg(pose: Pose) -> PoseMsg:
    (x, y, z), (qw, qx, qy, qz) = pose.position.tolist(), pose.orientation.tolist()
    return PoseMsg(position=Point(x=x, y=y, z=z), orientation=Quaternion(w=qw, x=qx, y=qy, z=qz))
