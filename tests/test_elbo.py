"""Variational bounds: the DDPM's ELBO and VDM's VLB against the exact NLL of Gaussian data (both bound it from above
and come close with the exact ε*), the decoders against their definitions, and VDM trained, resumed and sampled by
the generic loop and stages."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch

from ttdm.analysis.elbo import binned_decoder_nll, ddpm_elbo, softmax_decoder_nll
from ttdm.methods.base import Context
from ttdm.methods.vdm import VDM, VDMOptions
from ttdm.runs import load_run
from ttdm.schedules import LinearGamma, NoiseSchedule, make_schedule
from ttdm.stages.train import train

from test_train import assert_same_parts, make_data, make_spec, train_killed_at

S = 0.5  # data N(0, S² I)


def true_nll_per_dim(x: torch.Tensor) -> float:
    return float((0.5 * math.log(2 * math.pi * S**2) + x.double() ** 2 / (2 * S**2)).mean())


def exact_eps(schedule):
    """ε*(x, t) of N(0, S² I) data on a discrete schedule (t = (i + 1)/T)."""

    def eps_star(x, t):
        i = torch.round(t.double() * schedule.T - 1).long()
        a2 = schedule.alphas_cumprod[i][:, None]
        return ((1 - a2).sqrt() * x.double() / (a2 * S**2 + 1 - a2)).to(x.dtype)

    return eps_star


def expected_ddpm_elbo(schedule) -> float:
    """E[ELBO]/D in closed form for N(0, S²) data and the exact ε*: each L_i's E‖ε − ε*‖² is Var(ε | x_i) =
    ᾱ S²/(ᾱ S² + 1 − ᾱ), the decoder's E(x_0 − x̂_0)² is Var(x_0 | x_step0) = S² (1 − ᾱ_0)/(ᾱ_0 S² + 1 − ᾱ_0)."""
    abar, betas = schedule.alphas_cumprod.double(), schedule.betas.double()
    last = abar[-1]
    total = 0.5 * (last * S**2 + (1 - last) - 1 - math.log(1 - last))
    for i in range(1, schedule.T):
        beta_tilde = betas[i] * (1 - abar[i - 1]) / (1 - abar[i])
        var_eps = abar[i] * S**2 / (abar[i] * S**2 + 1 - abar[i])
        total += betas[i] ** 2 / (2 * beta_tilde * (1 - betas[i]) * (1 - abar[i])) * var_eps
    var_x0 = S**2 * (1 - abar[0]) / (abar[0] * S**2 + 1 - abar[0])
    total += 0.5 * math.log(2 * math.pi * betas[0]) + var_x0 / (2 * betas[0])
    return float(total)


