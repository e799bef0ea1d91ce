"""Loss landscapes of trained noise predictors along filter-normalised random directions (Li et al. 2018).

Li, Xu, Taylor, Studer & Goldstein, "Visualizing the Loss Landscape of Neural Nets" (arXiv 1712.09913), §4: pick
two random directions d_1, d_2 in parameter space, each scaled filter by filter to the size of the weights,

    d_{k,i} ← d_{k,i} / ‖d_{k,i}‖_F · ‖θ_i‖_F   (i: one filter = one slice along dim 0 of a parameter),

and plot the loss on the plane through the trained weights θ*,

    f(α, β) = L(θ* + α d_1 + β d_2),   α, β ∈ [−span, span].

Filter normalisation removes the scale invariance of the network (a direction of the same relative size for
every filter), so surfaces of different architectures compare.  Filters: the output rows of an nn.Linear weight
(out, in), the output channels of a convolution (out, in, k, k), and for a tensor-train core (P, r_{k−1}, n_k, r_k)
of :class:`ttdm.models.tt.TTNoise` the P slices: one filter per output tensor p (per_output layout: one per output
coordinate; shared layout: P = 1, the whole core).  1-D parameters (biases, norm scales) get a zero direction, as in
Li et al.  Buffers (the TT's domain lo, hi and σ table) are never perturbed: only ``model.parameters()`` are.

L is the method's regression loss mean((target − ε_θ(x_t, t))²) on n_points fixed triplets (x_t, t, target), drawn
once from the held-out validation rows of train.npy (the rows the training loop validates on and never fits:
:func:`ttdm.methods.base.hold_out`) and reused at every grid point, so the surface is a validation loss, not a training loss.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ttdm.io import load_json, spec_hash
from ttdm.methods.base import VAL_FRACTION, Context, hold_out
from ttdm.runs import load_run, make_method

Direction = list[torch.Tensor]


def filter_normalized_direction(model: nn.Module, generator: torch.Generator) -> Direction:
    """One random direction, filter-normalised: a tensor per parameter of ``model`` (same shapes and dtypes).

    A parameter θ of ndim ≥ 2 gets d ~ N(0, I) rescaled filter by filter (slices along dim 0):
    d_i ← d_i/‖d_i‖_F · ‖θ_i‖_F, so ‖d_i‖_F = ‖θ_i‖_F; a 1-D parameter gets d = 0.  The noise is drawn on the CPU
    from ``generator`` (a CPU generator) in the order of ``model.parameters()`` and moved to each parameter's device.
    """
    direction = []
    for p in model.parameters():
        theta = p.detach()
        if theta.ndim < 2:
            direction.append(torch.zeros_like(theta))
            continue
        d = torch.randn(theta.shape, generator=generator, dtype=theta.dtype).to(theta.device)
        shape = (-1,) + (1,) * (theta.ndim - 1)
        d_norm = d.flatten(1).norm(dim=1).clamp_min(torch.finfo(d.dtype).tiny).reshape(shape)  # (out, 1, …)
        t_norm = theta.flatten(1).norm(dim=1).reshape(shape)
        direction.append(d / d_norm * t_norm)
    return direction


@torch.no_grad()
def loss_surface(
    model: nn.Module,
    loss_fn: Callable[[], float],
    d1: Direction,
    d2: Direction,
    alphas: Sequence[float],
    betas: Sequence[float],
) -> np.ndarray:
    """f(α, β) = loss_fn() at θ + α d1 + β d2 for every α in ``alphas`` and β in ``betas``: (len(alphas), len(betas)).

    ``loss_fn()`` evaluates the model as it is (no arguments).  The parameters are set in place at every grid point
    and copied back from a saved clone afterwards (also on error), so θ is restored bit for bit.
    """
    params = list(model.parameters())
    if not (len(d1) == len(d2) == len(params)):
        raise ValueError(f"directions have {len(d1)} and {len(d2)} tensors; the model has {len(params)} parameters")
    saved = [p.detach().clone() for p in params]
    out = np.empty((len(alphas), len(betas)), dtype=np.float64)
    try:
        for i, a in enumerate(alphas):
            for j, b in enumerate(betas):
                for p, theta, u, v in zip(params, saved, d1, d2):
                    p.copy_(theta + float(a) * u + float(b) * v)
                out[i, j] = float(loss_fn())
    finally:
        for p, theta in zip(params, saved):
            p.copy_(theta)
    return out


def _fixed_triplets(run_spec: dict[str, Any], data_dir: Path, n_points: int, seed: int):
    """n_points triplets (x_t (M, D), t (M,), target (M, D)) of the run's method on the run's held-out validation rows
    of train.npy (:func:`ttdm.methods.base.hold_out` with the run's ``val_fraction``), drawn with replacement from a generator
    seeded by ``seed`` (independent of the directions' generator)."""
    meta = load_json(data_dir / "meta.json")
    data = np.load(data_dir / "train.npy")
    if data.ndim != 2 or data.shape[1] != int(meta["dim"]):
        raise ValueError(f"{data_dir / 'train.npy'}: shape {data.shape} does not match dim {meta['dim']}")
    x_train = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))  # (N, D)
    fraction = float((run_spec.get("training") or {}).get("val_fraction", VAL_FRACTION))
    x_fit, x_val = hold_out(x_train, str(run_spec["dataset"]), fraction)  # (N - N_val, D), (N_val, D)
    image_shape = tuple(meta["image_shape"]) if meta.get("image_shape") else None
    ctx = Context(spec=run_spec, dim=int(meta["dim"]), image_shape=image_shape, meta=meta, data=x_fit,
                  val_data=x_val)
    method = make_method(run_spec, ctx)
    gen = torch.Generator().manual_seed(int(spec_hash(["landscape-triplets", int(seed)], 15), 16))
    idx = torch.randint(0, x_val.shape[0], (int(n_points),), generator=gen)
    return method.triplets(x_val[idx], gen, t_sampling="uniform")


