"""A plain MLP noise predictor: ε_θ(x, t) = MLP([φ(x), TimeMLP(t)]), φ optional input Fourier features."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ttdm.models import MODELS
from ttdm.models.embeddings import PRIORS, FourierFeatures, GaussianPrior, TimeMLP, broadcast_time
from ttdm.options import check_options, option


@dataclass(frozen=True)
class MLPConfig:
    hidden: int = option(128, "width of every hidden layer", min=1)
    depth: int = option(3, "number of hidden layers", min=1)
    time_dim: int = option(32, "size of the sinusoidal time embedding and of its MLP", min=2)
    fourier: int = option(0, "input Fourier features: K log-spaced frequencies of each coordinate, π to π·fourier_max "
                             "(Tancik et al. 2020); 0: raw coordinates", min=0)
    fourier_max: float = option(16.0, "ratio of the largest to the smallest input frequency", min=1)
    prior: str = option("none", "gaussian: ε_θ = σ_t x + network (the network fits the deviation from N(0, I) data); "
                                "none: ε_θ = network", choices=PRIORS)


class MLP(GaussianPrior, nn.Module):
    """ε_θ(x, t) = W_out SiLU(... SiLU(W_1 [φ(x), h(t)])), h(t) = TimeMLP(t), φ the input Fourier features
    (:class:`ttdm.models.embeddings.FourierFeatures`, the identity with ``fourier: 0``), SiLU activations (+ σ_t x with
    ``prior: gaussian``, :class:`ttdm.models.embeddings.GaussianPrior`).

    Shapes: x: (B, D), t: (B,) -> (B, D).
    """

    def __init__(self, dim: int, cfg: MLPConfig) -> None:
        super().__init__()
        self.time = TimeMLP(cfg.time_dim, cfg.time_dim)
        self.features = FourierFeatures(dim, cfg.fourier, cfg.fourier_max)
        layers: list[nn.Module] = [nn.Linear(self.features.out_dim + cfg.time_dim, cfg.hidden), nn.SiLU()]
        for _ in range(cfg.depth - 1):
            layers += [nn.Linear(cfg.hidden, cfg.hidden), nn.SiLU()]
        layers.append(nn.Linear(cfg.hidden, dim))
        self.net = nn.Sequential(*layers)
        self.init_prior(cfg.prior)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = self.time(broadcast_time(x, t))  # (B, time_dim)
        return self.add_prior(x, t, self.net(torch.cat([self.features(x), h], dim=1)))  # (B, D)


@MODELS.register("mlp", options=MLPConfig)
def build(dim: int, image_shape: tuple[int, ...] | None = None, **hparams: object) -> MLP:
    """An :class:`MLP` for D = ``dim``; ``image_shape`` is ignored. hparams: hidden (128), depth (3), time_dim (32),
    fourier (0), fourier_max (16), prior (none)."""
    return MLP(dim, check_options(MLPConfig, hparams, "mlp"))
