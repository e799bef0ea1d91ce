"""Tensor-train experiments (seed 000): per-run records, the groups of runs each table and figure shows, the
aggregated frames of the TT tables and the issue's computed targets.

A run's record joins its spec (architecture, rank, degree, optimizer, method and the ``variant`` the grid expansion
recorded), its train.json (parameters, wall time, validation loss, error against the exact ε* on mixtures) and its
SWD at the main setting.  Groups of runs are told apart by their spec, never by their names, and only by the spec's
*structural* columns (:func:`spec_record`), so the same :func:`selections` applied to records built from the config
alone tell which tables have rows and which figures exist (``ttdm.report.studies.tensor_train.outputs``):

- *comparison*: DDPM runs of plain models and of each optimizer's base TT (no sweep, no tag), per dataset;
- *grid*: DDPM runs of TT variants swept over rank and degree, per dataset;
- *isolation*: runs fitted to ε* (method eps_star) and their DDPM counterparts;
- *variants*: tagged TT runs on the DDPM loss (optimizer hyper-parameters);
- *convergence*: base TT runs of datasets where several optimizers trained it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ttdm.report.tables import fmt_number, tex_escape

PathLike = str | os.PathLike
SETTING_KEYS = ("lr", "lam", "step_size", "line_search", "fit_batch", "n_fit")
SPEC_COLUMNS = ["dataset", "model", "seed", "arch", "base", "optimizer", "solver", "method", "rank", "degree",
                "layout", "tag", "swept", *SETTING_KEYS]
RUN_COLUMNS = ["dataset", "model", "seed", "arch", "base", "optimizer", "solver", "method", "rank", "degree",
               "layout", "tag", "swept", "dim", "n_params", "steps", *SETTING_KEYS, "wall_s", "val_loss",
               "eps_rel_error", "swd", "swd_floor", "run_dir"]
TABLES = ("comparison", "grid", "isolation", "variants", "convergence")  # tt_{name}.csv, in writing order


def spec_record(spec: dict[str, Any]) -> dict[str, Any]:
    """The structural columns (``SPEC_COLUMNS``) of a run, from its spec (``ttdm.config.run_spec``, spec.json)."""
    variant = spec.get("variant") or {}
    cfg = spec.get("model_cfg", {})
    return {
        "dataset": spec["dataset"], "model": spec["model"], "seed": int(spec["seed"]), "arch": spec["arch"],
        "base": variant.get("base") or spec["model"],
        "optimizer": variant.get("optimizer") or spec["training"].get("optimizer", "adam"),
        "solver": spec["training"].get("optimizer", "adam"), "method": spec["method"],
        "rank": cfg.get("rank"), "degree": cfg.get("degree"), "layout": cfg.get("layout"),
        "tag": variant.get("tag"), "swept": json.dumps(variant.get("sweep") or {}, sort_keys=True),
        **{k: spec["training"].get(k) for k in SETTING_KEYS},
    }


def spec_frame(specs: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Records of runs known by their specs only (columns ``RUN_COLUMNS``, the measured ones empty)."""
    return pd.DataFrame([spec_record(s) for s in specs], columns=RUN_COLUMNS)


def collect_runs(runs: Iterable[tuple[dict[str, Any], dict[str, Any], PathLike]], metrics: pd.DataFrame,
                 floors: pd.DataFrame, main: tuple[str, int], dims: dict[str, int] | None = None) -> pd.DataFrame:
    """One row per run (columns ``RUN_COLUMNS``) from (spec, train.json record, run directory) triples; swd is the
    run's SWD at the ``main`` (sampler, steps) setting, dim the dataset's D from ``dims`` (None when absent)."""
    sampler, steps = main
    swd = metrics[(metrics["metric"] == "swd") & (metrics["sampler"] == sampler) & (metrics["steps"] == steps)]
    swd = {(r.dataset, r.model, int(r.seed)): r.value for r in swd.itertuples(index=False)}
    floor = {r.dataset: r.value for r in floors[floors["metric"] == "swd"].itertuples(index=False)}
    rows = []
    for spec, info, run in runs:
        rec = spec_record(spec)
        key = (rec["dataset"], rec["model"], rec["seed"])
        rows.append({**rec, "dim": (dims or {}).get(rec["dataset"]), "n_params": info["n_params"],
                     "steps": info["steps"], "wall_s": info["wall_s"], "val_loss": info.get("val_loss"),
                     "eps_rel_error": info.get("eps_rel_error"), "swd": swd.get(key),
                     "swd_floor": floor.get(rec["dataset"]), "run_dir": str(run)})
    df = pd.DataFrame(rows, columns=RUN_COLUMNS)
    return df.sort_values(["dataset", "model", "seed"], kind="stable").reset_index(drop=True)


