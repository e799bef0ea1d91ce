"""DDPM training: regress the noise added by the forward process (Ho et al. 2020)."""

from __future__ import annotations

import torch

from ttdm.methods import METHODS
from ttdm.methods.regression import RegressionMethod


@METHODS.register("ddpm")
class DDPM(RegressionMethod):
    """The simplified DDPM objective, Ho et al. (2020), eq. 14 (Algorithm 1):

        L = E_{i ~ U{0..T-1}, x_0, ε ~ N(0, I)} ‖ε − ε_θ(α_i x_0 + σ_i ε, t_i)‖²,  t_i = (i + 1)/T,

    estimated on a batch as the mean of (ε − ε_θ)² over the batch and the D coordinates (eq. 14 divided by D, so
    the learning rate does not depend on the data dimension).  The target is the drawn noise ε.
    """

    def target(self, x0: torch.Tensor, x_t: torch.Tensor, i: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return eps
