"""Tensor trains: bases against numpy/scipy/teneva, TT algebra against dense tensors and teneva, ALS monotonicity,
Riemannian projection and retraction properties, and the TT noise model."""

from __future__ import annotations

import numpy as np
import pytest
import teneva
import torch
from scipy.interpolate import BSpline

from ttdm.data.mixture import GaussianMixture
from ttdm.models import MODELS
from ttdm.schedules import linear_schedule
from ttdm.tt import algebra, als, bases, riemannian



@pytest.fixture(autouse=True)
def float64():
    """Every tensor of these tests in float64 (restored afterwards: the default dtype is global)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def features(points: torch.Tensor, sizes: list[int], basis: str = "legendre") -> list[torch.Tensor]:
    return [bases.get_basis(basis)(points[:, k], n) for k, n in enumerate(sizes)]


# ----------------------------------------------------------------------------------------------------------------
# Bases


def test_legendre_matches_numpy_and_is_orthonormal():
    x = torch.linspace(-1, 1, 101, dtype=torch.float64)
    ours = bases.legendre(x, 12).numpy()
    ref = np.polynomial.legendre.legvander(x.numpy(), 11) * np.sqrt(2 * np.arange(12) + 1)
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    nodes, weights = np.polynomial.legendre.leggauss(20)
    phi = bases.legendre(torch.from_numpy(nodes), 12).numpy()
    np.testing.assert_allclose(phi.T @ (phi * weights[:, None] / 2), np.eye(12), atol=1e-12)


def test_chebyshev_matches_teneva():
    x = torch.linspace(-1, 1, 37, dtype=torch.float64)
    ref = teneva.func_basis(x.numpy()[:, None], 9)[:, :, 0].T  # (m, N, d) -> (N, m)
    np.testing.assert_allclose(bases.chebyshev(x, 9).numpy(), ref, atol=1e-12)


@pytest.mark.parametrize("m", [4, 7, 12])
def test_bspline_matches_scipy_and_sums_to_one(m):
    x = torch.linspace(-1, 1, 201, dtype=torch.float64)
    ours = bases.bspline(x, m).numpy()
    ref = BSpline.design_matrix(x.numpy(), bases.bspline_knots(m).numpy(), 3).toarray()
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    np.testing.assert_allclose(ours.sum(1), 1.0, atol=1e-12)
    with pytest.raises(ValueError, match="at least 4"):
        bases.bspline(x, 3)


def test_unknown_basis_names_the_allowed():
    with pytest.raises(ValueError, match="allowed: bspline, chebyshev, legendre"):
        bases.get_basis("fourier")


# ----------------------------------------------------------------------------------------------------------------
# Algebra


def test_values_match_dense_contraction_and_teneva():
    sizes = [5, 4, 6]
    cores = algebra.random_cores(3, sizes, algebra.capped_ranks(sizes, 3), gen())
    pts = torch.rand(20, 3, generator=gen(1)) * 2 - 1
    feats = features(pts, sizes, "chebyshev")
    dense = algebra.full(cores)
    ref = torch.einsum("pijk,bi,bj,bk->pb", dense, *feats)
    torch.testing.assert_close(algebra.values(cores, feats), ref)
    for p, tt in enumerate(algebra.to_teneva(cores)):
        np.testing.assert_allclose(teneva.func_get(pts.numpy(), tt, -1, 1), ref[p].numpy(), atol=1e-12)
        np.testing.assert_allclose(teneva.full(tt), dense[p].numpy(), atol=1e-12)
    back = algebra.from_teneva(algebra.to_teneva(cores))
    assert all(torch.equal(a, b) for a, b in zip(back, cores))
    torch.testing.assert_close(algebra.norm(cores), dense.flatten(1).norm(dim=1))


def test_orthogonalisation_and_rounding():
    sizes = [4, 5, 3, 4]
    ranks = algebra.capped_ranks(sizes, 3)
    cores = algebra.random_cores(2, sizes, ranks, gen())
    dense = algebra.full(cores)
    left, right = algebra.left_orthogonalize(cores), algebra.right_orthogonalize(cores)
    torch.testing.assert_close(algebra.full(left), dense)
    torch.testing.assert_close(algebra.full(right), dense)
    for c in left[:-1]:
        u = c.reshape(c.shape[0], -1, c.shape[-1])
        torch.testing.assert_close(u.transpose(1, 2) @ u, torch.eye(u.shape[-1]).expand(2, -1, -1))
    torch.testing.assert_close(algebra.full(algebra.round_to_ranks(cores, ranks)), dense)
    low = algebra.round_to_ranks(cores, [2, 2, 2])
    assert [c.shape[-1] for c in low[:-1]] == [2, 2, 2]
    # TT-SVD is quasi-optimal: no worse than √(d−1) times the best rank-2 error, bounded by teneva's own rounding
    ref = [teneva.full(teneva.truncate(tt, r=2)) for tt in algebra.to_teneva(cores)]
    for p in range(2):
        ours = (algebra.full(low)[p] - dense[p]).norm()
        theirs = np.linalg.norm(ref[p] - dense[p].numpy())
        assert ours <= theirs * 1.0001 + 1e-12


# ----------------------------------------------------------------------------------------------------------------
# Riemannian geometry


@pytest.fixture
def manifold_point():
    sizes = [3, 4, 3, 2]
    ranks = algebra.capped_ranks(sizes, 2)
    cores = algebra.random_cores(2, sizes, ranks, gen(3))
    return sizes, ranks, cores, riemannian.point(cores)


def test_tangent_projection_is_idempotent_and_orthogonal(manifold_point):
    sizes, _, _, x = manifold_point
    z = torch.randn(2, *sizes, generator=gen(4))
    pz = riemannian.tangent_full(x, riemannian.project_full(x, z))
    ppz = riemannian.tangent_full(x, riemannian.project_full(x, pz))
    torch.testing.assert_close(ppz, pz)
    inner = ((z - pz) * pz).flatten(1).sum(1)
    assert inner.abs().max() < 1e-10 * z.flatten(1).norm(dim=1).max() ** 2
    # the point itself lies in its tangent space
    xd = algebra.full(x.U)
    torch.testing.assert_close(riemannian.tangent_full(x, riemannian.project_full(x, xd)), xd)
    # core inner products are the tangent vectors' inner products (gauge)
    d = riemannian.project_full(x, z)
    torch.testing.assert_close(riemannian.inner(d, d), (pz**2).flatten(1).sum(1))


def test_rank1_sum_projection_equals_dense_projection(manifold_point):
    sizes, _, _, x = manifold_point
    pts = torch.rand(7, 4, generator=gen(5)) * 2 - 1
    feats = features(pts, sizes)
    w = torch.randn(2, 7, generator=gen(6))
    z = torch.einsum("pb,bi,bj,bk,bl->pijkl", w, *feats)
    for a, b in zip(riemannian.project_rank1_sum(x, feats, w), riemannian.project_full(x, z)):
        torch.testing.assert_close(a, b)


def test_retraction_keeps_rank_and_is_second_order(manifold_point):
    sizes, ranks, cores, x = manifold_point
    xi = riemannian.project_full(x, torch.randn(2, *sizes, generator=gen(7)))
    dense, tangent = algebra.full(cores), riemannian.tangent_full(x, xi)
    errors = []
    for alpha in (0.01, 0.005, 0.0025):
        new = riemannian.step(x, xi, alpha, ranks)
        assert [c.shape[-1] for c in new[:-1]] == ranks
        errors.append((algebra.full(new) - (dense - alpha * tangent)).flatten(1).norm(dim=1))
    for big, small in zip(errors, errors[1:]):
        ratio = big / small
        assert ((ratio > 3.0) & (ratio < 5.0)).all(), ratio  # halving α quarters the error: O(α²)


# ----------------------------------------------------------------------------------------------------------------
# Optimisers on a small noiseless problem


@pytest.fixture
def regression():
    sizes = [6, 5, 4]
    ranks = algebra.capped_ranks(sizes, 3)
    pts = torch.rand(400, 3, generator=gen(8)) * 2 - 1
    feats = features(pts, sizes)
    y = algebra.values(algebra.random_cores(2, sizes, ranks, gen(9)), feats)  # exactly representable
    start = algebra.random_cores(2, sizes, ranks, gen(10))
    return sizes, ranks, pts, feats, y, start


def test_als_sweeps_never_increase_the_regularised_loss(regression):
    _, _, _, feats, y, cores = regression
    lam = 1e-3
    values = [float(als.objective(cores, feats, y, lam))]
    for _ in range(6):
        cores = als.sweep(cores, feats, y, lam)
        values.append(float(als.objective(cores, feats, y, lam)))
    assert all(b <= a * (1 + 1e-12) for a, b in zip(values, values[1:])), values
    assert values[-1] < 0.01 * values[0]


def test_teneva_als_and_torch_als_both_fit_a_low_rank_target(regression):
    sizes, _, pts, feats, y, start = regression
    basis = [lambda v, n=n: bases.legendre(v, n) for n in sizes]
    torch_cores, teneva_cores = start, start
    for _ in range(10):
        torch_cores = als.sweep(torch_cores, feats, y, 1e-8)
        teneva_cores = als.sweep_teneva(teneva_cores, pts, basis, y, 1e-8)
    for cores in (torch_cores, teneva_cores):
        assert float(riemannian.mse(cores, feats, y)) < 1e-4 * float((y**2).mean())


def test_riemannian_descent_lowers_the_loss(regression):
    _, ranks, _, feats, y, cores = regression
    losses = [float(riemannian.mse(cores, feats, y))]
    alpha = 1.0
    for _ in range(20):
        cores, alpha, loss = riemannian.descent(cores, feats, y, ranks, 2 * alpha)
        losses.append(loss)
    assert all(b <= a for a, b in zip(losses, losses[1:]))  # Armijo: monotone
    assert losses[-1] < 0.05 * losses[0]


# ----------------------------------------------------------------------------------------------------------------
# The model


@pytest.mark.parametrize("layout", ["per_output", "shared"])
def test_model_matches_teneva_and_counts_parameters(layout):
    torch.manual_seed(0)
    model = MODELS.get("tt")(3, None, rank=3, degree=5, basis="chebyshev", layout=layout, dtype="float64",
                             prior="none")
    n_params = sum(p.numel() for p in model.parameters())
    expected = algebra.capped_ranks(model.sizes, 3)
    assert model.ranks == expected
    bounds = [1, *expected, 1]
    assert n_params == sum(model.cores[k].shape[0] * bounds[k] * n * bounds[k + 1] for k, n in enumerate(model.sizes))
    x = (torch.rand(9, 3, generator=gen(11)) * 1.8 - 0.9)  # inside the default domain [−1, 1]
    t = torch.rand(9, generator=gen(12))
    out = model(x, t).detach().numpy()
    z = torch.cat([model.scaled(x), (2 * t - 1)[:, None]], 1).numpy()
    ref = np.stack([teneva.func_get(z, tt, -1, 1) for tt in model.to_teneva()], 1)
    np.testing.assert_allclose(out, ref, atol=1e-12)


def test_model_clamps_outside_its_domain_instead_of_zeroing():
    torch.manual_seed(0)
    model = MODELS.get("tt")(2, None, rank=2, degree=4, dtype="float64", prior="none")
    t = torch.full((2,), 0.5)
    far = model(torch.tensor([[5.0, 0.3], [-7.0, 0.3]]), t)
    edge = model(torch.tensor([[1.0, 0.3], [-1.0, 0.3]]), t)
    torch.testing.assert_close(far, edge)
    assert far.abs().min() > 0


def test_fit_domain_covers_the_forward_process_and_prior_is_exact_for_a_gaussian():
    schedule = linear_schedule(100)
    alpha, sigma = schedule.alpha_sigma(torch.arange(100))
    model = MODELS.get("tt")(2, None, rank=2, degree=4, dtype="float64", margin=4.0)
    x0 = torch.randn(500, 2, generator=gen(13))
    model.fit_domain(x0, alpha, sigma)
    lo = (alpha[:, None] * x0.min(0).values - 4 * sigma[:, None]).min(0).values
    hi = (alpha[:, None] * x0.max(0).values + 4 * sigma[:, None]).max(0).values
    torch.testing.assert_close(model.lo, lo)
    torch.testing.assert_close(model.hi, hi)
    # with zero cores the model is σ_t x, the exact ε* of N(0, I) data, at every grid time
    model.set_cores([torch.zeros_like(c) for c in model.cores])
    gauss = GaussianMixture(np.ones(1), np.zeros((1, 2)), np.ones((1, 2)))
    i = torch.randint(0, 100, (50,), generator=gen(14))
    x = torch.randn(50, 2, generator=gen(15))
    torch.testing.assert_close(model(x, schedule.time(i)), gauss.eps_star(x, i, schedule))


def test_bad_hyper_parameters_are_refused():
    with pytest.raises(ValueError, match="tt.layout: 'diagonal' is not allowed; allowed: per_output, shared"):
        MODELS.get("tt")(2, None, layout="diagonal")
    with pytest.raises(ValueError, match="minimum 4 of basis 'bspline'"):
        MODELS.get("tt")(2, None, basis="bspline", degree=3)
    with pytest.raises(ValueError, match="tt.basis: 'wavelet' is not allowed; allowed: bspline"):
        MODELS.get("tt")(2, None, basis="wavelet")
