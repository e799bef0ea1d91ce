"""Mode coverage of samples from a Gaussian mixture: modes covered, % high-quality samples, mode-histogram KL.

The protocol of VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018) for the 2-D ring and grid mixtures
(also DDGAN's 25-Gaussian experiment): each sample is assigned to its nearest mode, is "high quality" when it lies
within 3 standard deviations of it, and a mode is covered when enough high-quality samples are assigned to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ttdm.metrics import METRICS
from ttdm.options import option


@dataclass(frozen=True)
class ModesOptions:
    threshold: float = option(3.0, "standardised distance within which a sample is high quality", gt=0)
    min_count: int | None = option(None, "high-quality samples a covered mode needs (default 1% of its share)",
                                   min=1)
    eps: float = option(1e-10, "pseudo-count of the mode histogram", gt=0)


def standardized_distances(x: np.ndarray, means: np.ndarray, stds: np.ndarray) -> np.ndarray:
    """d_ik = ‖(x_i − μ_k) / s_k‖ (per-coordinate standard deviations s_k). x: (N, D), means, stds: (K, D) -> (N, K)."""
    z = (x[:, None, :] - means[None, :, :]) / stds[None, :, :]  # (N, K, D)
    return np.sqrt(np.einsum("nkd,nkd->nk", z, z))  # (N, K)


def default_min_counts(weights: np.ndarray, n: int) -> np.ndarray:
    """Samples a mode needs to count as covered: max(1, ⌈0.01 · w_k · N⌉), 1% of its expected count. weights: (K,)."""
    return np.maximum(1, np.ceil(0.01 * weights * n)).astype(np.int64)


@METRICS.register("modes", options=ModesOptions)
def modes(
    x: np.ndarray,
    ref: np.ndarray,
    *,
    meta: dict,
    rng: np.random.Generator,
    threshold: float = 3.0,
    min_count: int | None = None,
    eps: float = 1e-10,
) -> dict[str, float]:
    """Modes covered, % high-quality samples and KL of the mode histogram, for a mixture given in ``meta``.

    Sample i goes to mode k_i = argmin_k d_ik, d_ik = ‖(x_i − μ_k)/s_k‖, and is high quality (HQ) when
    d_{i k_i} ≤ ``threshold`` (3σ; for a 2-D Gaussian a true sample is HQ with probability P(χ²₂ ≤ 9) = 1 − e^{−4.5}).
    With c_k the number of HQ samples at mode k:
    - ``modes_covered`` = #{k : c_k ≥ n_k}, n_k = ``min_count`` if given, else max(1, ⌈0.01 · w_k · N⌉) (1% of the
      mode's expected count, at least one sample);
    - ``modes_total`` = K; ``hq_percent`` = 100 · Σ_k c_k / N;
    - ``mode_kl`` = KL(p̂ ‖ w) = Σ_k p̂_k log(p̂_k / w_k), p̂_k = (c_k + ε) / Σ_j (c_j + ε), the generated histogram
      against the mixture weights; NaN when no sample is HQ (the histogram is then undefined).
    Returns {} when ``meta["mixture"]`` is missing or None. ``ref`` and ``rng`` are not used: the mixture is exact.
    x: (N, D); meta["mixture"]: weights (K,), means (K, D), stds (K, D).
    """
    mixture = meta.get("mixture")
    if not mixture:
        return {}
    if threshold <= 0:
        raise ValueError(f"threshold={threshold!r} must be positive")
    if min_count is not None and min_count < 1:
        raise ValueError(f"min_count={min_count!r} must be None or an integer ≥ 1")
    weights = np.asarray(mixture["weights"], dtype=np.float64)
    means = np.asarray(mixture["means"], dtype=np.float64)
    stds = np.asarray(mixture["stds"], dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    dist = standardized_distances(x, means, stds)  # (N, K)
    nearest = np.argmin(dist, axis=1)  # (N,)
    high_quality = dist[np.arange(len(x)), nearest] <= threshold  # (N,)
    counts = np.bincount(nearest[high_quality], minlength=len(weights))  # (K,)
    needed = default_min_counts(weights, len(x)) if min_count is None else np.full(len(weights), int(min_count))
    if high_quality.any():
        p_hat = (counts + eps) / (counts + eps).sum()
        mode_kl = float(np.sum(p_hat * np.log(p_hat / weights)))
    else:
        mode_kl = float("nan")
    return {
        "modes_covered": float(np.sum(counts >= needed)),
        "modes_total": float(len(weights)),
        "hq_percent": float(100.0 * high_quality.mean()),
        "mode_kl": mode_kl,
    }
