"""Batched tensor trains in torch: P tensor trains with the same mode sizes and ranks, evaluated on features.

A *batched TT* is a list of d cores ``G_k`` of shape (P, r_{k−1}, n_k, r_k) with r_{−1} = r_{d−1} = 1: P tensors
C_p ∈ R^{n_0 × … × n_{d−1}},

    C_p[i_0, …, i_{d−1}] = G_0[p, :, i_0, :] G_1[p, :, i_1, :] ⋯ G_{d−1}[p, :, i_{d−1}, :].

A *functional* TT evaluates C_p against one feature vector per mode: with features F_k: (N, n_k) (basis functions
of coordinate k at N points),

    f_p(x_b) = Σ_{i} C_p[i_0, …, i_{d−1}] F_0[b, i_0] ⋯ F_{d−1}[b, i_{d−1}],

computed by contracting the cores one at a time (cost O(P N Σ_k r_{k−1} n_k r_k)), never forming C_p.  Everything
here works on any device and dtype and is differentiable.
"""

from __future__ import annotations

import math

import numpy as np
import torch

Cores = list[torch.Tensor]


def capped_ranks(sizes: list[int], rank: int) -> list[int]:
    """Interior ranks r_0..r_{d−2} = min(rank, Π_{j≤k} n_j, Π_{j>k} n_j): the largest ranks a TT can have.

    The products are exact Python integers: 9^21 already overflows int64 (np.prod would give 0 or negative ranks).
    """
    sizes = [int(n) for n in sizes]
    return [min(int(rank), math.prod(sizes[: k + 1]), math.prod(sizes[k + 1 :])) for k in range(len(sizes) - 1)]