def time_to_loss(loss_csv: PathLike, target: float) -> float | None:
    """The first logged wall time (s) at which the validation loss is ≤ ``target``; None if never."""
    log = pd.read_csv(loss_csv)
    hit = log[log["val_loss"] <= target]
    return float(hit["wall_s"].iloc[0]) if len(hit) else None


def _agg(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Mean and std over seeds of the run columns, per ``keys``."""
    num = ["n_params", "wall_s", "val_loss", "eps_rel_error", "swd"]
    g = df.groupby(keys, sort=False, dropna=False)
    out = g[num].agg(["mean", "std"])
    out.columns = [f"{a}_{b}" for a, b in out.columns]
    out["n_seeds"] = g.size()
    out["swd_floor"] = g["swd_floor"].first()
    return out.reset_index()


def is_tt(df: pd.DataFrame) -> pd.Series:
    return df["arch"] == "tt"


def selections(runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The runs each TT table shows (``TABLES``), chosen by structural columns only (see the module docstring)."""
    tt, ddpm, untagged, unswept = is_tt(runs), runs["method"] == "ddpm", runs["tag"].isna(), runs["swept"] == "{}"
    tt_sets = set(runs.loc[tt & ddpm, "dataset"])
    tt_plain = runs[tt & ddpm & untagged]
    swept = set(tt_plain.loc[tt_plain["swept"] != "{}", "dataset"])
    base = runs[tt & ddpm & untagged & unswept]
    n_optimizers = base.groupby("dataset")["optimizer"].transform("nunique") if len(base) else base["seed"]
    return {
        "comparison": runs[ddpm & untagged & unswept & runs["dataset"].isin(tt_sets)
                           & runs["arch"].isin(["tt", "mlp", "resnet"])],
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
    """Per dataset with TT runs: plain models and base TT optimizers trained on the DDPM loss (mean ± std)."""
    return _agg(selections(runs)["comparison"], ["dataset", "model", "arch", "optimizer"])


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
                     "rank": first["rank"], "n_params": int(first["n_params"]), "wall_s": g["wall_s"].mean(),
                     "iso_error": g["eps_rel_error"].mean(),
                     "ddpm_error": twin["eps_rel_error"].mean() if len(twin) else np.nan,
                     "ddpm_model": twin["model"].iloc[0] if len(twin) else ""})
    out = pd.DataFrame(rows, columns=["dataset", "model", "arch", "optimizer", "rank", "n_params", "wall_s",
                                      "iso_error", "ddpm_error", "ddpm_model"])
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


def convergence(runs: pd.DataFrame, comp: pd.DataFrame) -> pd.DataFrame:
    """Per dataset with several base TT optimizers: each one's time (s) to reach the common loss target.

    The target is the highest best validation loss of any run, so that every run of every optimizer reaches it;
    time_to_target is the mean over seeds of the first logged wall time at or below it.
    """
    rows = []
    for ds, g in selections(runs)["convergence"].groupby("dataset", sort=False):
        best, worst = {}, {}
        for opt, h in g.groupby("optimizer", sort=False):
            mins = [pd.read_csv(Path(d) / "loss.csv")["val_loss"].min() for d in h["run_dir"]]
            best[opt], worst[opt] = float(np.mean(mins)), float(np.max(mins))
        target = max(worst.values())  # every run of every optimizer reaches it
        for opt, h in g.groupby("optimizer", sort=False):
            times = [time_to_loss(Path(d) / "loss.csv", target) for d in h["run_dir"]]
            ok = [t for t in times if t is not None]
            rows.append({"dataset": ds, "optimizer": opt, "solver": h["solver"].iloc[0], "target": target,
                         "best_val_loss": best[opt], "time_to_target": float(np.mean(ok)) if len(ok) == len(times) else np.nan,
                         "wall_s": h["wall_s"].mean(), "steps": int(h["steps"].iloc[0])})
    return pd.DataFrame(rows, columns=["dataset", "optimizer", "solver", "target", "best_val_loss", "time_to_target",
                                       "wall_s", "steps"])


