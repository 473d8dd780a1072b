"""Scenario files: the pick-and-place task, the cell's obstacles, wear settings and faults.

A scenario is a plain YAML mapping. Validation is strict: an unknown key, a wrong type or an
unknown fault type raises :class:`ScenarioError` naming the offending key path.
"""
from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

FAULT_TYPES = ("collision", "encoder_stuck", "imu_bias_jump", "sensor_dropout", "overheating",
               "camera_frozen", "camera_occlusion", "camera_blur")
CAMERA_FAULTS = ("camera_frozen", "camera_occlusion", "camera_blur")
SENSOR_CHANNELS = ("imu", "encoders", "lidar", "plc", "plan", "camera")
OBSTACLE_SHAPES = ("box", "cylinder")

# Parameters each fault type accepts, with their defaults.
FAULT_PARAMETERS: dict[str, dict[str, Any]] = {
    "collision": {"force": (0.0, 250.0, 0.0)},  # N, world frame, at the target link's centre of mass
    "encoder_stuck": {},
    "imu_bias_jump": {"accel_bias": (0.4, 0.0, 0.0), "gyro_bias": (0.0, 0.0, 0.02)},  # m/s^2, rad/s
    "sensor_dropout": {},
    "overheating": {"cooling_factor": 0.25},  # fraction of the nominal heat conductance left
    "camera_frozen": {},  # the camera repeats its last image
    "camera_occlusion": {"fraction": 0.5},  # of the image width covered by an object in front of the lens
    "camera_blur": {"sigma": 4.0},  # px, Gaussian defocus
}
VECTOR_PARAMETERS = ("force", "accel_bias", "gyro_bias")


class ScenarioError(ValueError):
    """A scenario file or fault description is invalid."""


@dataclass(frozen=True)
class Fault:
    """A fault active over ``[start, start + duration)`` seconds of simulated time.

    ``start=None`` means "now" when injected at run time.
    """

    type: str
    target: str
    start: float | None = None
    duration: float = math.inf
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        fields = _fault_fields({"type": self.type, "target": self.target, "start": self.start,
                                "duration": self.duration, "parameters": dict(self.parameters)}, "fault")
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    @property
    def end(self) -> float:
        """End time in s (inf for a permanent fault); start must be set."""
        return (self.start or 0.0) + self.duration

    @property
    def label(self) -> str:
        return f"{self.type}:{self.target}"

    def is_active(self, time: float) -> bool:
        return self.start is not None and self.start <= time < self.end


@dataclass(frozen=True)
class Segment:
    """One move of the task cycle: a quintic move to ``target`` then a dwell there."""

    phase: str
    target: str
    duration: float
    dwell: float = 0.0
    payload: bool = False  # the gripper carries the payload during this segment


@dataclass(frozen=True)
class Task:
    waypoints: Mapping[str, tuple[float, ...]]
    segments: tuple[Segment, ...]
    payload_mass: float = 0.0

    @property
    def start_waypoint(self) -> str:
        """The cycle is closed: it starts where its last segment ends."""
        return self.segments[-1].target


@dataclass(frozen=True)
class Obstacle:
    """A static obstacle; ``size`` is the full box extent (x, y, z) or (radius, height)."""

    name: str
    shape: str
    position: tuple[float, float, float]  # centre, m, world frame
    size: tuple[float, ...]
    yaw: float = 0.0


@dataclass(frozen=True)
class WearSettings:
    rate: float = 1.0  # multiplier on the nominal wear rate
    initial: Mapping[str, float] = field(default_factory=dict)  # joint name -> wear in [0, 1]


@dataclass(frozen=True)
class Scenario:
    name: str
    task: Task
    obstacles: tuple[Obstacle, ...] = ()
    wear: WearSettings = WearSettings()
    faults: tuple[Fault, ...] = ()
    description: str = ""

    @classmethod
    def from_file(cls, path: str | Path) -> Scenario:
        with open(path, encoding="utf-8") as stream:
            try:
                document = yaml.safe_load(stream)
            except yaml.YAMLError as error:
                raise ScenarioError(f"{path}: not valid YAML: {error}") from error
        return cls.from_mapping(document)

    @classmethod
    def from_mapping(cls, document: Any) -> Scenario:
        root = _mapping(document, "", required=("name", "task"),
                        optional=("description", "obstacles", "wear", "faults"))
        return cls(
            name=_string(root["name"], "name"),
            description=_string(root.get("description", ""), "description"),
            task=_task(root["task"], "task"),
            obstacles=tuple(_obstacle(item, f"obstacles[{i}]")
                            for i, item in enumerate(_list(root.get("obstacles", []), "obstacles"))),
            wear=_wear(root.get("wear", {}), "wear"),
            faults=tuple(Fault(**_fault_fields(item, f"faults[{i}]"))
                         for i, item in enumerate(_list(root.get("faults", []), "faults"))),
        )


