"""Tensor-train experiments (seed 000): per-run records, the groups of runs each table and figure shows, the
aggregated frames of the TT tables and the issue's computed targets.

A run's record joins its spec (architecture, rank, degree, optimizer, method and the ``variant`` the grid expansion
recorded), its train.json (parameters, wall time, validation loss, error against the exact ε* on mixtures) and its
SWD at the main setting.  Groups of runs are told apart by their spec, never by their names, and only by the spec's
*structural* columns (:func:`spec_record`), so the same :func:`selections` applied to records built from the config
alone tell which tables have rows and which figures exist (``ttdm.report.studies.tensor_train.outputs``):

- *comparison*: DDPM runs of plain models and of each optimizer's base TT (no sweep, no tag), per dataset;
- *grid*: DDPM runs of TT variants swept over rank and degree (:data:`GRID_KEYS`), per dataset;
- *isolation*: runs fitted to ε* (method eps_star) and their DDPM counterparts;
- *variants*: tagged TT runs on the DDPM loss (optimizer hyper-parameters);
- *convergence*: base TT runs of datasets where several optimizers trained it.

Runs of other studies never enter them: the training-budget runs (tag :data:`BUDGET_TAG`), the sampler floor (its own
arch and method) and the runs that only switch the analytic head start (a ``prior`` sweep), which the targets
(:func:`ttdm.report.tt_targets.targets_frame`) compare like for like.

Every comparison between two means follows the report's spread rule (:func:`ttdm.report.claims.separated`: the gap
must exceed the combined standard error of the two means) through :func:`compare`; a mean of one seed has no spread,
and the comparison says so.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ttdm.report.tables import fmt_number

PathLike = str | os.PathLike
SETTING_KEYS = ("lr", "lam", "step_size", "line_search", "fit_batch", "n_fit")
SPEC_COLUMNS = ["dataset", "model", "seed", "arch", "base", "optimizer", "solver", "method", "rank", "degree",
                "layout", "prior", "tag", "swept", *SETTING_KEYS]
RUN_COLUMNS = ["dataset", "model", "seed", "arch", "base", "optimizer", "solver", "method", "rank", "degree",
               "layout", "prior", "tag", "swept", "dim", "n_params", "steps", *SETTING_KEYS, "wall_s", "val_loss",
               "eps_rel_error", "swd", "hq_percent", "nll", "swd_floor", "run_dir"]
TABLES = ("comparison", "grid", "isolation", "variants", "convergence")  # tt_{name}.csv, in writing order
MEASURED = ["n_params", "wall_s", "val_loss", "eps_rel_error", "swd", "hq_percent", "nll"]  # aggregated over seeds
NETWORKS = ("mlp", "resnet")  # the network archs the TT is compared with (the main, converged baselines)
GRID_KEYS = frozenset({"rank", "degree"})  # the sweeps of the rank x basis-size grid
PRIOR_KEYS = frozenset({"prior"})  # a sweep that only switches the analytic head start sigma_t x
BUDGET_TAG = "budget"  # runs of the training-budget study (ttdm.config.grid): never TT records
def spec_record(spec: dict[str, Any], priors: dict[str, str | None] | None = None) -> dict[str, Any]:
    """The structural columns (``SPEC_COLUMNS``) of a run, from its spec (``ttdm.config.run_spec``, spec.json);
    ``priors``: {arch: default prior} (``ttdm.config.arch_priors``), else looked up in the model registry."""
    variant = spec.get("variant") or {}
    cfg = spec.get("model_cfg", {})
    return {
        "dataset": spec["dataset"], "model": spec["model"], "seed": int(spec["seed"]), "arch": spec["arch"],
        "base": variant.get("base") or spec["model"],
        "optimizer": variant.get("optimizer") or spec["training"].get("optimizer", "adam"),
        "solver": spec["training"].get("optimizer", "adam"), "method": spec["method"],
        "rank": cfg.get("rank"), "degree": cfg.get("degree"), "layout": cfg.get("layout"),
        "prior": model_prior(spec["arch"], cfg, priors), "tag": variant.get("tag"),
        "swept": json.dumps(variant.get("sweep") or {}, sort_keys=True),
        **{k: spec["training"].get(k) for k in SETTING_KEYS},
    }


def model_prior(arch: str, model_cfg: dict[str, Any], priors: dict[str, str | None] | None = None) -> str | None:
    """The analytic head start a model uses (its ``prior`` option: "gaussian" adds σ_t x, "none" does not): the
    configured value, else the architecture's declared default (networks "none", the TT "gaussian"); None for an
    architecture without the option (the sampler floor)."""
    if "prior" in model_cfg:
        return str(model_cfg["prior"])
    if priors is not None and arch in priors:
        return priors[arch]
    from ttdm.config.specs import default_prior

    try:
        return default_prior(arch)
    except (ImportError, ValueError):
        return None


def swept_keys(swept: object) -> frozenset[str]:
    """The option names of a run's sweep (the ``swept`` column, JSON)."""
    if not isinstance(swept, str) or not swept:
        return frozenset()
    return frozenset(json.loads(swept))


