"""Tensor-train experiments (seed 000): per-run records, comparison tables and computed claims.

Everything is read from result files: each run's spec.json (architecture, rank, degree, optimizer, method and the
``variant`` the grid expansion recorded), train.json (parameters, wall time, validation loss, error against the exact
ε* on mixtures), loss.csv (for times to a loss target), the metrics table and the data floors.  Groups of runs are
told apart by their spec, not by their names:

- *comparison*: DDPM runs of plain models and of each optimizer's base TT (no sweep, no tag), per dataset;
- *grid*: DDPM runs of TT variants swept over rank and degree, per dataset;
- *isolation*: runs fitted to ε* (method eps_star) and their DDPM counterparts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ttdm.io import atomic_write, load_json
from ttdm.report.tables import SIG, booktabs, fmt_number, pm_cell, tex_escape

PathLike = str | os.PathLike
SETTING_KEYS = ("lr", "lam", "step_size", "line_search", "fit_batch", "n_fit")
RUN_COLUMNS = ["dataset", "model", "seed", "arch", "base", "optimizer", "solver", "method", "rank", "degree",
               "layout", "tag", "swept", "dim", "n_params", "steps", *SETTING_KEYS, "wall_s", "val_loss",
               "eps_rel_error", "swd", "swd_floor", "run_dir"]
SOLVER_LABELS = {"als": "ALS", "rgd": "Riemannian GD", "adam": "Adam", "sgd": "SGD"}


# --------------------------------------------------------------------------------------------------------------------
# Records


def collect_runs(run_dirs: Iterable[PathLike], metrics: pd.DataFrame, floors: pd.DataFrame, main: tuple[str, int],
                 data_root: PathLike | None = None) -> pd.DataFrame:
    """One row per run (columns ``RUN_COLUMNS``); swd is the run's SWD at the ``main`` (sampler, steps) setting."""
    sampler, steps = main
    swd = metrics[(metrics["metric"] == "swd") & (metrics["sampler"] == sampler) & (metrics["steps"] == steps)]
    swd = {(r.dataset, r.model, int(r.seed)): r.value for r in swd.itertuples(index=False)}
    floor = {r.dataset: r.value for r in floors[floors["metric"] == "swd"].itertuples(index=False)}
    rows = []
    for run in map(Path, run_dirs):
        spec, info = load_json(run / "spec.json"), load_json(run / "train.json")
        variant = spec.get("variant") or {}
        cfg = spec.get("model_cfg", {})
        dim = None
        if data_root is not None and (Path(data_root) / spec["dataset"] / "meta.json").is_file():
            dim = load_json(Path(data_root) / spec["dataset"] / "meta.json")["dim"]
        rows.append({
            "dataset": spec["dataset"], "model": spec["model"], "seed": int(spec["seed"]), "arch": spec["arch"],
            "base": variant.get("base") or spec["model"],
            "optimizer": variant.get("optimizer") or spec["training"].get("optimizer", "adam"),
            "solver": spec["training"].get("optimizer", "adam"), "method": spec["method"],
            "rank": cfg.get("rank"), "degree": cfg.get("degree"), "layout": cfg.get("layout"),
            "tag": variant.get("tag"), "swept": json.dumps(variant.get("sweep") or {}, sort_keys=True),
            "dim": dim, "n_params": info["n_params"], "steps": info["steps"],
            **{k: spec["training"].get(k) for k in SETTING_KEYS}, "wall_s": info["wall_s"],
            "val_loss": info.get("val_loss"), "eps_rel_error": info.get("eps_rel_error"),
            "swd": swd.get((spec["dataset"], spec["model"], int(spec["seed"]))), "swd_floor": floor.get(spec["dataset"]),
            "run_dir": str(run),
        })
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


