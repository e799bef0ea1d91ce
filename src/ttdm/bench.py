"""Benchmarks: training speed, sampling time per 1000 samples, peak memory and parameter counts.

Writes three CSVs under results/bench/ (one row per measurement, the device recorded in every row):
  models.csv    model, arch, dataset, dim, n_params
  train.csv     model, dataset, batch_size, steps, steps_per_s (median of `repeats`), peak_mem_mb, device
  sampling.csv  model, sampler, kind, steps, nfe, n_samples, s_per_1000 (median of `repeats`), peak_mem_mb, device
and, by :func:`complexity` (``ttdm complexity``), one more:
  complexity.csv  model, arch, optimizer, rank, degree, layout, n_params, flops_forward, flops_train_step,
                  peak_train_mem_mb, device   (see ttdm.flops)
Peak memory is the process's peak resident set size during the measurement on the CPU (polled from /proc), and
torch.cuda.max_memory_allocated on a GPU. The benchmark reads meta.json of each model's dataset for its shape.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ttdm.io import atomic_write, device_info, load_json, resolve_device
from ttdm.methods import METHODS
from ttdm.models import MODELS
from ttdm.samplers import SAMPLERS
from ttdm.schedules import make_schedule

BENCH_FILES = ("models.csv", "train.csv", "sampling.csv")


def _rss_mb() -> float:
    """Resident set size of this process in MiB (Linux /proc; 0 where unavailable)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    import resource

    return pages * resource.getpagesize() / 2**20


@contextmanager
def peak_memory(device: str, interval_s: float = 0.002) -> Iterator[dict[str, float]]:
    """Measure peak memory (MiB) inside the block: CUDA's allocator peak, or the polled peak RSS on the CPU."""
    result: dict[str, float] = {}
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        yield result
        torch.cuda.synchronize()
        result["peak_mem_mb"] = torch.cuda.max_memory_allocated() / 2**20
        return
    peak = [_rss_mb()]
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_mb())
            stop.wait(interval_s)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()
        result["peak_mem_mb"] = max(peak[0], _rss_mb())


