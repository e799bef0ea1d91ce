"""Computation and memory of the noise models: FLOPs per forward and per training step, parameters, peak memory.

Convention: a multiply-add is 2 FLOPs, an elementwise operation 1.  Tensor trains are counted analytically from
the shapes (the operations of ``ttdm.tt.algebra``, ``ttdm.tt.als`` and ``ttdm.tt.riemannian`` as implemented);
networks are measured with ``torch.utils.flop_counter.FlopCounterMode``, which counts matrix products and
convolutions (mm, addmm, bmm, einsum, conv) and nothing elementwise (activations, norms, biases).

Notation: a batched TT of P = ``n_tt`` tensors with d cores G_k: (P, r_{k−1}, n_k, r_k), r_{−1} = r_{d−1} = 1
(``sizes`` = [n_0..n_{d−1}], ``ranks`` = [r_0..r_{d−2}]), c_k = r_{k−1} n_k r_k the size of core k, N rows.

Forward, per input point (:func:`tt_forward_terms`):

    basis        3 Σ_k n_k (one three-term recursion step per basis value) + 4 (D + 1) (affine map and clamp)
    contraction  per applied core, ``apply_core_right``: 2 P r n s ("prns,pbs->pbrn") + 2 P r n ("pbrn,bn->pbr")
                 per_output: every core, P = D;  shared: cores 1..d−1, P = 1
    output       shared only: 2 r_0 D, the (B, r_0) x (r_0, D) product with the output-index core
    prior        2 D, σ(t) x and its sum with the TT

An einsum whose contracted index has size 1 (the last core's first einsum, s = r_{d−1} = 1) runs in torch as an
elementwise product that FlopCounterMode does not count; it is listed apart as ``contraction_unit`` so that
``contraction + output`` is exactly what FlopCounterMode measures.

ALS sweep (:func:`als_sweep_flops`), with QR(m, n) and SOLVE(c) the dense costs below:

    Σ_{2d−1 core solves} [ P N (2 c_k² + 4 c_k)        design rows, Gram AᵀA, right-hand side Aᵀy
                           + P ((2/3) c_k³ + 2 c_k²) ]   LU solve of the (c_k × c_k) normal equations
    + interfaces: 3(d − 1) core applications on N rows (initial right interfaces, then one per moved centre)
    + orthogonalisation: 3(d − 1) QRs of core unfoldings and the absorbing products

ALS sweep of ``teneva.als_func`` (:func:`als_teneva_sweep_flops`, ``engine: teneva``), per tensor (P of them):

    initial right interfaces (d − 1 core applications on N rows), then 2(d − 1) core solves (k = 0..d−2, then
    d−1..1), each: N c_k (design rows) + 2 N c_k² + 2 N c_k (AᵀA, Aᵀy) + LSTSQ(c_k), and the interface update
    (a core application on N rows); then ‖Y − Y_old‖ / ‖Y‖ (teneva.accuracy) on TTs of ranks 2r and r.
    LSTSQ(c) = QR(c, c) + 3 c² (gelsy: pivoted QR, Qᵀb and the triangular solve); the degree search of
    ``_optimize_core`` (a re-solve when a top coefficient is below 10⁻⁶ of the largest) is not counted.

RGD iteration (:func:`rgd_iteration_flops`): both orthogonal gauges (2(d − 1) QRs), the residual (a forward on N
rows), the projected gradient δ_k = Σ_b w_b L_k[b] ⊗ F_k[b] ⊗ R_k[b] (2(d − 1) interface applications and
2 P N c_k per core, then the gauge projection 4 P r n s² per core), ‖ξ‖², and per Armijo trial the retraction
(TT-SVD rounding of the rank-2r TT: d − 1 QRs and d − 1 SVDs) and the new loss (a forward on N rows).

QR(m, n) = 2 [4 m n k − 2 (m + n) k² + (4/3) k³], k = min(m, n)  (Householder R and the thin Q);
SVD(m, n) = 6 m n² + 20 n³ for m ≥ n (Golub–Van Loan's R-SVD, thin U);  SOLVE(c) = (2/3) c³ + 2 c².
"""