def comparison(runs: pd.DataFrame) -> pd.DataFrame:
    """Per dataset with TT runs: plain models and base TT optimizers trained on the DDPM loss (mean ± std)."""
    tt_sets = set(runs.loc[is_tt(runs) & (runs["method"] == "ddpm"), "dataset"])
    base = (runs["method"] == "ddpm") & runs["tag"].isna() & (runs["swept"] == "{}") & runs["dataset"].isin(tt_sets)
    base &= runs["arch"].isin(["tt", "mlp", "resnet"])
    return _agg(runs[base], ["dataset", "model", "arch", "optimizer"])


def grid(runs: pd.DataFrame) -> pd.DataFrame:
    """TT DDPM runs of datasets with a rank/degree sweep, per dataset × optimizer × degree × rank."""
    tt = runs[is_tt(runs) & (runs["method"] == "ddpm") & runs["tag"].isna()]
    swept = set(tt.loc[tt["swept"] != "{}", "dataset"])
    tt = tt[tt["dataset"].isin(swept)]
    out = _agg(tt, ["dataset", "optimizer", "degree", "rank"])
    return out.sort_values(["dataset", "optimizer", "degree", "rank"], kind="stable").reset_index(drop=True)


def isolation(runs: pd.DataFrame) -> pd.DataFrame:
    """ε*-fitted runs beside their DDPM counterparts: relative L2 error to ε* of both (mean over seeds)."""
    iso = runs[runs["method"] == "eps_star"]
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
    tagged = runs[is_tt(runs) & (runs["method"] == "ddpm") & runs["tag"].notna()]
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


def variants_latex(v: pd.DataFrame, sig: int = SIG) -> tuple[pd.DataFrame, str]:
    records, rows = [], []
    for r in v.itertuples(index=False):
        for model, settings, loss, wall, swd in ((r.base_model, r.base_settings, r.base_val_loss, r.base_wall_s,
                                                  r.base_swd), (r.model, r.settings, r.val_loss, r.wall_s, r.swd)):
            if not model:
                continue
            rec = {"dataset": r.dataset, "model": model, "settings": settings, "val_loss": fmt_number(loss, sig=4),
                   "wall_s": fmt_number(wall, sig=sig), "swd": fmt_number(swd, sig=sig)}
            records.append(rec)
            rows.append([tex_escape(r.dataset), tex_escape(model), tex_escape(settings)]
                        + [f"${rec[k]}$" if rec[k] else "--" for k in ("val_loss", "wall_s", "swd")])
    header = ["Dataset", "Model", "Settings", "Val. loss", "Training (s)", "SWD"]
    groups = list(range(0, len(rows), 2))
    return pd.DataFrame(records, dtype=str), booktabs(header, rows, align="lllrrr", groups=groups)


def variant_claims(v: pd.DataFrame) -> list[str]:
    out = []
    for r in v.itertuples(index=False):
        if not r.base_model:
            continue
        verdict = "lower" if r.val_loss < r.base_val_loss else "higher"
        out.append(f"On {tex_escape(r.dataset)}, {tex_escape(r.solver)} with {tex_escape(r.settings)} reaches a "
                   f"{verdict} validation loss than with {tex_escape(r.base_settings)} "
                   f"(${fmt_number(r.val_loss, sig=4)}$ against ${fmt_number(r.base_val_loss, sig=4)}$, in "
                   f"${fmt_number(r.wall_s)}$~s against ${fmt_number(r.base_wall_s)}$~s).")
    return out


def convergence(runs: pd.DataFrame, comp: pd.DataFrame) -> pd.DataFrame:
    """Per dataset with several base TT optimizers: each one's time (s) to reach the common loss target.

    The target is the highest best validation loss of any run, so that every run of every optimizer reaches it; time_to_target is the mean over seeds of the first logged wall time at or below it.
    """
    rows = []
    base = runs[is_tt(runs) & (runs["method"] == "ddpm") & runs["tag"].isna() & (runs["swept"] == "{}")]
    for ds, g in base.groupby("dataset", sort=False):
        if g["optimizer"].nunique() < 2:
            continue
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


# --------------------------------------------------------------------------------------------------------------------
# LaTeX


def _pm(mean: float, std: float, sig: int = SIG) -> tuple[str, str]:
    return fmt_number(mean, sig=sig), fmt_number(std, sig=sig)