def _timed(fn: Callable[[], Any], device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def bench_training(model: torch.nn.Module, dim: int, spec: dict[str, Any], device: str) -> dict[str, float]:
    """Optimiser steps per second of the DDPM objective (Adam, random data of the right shape), median of repeats."""
    schedule = make_schedule(spec["schedule"])
    method = METHODS.get("ddpm")()
    opt = torch.optim.Adam(model.parameters(), lr=spec["lr"])
    gen = torch.Generator(device=device).manual_seed(spec["seed"])
    x0 = torch.randn(spec["batch_size"], dim, generator=gen, device=device)

    def steps() -> None:
        for _ in range(spec["train_steps"]):
            loss = method.loss(model, x0, schedule, gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    steps()  # warm-up
    with peak_memory(device) as mem:
        times = [_timed(steps, device) for _ in range(spec["repeats"])]
    return {"steps_per_s": spec["train_steps"] / statistics.median(times), **mem}


def bench_sampling(model: torch.nn.Module, dim: int, spec: dict[str, Any], device: str) -> list[dict[str, Any]]:
    """Seconds per 1000 samples for every sampler setting, median of repeats, with NFE counted."""
    schedule = make_schedule(spec["schedule"])
    calls = [0]

    def counted(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        return model(x, t)

    rows = []
    n = spec["n_samples"]
    for name, sampler in spec["samplers"].items():
        knobs = {k: v for k, v in sampler.items() if k not in ("kind", "steps")}
        sample = SAMPLERS.get(sampler["kind"])
        for steps in sampler["steps"]:
            gen = torch.Generator(device=device).manual_seed(spec["seed"])
            noise = torch.randn(n, dim, generator=gen, device=device)

            def draw() -> None:
                with torch.no_grad():
                    sample(counted, noise, schedule, steps, generator=gen, **knobs)

            calls[0] = 0
            with peak_memory(device) as mem:
                times = [_timed(draw, device) for _ in range(spec["repeats"])]
            nfe = calls[0] // spec["repeats"]
            rows.append(
                {"sampler": name, "kind": sampler["kind"], "steps": steps, "nfe": nfe, "n_samples": n,
                 "s_per_1000": statistics.median(times) * 1000 / n, **mem}
            )
    return rows


def run_benchmarks(spec: dict[str, Any], out_dir: str | Path, data_root: str | Path = "results/data") -> list[Path]:
    """Run every benchmark of ``spec`` (see ttdm.config.bench_spec) and write the three CSVs into ``out_dir``."""
    device = resolve_device(spec["device"])
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(spec["seed"])
    info = device_info(device)
    where = {"device": info.get("gpu", info["processor"]), "threads": spec["threads"]}
    models, train, sampling = [], [], []
    for name, entry in spec["models"].items():
        meta = load_json(Path(data_root) / entry["dataset"] / "meta.json")
        dim, image_shape = meta["dim"], meta.get("image_shape")
        model = MODELS.get(entry["arch"])(dim, tuple(image_shape) if image_shape else None, **entry["model_cfg"])
        model = model.to(device)
        n_params = sum(p.numel() for p in model.parameters())
        keys = {"model": name, "dataset": entry["dataset"]}
        models.append({**keys, "arch": entry["arch"], "dim": dim, "n_params": n_params})
        train.append({**keys, "batch_size": spec["batch_size"], "steps": spec["train_steps"],
                      **bench_training(model, dim, spec, device), **where})
        model.eval()
        sampling += [{**keys, **row, **where} for row in bench_sampling(model, dim, spec, device)]
        print(f"bench: {name} on {entry['dataset']}: {train[-1]['steps_per_s']:.1f} training steps/s")
    out_dir = Path(out_dir)
    written = []
    for filename, rows in zip(BENCH_FILES, (models, train, sampling)):
        text = pd.DataFrame(rows).to_csv(index=False)
        written.append(atomic_write(out_dir / filename, lambda p, text=text: p.write_text(text)))
    return written


COMPLEXITY_COLUMNS = ("model", "arch", "optimizer", "rank", "degree", "layout", "n_params", "flops_forward",
                      "flops_train_step", "peak_train_mem_mb", "device")


def complexity(spec: dict[str, Any], data_root: str | Path, out_dir: str | Path) -> Path:
    """Parameters, FLOPs and peak training memory of every model of ``spec`` into ``out_dir/complexity.csv``.

    ``spec["models"]`` maps a name to {"arch", "model_cfg", "dataset", and optionally "optimizer" (adam), "n_fit"};
    the dataset's meta.json gives D and the image shape.  Optional spec keys: "batch_size" (256), "device" (auto),
    "threads", "memory" (true; false leaves peak_train_mem_mb empty).  Rows follow
    :func:`ttdm.flops.model_complexity`: FLOPs per sample forward (analytic for tt, measured for networks) and per
    optimiser step (a batch's forward + backward, one ALS sweep or one RGD iteration on n_fit points).
    rank, degree and layout are the tt hyper-parameters (defaults filled in), empty for networks.
    """
    from ttdm.flops import model_complexity
    from ttdm.models.tt import TTConfig

    device = resolve_device(spec.get("device", "auto"))
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    info = device_info(device)
    where = info.get("gpu", info["processor"])
    rows = []
    for name, entry in spec["models"].items():
        meta = load_json(Path(data_root) / entry["dataset"] / "meta.json")
        image_shape = tuple(meta["image_shape"]) if meta.get("image_shape") else None
        cfg = dict(entry.get("model_cfg", {}))
        result = model_complexity(
            entry["arch"], cfg, int(meta["dim"]), image_shape, int(spec.get("batch_size", 256)),
            n_fit=entry.get("n_fit"), optimizer=entry.get("optimizer"), device=device,
            memory=bool(spec.get("memory", True)),
        )
        tt = {key: cfg.get(key, getattr(TTConfig, key)) if entry["arch"] == "tt" else None
              for key in ("rank", "degree", "layout")}
        rows.append({"model": name, "arch": entry["arch"], **tt, **result, "device": where})
    df = pd.DataFrame(rows, columns=list(COMPLEXITY_COLUMNS))
    for key in ("rank", "degree"):
        df[key] = df[key].astype("Int64")  # integers, empty for networks
    text = df.to_csv(index=False)
    path = atomic_write(Path(out_dir) / "complexity.csv", lambda p: p.write_text(text))
    print(f"complexity: {len(rows)} models -> {path}")
    return path