def _mapping(value: Any, path: str, required: tuple[str, ...] = (),
             optional: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ScenarioError(f"{path or 'scenario'}: expected a mapping, got {type(value).__name__}")
    allowed = required + optional
    for key in value:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (allowed: {', '.join(allowed)})"
            raise ScenarioError(f"{_join(path, key)}: unknown key{hint}")
    for key in required:
        if key not in value:
            raise ScenarioError(f"{_join(path, key)}: required key missing")
    return dict(value)


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _number(value: Any, path: str, minimum: float | None = None, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScenarioError(f"{path}: expected a number, got {type(value).__name__}")
    number = float(value)
    if math.isnan(number):
        raise ScenarioError(f"{path}: must not be NaN")
    if positive and not number > 0.0:
        raise ScenarioError(f"{path}: must be > 0, got {number}")
    if minimum is not None and number < minimum:
        raise ScenarioError(f"{path}: must be >= {minimum}, got {number}")
    return number


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise ScenarioError(f"{path}: expected a string, got {type(value).__name__}")
    return value


def _boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise ScenarioError(f"{path}: expected true or false, got {type(value).__name__}")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise ScenarioError(f"{path}: expected a list, got {type(value).__name__}")
    return value


def _vector(value: Any, path: str, length: int | None = None) -> tuple[float, ...]:
    if not isinstance(value, (list, tuple)):
        raise ScenarioError(f"{path}: expected a list of numbers, got {type(value).__name__}")
    if length is not None and len(value) != length:
        raise ScenarioError(f"{path}: expected {length} numbers, got {len(value)}")
    vector = tuple(_number(item, f"{path}[{i}]") for i, item in enumerate(value))
    if not all(math.isfinite(item) for item in vector):
        raise ScenarioError(f"{path}: numbers must be finite")
    return vector


def _task(value: Any, path: str) -> Task:
    task = _mapping(value, path, required=("waypoints", "cycle"), optional=("payload_mass",))
    waypoint_map = _mapping(task["waypoints"], f"{path}.waypoints",
                            optional=tuple(str(key) for key in task["waypoints"] or {}))
    waypoints = {str(name): _vector(q, f"{path}.waypoints.{name}") for name, q in waypoint_map.items()}
    if not waypoints:
        raise ScenarioError(f"{path}.waypoints: at least one waypoint is required")
    if len({len(q) for q in waypoints.values()}) != 1:
        raise ScenarioError(f"{path}.waypoints: all waypoints must have the same number of joints")
    cycle = _list(task["cycle"], f"{path}.cycle")
    if not cycle:
        raise ScenarioError(f"{path}.cycle: at least one segment is required")
    segments = tuple(_segment(item, f"{path}.cycle[{i}]", waypoints) for i, item in enumerate(cycle))
    return Task(waypoints=waypoints, segments=segments,
                payload_mass=_number(task.get("payload_mass", 0.0), f"{path}.payload_mass", minimum=0.0))


def _segment(value: Any, path: str, waypoints: Mapping[str, Any]) -> Segment:
    segment = _mapping(value, path, required=("phase", "to", "duration"), optional=("dwell", "payload"))
    target = _string(segment["to"], f"{path}.to")
    if target not in waypoints:
        raise ScenarioError(f"{path}.to: unknown waypoint '{target}' (known: {', '.join(waypoints)})")
    return Segment(phase=_string(segment["phase"], f"{path}.phase"), target=target,
                   duration=_number(segment["duration"], f"{path}.duration", positive=True),
                   dwell=_number(segment.get("dwell", 0.0), f"{path}.dwell", minimum=0.0),
                   payload=_boolean(segment.get("payload", False), f"{path}.payload"))


def _obstacle(value: Any, path: str) -> Obstacle:
    obstacle = _mapping(value, path, required=("name", "shape", "position", "size"), optional=("yaw",))
    shape = _string(obstacle["shape"], f"{path}.shape")
    if shape not in OBSTACLE_SHAPES:
        raise ScenarioError(f"{path}.shape: unknown shape '{shape}' (allowed: {', '.join(OBSTACLE_SHAPES)})")
    size = _vector(obstacle["size"], f"{path}.size", length=3 if shape == "box" else 2)
    if min(size) <= 0.0:
        raise ScenarioError(f"{path}.size: dimensions must be > 0")
    return Obstacle(name=_string(obstacle["name"], f"{path}.name"), shape=shape,
                    position=_vector(obstacle["position"], f"{path}.position", length=3),  # type: ignore[arg-type]
                    size=size, yaw=_number(obstacle.get("yaw", 0.0), f"{path}.yaw"))


def _wear(value: Any, path: str) -> WearSettings:
    wear = _mapping(value, path, optional=("rate", "initial"))
    initial_map = wear.get("initial", {})
    if not isinstance(initial_map, Mapping):
        raise ScenarioError(f"{path}.initial: expected a mapping of joint name to wear")
    initial = {str(joint): _number(level, f"{path}.initial.{joint}", minimum=0.0)
               for joint, level in initial_map.items()}
    for joint, level in initial.items():
        if level > 1.0:
            raise ScenarioError(f"{path}.initial.{joint}: wear must be in [0, 1], got {level}")
    return WearSettings(rate=_number(wear.get("rate", 1.0), f"{path}.rate", minimum=0.0), initial=initial)


def _fault_fields(value: Any, path: str) -> dict[str, Any]:
    fault = _mapping(value, path, required=("type", "target"), optional=("start", "duration", "parameters"))
    fault_type = _string(fault["type"], f"{path}.type")
    if fault_type not in FAULT_TYPES:
        close = difflib.get_close_matches(fault_type, FAULT_TYPES, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(FAULT_TYPES)})"
        raise ScenarioError(f"{path}.type: unknown fault type '{fault_type}'{hint}")
    target = _string(fault["target"], f"{path}.target")
    _check_target(fault_type, target, f"{path}.target")
    start = fault.get("start")
    return {
        "type": fault_type,
        "target": target,
        "start": None if start is None else _number(start, f"{path}.start", minimum=0.0),
        "duration": _number(fault.get("duration", math.inf), f"{path}.duration", positive=True),
        "parameters": _fault_parameters(fault_type, fault.get("parameters") or {}, f"{path}.parameters"),
    }


def _check_target(fault_type: str, target: str, path: str) -> None:
    if fault_type == "sensor_dropout" and target not in SENSOR_CHANNELS:
        raise ScenarioError(f"{path}: channel must be one of {', '.join(SENSOR_CHANNELS)}, got '{target}'")
    if fault_type == "imu_bias_jump" and target != "imu":
        raise ScenarioError(f"{path}: an imu_bias_jump targets 'imu', got '{target}'")
    if fault_type in CAMERA_FAULTS and target != "camera":
        raise ScenarioError(f"{path}: a {fault_type} targets 'camera', got '{target}'")


def _fault_parameters(fault_type: str, value: Any, path: str) -> dict[str, Any]:
    defaults = FAULT_PARAMETERS[fault_type]
    given = _mapping(value, path, optional=tuple(defaults))
    parameters = dict(defaults)
    for key, item in given.items():
        check: Callable[[Any, str], Any] = (
            (lambda v, p: _vector(v, p, length=3)) if key in VECTOR_PARAMETERS else _number)
        parameters[key] = check(item, f"{path}.{key}")
    if fault_type == "overheating" and not 0.0 < parameters["cooling_factor"] <= 1.0:
        raise ScenarioError(f"{path}.cooling_factor: must be in (0, 1]")
    if fault_type == "camera_occlusion" and not 0.0 < parameters["fraction"] <= 1.0:
        raise ScenarioError(f"{path}.fraction: must be in (0, 1]")
    if fault_type == "camera_blur" and not 0.0 < parameters["sigma"] <= 100.0:
        raise ScenarioError(f"{path}.sigma: must be in (0, 100] px")
    return parameters
