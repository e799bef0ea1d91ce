"""Pieces shared by the noise-prediction networks: sinusoidal time embedding, time broadcasting, sizes, and the
optional analytic head start ``prior: gaussian`` (:class:`GaussianPrior`) of every architecture.

Every network receives the continuous time t = (i + 1)/T in (0, 1] and embeds ``t * 1000`` as in Ho et al. (2020),
so a network trained with any T sees the usual DDPM range of time values.
"""

from __future__ import annotations

import math

import torch
from torch import nn

TIME_SCALE = 1000.0  # t in (0, 1] -> the DDPM timestep range (0, 1000]
PRIORS = ("gaussian", "none")  # the values of every model's ``prior`` option


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


class FourierFeatures(nn.Module):
    """Input Fourier features (Tancik et al. 2020): x ↦ [x, sin(ω_k x_d), cos(ω_k x_d)] for K log-spaced frequencies
    ω_k = π · f^(k/(K−1)), k = 0..K−1 (ω_0 = π, ω_{K−1} = π f for f = ``max_freq``; K = 1 gives ω = π).

    An MLP of raw low-dimensional coordinates learns high-frequency functions slowly (its spectral bias); the noise
    predictor of a sharp mixture (25 Gaussians of std 0.018 on a 0.7-spaced grid after standardisation) is such a
    function at small t. K = 0 is the identity.

    Args:
        dim: D, the input size.
        n_freqs: K ≥ 0.
        max_freq: f ≥ 1, the ratio of the largest to the smallest frequency.
    Shapes: x: (B, D) -> (B, D (1 + 2K)) = (B, ``out_dim``).
    """

    def __init__(self, dim: int, n_freqs: int, max_freq: float = 16.0) -> None:
        super().__init__()
        if n_freqs < 0 or max_freq < 1:
            raise ValueError(f"need n_freqs ≥ 0 and max_freq ≥ 1, got {n_freqs}, {max_freq}")
        exponents = torch.arange(n_freqs, dtype=torch.float64) / max(n_freqs - 1, 1)
        self.register_buffer("freqs", (math.pi * max_freq**exponents).float(), persistent=False)  # (K,)
        self.out_dim = dim * (1 + 2 * n_freqs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not len(self.freqs):
            return x
        angles = (x[:, :, None] * self.freqs.to(x.dtype)).flatten(1)  # (B, D K)
        return torch.cat([x, torch.sin(angles), torch.cos(angles)], dim=1)


def broadcast_time(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Times as a (B,) tensor of x's dtype: a scalar or (1,) t is broadcast to the batch of x: (B, D)."""
    return t.to(device=x.device, dtype=x.dtype).reshape(-1).expand(x.shape[0])


def count_parameters(model: nn.Module) -> int:
    """Number of trainable real scalars, Σ numel(p) over parameters with ``requires_grad`` (a complex entry, e.g.
    of DSNO's temporal Fourier weights, counts twice)."""
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters() if p.requires_grad)


class GaussianPrior:
    """Mixin of a noise predictor (an nn.Module): the optional analytic head start ε_θ(x, t) = σ_t x + f_θ(x, t).

    σ_t x is the exact noise predictor of N(0, I) data (standardised data has unit variance), so with ``prior:
    gaussian`` the model f_θ learns the deviation from a Gaussian; with ``prior: none`` ε_θ = f_θ.  σ_t comes from a
    table of the schedule's σ_i, i = 0..T−1 (:meth:`set_sigmas`, called by the method that builds the model),
    interpolated linearly between the grid times t_i = (i + 1)/T (exact on the grid).  The table is the buffer
    ``sigmas``, saved with the weights, so a loaded run computes the same prior.

    A model calls :meth:`init_prior` in its ``__init__`` (after ``nn.Module.__init__``) and returns
    :meth:`add_prior` of its own output from ``forward``.
    """

    prior: str

    def init_prior(self, prior: str, dtype: torch.dtype = torch.float32, *, keep_table: bool | None = None) -> None:
        """Declare the prior; the σ table (the buffer ``sigmas``, a placeholder of length 1 until
        :meth:`set_sigmas`) exists when ``prior`` is gaussian, or always with ``keep_table=True``."""
        if prior not in PRIORS:
            raise ValueError(f"prior {prior!r} is not allowed; allowed: {', '.join(PRIORS)}")
        self.prior = prior
        if keep_table is None:
            keep_table = prior == "gaussian"
        if keep_table:
            self.register_buffer("sigmas", torch.ones(1, dtype=dtype))  # type: ignore[attr-defined]

    @torch.no_grad()
    def set_sigmas(self, sigma: torch.Tensor) -> None:
        """Store the schedule's σ_i, i = 0..T−1: sigma (T,); nothing to store with ``prior: none``."""
        table = getattr(self, "_buffers", {}).get("sigmas")
        if table is not None:
            self.sigmas = sigma.to(device=table.device, dtype=table.dtype).clone()

    def prior_eps(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """σ(t) x in the table's dtype (zero when ``prior`` is none).  x: (B, D), t: (B,) or scalar -> (B, D)."""
        table = getattr(self, "_buffers", {}).get("sigmas")
        if table is not None:
            x = x.to(table.dtype)
        if self.prior == "none":
            return torch.zeros_like(x)
        n = table.shape[0]
        pos = (broadcast_time(x, t).to(x.dtype) * n - 1).clamp(0, n - 1)  # fractional grid index
        i0 = pos.floor().long().clamp(max=n - 2) if n > 1 else pos.long() * 0
        frac = pos - i0 if n > 1 else torch.zeros_like(pos)
        sigma = table[i0] + frac * (table[(i0 + 1).clamp(max=n - 1)] - table[i0])
        return sigma[:, None] * x

    def add_prior(self, x: torch.Tensor, t: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """ε_θ = σ_t x + out with ``prior: gaussian`` (in out's dtype); ``out`` itself, untouched, with none."""
        if self.prior == "none":
            return out
        return out + self.prior_eps(x, t).to(out.dtype)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[no-untyped-def]
        # the σ table's length is the schedule's T, known only once set: take the stored one's shape
        table = self._buffers.get("sigmas")  # type: ignore[attr-defined]
        if table is not None and prefix + "sigmas" in state_dict:
            self.sigmas = torch.empty_like(state_dict[prefix + "sigmas"], dtype=table.dtype, device=table.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)  # type: ignore[misc]