def describe_targets(runs: pd.DataFrame, conv: pd.DataFrame) -> list[dict[str, Any]]:
    """The issue's targets, each {"name", "met" (bool or None when not measurable), "text" (LaTeX sentence)}.

    1. On each 2-D mixture: TT-ALS sample SWD ≤ 1.5 × the MLP's, with ≤ 1/10 of its parameters and ≤ 1/5 of its
       training wall time (means over seeds).
    2. Riemannian GD reaches the ALS run's final validation loss within 2 × the ALS wall time.
    """
    out = []
    base = runs[(runs["method"] == "ddpm") & runs["tag"].isna() & (runs["swept"] == "{}")]
    mixtures = sorted(set(base.loc[(base["dim"] == 2) & base["eps_rel_error"].notna(), "dataset"]))
    for ds in mixtures:
        als = base[(base["dataset"] == ds) & (base["arch"] == "tt") & (base["optimizer"] == "als")]
        mlp = base[(base["dataset"] == ds) & (base["arch"] == "mlp")]
        if not len(als) or not len(mlp):
            continue
        swd_r = als["swd"].mean() / mlp["swd"].mean()
        par_r = als["n_params"].mean() / mlp["n_params"].mean()
        time_r = als["wall_s"].mean() / mlp["wall_s"].mean()
        checks = [swd_r <= 1.5, par_r <= 0.1, time_r <= 0.2]
        met = all(checks)
        text = (f"On {tex_escape(ds)} the ALS-trained TT has ${fmt_number(swd_r)}\\times$ the MLP's SWD "
                f"(target $\\le 1.5$), ${fmt_number(par_r)}\\times$ its parameters (target $\\le 0.1$) and "
                f"${fmt_number(time_r)}\\times$ its training time (target $\\le 0.2$): "
                + ("met." if met else "not met (" + ", ".join(
                    n for n, ok in zip(["SWD", "parameters", "time"], checks) if not ok) + ")."))
        out.append({"name": f"als_vs_mlp_{ds}", "met": met, "text": text})
    tt_base = base[base["arch"] == "tt"]
    for ds in sorted(set(tt_base["dataset"])):
        als = tt_base[(tt_base["dataset"] == ds) & (tt_base["optimizer"] == "als")]
        rgd = tt_base[(tt_base["dataset"] == ds) & (tt_base["optimizer"] == "rgd")]
        if not len(als) or not len(rgd):
            continue
        ratios = []
        for seed in sorted(set(als["seed"]) & set(rgd["seed"])):
            a = als[als["seed"] == seed].iloc[0]
            r = rgd[rgd["seed"] == seed].iloc[0]
            t = time_to_loss(Path(r["run_dir"]) / "loss.csv", float(a["val_loss"]))
            ratios.append(t / a["wall_s"] if t is not None else np.inf)
        if not ratios:
            continue
        worst = max(ratios)
        met = bool(np.isfinite(worst) and worst <= 2.0)
        if np.isfinite(worst):
            text = (f"On {tex_escape(ds)} Riemannian GD reaches the final ALS validation loss in "
                    f"${fmt_number(worst)}\\times$ the ALS training time (worst seed; target $\\le 2$): "
                    f"{'met' if met else 'not met'}.")
        else:
            text = (f"On {tex_escape(ds)} Riemannian GD does not reach the final ALS validation loss within its "
                    "iteration budget (target: within $2\\times$ the ALS training time): not met.")
        out.append({"name": f"rgd_vs_als_{ds}", "met": met, "text": text})
    return out


def targets_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """:func:`describe_targets` as a table (name, met, text): tt_targets.csv, which the paper prints."""
    return pd.DataFrame(describe_targets(runs, pd.DataFrame()), columns=["name", "met", "text"])
