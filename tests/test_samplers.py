"""DDPM and DDIM samplers against diffusers' schedulers (step by step, whole trajectories) and in distribution.

The model is the exact ε-predictor of data N(0, S² I): x_i ~ N(0, (α_i² S² + σ_i²) I), so
ε*(x_i) = -σ_i ∇ log p_i(x_i) = σ_i x_i / (α_i² S² + σ_i²).  Everything runs in float64.  diffusers is built from our
betas (as float32 ``trained_betas``) and then given our float64 ᾱ table, so that the comparison tests the update
rules, step sequences and noise draws rather than float32 rounding of the table (which alone moves a 10-step cosine
DDIM by up to 1e-5): tolerance TOL = 1e-10, absolute, on values of order 1.
"""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from ttdm.samplers import SAMPLERS, Denoiser
from ttdm.samplers.ddim import ddim_step
from ttdm.samplers.ddpm import ddpm_step
from ttdm.samplers.timesteps import step_pairs, timesteps
from ttdm.schedules import make_schedule

S = 0.5
TOL = 1e-10
SCHEDULES = [{"kind": "linear", "T": 1000}, {"kind": "cosine", "T": 1000}]


def exact_eps(schedule):
    """ε*(x, t) for N(0, S² I) data; t = (i + 1)/T is mapped back to the step index i.  x: (B, D), t: (B,)."""

    def model(x, t):
        alpha, sigma = schedule.alpha_sigma(torch.round(t * schedule.T - 1).long())
        alpha, sigma = alpha.to(x.dtype)[:, None], sigma.to(x.dtype)[:, None]  # (B, 1)
        return sigma * x / (alpha**2 * S**2 + sigma**2)

    return model


def reference(cls, schedule, spacing, **kw):
    """A diffusers scheduler on our betas, ε-prediction, no clipping, with our float64 ᾱ table."""
    ref = cls(num_train_timesteps=schedule.T, trained_betas=schedule.betas.float().numpy(), clip_sample=False,
              prediction_type="epsilon", timestep_spacing=spacing, **kw)
    ref.alphas_cumprod = schedule.alphas_cumprod.clone()
    return ref


