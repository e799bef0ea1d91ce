"""Probability-flow ODE likelihoods (ttdm.analysis.likelihood) against closed forms: Gaussian data, mixtures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ttdm.analysis.likelihood import divergence, mixture_nll, nll, time_of_gamma
from ttdm.data.mixture import GaussianMixture
from ttdm.schedules import LinearGamma, cosine_schedule, linear_schedule

MU = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
S = 0.6


def gaussian_eps(schedule, mu: torch.Tensor, s: float):  # type: ignore[no-untyped-def]
    """The exact ε* of N(μ, s² I) data: ε*(x, t) = σ (x − α μ)/(α² s² + σ²) (Tweedie; differentiable in x)."""

    def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        alpha, sigma = schedule.alpha_sigma_at(t.detach().to(torch.float64).cpu())
        alpha, sigma = alpha.to(x)[:, None], sigma.to(x)[:, None]
        return sigma * (x - alpha * mu.to(x)) / (alpha**2 * s**2 + sigma**2)

    return eps


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, std: float) -> torch.Tensor:
    """−log N(x; mean, std² I)/D per row."""
    return -torch.distributions.Normal(mean, std).log_prob(x).sum(dim=1) / x.shape[1]


SCHEDULES = {"linear": linear_schedule, "cosine": cosine_schedule, "vdm": LinearGamma}


@pytest.mark.parametrize("schedule_name", sorted(SCHEDULES))
@pytest.mark.parametrize("solver", ["rk4", "dopri5"])
def test_gaussian_nll_equals_the_true_nll(schedule_name: str, solver: str) -> None:
    """The issue's must-show: with the exact ε* the ODE NLL of N(μ, s² I) data is its true NLL within 1 %."""
    schedule = SCHEDULES[schedule_name]()
    x0 = MU + S * torch.randn(400, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    result = nll(gaussian_eps(schedule, MU, S), schedule, x0, solver=solver, steps=50)
    true = gaussian_nll(x0, MU, S)
    assert result["nll"] == pytest.approx(float(true.mean()), rel=0.01)
    assert result["bpd"] == pytest.approx(result["nll"] / math.log(2))
    assert result["nll_per_point"].shape == (400,) and result["x1"].shape == (400, 3)
    assert result["exact_divergence"] is True and result["n_probes"] is None and result["dim"] == 3
    assert result["t_min"] == (1e-5 if schedule_name == "vdm" else 1e-3)
    if solver == "rk4":
        assert result["nfe"] == 4 * 50 and result["steps"] == 50 and result["rtol"] is None
    else:
        assert result["nfe"] == 6 * result["steps"] + 6 * result["rejected"] + 2 and result["rtol"] == 1e-5


@pytest.mark.parametrize("schedule_name", ["linear", "vdm"])
def test_flow_transports_the_exact_densities(schedule_name: str) -> None:
    """Sharper than the prior approximation: log p_{t_min}(x_0) = log p_1(x_1) + ∫ ∇·f̃ dt with the exact Gaussian
    marginals p_t = N(α μ, (α² s² + σ²) I) at both ends, point by point (the solver's error only)."""
    schedule = SCHEDULES[schedule_name]()
    x0 = MU + S * torch.randn(50, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    result = nll(gaussian_eps(schedule, MU, S), schedule, x0, solver="dopri5", rtol=1e-8, atol=1e-8)
    dim = 3
    log_prior = -0.5 * (result["x1"] ** 2).sum(1) - 0.5 * dim * math.log(2 * math.pi)
    integral = -dim * result["nll_per_point"] - log_prior

    def marginal_logp(x: torch.Tensor, t: float) -> torch.Tensor:
        alpha, sigma = (float(v) for v in schedule.alpha_sigma_at(torch.tensor(t, dtype=torch.float64)))
        return -dim * gaussian_nll(x, alpha * MU, math.sqrt(alpha**2 * S**2 + sigma**2))

    lhs = marginal_logp(x0, result["t_min"])
    rhs = marginal_logp(result["x1"], 1.0) + integral
    torch.testing.assert_close(lhs, rhs, rtol=0, atol=1e-6)


def test_hutchinson_matches_the_exact_divergence() -> None:
    """Hutchinson's estimator is unbiased: many probes approach the exact trace of a dense Jacobian."""
    torch.manual_seed(0)
    dim = 5
    net = torch.nn.Sequential(torch.nn.Linear(dim + 1, 32), torch.nn.Tanh(), torch.nn.Linear(32, dim)).double()

    def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return net(torch.cat([x, t[:, None]], dim=1))

    x = torch.randn(6, dim, dtype=torch.float64)
    t = torch.full((6,), 0.3, dtype=torch.float64)
    value, exact = divergence(eps, x, t)
    jac = torch.func.vmap(torch.func.jacrev(lambda xi, ti: eps(xi[None], ti[None])[0]))(x, t)  # (6, D, D)
    torch.testing.assert_close(exact, torch.diagonal(jac, dim1=1, dim2=2).sum(-1))
    torch.testing.assert_close(value, eps(x, t).detach())
    gen = torch.Generator().manual_seed(0)
    for probes in (
        torch.randint(0, 2, (5_000, 6, dim), generator=gen).double() * 2 - 1,
        torch.randn(5_000, 6, dim, generator=gen, dtype=torch.float64),
    ):
        _, estimate = divergence(eps, x, t, probes)
        scale = torch.linalg.matrix_norm(jac).max()  # std of one probe ≤ √2 ‖J‖_F
        assert (estimate - exact).abs().max() < 5 * math.sqrt(2) * scale / math.sqrt(5_000)


def test_hutchinson_nll_agrees_with_the_exact_nll() -> None:
    """For isotropic Gaussian data ∂ε*/∂x = c(t) I, so Rademacher probes (vᵀv = D) are exact and Gaussian probes
    unbiased; in D = 10 (above the exact-divergence default) both agree with the exact NLL."""
    dim = 10
    mu = torch.linspace(-1, 1, dim, dtype=torch.float64)
    schedule = linear_schedule()
    x0 = mu + 0.5 * torch.randn(300, dim, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    eps = gaussian_eps(schedule, mu, 0.5)
    exact = nll(eps, schedule, x0, exact_divergence=True, steps=20)
    rademacher = nll(eps, schedule, x0, n_probes=2, steps=20, generator=torch.Generator().manual_seed(0))
    assert rademacher["exact_divergence"] is False and rademacher["n_probes"] == 2
    torch.testing.assert_close(rademacher["nll_per_point"], exact["nll_per_point"], rtol=0, atol=1e-10)
    gaussian = nll(eps, schedule, x0, probe="gaussian", steps=20, generator=torch.Generator().manual_seed(0))
    assert gaussian["probe"] == "gaussian"
    assert abs(gaussian["nll"] - exact["nll"]) < 4 * gaussian["nll_std_err"]
    assert exact["nll"] == pytest.approx(float(gaussian_nll(x0, mu, 0.5).mean()), rel=0.01)


def mixture_eps(mixture: GaussianMixture, schedule):  # type: ignore[no-untyped-def]
    """ε*(x, t) = −σ ∇log p_t(x) of the mixture, differentiable in x (``GaussianMixture.eps_model`` detaches x)."""

    def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        lam = schedule.logsnr_at(t.detach().to(torch.float64).cpu())
        alpha, sigma = torch.sigmoid(2 * lam).sqrt(), torch.sigmoid(-2 * lam).sqrt()
        return (-sigma[:, None] * mixture._diffused_score(x.to(torch.float64), alpha, sigma)).to(x.dtype)

    return eps


def ring(k: int = 8, radius: float = 2.0, std: float = 0.3) -> GaussianMixture:
    angles = 2 * np.pi * np.arange(k) / k
    means = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return GaussianMixture(np.full(k, 1.0 / k), means, np.full((k, 2), std))


@pytest.mark.parametrize("solver", ["rk4", "dopri5"])
def test_mixture_nll_equals_the_true_nll(solver: str) -> None:
    """A 2-D mixture's exact ε* gives the mixture's true NLL (within 0.1 %), and a worse ε gives a higher NLL."""
    mixture = ring()
    schedule = linear_schedule()
    x0 = torch.from_numpy(mixture.sample(300, np.random.default_rng(0)))
    eps = mixture_eps(mixture, schedule)
    t = torch.full((300,), 0.37, dtype=torch.float64)
    torch.testing.assert_close(eps(x0, t), mixture.eps_model(schedule)(x0, t))  # the same ε* as the package's
    result = nll(eps, schedule, x0, solver=solver, steps=50)
    true = float(-mixture.log_prob(x0).mean() / 2)
    assert result["nll"] == pytest.approx(true, rel=1e-3)
    blurred = GaussianMixture(mixture.weights, mixture.means, mixture.stds * 2)
    worse = nll(mixture_eps(blurred, schedule), schedule, x0, solver=solver, steps=50)
    assert worse["nll"] > result["nll"] + 0.1
    assert worse["nll"] == pytest.approx(float(-blurred.log_prob(x0).mean() / 2), rel=1e-3)


def test_sharp_mixture_floor_is_the_density_at_t_min() -> None:
    """25 Gaussians with std 0.02 (25gaussians' sharpness): σ(1/T) = 0.01 is not negligible, so the exact ε* reaches
    −log p_{t_min} (``mixture_nll``'s "nll"), not −log p_0 ("nll_data")."""
    grid = np.arange(-2, 3, dtype=np.float64) / 1.414
    means = np.stack(np.meshgrid(grid, grid, indexing="ij"), axis=-1).reshape(25, 2)
    mixture = GaussianMixture(np.full(25, 1 / 25), means, np.full((25, 2), 0.02))
    schedule = linear_schedule()
    x0 = torch.from_numpy(mixture.sample(200, np.random.default_rng(3)))
    floor = mixture_nll(mixture, schedule, x0)
    assert floor["t_min"] == 1e-3 and floor["nll_per_point"].shape == (200,)
    # per dimension E[−log N(x; μ, s² + σ²)] − E[−log N(x; μ, s²)] = ½ log(1 + σ²/s²) − ½ σ²/(s² + σ²) ≈ 0.012
    assert floor["nll"] > floor["nll_data"] + 0.008
    result = nll(mixture_eps(mixture, schedule), schedule, x0, solver="dopri5")
    assert result["nll"] == pytest.approx(floor["nll"], abs=1e-3)
    torch.testing.assert_close(result["nll_per_point"], floor["nll_per_point"], rtol=0, atol=1e-2)


def test_a_model_batches_and_dtypes() -> None:
    """An (untrained) network of the package: batches give the same NLL; the state may be float64 around float32
    calls."""
    from ttdm.models import MODELS

    torch.manual_seed(0)
    model = MODELS.get("mlp")(2, None).eval()
    schedule = linear_schedule(T=100)
    x0 = torch.randn(64, 2)
    whole = nll(model, schedule, x0, steps=10)
    parts = nll(model, schedule, x0, steps=10, batch_size=16)
    assert parts["nfe"] == 4 * whole["nfe"] == 4 * 40
    torch.testing.assert_close(parts["nll_per_point"], whole["nll_per_point"], rtol=0, atol=1e-6)
    assert math.isfinite(whole["nll"]) and whole["t_min"] == 0.01
    as32 = nll(model, schedule, x0.double(), steps=10, model_dtype=torch.float32)  # float64 state, float32 calls
    torch.testing.assert_close(as32["nll_per_point"], whole["nll_per_point"], rtol=0, atol=1e-4)


def test_refusals() -> None:
    schedule = linear_schedule(T=100)
    eps = gaussian_eps(schedule, MU, S)
    x0 = MU + torch.zeros(4, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="solver"):
        nll(eps, schedule, x0, solver="euler")
    with pytest.raises(ValueError, match="t_min"):
        nll(eps, schedule, x0, t_min=0.0)
    with pytest.raises(ValueError, match="steps"):
        nll(eps, schedule, x0, steps=0)
    with pytest.raises(ValueError, match="n_probes"):
        nll(eps, schedule, x0, exact_divergence=False, n_probes=0)
    with pytest.raises(ValueError, match="non-finite"):
        nll(eps, schedule, x0 * float("nan"))
    with pytest.raises(ValueError, match="without a graph"):  # a model that detaches its input has no divergence
        nll(lambda x, t: eps(x.detach(), t), schedule, x0, steps=2)


def test_the_mixtures_own_eps_model_gives_its_nll() -> None:
    """GaussianMixture.eps_model is differentiable, so the exact ε* of a dataset's mixture gives the floor (on a
    schedule that ends in noise: the prior term assumes x_1 ~ N(0, I))."""
    schedule = linear_schedule(T=100, beta_end=0.2)
    mixture = GaussianMixture(np.ones(1), np.full((1, 3), 0.5), np.full((1, 3), 0.8))
    x0 = torch.from_numpy(mixture.sample(64, np.random.default_rng(0)))
    out = nll(mixture.eps_model(schedule), schedule, x0, steps=50)
    true = -float(mixture.log_prob(x0).mean()) / 3
    assert abs(out["nll"] - true) / abs(true) < 0.01


@pytest.mark.parametrize("schedule", [linear_schedule(T=50), cosine_schedule(T=20), LinearGamma(-10.0, 6.0)])
def test_time_of_gamma_inverts_the_schedule(schedule) -> None:  # type: ignore[no-untyped-def]
    first = 1.0 / schedule.T if schedule.T else 0.0
    for t in np.linspace(first, 1.0, 37):
        gamma = float(schedule.gamma(torch.tensor(t, dtype=torch.float64)))
        assert time_of_gamma(schedule, gamma) == pytest.approx(t, abs=1e-12)
    low = float(schedule.gamma(torch.tensor(first, dtype=torch.float64))) - 1.0
    high = float(schedule.gamma(torch.tensor(1.0, dtype=torch.float64))) + 1.0
    assert time_of_gamma(schedule, low) == pytest.approx(first) and time_of_gamma(schedule, high) == pytest.approx(1.0)


@pytest.mark.parametrize("basis", ["legendre", "chebyshev", "bspline"])
@pytest.mark.parametrize("prior", ["gaussian", "none"])
@pytest.mark.parametrize("layout", ["per_output", "shared"])
def test_the_tensor_trains_own_divergence_equals_autograds(basis: str, prior: str, layout: str) -> None:
    """TTNoise.eps_and_divergence (φ' at the diagonal mode, one contraction) against D backward passes, with points
    inside the basis domain and clamped outside it."""
    from ttdm.analysis.likelihood import autograd_divergence
    from ttdm.models import MODELS

    torch.manual_seed(0)
    model = MODELS.get("tt")(3, None, rank=3, degree=6, basis=basis, prior=prior, layout=layout, dtype="float64")
    sigma = torch.linspace(0.01, 0.99, 1000, dtype=torch.float64)
    model.fit_domain(torch.randn(200, 3, dtype=torch.float64), torch.sqrt(1 - sigma**2), sigma)
    with torch.no_grad():
        for core in model.cores:
            core.add_(0.3 * torch.randn_like(core))
    x = torch.cat([torch.randn(64, 3, dtype=torch.float64), 40 * torch.randn(8, 3, dtype=torch.float64)])
    t = torch.rand(72, dtype=torch.float64)
    eps, div = divergence(model, x, t)
    eps_ref, div_ref = autograd_divergence(model, x, t)
    assert torch.allclose(eps, eps_ref, atol=1e-12)
    assert torch.allclose(div, div_ref, rtol=1e-9, atol=1e-9)
    assert div.abs().max() > 1e-3  # the test sees a divergence, not two zeros