from __future__ import annotations

import ctypes
import gc
from typing import Any

import torch
from torch import nn

from ttdm.analysis.profiling import peak_memory, rss_mb

BASIS_FLOPS = 3  # per basis value: one step of a three-term recursion
SCALE_FLOPS = 4  # per coordinate: z = 2 (x − lo)/(hi − lo) − 1 and the clamp
LOSS_FLOPS = 3  # per residual entry: difference, square, mean
MEMORY_STEPS = 3  # gradient steps over which peak training memory is measured


# ----------------------------------------------------------------------------------------------------------------
# Dense linear algebra


def qr_flops(m: int, n: int) -> int:
    """Householder QR of an m × n matrix with the thin Q formed: 2 [4 m n k − 2 (m + n) k² + (4/3) k³], k = min."""
    k = min(m, n)
    return int(round(2 * (4 * m * n * k - 2 * (m + n) * k * k + 4 * k**3 / 3)))


def svd_flops(m: int, n: int) -> int:
    """Thin SVD (U, Σ, V) of an m × n matrix: 6 m n² + 20 n³ with m ≥ n (Golub & Van Loan, R-SVD)."""
    m, n = max(m, n), min(m, n)
    return 6 * m * n * n + 20 * n**3


def solve_flops(c: int) -> int:
    """LU solve of a c × c system with one right-hand side: (2/3) c³ + 2 c²."""
    return int(round(2 * c**3 / 3)) + 2 * c * c


# ----------------------------------------------------------------------------------------------------------------
# Tensor-train forward


def _bounds(ranks: list[int]) -> list[int]:
    return [1, *ranks, 1]


def _apply_right(p: int, r: int, n: int, s: int) -> tuple[int, int]:
    """``apply_core_right`` per row, (counted, unit): "prns,pbs->pbrn" 2 P r n s, then "pbrn,bn->pbr" 2 P r n.

    An einsum whose contracted index (s, resp. n) has size 1 is an elementwise product in torch: unit.
    """
    first, second = 2 * p * r * n * s, 2 * p * r * n
    counted = (first if s > 1 else 0) + (second if n > 1 else 0)
    return counted, first + second - counted


def _apply_left(p: int, r: int, n: int, s: int) -> int:
    """``apply_core`` per row: "pbr,prns->pbns" 2 P r n s, then "pbns,bn->pbs" 2 P n s."""
    return 2 * p * r * n * s + 2 * p * n * s


def tt_forward_terms(
    sizes: list[int], ranks: list[int], n_tt: int, layout: str, dim: int, prior: bool = True
) -> dict[str, int]:
    """FLOPs of one point's ε_θ(x, t) split as in the module docstring: basis, contraction, contraction_unit,
    output, prior.  ``contraction + output`` (times the batch) is what FlopCounterMode counts."""
    bounds = _bounds(ranks)
    data_sizes = sizes[1:] if layout == "shared" else sizes  # shared: mode 0 is the output index, no basis
    applied = range(1, len(sizes)) if layout == "shared" else range(len(sizes))
    counted = unit = 0
    for k in applied:
        c, u = _apply_right(n_tt, bounds[k], sizes[k], bounds[k + 1])
        counted, unit = counted + c, unit + u
    return {
        "basis": BASIS_FLOPS * sum(data_sizes) + SCALE_FLOPS * (dim + 1),
        "contraction": counted,
        "contraction_unit": unit,
        "output": 2 * ranks[0] * dim if layout == "shared" else 0,
        "prior": 2 * dim if prior else 0,
    }


def tt_forward_flops(sizes: list[int], ranks: list[int], n_tt: int, layout: str, dim: int, prior: bool = True) -> int:
    """FLOPs of one point's TT forward: the sum of :func:`tt_forward_terms`.

    per_output (P = D): Σ_k 2 D (r_{k−1} n_k r_k + r_{k−1} n_k) + 3 Σ_k n_k + 4 (D + 1) + 2 D, i.e. O(D² n r²);
    shared (P = 1): Σ_{k≥1} 2 (r_{k−1} n_k r_k + r_{k−1} n_k) + 2 r_0 D + …, i.e. O(D n r²).
    """
    return sum(tt_forward_terms(sizes, ranks, n_tt, layout, dim, prior).values())


