"""The training-budget study: sample quality and test NLL against training steps and seconds.

Each budget run (``budget`` in the config, :func:`ttdm.config.grid.budget_name`) is a main network retrained for N
steps with its own settings (the learning-rate schedule stretched to N).  For every (dataset, model) this module
tabulates, per budget, the training seconds, the dataset's sample metric at the main setting (``hq_percent`` on
Gaussian mixtures, higher is better; SWD elsewhere) and the test NLL, and judges convergence against the longest
budget B: a budget has converged when its sample metric m_N is within ``tol`` (10 %) of m_B, |m_N − m_B| ≤ tol |m_B|
(and its NLL within ``nll_tol`` = 0.1 nats/dim of the longest budget's, where the NLL was computed).  The main run
(trained for the grid's number of steps) is compared with m_B in the same way, so the paper can say how far each
main network is from converged.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ttdm.io import load_json
from ttdm.report.claims import higher_is_better

PathLike = str | os.PathLike
TOL = 0.10  # relative tolerance of the sample metric
NLL_TOL = 0.10  # nats/dim
COLUMNS = ["dataset", "model", "seed", "steps", "train_s", "metric", "value", "nll", "main"]


def sample_metric(meta: dict[str, Any]) -> str:
    """The per-sample quality the budget study tracks: % high-quality samples on Gaussian mixtures, else SWD."""
    return "hq_percent" if meta.get("mixture") else "swd"


def _value(path: PathLike | None, metric: str) -> float:
    """The value of ``metric`` in a long-format CSV (metric, value; one row per metric), NaN when the file or the
    row is missing."""
    if path is None or not Path(path).exists():
        return float("nan")
    table = pd.read_csv(path)
    rows = table[table["metric"] == metric]
    return float(rows["value"].mean()) if len(rows) else float("nan")


def collect(entries: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per run of the study: entries are {dataset, model (the base network), seed, steps, main (bool),
    train (train.json), metrics (the main setting's metrics CSV), likelihood (CSV or None), meta (meta.json)}."""
    rows = []
    for e in entries:
        metric = sample_metric(load_json(e["meta"]))
        rows.append({"dataset": e["dataset"], "model": e["model"], "seed": int(e["seed"]), "steps": int(e["steps"]),
                     "train_s": float(load_json(e["train"])["wall_s"]), "metric": metric,
                     "value": _value(e["metrics"], metric),
                     "nll": _value(e.get("likelihood"), "nll"), "main": bool(e["main"])})
    return pd.DataFrame(rows, columns=COLUMNS)


def converged(value: float, reference: float, metric: str, *, tol: float = TOL) -> bool:
    """|m − m_ref| ≤ tol |m_ref|, or m already better than m_ref."""
    if not (np.isfinite(value) and np.isfinite(reference)):
        return False
    better = value >= reference if higher_is_better(metric) else value <= reference
    return bool(better or abs(value - reference) <= tol * abs(reference))


def summarise(runs: pd.DataFrame, *, tol: float = TOL, nll_tol: float = NLL_TOL) -> pd.DataFrame:
    """Per (dataset, model, steps, main): mean over seeds of train_s, value and nll, the longest budget's values
    (ref_value, ref_nll), the gap (value − ref_value)/|ref_value|, and whether the budget has converged."""
    means = (runs.groupby(["dataset", "model", "steps", "main", "metric"], sort=False)[["train_s", "value", "nll"]]
             .mean().reset_index())
    out = []
    for (ds, model), g in means.groupby(["dataset", "model"], sort=False):
        budgets = g[~g["main"]]
        if budgets.empty:
            continue
        ref = budgets.loc[budgets["steps"].idxmax()]
        for _, row in g.sort_values(["main", "steps"]).iterrows():
            gap = (row["value"] - ref["value"]) / abs(ref["value"]) if ref["value"] else float("nan")
            nll_ok = (not np.isfinite(ref["nll"])) or (np.isfinite(row["nll"]) and row["nll"] - ref["nll"] <= nll_tol)
            out.append({**row.to_dict(), "ref_steps": int(ref["steps"]), "ref_value": ref["value"],
                        "ref_nll": ref["nll"], "gap": gap,
                        "converged": converged(row["value"], ref["value"], row["metric"], tol=tol) and nll_ok})
    return pd.DataFrame(out)


