"""Pieces shared by the noise-prediction networks: sinusoidal time embedding, time broadcasting, sizes.

Every network receives the continuous time t = (i + 1)/T in (0, 1] and embeds ``t * 1000`` as in Ho et al. (2020),
so a network trained with any T sees the usual DDPM range of time values.
"""

from __future__ import annotations

import math

import torch
from torch import nn

TIME_SCALE = 1000.0  # t in (0, 1] -> the DDPM timestep range (0, 1000]


def timestep_embedding(t: torch.Tensor, dim: int, *, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding [sin(s w_k), cos(s w_k)] of s = 1000 t, w_k = max_period^(-k/(dim/2 - 1)).

    Vaswani et al. (2017), sec. 3.5, with Ho et al.'s (2020) frequencies (diffusers' ``get_timestep_embedding``
    with ``downscale_freq_shift=1``); an odd ``dim`` gets a trailing zero column.

    Args:
        t: (B,) continuous times in [0, 1].
        dim: embedding size, at least 2.
    Returns:
        (B, dim) float32 embedding.
    """
    if dim < 2:
        raise ValueError(f"time embedding dim must be at least 2, got {dim}")
    half = dim // 2
    k = torch.arange(half, dtype=torch.float32, device=t.device)
    freqs = torch.exp(-math.log(max_period) * k / max(half - 1, 1))  # (half,)
    angles = TIME_SCALE * t.float()[:, None] * freqs[None, :]  # (B, half)
    emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)  # (B, 2 half)
    if dim % 2:
        emb = nn.functional.pad(emb, (0, 1))  # (B, dim)
    return emb


class TimeMLP(nn.Module):
    """t ↦ Linear(SiLU(Linear(emb(t)))): the sinusoidal embedding followed by a two-layer MLP.

    Args:
        time_dim: size of the sinusoidal embedding.
        out_dim: size of the output.
    Shapes: t: (B,) -> (B, out_dim).
    """

    def __init__(self, time_dim: int, out_dim: int) -> None:
        super().__init__()
        self.time_dim = time_dim
        self.net = nn.Sequential(nn.Linear(time_dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.net(timestep_embedding(t, self.time_dim))


def broadcast_time(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Times as a (B,) tensor of x's dtype: a scalar or (1,) t is broadcast to the batch of x: (B, D)."""
    return t.to(device=x.device, dtype=x.dtype).reshape(-1).expand(x.shape[0])


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars, Σ numel(p) over parameters with ``requires_grad``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
