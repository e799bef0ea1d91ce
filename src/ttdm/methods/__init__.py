"""Training methods (losses and training steps), one module each, registered in ``METHODS``.

A method is a class built by ``from_data(meta)`` (meta: the dataset's meta.json record) with
``loss(model, x0, schedule, generator)``.  Methods whose loss is a regression of the model output on a target
also provide ``triplets(x0, schedule, generator) -> (x_t, t, target)``: the least-squares optimisers of tensor-train
models (ALS, Riemannian GD) fit those directly.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ttdm.registry import Registry
from ttdm.schedules import NoiseSchedule

METHODS = Registry("method", "ttdm.methods")


class RegressionMethod:
    """Loss = mean over the batch and the D coordinates of (target − ε_θ(x_t, t))², with (x_t, t, target) drawn by
    :meth:`triplets`: i ~ U{0..T−1}, ε ~ N(0, I), x_t = α_i x_0 + σ_i ε, t = (i + 1)/T."""

    @classmethod
    def from_data(cls, meta: dict[str, Any]) -> "RegressionMethod":
        return cls()

    def target(self, x0: torch.Tensor, x_t: torch.Tensor, i: torch.Tensor, eps: torch.Tensor,
               schedule: NoiseSchedule) -> torch.Tensor:
        raise NotImplementedError

    def triplets(
        self, x0: torch.Tensor, schedule: NoiseSchedule, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x_t (B, D), t (B,), target (B, D)) for a batch x0: (B, D); ``generator`` lives on x0's device."""
        i = torch.randint(0, schedule.T, (x0.shape[0],), generator=generator, device=x0.device)  # (B,)
        eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)  # (B, D)
        i_cpu = i.cpu()  # the schedule's tables live on the CPU and are indexed there
        x_t = schedule.q_sample(x0, i_cpu, eps)  # (B, D)
        t = schedule.time(i_cpu).to(device=x0.device, dtype=x0.dtype)
        return x_t, t, self.target(x0, x_t, i_cpu, eps, schedule)

    def loss(
        self, model: nn.Module, x0: torch.Tensor, schedule: NoiseSchedule, generator: torch.Generator
    ) -> torch.Tensor:
        x_t, t, target = self.triplets(x0, schedule, generator)
        return ((target - model(x_t, t)) ** 2).mean()
