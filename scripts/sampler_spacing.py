#!/usr/bin/env python3
"""Which steps a few-step sampler visits decides what it can reach: the sampler floor (the exact ε* of each Gaussian
mixture, no learning error) under DDIM and DPM-Solver++ with every step spacing.

Usage (after `make paper`, which trains the sampler floor runs):

    .venv/bin/python scripts/sampler_spacing.py [--results results] [--n 2000] [--steps 10 20]

Writes results/bench/spacing.csv (dataset, sampler, spacing, steps, hq_percent, modes_covered, modes_total) and
prints it as a table; 2000 samples from N(0, I) noise of seed 0 for every row.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ttdm.metrics.evaluate import evaluate
from ttdm.runs import load_run
from ttdm.samplers import SAMPLERS
from ttdm.samplers.timesteps import SPACINGS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 20])
    parser.add_argument("--model", default="sampler-floor")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for run_dir in sorted(args.results.glob(f"runs/*/{args.model}/0")):
        dataset = run_dir.parts[-3]
        denoiser = load_run(run_dir).sampling_object("denoiser")
        meta = json.loads((args.results / "data" / dataset / "meta.json").read_text())
        test = np.load(args.results / "data" / dataset / "test.npy")
        for kind in ("ddim", "dpmpp"):
            for spacing in SPACINGS:
                for steps in args.steps:
                    gen = torch.Generator().manual_seed(0)
                    noise = torch.randn(args.n, meta["dim"], generator=gen)
                    x = SAMPLERS.get(kind)(denoiser, noise, steps, generator=gen, spacing=spacing).numpy()
                    values = evaluate(x, test, meta=meta, metrics={"modes": {}}, seed=0)
                    rows.append({"dataset": dataset, "sampler": kind, "spacing": spacing, "steps": steps,
                                 **{k: values.get(k) for k in ("hq_percent", "modes_covered", "modes_total")}})
    table = pd.DataFrame(rows)
    out = args.results / "bench" / "spacing.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    print(table.pivot_table(index=["dataset", "sampler", "spacing"], columns="steps", values="hq_percent").round(1)
          .to_string())
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
