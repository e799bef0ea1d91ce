"""Benchmarks: training speed, sampling time per 1000 samples, peak memory and parameter counts.

Writes three CSVs under results/bench/ (one row per measurement, the device recorded in every row):
  models.csv    model, arch, dataset, dim, n_params
  train.csv     model, dataset, batch_size, steps, steps_per_s (median of `repeats`), peak_mem_mb, device
  sampling.csv  model, sampler, kind, steps, nfe, n_samples, s_per_1000 (median of `repeats`), peak_mem_mb, device
(``ttdm.stages.complexity`` writes complexity.csv beside them).
Peak memory is the process's peak resident set size during the measurement on the CPU (polled from /proc), and
torch.cuda.max_memory_allocated on a GPU. The benchmark reads meta.json of each model's dataset for its shape (the
files are given: ``meta_files``), nothing else of results/.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ttdm.analysis.profiling import peak_memory
from ttdm.io import atomic_write, dataset_metas, device_info, resolve_device
from ttdm.methods.base import Context
from ttdm.methods.ddpm import DDPM
from ttdm.methods.regression import RegressionOptions
from ttdm.models import MODELS
from ttdm.samplers import SAMPLERS, Denoiser
from ttdm.schedules import make_schedule

BENCH_FILES = ("models.csv", "train.csv", "sampling.csv")


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
    ctx = Context(spec={"schedule": spec["schedule"]}, dim=dim, image_shape=None, device=device)
    method = DDPM(RegressionOptions(), ctx)
    opt = torch.optim.Adam(model.parameters(), lr=spec["lr"])
    gen = torch.Generator(device=device).manual_seed(spec["seed"])
    x0 = torch.randn(spec["batch_size"], dim, generator=gen, device=device)

    def steps() -> None:
        for _ in range(spec["train_steps"]):
            loss = method.loss(model, x0, gen)
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
        knobs = {k: v for k, v in sampler.items() if k not in ("kind", "steps", "methods")}
        sample = SAMPLERS.get(sampler["kind"])
        for steps in sampler["steps"]:
            gen = torch.Generator(device=device).manual_seed(spec["seed"])
            noise = torch.randn(n, dim, generator=gen, device=device)

            def draw() -> None:
                with torch.no_grad():
                    sample(Denoiser(counted, schedule), noise, steps, generator=gen, **knobs)

            calls[0] = 0
            with peak_memory(device) as mem:
                times = [_timed(draw, device) for _ in range(spec["repeats"])]
            nfe = calls[0] // spec["repeats"]
            rows.append(
                {"sampler": name, "kind": sampler["kind"], "steps": steps, "nfe": nfe, "n_samples": n,
                 "s_per_1000": statistics.median(times) * 1000 / n, **mem}
            )
    return rows


def run_benchmarks(spec: dict[str, Any], out_dir: str | Path, meta_files: Iterable[str | Path]) -> list[Path]:
    """Run every benchmark of ``spec`` (see ttdm.config.bench_spec) and write the three CSVs into ``out_dir``;
    ``meta_files``: meta.json of the models' datasets (results/data/{dataset}/meta.json)."""
    device = resolve_device(spec["device"])
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(spec["seed"])
    info = device_info(device)
    where = {"device": info.get("gpu", info["processor"]), "threads": spec["threads"]}
    metas = dataset_metas(meta_files, (entry["dataset"] for entry in spec["models"].values()))
    models, train, sampling = [], [], []
    for name, entry in spec["models"].items():
        meta = metas[entry["dataset"]]
        dim, image_shape = meta["dim"], meta.get("image_shape")
        model = MODELS.get(entry["arch"])(dim, tuple(image_shape) if image_shape else None, **entry["model_cfg"])
        model = model.to(device)
        n_params = sum(p.numel() for p in model.parameters())
        if n_params == 0:  # nothing to train or time (the sampler floor's exact ε*, filled by its run only)
            print(f"bench: {name} ({entry['arch']}) has no parameters: left out")
            continue
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