def random_cores(
    n_tt: int, sizes: list[int], ranks: list[int], generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> Cores:
    """Cores with i.i.d. N(0, 1/(r_{k−1} n_k)) entries: (P, r_{k−1}, n_k, r_k) for k = 0..d−1."""
    bounds = [1, *ranks, 1]
    cores = []
    for k, n in enumerate(sizes):
        shape = (n_tt, bounds[k], n, bounds[k + 1])
        cores.append(torch.randn(shape, generator=generator, dtype=dtype) / np.sqrt(bounds[k] * n))
    return cores


def apply_core(left: torch.Tensor, core: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
    """Left interface times one core at the features: (P, N, r) x (P, r, n, s) x (N, n) -> (P, N, s)."""
    tmp = torch.einsum("pbr,prns->pbns", left, core)  # (P, N, n, s)
    return torch.einsum("pbns,bn->pbs", tmp, feat)


def apply_core_right(core: torch.Tensor, feat: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """One core at the features times a right interface: (P, r, n, s) x (N, n) x (P, N, s) -> (P, N, r)."""
    tmp = torch.einsum("prns,pbs->pbrn", core, right)  # (P, N, r, n)
    return torch.einsum("pbrn,bn->pbr", tmp, feat)


def left_interfaces(cores: Cores, feats: list[torch.Tensor]) -> list[torch.Tensor]:
    """L_k = G_0[F_0] ⋯ G_{k−1}[F_{k−1}] for k = 0..d−1 (L_0 = 1): each (P, N, r_{k−1})."""
    n_tt, n_pts = cores[0].shape[0], feats[0].shape[0]
    out = [torch.ones(n_tt, n_pts, 1, dtype=cores[0].dtype, device=cores[0].device)]
    for core, feat in zip(cores[:-1], feats[:-1]):
        out.append(apply_core(out[-1], core, feat))
    return out


def right_interfaces(cores: Cores, feats: list[torch.Tensor]) -> list[torch.Tensor]:
    """R_k = G_{k+1}[F_{k+1}] ⋯ G_{d−1}[F_{d−1}] for k = 0..d−1 (R_{d−1} = 1): each (P, N, r_k)."""
    n_tt, n_pts = cores[0].shape[0], feats[0].shape[0]
    out = [torch.ones(n_tt, n_pts, 1, dtype=cores[0].dtype, device=cores[0].device)]
    for core, feat in zip(cores[:0:-1], feats[:0:-1]):
        out.append(apply_core_right(core, feat, out[-1]))
    return out[::-1]


def values(cores: Cores, feats: list[torch.Tensor]) -> torch.Tensor:
    """f_p(x_b) for every TT p and point b: (P, N)."""
    right = torch.ones(cores[0].shape[0], feats[0].shape[0], 1, dtype=cores[0].dtype, device=cores[0].device)
    for core, feat in zip(cores[::-1], feats[::-1]):
        right = apply_core_right(core, feat, right)
    return right[..., 0]


def full(cores: Cores) -> torch.Tensor:
    """The dense tensors C_p: (P, n_0, …, n_{d−1}).  For tests and small problems only."""
    out = cores[0][:, 0]  # (P, n_0, r_0)
    for core in cores[1:]:
        out = torch.einsum("p...r,prns->p...ns", out, core)
    return out[..., 0]


def norm(cores: Cores) -> torch.Tensor:
    """Frobenius norms ‖C_p‖ by contracting the TT with itself: (P,)."""
    gram = torch.ones(cores[0].shape[0], 1, 1, dtype=cores[0].dtype, device=cores[0].device)
    for core in cores:
        gram = torch.einsum("pab,pani,pbnj->pij", gram, core, core)
    return gram[:, 0, 0].clamp_min(0).sqrt()


# ----------------------------------------------------------------------------------------------------------------
# Orthogonalisation and rounding


def _unfold_left(core: torch.Tensor) -> torch.Tensor:
    p, r, n, s = core.shape
    return core.reshape(p, r * n, s)


def left_orthogonalize(cores: Cores, upto: int | None = None) -> Cores:
    """The same tensors with cores 0..upto−1 left-orthogonal (G^L ᵀ G^L = I for the (r n, s) unfolding).

    The norm moves into core ``upto`` (default d−1).  Ranks are kept when r_{k−1} n_k ≥ r_k, which
    :func:`capped_ranks` guarantees.
    """
    cores = list(cores)
    upto = len(cores) - 1 if upto is None else upto
    for k in range(upto):
        p, r, n, s = cores[k].shape
        q, rr = torch.linalg.qr(_unfold_left(cores[k]))  # (P, r n, s'), (P, s', s)
        cores[k] = q.reshape(p, r, n, q.shape[-1])
        cores[k + 1] = torch.einsum("pas,psnt->pant", rr, cores[k + 1])
    return cores


def right_orthogonalize(cores: Cores, downto: int = 0) -> Cores:
    """The same tensors with cores downto+1..d−1 right-orthogonal (G^R G^R ᵀ = I for the (r, n s) unfolding)."""
    cores = list(cores)
    for k in range(len(cores) - 1, downto, -1):
        p, r, n, s = cores[k].shape
        q, rr = torch.linalg.qr(cores[k].reshape(p, r, n * s).transpose(1, 2))  # (P, n s, r'), (P, r', r)
        cores[k] = q.transpose(1, 2).reshape(p, q.shape[-1], n, s)
        cores[k - 1] = torch.einsum("panr,pbr->panb", cores[k - 1], rr)  # absorb Rᵀ
    return cores


def round_to_ranks(cores: Cores, ranks: list[int]) -> Cores:
    """TT-SVD rounding (Oseledets 2011, Alg. 2): the best-in-each-unfolding approximation with ranks ≤ ``ranks``.

    Right-orthogonalise, then sweep left to right keeping the leading singular triplets of each left unfolding.
    When an unfolding has fewer than r_k singular values the core is zero-padded to rank r_k, so the result always
    has exactly the target rank profile (the fixed-rank manifold's parametrisation).
    """
    cores = right_orthogonalize(cores)
    for k in range(len(cores) - 1):
        p, r, n, s = cores[k].shape
        u, sv, vh = torch.linalg.svd(_unfold_left(cores[k]), full_matrices=False)
        keep = min(ranks[k], sv.shape[-1])
        u, sv, vh = u[..., :keep], sv[..., :keep], vh[..., :keep, :]
        if keep < ranks[k]:
            pad = ranks[k] - keep
            u = torch.nn.functional.pad(u, (0, pad))
            sv = torch.nn.functional.pad(sv, (0, pad))
            vh = torch.nn.functional.pad(vh, (0, 0, 0, pad))
        cores[k] = u.reshape(p, r, n, ranks[k])
        cores[k + 1] = torch.einsum("pa,pas,psnt->pant", sv, vh, cores[k + 1])
    return cores


# ----------------------------------------------------------------------------------------------------------------
# teneva's format: a list of NumPy cores (r_{k−1}, n_k, r_k) per tensor


def to_teneva(cores: Cores) -> list[list[np.ndarray]]:
    """The P tensors as P teneva TT-tensors (lists of float64 NumPy cores)."""
    return [[c[p].detach().cpu().double().numpy().copy() for c in cores] for p in range(cores[0].shape[0])]


def from_teneva(tts: list[list[np.ndarray]], dtype: torch.dtype = torch.float64) -> Cores:
    """Stack P teneva TT-tensors of equal shapes and ranks into a batched TT."""
    shapes = {tuple(c.shape for c in tt) for tt in tts}
    if len(shapes) != 1:
        raise ValueError(f"teneva tensors must share mode sizes and ranks to be batched, got {sorted(shapes)}")
    return [torch.stack([torch.as_tensor(tt[k], dtype=dtype) for tt in tts]) for k in range(len(tts[0]))]
