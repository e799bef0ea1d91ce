"""Per-run results: the training cost of every run, the appendix's per-run tables, the test likelihoods
(results/likelihood) joined to the metrics, and the divergence of each run and sampler setting (non-finite samples,
or an SWD above ``EXPLODING`` times the data floor)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from ttdm.io import load_json
from ttdm.report.files import run_key
from ttdm.report.tables import (EXPLODING, FLOOR_COLUMNS, METRIC_COLUMNS, METRIC_LABELS, RUN_METRICS, RUN_ROWS, SIG,
                                _model_order, booktabs, fmt_number, fmt_spread, main_setting, pm_cell, tex_escape)

PathLike = str | os.PathLike


def run_tables(metrics: pd.DataFrame, floors: pd.DataFrame, *, main: str | None = None,
               sampler_floor: str | None = None, diverged: Iterable[tuple[str, str, int]] = (),
               models: Iterable[str] | None = None, datasets: Iterable[str] | None = None,
               max_rows: int = RUN_ROWS, sig: int = SIG) -> list[tuple[pd.DataFrame, str]]:
    """Per-run tables for the appendix: one row per run (dataset × model × seed) at the main setting with the
    metrics of ``RUN_METRICS`` present (test NLL from rows of metric "nll", :func:`add_likelihood_runs`; SWD;
    precision, recall, density and coverage; the sample log-density; the % of non-finite samples) and whether the
    run diverged at any setting (``diverged``: (dataset, model, seed), :func:`divergence`); then a "data floor" row
    per dataset with the same metrics of held-out true samples (``floors``: dataset, metric, value; the NLL's floor
    is the true NLL). ``models`` (default all) orders and restricts the models; the sampler floor's runs come last.
    Split into tables of at most ``max_rows`` rows at dataset boundaries; returns [(display frame, LaTeX)]."""
    from ttdm.report.claims import DATA_FLOOR_LABEL, SAMPLER_FLOOR_LABEL

    sampler, steps = main_setting(metrics.rename(columns={"value": "mean"}), main)
    sub = metrics[(metrics["sampler"] == sampler) & (metrics["steps"] == steps)]
    keep = list(models) if models is not None else list(dict.fromkeys(sub["model"]))
    if sampler_floor and sampler_floor in set(sub["model"]) and sampler_floor not in keep:
        keep.append(sampler_floor)
    sub = sub[sub["model"].isin(keep)]
    values = sub.groupby(["dataset", "model", "seed", "metric"])["value"].first()
    floor = floors.groupby(["dataset", "metric"])["value"].first() if len(floors) else pd.Series(dtype=float)
    columns = [m for m in RUN_METRICS if m in set(sub["metric"]) and sub.loc[sub["metric"] == m, "value"].notna().any()]
    bad = set(map(tuple, diverged))
    order = list(datasets) if datasets is not None else []
    names = sorted(set(sub["dataset"]), key=lambda d: (order.index(d) if d in order else len(order), d))
    blocks = []
    for ds in names:
        here = sub[sub["dataset"] == ds]
        block = []
        for model in _model_order([m for m in keep if m in set(here["model"])], sampler_floor):
            for seed in sorted(set(here.loc[here["model"] == model, "seed"])):
                block.append(("run", model, int(seed)))
        if any((ds, m) in floor.index for m in columns if m != "nonfinite_fraction"):
            block.append(("floor", None, None))
        blocks.append((ds, block))
    header = ["Dataset", "Model", "Seed"] + [METRIC_LABELS[m] for m in columns] + ["Diverged"]
    chunks: list[list[tuple[str, list]]] = [[]]
    for ds, block in blocks:
        if chunks[-1] and sum(len(b) for _, b in chunks[-1]) + len(block) > max_rows:
            chunks.append([])
        chunks[-1].append((ds, block))
    out = []
    for chunk in chunks:
        records, rows, groups = [], [], []
        for ds, block in chunk:
            groups.append(len(records))
            for kind, model, seed in block:
                if kind == "floor":
                    name, label = DATA_FLOOR_LABEL, f"\\emph{{{DATA_FLOOR_LABEL}}}"
                elif model == sampler_floor:
                    name, label = SAMPLER_FLOOR_LABEL, f"\\emph{{{SAMPLER_FLOOR_LABEL}}}"
                else:
                    name, label = model, tex_escape(model)
                rec = {"dataset": ds, "model": name, "row": "data floor" if kind == "floor" else
                       "sampler floor" if model == sampler_floor else "model",
                       "seed": "" if seed is None else str(seed)}
                row = [tex_escape(ds), label, f"${seed}$" if seed is not None else "--"]
                for m in columns:
                    if kind == "floor":
                        v = floor.get((ds, m)) if m != "nonfinite_fraction" else None
                    else:
                        v = values.get((ds, model, seed, m))
                    v = 100.0 * v if m == "nonfinite_fraction" and v is not None else v
                    rec[m] = fmt_number(v, sig=sig)
                    row.append(pm_cell(rec[m]))
                rec["diverged"] = "" if kind == "floor" else "yes" if (ds, model, seed) in bad else "no"
                row.append(rec["diverged"] or "--")
                records.append(rec)
                rows.append(row)
        if records:
            out.append((pd.DataFrame(records, dtype=str),
                        booktabs(header, rows, align="llr" + "c" * (len(header) - 3), groups=groups)))
    return out


def collect_likelihood(files: Iterable[PathLike]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The test likelihoods: (runs, floors) from results/likelihood/{dataset}/{model}/{seed}.csv (columns dataset,
    model, seed, metric, value: nll in nats/dim, its standard error over test points, ...) and
    results/likelihood/{dataset}/floor.csv (dataset, metric, value: the true NLL of mixtures; no rows otherwise)."""
    runs, floors = [], []
    for f in map(Path, files):
        try:
            df = pd.read_csv(f)
        except pd.errors.EmptyDataError:
            continue
        (floors if f.name == "floor.csv" else runs).append(df)
    run_cols, floor_cols = ["dataset", "model", "seed", "metric", "value"], FLOOR_COLUMNS
    runs_df = (pd.concat(runs, ignore_index=True)[run_cols] if runs else
               pd.DataFrame({c: pd.Series(dtype=object) for c in run_cols}))
    floors_df = (pd.concat(floors, ignore_index=True)[floor_cols] if floors else
                 pd.DataFrame({c: pd.Series(dtype=object) for c in floor_cols}))
    runs_df = runs_df.astype({"dataset": str, "model": str, "seed": int, "metric": str, "value": float})
    floors_df = floors_df.astype({"dataset": str, "metric": str, "value": float})
    return runs_df, floors_df


