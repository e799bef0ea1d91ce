"""GaussianMixture against independent references: scipy densities, grid integrals, finite differences, closed forms."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.stats
import torch

from ttdm.data.mixture import GaussianMixture
from ttdm.schedules import linear_schedule


def random_mixture(rng: np.random.Generator, k: int = 3, d: int = 2) -> GaussianMixture:
    """K components with unequal weights, spread means and unequal per-coordinate stds."""
    w = rng.uniform(0.5, 2.0, k)
    return GaussianMixture(w / w.sum(), rng.normal(0, 2, (k, d)), rng.uniform(0.3, 1.2, (k, d)))


def fd_grad(f, x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central finite differences of a row-wise scalar function f: (B, D) -> (B,).  Error O(h²)."""
    grad = np.empty_like(x)
    for j in range(x.shape[1]):
        e = np.zeros(x.shape[1])
        e[j] = h
        grad[:, j] = (f(x + e) - f(x - e)) / (2 * h)
    return grad


def mixture_moments(m: GaussianMixture) -> tuple[np.ndarray, np.ndarray]:
    """Mean Σ w μ and covariance Σ w (diag s² + μ μᵀ) − mean meanᵀ of a diagonal mixture."""
    mean = m.weights @ m.means
    second = np.einsum("k,kd,ke->de", m.weights, m.means, m.means) + np.diag(m.weights @ m.stds**2)
    return mean, second - np.outer(mean, mean)


def test_log_prob_integrates_to_one_on_a_grid():
    m = random_mixture(np.random.default_rng(0))
    lo = (m.means - 7 * m.stds).min(axis=0)
    hi = (m.means + 7 * m.stds).max(axis=0)
    g0, g1 = np.linspace(lo[0], hi[0], 601), np.linspace(lo[1], hi[1], 601)
    xx = np.stack(np.meshgrid(g0, g1, indexing="ij"), axis=-1).reshape(-1, 2)  # (601², 2)
    total = np.exp(m.log_prob(xx)).sum() * (g0[1] - g0[0]) * (g1[1] - g1[0])
    assert total == pytest.approx(1.0, abs=1e-4)  # Riemann sum of a smooth density, tails beyond 7σ negligible


def test_single_component_matches_scipy():
    rng = np.random.default_rng(1)
    mean, std = rng.normal(size=3), rng.uniform(0.5, 2.0, 3)
    m = GaussianMixture(np.ones(1), mean[None], std[None])
    x = rng.normal(size=(20, 3)) * 3
    ref = scipy.stats.multivariate_normal(mean, np.diag(std**2)).logpdf(x)
    np.testing.assert_allclose(m.log_prob(x), ref, rtol=1e-12, atol=1e-12)


def test_log_prob_matches_scipy_mixture_sum():
    rng = np.random.default_rng(2)
    m = random_mixture(rng, k=4, d=3)
    x = rng.normal(size=(30, 3)) * 2
    ref = np.log(sum(w * scipy.stats.multivariate_normal(mu, np.diag(s**2)).pdf(x)
                     for w, mu, s in zip(m.weights, m.means, m.stds)))
    np.testing.assert_allclose(m.log_prob(x), ref, rtol=1e-10)


def test_far_points_stay_finite():
    """logsumexp and a max-subtracted softmax: no underflow to log 0 or 0/0 a thousand stds away."""
    m = random_mixture(np.random.default_rng(3))
    x = np.array([[1e3, -1e3], [5e2, 0.0]])
    assert np.isfinite(m.log_prob(x)).all() and np.isfinite(m.score(x)).all()
    # so far out, the component of largest log w_k + log N(x; μ_k, s_k²) takes all the weight: its score is the score
    log_joint = np.log(m.weights) - (0.5 * ((x[:, None] - m.means) / m.stds) ** 2 + np.log(m.stds)).sum(axis=2)
    k = np.argmax(log_joint, axis=1)  # (B,)
    np.testing.assert_allclose(m.score(x), (m.means[k] - x) / m.stds[k] ** 2, rtol=1e-10)


@pytest.mark.parametrize("alpha, sigma", [(1.0, 0.0), (0.8, 0.6), (0.1, 0.995)])
def test_score_matches_finite_differences_of_the_diffused_log_prob(alpha, sigma):
    rng = np.random.default_rng(4)
    m = random_mixture(rng, k=3, d=3).diffused(alpha, sigma)
    x = rng.normal(size=(10, 3)) * 2
    np.testing.assert_allclose(m.score(x), fd_grad(m.log_prob, x), rtol=1e-6, atol=1e-7)


def test_diffused_is_the_law_of_the_forward_process():
    """Moments of α x_0 + σ ε (x_0 sampled) against the moments of diffused(α, σ), within 5 standard errors."""
    rng = np.random.default_rng(5)
    m = random_mixture(rng, k=3, d=2)
    alpha, sigma, n = 0.6, 0.8, 200_000
    xt = alpha * m.sample(n, rng) + sigma * rng.standard_normal((n, 2))
    mean, cov = mixture_moments(m.diffused(alpha, sigma))
    assert np.abs(xt.mean(axis=0) - mean).max() < 5 * np.sqrt(cov.diagonal().max() / n)
    np.testing.assert_allclose(np.cov(xt.T), cov, atol=0.03)