def comparison_latex(comp: pd.DataFrame, sig: int = SIG) -> tuple[pd.DataFrame, str]:
    records, rows, groups = [], [], []
    for i, r in enumerate(comp.itertuples(index=False)):
        if i == 0 or r.dataset != records[-1]["dataset"]:
            groups.append(i)
        rec = {"dataset": r.dataset, "model": r.model, "n_params": str(int(r.n_params_mean))}
        for k in ("wall_s", "val_loss", "swd"):
            rec[f"{k}_mean"], rec[f"{k}_std"] = _pm(getattr(r, f"{k}_mean"), getattr(r, f"{k}_std"), sig)
        ratio = r.swd_mean / r.swd_floor if r.swd_floor and r.swd_floor > 0 and r.swd_mean > 0 else None
        rec["swd_ratio"] = fmt_number(ratio, sig=sig)
        records.append(rec)
        rows.append([tex_escape(r.dataset), tex_escape(r.model), f"${rec['n_params']}$",
                     pm_cell(rec["wall_s_mean"], rec["wall_s_std"]), pm_cell(rec["val_loss_mean"], rec["val_loss_std"]),
                     pm_cell(rec["swd_mean"], rec["swd_std"], rec["swd_ratio"])])
    header = ["Dataset", "Model", "Parameters", "Training (s)", "Validation loss", "SWD"]
    return pd.DataFrame(records, dtype=str), booktabs(header, rows, align="llrccc", groups=groups)


def grid_latex(g: pd.DataFrame, sig: int = SIG) -> tuple[pd.DataFrame, str]:
    records, rows, groups = [], [], []
    for i, r in enumerate(g.itertuples(index=False)):
        if i == 0 or (r.dataset, r.optimizer) != (records[-1]["dataset"], records[-1]["optimizer"]):
            groups.append(i)
        rec = {"dataset": r.dataset, "optimizer": r.optimizer, "degree": str(int(r.degree)), "rank": str(int(r.rank)),
               "n_params": str(int(r.n_params_mean))}
        for k in ("wall_s", "val_loss", "eps_rel_error", "swd"):
            rec[k] = fmt_number(getattr(r, f"{k}_mean"), sig=sig)
        records.append(rec)
        rows.append([tex_escape(r.dataset), tex_escape(r.optimizer), f"${rec['degree']}$", f"${rec['rank']}$",
                     f"${rec['n_params']}$"] + [f"${rec[k]}$" if rec[k] else "--"
                                                for k in ("wall_s", "val_loss", "eps_rel_error", "swd")])
    header = ["Dataset", "Optimizer", "$n$", "$r$", "Parameters", "Training (s)", "Val. loss",
              "$\\|\\epsilon_\\theta-\\epsilon^*\\|/\\|\\epsilon^*\\|$", "SWD"]
    return pd.DataFrame(records, dtype=str), booktabs(header, rows, align="llrrrrrrr", groups=groups)


def isolation_latex(iso: pd.DataFrame, sig: int = SIG) -> tuple[pd.DataFrame, str]:
    records, rows = [], []
    for r in iso.itertuples(index=False):
        rec = {"dataset": r.dataset, "model": r.model, "optimizer": r.optimizer, "n_params": str(int(r.n_params)),
               "wall_s": fmt_number(r.wall_s, sig=sig), "iso_error": fmt_number(r.iso_error, sig=sig),
               "ddpm_error": fmt_number(r.ddpm_error, sig=sig)}
        records.append(rec)
        rows.append([tex_escape(r.dataset), tex_escape(r.model), tex_escape(r.optimizer), f"${rec['n_params']}$",
                     f"${rec['wall_s']}$"] + [f"${rec[k]}$" if rec[k] else "--" for k in ("iso_error", "ddpm_error")])
    header = ["Dataset", "Model", "Optimizer", "Parameters", "Training (s)", "Fit to $\\epsilon^*$",
              "DDPM loss"]
    return pd.DataFrame(records, dtype=str), booktabs(header, rows, align="lllrrrr")


