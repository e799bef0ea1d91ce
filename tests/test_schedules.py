"""The noise schedule against diffusers' tables, numpy recomputations and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler

from ttdm.schedules import SCHEDULES, NoiseSchedule, make_schedule


@pytest.mark.parametrize("kind,name", [("linear", "linear"), ("cosine", "squaredcos_cap_v2")])
def test_betas_match_diffusers(kind, name):
    """diffusers keeps float32 tables: betas agree to float32 rounding, ᾱ to the rounding of a 1000-term product."""
    ours = make_schedule({"kind": kind, "T": 1000})
    ref = DDPMScheduler(num_train_timesteps=1000, beta_schedule=name)
    assert torch.allclose(ours.betas.float(), ref.betas, rtol=1e-6, atol=1e-9)
    assert torch.allclose(ours.alphas_cumprod.float(), ref.alphas_cumprod, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_tables_match_numpy(kind):
    """ᾱ = cumprod(1 - β) strictly decreasing, α, σ, λ = ½ log(ᾱ / (1 - ᾱ)), t = (i + 1)/T; ᾱ_{-1} = 1."""
    s = make_schedule({"kind": kind, "T": 100})
    abar = np.cumprod(1 - s.betas.numpy())
    i = torch.arange(100)
    assert np.allclose(s.abar(i).numpy(), abar, rtol=1e-14, atol=0)
    assert (np.diff(abar) < 0).all() and 0 < abar[-1] < abar[0] < 1
    alpha, sigma = s.alpha_sigma(i)
    assert np.allclose(alpha.numpy(), np.sqrt(abar), rtol=1e-14) and np.allclose(sigma.numpy(), np.sqrt(1 - abar))
    assert np.allclose(s.logsnr(i).numpy(), 0.5 * np.log(abar / (1 - abar)), rtol=1e-12, atol=1e-12)
    assert s.abar(-1).item() == 1.0
    assert s.time(99).item() == 1.0 and s.time(0).item() == pytest.approx(0.01)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_logsnr_at_interpolates_the_grid(kind):
    s = make_schedule({"kind": kind, "T": 100})
    i = torch.arange(100)
    assert torch.allclose(s.logsnr_at(s.time(i)), s.logsnr(i), atol=1e-6)  # times are float32
    mid = s.logsnr_at(torch.tensor(0.1125, dtype=torch.float64))  # t T - 1 = 10.25: a quarter from i = 10 to 11
    assert torch.isclose(mid, 0.75 * s.logsnr(10) + 0.25 * s.logsnr(11), atol=1e-12)
    assert torch.isclose(s.logsnr_at(torch.tensor(0.0)), s.logsnr(0))  # clamped below 1/T


def test_cosine_closed_form():
    """Nichol & Dhariwal (2021): ᾱ_i = f((i + 1)/T)/f(0), f(u) = cos²((u + s)/(1 + s) π/2), while β < 0.999."""
    s = make_schedule({"kind": "cosine", "T": 50})

    def f(u):
        return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

    for i in (0, 9, 30):
        assert math.isclose(s.alphas_cumprod[i].item(), f((i + 1) / 50) / f(0), rel_tol=1e-12)
    assert s.betas[-1].item() == 0.999


def test_q_sample_is_alpha_x0_plus_sigma_eps():
    """Exact: per-row steps on image-shaped input (B, C, H, W); and in law: mean α x0, std σ."""
    s = make_schedule({"kind": "linear", "T": 1000})
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(3, 1, 4, 4, generator=g, dtype=torch.float64)
    eps = torch.randn(3, 1, 4, 4, generator=g, dtype=torch.float64)
    i = torch.tensor([0, 500, 999])
    abar = np.cumprod(1 - s.betas.numpy())[i.numpy()][:, None, None, None]  # (B, 1, 1, 1)
    expected = np.sqrt(abar) * x0.numpy() + np.sqrt(1 - abar) * eps.numpy()
    assert np.allclose(s.q_sample(x0, i, eps).numpy(), expected, rtol=1e-13, atol=1e-13)
    assert s.q_sample(x0.float(), i, eps.float()).dtype == torch.float32

    n = 200_000  # mean within 4 standard errors σ/√n; std within 1 % (its standard error is 0.16 %)
    x = s.q_sample(torch.full((n, 1), 2.0), torch.full((n,), 300), torch.randn(n, 1, generator=g))
    alpha, sigma = (v.item() for v in s.alpha_sigma(300))
    assert abs(x.mean().item() - 2 * alpha) < 4 * sigma / math.sqrt(n)
    assert abs(x.std().item() - sigma) < 0.01 * sigma


@pytest.mark.parametrize("cfg,match", [
    ({"kind": "linear", "T": 0}, "schedule.T: 0 must be ≥ 1"),
    ({"kind": "linear", "T": -5}, "schedule.T: -5 must be ≥ 1"),
    ({"kind": "cosine", "T": 2.5}, "schedule.T: 2.5 is not an integer"),
    ({"kind": "cosine", "T": True}, "schedule.T: True is not an integer"),
    ({"kind": "linear", "beta_end": 1.5}, "schedule.beta_end: 1.5 must be < 1"),
    ({"kind": "linear", "s": 0.01}, "schedule.s: unknown option; allowed: T, beta_end, beta_start"),
    ({"kind": "cosine", "max_beta": "high"}, "schedule.max_beta: 'high' is not a number"),
    ({"kind": "quadratic"}, "'quadratic'; allowed: cosine, linear"),
])
def test_bad_schedules(cfg, match):
    with pytest.raises(ValueError) as info:
        make_schedule(cfg)
    assert match in str(info.value)


def test_direct_calls_check_their_options_too():
    with pytest.raises(ValueError, match="schedule.T: 0 must be ≥ 1"):
        SCHEDULES.get("linear")(T=0)
    with pytest.raises(ValueError, match="schedule.s: -0.1 must be ≥ 0"):
        SCHEDULES.get("cosine")(T=10, s=-0.1)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_declared_defaults_are_the_functions_defaults(kind):
    import dataclasses

    defaults = dataclasses.asdict(SCHEDULES.options(kind)())
    torch.testing.assert_close(make_schedule({"kind": kind}).betas, make_schedule({"kind": kind, **defaults}).betas,
                               rtol=0, atol=0)
    assert make_schedule({"kind": kind, "T": 20}).T == 20


@pytest.mark.parametrize("betas", [[0.1, 1.0], [0.0, 0.1], [], [[0.1]]])
def test_bad_betas(betas):
    with pytest.raises(ValueError, match="beta"):
        NoiseSchedule(torch.tensor(betas))


# --------------------------------------------------------------------------------------------------------------------
# The continuous-time contract: γ(t), λ(t), α(t), σ(t); the discrete table as one schedule, VDM's γ as others


def test_discrete_schedule_in_continuous_time_is_the_table_at_grid_times():
    from ttdm.schedules import make_schedule

    schedule = make_schedule({"kind": "cosine", "T": 200})
    i = torch.arange(200)
    t = (i.to(torch.float64) + 1) / 200
    alpha, sigma = schedule.alpha_sigma_at(t)
    table_alpha, table_sigma = schedule.alpha_sigma(i)
    assert torch.allclose(alpha, table_alpha, rtol=0, atol=1e-12)
    assert torch.allclose(sigma, table_sigma, rtol=0, atol=1e-12)
    assert torch.allclose(alpha**2 + sigma**2, torch.ones_like(alpha), atol=1e-12)
    between = schedule.gamma(t[:-1] + 0.5 / 200)  # halfway between grid times: the mean of the neighbours
    assert torch.allclose(between, 0.5 * (schedule.gamma(t[:-1]) + schedule.gamma(t[1:])), atol=1e-9)
    assert (schedule.gamma(torch.linspace(0, 1, 1001, dtype=torch.float64)).diff() >= 0).all()


def test_learned_gamma_is_monotone_with_its_end_points_and_linear_at_initialisation():
    from ttdm.schedules import LearnedGamma, LinearGamma

    torch.manual_seed(0)
    learned, fixed = LearnedGamma(-13.3, 5.0, hidden=64), LinearGamma(-13.3, 5.0)
    t = torch.linspace(0, 1, 257, dtype=torch.float64)
    assert torch.allclose(learned.gamma(t).double(), fixed.gamma(t), atol=1e-5)  # linear at initialisation
    with torch.no_grad():  # any weights: still monotone, still through its end points
        for p in learned.parameters():
            p.add_(torch.randn_like(p))
    g = learned.gamma(t)
    assert (g.diff() >= -1e-6).all()
    assert torch.allclose(g[[0, -1]], torch.stack([learned.gamma_0, learned.gamma_1]), atol=1e-5)
    alpha, sigma = learned.alpha_sigma_at(t)
    assert torch.allclose(alpha**2 + sigma**2, torch.ones_like(alpha), atol=1e-6)
    learned.gamma(t).sum().backward()  # trainable: every parameter gets a gradient
    assert all(p.grad is not None for p in learned.parameters())
    copy = LearnedGamma(hidden=64)
    copy.load_state_dict(learned.state_dict())  # saved with its run as a part's state dict
    assert torch.equal(copy.gamma(t), learned.gamma(t))
