"""Our DDPM and DDIM samplers against diffusers' schedulers, step by step and over whole trajectories.

The model is the exact ε-predictor of data N(0, s² I): x_t ~ N(0, (α² s² + σ²) I), so
ε*(x_t) = -σ ∇ log p_t(x_t) = σ x_t / (α² s² + σ²). Everything in float64; tolerance 1e-5 (absolute, on values of
order 1).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from ttdm.samplers import SAMPLERS
from ttdm.samplers.ddim import ddim_step
from ttdm.samplers.ddpm import ddpm_step
from ttdm.samplers.timesteps import step_pairs, timesteps
from ttdm.schedules import make_schedule

S = 0.5
TOL = 1e-5


def exact_eps(schedule):
    """ε*(x, t) for N(0, S² I) data; t = (i + 1)/T is mapped back to the step index i."""

    def model(x, t):
        i = torch.round(t * schedule.T - 1).long()
        alpha, sigma = schedule.alpha_sigma(i)
        alpha, sigma = alpha.to(x.dtype)[:, None], sigma.to(x.dtype)[:, None]
        return sigma * x / (alpha**2 * S**2 + sigma**2)

    return model


def diffusers_kwargs(schedule):
    return dict(num_train_timesteps=schedule.T, trained_betas=schedule.betas.numpy(), clip_sample=False,
                prediction_type="epsilon")


SCHEDULES = [{"kind": "linear", "T": 1000}, {"kind": "cosine", "T": 1000}]


@pytest.mark.parametrize("spacing", ["trailing", "leading", "linspace"])
@pytest.mark.parametrize("steps", [1, 7, 10, 50, 1000])
def test_timesteps_match_diffusers(spacing, steps):
    ref = DDIMScheduler(num_train_timesteps=1000, timestep_spacing=spacing)
    ref.set_timesteps(steps)
    assert timesteps(1000, steps, spacing).tolist() == ref.timesteps.tolist()


def test_timesteps_errors():
    with pytest.raises(ValueError, match=r"\[1, T = 100\]"):
        timesteps(100, 101)
    with pytest.raises(ValueError, match="allowed: trailing"):
        timesteps(100, 10, "middle")


@pytest.mark.parametrize("cfg", SCHEDULES)
@pytest.mark.parametrize("steps", [10, 50, 1000])
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_matches_diffusers(cfg, steps, eta):
    schedule = make_schedule(cfg)
    model = exact_eps(schedule)
    ref = DDIMScheduler(**diffusers_kwargs(schedule), set_alpha_to_one=True, timestep_spacing="trailing")
    ref.set_timesteps(steps)
    ref.alphas_cumprod = schedule.alphas_cumprod.clone()  # diffusers keeps float32 tables; compare the update rule
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 2, generator=gen, dtype=torch.float64)
    x_ref = x.clone()
    for i, prev in step_pairs(schedule.T, steps, "trailing"):
        noise = torch.randn(x.shape, generator=gen, dtype=torch.float64)
        t = schedule.time(torch.full((len(x),), i))
        x_next = ddim_step(model(x, t), x, i, prev, schedule, eta=eta, noise=noise)
        eps_ref = model(x_ref, t)
        x_ref = ref.step(eps_ref, int(i), x_ref, eta=eta, variance_noise=noise).prev_sample
        assert torch.allclose(x_next, x_ref, atol=TOL, rtol=0), f"step {i}"
        x = x_next
    # the whole sampler gives the same trajectory end point
    gen_a, gen_b = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    x_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    out = SAMPLERS.get("ddim")(model, x_T, schedule, steps, generator=gen_a, eta=eta)
    ref.set_timesteps(steps)
    x_ref = x_T.clone()
    for i in ref.timesteps:
        t = schedule.time(torch.full((len(x_ref),), int(i)))
        noise = torch.randn(x_ref.shape, generator=gen_b, dtype=torch.float64) if eta > 0 and int(i) - schedule.T // steps >= 0 else None
        x_ref = ref.step(model(x_ref, t), int(i), x_ref, eta=eta, variance_noise=noise).prev_sample
    assert torch.allclose(out, x_ref, atol=TOL, rtol=0)


@pytest.mark.parametrize("cfg", SCHEDULES)
@pytest.mark.parametrize("steps,variance", [(1000, "fixed_small"), (1000, "fixed_large"), (50, "fixed_small"),
                                            (10, "fixed_small")])
def test_ddpm_matches_diffusers(cfg, steps, variance):
    """Same noise on both sides: diffusers draws it with torch.randn from the generator it is given, as we do."""
    schedule = make_schedule(cfg)
    model = exact_eps(schedule)
    ref = DDPMScheduler(**diffusers_kwargs(schedule), variance_type=variance, timestep_spacing="trailing")
    ref.set_timesteps(steps)
    ref.alphas_cumprod = schedule.alphas_cumprod.clone()  # float64 tables on both sides: compare the update rule
    ref.one = torch.tensor(1.0, dtype=torch.float64)
    assert ref.timesteps.tolist() == timesteps(schedule.T, steps, "trailing").tolist()
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x_ref = x.clone()
    gen, gen_ref = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    for i, prev in step_pairs(schedule.T, steps, "trailing"):
        t = schedule.time(torch.full((len(x),), i))
        noise = torch.randn(x.shape, generator=gen, dtype=torch.float64) if prev >= 0 else None
        x = ddpm_step(model(x, t), x, i, prev, schedule, variance=variance, noise=noise)
        x_ref = ref.step(model(x_ref, t), int(i), x_ref, generator=gen_ref).prev_sample
        assert torch.allclose(x, x_ref, atol=TOL, rtol=0), f"step {i}"
    # the whole sampler: same trajectory
    x_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = SAMPLERS.get("ddpm")(model, x_T, schedule, steps, generator=torch.Generator().manual_seed(1),
                               variance=variance)
    assert torch.allclose(out, x, atol=TOL, rtol=0)


@pytest.mark.parametrize(
    "kind,steps,knobs,tol",
    [("ddpm", 1000, {}, 0.01), ("ddim", 1000, {}, 0.01), ("ddim", 1000, {"eta": 1.0}, 0.01), ("ddim", 100, {}, 0.02)],
)
def test_samplers_turn_noise_into_the_data_distribution(kind, steps, knobs, tol):
    """Exact ε* and N(0, I) noise give samples of std S.  N = 20000 points: the std's standard error is
    S/√(2N) ≈ 0.0025, so 0.01 is four of them; 100 DDIM steps add a first-order discretisation error (≈ 0.012)."""
    schedule = make_schedule({"kind": "linear", "T": 1000})
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(20000, 2, generator=gen, dtype=torch.float64)
    out = SAMPLERS.get(kind)(exact_eps(schedule), x, schedule, steps, generator=gen, **knobs)
    assert abs(out.std().item() - S) < tol
    assert abs(out.mean().item()) < 0.01


def test_bad_knobs():
    schedule = make_schedule({"kind": "linear", "T": 10})
    x = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="allowed: fixed_small"):
        SAMPLERS.get("ddpm")(lambda x, t: x, x, schedule, 10, variance="learned")
    with pytest.raises(ValueError, match="eta"):
        SAMPLERS.get("ddim")(lambda x, t: x, x, schedule, 10, eta=-1.0)
