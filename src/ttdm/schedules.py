"""Noise schedules of a variance-preserving (VP) diffusion, in continuous time; the discrete β table is one of them.

Forward process (Ho et al. 2020, eq. 4; Kingma et al. 2021, eq. 1-3):  x_t = α(t) x_0 + σ(t) ε,  α² + σ² = 1,
t ∈ [0, 1].  Everything follows from γ(t) = log(σ²/α²) = −2λ(t), increasing in t (λ = log(α/σ) the log-SNR):
α² = sigmoid(−γ), σ² = sigmoid(γ).

- :class:`Schedule`: the contract, ``gamma(t)`` → ``logsnr_at``, ``alpha_sigma_at``; ``T`` is None for a
  continuous-time schedule.
- :class:`NoiseSchedule`: a discrete table of T betas (DDPM), ᾱ_i = Π_{s≤i}(1 − β_s).  Step i is time
  t = (i + 1)/T, diffusers' timestep i; ``abar(i)``, ``alpha_sigma(i)``, ``logsnr(i)`` are the exact tables that
  the discrete samplers use, and between grid times γ is interpolated linearly in t.
- :class:`LinearGamma` and :class:`LearnedGamma`: VDM's fixed linear γ and its learned monotone γ_η, an
  ``nn.Module`` that a method trains as one of its parts and so saves with its run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ttdm.options import check_options, option
from ttdm.registry import Registry

SCHEDULES = Registry("schedule", "ttdm.schedules")


class Schedule:
    """The schedule contract: γ(t) on t ∈ [0, 1] (tensor in, float64 tensor out); discrete schedules also give T."""

    T: int | None = None

    def gamma(self, t: torch.Tensor) -> torch.Tensor:
        """γ(t) = log(σ²/α²), increasing in t."""
        raise NotImplementedError

    def logsnr_at(self, t: torch.Tensor) -> torch.Tensor:
        """λ(t) = log(α(t)/σ(t)) = −γ(t)/2."""
        return -0.5 * self.gamma(t)

    def alpha_sigma_at(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(α(t), σ(t)) = (√sigmoid(−γ), √sigmoid(γ)), same shape as t."""
        g = self.gamma(t)
        return torch.sigmoid(-g).sqrt(), torch.sigmoid(g).sqrt()


