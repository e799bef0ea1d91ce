"""The DSNO student's own sampler: one forward pass of the operator, x_T ↦ its last output state (ttdm.methods.dsno)."""

from __future__ import annotations

import torch

from ttdm.options import NoOptions
from ttdm.samplers import SAMPLERS


@SAMPLERS.register("dsno", options=NoOptions)
def sample_dsno(operator, x: torch.Tensor, steps: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """x_0 = G_θ(x_T)(t_M): the last of the M states that one evaluation of the student gives for x_T = ``x``
    (B, D); ``steps`` must be 1 (1 NFE; the method's ``sampler_error`` says so before any job).  Draws nothing."""
    if steps != 1:
        raise ValueError(f"a DSNO student samples in one step, not {steps}")
    with torch.no_grad():
        return operator.states(x)[:, -1]


sample_dsno.protocol = "dsno"
