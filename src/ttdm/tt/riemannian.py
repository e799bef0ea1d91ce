"""Riemannian gradient descent on the manifold M_r of tensor trains of fixed rank r (Steinlechner 2016).

At X ∈ M_r with left-orthogonal cores U_k (k < d−1), last core S (X = U_0 ⋯ U_{d−2} S) and right-orthogonal cores
V_k (k > 0) from the same tensor, a tangent vector is

    ξ = Σ_k U_{<k} δ_k V_{>k},   with the gauge U_kᴸᵀ δ_kᴸ = 0 for k < d−1 (left unfoldings),

and the orthogonal projection of a tensor Z onto T_X M_r has δ_k = (I − U_kᴸ U_kᴸᵀ) ∂_k (no projector for the last
core), ∂_k = U_{<k}ᵀ Z V_{>k}ᵀ the contraction of Z with every core but k.  For the functional loss
ℓ(X) = (1/N) Σ_b (y_b − ⟨X, F(x_b)⟩)², Z = ∇ℓ = Σ_b w_b F(x_b) with w_b = 2(f_b − y_b)/N is a sum of rank-1
tensors, so ∂_k = Σ_b w_b L^U_k[b] ⊗ F_k[b] ⊗ R^V_k[b] costs O(N Σ r n r) without forming Z.

A step X ← R(X − α ξ) with the retraction R = TT-SVD rounding back to rank r of the rank-2r TT

    X − α ξ = [−αδ_0, U_0] · [[V_1, 0], [−αδ_1, U_1]] ⋯ [[V_{d−1}], [S − αδ_{d−1}]],

whose error ‖R(X + αξ) − (X + αξ)‖ is O(α²) (a second-order retraction; Absil & Oseledets 2015).  The step size is
fixed or chosen by Armijo backtracking ℓ(R(X − αξ)) ≤ ℓ(X) − c α ‖ξ‖².  Everything is batched over P tensors
(one manifold per tensor; one step size for all).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ttdm.tt.algebra import (
    Cores,
    apply_core,
    apply_core_right,
    full,
    left_orthogonalize,
    right_orthogonalize,
    round_to_ranks,
    values,
)


class Point(NamedTuple):
    """A point of M_r in both gauges: U (cores 0..d−2 left-orthogonal, last core S = U[-1]) and V (right-orth)."""

    U: Cores
    V: Cores


def point(cores: Cores) -> Point:
    cores = [c.detach() for c in cores]
    return Point(left_orthogonalize(cores), right_orthogonalize(cores))


def _gauge(U: Cores, deltas: Cores) -> Cores:
    """δ_k ← (I − U_kᴸ U_kᴸᵀ) δ_k for k < d−1."""
    out = []
    for k, (u, dk) in enumerate(zip(U, deltas)):
        if k < len(U) - 1:
            p, r, n, s = u.shape
            ul, dl = u.reshape(p, r * n, s), dk.reshape(p, r * n, dk.shape[-1])
            dk = (dl - ul @ (ul.transpose(1, 2) @ dl)).reshape(dk.shape)
        out.append(dk)
    return out


def project_rank1_sum(x: Point, feats: list[torch.Tensor], weights: torch.Tensor) -> Cores:
    """δ of P_X(Σ_b w_b F_0[b] ⊗ ⋯ ⊗ F_{d−1}[b]): weights (P, N), feats F_k: (N, n_k) -> cores like X."""
    U, V = x
    d = len(U)
    n_tt, n_pts = weights.shape
    ones = torch.ones(n_tt, n_pts, 1, dtype=weights.dtype, device=weights.device)
    lefts = [ones]
    for core, feat in zip(U[:-1], feats[:-1]):
        lefts.append(apply_core(lefts[-1], core, feat))
    rights = [ones]
    for core, feat in zip(V[:0:-1], feats[:0:-1]):
        rights.append(apply_core_right(core, feat, rights[-1]))
    rights = rights[::-1]
    deltas = [torch.einsum("pb,pbr,bn,pbs->prns", weights, lefts[k], feats[k], rights[k]) for k in range(d)]
    return _gauge(U, deltas)


def project_full(x: Point, z: torch.Tensor) -> Cores:
    """δ of P_X(Z) for a dense Z: (P, n_0, …, n_{d−1}).  For tests and small problems."""
    U, V = x
    d = len(U)
    deltas = []
    for k in range(d):
        t = z[:, None, ..., None]  # (P, 1, n_0, …, n_{d−1}, 1)
        for j in range(k):  # contract modes 0..k−1 with U_{<k}
            t = torch.einsum("pan...,pans->ps...", t, U[j])
        for j in range(d - 1, k, -1):  # contract modes d−1..k+1 with V_{>k}
            t = torch.einsum("p...ns,prns->p...r", t, V[j])
        deltas.append(t)  # (P, r_{k−1}, n_k, r_k)
    return _gauge(U, deltas)


def tangent_full(x: Point, deltas: Cores) -> torch.Tensor:
    """The dense tangent vector Σ_k U_{<k} δ_k V_{>k}: (P, n_0, …, n_{d−1}).  For tests."""
    U, V = x
    return sum(full([*U[:k], deltas[k], *V[k + 1 :]]) for k in range(len(U)))


def inner(a: Cores, b: Cores) -> torch.Tensor:
    """⟨ξ, η⟩ of two tangent vectors at the same point (gauged δ's): Σ_k ⟨δ_k, η_k⟩, (P,)."""
    return sum((x * y).flatten(1).sum(1) for x, y in zip(a, b))


def step(x: Point, deltas: Cores, alpha: float, ranks: list[int]) -> Cores:
    """R(X − α ξ): the rank-2r TT of X − α ξ (module docstring) rounded back to ``ranks``."""
    U, V = x
    d = len(U)
    cores = []
    for k in range(d):
        dk = -alpha * deltas[k]
        if k == 0:
            cores.append(torch.cat([dk, U[0]], dim=3))
        elif k == d - 1:
            cores.append(torch.cat([V[k], U[k] + dk], dim=1))
        else:
            p, r, n, _ = V[k].shape
            top = torch.cat([V[k], V[k].new_zeros(p, r, n, U[k].shape[3])], dim=3)
            bottom = torch.cat([dk, U[k]], dim=3)
            cores.append(torch.cat([top, bottom], dim=1))
    return round_to_ranks(cores, ranks)


def mse(cores: Cores, feats: list[torch.Tensor], y: torch.Tensor) -> torch.Tensor:
    """ℓ = mean over all P·N entries of (f − y)²."""
    return ((values(cores, feats) - y) ** 2).mean()


def descent(
    cores: Cores, feats: list[torch.Tensor], y: torch.Tensor, ranks: list[int], alpha: float, *,
    line_search: bool = True, c: float = 1e-4, max_halvings: int = 30, min_alpha: float = 0.0,
) -> tuple[Cores, float, float]:
    """One Riemannian gradient step on ℓ(X) = mean (f − y)² (module docstring).

    With ``line_search`` the step starts at ``alpha`` (at least ``min_alpha``) and is halved, never below
    ``min_alpha``, until the Armijo condition ℓ(R(X − αξ)) ≤ ℓ(X) − c α ‖ξ‖² holds (at most ``max_halvings``
    halvings).  When no trial satisfies it, the trial of lowest loss is taken if it lowers ℓ, else X is kept (the
    returned cores are the given ones and the returned step the last, smallest one tried).  Returns (new cores, the
    step used, ℓ at the new point).
    """
    x = point(cores)
    resid = values(x.U, feats) - y  # (P, N)
    loss = (resid**2).mean()
    grad = project_rank1_sum(x, feats, 2 * resid / resid.numel())
    if not line_search:
        new = step(x, grad, alpha, ranks)
        return new, alpha, float(mse(new, feats, y))
    gnorm2 = float(inner(grad, grad).sum())
    alpha = max(float(alpha), float(min_alpha))
    best: tuple[Cores, float, float] | None = None  # (cores, step, loss) of the lowest trial
    for halving in range(max_halvings + 1):
        new = step(x, grad, alpha, ranks)
        new_loss = float(mse(new, feats, y))
        if new_loss <= float(loss) - c * alpha * gnorm2:
            return new, alpha, new_loss
        if best is None or new_loss < best[2]:
            best = (new, alpha, new_loss)
        if halving == max_halvings or alpha <= min_alpha:
            break
        alpha = max(alpha / 2, float(min_alpha))
    if best is not None and best[2] < float(loss):
        return best
    return [core.detach() for core in cores], alpha, float(loss)
