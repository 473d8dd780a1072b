"""A small 1-D convolutional autoencoder (torch) scoring a sliding window of multivariate frames.

Its input is the window of the last ``window`` standardized frames (channels × time); two strided
convolutions compress it to a few channels at a quarter of the time resolution and two transposed
convolutions rebuild it. A window whose channels move together unlike in the normal data (a
broken correlation, a changed dynamic response) is rebuilt badly even when every value and every
step of each channel is ordinary, which per-sensor scores cannot see.

:class:`WindowStream` scores the window ending at each frame block by block, carrying the last
``window - 1`` frames across blocks, so one batch and any split into blocks give the same scores;
the first ``window - 1`` frames of a stream (no full window yet) score 0. A window is scored by
the reconstruction error of its newest frames, given the frames before them.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch import nn

from twin_anomaly.autoencoder import train

if TYPE_CHECKING:
    from tqdm import tqdm

KERNEL = 5
TAIL = 4  # frames at the end of each window whose reconstruction error scores it (one code step)


class ConvAutoencoder:
    """``(k, window) → hidden × window/2 → code × window/4 → … → (k, window)``, tanh, trained on normal windows."""

    def __init__(self, n_inputs: int, window: int, hidden: int = 32, code: int = 8, seed: int = 0) -> None:
        if window < 4 or window % 4:
            raise ValueError(f'convolutional autoencoder: window must be a multiple of 4 frames, got {window}')
        torch.manual_seed(seed)
        self.shape = (n_inputs, window, hidden, code)
        pad = KERNEL // 2
        self.network = nn.Sequential(
            nn.Conv1d(n_inputs, hidden, KERNEL, stride=2, padding=pad), nn.Tanh(),
            nn.Conv1d(hidden, code, KERNEL, stride=2, padding=pad), nn.Tanh(),
            nn.ConvTranspose1d(code, hidden, KERNEL, stride=2, padding=pad, output_padding=1), nn.Tanh(),
            nn.ConvTranspose1d(hidden, n_inputs, KERNEL, stride=2, padding=pad, output_padding=1))

    @property
    def window(self) -> int:
        return self.shape[1]

    def fit(self, windows: np.ndarray, epochs: int = 15, batch: int = 128, lr: float = 3e-3,
            seed: int = 0, progress: tqdm | None = None) -> float:
        """Train on ``windows`` (n, k, window); returns the final mean squared error."""
        data = torch.as_tensor(np.ascontiguousarray(windows), dtype=torch.float32)
        return train(self.network, data, epochs, batch, lr, seed, progress)

    def errors(self, windows: np.ndarray) -> np.ndarray:
        """Mean squared reconstruction error of each window's last ``TAIL`` frames per window and
        channel (n, k), float32: the window's newest frames, so that the score ends with the anomaly.
        """
        with torch.inference_mode():
            data = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32))
            return self.network(data)[..., -TAIL:].sub_(data[..., -TAIL:]).square_().mean(dim=2).numpy()

    def save(self, path: Path) -> None:
        torch.save({'shape': self.shape, 'state': self.network.state_dict()}, path)

    @classmethod
    def load(cls, path: Path) -> ConvAutoencoder:
        saved = torch.load(path, weights_only=True)
        n_inputs, window, hidden, code = saved['shape']
        model = cls(n_inputs, window, hidden, code)
        model.network.load_state_dict(saved['state'])
        model.network.eval()
        return model


def windows_of(standardized: np.ndarray, window: int) -> np.ndarray:
    """Every full window of ``standardized`` (n, k) frames as (n − window + 1, k, window), a view."""
    return sliding_window_view(standardized, window, axis=0)


class WindowStream:
    """Reconstruction error of the window ending at each frame, fed block by block."""

    def __init__(self, model: ConvAutoencoder, n_channels: int) -> None:
        self.model = model
        self._history = np.zeros((0, n_channels))

    def update(self, standardized: np.ndarray) -> np.ndarray:
        """Per frame and channel (n, k): the window's error (0 before the first full window)."""
        window = self.model.window
        joined = np.vstack((self._history, standardized))
        errors = np.zeros(standardized.shape, dtype=np.float32)
        full = len(joined) - window + 1
        if full > 0:
            errors[len(standardized) - full:] = self.model.errors(windows_of(joined, window))
        self._history = joined[-(window - 1):] if window > 1 else joined[:0]
        return errors
