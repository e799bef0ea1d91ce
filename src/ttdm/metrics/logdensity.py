"""Mean true log-density of the samples, for datasets whose exact density is known (the Gaussian mixtures).

A sharpness measure that sampling noise hardly blurs (unlike SWD or W2 between two 500-point samples): a model that
spreads mass between or around the modes puts its samples where the true density is low, and its mean log p(x)
falls below the data's (the floor: the same metric on ``floor.npy``, E_p[log p] = −H(p)). It does not see missing
modes (a model that collapses onto one mode scores well): read it beside ``modes`` and ``prdc``'s recall/coverage.
"""

from __future__ import annotations

import math

import numpy as np

from ttdm.metrics import METRICS
from ttdm.options import NoOptions


def mixture_log_prob(x: np.ndarray, mixture: dict) -> np.ndarray:
    """log p(x) of the diagonal mixture {"weights": (K,), "means": (K, D), "stds": (K, D)} (meta.json's record).

    log p(x) = logsumexp_k [log w_k − ½ Σ_d ((x_d − μ_kd)/s_kd)² − Σ_d log s_kd − (D/2) log 2π], in float64, in
    numpy (the same density as ``ttdm.data.mixture.GaussianMixture.log_prob``, without importing torch).
    x: (N, D) -> (N,).
    """
    from scipy.special import logsumexp

    w = np.asarray(mixture["weights"], dtype=np.float64)
    mu = np.asarray(mixture["means"], dtype=np.float64)
    s = np.asarray(mixture["stds"], dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != mu.shape[1]:
        raise ValueError(f"x must have shape (N, {mu.shape[1]}), got {x.shape}")
    z = (x[:, None, :] - mu[None]) / s[None]  # (N, K, D)
    log_norm = -0.5 * np.einsum("nkd,nkd->nk", z, z) - np.log(s).sum(axis=1)[None] - 0.5 * mu.shape[1] * math.log(
        2 * math.pi
    )  # (N, K)
    return logsumexp(np.log(w / w.sum())[None] + log_norm, axis=1)


@METRICS.register("logdensity", options=NoOptions)
def logdensity(x: np.ndarray, ref: np.ndarray, *, meta: dict, rng: np.random.Generator) -> dict[str, float]:
    """{"sample_logp": (1/(N D)) Σ_i log p(x_i)}: the mean true log-density of the samples, in nats per dimension.

    p is the mixture of ``meta["mixture"]`` (stored, standardised coordinates, so the density of ``train.npy``);
    returns {} without a mixture. The evaluate stage passes only the finite rows of ``x``. Higher is sharper; the
    data floor's value estimates −H(p)/D. ``ref`` and ``rng`` are not used: the density is exact.
    """
    mixture = meta.get("mixture")
    if not mixture:
        return {}
    x = np.asarray(x, dtype=np.float64)
    return {"sample_logp": float(np.mean(mixture_log_prob(x, mixture)) / x.shape[1])}