def test_ddpm_elbo_of_the_exact_eps_matches_its_closed_form_and_bounds_the_nll():
    """The Monte Carlo ELBO of ε* on N(0, S²) data equals its closed-form expectation (within 4 standard errors),
    which lies above the true NLL: the gap (≈ 0.4 nats/dim here) is the fixed reverse variance β̃ of "fixed_small",
    far below the true reverse variance at the first steps on data that is smooth at the noise's scale."""
    schedule = make_schedule({"kind": "linear", "T": 1000})
    eps_star = exact_eps(schedule)

    x0 = S * torch.randn(3000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = ddpm_elbo(eps_star, schedule, x0, torch.Generator().manual_seed(1), model_dtype=torch.float64)
    elbo = out["elbo"] / 2
    se = float(elbo.std()) / math.sqrt(len(elbo))
    expected = expected_ddpm_elbo(schedule)
    assert abs(float(elbo.mean()) - expected) < 4 * se, (float(elbo.mean()), expected, se)
    assert expected > 0.5 * math.log(2 * math.pi * S**2) + 0.5  # the true NLL's expectation
    # a worse model has a worse bound
    worse = ddpm_elbo(lambda x, t: 0.8 * eps_star(x, t), schedule, x0, torch.Generator().manual_seed(1),
                      model_dtype=torch.float64)
    assert float(worse["elbo"].mean()) > float(out["elbo"].mean()) + 0.1


def test_vdm_bound_with_the_exact_eps_is_tight_on_gaussian_data():
    """The continuous-time VLB of the exact ε* (fixed linear γ from −13.3 to 5) is the true NLL up to the prior and
    decoder terms, which are below 0.01 nats/dim at these end points."""
    ctx = Context(spec={"schedule": {"kind": "linear", "T": 1000}}, dim=2, image_shape=None)
    method = VDM(VDMOptions(schedule="fixed"), ctx)
    gamma = LinearGamma()

    class ExactEps(torch.nn.Module):
        def forward(self, z, t):
            g = gamma.gamma(t.double())
            a2, s2 = torch.sigmoid(-g)[:, None], torch.sigmoid(g)[:, None]
            return (s2.sqrt() * z.double() / (a2 * S**2 + s2)).to(z.dtype)

    x0 = S * torch.randn(4000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = method.elbo({"denoiser": ExactEps(), "gamma": gamma}, x0, torch.Generator().manual_seed(1), draws=8)
    vlb = out["elbo"] / 2
    nll = true_nll_per_dim(x0)
    se = float(vlb.std()) / math.sqrt(len(vlb))
    assert nll - 3 * se < float(vlb.mean()) < nll + 0.01 + 3 * se, (float(vlb.mean()), nll, se)


def test_binned_decoder_is_the_gaussian_mass_of_each_bin():
    rng = np.random.default_rng(0)
    levels = 17
    x = -1 + 2 * rng.integers(0, levels, (50, 3)) / (levels - 1)
    mean, std = x + rng.normal(0, 0.05, x.shape), 0.04
    lo = np.where(x <= -1, -np.inf, x - 1 / 16)
    hi = np.where(x >= 1, np.inf, x + 1 / 16)
    ref = -np.log(scipy.stats.norm.cdf(hi, mean, std) - scipy.stats.norm.cdf(lo, mean, std)).sum(1)
    ours = binned_decoder_nll(torch.tensor(x), torch.tensor(mean), std, levels).numpy()
    assert np.allclose(ours, ref, rtol=1e-9)


def test_softmax_decoder_is_a_normalised_distribution_over_the_levels():
    levels, a0, s0 = 5, 0.99, 0.3
    z0 = torch.tensor([[0.2]], dtype=torch.float64)
    values = torch.linspace(-1, 1, levels, dtype=torch.float64)
    total = sum(math.exp(-softmax_decoder_nll(v.view(1, 1), z0, a0, s0, levels).item()) for v in values)
    assert total == pytest.approx(1.0, abs=1e-12)
    logits = -0.5 * (0.2 - a0 * values) ** 2 / s0**2
    assert -softmax_decoder_nll(values[3].view(1, 1), z0, a0, s0, levels).item() == pytest.approx(
        float(torch.log_softmax(logits, 0)[3]))


def test_a_continuous_schedule_read_on_the_grid_is_a_discrete_schedule():
    gamma = LinearGamma(-10.0, 6.0)
    disc = NoiseSchedule.from_gamma(gamma, 100)
    t = torch.arange(1, 101, dtype=torch.float64) / 100
    assert torch.allclose(disc.alphas_cumprod, torch.sigmoid(-gamma.gamma(t)), rtol=1e-12)


@pytest.mark.parametrize("schedule", ["learned", "fixed"])
def test_vdm_trains_resumes_and_samples_through_the_generic_stages(tmp_path, monkeypatch, schedule):
    data = make_data(tmp_path / "data")
    spec = make_spec(steps=40, checkpoint_every=10, log_every=10)
    spec["method"] = "vdm"
    spec["training"].update(schedule=schedule, gamma_hidden=16, lr=3e-3)
    train(spec, data, tmp_path / "run")
    run = load_run(tmp_path / "run")
    den = run.sampling_object("denoiser")
    assert den.schedule.T == spec["schedule"]["T"]
    from ttdm.samplers import SAMPLERS

    for kind, steps in (("ddpm", 20), ("ddim", 10), ("dpmpp", 10)):
        out = SAMPLERS.get(kind)(den, torch.randn(64, 2), steps, generator=torch.Generator().manual_seed(0))
        assert torch.isfinite(out).all()
    bound = run.method.elbo(run.parts, torch.randn(16, 2, dtype=torch.float64), torch.Generator().manual_seed(0))
    assert torch.isfinite(bound["elbo"]).all()
    # killed after 17 EMA updates (checkpoint at 10), resumed: the same weights of both parts, bit for bit
    train_killed_at(spec, data, tmp_path / "again", 17, monkeypatch)
    assert train(spec, data, tmp_path / "again")["resumed_from_step"] == 10
    assert_same_parts(tmp_path / "run", tmp_path / "again", ("denoiser", "gamma"))


def test_stratified_elbo_is_the_full_sum_in_expectation():
    """100 strata of 10 steps: the same expectation as all 999 steps (within 4 combined standard errors)."""
    schedule = make_schedule({"kind": "linear", "T": 1000})
    eps_star = exact_eps(schedule)

    x0 = S * torch.randn(3000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = ddpm_elbo(eps_star, schedule, x0, torch.Generator().manual_seed(2), model_dtype=torch.float64, strata=100)
    elbo = out["elbo"] / 2
    se = float(elbo.std()) / math.sqrt(len(elbo))
    assert abs(float(elbo.mean()) - expected_ddpm_elbo(schedule)) < 4 * se
