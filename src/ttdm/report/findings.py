"""The DDPM section's compact results: a mode-coverage table, an "NFE needed" table and the 2-4 findings the
section opens with, all computed from the summary (and training) tables.

Tables are booktabs LaTeX built from :func:`ttdm.report.tables.fmt_number` strings, datasets as rows and models as
columns, so that no paragraph enumerates models one by one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ttdm.report.claims import at_setting, num, ranking, tt, words
from ttdm.report.tables import booktabs, fmt_number

FLOOR_TARGET = 1.5  # a model "comes close to the data floor" when its SWD is at most this multiple of the floor


def _order(names: Sequence[str], preferred: Sequence[str] | None) -> list[str]:
    pref = [m for m in (preferred or []) if m in set(names)]
    return pref + sorted(set(names) - set(pref))


def _rows_in(order: Sequence[str] | None, keys: Sequence[str]) -> list[str]:
    return _order(list(dict.fromkeys(keys)), order)


def mode_table(summary: pd.DataFrame, sampler: str, steps: int, models: Sequence[str] | None = None,
               datasets: Sequence[str] | None = None) -> str | None:
    """Mixture datasets × models: modes covered of the total (mean over seeds) and, in parentheses, the % of
    high-quality samples; None when no dataset has modes."""
    stats = at_setting(summary, sampler, steps).set_index(["dataset", "model", "metric"])["mean"]
    cov = stats.xs("modes_covered", level="metric") if "modes_covered" in stats.index.get_level_values(2) else None
    if cov is None or not len(cov):
        return None
    names = _order(list(cov.index.get_level_values(1).unique()), models)
    rows = []
    for ds in _rows_in(datasets, list(cov.index.get_level_values(0))):
        row = [tt(ds)]
        for m in names:
            if (ds, m) not in cov.index:
                row.append("--")
                continue
            c, total = cov[(ds, m)], stats.get((ds, m, "modes_total"))
            text = str(int(c)) if float(c).is_integer() else fmt_number(c)
            text = f"${text}/{int(round(total))}$" if total is not None else f"${text}$"
            hq = stats.get((ds, m, "hq_percent"))
            row.append(text + (f" (${fmt_number(hq)}$\\,\\%)" if hq is not None and np.isfinite(hq) else ""))
        rows.append(row)
    return booktabs(["Dataset"] + [tt(m) for m in names], rows, align="l" + "c" * len(names))


def nfe_reach(summary: pd.DataFrame, *, metric: str = "swd", tol: float = 0.1) -> pd.DataFrame:
    """Per dataset × sampler with several step counts × model: the fewest NFE at which the mean ``metric`` is
    within ``tol`` (relative) of its lowest value over the NFE tried. Columns dataset, sampler, model, reach,
    tried (the NFE tried, comma-separated)."""
    sub = summary[(summary["metric"] == metric) & summary["mean"].notna()]
    rows = []
    for (ds, sampler), g in sub.groupby(["dataset", "sampler"], sort=True):
        if g["nfe"].nunique() < 2:
            continue
        tried = ", ".join(str(n) for n in sorted(g["nfe"].unique()))
        for model, gm in g.sort_values("nfe").groupby("model", sort=True):
            reach = int(gm.loc[gm["mean"] <= (1 + tol) * gm["mean"].min(), "nfe"].iloc[0])
            rows.append({"dataset": ds, "sampler": sampler, "model": model, "reach": reach, "tried": tried})
    return pd.DataFrame(rows, columns=["dataset", "sampler", "model", "reach", "tried"])


def nfe_table(summary: pd.DataFrame, models: Sequence[str] | None = None, datasets: Sequence[str] | None = None,
              **kwargs) -> str | None:
    """(dataset, sampler) × models: the NFE of :func:`nfe_reach`; None when no sampler has several step counts."""
    reach = nfe_reach(summary, **kwargs)
    if not len(reach):
        return None
    names = _order(list(reach["model"].unique()), models)
    table = reach.set_index(["dataset", "sampler", "model"])["reach"]
    rows = []
    keys = reach[["dataset", "sampler"]].drop_duplicates()
    rank = {d: i for i, d in enumerate(_rows_in(datasets, list(keys["dataset"])))}
    for ds, sampler in sorted(keys.itertuples(index=False, name=None), key=lambda k: (rank[k[0]], k[1])):
        rows.append([tt(ds), tt(sampler)] + [f"${table[(ds, sampler, m)]}$" if (ds, sampler, m) in table.index
                                             else "--" for m in names])
    return booktabs(["Dataset", "Sampler"] + [tt(m) for m in names], rows, align="ll" + "c" * len(names))


def best_counts(summary: pd.DataFrame, sampler: str, steps: int, metric: str = "swd") -> dict[str, list[str]]:
    """Model -> the datasets where it has the lowest mean ``metric`` at the setting (most datasets first)."""
    best: dict[str, list[str]] = {}
    for ds, g in ranking(summary, sampler, steps, metric).items():
        if len(g) > 1:
            best.setdefault(str(g["model"].iloc[0]), []).append(ds)
    return dict(sorted(best.items(), key=lambda kv: (-len(kv[1]), kv[0])))


def ddpm_findings(summary: pd.DataFrame, sampler: str, steps: int, *, tol: float = 0.1) -> list[str]:
    """The section's opening findings: which model is best most often, the largest gap between models of one
    dataset, how close the best model comes to the data floor (and where none comes within ``FLOOR_TARGET``), and
    how many fewer network evaluations a few-step sampler needs."""
    out = []
    ranked = {ds: g for ds, g in ranking(summary, sampler, steps, "swd").items() if len(g) > 1}
    best = best_counts(summary, sampler, steps)
    if best:
        parts = [f"{tt(m)} on ${len(d)}$" for m, d in list(best.items())[:4]]
        out.append(f"By SWD, the best model is {words(parts)} of the ${len(ranked)}$ datasets with several models.")
    gaps = {ds: g["mean"].iloc[-1] / g["mean"].iloc[0] for ds, g in ranked.items() if g["mean"].iloc[0] > 0}
    if gaps:
        ds = max(gaps, key=gaps.get)
        g = ranked[ds]
        out.append(f"The largest gap is on {tt(ds)}, where {tt(g['model'].iloc[-1])}'s SWD is {num(gaps[ds])} times "
                   f"{tt(g['model'].iloc[0])}'s.")
    ratios = {ds: g["ratio"].iloc[0] for ds, g in ranking(summary, sampler, steps, "swd").items()
              if np.isfinite(g["ratio"].iloc[0])}
    if ratios:
        far = [ds for ds, r in ratios.items() if r > FLOOR_TARGET]
        text = (f"The best model's SWD is between {num(min(ratios.values()))} and {num(max(ratios.values()))} times "
                f"the data floor")
        text += (f"; on {words([tt(d) for d in far[:5]])}{' and others' if len(far) > 5 else ''} no model comes "
                 f"within ${fmt_number(FLOOR_TARGET)}\\times$ of it." if far else
                 f", within ${fmt_number(FLOOR_TARGET)}\\times$ on every dataset.")
        out.append(text)
    reach = nfe_reach(summary, tol=tol)
    main_nfe = at_setting(summary, sampler, steps)["nfe"]
    if len(reach) and len(main_nfe):
        for s, g in reach.groupby("sampler", sort=True):
            med = float(np.median(g["reach"]))
            out.append(f"With {tt(s)}, the SWD comes within ${round(100 * tol)}\\,\\%$ of its lowest value at a "
                       f"median of {num(med)} network evaluations, {num(int(main_nfe.iloc[0]) / med)} times fewer "
                       f"than {tt(sampler)} with ${steps}$ steps.")
            break
    return out[:4]


def nfe_saving(summary: pd.DataFrame, sampler: str, steps: int, *, tol: float = 0.1) -> float | None:
    """How many times fewer network evaluations than (sampler, steps) the few-step sampler needs (median over
    datasets and models of :func:`nfe_reach`), or None."""
    reach = nfe_reach(summary, tol=tol)
    main_nfe = at_setting(summary, sampler, steps)["nfe"]
    if not len(reach) or not len(main_nfe):
        return None
    return int(main_nfe.iloc[0]) / float(np.median(reach["reach"]))


def floor_range(summary: pd.DataFrame, sampler: str, steps: int) -> tuple[str, str] | None:
    """The lowest and highest, over datasets, of the best model's SWD as a multiple of the data floor."""
    ratios = [g["ratio"].iloc[0] for g in ranking(summary, sampler, steps, "swd").values()
              if np.isfinite(g["ratio"].iloc[0])]
    return (fmt_number(min(ratios)), fmt_number(max(ratios))) if ratios else None
