"""Model registry: named model factories, versioned save/load (weights + JSON metadata), prediction cache.

A saved model is a directory with ``model.pt`` (torch state_dict) and ``metadata.json`` (name,
version, hyperparameters, joint names, inputs/outputs with units, training-data sha256, metrics).
"""
from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Hashable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from twin_predictor.dynamics import DynamicsModel, MlpArm, PhysicsInformedArm, Scales

FORMAT = 1
KINDS: dict[str, type[DynamicsModel]] = {cls.kind: cls for cls in (PhysicsInformedArm, MlpArm)}
MODELS: dict[str, tuple[type[DynamicsModel], dict[str, Any]]] = {
    'physics_informed': (PhysicsInformedArm, {'members': 1}),
    'mlp': (MlpArm, {'members': 1}),
    'ensemble': (PhysicsInformedArm, {'members': 5}),
}
INPUTS = {'q': 'rad', 'qd': 'rad/s', 'tau': 'N*m'}
OUTPUTS = {'qdd': 'rad/s^2'}


def create(name: str, joints: int, scales: Scales, **overrides: Any) -> DynamicsModel:
    """A fresh model of registry entry ``name`` with normalisation ``scales``."""
    if name not in MODELS:
        raise KeyError(f'unknown model {name!r} (known: {", ".join(MODELS)})')
    cls, defaults = MODELS[name]
    return cls(joints=joints, **scales, **{**defaults, **overrides})


def write_metadata(directory: str | Path, fields: dict[str, Any]) -> dict[str, Any]:
    """Atomically write ``metadata.json``; the version is one above the one previously saved there."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / 'metadata.json'
    version = json.loads(path.read_text())['version'] + 1 if path.exists() else 1
    metadata = {'format': FORMAT, 'version': version,
                'created': datetime.now(UTC).isoformat(timespec='seconds'), **fields}
    temporary = directory / 'metadata.json.tmp'
    temporary.write_text(json.dumps(metadata, indent=2) + '\n')
    os.replace(temporary, path)
    return metadata


def save(model: DynamicsModel, directory: str | Path, name: str, joint_names: tuple[str, ...],
         training: dict[str, Any], metrics: dict[str, float]) -> dict[str, Any]:
    """Write ``model.pt`` and its metadata; returns the metadata."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), Path(directory) / 'model.pt')
    return write_metadata(directory, {
        'name': name, 'kind': model.kind, 'hyperparameters': model.hyperparameters(),
        'joint_names': list(joint_names), 'inputs': INPUTS, 'outputs': OUTPUTS, 'training': training,
        'metrics': metrics, 'torch': torch.__version__})


def load(directory: str | Path) -> tuple[DynamicsModel, dict[str, Any]]:
    """Rebuild a saved model (in eval mode) and return it with its metadata."""
    directory = Path(directory)
    metadata = json.loads((directory / 'metadata.json').read_text())
    if metadata.get('format') != FORMAT:
        raise ValueError(f'{directory}: unsupported model format {metadata.get("format")}')
    state = torch.load(directory / 'model.pt', weights_only=True)
    scales = {key: state[key] for key in ('tau_scale', 'qdd_scale', 'qd_scale')}
    model = KINDS[metadata['kind']](**scales, **metadata['hyperparameters'])
    model.load_state_dict(state)
    model.eval()
    return model, metadata


class PredictionCache:
    """LRU cache of predictions keyed by the rounded state, the horizon and the model version."""

    def __init__(self, capacity: int = 256, decimals: int = 3) -> None:
        self.capacity, self.decimals = capacity, decimals
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self.hits = self.misses = 0

    def key(self, state: np.ndarray, horizon: int, version: int) -> Hashable:
        return (tuple(np.round(np.asarray(state, dtype=float), self.decimals).tolist()), horizon, version)

    def get(self, key: Hashable) -> Any | None:
        if key in self._entries:
            self.hits += 1
            self._entries.move_to_end(key)
            return self._entries[key]
        self.misses += 1
        return None

    def put(self, key: Hashable, value: Any) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
