"""The metrics stage: score a run's samples, and the data floor, against the test split.

Reads result files only (samples.npz/json, test.npy, floor.npy, meta.json) and writes long-format CSVs
(`dataset, model, seed, sampler, steps, nfe, metric, value`; the floor: `dataset, metric, value`).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from ttdm.io import atomic_write, load_json, save_json
from ttdm.metrics.evaluate import evaluate, floor_metrics, long_rows

RUN_COLUMNS = ["dataset", "model", "seed", "sampler", "steps", "nfe", "metric", "value"]
FLOOR_COLUMNS = ["dataset", "metric", "value"]


def _write_csv(path: str | Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, lambda p: p.write_text(buffer.getvalue()))


def _load_split(data_dir: Path, name: str) -> np.ndarray:
    return np.load(data_dir / f"{name}.npy", allow_pickle=False)


def evaluate_run(spec: dict[str, Any], *, samples_dir: str | Path, data_dir: str | Path, out: str | Path) -> Path:
    """Score every sampler setting of one run; spec = {"metrics": {name: options}, "seed": int}.

    The run's dataset, model and seed are read from samples.json; NFE and time per sample are reported as metrics
    beside the sample-quality ones.
    """
    samples_dir, data_dir, out = Path(samples_dir), Path(data_dir), Path(out)
    meta = load_json(data_dir / "meta.json")
    test = _load_split(data_dir, "test")
    record = load_json(samples_dir / "samples.json")
    keys = {k: record[k] for k in ("dataset", "model", "seed")}
    rows: list[dict[str, Any]] = []
    with np.load(samples_dir / "samples.npz", allow_pickle=False) as samples:
        for entry in record["entries"]:
            values = evaluate(samples[entry["key"]], test, meta=meta, metrics=spec["metrics"], seed=spec["seed"])
            values["time_per_sample_s"] = entry["time_per_sample_s"]
            setting = {**keys, "sampler": entry["sampler"], "steps": entry["steps"], "nfe": entry["nfe"]}
            rows += long_rows(values, **setting)
    _write_csv(out, RUN_COLUMNS, rows)
    save_json(out.with_name("spec.json"), spec)
    return out


def evaluate_floor(spec: dict[str, Any], *, data_dir: str | Path, out: str | Path) -> Path:
    """The same metrics for floor.npy, a fresh sample of the true distribution, against test.npy."""
    data_dir, out = Path(data_dir), Path(out)
    meta = load_json(data_dir / "meta.json")
    values = floor_metrics(
        _load_split(data_dir, "floor"), _load_split(data_dir, "test"), meta=meta, metrics=spec["metrics"],
        seed=spec["seed"],
    )
    _write_csv(out, FLOOR_COLUMNS, long_rows(values, dataset=meta["name"]))
    return out
