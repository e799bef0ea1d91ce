"""Diagonal Gaussian mixtures: exact density, score, samples, and their marginals under the VP forward process.

p(x) = Σ_k w_k N(x; μ_k, diag(s_k²)).  Under the forward process x_t = α x_0 + σ ε (Ho et al. 2020, eq. 4) a
mixture stays a mixture: p_t(x) = Σ_k w_k N(x; α μ_k, diag(α² s_k² + σ²)).  Its score is known in closed form,
∇ log p_t(x) = Σ_k r_k(x) (α μ_k − x)/(α² s_k² + σ²) with responsibilities r_k(x) ∝ w_k N(x; α μ_k, ·), so the
noise predictor that minimises the DDPM loss is exact: ε*(x_t, t) = −σ_t ∇ log p_t(x_t) (Vincent 2011; Song et al.
2021, eq. 7 with ε = −σ ∇ log p).  It separates a model's error from the sampler's in the isolation experiments.

Array convention: ``log_prob``, ``score`` and ``eps_star`` accept a NumPy array or a torch tensor and return the
same kind (NumPy → float64 NumPy; torch → a tensor of the input's dtype and device); the sums run in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ttdm.schedules import NoiseSchedule

ArrayLike = np.ndarray | torch.Tensor


@dataclass(frozen=True, eq=False)
class GaussianMixture:
    """A mixture of K diagonal Gaussians in D dimensions.

    Args:
        weights: (K,) positive mixture weights summing to 1 (within 1e-6; renormalised exactly).
        means: (K, D) component means μ_k.
        stds: (K, D) positive per-coordinate standard deviations s_k.
    """

    weights: np.ndarray
    means: np.ndarray
    stds: np.ndarray

    def __post_init__(self) -> None:
        w = np.asarray(self.weights, dtype=np.float64)
        mu = np.asarray(self.means, dtype=np.float64)
        s = np.asarray(self.stds, dtype=np.float64)
        if w.ndim != 1 or mu.ndim != 2 or s.shape != mu.shape or len(w) != len(mu) or len(w) == 0:
            raise ValueError(
                f"mixture shapes must be weights (K,), means (K, D), stds (K, D) with K ≥ 1; "
                f"got {w.shape}, {mu.shape}, {s.shape}"
            )
        if not (np.isfinite(w).all() and np.isfinite(mu).all() and np.isfinite(s).all()):
            raise ValueError("mixture parameters must be finite")
        if (w <= 0).any() or abs(w.sum() - 1.0) > 1e-6:
            raise ValueError(f"mixture weights must be positive and sum to 1, got sum {w.sum()!r}")
        if (s <= 0).any():
            raise ValueError("mixture stds must be positive")
        # frozen dataclass: set the cleaned arrays through object.__setattr__
        object.__setattr__(self, "weights", w / w.sum())
        object.__setattr__(self, "means", mu)
        object.__setattr__(self, "stds", s)

    @property
    def n_components(self) -> int:
        return len(self.weights)

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    # ---------------------------------------------------------------------------------------------------------------
    # Sampling and transformations (NumPy)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n draws x = μ_k + s_k ⊙ z, k ~ Categorical(w), z ~ N(0, I).  Returns (n, D) float64."""
        k = rng.choice(self.n_components, size=n, p=self.weights)  # (n,)
        z = rng.standard_normal((n, self.dim))  # (n, D)
        return self.means[k] + self.stds[k] * z

    def affine(self, shift: np.ndarray, scale: np.ndarray) -> "GaussianMixture":
        """The mixture of y = (x − shift)/scale for x from this one: means (μ_k − shift)/scale, stds s_k/scale.

        shift, scale: (D,) or scalars; scale must be positive (a standardisation).
        """
        shift = np.broadcast_to(np.asarray(shift, dtype=np.float64), (self.dim,))
        scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), (self.dim,))
        if (scale <= 0).any():
            raise ValueError("affine scale must be positive in every coordinate")
        return GaussianMixture(self.weights, (self.means - shift) / scale, self.stds / scale)

    def diffused(self, alpha: float, sigma: float) -> "GaussianMixture":
        """The law of α x_0 + σ ε, x_0 from this mixture: means α μ_k, stds √(α² s_k² + σ²).  alpha > 0, sigma ≥ 0."""
        if not alpha > 0 or not sigma >= 0:
            raise ValueError(f"diffused needs alpha > 0 and sigma ≥ 0, got alpha={alpha!r}, sigma={sigma!r}")
        return GaussianMixture(self.weights, alpha * self.means, np.sqrt(alpha**2 * self.stds**2 + sigma**2))

    # ---------------------------------------------------------------------------------------------------------------
    # Density, score and the exact noise predictor

    def log_prob(self, x: ArrayLike) -> ArrayLike:
        """log p(x) = logsumexp_k [log w_k + log N(x; μ_k, diag(s_k²))].  x: (B, D) -> (B,)."""
        xt = _to64(x)
        log_joint, _, _ = self._log_joint(xt, *_no_noise(xt))  # (B, K)
        return _like(torch.logsumexp(log_joint, dim=1), x)

    def score(self, x: ArrayLike) -> ArrayLike:
        """∇ log p(x) = Σ_k r_k(x) (μ_k − x)/s_k², r = softmax_k of the log joint.  x: (B, D) -> (B, D)."""
        xt = _to64(x)
        return _like(self._diffused_score(xt, *_no_noise(xt)), x)

    def eps_star(self, x_t: ArrayLike, i: ArrayLike, schedule: NoiseSchedule) -> ArrayLike:
        """The exact noise predictor ε*(x_t, i) = −σ_i ∇ log p_i(x_t), p_i the law of x_i = α_i x_0 + σ_i ε.

        It is the minimiser of the DDPM loss E‖ε − ε_θ(x_i, i)‖² (the posterior mean E[ε | x_i]).  For a single
        Gaussian N(0, s² I) it reduces to ε* = σ_i x /(α_i² s² + σ_i²).
        x_t: (B, D); i: (B,) integer steps of ``schedule`` (i = −1 means no noise, ε* = 0) -> (B, D).
        """
        steps = torch.as_tensor(i).to("cpu", torch.long)
        alpha, sigma = schedule.alpha_sigma(steps)  # (B,), (B,) float64
        return self._eps(x_t, alpha, sigma)

    def eps_model(self, schedule: NoiseSchedule) -> "MixtureEpsModel":
        """A callable ``model(x, t)`` with the models' interface (t = (i + 1)/T in (0, 1]) that returns ε*.

        α and σ come from λ(t) = ``schedule.logsnr_at(t)`` via α² = sigmoid(2λ), σ² = sigmoid(−2λ), so grid times
        give ``eps_star`` at i = tT − 1 and times between grid points are served too (continuous-time samplers).
        """
        return MixtureEpsModel(self, schedule)

    def _eps(self, x: ArrayLike, alpha: torch.Tensor, sigma: torch.Tensor) -> ArrayLike:
        """−σ_b ∇ log p_t(x_b) with per-row α_b, σ_b (float64 tensors (B,)).  x: (B, D) -> (B, D)."""
        xt = _to64(x)
        alpha, sigma = alpha.to(xt.device, torch.float64), sigma.to(xt.device, torch.float64)
        score = self._diffused_score(xt, alpha, sigma)  # (B, D)
        return _like(-sigma[:, None] * score, x)

    def _log_joint(
        self, x: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """log w_k + log N(x_b; α_b μ_k, diag(v_bk)), v_bk = α_b² s_k² + σ_b², and the pieces the score reuses.

        x: (B, D) float64; alpha, sigma: (B,) -> log joint (B, K), residual x − α μ (B, K, D), variance v (B, K, D).
        """
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (B, {self.dim}), got {tuple(x.shape)}")
        w, mu, s = (torch.from_numpy(a).to(x.device) for a in (self.weights, self.means, self.stds))
        resid = x[:, None, :] - alpha[:, None, None] * mu[None]  # (B, K, D)
        var = alpha[:, None, None] ** 2 * s[None] ** 2 + sigma[:, None, None] ** 2  # (B, K, D)
        log_norm = -0.5 * (resid**2 / var + torch.log(var) + math.log(2 * math.pi)).sum(dim=2)  # (B, K)
        return torch.log(w)[None] + log_norm, resid, var

    def _diffused_score(self, x: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Σ_k r_bk (α_b μ_k − x_b)/v_bk with r_b = softmax_k(log joint) (stable: softmax subtracts the max)."""
        log_joint, resid, var = self._log_joint(x, alpha, sigma)
        resp = torch.softmax(log_joint, dim=1)  # (B, K)
        return -(resp[:, :, None] * resid / var).sum(dim=1)  # (B, D)

    # ---------------------------------------------------------------------------------------------------------------
    # Records

    def to_dict(self) -> dict[str, Any]:
        """{"weights": [K], "means": [K][D], "stds": [K][D]} as plain lists (the meta.json format)."""
        return {"weights": self.weights.tolist(), "means": self.means.tolist(), "stds": self.stds.tolist()}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> "GaussianMixture":
        """The inverse of :meth:`to_dict`."""
        missing = {"weights", "means", "stds"} - set(record)
        if missing:
            raise ValueError(f"mixture record lacks {sorted(missing)}; needs weights, means, stds")
        return cls(np.asarray(record["weights"]), np.asarray(record["means"]), np.asarray(record["stds"]))


class MixtureEpsModel(torch.nn.Module):
    """ε*(x, t) of a mixture as a parameter-free module with the models' ``forward(x: (B, D), t: (B,))`` interface."""

    def __init__(self, mixture: GaussianMixture, schedule: NoiseSchedule) -> None:
        super().__init__()
        self.mixture = mixture
        self.schedule = schedule

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """ε*(x, t) with α² = sigmoid(2λ(t)), σ² = sigmoid(−2λ(t)).  x: (B, D); t: (B,) or scalar -> (B, D)."""
        t = torch.as_tensor(t, dtype=torch.float64).cpu().expand(len(x))  # (B,); the schedule lives on the CPU
        lam = self.schedule.logsnr_at(t)  # (B,)
        alpha, sigma = torch.sigmoid(2 * lam).sqrt(), torch.sigmoid(-2 * lam).sqrt()
        return self.mixture._eps(x, alpha, sigma)


def _to64(x: ArrayLike) -> torch.Tensor:
    """A float64 tensor holding ``x`` (NumPy array or scalar: on the CPU; tensor: on its own device)."""
    if isinstance(x, torch.Tensor):
        return x.to(torch.float64)  # differentiable: the likelihood needs the divergence of ε*
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


def _no_noise(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(α, σ) = (1, 0) per row of x: the undiffused mixture.  -> (B,), (B,)."""
    ones = torch.ones(len(x), dtype=torch.float64, device=x.device)
    return ones, torch.zeros_like(ones)


def _like(result: torch.Tensor, x: ArrayLike) -> ArrayLike:
    """``result`` as the kind of ``x``: a tensor of x's dtype and device, else a float64 NumPy array."""
    if isinstance(x, torch.Tensor):
        return result.to(x.device, x.dtype if x.is_floating_point() else torch.float64)
    return result.numpy()
