#!/usr/bin/env python3
"""Cost of attention against sequence length L: exact softmax attention against FAVOR+ (Performer), by hand.

Usage:

    .venv/bin/python scripts/attention_bench.py [--max-len 16384] [--device cpu|cuda] [--unet]

The pipeline runs the same measurement as the rule ``attention_bench`` (``ttdm attention-bench``, config block
``performer``); this script runs it outside the pipeline, e.g. on a GPU machine, with the measurement of
:mod:`ttdm.stages.attention_bench` (see there for what is timed and how memory is counted) and the figure of the
paper's Performer section (:func:`ttdm.report.performer_output.plot_scaling`).

Writes RESULTS/bench/attention.csv, attention_fit.csv (and attention_unet.csv with ``--unet``) and
RESULTS/figures/attention_scaling.pdf/.png.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch

from ttdm.report.performer_output import plot_scaling
from ttdm.report.style import save_figure
from ttdm.stages.attention_bench import run_attention_bench


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
    spec = {"lengths_max": args.max_len, "explicit_max": min(args.explicit_max_len, args.max_len),
            "heads": args.heads, "dim_head": args.dim_head, "repeats": args.repeats,
            "unet_sizes": [32, 64] if args.unet else [], "unet_batch": args.unet_batch, "device": args.device,
            "threads": args.threads}
    written = run_attention_bench(spec, args.results / "bench")
    bench, fits = (pd.read_csv(args.results / "bench" / name) for name in ("attention.csv", "attention_fit.csv"))
    print(fits.to_string(index=False))
    written += save_figure(plot_scaling(bench, fits), args.results / "figures", "attention_scaling")
    print("wrote " + ", ".join(map(str, written)))


if __name__ == "__main__":
    main()