def likelihood_summary(runs: pd.DataFrame, floors: pd.DataFrame) -> pd.DataFrame:
    """Test NLL per dataset × model: mean, sample std (ddof = 1) and number of seeds, with the dataset's true NLL
    as ``floor`` (NaN where unknown). Columns dataset, model, metric ("nll"), mean, std, n_seeds, floor, ratio
    (NaN: a log-likelihood has no ratio)."""
    nll = runs[runs["metric"] == "nll"]
    out = nll.groupby(["dataset", "model"], sort=True)["value"].agg(mean="mean", std="std",
                                                                     n_seeds="count").reset_index()
    out.insert(2, "metric", "nll")
    true = floors[floors["metric"] == "nll"].groupby("dataset")["value"].first()
    out["floor"] = out["dataset"].map(true).astype(float)
    out["ratio"] = np.nan
    return out


def add_likelihood(summary: pd.DataFrame, likelihood: pd.DataFrame, sampler: str, steps: int) -> pd.DataFrame:
    """``summary`` with the rows of :func:`likelihood_summary` attached to the setting (sampler, steps) as metric
    "nll", so that the main table and the claims at that setting read the NLL like any metric (the NLL itself does
    not depend on the sampler)."""
    if not len(likelihood):
        return summary
    nfe = summary.loc[(summary["sampler"] == sampler) & (summary["steps"] == steps), "nfe"]
    rows = likelihood.assign(sampler=sampler, steps=steps, nfe=int(nfe.iloc[0]) if len(nfe) else steps)
    return pd.concat([summary, rows[summary.columns]], ignore_index=True)


def add_likelihood_runs(metrics: pd.DataFrame, runs: pd.DataFrame, sampler: str, steps: int) -> pd.DataFrame:
    """Long metrics (``METRIC_COLUMNS``) with each run's test NLL attached to (sampler, steps) as metric "nll"."""
    nll = runs[runs["metric"] == "nll"]
    if not len(nll):
        return metrics
    nfe = metrics.loc[(metrics["sampler"] == sampler) & (metrics["steps"] == steps), "nfe"]
    rows = nll.assign(sampler=sampler, steps=steps, nfe=int(nfe.iloc[0]) if len(nfe) else steps)
    return pd.concat([metrics, rows[METRIC_COLUMNS]], ignore_index=True)


