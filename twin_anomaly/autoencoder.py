"""A small dense autoencoder (torch) whose reconstruction error scores multivariate frames."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from tqdm import tqdm


class Autoencoder:
    """``inputs → hidden → code → hidden → inputs`` with tanh activations, trained on normal data."""

    def __init__(self, n_inputs: int, hidden: int = 32, code: int = 4, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.shape = (n_inputs, hidden, code)
        self.network = nn.Sequential(
            nn.Linear(n_inputs, hidden), nn.Tanh(), nn.Linear(hidden, code), nn.Tanh(),
            nn.Linear(code, hidden), nn.Tanh(), nn.Linear(hidden, n_inputs))

    def fit(self, inputs: np.ndarray, epochs: int = 30, batch: int = 256, lr: float = 3e-3,
            seed: int = 0, progress: tqdm | None = None) -> float:
        """Train on ``inputs`` (n, k); returns the final mean squared error. ``progress`` restarts
        at 0 of ``epochs`` and moves an epoch at a time with the loss.
        """
        return train(self.network, torch.as_tensor(inputs, dtype=torch.float32), epochs, batch, lr, seed, progress)

    def errors(self, inputs: np.ndarray) -> np.ndarray:
        """Squared reconstruction error per row and input (n, k), in float32 (the network's precision)."""
        with torch.inference_mode():
            data = torch.from_numpy(np.asarray(inputs, dtype=np.float32))
            return self.network(data).sub_(data).square_().numpy()

    def save(self, path: Path) -> None:
        torch.save({'shape': self.shape, 'state': self.network.state_dict()}, path)

    @classmethod
    def load(cls, path: Path) -> Autoencoder:
        saved = torch.load(path, weights_only=True)
        n_inputs, hidden, code = saved['shape']
        model = cls(n_inputs, hidden, code)
        model.network.load_state_dict(saved['state'])
        model.network.eval()
        return model


def train(network: nn.Module, data: torch.Tensor, epochs: int, batch: int, lr: float, seed: int,
          progress: tqdm | None) -> float:
    """Train ``network`` to reproduce ``data`` (Adam, cosine schedule, shuffled batches); returns the
    final mean squared error and leaves the network in eval mode.
    """
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(network.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, epochs)
    loss = torch.tensor(0.0)
    network.train()
    if progress is not None:
        progress.reset(total=epochs)
    for _ in range(epochs):
        for rows in torch.randperm(len(data), generator=generator).split(batch):
            optimiser.zero_grad()
            loss = nn.functional.mse_loss(network(data[rows]), data[rows])
            loss.backward()
            optimiser.step()
        schedule.step()
        if progress is not None:
            progress.set_postfix_str(f'loss={loss.item():.3g}', refresh=False)
            progress.update()
    network.eval()
    return loss.item()