def landscape(
    run_dir: str | Path,
    data_dir: str | Path,
    n: int = 21,
    span: float = 1.0,
    n_points: int = 4096,
    seed: int = 0,
    device: str = "cpu",
) -> pd.DataFrame:
    """The loss surface of a trained run on an n × n grid α, β ∈ linspace(−span, span, n).

    Directions d_1, d_2: :func:`filter_normalized_direction` with a CPU generator seeded by ``seed`` (d_1 drawn
    first); loss: the run's method on ``n_points`` fixed triplets (see :func:`_fixed_triplets`).
    Returns a DataFrame with columns alpha, beta, loss (n² rows, α major); ``df.attrs["loss_at_minimum"]`` holds
    the loss at the trained weights (α = β = 0), computed directly.
    """
    if n < 2 or span <= 0 or n_points < 1:
        raise ValueError(f"landscape needs n ≥ 2, span > 0 and n_points ≥ 1; got n={n}, span={span}, "
                         f"n_points={n_points}")
    run = load_run(run_dir, device)
    model = run.model.requires_grad_(False)
    x_t, t, target = (v.to(device) for v in _fixed_triplets(run.spec, Path(data_dir), n_points, seed))

    def loss_fn() -> float:
        return float(((target - model(x_t, t)) ** 2).mean())

    gen = torch.Generator().manual_seed(int(seed))
    d1 = filter_normalized_direction(model, gen)
    d2 = filter_normalized_direction(model, gen)
    grid = np.linspace(-span, span, n)
    with torch.no_grad():
        at_minimum = loss_fn()
    surface = loss_surface(model, loss_fn, d1, d2, grid, grid)  # (n, n): [i, j] at (α_i, β_j)
    alpha, beta = np.meshgrid(grid, grid, indexing="ij")
    df = pd.DataFrame({"alpha": alpha.ravel(), "beta": beta.ravel(), "loss": surface.ravel()})
    df.attrs.update(loss_at_minimum=at_minimum, spec=run.spec)
    return df