class NoiseSchedule(Schedule):
    """A discrete VP schedule given by its betas.

    Args:
        betas: (T,) noise variances beta_1..beta_T in (0, 1); stored as float64.
        name: which registered schedule made it (for records).
    """

    def __init__(self, betas: torch.Tensor, name: str = "custom") -> None:
        betas = torch.as_tensor(betas, dtype=torch.float64)
        if betas.ndim != 1 or len(betas) < 1:
            raise ValueError("betas must be a non-empty 1-D tensor")
        if not bool(((betas > 0) & (betas < 1)).all()):
            raise ValueError("every beta must lie in (0, 1)")
        self.name = name
        self.betas = betas
        self.alphas = 1.0 - betas
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)  # abar_i, (T,)

    @property
    def T(self) -> int:
        return len(self.betas)

    @classmethod
    def from_gamma(cls, schedule: Schedule, T: int) -> "NoiseSchedule":
        """A continuous schedule read on the grid t_i = (i + 1)/T, i = 0..T−1: ᾱ_i = sigmoid(−γ(t_i)),
        β_i = 1 − ᾱ_i/ᾱ_{i−1} (ᾱ_{−1} = 1), each β clipped to [1e-12, 0.999999] (a flat stretch of a learned γ
        would give β = 0).  The discrete samplers then run on it exactly as on a DDPM's table."""
        t = torch.arange(1, T + 1, dtype=torch.float64) / T
        abar = torch.sigmoid(-schedule.gamma(t).detach().to(torch.float64).cpu())
        prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
        return cls((1 - abar / prev).clamp(1e-12, 0.999999), name="from_gamma")

    def abar(self, i: torch.Tensor | int) -> torch.Tensor:
        """abar at integer steps i (any shape, any device; the result is on the CPU); i = -1 means abar = 1."""
        i = torch.as_tensor(i, dtype=torch.long).cpu()
        ab = self.alphas_cumprod[i.clamp(min=0)]
        return torch.where(i < 0, torch.ones_like(ab), ab)

    def alpha_sigma(self, i: torch.Tensor | int) -> tuple[torch.Tensor, torch.Tensor]:
        """(alpha_i, sigma_i) = (sqrt(abar_i), sqrt(1 - abar_i)), float64, same shape as ``i``."""
        ab = self.abar(i)
        return ab.sqrt(), (1.0 - ab).sqrt()

    def logsnr(self, i: torch.Tensor | int) -> torch.Tensor:
        """lambda_i = log(alpha_i / sigma_i) = 0.5 * log(abar_i / (1 - abar_i))."""
        ab = self.abar(i)
        return 0.5 * (torch.log(ab) - torch.log1p(-ab))

    def time(self, i: torch.Tensor | int) -> torch.Tensor:
        """Continuous time t = (i + 1) / T in (0, 1] (float32), the time input of every model."""
        return (torch.as_tensor(i, dtype=torch.float32) + 1.0) / self.T

    def logsnr_at(self, t: torch.Tensor) -> torch.Tensor:
        """λ(t) for continuous t, linear in t between the grid times t_i = (i + 1)/T (exact at them); held at λ_0
        on [0, 1/T] (the table has no step at t = 0, where λ = ∞)."""
        t = torch.as_tensor(t, dtype=torch.float64).clamp(1.0 / self.T, 1.0)
        pos = t * self.T - 1.0  # fractional index
        lo = pos.floor().long().clamp(0, self.T - 1)
        hi = (lo + 1).clamp(max=self.T - 1)
        w = pos - lo
        lam = self.logsnr(torch.arange(self.T))
        return (1 - w) * lam[lo] + w * lam[hi]

    def gamma(self, t: torch.Tensor) -> torch.Tensor:
        """γ(t) = −2 λ(t) (:meth:`logsnr_at`)."""
        return -2.0 * self.logsnr_at(t)

    def q_sample(self, x0: torch.Tensor, i: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """x_i = alpha_i x0 + sigma_i eps.  x0, eps: (B, ...); i: (B,) long.  Returns x0's dtype."""
        alpha, sigma = self.alpha_sigma(i)
        shape = (-1,) + (1,) * (x0.ndim - 1)
        alpha = alpha.to(x0.device, x0.dtype).view(shape)
        sigma = sigma.to(x0.device, x0.dtype).view(shape)
        return alpha * x0 + sigma * eps

    def describe(self) -> dict[str, Any]:
        """A JSON-able record of the schedule (name, T, end values of beta and abar)."""
        return {
            "name": self.name,
            "T": self.T,
            "beta_first": float(self.betas[0]),
            "beta_last": float(self.betas[-1]),
            "abar_last": float(self.alphas_cumprod[-1]),
        }


class LinearGamma(nn.Module, Schedule):
    """VDM's fixed schedule: γ(t) = γ_min + (γ_max − γ_min) t (Kingma et al. 2021, the ablation's baseline)."""

    def __init__(self, gamma_min: float = -13.3, gamma_max: float = 5.0) -> None:
        super().__init__()
        if not gamma_min < gamma_max:
            raise ValueError(f"gamma_min = {gamma_min} must be below gamma_max = {gamma_max}")
        self.register_buffer("ends", torch.tensor([gamma_min, gamma_max], dtype=torch.float64))

    def gamma(self, t: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.float64, device=self.ends.device)
        return self.ends[0] + (self.ends[1] - self.ends[0]) * t


class _PositiveLinear(nn.Linear):
    """A linear layer with non-negative weights |W| (so the map is monotone non-decreasing in every input)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight.abs(), self.bias)


class LearnedGamma(nn.Module, Schedule):
    """VDM's learned monotone schedule (Kingma et al. 2021, appendix: the monotone network γ_η).

        γ̃(t) = l₁(t) + l₃(φ(l₂(l₁(t)))),  φ = sigmoid, every weight non-negative (monotone in t),
        γ_η(t) = γ₀ + (γ₁ − γ₀) (γ̃(t) − γ̃(0)) / (γ̃(1) − γ̃(0)),

    with learned end points γ₀ = γ_η(0), γ₁ = γ_η(1) (initialised to ``gamma_min``, ``gamma_max``).  l₃ starts at
    zero, so γ_η is exactly linear at initialisation.  t: any shape → γ of that shape (float64 in, the parameters'
    dtype inside).  ``hidden`` is the width of l₂ (1024 in VDM).
    """

    def __init__(self, gamma_min: float = -13.3, gamma_max: float = 5.0, hidden: int = 1024) -> None:
        super().__init__()
        if not gamma_min < gamma_max:
            raise ValueError(f"gamma_min = {gamma_min} must be below gamma_max = {gamma_max}")
        self.l1 = _PositiveLinear(1, 1)
        self.l2 = _PositiveLinear(1, hidden)
        self.l3 = _PositiveLinear(hidden, 1)
        with torch.no_grad():
            self.l1.weight.fill_(1.0)
            self.l1.bias.zero_()
            self.l3.weight.zero_()
            self.l3.bias.zero_()
        self.gamma_0 = nn.Parameter(torch.tensor(float(gamma_min)))
        self.gamma_1 = nn.Parameter(torch.tensor(float(gamma_max)))

    def _shape(self, t: torch.Tensor) -> torch.Tensor:
        h = self.l1(t[..., None])
        return (h + self.l3(torch.sigmoid(self.l2(h))))[..., 0]

    def gamma(self, t: torch.Tensor) -> torch.Tensor:
        dtype = self.gamma_0.dtype
        t = torch.as_tensor(t, device=self.gamma_0.device).to(dtype)
        ends = self._shape(torch.tensor([0.0, 1.0], dtype=dtype, device=t.device))
        unit = (self._shape(t) - ends[0]) / (ends[1] - ends[0])
        return self.gamma_0 + (self.gamma_1 - self.gamma_0) * unit


@dataclass(frozen=True)
class LinearOptions:
    T: int = option(1000, "number of diffusion steps", min=1)
    beta_start: float = option(1e-4, "beta of the first step", gt=0.0, lt=1.0)
    beta_end: float = option(0.02, "beta of the last step", gt=0.0, lt=1.0)


@dataclass(frozen=True)
class CosineOptions:
    T: int = option(1000, "number of diffusion steps", min=1)
    s: float = option(0.008, "offset that keeps beta small near t = 0", min=0.0)
    max_beta: float = option(0.999, "upper clip of every beta", gt=0.0, lt=1.0)


@SCHEDULES.register("linear", options=LinearOptions)
def linear_schedule(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> NoiseSchedule:
    """Ho et al. (2020): beta linear from ``beta_start`` to ``beta_end`` over T steps (diffusers' "linear")."""
    check_options(LinearOptions, {"T": T, "beta_start": beta_start, "beta_end": beta_end}, "schedule")
    return NoiseSchedule(torch.linspace(beta_start, beta_end, T, dtype=torch.float64), name="linear")


@SCHEDULES.register("cosine", options=CosineOptions)
def cosine_schedule(T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> NoiseSchedule:
    """Nichol & Dhariwal (2021): abar(t) = cos^2(((t/T + s)/(1 + s)) pi/2) / abar(0), beta clipped at ``max_beta``.

    beta_i = min(1 - abar((i+1)/T) / abar(i/T), max_beta), as diffusers' "squaredcos_cap_v2".
    """
    check_options(CosineOptions, {"T": T, "s": s, "max_beta": max_beta}, "schedule")

    def f(u: float) -> float:
        return math.cos((u + s) / (1 + s) * math.pi / 2) ** 2

    betas = [min(1 - f((i + 1) / T) / f(i / T), max_beta) for i in range(T)]
    return NoiseSchedule(torch.tensor(betas, dtype=torch.float64), name="cosine")


def make_schedule(cfg: dict[str, Any]) -> NoiseSchedule:
    """Build a schedule from a config dict ``{"kind": name, **kwargs}``, e.g. ``{"kind": "linear", "T": 1000}``.

    The options are checked first (:data:`SCHEDULES` records each kind's options), so an unknown or bad key is a
    ValueError naming ``schedule.KEY``.
    """
    cfg = dict(cfg)
    kind = cfg.pop("kind")
    build = SCHEDULES.get(kind)
    check_options(SCHEDULES.options(kind), cfg, "schedule")
    return build(**cfg)
