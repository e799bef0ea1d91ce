"""A functional tensor-train noise predictor ε_θ(x, t) (seed 000: Tensor-Train Diffusion Models).

For data in R^D every output ε_j is a functional TT over D + 1 variables, time being the last:

    f_j(x, t) = G_1[φ(z_1)] G_2[φ(z_2)] ⋯ G_D[φ(z_D)] G_{D+1}[ψ(2t − 1)],   z = clamp(A x + b, −1, 1),

plus, by default, the prior term σ_t x_t: ε_θ = σ_t x_t + f(x_t, t) (:class:`ttdm.models.embeddings.GaussianPrior`,
the same ``prior`` option as every network's, default gaussian here).  σ_t x_t is the exact noise predictor of
N(0, I) data (standardised data has unit variance), so the TT represents the deviation from a Gaussian, and a
sample that leaves the basis domain (where f is constant) is pulled back as for a Gaussian instead of drifting
away under the sampler's 1/√α_t expansion.  Here G_k[v] = Σ_i v_i G_k[:, i, :] ∈ R^{r_{k−1} × r_k}, φ is a
univariate basis of ``degree`` functions and ψ one of ``time_degree`` functions on the time interval [0, 1] mapped to [−1, 1].  The affine map z = A x + b is fixed from
the training data's range and the noise schedule by :meth:`TTNoise.fit_domain`: every coordinate of x_t =
α_i x_0 + σ_i ε with |ε| ≤ ``margin`` lands in [−1, 1].  Points outside are clamped to the boundary (never
zeroed, unlike ``teneva.func_get``).

Two output layouts:
- ``per_output`` (the seed's): D independent TTs, one per output, cores (D, r_{k−1}, n_k, r_k);
  D (D + 1) n r² parameters at rank r.
- ``shared``: one TT whose first core carries the output index j ∈ {1..D}: f_j = E[j] G_1[φ(z_1)] ⋯,
  E: (D, r); D r + (D + 1) n r² parameters.

Ranks are capped at the TT bound min(r, Π_{i≤k} n_i, Π_{i>k} n_i).  Cores are stored as the batched TT of
``ttdm.tt.algebra`` (P = D tensors for per_output, P = 1 with a leading output-index mode for shared), so the ALS
and Riemannian optimisers of ``ttdm.tt`` work on both layouts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ttdm.models import MODELS
from ttdm.models.embeddings import PRIORS, GaussianPrior, broadcast_time
from ttdm.options import check_options, option
from ttdm.tt import algebra
from ttdm.tt.bases import BASES, get_basis, min_size

LAYOUTS = ("per_output", "shared")
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class TTConfig:
    rank: int = option(4, "the TT rank r of every interior bond (capped at the TT bound)", min=1)
    degree: int = option(8, "basis functions per data coordinate (n)", min=1)
    basis: str = option("legendre", "univariate basis of the data cores", choices=tuple(sorted(BASES)))
    time_degree: int | None = option(None, "basis functions of the time core (null: same as degree)", min=1)
    time_basis: str = option("", "basis of the time core ('': same as basis)", choices=("", *sorted(BASES)))
    layout: str = option("per_output", "one TT per output, or one TT with an output-index core", choices=LAYOUTS)
    margin: float = option(4.0, "noise quantile covered by the input domain: |ε| ≤ margin maps inside [−1, 1]",
                           min=0)
    dtype: str = option("float32", "parameters and contractions", choices=tuple(DTYPES))
    init_scale: float = option(0.1, "scale of the random initial TT's values", min=0)
    prior: str = option("gaussian", "gaussian: ε_θ = σ_t x + TT (the TT fits the residual); none: ε_θ = TT",
                        choices=PRIORS)

    def problems(self) -> list[tuple[str, str]]:
        """Each basis gets at least as many functions as it needs (a cubic B-spline basis needs 4)."""
        checks = [("degree", self.degree, self.basis)]
        if self.time_degree is not None or self.time_basis not in ("", self.basis):  # else the same as degree's
            checks.append(("time_degree", self.time_degree or self.degree, self.time_basis or self.basis))
        return [(name, f"{n} is below the minimum {min_size(basis)} of basis {basis!r}")
                for name, n, basis in checks if n < min_size(basis)]


class TTNoise(GaussianPrior, nn.Module):
    """ε_θ(x, t) as functional tensor trains; see the module docstring.  x: (B, D), t: (B,) -> (B, D).

    ``cfg`` is a checked :class:`TTConfig` (``build`` checks the hyper-parameters with ``check_options``).
    """

    def __init__(self, dim: int, cfg: TTConfig) -> None:
        super().__init__()
        self.dim, self.cfg = dim, cfg
        self.basis = get_basis(cfg.basis)
        self.time_basis = get_basis(cfg.time_basis or cfg.basis)
        self.n_x = cfg.degree
        self.n_t = cfg.time_degree or cfg.degree
        dtype = DTYPES[cfg.dtype]
        sizes = [self.n_x] * dim + [self.n_t]
        n_tt = dim
        if cfg.layout == "shared":
            sizes, n_tt = [dim, *sizes], 1
        self.sizes = sizes
        self.ranks = algebra.capped_ranks(sizes, cfg.rank)
        cores = algebra.random_cores(n_tt, sizes, self.ranks, dtype=dtype)  # torch's global RNG (seeded by caller)
        cores[0] = cores[0] * cfg.init_scale
        self.cores = nn.ParameterList([nn.Parameter(c) for c in cores])
        self.register_buffer("lo", -torch.ones(dim, dtype=dtype))
        self.register_buffer("hi", torch.ones(dim, dtype=dtype))
        self.init_prior(cfg.prior, dtype, keep_table=True)  # the buffer sigmas: σ_i of the schedule, i = 0..T−1

    # ------------------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def fit_domain(self, x0: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor) -> None:
        """Fix the input map from the data range and the schedule: [lo_j, hi_j] ⊇ α_i x_0j + σ_i [−c, c] ∀ i.

        x0: (N, D) training data; alpha, sigma: (T,) the schedule's α_i, σ_i; c = ``margin``.
        """
        x0 = x0.to(torch.float64)
        a, s = alpha.to(torch.float64)[:, None], sigma.to(torch.float64)[:, None]  # (T, 1)
        mins, maxs = x0.min(0).values[None], x0.max(0).values[None]  # (1, D)
        lo = torch.minimum(a * mins, a * maxs) - self.cfg.margin * s  # (T, D)
        hi = torch.maximum(a * mins, a * maxs) + self.cfg.margin * s
        self.lo.copy_(lo.min(0).values)
        self.hi.copy_(hi.max(0).values)
        self.set_sigmas(sigma)  # the prior's σ table (GaussianPrior.prior_eps)

    def scaled(self, x: torch.Tensor) -> torch.Tensor:
        """z = 2 (x − lo)/(hi − lo) − 1, unclamped: (B, D)."""
        return 2 * (x.to(self.lo.dtype) - self.lo) / (self.hi - self.lo) - 1

    def features(self, x: torch.Tensor, t: torch.Tensor) -> list[torch.Tensor]:
        """Basis values of the clamped inputs: D tensors (B, n) and the time features (B, n_t)."""
        z = self.scaled(x).clamp(-1.0, 1.0)
        tz = (2 * broadcast_time(x, t).to(z.dtype) - 1).clamp(-1.0, 1.0)
        return [self.basis(z[:, j], self.n_x) for j in range(self.dim)] + [self.time_basis(tz, self.n_t)]

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        feats = self.features(x, t)
        cores = list(self.cores)
        if self.cfg.layout == "per_output":
            out = algebra.values(cores, feats).T  # (B, D)
        else:
            right = algebra.right_interfaces(cores, [feats[0][:, :1], *feats])[0]  # (1, B, r_0)
            out = right[0] @ cores[0][0, 0].T  # (B, r_0) x (r_0, D)
        return (self.prior_eps(x, t) + out).to(x.dtype)

    @torch.no_grad()
    def eps_and_divergence(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ε_θ(x, t) and its exact divergence ∇·ε_θ = D σ_t + Σ_j ∂f_j/∂x_j in about two forward passes.

        ∂f_j/∂x_j is output j's TT with the basis values φ(z_j) of mode j replaced by φ'(z_j) dz_j/dx_j, where
        dz_j/dx_j = 2/(hi_j − lo_j) inside the domain and 0 where x_j is clamped; one batched contraction gives all
        D of them (instead of D backward passes).  ``shared`` layout: the generic autograd divergence.
        x: (B, D), t: (B,) -> ((B, D), (B,)) in x's dtype, detached.
        """
        if self.cfg.layout != "per_output":
            from ttdm.analysis.likelihood import autograd_divergence

            return autograd_divergence(self, x, t)
        z_raw = self.scaled(x)
        inside = (z_raw > -1) & (z_raw < 1)
        z = z_raw.clamp(-1.0, 1.0)
        dz_dx = inside.to(z.dtype) * (2 / (self.hi - self.lo))  # (B, D)
        feats = self.features(x, t)
        cores = list(self.cores)
        eps = self.prior_eps(x, t) + algebra.values(cores, feats).T
        with torch.autograd.forward_ad.dual_level():  # φ'(z) of all B·D inputs in one forward-mode pass
            flat = torch.autograd.forward_ad.make_dual(z.reshape(-1), torch.ones_like(z).reshape(-1))
            dphi = torch.autograd.forward_ad.unpack_dual(self.basis(flat, self.n_x)).tangent
        dphi = dphi.reshape(len(x), self.dim, -1) * dz_dx[..., None]  # (B, D, n)
        diag = []
        for j in range(self.dim):  # (P = D, B, n): output j sees φ'(z_j) dz_j/dx_j at mode j, every other output φ
            per_output = feats[j].expand(self.dim, -1, -1).clone()
            per_output[j] = dphi[:, j]
            diag.append(per_output)
        right = torch.ones(self.dim, len(x), 1, dtype=cores[0].dtype, device=x.device)
        for k in range(self.dim, -1, -1):
            tmp = torch.einsum("prns,pbs->pbrn", cores[k], right)
            right = torch.einsum("pbrn,bn->pbr", tmp, feats[k]) if k == self.dim else torch.einsum(
                "pbrn,pbn->pbr", tmp, diag[k])
        prior_div = self.prior_eps(torch.ones_like(x), t).sum(1)  # D σ_t (0 without the prior)
        div = prior_div + right[..., 0].sum(0)
        return eps.to(x.dtype), div.to(x.dtype)

    # ------------------------------------------------------------------------------------------------------------
    # The regression view used by the ALS and Riemannian optimisers: targets (P, M) and features of M rows.

    def regression(self, x: torch.Tensor, t: torch.Tensor, target: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(features per mode (M, n_k), targets (P, M)) such that ``algebra.values(cores, feats)`` ≈ targets.

        The targets are ``target`` minus the prior term σ(t) x, i.e. what the TT itself must represent.
        per_output: M = B rows, P = D targets (ε_j of every point).  shared: M = B·D rows (point b, output j) with
        a one-hot feature for the output-index mode.
        """
        feats = self.features(x, t)
        target = target.to(self.lo.dtype) - self.prior_eps(x, t)  # the TT fits the residual
        if self.cfg.layout == "per_output":
            return feats, target.T.contiguous()
        b = x.shape[0]
        onehot = torch.eye(self.dim, dtype=target.dtype, device=target.device).repeat(b, 1)  # (B·D, D)
        return [onehot, *(f.repeat_interleave(self.dim, 0) for f in feats)], target.reshape(1, -1)

    def set_cores(self, cores: list[torch.Tensor]) -> None:
        """Replace the cores' values (shapes must match)."""
        with torch.no_grad():
            for p, c in zip(self.cores, cores):
                p.copy_(c)

    def to_teneva(self) -> list[list]:
        """One teneva TT-tensor of coefficients per output (the output-index core merged into the first core).

        teneva's ``func_get`` evaluates them on the *scaled* inputs [z_1, …, z_D, 2t − 1] ∈ [−1, 1]^{D+1} when the
        basis is ``chebyshev`` (its only built-in basis).
        """
        cores = [c.detach() for c in self.cores]
        if self.cfg.layout == "shared":
            first = torch.einsum("jr,rns->jns", cores[0][0, 0], cores[1][0])  # (D, n, r_1)
            cores = [first[:, None], *(c.expand(self.dim, -1, -1, -1) for c in cores[2:])]
        return algebra.to_teneva(cores)


@MODELS.register("tt", options=TTConfig)
def build(dim: int, image_shape: tuple[int, ...] | None = None, **hparams) -> TTNoise:
    """A :class:`TTNoise` for D = ``dim`` (``image_shape`` is ignored: images are vectors to a TT)."""
    return TTNoise(dim, check_options(TTConfig, hparams, "tt"))
