"""Samplers, one module each, registered in ``SAMPLERS`` with their options.

A sampler is ``sample(obj, x, steps, *, generator, **knobs) -> x_0``: ``x`` (B, D) is the starting noise,
``steps`` the number of steps, ``knobs`` its options.  What ``obj`` is depends on the sampler's ``protocol``
(``SAMPLERS.register(kind, options=..., protocol=...)`` stores it as the function's ``protocol`` attribute):

- ``"denoiser"`` (generic samplers: DDPM, DDIM, ...): a :class:`Denoiser`, the ε-prediction of any method on its
  noise schedule.  Generic samplers never branch on the method or the model.
- any other name: an object of a method's own (a GAN's posterior chain, a one-step operator); only methods whose
  ``provides`` lists that protocol can be sampled with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ttdm.registry import Registry

SAMPLERS = Registry("sampler", "ttdm.samplers")


def protocol_of(kind: str) -> str:
    """The protocol of sampler ``kind`` (what it samples from): "denoiser" unless the sampler says otherwise."""
    return getattr(SAMPLERS.get(kind), "protocol", "denoiser")


@dataclass
class Denoiser:
    """ε_θ(x, t) on its noise schedule: what every generic sampler needs of a method.

    eps: (B, D) x_t and (B,) continuous times t ∈ (0, 1] → (B, D) predicted noise;
    schedule: the run's :class:`ttdm.schedules.NoiseSchedule` (α, σ, λ at discrete steps and at continuous t).
    """

    eps: Callable[..., Any]
    schedule: Any

    def __call__(self, x, t):  # type: ignore[no-untyped-def]
        return self.eps(x, t)


def clip_x0(denoiser: Denoiser, low: float, high: float) -> Denoiser:
    """The same denoiser with its data prediction clipped to [``low``, ``high``] (diffusers' ``clip_sample``, for
    pixel data whose range is known):

        x̂_0 = (x − σ_t ε)/α_t,   ε_c = (x − α_t clamp(x̂_0, low, high))/σ_t,

    so every generic sampler sees the clipped x̂_0: the DDPM posterior mean equals diffusers' ``DDPMScheduler`` with
    ``clip_sample=True``, DDIM its ``DDIMScheduler`` with ``clip_sample=True`` and ``use_clipped_model_output=True``,
    DPM-Solver++ uses clipped data predictions (static thresholding).  α_t, σ_t come from the denoiser's schedule: a
    discrete table's exact entry at the step of t = (i + 1)/T (the samplers' own), a continuous γ's value at t.  Shapes: x (B, D), t (B,) -> (B, D).
    """
    import torch

    if not low < high:
        raise ValueError(f"x̂_0 clipping needs low < high, got [{low}, {high}]")
    schedule = denoiser.schedule

    def alpha_sigma(t: Any) -> tuple[Any, Any]:
        if getattr(schedule, "T", None):  # a discrete table: its exact entry at the nearest step i, t = (i + 1)/T
            i = torch.round(t.double().cpu() * schedule.T - 1).long().clamp(0, schedule.T - 1)
            return schedule.alpha_sigma(i)
        return schedule.alpha_sigma_at(t)

    def eps(x, t):  # type: ignore[no-untyped-def]
        e = denoiser(x, t)
        alpha, sigma = (v.to(x.device, x.dtype)[:, None] for v in alpha_sigma(t))
        x0 = ((x - sigma * e) / alpha).clamp(low, high)
        return (x - alpha * x0) / sigma

    return Denoiser(eps, schedule)
