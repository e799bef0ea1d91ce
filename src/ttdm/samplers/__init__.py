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
