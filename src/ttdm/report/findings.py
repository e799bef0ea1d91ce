"""The DDPM section's compact results: a mode-coverage table, an "NFE needed" table, the divergence report and the
findings the section opens with, all computed from the summary (and training) tables.

Tables are booktabs LaTeX built from :func:`ttdm.report.tables.fmt_number` strings, datasets as rows and models as
columns, so that no paragraph enumerates models one by one. Every comparison follows the spread rule
(:func:`ttdm.report.claims.separated`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ttdm.report.claims import (SENTENCE_LABELS, at_setting, model_label, model_primaries, num,
                                ranking, row_se, separated, tt, words)
from ttdm.report.claims import nfe_reach as _nfe_reach
from ttdm.report.tables import EXPLODING, booktabs, fmt_number

FLOOR_TARGET = 1.5  # a model "comes close to the data floor" when its SWD is at most this multiple of the floor
SENTENCE_PAIRS = 4  # at most this many diverged run/sampler pairs are named in a sentence; more go to a table
MAIN_TEXT_ROWS = 10  # a divergence table of more rows goes to the appendix
METRIC_SHORT = {"swd": "SWD", "hq_percent": "HQ", "nll": "NLL", "fd": "FD"}  # the NFE table's "Metric" column


def _order(names: Sequence[str], preferred: Sequence[str] | None) -> list[str]:
    pref = [m for m in (preferred or []) if m in set(names)]
    return pref + sorted(set(names) - set(pref))


def _rows_in(order: Sequence[str] | None, keys: Sequence[str]) -> list[str]:
    return _order(list(dict.fromkeys(keys)), order)


def _floor_last(names: list[str], sampler_floor: str | None) -> list[str]:
    return [m for m in names if m != sampler_floor] + [m for m in names if m == sampler_floor]


def mode_table(summary: pd.DataFrame, sampler: str, steps: int, models: Sequence[str] | None = None,
               datasets: Sequence[str] | None = None, *, sampler_floor: str | None = None) -> str | None:
    """Mixture datasets × models: modes covered of the total (mean over seeds) and, in parentheses, the % of
    high-quality samples; None when no dataset has modes. The sampler floor's column comes last."""
    stats = at_setting(summary, sampler, steps).set_index(["dataset", "model", "metric"])["mean"]
    cov = stats.xs("modes_covered", level="metric") if "modes_covered" in stats.index.get_level_values(2) else None
    if cov is None or not len(cov):
        return None
    names = _floor_last(_order(list(cov.index.get_level_values(1).unique()), models), sampler_floor)
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
    return booktabs(["Dataset"] + [model_label(m, sampler_floor) for m in names], rows, align="l" + "c" * len(names))


def nfe_reach(summary: pd.DataFrame, *, metric: str | None = None, tol: float = 0.1) -> pd.DataFrame:
    """:func:`ttdm.report.claims.nfe_reach`: per dataset × sampler × model, the fewest NFE at which the dataset's
    sampler-level primary metric comes within ``tol`` of its best value or is not separated from it."""
    return _nfe_reach(summary, metric=metric, tol=tol)


def nfe_table(summary: pd.DataFrame, models: Sequence[str] | None = None, datasets: Sequence[str] | None = None, *,
              sampler_floor: str | None = None, **kwargs) -> str | None:
    """(dataset, sampler) × models: the NFE of :func:`nfe_reach`, and the metric it follows (the dataset's
    sampler-level primary metric); None when no sampler has several step counts. The sampler floor's column (the
    exact noise predictor: the steps the sampler itself needs) comes last."""
    reach = nfe_reach(summary, **kwargs)
    if not len(reach):
        return None
    names = _floor_last(_order(list(reach["model"].unique()), models), sampler_floor)
    table = reach.set_index(["dataset", "sampler", "model"])["reach"]
    metric = reach.groupby("dataset")["metric"].first()
    rows = []
    keys = reach[["dataset", "sampler"]].drop_duplicates()
    rank = {d: i for i, d in enumerate(_rows_in(datasets, list(keys["dataset"])))}
    for ds, sampler in sorted(keys.itertuples(index=False, name=None), key=lambda k: (rank[k[0]], k[1])):
        rows.append([tt(ds), tt(sampler)] + [f"${table[(ds, sampler, m)]}$" if (ds, sampler, m) in table.index
                                             else "--" for m in names] + [METRIC_SHORT.get(metric[ds], metric[ds])])
    return booktabs(["Dataset", "Sampler"] + [model_label(m, sampler_floor) for m in names] + ["Metric"], rows,
                    align="ll" + "c" * len(names) + "l")



