#!/usr/bin/env python3
"""Cost of attention against sequence length L: exact softmax attention against FAVOR+ (Performer).

Usage:

    .venv/bin/python scripts/attention_bench.py [--max-len 16384] [--device cpu] [--unet]

For L = 64, 128, …, ``--max-len`` (batch 1, ``--heads`` 4 heads of ``--dim-head`` 32, float32), one forward and
backward pass of

- softmax: ttdm's SoftmaxAttention, ``F.scaled_dot_product_attention`` with the backend torch picks (a fused
  kernel that never stores the L×L matrix where one exists: flash attention on the CPU);
- softmax-explicit: the same call on the math backend, which forms softmax(QKᵀ/√d) (the U-Net's attention before
  FAVOR+); run up to ``--explicit-max-len`` only, as its memory grows like L²;
- performer: ttdm's PerformerAttention, m = round(d ln d) features (111 at d = 32);
- performer-pytorch: its FastAttention with the same m, when the package is installed.

Time: the median wall time of up to ``--repeats`` passes after one warm-up (fewer once they take a second in all).
Memory: on CUDA the peak of ``torch.cuda.max_memory_allocated`` above what was allocated before the pass; on the CPU,
where torch keeps no allocator statistics, the bytes of the distinct tensors saved for the backward pass
(``torch.autograd.graph.saved_tensors_hooks``): the activation memory the pass holds between forward and backward,
which is O(L) for FAVOR+ and fused softmax and O(L²) for explicit softmax, but leaves out the fused kernels'
transient workspace.  Both in MB (10⁶ bytes).

Writes results/bench/attention.csv (implementation, device, length, heads, dim_head, features, fwd_bwd_ms,
peak_mem_mb), results/bench/attention_fit.csv (implementation, device, quantity, slope, crossover_length): the
slope of log(time or memory) against log L over the lengths ≥ max_len/8, and the first length from which an
implementation is cheaper than softmax at every larger measured length (empty when it is not at the largest); and
results/figures/attention_scaling.pdf/.png.

``--unet`` also times one training step (forward, ε-loss, backward, Adam) of the default U-Net (channels 32,
channel_mult (1, 2): the attention sees (S/2)² tokens of width 64) on random 1×S×S images for S = 32 and 64 with
each attention: results/bench/attention_unet.csv (attention, device, image_size, tokens, dim_head, features,
batch, step_ms, peak_mem_mb).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from ttdm.models import MODELS
from ttdm.models.attention import PerformerAttention, SoftmaxAttention, default_features
from ttdm.report import style


# one colour per method, solid for ttdm's implementations and dashed for the references
LINES = {"softmax": {"color": style.PALETTE[0], "marker": "o", "ls": "-"},
         "softmax-explicit": {"color": style.PALETTE[0], "marker": "s", "ls": "--"},
         "performer": {"color": style.PALETTE[3], "marker": "^", "ls": "-"},
         "performer-pytorch": {"color": style.PALETTE[3], "marker": "v", "ls": "--"}}


def implementations(dim_head: int, features: int) -> dict[str, tuple[nn.Module, Callable[[], object]]]:
    """name -> (attention module, context it runs in)."""
    found = {"softmax": (SoftmaxAttention(), contextlib.nullcontext),
             "softmax-explicit": (SoftmaxAttention(), lambda: sdpa_kernel(SDPBackend.MATH)),
             "performer": (PerformerAttention(dim_head, features=features, redraw_every=0, seed=0),
                           contextlib.nullcontext)}
    try:
        from performer_pytorch import FastAttention
    except ImportError:
        return found
    found["performer-pytorch"] = (FastAttention(dim_head, nb_features=features), contextlib.nullcontext)
    return found


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def median_ms(run: Callable[[], None], device: torch.device, repeats: int) -> float:
    """Median wall time of ``run`` in ms: one warm-up, then up to ``repeats`` calls, stopping after a second."""
    run()
    times: list[float] = []
    while len(times) < repeats and sum(times) < 1.0:
        sync(device)
        start = time.perf_counter()
        run()
        sync(device)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def memory_mb(run: Callable[[], None], device: torch.device) -> float:
    """Peak allocation of ``run`` above the start (CUDA) or bytes of the tensors it saves for backward (CPU), MB."""
    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        run()
        sync(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 1e6
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        run()
    return sum(saved.values()) / 1e6


def attention_rows(args: argparse.Namespace, device: torch.device) -> list[dict[str, object]]:
    features = default_features(args.dim_head)
    rows = []
    for name, (module, context) in implementations(args.dim_head, features).items():
        module.to(device)
        length = 64
        while length <= args.max_len and (name != "softmax-explicit" or length <= args.explicit_max_len):
            gen = torch.Generator(device=device).manual_seed(0)
            shape = (1, args.heads, length, args.dim_head)  # (B, H, L, d)
            q, k, v = (torch.randn(shape, generator=gen, device=device, requires_grad=True) for _ in range(3))
            grad = torch.randn(shape, generator=gen, device=device)

            def run() -> None:
                with context():
                    module(q, k, v).backward(grad)

            rows.append({"implementation": name, "device": device.type, "length": length, "heads": args.heads,
                         "dim_head": args.dim_head, "features": features if "performer" in name else None,
                         "fwd_bwd_ms": median_ms(run, device, args.repeats), "peak_mem_mb": memory_mb(run, device)})
            print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rows[-1].items()))
            length *= 2
    return rows


def slope(table: pd.DataFrame, column: str) -> float:
    """s of the least-squares fit log(column) = s · log L + c over the lengths ≥ max/8."""
    tail = table[table["length"] >= table["length"].max() / 8]
    return float(np.polyfit(np.log(tail["length"]), np.log(tail[column]), 1)[0])


def crossover(table: pd.DataFrame, baseline: pd.DataFrame, column: str) -> int | None:
    """The first length from which ``table`` is below ``baseline`` at every larger common length, if any."""
    both = table.merge(baseline, on="length", suffixes=("", "_base")).sort_values("length")
    dearer = np.flatnonzero((both[column] >= both[f"{column}_base"]).to_numpy())
    if dearer.size and dearer[-1] == len(both) - 1:
        return None
    return int(both["length"].iloc[dearer[-1] + 1 if dearer.size else 0])


def fit_rows(table: pd.DataFrame) -> list[dict[str, object]]:
    rows = []
    for (name, device), group in table.groupby(["implementation", "device"], sort=False):
        baseline = table[(table["implementation"] == "softmax") & (table["device"] == device)]
        for quantity, column in (("time", "fwd_bwd_ms"), ("memory", "peak_mem_mb")):
            rows.append({"implementation": name, "device": device, "quantity": quantity,
                         "slope": slope(group, column),
                         "crossover_length": crossover(group, baseline, column) if name != "softmax" else None})
    return rows


def plot(table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Time and memory against L, log-log, one line per implementation."""
    memory = "peak memory (MB)" if (table["device"] == "cuda").all() else "saved for backward (MB)"
    with style.plt.rc_context(style.RC):
        fig, axes = style.plt.subplots(1, 2, figsize=(style.TEXT_WIDTH_IN, 2.4), layout="constrained")
        for ax, column, label in zip(axes, ("fwd_bwd_ms", "peak_mem_mb"), ("forward + backward (ms)", memory)):
            for name, group in table.groupby("implementation", sort=False):
                ax.plot(group["length"], group[column], label=name, **LINES[name], ms=3, lw=1.2)
            ax.set_xlabel("sequence length L")
            ax.set_ylabel(label)
            style.log_axes(ax, "x", "y")
        axes[0].legend()
        return style.save_figure(fig, out_dir, "attention_scaling")


