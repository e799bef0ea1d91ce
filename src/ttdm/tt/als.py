"""Alternating least squares for functional tensor trains (Holtz, Rohwedder & Schneider 2012; teneva.als_func).

The model f_p(x) = ⟨C_p, F_0(x) ⊗ ⋯ ⊗ F_{d−1}(x)⟩ is linear in each core, so with every other core fixed the
regularised least-squares objective

    J(C) = Σ_p [ (1/N) Σ_b (y_{p,b} − f_p(x_b))² + λ ‖C_p‖_F² ]

is a ridge regression in the core G_k:  f_p(x_b) = ⟨L_k[p, b] ⊗ F_k[b] ⊗ R_k[p, b], G_k[p]⟩ with the left and right
interfaces L_k: (P, N, r_{k−1}), R_k: (P, N, r_k).  The cores left of k are kept left-orthogonal and those right of
k right-orthogonal (the orthogonality centre moves with k by QR), so ‖C_p‖ = ‖G_k[p]‖ and each update
minimises J exactly over its core: a sweep never increases J.  Per core and sweep the cost is O(P N (r n r)²) to
form the normal equations plus O(P (r n r)³) to solve them.
"""

from __future__ import annotations

import torch

from ttdm.tt.algebra import Cores, apply_core, apply_core_right, norm, right_orthogonalize, values


def objective(cores: Cores, feats: list[torch.Tensor], y: torch.Tensor, lam: float) -> torch.Tensor:
    """J(C): the mean squared error summed over the P tensors plus λ Σ_p ‖C_p‖² (computed from the cores)."""
    mse = ((values(cores, feats) - y) ** 2).mean(dim=1).sum()
    return mse + lam * (norm(cores) ** 2).sum()


def _solve_core(
    left: torch.Tensor, feat: torch.Tensor, right: torch.Tensor, y: torch.Tensor, lam: float, chunk: int
) -> torch.Tensor:
    """argmin_G (1/N)‖y − A g‖² + λ‖g‖², A[p, b] = L[p, b] ⊗ F[b] ⊗ R[p, b]: (P, r, n, s), rows in chunks."""
    n_tt, n_pts, r = left.shape
    n, s = feat.shape[1], right.shape[2]
    size = r * n * s
    gram = torch.zeros(n_tt, size, size, dtype=left.dtype, device=left.device)
    rhs = torch.zeros(n_tt, size, dtype=left.dtype, device=left.device)
    for lo in range(0, n_pts, chunk):
        sl = slice(lo, lo + chunk)
        design = torch.einsum("pbr,bn,pbs->pbrns", left[:, sl], feat[sl], right[:, sl]).reshape(n_tt, -1, size)
        gram += design.transpose(1, 2) @ design
        rhs += torch.einsum("pbk,pb->pk", design, y[:, sl])
    gram = gram / n_pts + lam * torch.eye(size, dtype=left.dtype, device=left.device)
    sol = torch.linalg.solve(gram, rhs / n_pts)
    return sol.reshape(n_tt, r, n, s)


def sweep(
    cores: Cores, feats: list[torch.Tensor], y: torch.Tensor, lam: float = 1e-3, chunk: int = 8192
) -> Cores:
    """One ALS sweep: solve cores 0, 1, …, d−1 moving the centre right, then d−2, …, 0 moving it back.

    Args:
        cores: the current batched TT (P, r_{k−1}, n_k, r_k); any gauge (it is right-orthogonalised first).
        feats: features F_k: (N, n_k) of the N sample points.
        y: targets (P, N).
        lam: ridge weight λ ≥ 0 on ‖C_p‖_F².
        chunk: rows per block when forming the normal equations (bounds memory at chunk·r n r numbers).
    Returns:
        New cores (same shapes) with the orthogonality centre at core 0.
    """
    cores = right_orthogonalize([c.detach() for c in cores])
    d = len(cores)
    n_tt, n_pts = y.shape
    ones = torch.ones(n_tt, n_pts, 1, dtype=y.dtype, device=y.device)
    rights = [ones]
    for core, feat in zip(cores[:0:-1], feats[:0:-1]):
        rights.append(apply_core_right(core, feat, rights[-1]))
    rights = rights[::-1]  # R_k for k = 0..d−1
    lefts = [ones] + [None] * (d - 1)
    for k in range(d):  # left to right
        cores[k] = _solve_core(lefts[k], feats[k], rights[k], y, lam, chunk)
        if k < d - 1:
            p, r, n, s = cores[k].shape
            q, rr = torch.linalg.qr(cores[k].reshape(p, r * n, s))
            cores[k] = q.reshape(p, r, n, s)
            cores[k + 1] = torch.einsum("pas,psnt->pant", rr, cores[k + 1])
            lefts[k + 1] = apply_core(lefts[k], cores[k], feats[k])
    for k in range(d - 1, 0, -1):  # right to left: move the centre from k to k − 1, then solve k − 1
        p, r, n, s = cores[k].shape
        q, rr = torch.linalg.qr(cores[k].reshape(p, r, n * s).transpose(1, 2))
        cores[k] = q.transpose(1, 2).reshape(p, r, n, s)
        cores[k - 1] = torch.einsum("panr,pbr->panb", cores[k - 1], rr)
        rights[k - 1] = apply_core_right(cores[k], feats[k], rights[k])
        cores[k - 1] = _solve_core(lefts[k - 1], feats[k - 1], rights[k - 1], y, lam, chunk)
    return cores


def sweep_teneva(
    cores: Cores, points: torch.Tensor, bases: list, y: torch.Tensor, lam: float = 1e-3
) -> Cores:
    """One sweep of ``teneva.als_func`` per tensor (P scalar problems, CPU, NumPy).

    teneva regularises each core solve as (AᵀA + λ' I) g = Aᵀy with sums, not means, over the N rows; λ' = λ N makes
    its ridge weight match :func:`sweep`'s on the first core only: teneva keeps no orthogonal gauge, so it penalises
    ‖G_k‖ of non-orthogonal cores, not ‖C_p‖.  With interfaces of small norm the penalty dominates and a core (hence
    the whole tensor) shrinks to exactly zero: at λ = 0.1 every tensor of the quick preset's gmm8 is zero after the
    first sweep.  This is why :func:`sweep` is the default engine; ``ttdm.methods.tt_solvers`` refuses a collapse.

    Args:
        points: (N, d) the scaled inputs in [−1, 1] of every mode.
        bases: d callables mapping (N,) points of one mode to (N, n_k) features (torch).
        y: targets (P, N).
    """
    import numpy as np
    import teneva

    from ttdm.tt.algebra import from_teneva, to_teneva

    pts = points.detach().cpu().double().numpy()
    fh = [(lambda x, f=f: f(torch.from_numpy(np.ascontiguousarray(x))).numpy().T) for f in bases]
    targets = y.detach().cpu().double().numpy()
    out = []
    for p, tt in enumerate(to_teneva(cores)):
        out.append(teneva.als_func(pts, targets[p], tt, nswp=1, fh=fh, lamb=lam * pts.shape[0], info={}))
    return [c.to(dtype=cores[0].dtype, device=cores[0].device) for c in from_teneva(out)]
