"""DDPM training: regress the noise added by the forward process (Ho et al. 2020)."""

from __future__ import annotations

import torch
from torch import nn

from ttdm.methods import METHODS
from ttdm.schedules import NoiseSchedule


@METHODS.register("ddpm")
class DDPM:
    """The simplified DDPM objective, Ho et al. (2020), eq. 14 (Algorithm 1):

        L = E_{i ~ U{0..T-1}, x_0, ε ~ N(0, I)} ‖ε − ε_θ(α_i x_0 + σ_i ε, t_i)‖²,  t_i = (i + 1)/T,

    estimated on a batch as the mean of (ε − ε_θ)² over the batch and the D coordinates (eq. 14 divided by D, so
    the learning rate does not depend on the data dimension).
    """

    def loss(
        self, model: nn.Module, x0: torch.Tensor, schedule: NoiseSchedule, generator: torch.Generator
    ) -> torch.Tensor:
        """The batch estimate of L.  x0: (B, D); ``generator`` lives on x0's device and draws i and ε."""
        i = torch.randint(0, schedule.T, (x0.shape[0],), generator=generator, device=x0.device)  # (B,)
        eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)  # (B, D)
        i_cpu = i.cpu()  # the schedule's tables live on the CPU and are indexed there
        x_i = schedule.q_sample(x0, i_cpu, eps)  # (B, D)
        pred = model(x_i, schedule.time(i_cpu).to(x0.device))  # (B, D)
        return ((eps - pred) ** 2).mean()
