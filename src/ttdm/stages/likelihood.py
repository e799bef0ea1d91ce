"""The likelihood stage: test negative log-likelihood of a run by the probability-flow ODE, and its floor.

For a run whose method provides a denoiser, −log p(x) of at most ``n_max`` test rows (a seeded subsample) in nats per
dimension by :func:`ttdm.analysis.likelihood.nll`: the exact divergence for D ≤ ``exact_max_dim``, else Hutchinson's
estimate with ``n_probes`` fixed probes; the solver, its steps or tolerances and the number of network evaluations
are recorded beside the value.  For Gaussian-mixture datasets the floor is the true NLL of the same rows
(:func:`ttdm.analysis.likelihood.mixture_nll`, at the same start time t_min as the ODE).

Writes long-format CSVs (``dataset, model, seed, metric, value``; the floor: ``dataset, metric, value``) and the
spec beside them (``.spec.json``).  Digits are not dequantised: their NLL is a density of the [−1, 1] pixel vectors,
not comparable with published bits/dim.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ttdm.io import load_json, resolve_device, save_csv_rows, save_json, spec_hash
from ttdm.runs import load_run

RUN_COLUMNS = ["dataset", "model", "seed", "metric", "value"]
FLOOR_COLUMNS = ["dataset", "metric", "value"]


def _test_rows(data_dir: Path, n_max: int, seed: int) -> np.ndarray:
    """At most ``n_max`` rows of test.npy: a subsample drawn from the data seed, the same for every run and the floor."""
    test = np.load(data_dir / "test.npy", allow_pickle=False)
    if len(test) <= n_max:
        return test
    rng = np.random.default_rng(int(spec_hash(["likelihood-rows", int(seed)], 15), 16))
    return test[np.sort(rng.choice(len(test), size=n_max, replace=False))]


def run_nll(spec: dict[str, Any], *, run_dir: str | Path, data_dir: str | Path, out: str | Path) -> dict[str, Any]:
    """NLL of one run's test rows; spec = {"n_max", "solver", "steps", "rtol", "atol", "n_probes", "exact_max_dim",
    "seed" (the data seed: rows and probes), "device", "threads", "ode" (default true; false: the method's bound
    only)}.  The method's variational bound (:meth:`ttdm.methods.base.Method.elbo`) is added when it has one.
    Returns the record written to ``out``."""
    from ttdm.analysis.likelihood import nll

    device = resolve_device(spec.get("device", "auto"))
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    run = load_run(run_dir, device)
    denoiser = run.sampling_object("denoiser")
    rows = _test_rows(Path(data_dir), int(spec["n_max"]), int(spec["seed"]))
    x0 = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float64)).to(device)
    values: dict[str, float] = {"n_points": float(len(rows))}
    if spec.get("ode", True):
        generator = torch.Generator().manual_seed(int(spec_hash(["likelihood-probes", int(spec["seed"])], 15), 16))
        result = nll(denoiser.eps, denoiser.schedule, x0, model_dtype=torch.float32,
                     exact_divergence=rows.shape[1] <= int(spec["exact_max_dim"]), n_probes=int(spec["n_probes"]),
                     solver=spec["solver"], steps=int(spec["steps"]), rtol=float(spec["rtol"]),
                     atol=float(spec["atol"]), generator=generator)
        values.update({"nll": result["nll"], "nll_std_err": result["nll_std_err"], "bpd": result["bpd"],
                       "prior_nll": result["prior_nll"], "t_min": result["t_min"], "nfe": result["nfe"],
                       "exact_divergence": float(result["exact_divergence"]), "wall_s": result["wall_s"]})
    values.update(_elbo(run, x0, load_json(Path(data_dir) / "meta.json"), int(spec["seed"])))
    keys = {"dataset": run.spec["dataset"], "model": run.spec["model"], "seed": run.spec["seed"]}
    out = Path(out)
    save_csv_rows(out, RUN_COLUMNS, [{**keys, "metric": k, "value": float(v)} for k, v in values.items()])
    save_json(out.with_name(out.stem + ".spec.json"), spec)
    return {**keys, **values}


def _elbo(run: Any, x0: torch.Tensor, meta: dict[str, Any], seed: int) -> dict[str, float]:
    """The run's variational bound in nats/dim (``elbo``, its standard error over rows, ``elbo_bpd``, seconds), or
    nothing when its method has none; a discrete decoder on data with grey levels (digits)."""
    import math
    import time

    from ttdm.analysis.elbo import decoder_levels

    started = time.perf_counter()
    generator = torch.Generator().manual_seed(int(spec_hash(["elbo-noise", seed], 15), 16))
    with torch.no_grad():
        bound = run.method.elbo(run.parts, x0, generator, levels=decoder_levels(meta))
    if bound is None:
        return {}
    per_dim = bound["elbo"].double().cpu() / x0.shape[1]
    return {"elbo": float(per_dim.mean()), "elbo_std_err": float(per_dim.std() / math.sqrt(len(per_dim))),
            "elbo_bpd": float(per_dim.mean()) / math.log(2), "elbo_s": time.perf_counter() - started}


def floor_nll(spec: dict[str, Any], *, data_dir: str | Path, out: str | Path) -> dict[str, float]:
    """The true NLL of the same test rows for a Gaussian-mixture dataset (empty CSV otherwise); spec as
    :func:`run_nll` plus "schedule"."""
    from ttdm.analysis.likelihood import mixture_nll
    from ttdm.data.mixture import GaussianMixture
    from ttdm.schedules import make_schedule

    data_dir = Path(data_dir)
    meta = load_json(data_dir / "meta.json")
    values: dict[str, float] = {}
    if meta.get("mixture"):
        rows = _test_rows(data_dir, int(spec["n_max"]), int(spec["seed"]))
        result = mixture_nll(GaussianMixture.from_dict(meta["mixture"]), make_schedule(spec["schedule"]),
                             torch.from_numpy(np.asarray(rows, dtype=np.float64)))
        values = {"nll": result["nll"], "nll_data": result["nll_data"], "t_min": result["t_min"]}
    save_csv_rows(out, FLOOR_COLUMNS, [{"dataset": meta["name"], "metric": k, "value": v} for k, v in values.items()])
    return values
