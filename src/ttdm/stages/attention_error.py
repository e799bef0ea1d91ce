"""FAVOR+'s approximation error on a trained U-Net's own attention inputs, as a function of the features m.

Test images x_0 are noised to x_t = α(t) x_0 + σ(t) ε at each t of ``times`` (on the run's own schedule, the same
noise for every run), the run's denoiser is evaluated on them, and a hook on its attention module
(``model.attn.attend``) keeps the inputs q, k, v: (B, N, d), N = H·W tokens at the U-Net's lowest resolution.  For
each m of ``features`` and each of ``draws`` seeded orthogonal Gaussian projections W: (m, d), in float64,

    rel_error = ‖FAVOR+(q, k, v; W) − softmax(q, k, v)‖_F / ‖softmax(q, k, v)‖_F

over the whole batch (:func:`relative_errors`; FAVOR+ by :func:`ttdm.models.attention.favor_attention` with the
modules' feature floor ε = 1e-4, exact softmax attention written out).  The projections depend on (seed, m, draw)
only, so two runs are measured with the same W.  A run trained with softmax attention and one trained with FAVOR+
are both measured this way: the first tells how well FAVOR+ would stand in for the attention a network learned, the
second how far the performer network's attention is from the exact attention of its own q, k, v.

Writes results/attention/{dataset}/{model}/{seed}.csv (t, features, draw, rel_error, tokens, dim_head) and the
spec beside it ({seed}.spec.json).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ttdm.io import atomic_write, resolve_device, save_json, spec_hash
from ttdm.models.attention import favor_attention, orthogonal_gaussian_projection

COLUMNS = ["t", "features", "draw", "rel_error", "tokens", "dim_head"]
FEATURE_FLOOR = 1e-4  # ε of ttdm.models.attention.PerformerAttention (and of the reference implementations)


def _seed(*parts: Any) -> int:
    return int(spec_hash(list(parts), 15), 16)


def attention_module(model: nn.Module, where: str = "model") -> nn.Module:
    """The attention of a U-Net (``model.attn.attend``); a ValueError naming ``where`` when it has none."""
    block = getattr(model, "attn", None)
    attend = getattr(block, "attend", None)
    if attend is None:
        raise ValueError(f"{where}: the network has no attention module (model.attn.attend); the error stage needs a "
                         f"U-Net with attention softmax or performer, got {type(model).__name__}")
    return attend


def capture_qkv(model: nn.Module, x: torch.Tensor, t: torch.Tensor, *, where: str = "model"
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q, k, v: (B, N, d) that ``model``'s attention receives on inputs x: (B, D) at times t: (B,)."""
    captured: list[tuple[torch.Tensor, ...]] = []
    hook = attention_module(model, where).register_forward_pre_hook(
        lambda _module, args: captured.append(tuple(a.detach() for a in args[:3])))
    try:
        with torch.no_grad():
            model(x, t)
    finally:
        hook.remove()
    if len(captured) != 1:
        raise RuntimeError(f"{where}: the attention ran {len(captured)} times in one forward pass, expected once")
    q, k, v = captured[0]
    return q, k, v


def exact_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(Q Kᵀ/√d) V, written out. Shapes: (..., N, d) -> (..., N, d_v)."""
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1) @ v


def projection(features: int, dim_head: int, seed: int, draw: int) -> torch.Tensor:
    """W: (m, d) float64, the ``draw``-th orthogonal Gaussian projection of m features for a given ``seed``."""
    generator = torch.Generator().manual_seed(_seed("attention-error-projection", seed, features, draw))
    return orthogonal_gaussian_projection(features, dim_head, generator)


def relative_errors(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, features: Iterable[int], draws: int, *,
                    seed: int) -> list[dict[str, float]]:
    """{features, draw, rel_error} for every m and draw: ‖FAVOR+ − softmax‖_F / ‖softmax‖_F over the batch, in
    float64. Shapes: q, k, v: (B, N, d)."""
    q, k, v = (a.double() for a in (q, k, v))
    exact = exact_attention(q, k, v)  # (B, N, d)
    norm = exact.norm()
    rows = []
    for m in features:
        for draw in range(draws):
            approx = favor_attention(q, k, v, projection(int(m), q.shape[-1], seed, draw), eps=FEATURE_FLOOR)
            rows.append({"features": int(m), "draw": draw, "rel_error": float((approx - exact).norm() / norm)})
    return rows


def noised(x0: torch.Tensor, schedule: Any, t: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_t = α(t) x_0 + σ(t) ε, t as a (B,) tensor), ε seeded by (seed, t). Shapes: x0: (B, D)."""
    generator = torch.Generator().manual_seed(_seed("attention-error-noise", seed, float(t)))
    eps = torch.randn(x0.shape, generator=generator, dtype=torch.float64)
    alpha, sigma = schedule.alpha_sigma_at(torch.tensor(float(t), dtype=torch.float64))
    return (alpha * x0.double() + sigma * eps).float(), torch.full((len(x0),), float(t))


def error_table(model: nn.Module, schedule: Any, x0: torch.Tensor, spec: dict[str, Any], *,
                where: str = "model") -> pd.DataFrame:
    """The rows of :data:`COLUMNS` for ``model`` on test images x0: (B, D), for every t of ``spec["times"]``, m of
    ``spec["features"]`` and ``spec["draws"]`` projections (seeded by ``spec["seed"]``)."""
    seed = int(spec["seed"])
    device = next(model.parameters()).device
    rows = []
    for t in spec["times"]:
        x_t, times = noised(x0, schedule, float(t), seed)
        q, k, v = capture_qkv(model, x_t.to(device), times.to(device), where=where)
        shape = {"t": float(t), "tokens": q.shape[-2], "dim_head": q.shape[-1]}
        rows += [{**shape, **r} for r in relative_errors(q.cpu(), k.cpu(), v.cpu(), spec["features"],
                                                         int(spec["draws"]), seed=seed)]
    return pd.DataFrame(rows, columns=COLUMNS)


def attention_error(spec: dict[str, Any], *, run_dir: str | Path, data_dir: str | Path, out: str | Path
                    ) -> pd.DataFrame:
    """FAVOR+'s error on one run's attention inputs (module docstring) into ``out`` (CSV) and its spec beside it.

    spec: times (t in (0, 1]), features (m), draws, n_images (the first rows of test.npy), seed (noise and
    projections), device (auto), threads."""
    from ttdm.runs import load_run

    device = resolve_device(spec.get("device", "auto"))
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    run = load_run(run_dir, device)
    test = np.load(Path(data_dir) / "test.npy", allow_pickle=False)[: int(spec["n_images"])]
    x0 = torch.from_numpy(np.ascontiguousarray(test, dtype=np.float32))
    denoiser = run.sampling_object("denoiser")
    table = error_table(run.model, denoiser.schedule, x0, spec, where=str(run_dir))
    out = Path(out)
    atomic_write(out, lambda p: table.to_csv(p, index=False))
    save_json(out.with_name(out.stem + ".spec.json"), spec)
    return table