def _rows_forward(sizes: list[int], bounds: list[int], p: int, n_rows: int) -> int:
    """``algebra.values`` on N rows plus the loss: N Σ_k (both einsums) + 3 P N."""
    per_row = sum(sum(_apply_right(p, bounds[k], n, bounds[k + 1])) for k, n in enumerate(sizes))
    return n_rows * per_row + LOSS_FLOPS * p * n_rows


def _right_orthogonalize(sizes: list[int], bounds: list[int], p: int) -> tuple[int, list[int]]:
    """FLOPs of ``algebra.right_orthogonalize`` and the ranks it leaves (QR may shrink an over-full bond)."""
    bounds, total = list(bounds), 0
    for k in range(len(sizes) - 1, 0, -1):
        m, r = sizes[k] * bounds[k + 1], bounds[k]
        new = min(m, r)
        total += p * qr_flops(m, r) + 2 * p * bounds[k - 1] * sizes[k - 1] * r * new  # QR, absorb Rᵀ
        bounds[k] = new
    return total, bounds


def _left_orthogonalize(sizes: list[int], bounds: list[int], p: int) -> int:
    """FLOPs of ``algebra.left_orthogonalize`` (ranks kept: capped ranks make every left unfolding tall)."""
    total = 0
    for k in range(len(sizes) - 1):
        m, s = bounds[k] * sizes[k], bounds[k + 1]
        total += p * qr_flops(m, s) + 2 * p * s * s * sizes[k + 1] * bounds[k + 2]
    return total


# ----------------------------------------------------------------------------------------------------------------
# Tensor-train optimisers


def als_sweep_flops(sizes: list[int], ranks: list[int], n_tt: int, n_rows: int) -> int:
    """FLOPs of one ``ttdm.tt.als.sweep`` on N = ``n_rows`` regression rows (P = ``n_tt`` targets each):

        Σ_{k ∈ 0..d−1, d−2..0} [P N (2 c_k² + 4 c_k) + P SOLVE(c_k)]            core solves
        + N [Σ_{k≥1} R_k + Σ_{k<d−1} L_k + Σ_{k≥1} R_k]                         interfaces
        + Σ_{k≥1} 2 (P QR(n_k r_k, r_{k−1}) + 2 P r_{k−2} n_{k−1} r_{k−1}²)       right gauge, then the return sweep
        + Σ_{k<d−1} (P QR(r_{k−1} n_k, r_k) + 2 P r_k² n_{k+1} r_{k+1})          moving the centre right

    with c_k = r_{k−1} n_k r_k, R_k = 2 P (c_k + r_{k−1} n_k) and L_k = 2 P (c_k + n_k r_k) per row.  The shared
    layout regresses on N = points × D rows with P = 1 (``TTNoise.regression``).
    """
    p, n_rows, d = n_tt, int(n_rows), len(sizes)
    b = _bounds(ranks)
    c = [b[k] * n * b[k + 1] for k, n in enumerate(sizes)]
    solves = list(range(d)) + list(range(d - 2, -1, -1))
    total = sum(p * n_rows * (2 * c[k] ** 2 + 4 * c[k]) + p * solve_flops(c[k]) for k in solves)
    right_apply = sum(n_rows * sum(_apply_right(p, b[k], sizes[k], b[k + 1])) for k in range(1, d))
    left_apply = sum(n_rows * _apply_left(p, b[k], sizes[k], b[k + 1]) for k in range(d - 1))
    total += 2 * right_apply + left_apply
    total += 2 * _right_orthogonalize(sizes, b, p)[0] + _left_orthogonalize(sizes, b, p)
    return int(total)