def test_eps_star_matches_finite_differences_per_row():
    """ε*(x, i) = −σ_i ∇ log p_i(x), each row with its own step i; p_i = diffused(α_i, σ_i)."""
    rng = np.random.default_rng(6)
    m = random_mixture(rng, k=3, d=2)
    schedule = linear_schedule(T=1000)
    i = np.array([0, 10, 250, 500, 999, 37])
    x = rng.normal(size=(6, 2)) * 2
    eps = m.eps_star(x, i, schedule)
    alpha, sigma = (v.numpy() for v in schedule.alpha_sigma(torch.as_tensor(i)))
    for b in range(6):
        p_i = m.diffused(float(alpha[b]), float(sigma[b]))
        ref = -sigma[b] * fd_grad(p_i.log_prob, x[b : b + 1], h=1e-6)[0]
        np.testing.assert_allclose(eps[b], ref, rtol=1e-5, atol=1e-7)


def test_eps_star_closed_form_for_a_centred_gaussian():
    """For N(0, s² I): p_i = N(0, (α² s² + σ²) I), so ε* = σ x /(α² s² + σ²); i = −1 (no noise) gives 0."""
    s, d = 0.7, 4
    m = GaussianMixture(np.ones(1), np.zeros((1, d)), np.full((1, d), s))
    schedule = linear_schedule(T=100)
    rng = np.random.default_rng(7)
    i = torch.tensor([0, 5, 50, 99, 20, -1])
    x = torch.from_numpy(rng.normal(size=(6, d)))
    alpha, sigma = schedule.alpha_sigma(i)
    ref = sigma[:, None] * x / (alpha[:, None] ** 2 * s**2 + sigma[:, None] ** 2)
    torch.testing.assert_close(m.eps_star(x, i, schedule), ref, rtol=1e-12, atol=1e-14)


def test_eps_star_keeps_the_array_kind_and_dtype():
    m = random_mixture(np.random.default_rng(8))
    schedule = linear_schedule(T=50)
    x32 = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    out = m.eps_star(x32, torch.tensor([1, 2, 3, 49]), schedule)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == (4, 2)
    out_np = m.eps_star(x32.double().numpy(), np.array([1, 2, 3, 49]), schedule)
    assert isinstance(out_np, np.ndarray) and out_np.dtype == np.float64
    np.testing.assert_allclose(out.numpy(), out_np, rtol=1e-5, atol=1e-6)


def test_eps_model_on_grid_times_equals_eps_star():
    """model(x, t) with t = (i + 1)/T reproduces eps_star at step i (λ interpolation is exact on the grid)."""
    m = random_mixture(np.random.default_rng(9))
    schedule = linear_schedule(T=200)
    model = m.eps_model(schedule)
    i = torch.tensor([0, 7, 99, 150, 199])
    x = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(model(x, schedule.time(i)), m.eps_star(x, i, schedule), rtol=1e-5, atol=1e-6)


def test_affine_is_the_change_of_variables():
    """log p_Y(y) = log p_X(x) + Σ log scale for y = (x − shift)/scale (x = shift + scale·y, |dx/dy| = Π scale)."""
    rng = np.random.default_rng(10)
    m = random_mixture(rng, k=2, d=3)
    shift, scale = rng.normal(size=3), rng.uniform(0.5, 3.0, 3)
    y_mix = m.affine(shift, scale)
    x = rng.normal(size=(15, 3)) * 2
    np.testing.assert_allclose(y_mix.log_prob((x - shift) / scale), m.log_prob(x) + np.log(scale).sum(), rtol=1e-12)
    with pytest.raises(ValueError, match="scale must be positive"):
        m.affine(shift, -scale)


def test_sample_moments_match_the_mixture():
    rng = np.random.default_rng(11)
    m = random_mixture(rng, k=4, d=3)
    n = 200_000
    x = m.sample(n, rng)
    mean, cov = mixture_moments(m)
    assert np.abs(x.mean(axis=0) - mean).max() < 5 * np.sqrt(cov.diagonal().max() / n)
    np.testing.assert_allclose(np.cov(x.T), cov, atol=0.05)


def test_to_dict_round_trip_through_json():
    m = random_mixture(np.random.default_rng(12), k=3, d=4)
    back = GaussianMixture.from_dict(json.loads(json.dumps(m.to_dict())))
    for name in ("weights", "means", "stds"):
        np.testing.assert_array_equal(getattr(back, name), getattr(m, name))
    with pytest.raises(ValueError, match="lacks"):
        GaussianMixture.from_dict({"weights": [1.0]})


@pytest.mark.parametrize(
    "weights, means, stds, message",
    [
        ([0.5, 0.6], [[0.0], [1.0]], [[1.0], [1.0]], "sum to 1"),
        ([0.5, 0.5], [[0.0], [1.0]], [[1.0], [0.0]], "stds must be positive"),
        ([1.0], [[0.0, 1.0]], [[1.0]], "shapes"),
        ([1.0], [[np.nan]], [[1.0]], "finite"),
    ],
)
def test_bad_parameters_are_refused(weights, means, stds, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(np.array(weights), np.array(means), np.array(stds))
