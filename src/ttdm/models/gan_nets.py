"""The two networks of a denoising diffusion GAN (:mod:`ttdm.methods.ddgan`), for vectors and for small images.

- generator G(x_t, z, t) -> x̂_0: (B, D), (B, nz), (B,) -> (B, D);
- discriminator D(x_{t−1}, x_t, t) -> logit: (B, D), (B, D), (B,) -> (B,).

t is the chain's step divided by its length, in (0, 1], embedded by :class:`ttdm.models.embeddings.TimeMLP`.
Vectors: MLPs with SiLU (generator) or LeakyReLU(0.2) (discriminator) on the concatenated inputs, each vector input
through the input Fourier features of the grid model (``fourier``: without them neither network resolves the
25-Gaussian grid), the time embedding concatenated too.  Images (C, H, W): the same inputs as channels, convolutions at full resolution then one
2× downsampling, the time embedding added per channel, z projected to one extra channel.  These are not registry
models: they do not predict ε, and the DDGAN method builds them from the grid model's sizes.
"""

from __future__ import annotations

import torch
from torch import nn

from ttdm.models.embeddings import FourierFeatures, TimeMLP


class MLPGenerator(nn.Module):
    def __init__(self, dim: int, nz: int, hidden: int = 256, depth: int = 3, time_dim: int = 32, fourier: int = 0,
                 fourier_max: float = 16.0) -> None:
        super().__init__()
        self.time = TimeMLP(time_dim, time_dim)
        self.features = FourierFeatures(dim, fourier, fourier_max)
        layers: list[nn.Module] = [nn.Linear(self.features.out_dim + nz + time_dim, hidden), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.SiLU()]
        self.net = nn.Sequential(*layers, nn.Linear(hidden, dim))

    def forward(self, x_t: torch.Tensor, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([self.features(x_t), z, self.time(t)], dim=1))


class MLPDiscriminator(nn.Module):
    def __init__(self, dim: int, hidden: int = 256, depth: int = 3, time_dim: int = 32, fourier: int = 0,
                 fourier_max: float = 16.0) -> None:
        super().__init__()
        self.time = TimeMLP(time_dim, time_dim)
        self.features = FourierFeatures(dim, fourier, fourier_max)
        layers: list[nn.Module] = [nn.Linear(2 * self.features.out_dim + time_dim, hidden), nn.LeakyReLU(0.2)]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers, nn.Linear(hidden, 1))

    def forward(self, x_prev: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([self.features(x_prev), self.features(x_t), self.time(t)], dim=1))[:, 0]


class _ConvBlock(nn.Module):
    """conv3×3 → GroupNorm → act, plus the time embedding added per channel."""

    def __init__(self, c_in: int, c_out: int, time_dim: int, act: nn.Module) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm = nn.GroupNorm(min(8, c_out), c_out)
        self.time = nn.Linear(time_dim, c_out)
        self.act = act

    def forward(self, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(h)) + self.time(temb)[:, :, None, None])


class ConvGenerator(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], nz: int, channels: int = 32, time_dim: int = 32) -> None:
        super().__init__()
        self.shape = tuple(image_shape)
        c, h, w = self.shape
        self.time = TimeMLP(time_dim, time_dim)
        self.z = nn.Linear(nz, h * w)
        self.blocks = nn.ModuleList([_ConvBlock(c + 1, channels, time_dim, nn.SiLU()),
                                     _ConvBlock(channels, channels, time_dim, nn.SiLU()),
                                     _ConvBlock(channels, channels, time_dim, nn.SiLU())])
        self.out = nn.Conv2d(channels, c, 3, padding=1)

    def forward(self, x_t: torch.Tensor, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        c, hh, ww = self.shape
        h = torch.cat([x_t.reshape(-1, c, hh, ww), self.z(z).reshape(-1, 1, hh, ww)], dim=1)
        temb = self.time(t)
        for block in self.blocks:
            h = block(h, temb)
        return self.out(h).flatten(1)


class ConvDiscriminator(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], channels: int = 32, time_dim: int = 32) -> None:
        super().__init__()
        self.shape = tuple(image_shape)
        c, hh, ww = self.shape
        self.time = TimeMLP(time_dim, time_dim)
        act = nn.LeakyReLU(0.2)
        self.first = _ConvBlock(2 * c, channels, time_dim, act)
        self.down = nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1)
        self.second = _ConvBlock(2 * channels, 2 * channels, time_dim, act)
        self.head = nn.Linear(2 * channels * ((hh + 1) // 2) * ((ww + 1) // 2), 1)

    def forward(self, x_prev: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        c, hh, ww = self.shape
        h = torch.cat([x_prev.reshape(-1, c, hh, ww), x_t.reshape(-1, c, hh, ww)], dim=1)
        temb = self.time(t)
        h = self.second(nn.functional.leaky_relu(self.down(self.first(h, temb)), 0.2), temb)
        return self.head(h.flatten(1))[:, 0]
