"""Ancestral DDPM sampling (Ho et al. 2020, Algorithm 2), also on a strided subsequence of steps."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ttdm.options import option
from ttdm.samplers import SAMPLERS, Denoiser
from ttdm.samplers.timesteps import SPACINGS, step_pairs
from ttdm.schedules import NoiseSchedule

VARIANCES = ("fixed_small", "fixed_large")


def ddpm_step(
    eps: torch.Tensor,
    x: torch.Tensor,
    i: int,
    prev: int,
    schedule: NoiseSchedule,
    *,
    variance: str = "fixed_small",
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """One ancestral step x_i -> x_prev ~ q(x_prev | x_i, x̂_0) (Ho et al. 2020, eqs. 6-7 and 15; Algorithm 2).

    β'_i = 1 - ᾱ_i/ᾱ_prev (= β_i when prev = i-1),  x̂_0 = (x_i - √(1-ᾱ_i) ε)/√ᾱ_i,
    x_prev = √ᾱ_prev β'_i/(1-ᾱ_i) x̂_0 + √(1-β'_i) (1-ᾱ_prev)/(1-ᾱ_i) x_i + √v z,
    v = β̃_i = β'_i (1-ᾱ_prev)/(1-ᾱ_i) ("fixed_small") or β'_i ("fixed_large"); no noise when prev = -1.
    Code → symbol (diffusers' DDPMScheduler.step name): ``abar`` → ᾱ_i (alpha_prod_t), ``abar_prev`` → ᾱ_prev
    (alpha_prod_t_prev; 1 when prev = -1), ``beta`` → β'_i (current_beta_t), ``x0`` → x̂_0 (pred_original_sample),
    ``mean`` → μ̃ (pred_prev_sample), ``var`` → v, ``noise`` → z.  eps, x, noise: (B, D).
    Coefficients in float64, the result in x's dtype.
    """
    if variance not in VARIANCES:
        raise ValueError(f"unknown DDPM variance {variance!r}; allowed: {', '.join(VARIANCES)}")
    abar, abar_prev = schedule.abar(i).item(), schedule.abar(prev).item()
    beta = 1.0 - abar / abar_prev
    x0 = (x - (1.0 - abar) ** 0.5 * eps) / abar**0.5
    mean = (abar_prev**0.5 * beta / (1.0 - abar)) * x0 + ((1.0 - beta) ** 0.5 * (1.0 - abar_prev) / (1.0 - abar)) * x
    if prev < 0:
        return mean
    var = beta * (1.0 - abar_prev) / (1.0 - abar) if variance == "fixed_small" else beta
    return mean + var**0.5 * noise


@dataclass(frozen=True)
class DDPMOptions:
    variance: str = option("fixed_small", "posterior variance β̃ (fixed_small) or β (fixed_large)", choices=VARIANCES)
    spacing: str = option("trailing", "which steps are visited (ttdm.samplers.timesteps)", choices=SPACINGS)


@SAMPLERS.register("ddpm", options=DDPMOptions)
def sample_ddpm(
    denoiser: Denoiser,
    x: torch.Tensor,
    steps: int,
    *,
    generator: torch.Generator | None = None,
    variance: str = "fixed_small",
    spacing: str = "trailing",
) -> torch.Tensor:
    """Draw x_0 from x_T = ``x`` (B, D) by ``steps`` ancestral steps; ``denoiser(x, t)`` predicts ε at t = (i+1)/T on
    ``denoiser.schedule``.

    Knobs: ``variance`` in ("fixed_small", "fixed_large"), ``spacing`` of :func:`ttdm.samplers.timesteps.timesteps`.
    Each step goes to the next visited step (as diffusers' DDPMScheduler), the last one to ᾱ = 1 without noise,
    which then returns x̂_0 (diffusers adds noise there whenever that step is not 0, e.g. for "trailing").  Noise
    z ~ N(0, I) is drawn from ``generator`` on x's device at every step but the last.  Returns x_0: (B, D).
    """
    schedule = denoiser.schedule
    pairs = step_pairs(schedule.T, steps, spacing, schedule)
    with torch.no_grad():
        for i, prev in tqdm(pairs, desc="ddpm", leave=False, disable=not sys.stderr.isatty()):
            t = schedule.time(torch.full((len(x),), i)).to(x.device)
            noise = None if prev < 0 else torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = ddpm_step(denoiser(x, t), x, i, prev, schedule, variance=variance, noise=noise)
    return x
