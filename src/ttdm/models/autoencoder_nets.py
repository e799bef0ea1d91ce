"""The encoder and decoder of the latent-diffusion autoencoder (:mod:`ttdm.methods.autoencoder`).

- encoder: x (B, D) -> (mean, log-variance) of q(z | x), each (B, L): an MLP with SiLU, ``depth`` hidden layers;
- decoder: z (B, L) -> x̂ (B, D): the mirror MLP.

Images are flattened (the digits are 64 numbers): the autoencoder compresses D = 64 to L (8 by default).
"""

from __future__ import annotations

import torch
from torch import nn


def _mlp(n_in: int, n_out: int, hidden: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(n_in, hidden), nn.SiLU()]
    for _ in range(depth - 1):
        layers += [nn.Linear(hidden, hidden), nn.SiLU()]
    return nn.Sequential(*layers, nn.Linear(hidden, n_out))


class Encoder(nn.Module):
    def __init__(self, dim: int, latent_dim: int, hidden: int = 256, depth: int = 2) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.net = _mlp(dim, 2 * latent_dim, hidden, depth)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.net(x).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)


class Decoder(nn.Module):
    def __init__(self, latent_dim: int, dim: int, hidden: int = 256, depth: int = 2) -> None:
        super().__init__()
        self.net = _mlp(latent_dim, dim, hidden, depth)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)
