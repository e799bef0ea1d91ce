"""Isolation objective: regress the exact noise predictor ε* of a Gaussian-mixture dataset (seed 000, item 1).

For a mixture the minimiser of the DDPM loss is known, ε*(x_t, t) = E[ε | x_t] = −σ_t ∇ log p_t(x_t)
(``ttdm.data.mixture``).  Fitting it directly,

    L* = E_{i, x_0, ε} ‖ε*(x_i, i) − ε_θ(x_i, t_i)‖²,  x_i = α_i x_0 + σ_i ε,

removes the irreducible variance E‖ε − ε*‖² of the DDPM regression, so L* measures the model's approximation
error alone; L_DDPM = L* + E‖ε − ε*‖² up to sampling noise.
"""

from __future__ import annotations

import torch

from ttdm.data.mixture import GaussianMixture
from ttdm.methods import METHODS
from ttdm.methods.base import Context
from ttdm.methods.regression import RegressionMethod, RegressionOptions


@METHODS.register("eps_star")
class EpsStar(RegressionMethod):
    """Target ε*(x_t, i) of the dataset's mixture (stored in its meta.json)."""

    def __init__(self, options: RegressionOptions, ctx: Context) -> None:
        super().__init__(options, ctx)
        self.mixture = None
        if ctx.data is not None:  # training needs the mixture; sampling a finished run does not
            if not ctx.meta.get("mixture"):
                raise ValueError(
                    f"method 'eps_star' needs a Gaussian-mixture dataset with a known density; "
                    f"{ctx.meta.get('name', 'this dataset')!r} has none (use it on 8gaussians, 25gaussians, "
                    f"gaussians_nd)"
                )
            self.mixture = GaussianMixture.from_dict(ctx.meta["mixture"])

    def target(self, x0: torch.Tensor, x_t: torch.Tensor, i: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return self.mixture.eps_star(x_t, i, self.schedule)
