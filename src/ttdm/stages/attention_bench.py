"""The attention benchmark: the cost of exact softmax attention and of FAVOR+ (Performer) against sequence length L.

For L = 64, 128, …, ``lengths_max`` (batch 1, ``heads`` heads of width ``dim_head``, float32), one forward and
backward pass of

- ``softmax``: :class:`ttdm.models.attention.SoftmaxAttention`, ``F.scaled_dot_product_attention`` with the kernel
  torch picks (a fused kernel that never stores the L×L matrix where one exists: flash attention on the CPU);
- ``softmax-explicit``: the same call on the math kernel, which forms softmax(QKᵀ/√d) (O(L²) memory), up to
  ``explicit_max`` only;
- ``performer``: :class:`ttdm.models.attention.PerformerAttention`, m = round(d ln d) features;
- ``performer-pytorch``: its ``FastAttention`` with the same m, when the package is installed.

Time: the median wall time of up to ``repeats`` passes after one warm-up (fewer once they take a second in all),
and their standard deviation; at each length the implementations take turns pass by pass, so that a change of the
machine's load hits them alike.
Memory: on CUDA the peak of ``torch.cuda.max_memory_allocated`` above what was allocated before the pass; on the CPU,
where torch keeps no allocator statistics, the bytes of the distinct storages saved for the backward pass
(``torch.autograd.graph.saved_tensors_hooks``, measured during the warm-up): the activation memory held between
forward and backward, O(L) for FAVOR+ and fused softmax and O(L²) for explicit softmax, without the fused kernels'
transient workspace.  Both in MB (10⁶ bytes).

The fit: the slope s of log(time or memory) = s · log L + c over the lengths ≥ L_max/8 of each implementation, and
the crossover length, the first L from which an implementation is cheaper than ``softmax`` at every larger length
measured by both (empty when it is not cheaper at the largest).

With ``unet_sizes``, one training step (forward, ε-loss, backward, Adam) of the default U-Net (channels 32,
channel_mult (1, 2): the attention sees (S/2)² tokens of width 64) on random 1×S×S images, with each attention.

Writes ``attention.csv`` (implementation, device, length, heads, dim_head, features, fwd_bwd_ms, fwd_bwd_ms_std,
repeats, peak_mem_mb), ``attention_fit.csv`` (implementation, device, quantity, slope, crossover_length) and, with
``unet_sizes``, ``attention_unet.csv`` (attention, device, image_size, tokens, dim_head, features, batch, step_ms,
step_ms_std, repeats, peak_mem_mb).
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ttdm.io import atomic_write, resolve_device
from ttdm.models.attention import PerformerAttention, SoftmaxAttention, default_features

SPEC_DEFAULTS = {"lengths_max": 16384, "explicit_max": 4096, "heads": 4, "dim_head": 32, "repeats": 3,
                 "unet_sizes": [32, 64], "unet_batch": 8, "device": "auto", "threads": 1}
BASELINE = "softmax"  # the crossover is measured against this implementation


def implementations(dim_head: int, features: int) -> dict[str, tuple[nn.Module, Callable[[], Any]]]:
    """name -> (attention module, the context it runs in); performer-pytorch only when it is installed."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    found: dict[str, tuple[nn.Module, Callable[[], Any]]] = {
        "softmax": (SoftmaxAttention(), contextlib.nullcontext),
        "softmax-explicit": (SoftmaxAttention(), lambda: sdpa_kernel(SDPBackend.MATH)),
        "performer": (PerformerAttention(dim_head, features=features, redraw_every=0, seed=0), contextlib.nullcontext)}
    try:
        from performer_pytorch import FastAttention
    except ImportError:
        return found
    found["performer-pytorch"] = (FastAttention(dim_head, nb_features=features), contextlib.nullcontext)
    return found


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def saved_mb(run: Callable[[], None]) -> float:
    """MB of the distinct storages that ``run`` saves for its backward pass (the CPU's activation memory)."""
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        run()
    return sum(saved.values()) / 1e6


