"""Metrics in the feature space of a dataset's classifier (:mod:`ttdm.analysis.classifier`): FD, PRDC, class KL.

With φ the classifier's penultimate features and p(y|x) its softmax, for samples x (N) against the test split y (M):

- ``fd``: the Fréchet distance of Gaussians fitted to φ(x) and φ(y) (FID's formula on our own features),
  ‖μ_x − μ_y‖² + tr(Σ_x + Σ_y − 2 (Σ_x^{1/2} Σ_y Σ_x^{1/2})^{1/2}), with unbiased covariances; the trace of the
  geometric-mean term is the sum of the square roots of the eigenvalues of Σ_x^{1/2} Σ_y Σ_x^{1/2} (symmetric PSD,
  so no complex square roots appear);
- ``f_precision``, ``f_recall``, ``f_density``, ``f_coverage``: :func:`ttdm.metrics.prdc.prdc_values` on φ;
- ``class_kl``: KL(p̂ ‖ uniform) = Σ_k p̂_k log(K p̂_k) of the histogram p̂ of predicted classes (0 when every class
  is equally frequent, log K when all samples are one class; StackedMNIST's mode-coverage measure);
  ``classes_covered``: how many classes are predicted for at least one sample.

These are not registered metrics: they need the classifier, which the evaluate stage loads when the spec names one
(``classifier``), and they are computed for the model samples and the data floor alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ttdm.metrics.prdc import prdc_values

FEATURE_METRICS = ("fd", "f_precision", "f_recall", "f_density", "f_coverage", "class_kl", "classes_covered")


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix (negative rounding clipped to 0)."""
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(fx: np.ndarray, fy: np.ndarray) -> float:
    """Fréchet distance of Gaussians fitted to features fx: (N, F) and fy: (M, F), N, M ≥ 2."""
    mu_x, mu_y = fx.mean(0), fy.mean(0)
    cov_x, cov_y = np.cov(fx, rowvar=False), np.cov(fy, rowvar=False)
    root_x = _sqrt_psd(cov_x)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_x @ cov_y @ root_x), 0, None)).sum()
    return float(((mu_x - mu_y) ** 2).sum() + np.trace(cov_x) + np.trace(cov_y) - 2 * cross)


def class_kl(probs: np.ndarray) -> tuple[float, int]:
    """(KL of the predicted-class histogram to uniform, number of classes predicted) of probs: (N, K)."""
    k = probs.shape[1]
    hist = np.bincount(probs.argmax(1), minlength=k) / len(probs)
    nonzero = hist > 0
    return float((hist[nonzero] * np.log(k * hist[nonzero])).sum()), int(nonzero.sum())


def feature_metrics(x: np.ndarray, ref: np.ndarray, classifier: Any, nearest_k: int = 5) -> dict[str, float]:
    """FD, PRDC on features, class KL and classes covered of samples x: (N, D) against ref: (M, D)."""
    from ttdm.analysis.classifier import features_and_probs

    fx, px = features_and_probs(classifier, x)
    fy, _ = features_and_probs(classifier, ref)
    pr = prdc_values(fx, fy, nearest_k)
    kl, covered = class_kl(px)
    return {"fd": frechet_distance(fx, fy), **{f"f_{k}": v for k, v in pr.items()}, "class_kl": kl,
            "classes_covered": float(covered)}
