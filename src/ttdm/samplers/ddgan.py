"""The denoising diffusion GAN's own sampler: T generator steps down its posterior chain (ttdm.methods.ddgan)."""

from __future__ import annotations

import sys

import torch
from tqdm.auto import tqdm

from ttdm.options import NoOptions
from ttdm.samplers import SAMPLERS


@SAMPLERS.register("ddgan", options=NoOptions)
def sample_ddgan(chain, x: torch.Tensor, steps: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """x_T = ``x`` (B, D) ~ N(0, I), then x_{k−1} ~ q(x_{k−1} | x_k, G(x_k, z, k/T)) for k = T..1; ``steps``
    must be the chain's T (the method's ``sampler_error`` says so before any job).  Returns x_0: (B, D)."""
    if steps != chain.T:
        raise ValueError(f"a DDGAN chain of T = {chain.T} steps cannot be sampled in {steps}")
    with torch.no_grad():
        for k in tqdm(range(chain.T, 0, -1), desc="ddgan", leave=False, disable=not sys.stderr.isatty()):
            x = chain(x, k, generator)
    return x


sample_ddgan.protocol = "ddgan"
