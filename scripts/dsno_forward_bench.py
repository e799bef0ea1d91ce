#!/usr/bin/env python3
"""Forward time of every DSNO student of a config against its backbone, without training anything.

Usage:

    .venv/bin/python scripts/dsno_forward_bench.py [--config workflow/presets/full.yaml] [--device cuda]

The time of a forward pass does not depend on the weights, so each student (``method: dsno``) and its teacher's
denoiser are built from their run specs at their initial weights and timed exactly as ``ttdm dsno-eval`` times a
trained one (:func:`ttdm.stages.dsno_eval.forward_ms`: the median of ``repeats`` passes after one warm-up, on the
config's ``dsno.batch_sizes``).  It also times one training step of each student and of its teacher (forward,
backward and Adam at the run's batch size; median of ``--train-repeats``), which is what the students' and teachers'
training jobs repeat.  Use it on a GPU machine that cannot run the whole chain (teacher, trajectories, student).

Writes ``--out`` (default results/bench/dsno_forward.csv): dataset, model, M, temporal, batch, student_ms,
backbone_ms, ratio, params_student, params_backbone, device, gpu, torch, config; and ``--out`` with suffix
``_train.csv``: dataset, model, part (student or teacher), batch_size, step_ms, device.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import pandas as pd
import torch

from ttdm import config as cfg
from ttdm.config.components import DATASET_KEYS
from ttdm.data import DATASETS
from ttdm.io import device_info, resolve_device
from ttdm.methods.base import Context
from ttdm.models.embeddings import count_parameters
from ttdm.report.dsno import train_steps_path
from ttdm.runs import make_method
from ttdm.stages.dsno_eval import _sync, forward_ms


def dataset_shape(config: dict, dataset: str) -> tuple[int, tuple[int, ...] | None]:
    """(D, image shape) of a config's dataset, from its loader (no data file is read)."""
    options = {k: v for k, v in config["datasets"][dataset].items() if k not in DATASET_KEYS}
    data = DATASETS.get(config["datasets"][dataset]["kind"])(options)
    if data.points is not None:
        return data.points.shape[1], data.image_shape
    import numpy as np

    return data.sample(2, np.random.default_rng(0)).shape[1], data.image_shape


def parts_of(spec: dict, dim: int, shape: tuple[int, ...] | None, device: str) -> dict[str, torch.nn.Module]:
    method = make_method(spec, Context(spec=spec, dim=dim, image_shape=shape, device=device))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(spec["seed"]))
        return {name: part.to(device) for name, part in method.build().items()}


def train_step_ms(loss_fn, module: torch.nn.Module, repeats: int, device: str) -> float:
    """Median time of one forward + backward + Adam step of ``loss_fn()`` in ms, after 3 warm-up steps."""
    module.train()
    opt = torch.optim.Adam(module.parameters(), lr=1e-4)
    times = []
    for i in range(repeats + 3):
        _sync(device)
        tick = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss_fn().backward()
        opt.step()
        _sync(device)
        if i >= 3:
            times.append(1e3 * (time.perf_counter() - tick))
    module.eval()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("workflow/presets/full.yaml"))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, help="timed forward passes (default: the config's dsno.repeats)")
    parser.add_argument("--train-repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--out", type=Path, default=Path("results/bench/dsno_forward.csv"))
    args = parser.parse_args()
    config = cfg.load_config(args.config)
    device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    study = config.get("dsno") or {}
    batch_sizes = [int(b) for b in study.get("batch_sizes", [1])]
    repeats = args.repeats or int(study.get("repeats", 20))
    seen, rows, train_rows = set(), [], []
    for dataset, model, seed in cfg.runs(config):
        spec = cfg.run_spec(config, dataset, model, seed)
        if spec["method"] != "dsno" or (dataset, model) in seen:
            continue
        seen.add((dataset, model))
        dim, shape = dataset_shape(config, dataset)
        student = parts_of(spec, dim, shape, device)["student"].eval()
        teacher_spec = cfg.run_spec(config, dataset, spec["training"]["teacher"], seed)
        backbone = parts_of(teacher_spec, dim, shape, device)["denoiser"].eval()
        gen = torch.Generator().manual_seed(0)
        for b in batch_sizes:
            x = torch.randn(b, dim, generator=gen).to(device)
            t = torch.ones(b, device=device)
            s = forward_ms(student, x, repeats, device)
            k = forward_ms(lambda z: backbone(z, t), x, repeats, device)
            rows.append({"dataset": dataset, "model": model, "M": student.M, "temporal": bool(student.temporal),
                         "batch": b, "student_ms": s, "backbone_ms": k, "ratio": s / k,
                         "params_student": count_parameters(student), "params_backbone": count_parameters(backbone),
                         "device": device})
            print(f"{dataset:12s} {model:16s} B={b:6d} student {s:8.3f} ms  backbone {k:8.3f} ms  ratio {s / k:5.2f}",
                  flush=True)
        nb, tb = int(spec["training"]["batch_size"]), int(teacher_spec["training"]["batch_size"])
        xs, target = torch.randn(nb, dim, device=device), torch.randn(nb, student.M, dim, device=device)
        xt, tt_ = torch.randn(tb, dim, device=device), torch.rand(tb, device=device)
        step_s = train_step_ms(lambda: (student(xs) - target).pow(2).mean(), student, args.train_repeats, device)
        step_t = train_step_ms(lambda: backbone(xt, tt_).pow(2).mean(), backbone, args.train_repeats, device)
        train_rows += [{"dataset": dataset, "model": model, "part": "student", "batch_size": nb, "step_ms": step_s,
                        "device": device},
                       {"dataset": dataset, "model": model, "part": "teacher", "batch_size": tb, "step_ms": step_t,
                        "device": device}]
        print(f"{dataset:12s} {model:16s} train step: student {step_s:.2f} ms (B={nb}), teacher {step_t:.2f} ms "
              f"(B={tb})", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    info = device_info(device)
    table = pd.DataFrame(rows).assign(gpu=info.get("gpu", ""), torch=info.get("torch", ""), config=str(args.config))
    table.to_csv(args.out, index=False)
    train_out = Path(train_steps_path(args.out))
    pd.DataFrame(train_rows).assign(gpu=info.get("gpu", ""), torch=info.get("torch", "")).to_csv(train_out, index=False)
    print(f"wrote {args.out}, {train_out}")


if __name__ == "__main__":
    main()
