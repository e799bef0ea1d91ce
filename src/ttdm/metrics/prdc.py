"""k-NN precision and recall (Kynkäänniemi et al. 2019) and density and coverage (Naeem et al. 2020).

Both pairs estimate the support of each distribution by the union of k-nearest-neighbour balls B(y, r_k(y)) around
its points, r_k(y) the distance from y to its k-th nearest neighbour in its own set (y itself excluded):

- precision = share of samples x inside the reference manifold, (1/N) Σ_i 1[∃ j: ‖x_i − y_j‖ < r_k(y_j)]: sharpness,
  low when the model puts mass off the data (blur, spurious modes);
- recall = share of reference points inside the sample manifold, (1/M) Σ_j 1[∃ i: ‖y_j − x_i‖ < r_k(x_i)]: diversity,
  low when modes are missed;
- density = (1/(k N)) Σ_i Σ_j 1[‖x_i − y_j‖ < r_k(y_j)]: how many reference balls contain a sample, on average
  (about 1 for two samples of one distribution, unbounded above; robust to real outliers, Naeem et al. eq. 3);
- coverage = (1/M) Σ_j 1[min_i ‖y_j − x_i‖ < r_k(y_j)]: share of reference balls that contain a sample (in [0, 1],
  Naeem et al. eq. 4), the outlier-robust recall.

The inequalities are strict and the k-th neighbour counts duplicates, exactly as the reference implementation
``prdc.compute_prdc(real_features=ref, fake_features=x, nearest_k=k)`` (NAVER, MIT), against which the tests compare
(so a duplicated reference point has radius 0 and contains nothing). Distances are exact Euclidean ones (scipy's
``cdist``, float64), computed in blocks of rows so memory stays O(block · max(N, M)). Numpy/scipy only: the evaluate
jobs do not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ttdm.metrics import METRICS
from ttdm.metrics.distances import cdist, subsample
from ttdm.options import option

_BLOCK = 1024  # rows per distance block: bounds memory at 1024 · max(N, M) floats


@dataclass(frozen=True)
class PRDCOptions:
    nearest_k: int = option(5, "k of the k-nearest-neighbour balls (Naeem et al. use 5)", min=1)
    max_points: int = option(2000, "rows of each set used at most (subsampled with the metric's rng)", min=2)


def knn_radii(a: np.ndarray, k: int) -> np.ndarray:
    """r_k(a_i): the distance from a_i to its k-th nearest neighbour in ``a`` (itself excluded, duplicates counted).

    It is the (k + 1)-th smallest entry of row i of the distance matrix (the smallest being ‖a_i − a_i‖ = 0).
    a: (N, D) with N > k -> (N,).
    """
    if not 1 <= k < len(a):
        raise ValueError(f"k={k!r} needs 1 ≤ k < N = {len(a)}")
    radii = np.empty(len(a))
    for start in range(0, len(a), _BLOCK):
        block = cdist(a[start:start + _BLOCK], a)  # (B, N)
        np.fill_diagonal(block[:, start:], 0.0)  # ‖a_i − a_i‖ = 0 exactly
        radii[start:start + _BLOCK] = np.partition(block, k, axis=1)[:, k]
    return radii


def prdc_values(x: np.ndarray, ref: np.ndarray, nearest_k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage of samples ``x: (N, D)`` against ``ref: (M, D)`` (module docstring).

    Needs ``nearest_k < min(N, M)``: with fewer points the k-th neighbour does not exist, and all four are NaN.
    """
    x, ref = np.asarray(x, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    k = int(nearest_k)
    if k < 1:
        raise ValueError(f"nearest_k={nearest_k!r} must be ≥ 1")
    if min(len(x), len(ref)) <= k:
        nan = float("nan")
        return {"precision": nan, "recall": nan, "density": nan, "coverage": nan}
    r_ref, r_x = knn_radii(ref, k), knn_radii(x, k)  # (M,), (N,)
    balls_per_sample = np.zeros(len(x), dtype=np.int64)  # Σ_j 1[‖x_i − y_j‖ < r_k(y_j)]
    recalled = np.zeros(len(ref), dtype=bool)
    covered = np.zeros(len(ref), dtype=bool)
    for start in range(0, len(ref), _BLOCK):
        stop = start + _BLOCK
        d = cdist(ref[start:stop], x)  # (B, N)
        inside_ref = d < r_ref[start:stop, None]  # sample i in the ball of reference point j
        balls_per_sample += inside_ref.sum(axis=0)
        recalled[start:stop] = (d < r_x[None, :]).any(axis=1)
        covered[start:stop] = d.min(axis=1) < r_ref[start:stop]
    return {
        "precision": float(np.mean(balls_per_sample > 0)),
        "recall": float(recalled.mean()),
        "density": float(balls_per_sample.sum() / (k * len(x))),
        "coverage": float(covered.mean()),
    }


@METRICS.register("prdc", options=PRDCOptions)
def prdc(
    x: np.ndarray,
    ref: np.ndarray,
    *,
    meta: dict,
    rng: np.random.Generator,
    nearest_k: int = 5,
    max_points: int = 2000,
) -> dict[str, float]:
    """{"precision", "recall", "density", "coverage"} of ``x: (N, D)`` against ``ref: (M, D)`` (see the module).

    Each set is first cut to at most ``max_points`` rows drawn without replacement with ``rng`` (the values depend
    on the set sizes: the k-NN radii shrink as a set grows, so compare scores computed at equal sizes, e.g. the
    model's and the floor's). All four are NaN when ``nearest_k`` ≥ min(N, M). ``meta`` is not used.
    """
    x, ref = subsample(np.asarray(x, dtype=np.float64), max_points, rng), subsample(
        np.asarray(ref, dtype=np.float64), max_points, rng
    )
    return prdc_values(x, ref, nearest_k)
