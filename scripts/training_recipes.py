"""How fast the networks converge under different training recipes (issue 9): writes results/bench/recipes.csv.

    .venv/bin/python scripts/training_recipes.py [--out results/bench/recipes.csv] [--seeds 0 1]

For each recipe (learning rate and its schedule, batch size, steps, input Fourier features, output skip) and each
network and dataset (8gaussians, 25gaussians; the data stage's train.npy in results/data, run `snakemake
results/data/8gaussians/meta.json results/data/25gaussians/meta.json` first), it trains a DDPM noise predictor
with the library's models and schedule (Adam, gradient clipping at 1, EMA 0.995 with warm-up), draws 500 samples
with ancestral DDPM in 1000 steps and writes the training seconds, the % high-quality samples and modes covered
(ttdm.metrics.modes), and the largest sample norm (a diverged sample shows there). It is a measurement, not part of
the workflow: the quick preset's settings were chosen from it, and from the budget study the workflow runs.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import time
from pathlib import Path

import numpy as np
import torch

from ttdm.metrics.modes import modes
from ttdm.models import MODELS
from ttdm.samplers import SAMPLERS, Denoiser
from ttdm.schedules import linear_schedule
from ttdm.stages.train import lr_factor

ROOT = Path(__file__).resolve().parents[1]
RECIPES = {  # name -> (lr, schedule, warmup, batch, steps, model options)
    "constant lr 1e-3 (old default)": (1e-3, "constant", 0, 256, 2000, {}),
    "cosine lr 3e-3": (3e-3, "cosine", 100, 256, 2000, {}),
    "cosine lr 3e-3, batch 1024": (3e-3, "cosine", 100, 1024, 2000, {}),
    "cosine lr 3e-3, 4000 steps": (3e-3, "cosine", 100, 256, 4000, {}),
    "cosine lr 3e-3, Fourier features": (3e-3, "cosine", 100, 256, 2000, {"fourier": 6}),
    "cosine lr 3e-3, Fourier, 3000 steps": (3e-3, "cosine", 100, 256, 3000, {"fourier": 6}),
    "Fourier, t sampled towards 0": (3e-3, "cosine", 100, 256, 2000, {"fourier": 6}, {"t_sampling": "low"}),
    "Fourier, Min-SNR-5 weighting": (3e-3, "cosine", 100, 256, 2000, {"fourier": 6}, {"weighting": "minsnr5"}),
}
# t_sampling "low": i = ⌊T u²⌋, u ~ U(0, 1) (density ∝ 1/√i: more steps near the data, where the mixtures are sharp);
# weighting "minsnr5": the ε-loss of step i weighted by min(SNR_i, 5)/SNR_i (Min-SNR-γ, Hang et al. 2023), which
# down-weights the low-noise steps.


def run(dataset: str, arch: str, recipe: tuple, seed: int) -> dict:
    lr, schedule, warmup, batch, steps, options = recipe[:6]
    knobs = recipe[6] if len(recipe) > 6 else {}
    meta = json.loads((ROOT / "results" / "data" / dataset / "meta.json").read_text())
    x = torch.from_numpy(np.load(ROOT / "results" / "data" / dataset / "train.npy")).float()
    torch.manual_seed(seed)
    model = MODELS.get(arch)(2, **options)
    ema = copy.deepcopy(model)
    sched = linear_schedule()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for n in range(1, steps + 1):
        for group in opt.param_groups:
            group["lr"] = lr * lr_factor(schedule, warmup, n, steps)  # the training loop's schedule
        x0 = x[torch.randint(0, len(x), (batch,), generator=gen)]
        if knobs.get("t_sampling") == "low":
            i = (sched.T * torch.rand(batch, generator=gen) ** 2).long().clamp(max=sched.T - 1)
        else:
            i = torch.randint(0, sched.T, (batch,), generator=gen)
        eps = torch.randn(x0.shape, generator=gen)
        per_row = ((eps - model(sched.q_sample(x0, i, eps), sched.time(i).float())) ** 2).mean(dim=1)
        if knobs.get("weighting") == "minsnr5":
            snr = torch.exp(2 * sched.logsnr(i)).float()
            per_row = per_row * torch.clamp(snr, max=5.0) / snr
        loss = per_row.mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        d = min(0.995, (1 + n) / (10 + n))
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), model.parameters()):
                pe.lerp_(p, 1 - d)
    seconds = time.perf_counter() - start
    g = torch.Generator().manual_seed(1000 + seed)
    with torch.no_grad():
        samples = SAMPLERS.get("ddpm")(Denoiser(ema, sched), torch.randn(500, 2, generator=g), 1000, generator=g)
    m = modes(samples.numpy(), None, meta=meta, rng=None)
    return {"train_s": round(seconds, 2), "hq_percent": m["hq_percent"], "modes_covered": m["modes_covered"],
            "modes_total": m["modes_total"], "max_norm": float(samples.norm(dim=1).max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "recipes.csv")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--archs", nargs="+", default=["mlp", "resnet"])
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), help="names of RECIPES to run (default all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fields = ["dataset", "arch", "recipe", "seed", "lr", "lr_schedule", "warmup", "batch_size", "steps", "options",
              "train_s", "hq_percent", "modes_covered", "modes_total", "max_norm"]
    with open(args.out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for dataset in ("8gaussians", "25gaussians"):
            for arch in args.archs:
                for name, recipe in ((n, RECIPES[n]) for n in args.recipes):
                    for seed in args.seeds:
                        row = run(dataset, arch, recipe, seed)
                        lr, schedule, warmup, batch, steps, options = recipe[:6]
                        writer.writerow({"dataset": dataset, "arch": arch, "recipe": name, "seed": seed, "lr": lr,
                                         "lr_schedule": schedule, "warmup": warmup, "batch_size": batch,
                                         "steps": steps, "options": json.dumps({**options, **(recipe[6] if len(recipe) > 6 else {})}),
                                         **row})
                        f.flush()
                        print(dataset, arch, name, seed, row, flush=True)


if __name__ == "__main__":
    main()
