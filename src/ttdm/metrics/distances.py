"""Distances between two point clouds: sliced and exact Wasserstein-2, unbiased RBF-MMD², energy distance.

Every metric takes model samples ``x: (N, D)`` and reference points ``ref: (M, D)`` (numpy, any float dtype; the
arithmetic is float64) and returns ``{name: value}``. The O(N M) metrics (``mmd``, ``energy``, ``w2``) first draw at
most ``max_points`` rows of each set without replacement with ``rng``, so their cost is bounded.  Each metric's options
are declared (``*Options``) and registered with it, so the config validation checks them without running it; scipy
is imported when a metric runs, not when the config is checked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ttdm.metrics import METRICS
from ttdm.options import option


def cdist(*args, **kwargs):  # type: ignore[no-untyped-def]
    """``scipy.spatial.distance.cdist``, imported on first use."""
    from scipy.spatial.distance import cdist as scipy_cdist

    return scipy_cdist(*args, **kwargs)


@dataclass(frozen=True)
class SWDOptions:
    n_projections: int = option(500, "random directions of the Monte-Carlo estimate", min=1)


@dataclass(frozen=True)
class MMDOptions:
    bandwidths: list[float] | None = option(None, "RBF bandwidths h (default: median distance x 0.5, 1, 2)", gt=0)
    max_points: int = option(2000, "rows of each set used at most (subsampled with the metric's rng)", min=2)

    def problems(self) -> list[tuple[str, str]]:
        """An empty list of bandwidths defines no kernel."""
        return [("bandwidths", "[] is empty; give positive numbers or leave it out")] if self.bandwidths == [] else []


@dataclass(frozen=True)
class MaxPointsOptions:
    max_points: int = option(2000, "rows of each set used at most (subsampled with the metric's rng)", min=2)

_PROJECTION_CHUNK = 128  # projections handled per block in `swd`, bounds memory at (N + M) * 128 floats


def subsample(a: np.ndarray, max_points: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``max_points`` rows of ``a: (N, D)`` drawn without replacement (``a`` itself when N ≤ max_points)."""
    if max_points < 2:
        raise ValueError(f"max_points={max_points!r} must be an integer ≥ 2")
    if len(a) <= max_points:
        return a
    return a[np.sort(rng.choice(len(a), size=max_points, replace=False))]