def als_teneva_sweep_flops(sizes: list[int], ranks: list[int], n_tt: int, n_rows: int) -> int:
    """FLOPs of one ``ttdm.tt.als.sweep_teneva`` (``teneva.als_func`` with nswp=1 per tensor) on N = ``n_rows``
    rows, P = ``n_tt`` tensors (module docstring; per_output layout only)."""
    p, n_rows, d = n_tt, int(n_rows), len(sizes)
    b = _bounds(ranks)
    c = [b[k] * n * b[k + 1] for k, n in enumerate(sizes)]
    total = sum(n_rows * sum(_apply_right(1, b[k], sizes[k], b[k + 1])) for k in range(1, d))  # initial Yr
    solve = [n_rows * (c[k] + 2 * c[k] ** 2 + 2 * c[k]) + qr_flops(c[k], c[k]) + 3 * c[k] ** 2 for k in range(d)]
    for k in range(d - 1):  # left to right: solve k, then the left interface of k + 1
        total += solve[k] + n_rows * _apply_left(1, b[k], sizes[k], b[k + 1])
    for k in range(d - 1, 0, -1):  # right to left: solve k, then the right interface of k − 1
        total += solve[k] + n_rows * sum(_apply_right(1, b[k], sizes[k], b[k + 1]))
    total += _tt_norm_flops(sizes, [2 * r for r in ranks]) + _tt_norm_flops(sizes, ranks)  # teneva.accuracy
    return int(p * total)


def _tt_norm_flops(sizes: list[int], ranks: list[int]) -> int:
    """‖X‖ of one TT by contracting it with itself core by core: Σ_k 2 (r_{k−1}² n_k r_k + r_{k−1} n_k r_k²)."""
    b = _bounds(ranks)
    return sum(2 * (b[k] ** 2 * n * b[k + 1] + b[k] * n * b[k + 1] ** 2) for k, n in enumerate(sizes))


def rgd_iteration_flops(sizes: list[int], ranks: list[int], n_tt: int, n_rows: int, trials: int = 1) -> int:
    """FLOPs of one ``ttdm.tt.riemannian.descent`` on N = ``n_rows`` rows with ``trials`` Armijo trials:

        left and right gauges of X                 Σ_k P QR(r_{k−1} n_k, r_k) + Σ_k P QR(n_k r_k, r_{k−1}) + absorbs
        residual f − y                              N Σ_k R_k + 3 P N
        projected gradient                          N (Σ_{k<d−1} L_k + Σ_{k≥1} R_k) + Σ_k 2 P N (c_k + r_{k−1} n_k)
                                                    + Σ_{k<d−1} P (4 r_{k−1} n_k r_k² + c_k)     gauge condition
        ‖ξ‖²                                        Σ_k 2 P c_k
        per trial: X − αξ and its TT-SVD rounding   Σ_k P c_k + right gauge of the rank-2r TT + Σ_{k<d−1} P
                                                    [SVD(r_{k−1} n_k, 2 r_k) + 2 r_k 2r_k n_{k+1} 2r_{k+1}]
                   the new loss                     N Σ_k R_k + 3 P N

    (notation of :func:`als_sweep_flops`; the rank-2r TT has bonds 2 r_k, shrunk by QR where over-full).
    """
    p, n_rows, d = n_tt, int(n_rows), len(sizes)
    b = _bounds(ranks)
    c = [b[k] * n * b[k + 1] for k, n in enumerate(sizes)]
    total = _left_orthogonalize(sizes, b, p) + _right_orthogonalize(sizes, b, p)[0]
    total += _rows_forward(sizes, b, p, n_rows)  # residual and loss
    total += 2 * p * n_rows  # weights 2 (f − y)/(P N)
    total += sum(n_rows * _apply_left(p, b[k], sizes[k], b[k + 1]) for k in range(d - 1))
    total += sum(n_rows * sum(_apply_right(p, b[k], sizes[k], b[k + 1])) for k in range(1, d))
    total += sum(2 * p * n_rows * (c[k] + b[k] * sizes[k]) for k in range(d))  # δ_k = Σ_b w_b L ⊗ F ⊗ R
    total += sum(p * (4 * b[k] * sizes[k] * b[k + 1] ** 2 + c[k]) for k in range(d - 1))  # (I − U Uᵀ) δ_k
    total += 2 * p * sum(c)  # ‖ξ‖²
    # one Armijo trial: the rank-2r TT, its TT-SVD rounding back to the ranks, the new loss
    big = [1, *(2 * r for r in ranks), 1]
    trial = p * sum(c)
    orth, big = _right_orthogonalize(sizes, big, p)
    trial += orth
    for k in range(d - 1):
        m, s = b[k] * sizes[k], big[k + 1]
        keep = b[k + 1]
        trial += p * svd_flops(m, s) + p * keep * s + 2 * p * keep * s * sizes[k + 1] * big[k + 2]
    trial += _rows_forward(sizes, b, p, n_rows)
    return int(total + trials * trial)


