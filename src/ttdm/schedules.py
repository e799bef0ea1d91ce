"""One noise-schedule abstraction for every method: a variance-preserving (VP) diffusion.

Forward process (Ho et al. 2020, eq. 4):  x_t = alpha_t x_0 + sigma_t eps,  alpha_t = sqrt(abar_t),
sigma_t = sqrt(1 - abar_t),  abar_t = prod_{s <= t} (1 - beta_s).  Log signal-to-noise ratio
lambda_t = log(alpha_t / sigma_t).  The discrete index i in {0, ..., T-1} is diffusers' timestep; the continuous
time fed to models is t = (i + 1) / T in (0, 1].  A continuous-time method (VDM, DPM-Solver) reads alpha, sigma and
lambda at any t in [0, 1] through :meth:`NoiseSchedule.logsnr_at`, which interpolates log-SNR between grid points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from ttdm.options import check_options, option
from ttdm.registry import Registry

SCHEDULES = Registry("schedule", "ttdm.schedules")


class NoiseSchedule:
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
        """lambda(t) for continuous t in [1/T, 1], linear interpolation of lambda between the grid times."""
        t = torch.as_tensor(t, dtype=torch.float64).clamp(1.0 / self.T, 1.0)
        pos = t * self.T - 1.0  # fractional index
        lo = pos.floor().long().clamp(0, self.T - 1)
        hi = (lo + 1).clamp(max=self.T - 1)
        w = pos - lo
        lam = self.logsnr(torch.arange(self.T))
        return (1 - w) * lam[lo] + w * lam[hi]

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