def memory_mb(run: Callable[[], None], device: torch.device) -> float:
    """Memory of one call of ``run`` in MB, which also warms it up: on CUDA the peak allocation above the start
    (after one more warm-up call), on the CPU the storages it saves for backward (:func:`saved_mb`)."""
    if device.type != "cuda":
        return saved_mb(run)
    run()
    _sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    run()
    _sync(device)
    return (torch.cuda.max_memory_allocated(device) - base) / 1e6


def timed_in_turns(runs: dict[str, Callable[[], None]], device: torch.device, repeats: int
                   ) -> dict[str, dict[str, float]]:
    """Up to ``repeats`` timed calls of every run, the runs taking turns call by call, each round starting one run
    later (A B C, B C A, C A B, …): a change of the machine's load hits them alike, and no run always follows the
    same one (a long softmax pass leaves the caches cold for whichever comes next).  A run stops once its calls
    took a second in all.  Returns per run {"ms": the median, "ms_std": the sample std (NaN for one call),
    "repeats": the number of calls}."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            run = runs[name]
            if sum(times[name]) >= 1.0:
                continue
            _sync(device)
            start = time.perf_counter()
            run()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: {"ms": 1e3 * statistics.median(t), "ms_std": 1e3 * statistics.stdev(t) if len(t) > 1
                   else float("nan"), "repeats": len(t)} for name, t in times.items()}


def lengths(spec: dict[str, Any], name: str) -> list[int]:
    """L = 64, 128, … up to lengths_max (explicit_max for the explicit softmax)."""
    top = spec["explicit_max"] if name == "softmax-explicit" else spec["lengths_max"]
    return [64 * 2**k for k in range(64) if 64 * 2**k <= top]


def attention_rows(spec: dict[str, Any], device: torch.device, *, log: Callable[[str], None] = print
                   ) -> list[dict[str, Any]]:
    """One row per implementation and length (see the module docstring); at each length the implementations take
    turns (:func:`timed_in_turns`)."""
    heads, dim_head = int(spec["heads"]), int(spec["dim_head"])
    features = default_features(dim_head)
    found = implementations(dim_head, features)
    for module, _ in found.values():
        module.to(device)
    rows = []
    for length in lengths(spec, "softmax"):
        gen = torch.Generator(device=device).manual_seed(0)
        shape = (1, heads, length, dim_head)  # (B, H, L, d)
        q, k, v = (torch.randn(shape, generator=gen, device=device, requires_grad=True) for _ in range(3))
        grad = torch.randn(shape, generator=gen, device=device)

        def run(module: nn.Module, context: Callable[[], Any]) -> None:
            with context():
                module(q, k, v).backward(grad)

        runs = {name: partial(run, module, context) for name, (module, context) in found.items()
                if length in lengths(spec, name)}
        memory = {name: memory_mb(r, device) for name, r in runs.items()}
        for name, m in timed_in_turns(runs, device, int(spec["repeats"])).items():
            rows.append({"implementation": name, "device": device.type, "length": length, "heads": heads,
                         "dim_head": dim_head, "features": features if "performer" in name else None,
                         "fwd_bwd_ms": m["ms"], "fwd_bwd_ms_std": m["ms_std"], "repeats": m["repeats"],
                         "peak_mem_mb": memory[name]})
            log(f"{name} L={length}: {m['ms']:.4g} ms, {memory[name]:.4g} MB")
    order = {name: i for i, name in enumerate(found)}
    return sorted(rows, key=lambda r: (order[r["implementation"]], r["length"]))


def slope(table: pd.DataFrame, column: str) -> float:
    """s of the least-squares fit log(column) = s · log L + c over the lengths ≥ max/8 (NaN with one length)."""
    tail = table[table["length"] >= table["length"].max() / 8]
    if tail["length"].nunique() < 2:
        return float("nan")
    return float(np.polyfit(np.log(tail["length"]), np.log(tail[column]), 1)[0])


def crossover(table: pd.DataFrame, baseline: pd.DataFrame, column: str) -> int | None:
    """The first length from which ``table`` is below ``baseline`` at every larger common length; None when it is
    not below at the largest."""
    both = table.merge(baseline, on="length", suffixes=("", "_base")).sort_values("length")
    if both.empty:
        return None
    dearer = np.flatnonzero((both[column] >= both[f"{column}_base"]).to_numpy())
    if dearer.size and dearer[-1] == len(both) - 1:
        return None
    return int(both["length"].iloc[dearer[-1] + 1 if dearer.size else 0])


def fit_rows(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Per implementation, device and quantity (time, memory): the slope and the crossover against softmax."""
    rows = []
    for (name, device), group in table.groupby(["implementation", "device"], sort=False):
        baseline = table[(table["implementation"] == BASELINE) & (table["device"] == device)]
        for quantity, column in (("time", "fwd_bwd_ms"), ("memory", "peak_mem_mb")):
            rows.append({"implementation": name, "device": device, "quantity": quantity,
                         "slope": slope(group, column),
                         "crossover_length": crossover(group, baseline, column) if name != BASELINE else None})
    return rows