def random_directions(dim: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` directions uniform on the unit sphere S^{dim−1}, as columns: (dim, n) (POT's ``projections`` layout)."""
    theta = rng.standard_normal((dim, n))
    return theta / np.linalg.norm(theta, axis=0, keepdims=True)


def _w2_squared_1d(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Exact W2² between the empirical measures of the columns of ``u: (N, P)`` and ``v: (M, P)``: (P,).

    W2²(μ, ν) = ∫₀¹ (F_μ⁻¹(q) − F_ν⁻¹(q))² dq (1-D optimal transport; Peyré & Cuturi 2019, Computational OT,
    ch. 2). Both quantile functions are step functions with jumps at i/N and j/M; on each interval of the merged grid
    they are constant, so the integral is a finite sum. For N = M this is mean((sort u − sort v)²), the sorted matching.
    """
    n, m = len(u), len(v)
    grid = np.union1d(np.arange(1, n + 1) / n, np.arange(1, m + 1) / m)  # (G,) right ends, last = 1
    widths = np.diff(grid, prepend=0.0)  # (G,)
    mid = grid - widths / 2
    iu = np.minimum((mid * n).astype(np.int64), n - 1)  # quantile index of u on each interval
    iv = np.minimum((mid * m).astype(np.int64), m - 1)
    u_sorted, v_sorted = np.sort(u, axis=0), np.sort(v, axis=0)
    return widths @ (u_sorted[iu] - v_sorted[iv]) ** 2  # (G,) @ (G, P) -> (P,)


@METRICS.register("swd", options=SWDOptions)
def swd(
    x: np.ndarray, ref: np.ndarray, *, meta: dict, rng: np.random.Generator, n_projections: int = 500
) -> dict[str, float]:
    """Sliced Wasserstein-2 distance with ``n_projections`` random directions θ_l drawn from ``rng``.

    SW₂(μ, ν) = ( (1/L) Σ_l W2²(θ_l#μ, θ_l#ν) )^{1/2} (Bonneel et al. 2015), the Monte-Carlo estimate that
    ``ot.sliced_wasserstein_distance(x, ref, projections=θ, p=2)`` computes; each 1-D W2² is exact, also for N ≠ M
    (quantile functions, see ``_w2_squared_1d``). x: (N, D), ref: (M, D).
    """
    if n_projections < 1:
        raise ValueError(f"n_projections={n_projections!r} must be a positive integer")
    x, ref = np.asarray(x, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    theta = random_directions(x.shape[1], n_projections, rng)  # (D, L)
    total = 0.0
    for start in range(0, n_projections, _PROJECTION_CHUNK):
        block = theta[:, start : start + _PROJECTION_CHUNK]  # (D, l)
        total += float(_w2_squared_1d(x @ block, ref @ block).sum())  # (N, l), (M, l) -> (l,)
    return {"swd": float(np.sqrt(total / n_projections))}


def median_bandwidth(d2_xx: np.ndarray, d2_yy: np.ndarray, d2_xy: np.ndarray) -> float:
    """Median pairwise Euclidean distance of the pooled sample {x} ∪ {y}, from its squared-distance blocks.

    The pairs are those i < j within x, within y, and all (x_i, y_j). Returns 1.0 when the median is 0 (more than
    half of the pairs coincide), so that the kernel stays defined. d2_xx: (N, N), d2_yy: (M, M), d2_xy: (N, M).
    """
    pairs = np.concatenate(
        [d2_xx[np.triu_indices(len(d2_xx), k=1)], d2_yy[np.triu_indices(len(d2_yy), k=1)], d2_xy.ravel()]
    )
    median = float(np.sqrt(np.median(pairs)))
    return median if median > 0 else 1.0


@METRICS.register("mmd", options=MMDOptions)
def mmd(
    x: np.ndarray,
    ref: np.ndarray,
    *,
    meta: dict,
    rng: np.random.Generator,
    bandwidths: list[float] | None = None,
    max_points: int = 2000,
) -> dict[str, float]:
    """Unbiased MMD² with a sum of RBF kernels (Gretton et al. 2012, JMLR 13, eq. 3).

    MMD²_u = 1/(N(N−1)) Σ_{i≠j} k(x_i, x_j) + 1/(M(M−1)) Σ_{i≠j} k(y_i, y_j) − 2/(NM) Σ_{i,j} k(x_i, y_j),
    k(a, b) = Σ_h exp(−‖a − b‖² / (2 h²)). Bandwidths h: ``bandwidths`` if given, else the median pairwise distance
    of the pooled (subsampled) sample times {0.5, 1, 2}. We report the unbiased MMD² itself, not its square root: it is
    an unbiased estimate of the population MMD² (mean 0 when both samples come from the same law), so it can be
    slightly negative. x: (N, D), ref: (M, D), each subsampled to at most ``max_points`` rows.
    """
    x = subsample(np.asarray(x, dtype=np.float64), max_points, rng)
    y = subsample(np.asarray(ref, dtype=np.float64), max_points, rng)
    n, m = len(x), len(y)
    d2_xx, d2_yy, d2_xy = cdist(x, x, "sqeuclidean"), cdist(y, y, "sqeuclidean"), cdist(x, y, "sqeuclidean")
    if bandwidths is None:
        median = median_bandwidth(d2_xx, d2_yy, d2_xy)
        bandwidths = [0.5 * median, median, 2.0 * median]
    if not bandwidths or min(bandwidths) <= 0:
        raise ValueError(f"bandwidths={bandwidths!r} must be a non-empty list of positive numbers")

    def kernel(d2: np.ndarray) -> np.ndarray:
        return sum(np.exp(-d2 / (2.0 * h**2)) for h in bandwidths)

    k_xx, k_yy, k_xy = kernel(d2_xx), kernel(d2_yy), kernel(d2_xy)
    within_x = (k_xx.sum() - np.trace(k_xx)) / (n * (n - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return {"mmd": float(within_x + within_y - 2.0 * k_xy.mean())}


@METRICS.register("energy", options=MaxPointsOptions)
def energy(
    x: np.ndarray, ref: np.ndarray, *, meta: dict, rng: np.random.Generator, max_points: int = 2000
) -> dict[str, float]:
    """Energy distance 2E‖X−Y‖ − E‖X−X'‖ − E‖Y−Y'‖, unbiased U-statistic (Székely & Rizzo 2013, JSPI 143).

    E_u = 2/(NM) Σ_{i,j} ‖x_i − y_j‖ − 1/(N(N−1)) Σ_{i≠j} ‖x_i − x_j‖ − 1/(M(M−1)) Σ_{i≠j} ‖y_i − y_j‖.
    This is the squared form (no square root) and, being unbiased, may be slightly negative. scipy's
    ``energy_distance`` returns instead the square root of the V-statistic, whose within-sample means divide by N², M².
    x: (N, D), ref: (M, D), each subsampled to at most ``max_points`` rows.
    """
    x = subsample(np.asarray(x, dtype=np.float64), max_points, rng)
    y = subsample(np.asarray(ref, dtype=np.float64), max_points, rng)
    n, m = len(x), len(y)
    within_x = cdist(x, x).sum() / (n * (n - 1))  # the diagonal is 0, so the sum is over i ≠ j
    within_y = cdist(y, y).sum() / (m * (m - 1))
    return {"energy": float(2.0 * cdist(x, y).mean() - within_x - within_y)}


@METRICS.register("w2", options=MaxPointsOptions)
def w2(
    x: np.ndarray, ref: np.ndarray, *, meta: dict, rng: np.random.Generator, max_points: int = 2000
) -> dict[str, float]:
    """Exact Wasserstein-2 distance between the empirical measures (an assignment problem or linear programme).

    W2(μ, ν) = ( min_{P ∈ U(1/N, 1/M)} Σ_{i,j} P_ij ‖x_i − y_j‖² )^{1/2}, the Kantorovich problem (Peyré & Cuturi
    2019, ch. 2).
    When N or M exceeds ``max_points`` (default 2000) that set is first subsampled with ``rng`` to ``max_points``
    rows, so the value is then the W2 between subsamples (it carries the subsample's extra finite-sample bias).
    For N = M an optimal coupling is a permutation (Birkhoff), found by scipy's ``linear_sum_assignment``; so it is
    when one size divides the other, after repeating each point of the smaller set M/N times (mass 1/M each).
    Otherwise POT's network simplex, imported only then (POT's import costs seconds: it loads scikit-learn and torch).
    x: (N, D), ref: (M, D).
    """
    x = subsample(np.asarray(x, dtype=np.float64), max_points, rng)
    y = subsample(np.asarray(ref, dtype=np.float64), max_points, rng)
    small, large = sorted((len(x), len(y)))
    if large % small == 0:
        # k = M/N copies of each point of the smaller set, each of mass 1/M, turn U(1/N, 1/M) into the doubly
        # stochastic couplings of M points with M points: an optimal one is again a permutation (Birkhoff)
        k = large // small
        xr, yr = (np.repeat(x, k, axis=0), y) if len(x) < len(y) else (x, np.repeat(y, k, axis=0))
        cost_matrix = cdist(xr, yr, "sqeuclidean")  # (M, M)
        from scipy.optimize import linear_sum_assignment

        rows, cols = linear_sum_assignment(cost_matrix)
        cost = cost_matrix[rows, cols].mean()
    else:
        cost_matrix = cdist(x, y, "sqeuclidean")  # (N, M)
        import ot

        a, b = np.full(len(x), 1.0 / len(x)), np.full(len(y), 1.0 / len(y))
        cost = ot.emd2(a, b, cost_matrix, numItermax=10_000_000)
    return {"w2": float(np.sqrt(max(float(cost), 0.0)))}
