"""DPM-Solver++ (1, 2M, 3M) against diffusers' DPMSolverMultistepScheduler, and the new step spacings.

The model is the exact ε-predictor of N(0, S² I) data (tests/test_samplers.py).  diffusers gets our float64 ᾱ table
and, after ``set_timesteps`` on our visited steps, our float64 σ table (it rounds its own to float32).  Its ``step``
still casts the sample to float32 before the update, so the two agree to float32 rounding: TOL = 1e-6, absolute, on
values of order 1, step by step and over whole trajectories.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DPMSolverMultistepScheduler

from ttdm.samplers import SAMPLERS, Denoiser
from ttdm.samplers.dpm_solver import dpmpp_update
from ttdm.samplers.timesteps import timesteps
from ttdm.schedules import make_schedule

from test_samplers import S, SCHEDULES, at, exact_eps, randn

TOL = 1e-6


def reference(schedule, ts: list[int], order: int) -> DPMSolverMultistepScheduler:
    ref = DPMSolverMultistepScheduler(
        num_train_timesteps=schedule.T, trained_betas=schedule.betas.float().numpy(), algorithm_type="dpmsolver++",
        solver_order=order, lower_order_final=True, final_sigmas_type="zero", prediction_type="epsilon",
        thresholding=False)
    ref.alphas_cumprod = schedule.alphas_cumprod.clone()
    ref.set_timesteps(timesteps=ts)
    abar = schedule.alphas_cumprod[torch.tensor(ts)]
    ref.sigmas = torch.cat([((1 - abar) / abar).sqrt(), torch.zeros(1, dtype=torch.float64)])
    return ref


@pytest.mark.parametrize("cfg", SCHEDULES, ids=["linear", "cosine"])
@pytest.mark.parametrize("spacing", ["trailing", "logsnr", "quadratic"])
@pytest.mark.parametrize("steps", [1, 2, 5, 10, 20, 50])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_dpmpp_matches_diffusers(cfg, spacing, steps, order):
    """Every state of our trajectory (recorded at the model calls) is diffusers' step from the previous one, with
    diffusers keeping its own history; the whole trajectories agree to float32 accumulation (1e-5)."""
    schedule = make_schedule(cfg)
    model = exact_eps(schedule)
    ts = timesteps(schedule.T, steps, spacing, schedule).tolist()
    ref = reference(schedule, ts, order)
    assert ref.timesteps.tolist() == ts
    states = []

    def recording(x, t):
        states.append(x.clone())
        return model(x, t)

    x_T = randn((32, 2), 1)
    ours = SAMPLERS.get("dpmpp")(Denoiser(recording, schedule), x_T, steps, order=order, spacing=spacing)
    assert ours.dtype == torch.float64 and len(states) == steps
    for k, i in enumerate(ref.timesteps):
        theirs = ref.step(model(states[k], at(schedule, i, states[k])), i, states[k]).prev_sample
        nxt = states[k + 1] if k + 1 < steps else ours
        assert torch.allclose(nxt, theirs, atol=TOL, rtol=0), f"step {k} ({int(i)}): {float((nxt - theirs).abs().max())}"
    ref = reference(schedule, ts, order)
    x = x_T
    for i in ref.timesteps:
        x = ref.step(model(x, at(schedule, i, x)), i, x).prev_sample
    assert torch.allclose(ours, x, atol=1e-5, rtol=0), float((ours - x).abs().max())


def test_each_update_matches_diffusers_from_the_same_state():
    """Step by step from the same x and history (3M, 20 steps, linear schedule): no drift can hide a wrong step."""
    schedule = make_schedule(SCHEDULES[0])
    model = exact_eps(schedule)
    ts = timesteps(schedule.T, 20, "logsnr", schedule).tolist()
    ref = reference(schedule, ts, 3)
    x = randn((32, 2), 3)
    preds, lams = [], []
    for k, i in enumerate(ts):
        prev = ts[k + 1] if k + 1 < len(ts) else -1
        alpha, sigma = (float(v) for v in schedule.alpha_sigma(i))
        eps = model(x, at(schedule, i, x))
        preds, lams = [*preds[-2:], (x - sigma * eps) / alpha], [*lams[-2:], float(schedule.logsnr(i))]
        ours = dpmpp_update(x, preds, lams, i, prev, schedule, min(3, len(preds)) if prev >= 0 else 1)
        theirs = ref.step(eps, i, x).prev_sample
        assert torch.allclose(ours, theirs, atol=TOL, rtol=0), f"step {i} -> {prev}"
        x = theirs


def test_order_raises_accuracy_against_the_exact_flow():
    """On N(0, S² I) data the probability-flow ODE maps x_T to x_0 = x_T · S_0/s_T exactly (a linear flow), so the
    error of each order can be measured: at 20 log-SNR steps, 3M < 2M < 1 (DDIM); the last step to σ = 0 is
    first order for all three, which bounds what the higher orders gain (at 10 steps 3M is worse than 2M)."""
    schedule = make_schedule(SCHEDULES[0])
    x_T = randn((64, 2), 5)
    alpha, sigma = (float(v) for v in schedule.alpha_sigma(schedule.T - 1))
    exact = x_T * S / np.sqrt(alpha**2 * S**2 + sigma**2)
    errors = [float((SAMPLERS.get("dpmpp")(Denoiser(exact_eps(schedule), schedule), x_T, 20, order=order)
                     - exact).abs().max()) for order in (1, 2, 3)]
    assert errors[2] < errors[1] < errors[0], errors


def test_dpmpp_at_order_one_is_ddim():
    schedule = make_schedule(SCHEDULES[1])
    x_T = randn((16, 2), 7)
    den = Denoiser(exact_eps(schedule), schedule)
    ours = SAMPLERS.get("dpmpp")(den, x_T, 10, order=1, spacing="trailing")
    ddim = SAMPLERS.get("ddim")(den, x_T, 10, spacing="trailing")
    assert torch.allclose(ours, ddim, atol=1e-12, rtol=0)


@pytest.mark.parametrize("spacing", ["quadratic", "logsnr"])
@pytest.mark.parametrize("steps", [1, 3, 10, 50, 333, 999, 1000])
def test_new_spacings_visit_distinct_steps_from_pure_noise(spacing, steps):
    schedule = make_schedule(SCHEDULES[0])
    ts = timesteps(1000, steps, spacing, schedule)
    assert len(ts) == steps and ts[0] == 999 and ts[-1] >= 0 and bool((ts[1:] < ts[:-1]).all())


def test_logsnr_spacing_is_uniform_in_logsnr():
    schedule = make_schedule(SCHEDULES[0])
    ts = timesteps(1000, 10, "logsnr", schedule)
    lam = schedule.logsnr(ts).numpy()
    gaps = np.diff(lam)
    assert np.allclose(gaps, gaps.mean(), rtol=0.15)  # nearest grid steps: within rounding of the λ table
    assert ts[-1] == 0


def test_logsnr_spacing_needs_the_schedule():
    with pytest.raises(ValueError, match="logsnr spacing needs the discrete schedule"):
        timesteps(1000, 10, "logsnr")
