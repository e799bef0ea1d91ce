"""The landscape stage: a trained run's loss surface along two filter-normalised directions, as CSV and JSON."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ttdm.analysis.landscape import landscape
from ttdm.io import atomic_write, save_json


def write_landscape(
    run_dir: str | Path,
    data_dir: str | Path,
    out_csv: str | Path,
    *,
    n: int = 21,
    span: float = 1.0,
    n_points: int = 4096,
    seed: int = 0,
    device: str = "cpu",
) -> pd.DataFrame:
    """:func:`landscape`, written to ``out_csv`` (alpha, beta, loss) and ``out_csv`` with suffix .json:
    {"model", "arch", "dataset", "seed", "n", "span", "n_points", "loss_at_minimum"} (both atomically)."""
    out_csv = Path(out_csv)
    df = landscape(run_dir, data_dir, n=n, span=span, n_points=n_points, seed=seed, device=device)
    spec = df.attrs["spec"]
    record = {"model": spec["model"], "arch": spec["arch"], "dataset": spec["dataset"], "seed": int(seed),
              "n": int(n), "span": float(span), "n_points": int(n_points),
              "loss_at_minimum": float(df.attrs["loss_at_minimum"])}
    atomic_write(out_csv, lambda p: df.to_csv(p, index=False))
    save_json(out_csv.with_suffix(".json"), record)
    return df