def unet_rows(args: argparse.Namespace, device: torch.device) -> list[dict[str, object]]:
    rows = []
    for size in (32, 64):
        dim = size * size
        gen = torch.Generator(device=device).manual_seed(0)
        x, eps = (torch.randn(args.unet_batch, dim, generator=gen, device=device) for _ in range(2))
        t = torch.rand(args.unet_batch, generator=gen, device=device)
        for attention in ("softmax", "performer"):
            torch.manual_seed(0)
            model = MODELS.get("unet")(dim, (1, size, size), attention=attention).to(device)
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

            def step() -> None:
                optimizer.zero_grad(set_to_none=True)
                (model(x, t) - eps).square().mean().backward()
                optimizer.step()

            width = model.attn.qkv.in_features
            rows.append({"attention": attention, "device": device.type, "image_size": size,
                         "tokens": (size // 2) ** 2, "dim_head": width,
                         "features": model.attn.attend.features if attention == "performer" else None,
                         "batch": args.unet_batch, "step_ms": median_ms(step, device, args.repeats),
                         "peak_mem_mb": memory_mb(step, device)})
            print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rows[-1].items()))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-len", type=int, default=16384)
    parser.add_argument("--explicit-max-len", type=int, default=8192)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--dim-head", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--unet", action="store_true", help="also time U-Net training steps at 32×32 and 64×64")
    parser.add_argument("--unet-batch", type=int, default=8)
    parser.add_argument("--results", type=Path, default=Path("results"))
    args = parser.parse_args()
    if args.max_len < 64:
        parser.error(f"--max-len {args.max_len} must be ≥ 64")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    bench = args.results / "bench"
    bench.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(attention_rows(args, device)).astype({"features": "Int64"})
    table.to_csv(bench / "attention.csv", index=False)
    fits = pd.DataFrame(fit_rows(table)).astype({"crossover_length": "Int64"})
    fits.to_csv(bench / "attention_fit.csv", index=False)
    print(fits.to_string(index=False))
    written = [bench / "attention.csv", bench / "attention_fit.csv", *plot(table, args.results / "figures")]
    if args.unet:
        pd.DataFrame(unet_rows(args, device)).astype({"features": "Int64"}).to_csv(bench / "attention_unet.csv", index=False)
        written.append(bench / "attention_unet.csv")
    print("wrote " + ", ".join(map(str, written)))


if __name__ == "__main__":
    main()