# ----------------------------------------------------------------------------------------------------------------
# Measurement


def measured_flops(
    model: nn.Module, x: torch.Tensor, t: torch.Tensor, backward: bool = False, target: torch.Tensor | None = None
) -> int:
    """FLOPs that FlopCounterMode counts in ``model(x, t)`` for the whole batch x: (B, D), t: (B,).

    With ``backward`` a full training step's computation: the forward, the MSE loss mean (ε_θ − target)² (target
    zero by default) and the gradients of every trainable parameter (``torch.autograd.grad``: no .grad is left).
    """
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        out = model(x, t)
        if backward:
            loss = ((out - (torch.zeros_like(out) if target is None else target)) ** 2).mean()
            torch.autograd.grad(loss, [p for p in model.parameters() if p.requires_grad])
    return int(counter.get_total_flops())


def _release_memory() -> None:
    """Collect young garbage and hand freed heap pages back to the OS (glibc), so RSS baselines are comparable.

    (Tensors are freed by reference counting; a full ``gc.collect()`` would cost ~0.2 s of torch's objects.)"""
    gc.collect(0)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _current_mb(device: str) -> float:
    return torch.cuda.memory_allocated() / 2**20 if device == "cuda" else rss_mb()


def _inputs(n: int, dim: int, device: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random (x, t, target) of n rows: x, target ~ N(0, I) (B, D), t ~ U(0, 1] (B,)."""
    gen = torch.Generator().manual_seed(seed)
    x, target = torch.randn(n, dim, generator=gen), torch.randn(n, dim, generator=gen)
    t = 1 - torch.rand(n, generator=gen)
    return x.to(device), t.to(device), target.to(device)


def train_memory_mb(
    spec: dict[str, Any], dim: int, image_shape: tuple[int, ...] | None, batch_size: int, optimizer: str,
    n_fit: int, device: str = "cpu", steps: int = MEMORY_STEPS, lam: float = 1e-3, engine: str = "torch",
) -> float:
    """Peak memory (MiB) of training above the level before it: the model, its optimiser state, activations.

    Built inside the measurement: the model (``build_model(spec)``) and, for adam/sgd, ``steps`` steps of the MSE
    loss on random batches of ``batch_size``; for als/rgd the regression features of ``n_fit`` random rows and one
    ALS sweep of ``engine`` (torch or teneva, as :func:`ttdm.methods.tt_solvers.resolve_engine` resolves it) / one
    Riemannian iteration.  CPU: polled RSS (``ttdm.analysis.profiling.peak_memory``); CUDA: allocator peak.
    """
    _release_memory()
    base = _current_mb(device)
    with peak_memory(device) as mem:
        from ttdm.runs import build_model

        model = build_model(spec, dim, image_shape).to(device)
        if optimizer in ("als", "rgd"):
            from ttdm.tt import als, riemannian

            x, t, target = _inputs(n_fit, dim, device)
            feats, y = model.regression(x, t, target)
            cores = [c.detach() for c in model.cores]
            if optimizer == "als" and engine == "teneva":
                points = torch.cat([model.scaled(x).clamp(-1, 1), (2 * t[:, None] - 1).to(model.lo.dtype)], dim=1)
                bases = [lambda v, m=model: m.basis(v, m.n_x)] * model.dim + [
                    lambda v, m=model: m.time_basis(v, m.n_t)]
                als.sweep_teneva(cores, points, bases, y, lam)
            elif optimizer == "als":
                als.sweep(cores, feats, y, lam)
            else:
                riemannian.descent(cores, feats, y, model.ranks, 1.0, line_search=False)
        else:
            opt_class = torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam
            opt = opt_class(model.parameters(), lr=1e-3)
            x, t, target = _inputs(batch_size, dim, device)
            for _ in range(steps):
                loss = ((model(x, t) - target) ** 2).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        del model
    return max(mem["peak_mem_mb"] - base, 0.0)


def model_complexity(
    arch: str, model_cfg: dict[str, Any], dim: int, image_shape: tuple[int, ...] | None, batch_size: int,
    n_fit: int | None = None, optimizer: str | None = None, *, device: str = "cpu", memory: bool = True,
    engine: str = "auto", lam: float | None = None,
) -> dict[str, Any]:
    """Parameters, FLOPs per sample and per optimiser step, and peak training memory of one model.

    Returns {"optimizer", "engine" (als: the engine that training runs, ``resolve_engine(engine)``; else None),
    "n_params", "flops_forward" (one sample: analytic for tt, measured for networks), "flops_train_step" (adam/sgd:
    measured forward + backward of a batch of ``batch_size``, the run's own; als: one sweep of that engine on
    ``n_fit`` points; rgd: one iteration with one Armijo trial), "peak_train_mem_mb" (:func:`train_memory_mb`;
    NaN without ``memory``)}.  ``n_fit`` and ``lam`` default to the regression method's (``RegressionOptions``).
    """
    from ttdm.models.embeddings import count_parameters
    from ttdm.methods.regression import GRADIENT_OPTIMIZERS, SOLVER_OPTIMIZERS, RegressionOptions
    from ttdm.methods.tt_solvers import resolve_engine
    from ttdm.runs import build_model

    optimizer = optimizer or "adam"
    if optimizer not in GRADIENT_OPTIMIZERS + SOLVER_OPTIMIZERS:
        raise ValueError(f"optimizer {optimizer!r}; allowed: {', '.join(GRADIENT_OPTIMIZERS + SOLVER_OPTIMIZERS)}")
    if optimizer in SOLVER_OPTIMIZERS and arch != "tt":
        raise ValueError(f"optimizer {optimizer!r} fits tensor-train models only (arch 'tt'), not {arch!r}")
    n_fit = int(n_fit or RegressionOptions.n_fit)
    lam = float(RegressionOptions.lam if lam is None else lam)
    spec = {"arch": arch, "model_cfg": model_cfg, "seed": 0}
    model = build_model(spec, dim, image_shape).to(device)
    engine = resolve_engine(engine, model.cfg.layout) if optimizer == "als" else None
    x, t, target = _inputs(batch_size, dim, device)
    if arch == "tt":
        sizes, ranks, layout = model.sizes, model.ranks, model.cfg.layout
        n_tt = model.cores[0].shape[0]
        forward = tt_forward_flops(sizes, ranks, n_tt, layout, dim, prior=model.cfg.prior != "none")
    else:
        forward = round(measured_flops(model, x, t) / batch_size)
    if optimizer == "als" and engine == "teneva":
        step = als_teneva_sweep_flops(sizes, ranks, n_tt, n_fit)
    elif optimizer == "als":
        rows = n_fit * dim if model.cfg.layout == "shared" else n_fit
        step = als_sweep_flops(sizes, ranks, n_tt, rows)
    elif optimizer == "rgd":
        rows = n_fit * dim if model.cfg.layout == "shared" else n_fit
        step = rgd_iteration_flops(sizes, ranks, n_tt, rows)
    else:
        step = measured_flops(model, x, t, backward=True, target=target)
    n_params = count_parameters(model)
    del model
    mem = (train_memory_mb(spec, dim, image_shape, batch_size, optimizer, n_fit, device, lam=lam,
                           engine=engine or "torch") if memory else float("nan"))
    return {"optimizer": optimizer, "engine": engine, "n_params": n_params, "flops_forward": int(forward),
            "flops_train_step": int(step), "peak_train_mem_mb": mem}