def divergence(metrics: pd.DataFrame, floors: pd.DataFrame, *, factor: float = EXPLODING) -> pd.DataFrame:
    """One row per run and sampler setting: ``nonfinite_fraction`` (share of samples with a NaN or ±inf entry),
    ``swd`` and its ratio to the data floor's SWD, and the flags ``nonfinite`` (any non-finite sample),
    ``exploding`` (SWD above ``factor`` times the floor's) and ``diverged`` (either). metrics: long format
    (``METRIC_COLUMNS``); floors: dataset, metric, value."""
    keys = ["dataset", "model", "seed", "sampler", "steps", "nfe"]
    out = metrics[keys].drop_duplicates().reset_index(drop=True)
    for m in ("nonfinite_fraction", "swd"):
        part = metrics.loc[metrics["metric"] == m, keys + ["value"]].drop_duplicates(keys)
        out = out.merge(part.rename(columns={"value": m}), on=keys, how="left")
    floor = floors.loc[floors["metric"] == "swd", ["dataset", "value"]].drop_duplicates("dataset")
    out = out.merge(floor.rename(columns={"value": "swd_floor"}), on="dataset", how="left")
    ok = (out["swd_floor"] > 0) & out["swd"].notna()
    out["swd_ratio"] = np.where(ok, out["swd"] / out["swd_floor"].where(ok, 1.0), np.nan)
    out["nonfinite"] = out["nonfinite_fraction"].fillna(0.0) > 0
    out["exploding"] = out["swd_ratio"].fillna(0.0) > factor
    out["diverged"] = out["nonfinite"] | out["exploding"]
    return out.sort_values(keys, kind="stable").reset_index(drop=True)


def diverged_runs(div: pd.DataFrame) -> set[tuple[str, str, int]]:
    """(dataset, model, seed) of every run that :func:`divergence` flags at some setting."""
    bad = div[div["diverged"].astype(bool)]
    return {(str(d), str(m), int(s)) for d, m, s in zip(bad["dataset"], bad["model"], bad["seed"])}


def training_table(train_files: Iterable[PathLike]) -> pd.DataFrame:
    """Training cost per dataset × model from runs/{dataset}/{model}/{seed}/train.json files: parameters, steps,
    and mean and sample std over seeds of steps/s, wall time (s) and final loss."""
    records = []
    for f in map(Path, train_files):
        dataset, model, seed = run_key(f)
        info = load_json(f)
        records.append({"dataset": dataset, "model": model, "seed": str(seed),
                        **{k: info[k] for k in ("n_params", "steps", "steps_per_s", "wall_s", "final_loss")}})
    cols = ["dataset", "model", "n_params", "steps", "n_seeds"] + [
        f"{k}_{s}" for k in ("steps_per_s", "wall_s", "final_loss") for s in ("mean", "std")]
    if not records:
        return pd.DataFrame(columns=cols)
    runs = pd.DataFrame(records)
    g = runs.groupby(["dataset", "model"], sort=True)
    out = g.agg(n_params=("n_params", "max"), steps=("steps", "max"), n_seeds=("seed", "count"),
                steps_per_s_mean=("steps_per_s", "mean"), steps_per_s_std=("steps_per_s", "std"),
                wall_s_mean=("wall_s", "mean"), wall_s_std=("wall_s", "std"),
                final_loss_mean=("final_loss", "mean"), final_loss_std=("final_loss", "std")).reset_index()
    return out[cols]


def training_latex(training: pd.DataFrame, *, sig: int = SIG) -> tuple[pd.DataFrame, str]:
    """Display strings and booktabs LaTeX of :func:`training_table`."""
    records, rows, groups = [], [], []
    for i, r in enumerate(training.itertuples(index=False)):
        if i == 0 or r.dataset != records[-1]["dataset"]:
            groups.append(i)
        rec = {"dataset": r.dataset, "model": r.model, "n_params": str(int(r.n_params)), "steps": str(int(r.steps))}
        for k in ("steps_per_s", "wall_s", "final_loss"):
            rec[f"{k}_mean"] = fmt_number(getattr(r, f"{k}_mean"), sig=sig)
            rec[f"{k}_std"] = fmt_spread(getattr(r, f"{k}_std"), getattr(r, f"{k}_mean"), sig=sig)
        records.append(rec)
        rows.append([tex_escape(r.dataset), tex_escape(r.model), f"${rec['n_params']}$", f"${rec['steps']}$"]
                    + [pm_cell(rec[f"{k}_mean"], rec[f"{k}_std"]) for k in ("steps_per_s", "wall_s", "final_loss")])
    header = ["Dataset", "Model", "Parameters", "Steps", "Steps/s", "Wall time (s)", "Final loss"]
    return pd.DataFrame(records, dtype=str), booktabs(header, rows, align="llrrccc", groups=groups)