def best_counts(summary: pd.DataFrame, sampler: str, steps: int, metric: str | None = "swd", *,
                exclude: Sequence[str] = ()) -> tuple[dict[str, list[str]], list[str]]:
    """(model -> the datasets where it is best at the setting and separated from the runner-up by the spread rule,
    most datasets first; the datasets with several models where the best is not separated). ``metric`` None: each
    dataset's model-level primary metric (:func:`ttdm.report.claims.model_primaries`)."""
    primaries = model_primaries(summary, sampler, steps, exclude=exclude)
    best: dict[str, list[str]] = {}
    tied: list[str] = []
    for ds, primary in primaries.items():
        g = ranking(summary, sampler, steps, metric or primary, exclude=exclude).get(ds)
        if g is None or len(g) < 2:
            continue
        a, b = g.iloc[0], g.iloc[1]
        if separated(a["mean"], row_se(a), b["mean"], row_se(b)):
            best.setdefault(str(a["model"]), []).append(ds)
        else:
            tied.append(ds)
    return dict(sorted(best.items(), key=lambda kv: (-len(kv[1]), kv[0]))), tied


def _best_sentence(best: dict[str, list[str]], tied: list[str], by: str) -> str | None:
    n = sum(len(d) for d in best.values()) + len(tied)
    if not n:
        return None
    if not best:
        return (f"{by}, no model is separated from the runner-up on any of the ${n}$ datasets with several models "
                f"(the gaps are within their combined standard errors).")
    parts = [f"{tt(m)} on ${len(d)}$" for m, d in list(best.items())[:4]]
    text = f"{by}, the best model is {words(parts)} of the ${n}$ datasets with several models"
    if tied:
        text += (f"; on the other ${len(tied)}$ the best is not separated from the runner-up (the gap is within "
                 f"their combined standard error)")
    return text + "."


def primary_findings(summary: pd.DataFrame, sampler: str, steps: int, *,
                     sampler_floor: str | None = None) -> list[str]:
    """The finding the section opens with: which model is best by each dataset's primary metric (test NLL where
    models have one, else HQ % on mixtures and SWD elsewhere), counting only gaps the spread rule separates."""
    exclude = [sampler_floor] if sampler_floor else []
    primaries = model_primaries(summary, sampler, steps, exclude=exclude)
    if not primaries:
        return []
    used = sorted({SENTENCE_LABELS.get(m, m) for m in primaries.values()})
    by = "By each dataset's primary metric (" + words(used) + ", Section~\\ref{sec:setup})" if len(used) > 1 else f"By the primary metric, {used[0]}"
    text = _best_sentence(*best_counts(summary, sampler, steps, None, exclude=exclude), by)
    return [text] if text else []


