"""DPM-Solver++ (Lu et al. 2022b): multistep solvers of the probability-flow ODE in the log-SNR λ, data prediction.

With x̂_0 = (x − σ_s ε_θ)/α_s the data prediction at a visited step s and h = λ_t − λ_s > 0 the log-SNR step to the
next visited step t (α, σ, λ = log α/σ of the discrete schedule), the updates are (Lu et al. 2022b, Alg. 2)

    order 1 (= DDIM):  x_t = (σ_t/σ_s) x_s + α_t (1 − e^{−h}) D_0,                          D_0 = x̂_0(s)
    order 2 (2M):      … with D_0 + ½ D_1,  D_1 = (x̂_0(s) − x̂_0(s′))/r_0,  r_0 = h_0/h, h_0 = λ_s − λ_{s′}
    order 3 (3M):      x_t = (σ_t/σ_s) x_s + α_t (1 − e^{−h}) D_0 + α_t ((e^{−h} − 1)/h + 1) D_1
                              − α_t ((e^{−h} − 1 + h)/h² − ½) D_2   (D_1, D_2 from three data predictions)

where s′, s″ are the previous visited steps.  The first step has no history (order 1), the second at most order 2;
the last step goes to the clean data (σ = 0, h = ∞), where every order gives x̂_0 itself; with
``lower_order_final`` and fewer than 15 steps, the step before it is at most order 2.  These are the rules of
diffusers' ``DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", final_sigmas_type="zero")``, which the tests
compare against step by step.  One model evaluation per step: NFE = ``steps``.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ttdm.options import option
from ttdm.samplers import SAMPLERS, Denoiser
from ttdm.samplers.timesteps import SPACINGS, timesteps
from ttdm.schedules import NoiseSchedule

LOWER_ORDER_BELOW = 15  # diffusers: lower_order_final applies to runs of fewer steps


def _alpha_sigma_lambda(schedule: NoiseSchedule, i: int) -> tuple[float, float, float]:
    """(α_i, σ_i, λ_i) in float64; step −1 is the clean data (1, 0, ∞)."""
    if i < 0:
        return 1.0, 0.0, math.inf
    alpha, sigma = (float(v) for v in schedule.alpha_sigma(i))
    return alpha, sigma, math.log(alpha) - math.log(sigma)


def dpmpp_update(
    x: torch.Tensor,
    x0_preds: list[torch.Tensor],
    lambdas: list[float],
    i: int,
    prev: int,
    schedule: NoiseSchedule,
    order: int,
) -> torch.Tensor:
    """One multistep DPM-Solver++ update x_i -> x_prev of the given ``order`` (1, 2 or 3).

    x: (B, D) at step i; x0_preds: the data predictions x̂_0 at the visited steps so far, the newest (step i) last,
    at least ``order`` of them; lambdas: their λ, same order; prev: the next visited step (−1: the clean data).
    Coefficients in float64 (−expm1 for 1 − e^{−h}), the result in x's dtype.
    """
    alpha_s, sigma_s, _ = _alpha_sigma_lambda(schedule, i)
    alpha_t, sigma_t, lam_t = _alpha_sigma_lambda(schedule, prev)
    m0 = x0_preds[-1]
    if prev < 0:  # σ_t = 0: every order lands on the data prediction
        return m0.clone()
    lam_s = lambdas[-1]
    h = lam_t - lam_s
    decay = -math.expm1(-h)  # 1 − e^{−h}
    out = (sigma_t / sigma_s) * x + (alpha_t * decay) * m0
    if order == 1:
        return out
    r0 = (lam_s - lambdas[-2]) / h
    d1_0 = (m0 - x0_preds[-2]) / r0
    if order == 2:
        return out + (0.5 * alpha_t * decay) * d1_0
    r1 = (lambdas[-2] - lambdas[-3]) / h
    d1_1 = (x0_preds[-2] - x0_preds[-3]) / r1
    d1 = d1_0 + (r0 / (r0 + r1)) * (d1_0 - d1_1)
    d2 = (d1_0 - d1_1) / (r0 + r1)
    c1 = alpha_t * (-decay / h + 1.0)  # α_t ((e^{−h} − 1)/h + 1)
    c2 = alpha_t * ((h - decay) / h**2 - 0.5)  # α_t ((e^{−h} − 1 + h)/h² − ½)
    return out + c1 * d1 - c2 * d2


@dataclass(frozen=True)
class DPMSolverOptions:
    order: int = option(2, "solver order: 1 (DDIM), 2 (2M) or 3 (3M)", choices=(1, 2, 3))
    spacing: str = option("logsnr", "which steps are visited (ttdm.samplers.timesteps)", choices=SPACINGS)
    lower_order_final: bool = option(True, "at most order 2 on the step before the last when steps < 15")


@SAMPLERS.register("dpmpp", options=DPMSolverOptions)
def sample_dpmpp(
    denoiser: Denoiser,
    x: torch.Tensor,
    steps: int,
    *,
    generator: torch.Generator | None = None,
    order: int = 2,
    spacing: str = "logsnr",
    lower_order_final: bool = True,
) -> torch.Tensor:
    """Draw x_0 from x_T = ``x`` (B, D) by ``steps`` multistep DPM-Solver++ updates (deterministic: ``generator``
    is unused); ``denoiser(x, t)`` predicts ε at t = (i+1)/T.  Returns x_0: (B, D) in x's dtype."""
    if order not in (1, 2, 3):
        raise ValueError(f"DPM-Solver++ order must be 1, 2 or 3, got {order!r}")
    schedule = denoiser.schedule
    ts = timesteps(schedule.T, steps, spacing, schedule).tolist()
    x0_preds: list[torch.Tensor] = []
    lambdas: list[float] = []
    with torch.no_grad():
        for k, i in enumerate(tqdm(ts, desc="dpm-solver++", leave=False, disable=not sys.stderr.isatty())):
            prev = ts[k + 1] if k + 1 < len(ts) else -1
            alpha, sigma, lam = _alpha_sigma_lambda(schedule, i)
            eps = denoiser(x, schedule.time(torch.full((len(x),), i)).to(x.device))
            x0_preds = [*x0_preds[-2:], (x - sigma * eps) / alpha]
            lambdas = [*lambdas[-2:], lam]
            step_order = min(order, len(x0_preds))
            if lower_order_final and len(ts) < LOWER_ORDER_BELOW and k == len(ts) - 2:
                step_order = min(step_order, 2)
            x = dpmpp_update(x, x0_preds, lambdas, i, prev, schedule, step_order)
    return x
