"""DDIM sampling (Song et al. 2021, eq. 12): deterministic for η = 0, ancestral-like for η = 1."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ttdm.options import option
from ttdm.samplers import SAMPLERS, Denoiser
from ttdm.samplers.timesteps import SPACINGS, step_pairs
from ttdm.schedules import NoiseSchedule


def ddim_step(
    eps: torch.Tensor,
    x: torch.Tensor,
    i: int,
    prev: int,
    schedule: NoiseSchedule,
    *,
    eta: float = 0.0,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """One DDIM step x_i -> x_prev (Song et al. 2021, eq. 12; σ of eq. 16).

    x̂_0 = (x_i - √(1-ᾱ_i) ε)/√ᾱ_i,   s = η √((1-ᾱ_prev)/(1-ᾱ_i)) √(1 - ᾱ_i/ᾱ_prev),
    x_prev = √ᾱ_prev x̂_0 + √(1-ᾱ_prev-s²) ε + s z.
    Code → symbol (diffusers' DDIMScheduler.step name): ``abar`` → ᾱ_i (alpha_prod_t), ``abar_prev`` → ᾱ_prev
    (alpha_prod_t_prev; 1 when prev = -1), ``x0`` → x̂_0 (pred_original_sample), ``std`` → s (std_dev_t),
    ``eta`` → η, ``noise`` → z (variance_noise).  eps, x, noise: (B, D); noise is used only when s > 0.
    Coefficients in float64, the result in x's dtype.
    """
    abar, abar_prev = schedule.abar(i).item(), schedule.abar(prev).item()
    x0 = (x - (1.0 - abar) ** 0.5 * eps) / abar**0.5
    std = eta * ((1.0 - abar_prev) / (1.0 - abar)) ** 0.5 * (1.0 - abar / abar_prev) ** 0.5
    x_prev = abar_prev**0.5 * x0 + max(1.0 - abar_prev - std**2, 0.0) ** 0.5 * eps  # max: rounding at eta = 1
    return x_prev + std * noise if std > 0 else x_prev


@dataclass(frozen=True)
class DDIMOptions:
    eta: float = option(0.0, "noise scale: 0 deterministic DDIM, 1 DDPM-like", min=0.0, max=1.0)
    spacing: str = option("trailing", "which steps are visited (ttdm.samplers.timesteps)", choices=SPACINGS)


@SAMPLERS.register("ddim", options=DDIMOptions)
def sample_ddim(
    denoiser: Denoiser,
    x: torch.Tensor,
    steps: int,
    *,
    generator: torch.Generator | None = None,
    eta: float = 0.0,
    spacing: str = "trailing",
) -> torch.Tensor:
    """Draw x_0 from x_T = ``x`` (B, D) by ``steps`` DDIM steps; ``denoiser(x, t)`` predicts ε at t = (i+1)/T on
    ``denoiser.schedule``.

    Knobs: ``eta`` ∈ [0, 1] (0: deterministic DDIM, 1: DDPM-like noise), ``spacing`` of
    :func:`ttdm.samplers.timesteps.timesteps`.  Each step goes to the next visited step, the last one to ᾱ = 1
    (diffusers' ``set_alpha_to_one=True``); diffusers' DDIM instead always goes to i - T // steps, the same for
    "trailing" and "leading" when steps divides T, not for "linspace".  Noise z ~ N(0, I) is drawn from ``generator``
    on x's device at every step but the last when eta > 0.  Returns x_0: (B, D) in x's dtype.
    """
    if not 0 <= eta <= 1:
        raise ValueError(f"DDIM eta must lie in [0, 1] (0: DDIM, 1: DDPM-like), got {eta!r}")
    schedule = denoiser.schedule
    pairs = step_pairs(schedule.T, steps, spacing, schedule)
    with torch.no_grad():
        for i, prev in tqdm(pairs, desc="ddim", leave=False, disable=not sys.stderr.isatty()):
            t = schedule.time(torch.full((len(x),), i)).to(x.device)
            noise = None
            if eta > 0 and prev >= 0:
                noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = ddim_step(denoiser(x, t), x, i, prev, schedule, eta=eta, noise=noise)
    return x


def ode_trajectory(
    denoiser: Denoiser, x: torch.Tensor, steps: int, keep: list[int], *, spacing: str = "trailing",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The deterministic DDIM (η = 0) path of the probability-flow ODE from x_T = ``x`` (B, D), kept at some states.

    State j is x after j of the ``steps`` steps of :func:`sample_ddim` (the same pairs, the same updates: state
    ``steps`` is its sample bit for bit); state j sits at step index i_j (the j-th visited step; i_steps = −1, the
    data, ᾱ = 1).  ``keep``: increasing state indices in [0, steps].  Returns (states (B, len(keep), D) in x's
    dtype, step indices (len(keep),) long, −1 for the end point).
    """
    schedule = denoiser.schedule
    pairs = step_pairs(schedule.T, steps, spacing, schedule)
    if any(j < 0 or j > steps for j in keep) or list(keep) != sorted(set(keep)):
        raise ValueError(f"kept states must be increasing indices in [0, {steps}], got {list(keep)}")
    index = [i for i, _ in pairs] + [-1]  # step index of state j
    kept, wanted = [], set(keep)
    with torch.no_grad():
        if 0 in wanted:
            kept.append(x)
        for j, (i, prev) in enumerate(pairs, start=1):
            t = schedule.time(torch.full((len(x),), i)).to(x.device)
            x = ddim_step(denoiser(x, t), x, i, prev, schedule)
            if j in wanted:
                kept.append(x)
    return torch.stack(kept, dim=1), torch.tensor([index[j] for j in keep], dtype=torch.long)