def steps_to_converge(summary: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, model): the smallest budget that has converged and its training seconds (NaN when only the
    longest one has), and the main run's steps, gap and verdict."""
    rows = []
    for (ds, model), g in summary.groupby(["dataset", "model"], sort=False):
        budgets = g[~g["main"]].sort_values("steps")
        ok = budgets[budgets["converged"]]
        first = ok.iloc[0] if len(ok) else None
        main = g[g["main"]]
        longest = budgets.iloc[-1]
        before = budgets.iloc[-2] if len(budgets) > 1 else None
        rows.append({"dataset": ds, "model": model, "metric": g["metric"].iloc[0],
                     "still_improving": before is not None and not converged(before["value"], longest["value"],
                                                                             longest["metric"]),
                     "steps": int(first["steps"]) if first is not None else None,
                     "train_s": float(first["train_s"]) if first is not None else float("nan"),
                     "longest": int(budgets["steps"].max()), "ref_value": float(budgets["ref_value"].iloc[0]),
                     "main_steps": int(main["steps"].iloc[0]) if len(main) else None,
                     "main_value": float(main["value"].iloc[0]) if len(main) else float("nan"),
                     "main_gap": float(main["gap"].iloc[0]) if len(main) else float("nan"),
                     "main_metric_ok": (converged(float(main["value"].iloc[0]), float(budgets["ref_value"].iloc[0]),
                                                  g["metric"].iloc[0]) if len(main) else None),
                     "main_nll_gap": (float(main["nll"].iloc[0] - budgets["ref_nll"].iloc[0]) if len(main)
                                      else float("nan")),
                     "main_converged": bool(main["converged"].iloc[0]) if len(main) else None})
    return pd.DataFrame(rows)


# ---- the table and the figure ------------------------------------------------------------------------------------

METRIC_WORDS = {"hq_percent": "% high quality", "swd": "SWD", "fd": "FD"}  # figure labels
METRIC_TEX = {"hq_percent": "HQ (\\%)", "swd": "SWD", "fd": "FD"}  # table cells and paper text


def budget_table(reach: pd.DataFrame) -> str:
    """LaTeX table: per dataset and network, the metric, the fewest steps within 10 % of the longest budget (and its
    seconds), the longest budget's value, and the main run's steps, value and gap."""
    from ttdm.report.tables import booktabs, fmt_number, tex_escape

    header = ["Dataset", "Model", "Metric", "Converged at", "Longest", "Main run", "Gap"]
    rows, groups, last = [], [], None
    for _, r in reach.iterrows():
        if r["dataset"] != last:
            groups.append(len(rows))
            last = r["dataset"]
        at = (f"{int(r['steps'])} ({fmt_number(r['train_s'])} s)" if r["steps"] is not None and not pd.isna(r["steps"])
              else "not reached")
        longest = f"{fmt_number(r['ref_value'])} at {int(r['longest'])}" + (" (still improving)"
                                                                              if r["still_improving"] else "")
        main = (f"{fmt_number(r['main_value'])} at {int(r['main_steps'])}" if r["main_steps"] is not None
                and not pd.isna(r["main_steps"]) else "--")
        gap = "--" if pd.isna(r["main_gap"]) else f"{100 * r['main_gap']:+.0f}\\,\\%"
        rows.append([tex_escape(r["dataset"]), tex_escape(r["model"]), METRIC_TEX.get(r["metric"], tex_escape(r["metric"])),
                     at, longest, main, gap])
    return booktabs(header, rows, align="lllrrrr", groups=groups)


