"""Run the configured metrics on a sample against the reference set; long-format rows for the CSV writers.

Non-finite samples (a diverged model) are reported, not raised: ``evaluate`` always returns ``nonfinite_fraction``,
the fraction of rows of ``x`` with a NaN or ±inf entry, and computes the metrics on the finite rows only, so a broken
model shows up in the tables instead of stopping the pipeline. With fewer than 2 finite rows only
``nonfinite_fraction`` is returned (no metric is defined on fewer points).
"""

from __future__ import annotations

import hashlib

import numpy as np

from ttdm.metrics import METRICS
from ttdm.options import check_options

MIN_FINITE_ROWS = 2  # the unbiased estimators divide by N − 1


def metric_rng(seed: int, name: str) -> np.random.Generator:
    """The generator of metric ``name``: seeded by (seed, sha256(name)), stable across runs and metric order."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer")
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
    return np.random.default_rng([int(seed), key])


def evaluate(
    x: np.ndarray, ref: np.ndarray, *, meta: dict, metrics: dict[str, dict], seed: int
) -> dict[str, float]:
    """Metrics of samples ``x: (N, D)`` against ``ref: (M, D)``, merged into one ``{name: value}`` dict.

    ``metrics`` maps registered metric names to their options, e.g. ``{"swd": {"n_projections": 500}, "mmd": {}}``;
    each metric gets its own generator ``metric_rng(seed, name)``. The result starts with ``nonfinite_fraction``
    (see the module docstring); the metrics see only the finite rows of ``x``. Unknown names raise ``METRICS.get``'s
    ValueError before any metric runs; so do options that a metric does not declare (naming ``metrics.NAME.KEY``),
    a non-finite or misshaped ``ref`` and a misshaped ``x``.
    """
    x, ref = np.asarray(x, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if x.ndim != 2 or ref.ndim != 2 or x.shape[1] != ref.shape[1] or len(x) == 0:
        raise ValueError(f"x {x.shape} and ref {ref.shape} must be (N, D) and (M, D) arrays with N ≥ 1")
    if len(ref) < MIN_FINITE_ROWS or not np.isfinite(ref).all():
        raise ValueError(f"ref {ref.shape} must have at least {MIN_FINITE_ROWS} rows, all finite")
    fns = {name: METRICS.get(name) for name in metrics}
    for name, options in metrics.items():
        check_options(METRICS.options(name), options or {}, f"metrics.{name}")
    finite = np.isfinite(x).all(axis=1)  # (N,)
    values = {"nonfinite_fraction": float(1.0 - finite.mean())}
    x = x[finite]
    if len(x) < MIN_FINITE_ROWS:
        return values
    for name, options in metrics.items():
        result = fns[name](x, ref, meta=meta, rng=metric_rng(seed, name), **(options or {}))
        clash = values.keys() & result.keys()
        if clash:
            raise ValueError(f"metric {name!r} returns {sorted(clash)}, already returned by another metric")
        values.update(result)
    return values


def floor_metrics(
    floor: np.ndarray, ref: np.ndarray, *, meta: dict, metrics: dict[str, dict], seed: int
) -> dict[str, float]:
    """The data floor: the same metrics for a fresh sample ``floor: (N, D)`` of the true distribution vs ``ref``."""
    return evaluate(floor, ref, meta=meta, metrics=metrics, seed=seed)


def long_rows(values: dict[str, float], **keys: object) -> list[dict]:
    """Long-format rows ``{**keys, "metric": name, "value": v}``, one per entry of ``values``, in its order."""
    reserved = {"metric", "value"} & keys.keys()
    if reserved:
        raise ValueError(f"keys {sorted(reserved)} are reserved for the metric name and value")
    return [{**keys, "metric": name, "value": float(value)} for name, value in values.items()]
