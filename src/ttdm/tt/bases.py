"""Univariate basis functions φ(x) = (φ_0(x), …, φ_{m−1}(x)) on [−1, 1] for functional tensor trains.

Every basis maps x: (N,) in [−1, 1] to (N, m).  Points are never extrapolated: the TT model clamps its inputs to
[−1, 1] before calling a basis (see ``ttdm.models.tt``).

- ``legendre``: orthonormal Legendre polynomials √(2k+1) P_k(x) by Bonnet's recursion
  (k+1) P_{k+1} = (2k+1) x P_k − k P_{k−1}; never monomials (those are ill-conditioned at high degree).
- ``chebyshev``: Chebyshev polynomials of the first kind, T_{k+1} = 2x T_k − T_{k−1} (teneva's basis).
- ``bspline``: the m cubic B-splines on clamped uniform knots over [−1, 1] (Cox–de Boor recursion), m ≥ 4; a
  partition of unity with local support.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Basis = Callable[[torch.Tensor, int], torch.Tensor]
BASES: dict[str, Basis] = {}


def register(name: str) -> Callable[[Basis], Basis]:
    def decorator(fn: Basis) -> Basis:
        BASES[name] = fn
        return fn

    return decorator


def get_basis(name: str) -> Basis:
    """The basis registered as ``name``; a ValueError lists the allowed names otherwise."""
    if name not in BASES:
        raise ValueError(f"unknown basis {name!r}; allowed: {', '.join(sorted(BASES))}")
    return BASES[name]


def min_size(name: str) -> int:
    """The smallest number of functions a basis accepts."""
    return 4 if name == "bspline" else 1


@register("legendre")
def legendre(x: torch.Tensor, m: int) -> torch.Tensor:
    """√(2k+1) P_k(x), k = 0..m−1 (orthonormal for the uniform density on [−1, 1]).  x: (N,) -> (N, m)."""
    cols = [torch.ones_like(x)]
    if m > 1:
        cols.append(x)
    for k in range(1, m - 1):
        cols.append(((2 * k + 1) * x * cols[k] - k * cols[k - 1]) / (k + 1))
    scale = torch.sqrt(2 * torch.arange(m, dtype=x.dtype, device=x.device) + 1)
    return torch.stack(cols, dim=-1) * scale


@register("chebyshev")
def chebyshev(x: torch.Tensor, m: int) -> torch.Tensor:
    """T_k(x), k = 0..m−1, as ``teneva.func_basis``.  x: (N,) -> (N, m)."""
    cols = [torch.ones_like(x)]
    if m > 1:
        cols.append(x)
    for k in range(2, m):
        cols.append(2 * x * cols[k - 1] - cols[k - 2])
    return torch.stack(cols, dim=-1)


def bspline_knots(m: int, degree: int = 3, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Clamped uniform knots on [−1, 1] for m B-splines of ``degree``: (m + degree + 1,)."""
    if m < degree + 1:
        raise ValueError(f"a degree-{degree} B-spline basis needs at least {degree + 1} functions, got {m}")
    inner = torch.linspace(-1.0, 1.0, m - degree + 1, dtype=dtype)
    return torch.cat([inner[:1].repeat(degree), inner, inner[-1:].repeat(degree)])


@register("bspline")
def bspline(x: torch.Tensor, m: int, degree: int = 3) -> torch.Tensor:
    """The m clamped cubic B-splines B_{k,3}(x) (Cox–de Boor).  x: (N,) -> (N, m); x = 1 belongs to the last span."""
    t = bspline_knots(m, degree, x.dtype).to(x.device)
    n_spans = len(t) - 1
    xc = x[:, None]
    # degree 0: indicators of [t_j, t_{j+1}); the last non-empty span is closed on the right
    basis = ((xc >= t[:-1]) & (xc < t[1:])).to(x.dtype)  # (N, n_spans)
    last = int(torch.nonzero(t[1:] > t[:-1])[-1])
    basis[:, last] = torch.where(x == t[-1], torch.ones_like(x), basis[:, last])
    for p in range(1, degree + 1):
        j = torch.arange(n_spans - p, device=x.device)
        left_den = t[j + p] - t[j]
        right_den = t[j + p + 1] - t[j + 1]
        left = torch.where(left_den > 0, (xc - t[j]) / torch.where(left_den > 0, left_den, 1), 0)
        right = torch.where(right_den > 0, (t[j + p + 1] - xc) / torch.where(right_den > 0, right_den, 1), 0)
        basis = left * basis[:, :-1] + right * basis[:, 1:]
    return basis  # (N, m)