def budget_figure(runs: pd.DataFrame, floors: dict[str, Path], nll_floors: dict[str, Path], out_dir: Path,
                  stem: str = "budget") -> list[Path]:
    """Sample metric (top) and test NLL (bottom, when computed) against training steps, one column per dataset;
    budgets as lines (mean over seeds, with their spread), the main run as a star, the data floor dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ttdm.report.style import FLOOR, RC, TEXT_WIDTH_IN, readable_log, style_of

    datasets = list(dict.fromkeys(runs["dataset"]))
    with_nll = bool(np.isfinite(runs["nll"]).any())
    n_rows = 2 if with_nll else 1
    with plt.rc_context(RC):
        fig, axes = plt.subplots(n_rows, len(datasets), figsize=(TEXT_WIDTH_IN, 2.1 * n_rows + 0.3), squeeze=False)
        for j, ds in enumerate(datasets):
            g = runs[runs["dataset"] == ds]
            metric = g["metric"].iloc[0]
            for r, (column, label) in enumerate([("value", METRIC_WORDS.get(metric, metric)),
                                                 ("nll", "test NLL (nats/dim)")][:n_rows]):
                ax = axes[r][j]
                for model, gm in g.groupby("model", sort=False):
                    st = style_of(model)
                    b = gm[~gm["main"]].groupby("steps")[column].agg(["mean", "std"]).reset_index()
                    ax.errorbar(b["steps"], b["mean"], yerr=b["std"].fillna(0.0), color=st["color"],
                                marker=st["marker"], ms=3.5, lw=1.2, capsize=2, label=model)
                    m = gm[gm["main"]]
                    if len(m):
                        ax.plot([m["steps"].iloc[0]], [m[column].mean()], marker="*", ms=9, color=st["color"],
                                ls="none", label=f"{model} (main run)")
                floor = (_value(floors.get(ds), metric) if column == "value"
                         else _value(nll_floors.get(ds), "nll"))
                if np.isfinite(floor):
                    ax.axhline(floor, **FLOOR, label="data floor" if column == "value" else "true NLL")
                ax.set_xscale("log")
                budgets = sorted({int(n) for n in g["steps"]})
                ax.set_xticks(budgets, [f"{n:g}" if n < 1000 else f"{n / 1000:g}k" for n in budgets])
                ax.minorticks_off()
                if metric == "swd" and column == "value":
                    ax.set_yscale("log")
                    readable_log(ax, "y")
                if r == n_rows - 1:
                    ax.set_xlabel("training steps")
                if r == 0:
                    ax.set_title(ds)
                if j == 0 or metric != g["metric"].iloc[0]:
                    ax.set_ylabel(label)
                elif column == "value":
                    ax.set_ylabel(label)
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=min(5, len(labels)), frameon=False,
                   bbox_to_anchor=(0.5, -0.02))
        fig.tight_layout(rect=(0, 0.08, 1, 1))
        from ttdm.report.style import save_figure

        return save_figure(fig, out_dir, stem)


def write_budget(entries: list[dict[str, Any]], floors: Iterable[PathLike], nll_floors: Iterable[PathLike],
                 out_tables: Path, out_figures: Path) -> list[Path]:
    """budget.csv (per run), budget_summary.csv, budget.tex, and the figure budget.pdf/png."""
    from ttdm.io import atomic_write

    runs = collect(entries)
    summary = summarise(runs)
    reach = steps_to_converge(summary)
    out_tables, out_figures = Path(out_tables), Path(out_figures)
    out_tables.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in (("budget.csv", runs), ("budget_summary.csv", summary), ("budget_reach.csv", reach)):
        atomic_write(out_tables / name, lambda p, f=frame: f.to_csv(p, index=False))
        written.append(out_tables / name)
    atomic_write(out_tables / "budget.tex", lambda p: Path(p).write_text(budget_table(reach)))
    written.append(out_tables / "budget.tex")
    by_ds = {Path(f).parent.name: Path(f) for f in floors}
    nll_by_ds = {Path(f).parent.name: Path(f) for f in nll_floors}
    written += budget_figure(runs, by_ds, nll_by_ds, out_figures)
    return written