def convergence_latex(conv: pd.DataFrame, sig: int = SIG) -> tuple[pd.DataFrame, str]:
    records, rows, groups = [], [], []
    for i, r in enumerate(conv.itertuples(index=False)):
        if i == 0 or r.dataset != records[-1]["dataset"]:
            groups.append(i)
        rec = {"dataset": r.dataset, "optimizer": r.optimizer, "steps": str(int(r.steps)),
               "target": fmt_number(r.target, sig=4), "best_val_loss": fmt_number(r.best_val_loss, sig=4),
               "time_to_target": fmt_number(r.time_to_target, sig=sig), "wall_s": fmt_number(r.wall_s, sig=sig)}
        records.append(rec)
        rows.append([tex_escape(r.dataset), tex_escape(r.optimizer), f"${rec['steps']}$", f"${rec['best_val_loss']}$",
                     f"${rec['target']}$", f"${rec['time_to_target']}$" if rec["time_to_target"] else "--",
                     f"${rec['wall_s']}$"])
    header = ["Dataset", "Optimizer", "Steps", "Best val. loss", "Target", "Time to target (s)", "Total (s)"]
    return pd.DataFrame(records, dtype=str), booktabs(header, rows, align="llrrrrr", groups=groups)


# --------------------------------------------------------------------------------------------------------------------
# Writer


def write_tt_tables(run_dirs: Iterable[PathLike], metrics_csv: PathLike, floor_files: Iterable[PathLike],
                    main: tuple[str, int], out_dir: PathLike, data_root: PathLike | None = None) -> list[Path]:
    """Write tt_runs.csv and tt_{comparison,grid,isolation,variants,convergence}.csv, with .tex and _display.csv
    where they have rows."""
    from ttdm.report.tables import collect_floors

    out = Path(out_dir)
    metrics = pd.read_csv(metrics_csv)
    runs = collect_runs(run_dirs, metrics, collect_floors(floor_files), main, data_root)
    written = [atomic_write(out / "tt_runs.csv", lambda p: runs.to_csv(p, index=False))]
    comp = comparison(runs)
    tables = {"tt_comparison": (comp, comparison_latex), "tt_grid": (grid(runs), grid_latex),
              "tt_isolation": (isolation(runs), isolation_latex), "tt_variants": (variants(runs), variants_latex),
              "tt_convergence": (convergence(runs, comp), convergence_latex)}
    for stem, (df, latex) in tables.items():
        written.append(atomic_write(out / f"{stem}.csv", lambda p, df=df: df.to_csv(p, index=False)))
        if len(df):
            display, tex = latex(df)
            written.append(atomic_write(out / f"{stem}_display.csv", lambda p, d=display: d.to_csv(p, index=False)))
            written.append(atomic_write(out / f"{stem}.tex", lambda p, t=tex: p.write_text(t)))
    return written


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


# --------------------------------------------------------------------------------------------------------------------
# Sentences for the paper