def randn(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def at(schedule, i, x):
    """The model's time input for step i: (B,) float32."""
    return schedule.time(torch.full((len(x),), int(i)))


@pytest.mark.parametrize("T", [100, 1000])
@pytest.mark.parametrize("steps", [1, 7, 10, 29, 50, 61, 100])
@pytest.mark.parametrize("spacing", ["trailing", "leading", "linspace"])
@pytest.mark.parametrize("cls", [DDIMScheduler, DDPMScheduler])
def test_timesteps_match_diffusers(cls, spacing, steps, T):
    """Equal to set_timesteps; where diffusers' trailing arange overshoots ((100, 29), (1000, 61)) it appends -1."""
    ref = cls(num_train_timesteps=T, timestep_spacing=spacing)
    ref.set_timesteps(steps)
    ours = timesteps(T, steps, spacing)
    assert ours.dtype == torch.long and ours.shape == (steps,)
    assert ours.tolist() == ref.timesteps[:steps].tolist()
    assert all(i == -1 for i in ref.timesteps[steps:].tolist())


@pytest.mark.parametrize("spacing", ["trailing", "leading", "linspace"])
def test_all_steps_visit_every_step(spacing):
    assert timesteps(50, 50, spacing).tolist() == list(range(49, -1, -1))
    assert step_pairs(50, 50, spacing)[-2:] == [(1, 0), (0, -1)]


@pytest.mark.parametrize("T,steps,spacing,match", [
    (100, 0, "trailing", r"\[1, T = 100\], got 0"),
    (100, 101, "trailing", r"\[1, T = 100\], got 101"),
    (100, 2.5, "trailing", "got 2.5"),
    (0, 1, "trailing", "positive integer, got 0"),
    (100, 10, "middle", "'middle'; allowed: trailing, leading, linspace"),
])
def test_timesteps_errors(T, steps, spacing, match):
    with pytest.raises(ValueError, match=match):
        timesteps(T, steps, spacing)


@pytest.mark.parametrize("cfg", SCHEDULES, ids=["linear", "cosine"])
@pytest.mark.parametrize("steps,spacing", [(1000, "trailing"), (10, "trailing"), (50, "trailing"), (10, "leading"),
                                           (50, "leading")])
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_matches_diffusers(cfg, steps, spacing, eta):
    schedule = make_schedule(cfg)
    model = exact_eps(schedule)
    ref = reference(DDIMScheduler, schedule, spacing, set_alpha_to_one=True)
    ref.set_timesteps(steps)
    assert ref.timesteps.tolist() == timesteps(schedule.T, steps, spacing).tolist()
    x = randn((16, 2), 0)
    for k, (i, prev) in enumerate(step_pairs(schedule.T, steps, spacing)):  # one step from the same x and z
        eps, z = model(x, at(schedule, i, x)), randn(x.shape, 100 + k)
        ours = ddim_step(eps, x, i, prev, schedule, eta=eta, noise=z)
        theirs = ref.step(eps, i, x, eta=eta, variance_noise=z if eta > 0 else None).prev_sample
        assert torch.allclose(ours, theirs, atol=TOL, rtol=0), f"step {i} -> {prev}"
        x = ours
    # whole trajectories; each side draws z from a generator seeded alike
    x_T = randn((16, 2), 1)
    ours = SAMPLERS.get("ddim")(Denoiser(model, schedule), x_T, steps, generator=torch.Generator().manual_seed(2),
                                eta=eta, spacing=spacing)
    ref.set_timesteps(steps)
    x, gen = x_T, torch.Generator().manual_seed(2)
    for i in ref.timesteps:
        x = ref.step(model(x, at(schedule, i, x)), i, x, eta=eta, generator=gen).prev_sample
    assert ours.dtype == torch.float64
    assert torch.allclose(ours, x, atol=TOL, rtol=0)


@pytest.mark.parametrize("cfg", SCHEDULES, ids=["linear", "cosine"])
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_step_matches_diffusers_on_its_own_prev_step(cfg, eta):
    """With "linspace" diffusers' DDIM goes from i to i - T // steps, not to the next visited step as our sampler
    does; the step function itself agrees with diffusers given that prev."""
    schedule = make_schedule(cfg)
    model = exact_eps(schedule)
    ref = reference(DDIMScheduler, schedule, "linspace", set_alpha_to_one=True)
    ref.set_timesteps(10)
    x = randn((16, 2), 0)
    for k, i in enumerate(ref.timesteps.tolist()):
        eps, z = model(x, at(schedule, i, x)), randn(x.shape, 100 + k)
        ours = ddim_step(eps, x, i, i - schedule.T // 10, schedule, eta=eta, noise=z)
        theirs = ref.step(eps, i, x, eta=eta, variance_noise=z if eta > 0 else None).prev_sample
        assert torch.allclose(ours, theirs, atol=TOL, rtol=0), f"step {i}"
        x = ours


@pytest.mark.parametrize("cfg", SCHEDULES, ids=["linear", "cosine"])
@pytest.mark.parametrize("steps,spacing", [(1000, "trailing"), (10, "trailing"), (50, "trailing"), (10, "leading"),
                                           (50, "linspace")])
@pytest.mark.parametrize("variance", ["fixed_small", "fixed_large"])
def test_ddpm_matches_diffusers(cfg, steps, spacing, variance):
    """diffusers draws z itself with torch.randn from the generator it is given, as we do, so equal seeds give equal z.

    The last step (to ᾱ = 1) outputs the posterior mean, which there equals x̂_0 (Ho et al. 2020, Algorithm 2);
    diffusers adds noise on it whenever its step is not 0 (e.g. trailing: std √(1 - ᾱ_i) for fixed_large), so there
    we compare with its pred_original_sample.
    """
    schedule = make_schedule(cfg)
    model = exact_eps(schedule)
    ref = reference(DDPMScheduler, schedule, spacing, variance_type=variance)
    ref.set_timesteps(steps)
    assert ref.timesteps.tolist() == timesteps(schedule.T, steps, spacing).tolist()

    def ref_step(eps, i, x, prev, gen):
        out = ref.step(eps, i, x, generator=gen)
        return out.pred_original_sample if prev < 0 else out.prev_sample

    x = randn((16, 2), 0)
    for k, (i, prev) in enumerate(step_pairs(schedule.T, steps, spacing)):  # one step from the same x and z
        eps = model(x, at(schedule, i, x))
        ours = ddpm_step(eps, x, i, prev, schedule, variance=variance, noise=randn(x.shape, 100 + k))
        theirs = ref_step(eps, i, x, prev, torch.Generator().manual_seed(100 + k))
        assert torch.allclose(ours, theirs, atol=TOL, rtol=0), f"step {i} -> {prev}"
        x = ours
    # whole trajectories; each side draws z from a generator seeded alike
    x_T = randn((16, 2), 1)
    ours = SAMPLERS.get("ddpm")(Denoiser(model, schedule), x_T, steps, generator=torch.Generator().manual_seed(2),
                                variance=variance, spacing=spacing)
    ref.set_timesteps(steps)
    x, gen = x_T, torch.Generator().manual_seed(2)
    for i, prev in step_pairs(schedule.T, steps, spacing):
        x = ref_step(model(x, at(schedule, i, x)), i, x, prev, gen)
    assert ours.dtype == torch.float64
    assert torch.allclose(ours, x, atol=TOL, rtol=0)


@pytest.mark.parametrize("kind,steps,knobs,tol", [("ddpm", 200, {}, 0.025), ("ddpm", 200, {"variance": "fixed_large"},
                                                                                0.015), ("ddim", 50, {}, 0.035)])
def test_samplers_turn_noise_into_the_data_distribution(kind, steps, knobs, tol):
    """Exact ε*, cosine schedule with T = 200, N(0, I) noise: samples of std S and mean 0.

    N = 20000 values: the std's standard error is S/√(2N) = 0.0025, the mean's S/√N = 0.0035.  The discretisation
    bias of the std, measured with 4·10⁵ values, is -0.010 (DDPM, fixed_small), +0.002 (fixed_large) and -0.016
    (DDIM, 50 steps); each tolerance is about twice the bias plus four standard errors.
    """
    schedule = make_schedule({"kind": "cosine", "T": 200})
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(10000, 2, generator=gen, dtype=torch.float64)
    out = SAMPLERS.get(kind)(Denoiser(exact_eps(schedule), schedule), x, steps, generator=gen, **knobs)
    assert abs(out.std().item() - S) < tol
    assert abs(out.mean().item()) < 0.015


@pytest.mark.parametrize("kind", ["ddpm", "ddim"])
def test_samplers_keep_dtype_and_build_no_graph(kind):
    """float32 in, float32 out, no autograd graph through the network, one evaluation per step."""
    schedule = make_schedule({"kind": "linear", "T": 20})
    net = torch.nn.Linear(2, 2)
    calls = []

    def model(x, t):
        calls.append((x.dtype, t.dtype))
        return net(x)

    gen = torch.Generator().manual_seed(0)
    out = SAMPLERS.get(kind)(Denoiser(model, schedule), torch.randn(4, 2), 5, generator=gen)
    assert out.dtype == torch.float32 and not out.requires_grad
    assert calls == [(torch.float32, torch.float32)] * 5


@pytest.mark.parametrize("kind,knobs,match", [
    ("ddpm", {"variance": "learned"}, "'learned'; allowed: fixed_small, fixed_large"),
    ("ddim", {"eta": -0.1}, r"eta must lie in \[0, 1\].*-0.1"),
    ("ddim", {"eta": 1.5}, r"eta must lie in \[0, 1\].*1.5"),
    ("ddim", {"spacing": "middle"}, "'middle'; allowed"),
    ("ddpm", {"steps": 11}, r"\[1, T = 10\], got 11"),
])
def test_sampler_errors(kind, knobs, match):
    schedule = make_schedule({"kind": "linear", "T": 10})
    knobs = dict(knobs)
    steps = knobs.pop("steps", 10)
    with pytest.raises(ValueError, match=match):
        SAMPLERS.get(kind)(Denoiser(lambda x, t: x, schedule), torch.zeros(2, 2), steps, **knobs)


# ---- x̂_0 clipping for pixel data (diffusers' clip_sample) -------------------------------------------------------------
WIDE = 2.0  # data N(0, WIDE² I): the exact x̂_0 often leaves [−1, 1], so the clipping acts


def wide_eps(schedule):
    def model(x, t):
        alpha, sigma = schedule.alpha_sigma(torch.round(t * schedule.T - 1).long())
        alpha, sigma = alpha.to(x.dtype)[:, None], sigma.to(x.dtype)[:, None]
        return sigma * x / (alpha**2 * WIDE**2 + sigma**2)

    return model


def clipping_reference(cls, schedule, spacing, **kw):
    ref = cls(num_train_timesteps=schedule.T, trained_betas=schedule.betas.float().numpy(), clip_sample=True,
              clip_sample_range=1.0, prediction_type="epsilon", timestep_spacing=spacing, **kw)
    ref.alphas_cumprod = schedule.alphas_cumprod.clone()
    return ref


@pytest.mark.parametrize("cfg", SCHEDULES, ids=["linear", "cosine"])
@pytest.mark.parametrize("steps", [10, 50])
def test_clipped_ddim_matches_diffusers_clip_sample(cfg, steps):
    from ttdm.samplers import clip_x0

    schedule = make_schedule(cfg)
    model = wide_eps(schedule)
    ref = clipping_reference(DDIMScheduler, schedule, "trailing", set_alpha_to_one=True)
    ref.set_timesteps(steps)
    x_T = randn((64, 2), 3)
    ours = SAMPLERS.get("ddim")(clip_x0(Denoiser(model, schedule), -1.0, 1.0), x_T, steps, spacing="trailing")
    x, clipped = x_T, 0
    for i in ref.timesteps:
        eps = model(x, at(schedule, i, x))
        out = ref.step(eps, i, x, eta=0.0, use_clipped_model_output=True)
        a, s = schedule.alpha_sigma(int(i))
        clipped += int(((x - s * eps) / a).abs().gt(1).sum())
        x = out.prev_sample
    assert clipped > 0  # the clipping acted
    assert torch.allclose(ours, x, atol=1e-9, rtol=0)
    assert ours.abs().max() <= 1.0 + 1e-12  # the last step returns the clipped x̂_0
    plain = SAMPLERS.get("ddim")(Denoiser(model, schedule), x_T, steps, spacing="trailing")
    assert plain.abs().max() > 1.5  # without clipping the wide data leave the range


@pytest.mark.parametrize("cfg", SCHEDULES, ids=["linear", "cosine"])
@pytest.mark.parametrize("steps,spacing", [(1000, "trailing"), (50, "trailing")])
def test_clipped_ddpm_matches_diffusers_clip_sample(cfg, steps, spacing):
    from ttdm.samplers import clip_x0

    schedule = make_schedule(cfg)
    model = wide_eps(schedule)
    ref = clipping_reference(DDPMScheduler, schedule, spacing, variance_type="fixed_small")
    ref.set_timesteps(steps)
    x_T = randn((32, 2), 4)
    ours = SAMPLERS.get("ddpm")(clip_x0(Denoiser(model, schedule), -1.0, 1.0), x_T, steps,
                                generator=torch.Generator().manual_seed(5), variance="fixed_small", spacing=spacing)
    x, gen = x_T, torch.Generator().manual_seed(5)
    for i, prev in step_pairs(schedule.T, steps, spacing):
        out = ref.step(model(x, at(schedule, i, x)), i, x, generator=gen)
        x = out.pred_original_sample if prev < 0 else out.prev_sample
    assert torch.allclose(ours, x, atol=1e-9, rtol=0)
    assert ours.abs().max() <= 1.0 + 1e-12


def test_clip_x0_refuses_an_empty_range():
    from ttdm.samplers import clip_x0

    schedule = make_schedule(SCHEDULES[0])
    with pytest.raises(ValueError, match="low < high"):
        clip_x0(Denoiser(exact_eps(schedule), schedule), 1.0, -1.0)
