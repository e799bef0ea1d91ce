"""Variational bounds on −log p(x_0): the DDPM's discrete-time ELBO (Ho et al. 2020, eq. 5) and the decoders that
end it and VDM's continuous-time bound (:mod:`ttdm.methods.vdm`).

DDPM, steps i = 0..T−1 (ᾱ_i, β_i of the discrete schedule, α_i = 1 − β_i), per row of x_0 (D coordinates), in nats:

    −log p(x_0) ≤ L_T + Σ_{i=1}^{T−1} L_i + L_0,
    L_T = KL(q(x_{T−1} | x_0) ‖ N(0, I)) = ½ Σ_d (ᾱ x_d² + (1 − ᾱ) − 1 − log(1 − ᾱ)),  ᾱ = ᾱ_{T−1},
    L_i = E_ε ‖μ̃_i − μ_θ‖² / (2 β̃_i) = E_ε β_i² / (2 β̃_i α_i (1 − ᾱ_i)) ‖ε − ε_θ(x_i, t_i)‖²   (eq. 12),
    L_0 = −log p(x_0 | x_{step 0}), the decoder at the first step: N(x̂_0, β_0 I) on continuous data, or that
          Gaussian integrated over each grey level's bin (Ho et al. eq. 13) on data with ``levels`` values in [−1, 1],

with x_i = √ᾱ_i x_0 + √(1 − ᾱ_i) ε, β̃_i = β_i (1 − ᾱ_{i−1})/(1 − ᾱ_i) (the "fixed_small" reverse variance) and
x̂_0 = (x_0step − √(1 − ᾱ_0) ε_θ)/√ᾱ_0.  Every L_i is computed, each with one draw of ε per row (a single-sample
Monte Carlo estimate of each expectation, summed over all T steps), or a stratified sample of the steps.  On continuous data the bound is on the density
(comparable with the probability-flow NLL); on discrete data it is a bound on the probability of the grey levels, a
true likelihood in bits/dim.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def decoder_levels(meta: dict) -> int | None:
    """The number of grey levels of a dataset whose stored values lie on the grid −1 + 2k/(levels − 1) (digits),
    else None (continuous or standardised data: the bound is on a density)."""
    return int(meta["levels"]) if meta.get("levels") and not meta.get("standardize") else None


def level_index(x: torch.Tensor, levels: int) -> torch.Tensor:
    """The grey level k ∈ {0..levels−1} of values x on the grid −1 + 2k/(levels − 1) (nearest)."""
    return ((x.to(torch.float64) + 1) * (levels - 1) / 2).round().clamp(0, levels - 1).long()


def gaussian_decoder_nll(x0: torch.Tensor, mean: torch.Tensor, var: float | torch.Tensor) -> torch.Tensor:
    """−log N(x0; mean, var I) per row: ½ Σ_d (log 2π var + (x0 − mean)²/var).  (N, D) -> (N,)."""
    var = torch.as_tensor(var, dtype=torch.float64)
    return 0.5 * (torch.log(2 * math.pi * var) + (x0 - mean) ** 2 / var).sum(1)


def binned_decoder_nll(x0: torch.Tensor, mean: torch.Tensor, std: float | torch.Tensor, levels: int) -> torch.Tensor:
    """−log of the mass that N(mean, std²) puts on each coordinate's grey-level bin [x − δ, x + δ], δ = 1/(levels−1),
    the outer bins extended to ±∞ (Ho et al. 2020, eq. 13).  (N, D) -> (N,)."""
    delta = 1.0 / (levels - 1)
    std = torch.as_tensor(std, dtype=torch.float64)
    normal = torch.distributions.Normal(torch.zeros((), dtype=torch.float64), torch.ones((), dtype=torch.float64))
    k = level_index(x0, levels)
    centre = -1 + 2 * k.to(torch.float64) / (levels - 1)
    upper = torch.where(k == levels - 1, torch.full_like(centre, math.inf), (centre + delta - mean) / std)
    lower = torch.where(k == 0, torch.full_like(centre, -math.inf), (centre - delta - mean) / std)
    # Φ(u) − Φ(l), computed as Φ(−l) − Φ(−u) in the upper tail where both CDFs round to 1
    mass = torch.where(lower > 0, normal.cdf(-lower) - normal.cdf(-upper), normal.cdf(upper) - normal.cdf(lower))
    return -torch.log(mass.clamp_min(1e-300)).sum(1)


def softmax_decoder_nll(x0: torch.Tensor, z0: torch.Tensor, alpha0: float, sigma0: float, levels: int) -> torch.Tensor:
    """VDM's discrete decoder: p(x_d = v_k | z_0) ∝ exp(−(z_0d − α_0 v_k)²/(2σ_0²)) over the grey levels
    v_k = −1 + 2k/(levels − 1); −log p(x_0 | z_0) per row.  (N, D) -> (N,)."""
    values = torch.linspace(-1, 1, levels, dtype=torch.float64, device=z0.device)  # (K,)
    logits = -0.5 * (z0[..., None].to(torch.float64) - alpha0 * values) ** 2 / sigma0**2  # (N, D, K)
    logp = torch.log_softmax(logits, dim=-1)
    k = level_index(x0, levels)
    return -logp.gather(-1, k[..., None])[..., 0].sum(1)


@torch.no_grad()
def ddpm_elbo(eps_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], schedule, x0: torch.Tensor,
              generator: torch.Generator, *, levels: int | None = None, model_dtype: torch.dtype = torch.float32,
              strata: int | None = None) -> dict[str, torch.Tensor]:
    """The DDPM bound of every row of x0: (N, D) for ε_θ = ``eps_fn`` on the discrete ``schedule``; ``levels``:
    the binned decoder for data on that many grey levels in [−1, 1] (None: the Gaussian decoder).  ``strata``:
    Σ_{i≥1} L_i estimated with one random step per row in each of that many equal strata of steps 1..T−1, weighted
    by the stratum's size (unbiased, ``strata`` network evaluations instead of T − 1); None: every step.

    Returns {"elbo": (N,), "prior": (N,), "diffusion": (N,), "decoder": (N,)} in nats per row, float64.
    """
    x0 = x0.to(torch.float64)
    n, dim = x0.shape
    T, device = schedule.T, x0.device
    abar = schedule.alphas_cumprod.to(device=device, dtype=torch.float64)
    betas = schedule.betas.to(device=device, dtype=torch.float64)

    def noise() -> torch.Tensor:  # drawn by ``generator`` on its own device
        return torch.randn(x0.shape, generator=generator, dtype=torch.float64, device=generator.device).to(device)

    last = abar[-1]
    prior = 0.5 * (last * x0**2 + (1 - last) - 1 - torch.log(1 - last)).sum(1)
    beta_tilde = betas[1:] * (1 - abar[:-1]) / (1 - abar[1:])  # (T−1,) for steps 1..T−1
    weight = torch.cat([torch.zeros(1, dtype=torch.float64, device=device),
                        betas[1:] ** 2 / (2 * beta_tilde * (1 - betas[1:]) * (1 - abar[1:]))])  # (T,) of L_i/‖·‖²
    edges = torch.linspace(1, T, (strata or T - 1) + 1).round().long().tolist()  # strata of steps [lo, hi)
    diffusion = torch.zeros(n, dtype=torch.float64, device=device)
    for lo, hi in zip(edges[:-1], edges[1:]):
        if hi <= lo:
            continue
        i = torch.randint(lo, hi, (n,), generator=generator, device=generator.device).to(device)  # (N,)
        eps = noise()
        x_i = abar[i].sqrt()[:, None] * x0 + (1 - abar[i]).sqrt()[:, None] * eps
        t = ((i + 1).to(torch.float64) / T).to(model_dtype)
        err = ((eps - eps_fn(x_i.to(model_dtype), t).to(torch.float64)) ** 2).sum(1)
        diffusion += (hi - lo) * weight[i] * err  # one step of the stratum stands for its hi − lo steps
    x_first = abar[0].sqrt() * x0 + (1 - abar[0]).sqrt() * noise()
    eps_hat = eps_fn(x_first.to(model_dtype), torch.full((n,), 1 / T, dtype=model_dtype, device=device))
    eps_hat = eps_hat.to(torch.float64)
    mean = (x_first - (1 - abar[0]).sqrt() * eps_hat) / abar[0].sqrt()
    if levels:
        decoder = binned_decoder_nll(x0, mean, betas[0].sqrt(), levels)
    else:
        decoder = gaussian_decoder_nll(x0, mean, betas[0])
    return {"elbo": prior + diffusion + decoder, "prior": prior, "diffusion": diffusion, "decoder": decoder}