def ddpm_findings(summary: pd.DataFrame, sampler: str, steps: int, *, tol: float = 0.1,
                  sampler_floor: str | None = None) -> list[str]:
    """The section's findings on the secondary metric, SWD: which model is best most often, the largest gap
    between models of one dataset, how close the best model comes to the data floor (and where none comes within
    ``FLOOR_TARGET``), and how many fewer network evaluations a few-step sampler needs for its primary metric. Only
    gaps that the spread rule separates count."""
    out = []
    exclude = [sampler_floor] if sampler_floor else []
    ranked = {ds: g for ds, g in ranking(summary, sampler, steps, "swd", exclude=exclude).items() if len(g) > 1}
    text = _best_sentence(*best_counts(summary, sampler, steps, exclude=exclude), "By SWD")
    if text:
        out.append(text)
    gaps = {ds: g["mean"].iloc[-1] / g["mean"].iloc[0] for ds, g in ranked.items() if g["mean"].iloc[0] > 0
            and separated(g["mean"].iloc[-1], row_se(g.iloc[-1]), g["mean"].iloc[0], row_se(g.iloc[0]))}
    if gaps:
        ds = max(gaps, key=gaps.get)
        g = ranked[ds]
        out.append(f"The largest gap is on {tt(ds)}, where {tt(g['model'].iloc[-1])}'s SWD is {num(gaps[ds])} times "
                   f"{tt(g['model'].iloc[0])}'s.")
    ratios = {ds: g["ratio"].iloc[0] for ds, g in ranking(summary, sampler, steps, "swd", exclude=exclude).items()
              if np.isfinite(g["ratio"].iloc[0])}
    if ratios:
        far = [ds for ds, r in ratios.items() if r > FLOOR_TARGET]
        text = (f"The best model's SWD is between {num(min(ratios.values()))} and {num(max(ratios.values()))} times "
                f"the data floor")
        text += (f"; on {words([tt(d) for d in far[:5]])}{' and others' if len(far) > 5 else ''} no model comes "
                 f"within ${fmt_number(FLOOR_TARGET)}\\times$ of it." if far else
                 f", within ${fmt_number(FLOOR_TARGET)}\\times$ on every dataset.")
        out.append(text)
    reach = nfe_reach(summary[~summary["model"].isin(exclude)], tol=tol)
    main_nfe = at_setting(summary, sampler, steps)["nfe"]
    if len(reach) and len(main_nfe):
        for s, g in reach.groupby("sampler", sort=True):
            med = float(np.median(g["reach"]))
            out.append(f"With {tt(s)}, the primary metric comes within ${round(100 * tol)}\\,\\%$ of its best value "
                       f"(or is not separated from it) at a median of {num(med)} network evaluations, "
                       f"{num(int(main_nfe.iloc[0]) / med)} times fewer than {tt(sampler)} with ${steps}$ steps.")
            break
    return out[:4]


def nfe_saving(summary: pd.DataFrame, sampler: str, steps: int, *, tol: float = 0.1) -> float | None:
    """How many times fewer network evaluations than (sampler, steps) the few-step sampler needs for the primary
    metric (median over datasets and models of :func:`nfe_reach`), or None."""
    reach = nfe_reach(summary, tol=tol)
    main_nfe = at_setting(summary, sampler, steps)["nfe"]
    if not len(reach) or not len(main_nfe):
        return None
    return int(main_nfe.iloc[0]) / float(np.median(reach["reach"]))


def floor_range(summary: pd.DataFrame, sampler: str, steps: int, *,
                sampler_floor: str | None = None) -> tuple[str, str] | None:
    """The lowest and highest, over datasets, of the lowest SWD of a model as a multiple of the data floor."""
    exclude = [sampler_floor] if sampler_floor else []
    ratios = [g["ratio"].iloc[0] for g in ranking(summary, sampler, steps, "swd", exclude=exclude).values()
              if np.isfinite(g["ratio"].iloc[0])]
    return (fmt_number(min(ratios)), fmt_number(max(ratios))) if ratios else None


def _factor(x: float) -> str:
    return f"{x:g}"


