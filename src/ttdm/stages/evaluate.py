"""The metrics stage: score one sampler setting of a run, and the data floor, against the test split.

Reads result files only (the setting's .npz/.json, test.npy, floor.npy, meta.json) and writes long-format CSVs
(`dataset, model, seed, sampler, steps, nfe, metric, value`; the floor: `dataset, metric, value`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ttdm.io import load_json, save_csv_rows, save_json
from ttdm.metrics.evaluate import evaluate, floor_metrics, long_rows

RUN_COLUMNS = ["dataset", "model", "seed", "sampler", "steps", "nfe", "metric", "value"]
FLOOR_COLUMNS = ["dataset", "metric", "value"]


def _load_split(data_dir: Path, name: str) -> np.ndarray:
    return np.load(data_dir / f"{name}.npy", allow_pickle=False)


def _with_features(values: dict[str, float], x: np.ndarray, ref: np.ndarray, classifier: str | Path | None,
                   spec: dict[str, Any]) -> dict[str, float]:
    """``values`` plus the classifier-feature metrics (ttdm.metrics.features) of the finite rows of x, when a
    classifier is given (this imports torch: only the datasets that have one pay for it)."""
    if classifier is None:
        return values
    from ttdm.analysis.classifier import load_classifier
    from ttdm.metrics.features import feature_metrics

    finite = x[np.isfinite(x).all(axis=1)]
    if len(finite) < 2:
        return values
    k = int((spec["metrics"].get("prdc") or {}).get("nearest_k", 5))
    return {**values, **feature_metrics(finite, ref, load_classifier(classifier), nearest_k=k)}


def evaluate_run(spec: dict[str, Any], *, samples: str | Path, data_dir: str | Path, out: str | Path,
                 classifier: str | Path | None = None) -> Path:
    """Score one sampler setting of one run; spec = {"metrics": {name: options}, "seed": int}.

    ``samples`` is the setting's ``.npz``; its ``.json`` record beside it gives the run's dataset, model and seed,
    the sampler, steps, NFE and time per sample, which are reported beside the sample-quality metrics.
    ``classifier``: the dataset's classifier (model.pt), which adds FD, feature PRDC and the class KL.
    """
    samples, data_dir, out = Path(samples), Path(data_dir), Path(out)
    meta = load_json(data_dir / "meta.json")
    test = _load_split(data_dir, "test")
    record = load_json(samples.with_suffix(".json"))
    with np.load(samples, allow_pickle=False) as npz:
        x = npz["x"]
    values = _with_features(evaluate(x, test, meta=meta, metrics=spec["metrics"], seed=spec["seed"]), x, test,
                            classifier, spec)
    values["time_per_sample_s"] = record["time_per_sample_s"]
    setting = {k: record[k] for k in ("dataset", "model", "seed", "sampler", "steps", "nfe")}
    save_csv_rows(out, RUN_COLUMNS, long_rows(values, **setting))
    save_json(out.with_name(out.stem + ".spec.json"), spec)
    return out


def evaluate_floor(spec: dict[str, Any], *, data_dir: str | Path, out: str | Path,
                   classifier: str | Path | None = None) -> Path:
    """The same metrics for floor.npy, a fresh sample of the true distribution, against test.npy."""
    data_dir, out = Path(data_dir), Path(out)
    meta = load_json(data_dir / "meta.json")
    floor, test = _load_split(data_dir, "floor"), _load_split(data_dir, "test")
    values = _with_features(floor_metrics(floor, test, meta=meta, metrics=spec["metrics"], seed=spec["seed"]),
                            floor, test, classifier, spec)
    save_csv_rows(out, FLOOR_COLUMNS, long_rows(values, dataset=meta["name"]))
    return out
