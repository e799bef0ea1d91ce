"""Benchmarks: training speed, sampling time per 1000 samples, peak memory and parameter counts.

Writes three CSVs under results/bench/ (one row per measurement, the device recorded in every row):
  models.csv    model, arch, dataset, dim, n_params
  train.csv     model, dataset, batch_size, steps, steps_per_s (median of `repeats`), peak_mem_mb, device
  sampling.csv  model, sampler, kind, steps, nfe, n_samples, s_per_1000 (median of `repeats`), peak_mem_mb, device,
                implementation; and, for model "zero" (a model that returns 0: the sampler's own cost), s_per_step of
                our sampler and of diffusers' scheduler for the same setting, side by side (``bench_overhead``)
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
from ttdm.options import fields_of
from ttdm.models import MODELS
from ttdm.samplers import SAMPLERS, Denoiser, protocol_of
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
    """Optimiser steps per second of the DDPM objective (Adam at ``spec["lr"]``, random data of the right shape,
    ``spec["batch_size"]`` rows), median of repeats."""
    ctx = Context(spec={"schedule": spec["schedule"]}, dim=dim, image_shape=None, device=device)
    method = DDPM(RegressionOptions(), ctx)
    opt = torch.optim.Adam(model.parameters(), lr=spec["lr"])
    gen = torch.Generator(device=device).manual_seed(spec["seed"])
    x0 = torch.randn(int(spec["batch_size"]), dim, generator=gen, device=device)

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
    """Seconds per 1000 samples for every setting of a denoiser sampler, median of repeats, with NFE counted."""
    schedule = make_schedule(spec["schedule"])
    calls = [0]

    def counted(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        return model(x, t)

    rows = []
    n = spec["n_samples"]
    for name, sampler in spec["samplers"].items():
        if protocol_of(sampler["kind"]) != "denoiser":
            continue  # a method's own sampler (a GAN's chain) does not take these models
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


OVERHEAD_N, OVERHEAD_MAX_STEPS = 500, 100  # a 500 x 2 batch; settings of more steps are measured at 100 steps


def diffusers_counterpart(kind: str, knobs: dict[str, Any]) -> dict[str, Any] | None:
    """The ``diffusers`` sampler knobs that run the same algorithm as our sampler ``kind`` (None: no counterpart)."""
    if kind == "ddim" and not knobs.get("eta"):
        return {"scheduler": "DDIMScheduler", "config": {"set_alpha_to_one": True}}
    if kind == "ddpm":
        return {"scheduler": "DDPMScheduler", "config": {"variance_type": knobs.get("variance", "fixed_small")}}
    if kind == "dpmpp":
        return {"scheduler": "DPMSolverMultistepScheduler",
                "config": {"algorithm_type": "dpmsolver++", "solver_order": knobs.get("order", 2)}}
    return None


def bench_overhead(spec: dict[str, Any], device: str) -> list[dict[str, Any]]:
    """Seconds per step of each sampler setting with a zero model (a 500 x 2 batch), ours and diffusers' scheduler
    of the same algorithm (through the ``diffusers`` sampler), median of repeats; the same visited steps
    ("trailing") on both sides, since the spacing does not change the cost of a step."""
    schedule = make_schedule(spec["schedule"])
    zero = Denoiser(lambda x, t: torch.zeros_like(x), schedule)
    noise = torch.randn(OVERHEAD_N, 2, generator=torch.Generator().manual_seed(spec["seed"])).to(device)
    rows = []
    for name, sampler in spec["samplers"].items():
        knobs = {k: v for k, v in sampler.items() if k not in ("kind", "steps", "methods")}
        theirs = diffusers_counterpart(sampler["kind"], knobs)
        if theirs is None:
            continue
        options = SAMPLERS.options(sampler["kind"])
        ours = {**knobs, "spacing": "trailing"} if options and "spacing" in fields_of(options) else knobs
        for steps in sorted({min(s, OVERHEAD_MAX_STEPS) for s in sampler["steps"]}):
            for implementation, kind, kw in (("ttdm", sampler["kind"], ours), ("diffusers", "diffusers", theirs)):
                draw = SAMPLERS.get(kind)
                gen = torch.Generator(device=device).manual_seed(spec["seed"])

                def run(draw=draw, kw=kw, gen=gen, steps=steps) -> None:
                    draw(zero, noise, steps, generator=gen, **kw)

                run()  # warm-up (diffusers' first call imports its schedulers)
                t = statistics.median(_timed(run, device) for _ in range(max(spec["repeats"], 3)))
                rows.append({"model": "zero", "dataset": "", "sampler": name, "kind": sampler["kind"], "steps": steps,
                             "nfe": steps, "n_samples": OVERHEAD_N, "s_per_1000": t * 1000 / OVERHEAD_N,
                             "implementation": implementation, "s_per_step": t / steps})
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
        own = {**spec, "batch_size": entry.get("batch_size", spec["batch_size"]), "lr": entry.get("lr", spec["lr"])}
        train.append({**keys, "batch_size": own["batch_size"], "steps": spec["train_steps"],
                      **bench_training(model, dim, own, device), **where})
        model.eval()
        sampling += [{**keys, **row, "implementation": "ttdm", **where}
                     for row in bench_sampling(model, dim, spec, device)]
        print(f"bench: {name} on {entry['dataset']}: {train[-1]['steps_per_s']:.1f} training steps/s")
    sampling += [{**row, **where} for row in bench_overhead(spec, device)]
    out_dir = Path(out_dir)
    written = []
    for filename, rows in zip(BENCH_FILES, (models, train, sampling)):
        text = pd.DataFrame(rows).to_csv(index=False)
        written.append(atomic_write(out_dir / filename, lambda p, text=text: p.write_text(text)))
    return written
