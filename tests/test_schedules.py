"""The noise schedule against diffusers' tables and closed forms."""

from __future__ import annotations

import math

import pytest
import torch
from diffusers import DDPMScheduler

from ttdm.schedules import NoiseSchedule, make_schedule


@pytest.mark.parametrize("kind,name", [("linear", "linear"), ("cosine", "squaredcos_cap_v2")])
def test_betas_match_diffusers(kind, name):
    ours = make_schedule({"kind": kind, "T": 1000})
    ref = DDPMScheduler(num_train_timesteps=1000, beta_schedule=name)
    assert torch.allclose(ours.betas.float(), ref.betas, rtol=1e-6, atol=1e-8)
    assert torch.allclose(ours.alphas_cumprod.float(), ref.alphas_cumprod, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_abar_decreases_and_logsnr_interpolates(kind):
    s = make_schedule({"kind": kind, "T": 100})
    assert bool((s.alphas_cumprod[1:] < s.alphas_cumprod[:-1]).all())
    i = torch.arange(100)
    assert torch.allclose(s.logsnr_at(s.time(i)), s.logsnr(i), atol=1e-10)
    mid = s.logsnr_at((s.time(10) + s.time(11)) / 2)
    assert torch.isclose(mid, (s.logsnr(10) + s.logsnr(11)) / 2)
    assert s.abar(-1).item() == 1.0


def test_cosine_closed_form():
    s = make_schedule({"kind": "cosine", "T": 50})

    def f(u):
        return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

    assert math.isclose(s.alphas_cumprod[9].item(), f(10 / 50) / f(0), rel_tol=1e-12)


def test_q_sample_moments():
    s = make_schedule({"kind": "linear", "T": 1000})
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((200_000, 1), 2.0, dtype=torch.float64)
    i = torch.full((200_000,), 300)
    x = s.q_sample(x0, i, torch.randn(x0.shape, generator=g, dtype=torch.float64))
    alpha, sigma = s.alpha_sigma(300)
    assert abs(x.mean().item() - 2 * alpha.item()) < 4 * sigma.item() / math.sqrt(200_000)
    assert abs(x.std().item() - sigma.item()) < 0.01 * sigma.item()
    assert s.time(999).item() == 1.0 and s.time(0).item() == pytest.approx(1e-3)


@pytest.mark.parametrize("cfg,match", [({"kind": "linear", "T": 0}, "positive integer"),
                                       ({"kind": "quadratic"}, "allowed: cosine, linear")])
def test_bad_schedules(cfg, match):
    with pytest.raises(ValueError, match=match):
        make_schedule(cfg)


def test_bad_betas():
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        NoiseSchedule(torch.tensor([0.1, 1.0]))