def spec_frame(specs: Iterable[dict[str, Any]], priors: dict[str, str | None] | None = None) -> pd.DataFrame:
    """Records of runs known by their specs only (columns ``RUN_COLUMNS``, the measured ones empty)."""
    return pd.DataFrame([spec_record(s, priors) for s in specs], columns=RUN_COLUMNS)


def collect_runs(runs: Iterable[tuple[dict[str, Any], dict[str, Any], PathLike]], metrics: pd.DataFrame,
                 floors: pd.DataFrame, main: tuple[str, int], dims: dict[str, int] | None = None,
                 likelihood: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per run (columns ``RUN_COLUMNS``) from (spec, train.json record, run directory) triples; swd and
    hq_percent (the % high-quality samples, mixtures only) are the run's values at the ``main`` (sampler, steps)
    setting, nll its test NLL (nats/dim) from ``likelihood`` (long rows dataset, model, seed, metric, value of
    results/likelihood; NaN without one), dim the dataset's D from ``dims`` (None when absent)."""
    sampler, steps = main
    at_main = metrics[(metrics["sampler"] == sampler) & (metrics["steps"] == steps)]

    def by_run(df: pd.DataFrame, metric: str) -> dict[tuple[str, str, int], float]:
        df = df[df["metric"] == metric]
        return {(str(d), str(m), int(s)): float(v) for d, m, s, v in zip(df["dataset"], df["model"], df["seed"],
                                                                          df["value"])}

    swd, hq = by_run(at_main, "swd"), by_run(at_main, "hq_percent")
    nll = by_run(likelihood, "nll") if likelihood is not None and len(likelihood) else {}
    floor = {r.dataset: r.value for r in floors[floors["metric"] == "swd"].itertuples(index=False)}
    rows = []
    for spec, info, run in runs:
        rec = spec_record(spec)
        key = (rec["dataset"], rec["model"], rec["seed"])
        rows.append({**rec, "dim": (dims or {}).get(rec["dataset"]), "n_params": info.get("n_params") or 0,
                     "steps": info["steps"], "wall_s": info["wall_s"], "val_loss": info.get("val_loss"),
                     "eps_rel_error": info.get("eps_rel_error"), "swd": swd.get(key), "hq_percent": hq.get(key),
                     "nll": nll.get(key), "swd_floor": floor.get(rec["dataset"]), "run_dir": str(run)})
    df = pd.DataFrame(rows, columns=RUN_COLUMNS)
    return df.sort_values(["dataset", "model", "seed"], kind="stable").reset_index(drop=True)


def time_to_loss(loss_csv: PathLike, target: float) -> float | None:
    """The first logged wall time (s) at which the validation loss is ≤ ``target``; None if never."""
    log = pd.read_csv(loss_csv)
    hit = log[log["val_loss"] <= target]
    return float(hit["wall_s"].iloc[0]) if len(hit) else None


def _agg(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Mean and std over seeds of the run columns (:data:`MEASURED`; a column the records lack is NaN), per ``keys``,
    with the number of seeds."""
    df = df.assign(**{c: np.nan for c in MEASURED if c not in df.columns})
    df = df.astype({c: float for c in MEASURED})
    g = df.groupby(keys, sort=False, dropna=False)
    out = g[MEASURED].agg(["mean", "std"])
    out.columns = [f"{a}_{b}" for a, b in out.columns]
    out["n_seeds"] = g.size()
    out["swd_floor"] = g["swd_floor"].first()
    return out.reset_index()


def is_tt(df: pd.DataFrame) -> pd.Series:
    return df["arch"] == "tt"


def selections(runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The runs each TT table shows (``TABLES``), chosen by structural columns only (see the module docstring).

    Budget runs (tag :data:`BUDGET_TAG`) enter none; runs whose sweep changes other options than the grid's
    (:data:`GRID_KEYS`; e.g. ``prior``) enter neither the comparison nor the grid."""
    runs = runs[runs["tag"].astype(object).fillna("") != BUDGET_TAG]
    tt, ddpm, untagged, unswept = is_tt(runs), runs["method"] == "ddpm", runs["tag"].isna(), runs["swept"] == "{}"
    in_grid = runs["swept"].map(lambda s: swept_keys(s) <= GRID_KEYS).astype(bool)
    tt_sets = set(runs.loc[tt & ddpm, "dataset"])
    tt_plain = runs[tt & ddpm & untagged & in_grid]
    swept = set(tt_plain.loc[tt_plain["swept"] != "{}", "dataset"])
    base = runs[tt & ddpm & untagged & unswept]
    n_optimizers = base.groupby("dataset")["optimizer"].transform("nunique") if len(base) else base["seed"]
    return {
        "comparison": runs[ddpm & untagged & unswept & runs["dataset"].isin(tt_sets)
                           & runs["arch"].isin(["tt", *NETWORKS])],
        "grid": tt_plain[tt_plain["dataset"].isin(swept)],
        "isolation": runs[runs["method"] == "eps_star"],
        "variants": runs[tt & ddpm & runs["tag"].notna()],
        "convergence": base[n_optimizers >= 2],
    }


def layout(runs: pd.DataFrame) -> dict[str, Any]:
    """What the TT tables and figures hold for these runs: {"tables": the ``TABLES`` with rows, "convergence":
    datasets with a convergence figure, "rank": whether the rank figure exists, "isolation": the isolation figure}.

    Structural: the same for records built from the config (:func:`spec_frame`) as for the finished runs'.
    """
    sel = selections(runs)
    return {"tables": [name for name in TABLES if len(sel[name])],
            "convergence": sorted(set(sel["convergence"]["dataset"])),
            "rank": bool(len(sel["grid"])), "isolation": bool(len(sel["isolation"]))}


def comparison(runs: pd.DataFrame) -> pd.DataFrame:
    """Per dataset with TT runs: plain models and base TT optimizers trained on the DDPM loss (mean ± std over seeds,
    n_seeds; with the head start ``prior`` each uses)."""
    sel = selections(runs)["comparison"]
    return _agg(sel, ["dataset", "model", "arch", "optimizer"] + (["prior"] if "prior" in sel.columns else []))


def grid(runs: pd.DataFrame) -> pd.DataFrame:
    """TT DDPM runs of datasets with a rank/degree sweep, per dataset × optimizer × degree × rank."""
    out = _agg(selections(runs)["grid"], ["dataset", "optimizer", "degree", "rank"])
    return out.sort_values(["dataset", "optimizer", "degree", "rank"], kind="stable").reset_index(drop=True)


def isolation(runs: pd.DataFrame) -> pd.DataFrame:
    """ε*-fitted runs beside their DDPM counterparts: relative L2 error to ε* of both (mean over seeds)."""
    iso = selections(runs)["isolation"]
    rows = []
    for key, g in iso.groupby(["dataset", "base", "optimizer", "swept"], sort=False):
        ds, base, opt, swept = key
        twin = runs[(runs["dataset"] == ds) & (runs["base"] == base) & (runs["optimizer"] == opt)
                    & (runs["swept"] == swept) & (runs["method"] == "ddpm") & runs["tag"].isna()]
        first = g.iloc[0]
        rows.append({"dataset": ds, "model": first["model"], "arch": first["arch"], "optimizer": opt,
                     "rank": first["rank"], "n_params": int(first["n_params"] or 0), "wall_s": g["wall_s"].mean(),
                     "iso_error": g["eps_rel_error"].mean(), "iso_error_std": g["eps_rel_error"].std(),
                     "n_seeds": len(g),
                     "ddpm_error": twin["eps_rel_error"].mean() if len(twin) else np.nan,
                     "ddpm_error_std": twin["eps_rel_error"].std() if len(twin) else np.nan,
                     "ddpm_n_seeds": len(twin),
                     "ddpm_model": twin["model"].iloc[0] if len(twin) else ""})
    out = pd.DataFrame(rows, columns=["dataset", "model", "arch", "optimizer", "rank", "n_params", "wall_s",
                                      "iso_error", "iso_error_std", "n_seeds", "ddpm_error", "ddpm_error_std",
                                      "ddpm_n_seeds", "ddpm_model"])
    return out.sort_values(["dataset", "arch", "optimizer", "n_params"], kind="stable").reset_index(drop=True)


def settings_text(row: Any) -> str:
    """The optimizer settings that tell variants apart: 'lam 0.1', 'step 0.2 fixed, batch 2000', 'lr 0.001'."""
    if row["solver"] in ("adam", "sgd"):
        return f"lr {fmt_number(float(row['lr']))}"
    if row["solver"] == "als":
        return f"lam {fmt_number(float(row['lam']))}" if pd.notna(row["lam"]) else "lam 0.001"
    step = fmt_number(float(row["step_size"])) if pd.notna(row["step_size"]) else "1"
    line = bool(row["line_search"]) if pd.notna(row["line_search"]) else True
    batch = int(row["fit_batch"]) if pd.notna(row["fit_batch"]) else 0
    return f"step {step} {'Armijo' if line else 'fixed'}" + (f", batch {batch}" if batch else ", full batch")


def variants(runs: pd.DataFrame) -> pd.DataFrame:
    """Tagged TT runs on the DDPM loss (optimizer hyper-parameter variants) beside the untagged run of the same
    solver, dataset and seed: validation loss, time and SWD of both."""
    rows = []
    tagged = selections(runs)["variants"]
    plain = runs[is_tt(runs) & (runs["method"] == "ddpm") & runs["tag"].isna() & (runs["swept"] == "{}")]
    for r in tagged.to_dict("records"):
        twin = plain[(plain["dataset"] == r["dataset"]) & (plain["solver"] == r["solver"]) & (plain["seed"] == r["seed"])
                     & (plain["base"] == r["base"])]
        t = twin.iloc[0] if len(twin) else None
        rows.append({"dataset": r["dataset"], "model": r["model"], "seed": r["seed"], "solver": r["solver"],
                     "settings": settings_text(r), "val_loss": r["val_loss"], "wall_s": r["wall_s"], "swd": r["swd"],
                     "base_model": t["model"] if t is not None else "",
                     "base_settings": settings_text(t) if t is not None else "",
                     "base_val_loss": t["val_loss"] if t is not None else np.nan,
                     "base_wall_s": t["wall_s"] if t is not None else np.nan,
                     "base_swd": t["swd"] if t is not None else np.nan})
    return pd.DataFrame(rows, columns=["dataset", "model", "seed", "solver", "settings", "val_loss", "wall_s", "swd",
                                       "base_model", "base_settings", "base_val_loss", "base_wall_s", "base_swd"])


CONVERGENCE_COLUMNS = ["dataset", "optimizer", "solver", "target", "best_val_loss", "best_val_loss_std",
                       "time_to_target", "time_to_target_std", "n_seeds", "wall_s", "steps"]


def convergence(runs: pd.DataFrame, comp: pd.DataFrame) -> pd.DataFrame:
    """Per dataset with several base TT optimizers: each one's time (s) to reach the common loss target.

    The target is the highest best validation loss of any run, so that every run of every optimizer reaches it;
    time_to_target is the mean over seeds of the first logged wall time at or below it (``_std``: the sample
    standard deviation over the ``n_seeds`` seeds; NaN for one seed).
    """
    rows = []
    for ds, g in selections(runs)["convergence"].groupby("dataset", sort=False):
        mins = {opt: [float(pd.read_csv(Path(d) / "loss.csv")["val_loss"].min()) for d in h["run_dir"]]
                for opt, h in g.groupby("optimizer", sort=False)}
        target = max(max(m) for m in mins.values())  # every run of every optimizer reaches it
        for opt, h in g.groupby("optimizer", sort=False):
            times = [time_to_loss(Path(d) / "loss.csv", target) for d in h["run_dir"]]
            ok = [t for t in times if t is not None]
            full = len(ok) == len(times)
            rows.append({"dataset": ds, "optimizer": opt, "solver": h["solver"].iloc[0], "target": target,
                         "best_val_loss": float(np.mean(mins[opt])),
                         "best_val_loss_std": float(np.std(mins[opt], ddof=1)) if len(mins[opt]) > 1 else np.nan,
                         "time_to_target": float(np.mean(ok)) if full else np.nan,
                         "time_to_target_std": float(np.std(ok, ddof=1)) if full and len(ok) > 1 else np.nan,
                         "n_seeds": len(times), "wall_s": h["wall_s"].mean(), "steps": int(h["steps"].iloc[0])})
    return pd.DataFrame(rows, columns=CONVERGENCE_COLUMNS)
