"""Attention over N tokens of width d: exact softmax attention and its FAVOR+ (Performer) approximation.

Notation: N tokens (L in the Performer paper), d the width of a head, m random features, B the batch and H heads;
every function takes any leading dimensions, so q, k, v: (B, N, d) and (B, H, N, d) both work.

- softmax: Att(Q, K, V) = D⁻¹ A V with A = exp(Q Kᵀ/√d), D = diag(A 1_N) (Vaswani et al. 2017, eq. 1); time
  O(N² d), and memory O(N d) only where the fused kernel never forms A.
- FAVOR+ (Choromanski et al. 2021, "Rethinking attention with Performers", sec. 2, Lemma 1): the kernel
  exp(q·k/√d) = E_w[φ(q̂)·φ(k̂)] with q̂ = d^{-1/4} q, k̂ = d^{-1/4} k and the positive random features

      φ(x) = (exp(w_1·x − ‖x‖²/2), …, exp(w_m·x − ‖x‖²/2)) / √m,   w_i ~ N(0, I_d),

  so Att ≈ D̂⁻¹ φ(Q̂) (φ(K̂)ᵀ V) with D̂ = diag(φ(Q̂) (φ(K̂)ᵀ 1_N)), computed right to left in time and memory
  O(N m d): the N×N matrix is never formed.  The w_i come in blocks of d exactly orthogonal directions with χ_d
  norms (orthogonal random features, which lower the variance and keep the estimate unbiased).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ATTENTIONS = ("softmax", "performer")


class SoftmaxAttention(nn.Module):
    """Att(Q, K, V) = softmax(Q Kᵀ / √d) V (Vaswani et al. 2017, eq. 1), by ``F.scaled_dot_product_attention``.

    Shapes: q, k, v: (..., N, d) -> (..., N, d).
    """

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v)


def default_features(dim_head: int) -> int:
    """m = round(d ln d), the paper's default (its theory asks for m = Θ(d log d)), at least 1."""
    return max(1, round(dim_head * math.log(dim_head)))


def orthogonal_gaussian_projection(features: int, dim_head: int, generator: torch.Generator) -> torch.Tensor:
    """W: (m, d), rows w_i = s_i u_i in ⌈m/d⌉ blocks of d orthonormal directions u_i (the last block cut to size).

    Each block is Haar-distributed: the Q factor of a d×d Gaussian matrix with R's diagonal made positive (Mezzadri
    2007; without it LAPACK's Q is not Haar).  The norms s_i ~ χ_d are those of independent d-dimensional Gaussians,
    so every row is marginally N(0, I_d) and the kernel estimate stays unbiased (Choromanski et al. 2021, sec. 2.4).
    Drawn in float64 on the CPU from ``generator``, so that every device and dtype gets the same matrix.
    """
    blocks = math.ceil(features / dim_head)
    gauss = torch.randn(blocks, dim_head, dim_head, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(gauss)  # (blocks, d, d) each
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[:, None, :]  # column j times sign(R_jj)
    directions = q.transpose(-2, -1).reshape(blocks * dim_head, dim_head)[:features]  # (m, d), rows orthonormal
    norms = torch.randn(features, dim_head, generator=generator, dtype=torch.float64).norm(dim=1)  # (m,) ~ χ_d
    return norms[:, None] * directions


def favor_features(x: torch.Tensor, projection: torch.Tensor, *, stabilize: str = "none",
                   eps: float = 0.0) -> torch.Tensor:
    """φ(x̂) = (exp(W x̂ − ‖x̂‖²/2 − c) + ε) / √m with x̂ = d^{-1/4} x, the positive features of exp(q·k/√d).

    ``stabilize`` picks the detached constant c that keeps exp from overflowing: "none" (c = 0: then E[φ(q̂)·φ(k̂)]
    = exp(q·k/√d) exactly), "row" (the largest w_i·x̂ of each token: for queries) or "all" (the largest over every
    token and feature of each batch element and head: for keys).  Both cancel in D̂⁻¹ when ε = 0.  ``eps`` ε is a
    floor that keeps D̂ away from zero (the reference implementations use 1e-4).

    Shapes: x: (..., N, d), projection W: (m, d), or (..., m, d) for one W per batch element -> (..., N, m).
    """
    if stabilize not in ("none", "row", "all"):
        raise ValueError(f"stabilize {stabilize!r} is not allowed; allowed: none, row, all")
    d, m = x.shape[-1], projection.shape[-2]
    wx = x @ (projection.to(x.dtype) * d ** -0.25).transpose(-2, -1)  # W x̂ with x̂ = d^{-1/4} x: (..., N, m)
    shift = x.square().sum(dim=-1, keepdim=True) * (0.5 / math.sqrt(d))  # ‖x̂‖²/2: (..., N, 1)
    if stabilize == "row":
        shift = shift + wx.amax(dim=-1, keepdim=True).detach()  # + c: (..., N, 1)
    elif stabilize == "all":
        shift = shift + wx.amax(dim=(-2, -1), keepdim=True).detach()  # + c: (..., 1, 1)
    # one pass over the (N, m) features for each of subtract, exp and add: the shifts and 1/√m = exp(−ln(m)/2) go
    # into the small (N, 1) shift first
    return torch.exp(wx - (shift + 0.5 * math.log(m))) + eps * m ** -0.5


def favor_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, projection: torch.Tensor, *,
                    eps: float = 1e-4) -> torch.Tensor:
    """Att ≈ D̂⁻¹ φ(Q̂) (φ(K̂)ᵀ V), D̂ = diag(φ(Q̂) (φ(K̂)ᵀ 1_N)) (Choromanski et al. 2021, sec. 2.2), in O(N m d).

    Queries are stabilised per token, keys over all tokens (:func:`favor_features`), as in the paper's code.

    Shapes: q, k: (..., N, d), v: (..., N, d_v), projection: (m, d) -> (..., N, d_v).
    """
    phi_q = favor_features(q, projection, stabilize="row", eps=eps)  # (..., N, m)
    phi_k = favor_features(k, projection, stabilize="all", eps=eps)  # (..., N, m)
    kv = phi_k.transpose(-2, -1) @ v  # (..., m, d_v)
    inverse = (phi_q @ phi_k.sum(dim=-2).unsqueeze(-1)).reciprocal()  # (..., N, 1) = D̂⁻¹ 1_N
    return (phi_q @ kv) * inverse  # (..., N, d_v)