def unet_rows(spec: dict[str, Any], device: torch.device, *, log: Callable[[str], None] = print
              ) -> list[dict[str, Any]]:
    """One training step of the default U-Net on random S×S images, per size S, the two attentions taking turns."""
    from ttdm.models import MODELS

    rows = []
    batch = int(spec["unet_batch"])
    for size in spec["unet_sizes"]:
        dim = size * size
        gen = torch.Generator(device=device).manual_seed(0)
        x, eps = (torch.randn(batch, dim, generator=gen, device=device) for _ in range(2))
        t = torch.rand(batch, generator=gen, device=device)
        models, steps = {}, {}
        for attention in ("softmax", "performer"):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                models[attention] = MODELS.get("unet")(dim, (1, size, size), attention=attention).to(device)
            optimizer = torch.optim.Adam(models[attention].parameters(), lr=1e-4)

            def step(model: nn.Module = models[attention], optimizer: torch.optim.Optimizer = optimizer) -> None:
                optimizer.zero_grad(set_to_none=True)
                (model(x, t) - eps).square().mean().backward()
                optimizer.step()

            steps[attention] = step
        memory = {name: memory_mb(step, device) for name, step in steps.items()}
        for attention, m in timed_in_turns(steps, device, int(spec["repeats"])).items():
            model = models[attention]
            rows.append({"attention": attention, "device": device.type, "image_size": size,
                         "tokens": (size // 2) ** 2, "dim_head": model.attn.qkv.in_features,
                         "features": model.attn.attend.features if attention == "performer" else None,
                         "batch": batch, "step_ms": m["ms"], "step_ms_std": m["ms_std"], "repeats": m["repeats"],
                         "peak_mem_mb": memory[attention]})
            log(f"unet {attention} {size}x{size}: {m['ms']:.4g} ms/step, {memory[attention]:.4g} MB")
    return rows


def run_attention_bench(spec: dict[str, Any], out_dir: str | Path, *, log: Callable[[str], None] = print
                        ) -> list[Path]:
    """Measure and write attention.csv, attention_fit.csv and (with ``unet_sizes``) attention_unet.csv in
    ``out_dir``.  spec: lengths_max, explicit_max, heads, dim_head, repeats, unet_sizes, unet_batch, device (auto),
    threads (:data:`SPEC_DEFAULTS`).  Returns the files written."""
    spec = {**SPEC_DEFAULTS, **spec}
    if int(spec["lengths_max"]) < 64:
        raise ValueError(f"attention bench: lengths_max {spec['lengths_max']} must be ≥ 64")
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    device = torch.device(resolve_device(spec["device"]))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(attention_rows(spec, device, log=log)).astype({"features": "Int64"})
    fits = pd.DataFrame(fit_rows(table)).astype({"crossover_length": "Int64"})
    frames = {"attention.csv": table, "attention_fit.csv": fits}
    if spec["unet_sizes"]:
        frames["attention_unet.csv"] = pd.DataFrame(unet_rows(spec, device, log=log)).astype({"features": "Int64"})
    for name, frame in frames.items():
        atomic_write(out_dir / name, lambda p, f=frame: f.to_csv(p, index=False))
    return [out_dir / name for name in frames]
