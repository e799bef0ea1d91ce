"""LaTeX tables of the tensor-train experiments and their writer (``ttdm tt-tables``).

Each table X has X.csv (the aggregated frame of :mod:`ttdm.report.tt_records`), and, where it has rows, X.tex and
X_display.csv holding the exact strings the LaTeX prints.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ttdm.io import atomic_write
from ttdm.report.tables import (SIG, bold_cell, compact_booktabs as booktabs, fmt_number, fmt_spread, pm_cell,
                                separated_best, tex_escape)
from ttdm.report.tt_records import comparison, convergence, grid, isolation, variants
from ttdm.report.tt_targets import targets_frame

PathLike = str | os.PathLike


def _pm(mean: float, std: float, sig: int = SIG) -> tuple[str, str]:
    return fmt_number(mean, sig=sig), fmt_spread(std, mean, sig=sig)


def comparison_latex(comp: pd.DataFrame, sig: int = SIG) -> tuple[pd.DataFrame, str]:
    """Every model of the comparison: parameters, training time, validation loss, SWD (with its multiple of the data
    floor), and the % high-quality samples and test NLL where any run has them. Per dataset the best model on its
    primary metric (:func:`ttdm.report.tt_claims.comparison_metric`) is bold when the spread rule separates it from
    every other model."""
    from ttdm.report.claims import higher_is_better
    from ttdm.report.tt_claims import comparison_metric

    records, rows, groups = [], [], []
    extra = [m for m in ("hq_percent", "nll") if f"{m}_mean" in comp.columns and comp[f"{m}_mean"].notna().any()]
    best = set()
    for _, h in comp.groupby("dataset", sort=False):
        metric = comparison_metric(h)
        stats = h.rename(columns={f"{metric}_mean": "mean", f"{metric}_std": "std"})[["mean", "std", "n_seeds"]]
        i = separated_best(stats, higher_is_better=higher_is_better(metric))
        if i is not None:
            best.add((i, metric))
    for i, r in enumerate(comp.itertuples(index=False)):
        if i == 0 or r.dataset != records[-1]["dataset"]:
            groups.append(i)
        rec = {"dataset": r.dataset, "model": r.model, "n_params": str(int(r.n_params_mean))}
        for k in ("wall_s", "val_loss", "swd", *extra):
            rec[f"{k}_mean"], rec[f"{k}_std"] = _pm(getattr(r, f"{k}_mean"), getattr(r, f"{k}_std"), sig)
        ratio = r.swd_mean / r.swd_floor if r.swd_floor and r.swd_floor > 0 and r.swd_mean > 0 else None
        rec["swd_ratio"] = fmt_number(ratio, sig=sig)
        records.append(rec)
        idx = comp.index[i]

        def cell(k: str, ratio: str = "") -> str:
            text = pm_cell(rec[f"{k}_mean"], rec[f"{k}_std"], ratio) if rec[f"{k}_mean"] else "--"
            return bold_cell(text) if (idx, k) in best else text
        rows.append([tex_escape(r.dataset), tex_escape(r.model), f"${rec['n_params']}$",
                     pm_cell(rec["wall_s_mean"], rec["wall_s_std"]), pm_cell(rec["val_loss_mean"], rec["val_loss_std"]),
                     cell("swd", rec["swd_ratio"])] + [cell(k) for k in extra])
    header = ["Dataset", "Model", "Parameters", "Training (s)", "Validation loss", "SWD"] + [
        {"hq_percent": "HQ (\\%)", "nll": "NLL (nats/dim)"}[k] for k in extra]
    return pd.DataFrame(records, dtype=str), booktabs(header, rows, align="llrccc" + "c" * len(extra),
                                                      groups=groups)


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
        loss_std = getattr(r, "best_val_loss_std", float("nan"))
        time_std = getattr(r, "time_to_target_std", float("nan"))
        rec = {"dataset": r.dataset, "optimizer": r.optimizer, "steps": str(int(r.steps)),
               "target": fmt_number(r.target, sig=4), "best_val_loss": fmt_number(r.best_val_loss, sig=4),
               "best_val_loss_std": fmt_spread(loss_std, r.best_val_loss, sig=4),
               "time_to_target": fmt_number(r.time_to_target, sig=sig),
               "time_to_target_std": fmt_spread(time_std, r.time_to_target, sig=sig),
               "wall_s": fmt_number(r.wall_s, sig=sig)}
        records.append(rec)
        rows.append([tex_escape(r.dataset), tex_escape(r.optimizer), f"${rec['steps']}$",
                     pm_cell(rec["best_val_loss"], rec["best_val_loss_std"]), f"${rec['target']}$",
                     pm_cell(rec["time_to_target"], rec["time_to_target_std"]) if rec["time_to_target"] else "--",
                     f"${rec['wall_s']}$"])
    header = ["Dataset", "Optimizer", "Steps", "Best val. loss", "Target", "Time to target (s)", "Total (s)"]
    return pd.DataFrame(records, dtype=str), booktabs(header, rows, align="llrcrcr", groups=groups)


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


def write_tt_tables(runs: pd.DataFrame, out_dir: PathLike) -> list[Path]:
    """Write tt_runs.csv (the records of :func:`ttdm.report.tt_records.collect_runs`), tt_targets.csv and
    tt_{comparison,grid,isolation,variants,convergence}.csv, with .tex and _display.csv where they have rows.
    Returns the paths written."""
    out = Path(out_dir)
    written = [atomic_write(out / "tt_runs.csv", lambda p: runs.to_csv(p, index=False))]
    targets = targets_frame(runs)
    written.append(atomic_write(out / "tt_targets.csv", lambda p: targets.to_csv(p, index=False)))
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