def stream_seed(seed: int, draw: int) -> int:
    """A 64-bit seed for the ``draw``-th projection of a layer seeded ``seed`` (NumPy's SeedSequence mixing)."""
    return int(np.random.SeedSequence([seed, draw]).generate_state(1, np.uint64)[0])


class PerformerAttention(nn.Module):
    """FAVOR+ attention (:func:`favor_attention`) with its projection W redrawn every ``redraw_every`` training calls.

    Args:
        dim_head: d, the width of q and k.
        features: m, the number of random features; 0 means round(d ln d) (:func:`default_features`).
        redraw_every: draw a new W before every ``redraw_every``-th forward call in training mode (calls in eval
            mode neither count nor redraw); 0 keeps the first W for good.
        seed: W number n is drawn from ``stream_seed(seed, n)``; None takes the seed from the global torch RNG,
            so a model built after ``torch.manual_seed`` is reproducible.
        eps: the feature floor ε of :func:`favor_features`.

    W, the seed and the call count are buffers, so a checkpoint resumes with the same draws.

    Shapes: q, k, v: (..., N, d) -> (..., N, d).
    """

    def __init__(self, dim_head: int, *, features: int = 0, redraw_every: int = 1000, seed: int | None = None,
                 eps: float = 1e-4) -> None:
        super().__init__()
        if dim_head < 1 or features < 0 or redraw_every < 0 or eps < 0:
            raise ValueError(f"performer attention: dim_head {dim_head} must be ≥ 1 and features {features}, "
                             f"redraw_every {redraw_every}, eps {eps} ≥ 0")
        self.dim_head = dim_head
        self.features = features or default_features(dim_head)
        self.redraw_every = redraw_every
        self.eps = eps
        self.register_buffer("seed", torch.randint(0, 2**62, ()) if seed is None else torch.tensor(seed))
        self.register_buffer("calls", torch.tensor(0))  # forward calls in training mode
        self.register_buffer("projection", self.draw(0).to(torch.get_default_dtype()))

    def draw(self, n: int) -> torch.Tensor:
        """W number n (float64, CPU): (m, d)."""
        generator = torch.Generator().manual_seed(stream_seed(int(self.seed), n))
        return orthogonal_gaussian_projection(self.features, self.dim_head, generator)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if self.training:
            calls = int(self.calls)
            if self.redraw_every and calls and calls % self.redraw_every == 0:
                # a new tensor, not an in-place copy: a graph that still holds the old W stays valid
                self.projection = self.draw(calls // self.redraw_every).to(self.projection)
            self.calls.add_(1)
        return favor_attention(q, k, v, self.projection, eps=self.eps)

    def extra_repr(self) -> str:
        return f"dim_head={self.dim_head}, features={self.features}, redraw_every={self.redraw_every}"


def make_attention(kind: str, dim: int, **options: object) -> nn.Module:
    """The attention module ``kind`` ("softmax" or "performer") for heads of width ``dim``; ``options`` go to
    :class:`PerformerAttention` (softmax takes none)."""
    if kind == "softmax":
        if options:
            raise TypeError(f"softmax attention takes no options, got {sorted(options)}")
        return SoftmaxAttention()
    if kind == "performer":
        return PerformerAttention(dim, **options)  # type: ignore[arg-type]
    raise ValueError(f"attention {kind!r} is not allowed; allowed: {', '.join(ATTENTIONS)}")