def _read(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    df = pd.read_csv(path, keep_default_na=False, na_values=[""])
    return df if len(df) else None


def comparison_claims(comp: pd.DataFrame) -> list[str]:
    """Per dataset: how the base TT optimizers compare with the best network on SWD, parameters and time."""
    out = []
    for ds, g in comp.groupby("dataset", sort=False):
        nets = g[g["arch"] != "tt"].sort_values("swd_mean")
        tts = g[g["arch"] == "tt"].sort_values("swd_mean")
        if not len(nets) or not len(tts):
            continue
        net, best = nets.iloc[0], tts.iloc[0]
        verdict = "lower" if best["swd_mean"] < net["swd_mean"] else "higher"
        out.append(
            f"On {tex_escape(ds)} the best TT model, {tex_escape(best['model'])}, has a {verdict} SWD than the best "
            f"network, {tex_escape(net['model'])} (${fmt_number(best['swd_mean'])}$ against "
            f"${fmt_number(net['swd_mean'])}$), with ${int(best['n_params_mean'])}$ parameters against "
            f"${int(net['n_params_mean'])}$ and ${fmt_number(best['wall_s_mean'])}$~s of training against "
            f"${fmt_number(net['wall_s_mean'])}$~s.")
    return out


def convergence_claims(conv: pd.DataFrame) -> list[str]:
    out = []
    for ds, g in conv.groupby("dataset", sort=False):
        reached = g[g["time_to_target"].notna()].sort_values("time_to_target")
        if not len(reached):
            continue
        order = [f"{tex_escape(r.optimizer)} (${fmt_number(r.time_to_target)}$~s)" for r in reached.itertuples()]
        lowest = g.sort_values("best_val_loss").iloc[0]
        text = (f"On {tex_escape(ds)}, the order in which the optimizers reach the common validation-loss target "
                f"${fmt_number(g['target'].iloc[0], sig=4)}$ is " + ", ".join(order) + "; "
                f"{tex_escape(lowest['optimizer'])} attains the lowest loss, "
                f"${fmt_number(lowest['best_val_loss'], sig=4)}$.")
        out.append(text)
    return out


def rank_claims(g: pd.DataFrame, tol: float = 0.01) -> list[str]:
    """Per dataset, optimizer and basis size: the smallest rank whose validation loss is within ``tol`` of the best."""
    out = []
    for (ds, opt, deg), h in g.groupby(["dataset", "optimizer", "degree"], sort=True):
        if h["rank"].nunique() < 2:
            continue
        h = h.sort_values("rank")
        best = h["val_loss_mean"].min()
        sat = h[h["val_loss_mean"] <= best * (1 + tol)].iloc[0]
        out.append(
            f"With {tex_escape(opt)} and $n = {int(deg)}$ on {tex_escape(ds)}, the validation loss is within "
            f"${int(tol * 100)}\\%$ of its best (${fmt_number(best, sig=4)}$) from rank $r = {int(sat['rank'])}$ on "
            f"(ranks " + ", ".join(str(int(r)) for r in h["rank"]) + " tried).")
    return out


def isolation_claims(iso: pd.DataFrame) -> list[str]:
    """Which model fits ε* best, how the TT error depends on the rank, and, per model class, how much the noisy
    DDPM target adds to the error (ratio of the DDPM-trained model's error to the direct fit's)."""
    out = []
    for ds, g in iso.groupby("dataset", sort=False):
        best = g.sort_values("iso_error").iloc[0]
        text = (f"Fitted directly to $\\epsilon^*$ on {tex_escape(ds)}, {tex_escape(best['model'])} is the most "
                f"accurate (relative error ${fmt_number(best['iso_error'])}$ with ${int(best['n_params'])}$ "
                "parameters)")
        tt = g[(g["arch"] == "tt")]
        for opt, h in tt.groupby("optimizer", sort=True):
            if h["rank"].nunique() >= 2:
                lo, hi = h["iso_error"].min(), h["iso_error"].max()
                ranks = ", ".join(str(int(r)) for r in sorted(h["rank"]))
                text += (f"; the {tex_escape(opt)}-fitted TT's error ranges from ${fmt_number(lo)}$ to "
                         f"${fmt_number(hi)}$ over ranks {ranks}"
                         + (" (it varies by less than 5\\%)" if hi <= 1.05 * lo else ""))
        out.append(text + ".")
        parts = []
        for arch, h in g[g["ddpm_error"].notna()].groupby("arch", sort=True):
            ratio = float((h["ddpm_error"] / h["iso_error"]).median())
            parts.append(f"{tex_escape(arch)} ${fmt_number(ratio)}\\times$")
        if parts:
            out.append("Trained on the DDPM loss instead, the models' error against $\\epsilon^*$ is, relative to "
                       "the direct fit (median over runs): " + ", ".join(parts) + "; a ratio near 1 means the "
                       "model class limits the accuracy, a large one that the noisy regression target does.")
    return out


def landscape_claims(results: Path, models: list[str] | None) -> list[str]:
    """How fast the loss rises away from the trained weights: mean loss on the grid's border / loss at the centre."""
    out = []
    for csv in sorted((results / "landscape").glob("*/*/*.csv")):
        info_file = csv.with_suffix(".json")
        if not info_file.is_file() or (models is not None and csv.parent.name not in models):
            continue
        df, info = pd.read_csv(csv), load_json(info_file)
        span = df["alpha"].abs().max()
        border = df[(df["alpha"].abs() == span) | (df["beta"].abs() == span)]["loss"].mean()
        rise = border / info["loss_at_minimum"]
        out.append(f"{tex_escape(csv.parent.name)}: the loss on the border of the $[-{fmt_number(span)}, "
                   f"{fmt_number(span)}]^2$ window is ${fmt_number(rise)}\\times$ its value at the trained weights "
                   f"(${fmt_number(info['loss_at_minimum'], sig=4)}$).")
    return out


def tt_context(results_dir: PathLike, config: dict[str, Any]) -> dict[str, Any]:
    """The TT section's context: tables (LaTeX), figures, claims and targets; empty when there are no TT runs."""
    results = Path(results_dir)
    tables_dir, figures = results / "tables", results / "figures"
    runs = _read(tables_dir / "tt_runs.csv")
    if runs is None or not (runs["arch"] == "tt").any():
        return {}
    comp, conv = _read(tables_dir / "tt_comparison.csv"), _read(tables_dir / "tt_convergence.csv")
    g, iso = _read(tables_dir / "tt_grid.csv"), _read(tables_dir / "tt_isolation.csv")
    var = _read(tables_dir / "tt_variants.csv")
    tex = {p.stem: p.read_text() for p in sorted(tables_dir.glob("tt_*.tex"))}
    fig_files = sorted(p.name for p in figures.glob("tt_*.pdf")) + (
        ["landscape.pdf"] if (figures / "landscape.pdf").is_file() else [])
    tt_runs = runs[runs["arch"] == "tt"]
    layouts = sorted(set(tt_runs["layout"].dropna()))
    complexity = _read(results / "bench" / "complexity.csv")
    base = next((dict(m) for m in config.get("models", {}).values() if m.get("arch") == "tt"), {})
    base.pop("arch", None)
    used = sorted(set(runs["optimizer"].dropna()) & set(config.get("optimizers", {})))
    opt_text = [f"\\texttt{{{tex_escape(name)}}}: " + ", ".join(
        f"{tex_escape(k)} = {tex_escape(v)}" for k, v in config["optimizers"][name].items()
        if k not in ("log_every", "checkpoint_every")) for name in used]
    return {
        "model": {k: tex_escape(v) for k, v in base.items()},
        "optimizer_settings": opt_text,
        "tables": tex,
        "figures": [f"figures/{f}" for f in fig_files],
        "convergence_figures": [f"figures/{f}" for f in fig_files if f.startswith("tt_convergence_")],
        "rank_figure": "figures/tt_rank.pdf" if "tt_rank.pdf" in fig_files else None,
        "isolation_figure": "figures/tt_isolation.pdf" if "tt_isolation.pdf" in fig_files else None,
        "landscape_figure": "figures/landscape.pdf" if "landscape.pdf" in fig_files else None,
        "n_runs": int(len(tt_runs)), "datasets": [tex_escape(d) for d in dict.fromkeys(tt_runs["dataset"])],
        "optimizers": sorted(set(tt_runs["solver"])), "layouts": layouts,
        "comparison": comparison_claims(comp) if comp is not None else [],
        "convergence": convergence_claims(conv) if conv is not None else [],
        "rank": rank_claims(g) if g is not None else [],
        "isolation": isolation_claims(iso) if iso is not None else [],
        "variants": variant_claims(var) if var is not None else [],
        "landscape": landscape_claims(results, (config.get("landscape") or {}).get("models")),
        "targets": describe_targets(runs, conv if conv is not None else pd.DataFrame()),
        "complexity": complexity is not None,
        "figure_files": fig_files,
    }
