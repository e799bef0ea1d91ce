"""The sampling stage: draw samples from a trained run with every configured sampler and step count, timed and
with the number of network evaluations (NFE) counted exactly."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ttdm.io import atomic_write, device_info, resolve_device, save_json, spec_hash
from ttdm.samplers import SAMPLERS
from ttdm.schedules import make_schedule
from ttdm.train import load_run


class CountingModel(nn.Module):
    """ε_θ(x, t) unchanged, counting evaluations: ``rows`` adds B per call, so NFE per sample = rows / N.

    Shapes: x: (B, D), t: (B,) -> (B, D).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.rows = 0

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.rows += x.shape[0]
        return self.model(x, t)


def sampler_seed(seed: int, name: str, steps: int) -> int:
    """A 60-bit seed derived from (seed, sampler name, steps): settings never share noise, reruns repeat it."""
    return int(spec_hash([seed, name, steps], 15), 16)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _check_sampler(name: str, cfg: dict[str, Any]) -> None:
    if "kind" not in cfg or not isinstance(cfg.get("steps"), list) or not cfg["steps"]:
        raise ValueError(f"sampler {name!r} needs 'kind' and a non-empty 'steps' list, got {cfg!r}")
    SAMPLERS.get(cfg["kind"])  # a ValueError names the registered kinds
    bad = [s for s in cfg["steps"] if not isinstance(s, int) or isinstance(s, bool) or s < 1]
    if bad:
        raise ValueError(f"sampler {name!r}: steps must be positive integers, got {bad}")


def generate(spec: dict[str, Any], run_dir: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Sample ``n_samples`` points from the EMA model of ``run_dir`` with every sampler × step count in ``spec``.

    For sampler ``name`` and step count S the starting noise x_T ~ N(0, I) and any noise the sampler draws come
    from one torch.Generator on the device seeded by :func:`sampler_seed` (seed, name, S); batches of
    ``batch_size`` run one after another.  The schedule is the run's (its spec is stored in model.pt).

    Args:
        spec: {"seed", "n_samples", "batch_size", "device", "threads",
            "samplers": {name: {"kind", "steps": [S, ...], **knobs}}}.
    Writes (atomically) ``out_dir/samples.npz`` (f"{name}_{S}" → (N, D) float32), ``samples.json``
    ({"dataset", "model", "seed" of the run, "entries": [{"key", "sampler", "kind", "steps", "nfe", "n", "wall_s",
    "time_per_sample_s"}], "device"}) and
    ``spec.json``.
    Returns:
        The ``samples.json`` record.
    """
    for name, cfg in spec["samplers"].items():
        _check_sampler(name, cfg)
    n, batch_size = int(spec["n_samples"]), int(spec["batch_size"])
    if n < 1 or batch_size < 1:
        raise ValueError(f"n_samples and batch_size must be positive, got {n} and {batch_size}")
    device = resolve_device(spec.get("device", "auto"))
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    run = load_run(run_dir, device)
    schedule = make_schedule(run.spec["schedule"])

    arrays: dict[str, np.ndarray] = {}
    entries: list[dict[str, Any]] = []
    for name, cfg in spec["samplers"].items():
        sample = SAMPLERS.get(cfg["kind"])
        knobs = {k: v for k, v in cfg.items() if k not in ("kind", "steps")}
        for steps in cfg["steps"]:
            counter = CountingModel(run.model)
            generator = torch.Generator(device=device).manual_seed(sampler_seed(int(spec["seed"]), name, steps))
            chunks = []
            _sync(device)
            start = time.perf_counter()
            with torch.no_grad():
                for lo in range(0, n, batch_size):
                    x = torch.randn((min(batch_size, n - lo), run.dim), generator=generator, device=device)  # (B, D)
                    chunks.append(sample(counter, x, schedule, steps, generator=generator, **knobs))
                _sync(device)
            wall = time.perf_counter() - start
            key = f"{name}_{steps}"
            arrays[key] = torch.cat(chunks).float().cpu().numpy()  # (N, D)
            nfe = counter.rows / n
            entries.append({
                "key": key,
                "sampler": name,
                "kind": cfg["kind"],
                "steps": steps,
                "nfe": int(nfe) if nfe.is_integer() else nfe,
                "n": n,
                "wall_s": wall,
                "time_per_sample_s": wall / n,
            })

    out_dir = Path(out_dir)
    record = {
        "dataset": run.spec["dataset"],
        "model": run.spec["model"],
        "seed": run.spec["seed"],
        "entries": entries,
        "device": device_info(device),
    }
    save_json(out_dir / "spec.json", spec)

    def write_npz(p: Path) -> None:
        with open(p, "wb") as fh:
            np.savez(fh, **arrays)

    atomic_write(out_dir / "samples.npz", write_npz)
    save_json(out_dir / "samples.json", record)
    return record