def divergence_report(div: pd.DataFrame | None, *, sampler_floor: str | None = None,
                      factor: float = EXPLODING, causes: dict[Any, str] | None = None) -> dict[str, object]:
    """Every run/sampler pair with non-finite samples or an SWD above ``factor`` times the data floor
    (:func:`ttdm.report.tables.divergence`), for the paper: {"n_pairs", "n_runs", "n_total" (pairs checked),
    "sentence" (naming every pair when there are at most ``SENTENCE_PAIRS``, else saying how many and where the
    table is), "table" (booktabs LaTeX, one row per pair, or None), "appendix" (whether the table is long enough to
    go to the appendix)}; ``causes``: {model: known cause} (e.g. from :func:`ttdm.report.studies.ddpm.known_causes`),
    given beside the model's pairs (a key (model, sampler) is more specific than a model). None when no divergence table was given."""
    known = causes or {}

    def cause(r) -> str | None:  # by (model, sampler name), else by model
        return known.get((r.model, r.sampler), known.get(r.model))
    if div is None:
        return {"n_pairs": 0, "n_runs": 0, "n_total": 0, "sentence": None, "table": None, "appendix": False}
    bad = div[div["diverged"].astype(bool)].sort_values(["dataset", "model", "seed", "sampler", "nfe"])
    n_runs = len(bad[["dataset", "model", "seed"]].drop_duplicates())
    out: dict[str, object] = {"n_pairs": len(bad), "n_runs": n_runs, "n_total": len(div), "table": None,
                              "appendix": False}

    def what(r) -> str:
        parts = []
        if r.nonfinite:
            parts.append(f"${fmt_number(100 * r.nonfinite_fraction)}\\,\\%$ non-finite samples")
        if r.exploding:
            parts.append(f"an SWD of {num(r.swd_ratio)} times the data floor")
        return " and ".join(parts)

    if not len(bad):
        out["sentence"] = (f"No run produced non-finite samples and no SWD exceeds ${_factor(factor)}$ times the "
                           f"data floor at any of the ${len(div)}$ run/sampler pairs.")
        return out
    if len(bad) <= SENTENCE_PAIRS:
        items = [f"{model_label(r.model, sampler_floor)} on {tt(r.dataset)} (seed ${r.seed}$) with {tt(r.sampler)} in "
                 f"${r.steps}$ steps ({what(r)}" + (f"; {cause(r)}" if cause(r) else "") + ")"
                 for r in bad.itertuples(index=False)]
        out["sentence"] = (f"Diverged (non-finite samples, or an SWD above ${_factor(factor)}$ times the data "
                           f"floor): {words(items)}.")
        return out
    rows = []
    for r in bad.itertuples(index=False):
        ratio = f"${fmt_number(r.swd_ratio)}$" if np.isfinite(r.swd_ratio) else "--"
        rows.append([tt(r.dataset), model_label(r.model, sampler_floor), f"${r.seed}$", tt(r.sampler),
                     f"${r.steps}$", f"${fmt_number(100 * r.nonfinite_fraction) or '0'}$"
                     if np.isfinite(r.nonfinite_fraction) else "--", ratio, cause(r) or "--"])
    out["table"] = booktabs(["Dataset", "Model", "Seed", "Sampler", "Steps", "Non-finite (\\%)", "SWD / floor",
                             "Known cause"], rows, align="llrlrrrp{4.2cm}")
    out["appendix"] = len(rows) > MAIN_TEXT_ROWS
    models = sorted(set(bad["model"]))
    out["sentence"] = (f"${len(bad)}$ of the ${len(div)}$ run/sampler pairs (${n_runs}$ run{'s' if n_runs != 1 else ''}"
                       f" of ${len(models)}$ model{'s' if len(models) != 1 else ''}) produced non-finite samples or "
                       f"an SWD above ${_factor(factor)}$ times the data floor; Table~\\ref{{tab:diverged}} "
                       f"names every pair.")
    return out


def mixture_headline(summary: pd.DataFrame, sampler: str, steps: int, networks: Sequence[str],
                     sampler_floor: str | None = None) -> dict[str, Any] | None:
    """The networks' mode coverage on the Gaussian mixtures at the main setting, for the abstract: over the mixtures
    (datasets with ``hq_percent``) and the given networks, the lowest and highest mean HQ percentage, whether every
    network covers every mode on every mixture (mean over seeds), the data floors' lowest HQ percentage and the
    sampler floor's (the exact ε* under the same sampler; None without one).  None when no mixture has a network."""
    at = summary[(summary["sampler"] == sampler) & (summary["steps"] == steps)]
    hq = at[(at["metric"] == "hq_percent") & at["model"].isin(list(networks))]
    if hq.empty:
        return None
    covered = at[(at["metric"] == "modes_covered") & at["model"].isin(list(networks))]
    total = at[(at["metric"] == "modes_total")].groupby("dataset")["mean"].first()
    all_modes = bool(len(covered)) and all(
        row["mean"] >= total.get(row["dataset"], float("inf")) for _, row in covered.iterrows())
    floors = at[at["metric"] == "hq_percent"].groupby("dataset")["floor"].first()
    sf = at[(at["metric"] == "hq_percent") & (at["model"] == sampler_floor)] if sampler_floor else at.iloc[:0]
    return {"datasets": sorted(set(hq["dataset"])), "lo": float(hq["mean"].min()), "hi": float(hq["mean"].max()),
            "worst": (str(hq.loc[hq["mean"].idxmin(), "model"]), str(hq.loc[hq["mean"].idxmin(), "dataset"])),
            "all_modes": all_modes, "floor_lo": float(floors.min()) if len(floors) else None,
            "sampler_floor_lo": float(sf["mean"].min()) if len(sf) else None}
