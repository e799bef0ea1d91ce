"""Sentences of the DDPM results section, computed from the summary and training tables.

Every number in a sentence is formatted by :func:`ttdm.report.tables.fmt_number`, so it reads as in the tables, and
every string is LaTeX-ready (names escaped).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ttdm.report.tables import DISTANCE_METRICS, fmt_number, pm_cell, tex_escape

SENTENCE_LABELS = {"swd": "SWD", "mmd": "MMD$^2$", "energy": "energy distance", "w2": "$W_2$"}


def tt(name: object) -> str:
    """A name in typewriter type, escaped: ``\\texttt{swiss\\_roll}``."""
    return f"\\texttt{{{tex_escape(name)}}}"


def num(x: float) -> str:
    """A number in math mode, rounded as in the tables."""
    return f"${fmt_number(x)}$"


def words(items: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def at_setting(summary: pd.DataFrame, sampler: str, steps: int) -> pd.DataFrame:
    """The summary rows of one sampling setting."""
    return summary[(summary["sampler"] == sampler) & (summary["steps"] == steps)]


def ranking(summary: pd.DataFrame, sampler: str, steps: int, metric: str) -> dict[str, pd.DataFrame]:
    """Per dataset, the models at one setting sorted by the mean of ``metric`` (lowest first; ties by name; NaN
    means, from runs whose samples were not finite, left out)."""
    sub = at_setting(summary, sampler, steps)
    sub = sub[(sub["metric"] == metric) & sub["mean"].notna()].sort_values(["dataset", "mean", "model"])
    return {ds: g.reset_index(drop=True) for ds, g in sub.groupby("dataset", sort=True)}


def best_model_claims(summary: pd.DataFrame, sampler: str, steps: int, *, metric: str = "swd") -> dict[str, list]:
    """Per dataset: which model has the lowest ``metric`` and by what factor, and whether the others agree."""
    label = SENTENCE_LABELS[metric]
    claims: dict[str, list[str]] = {}
    for ds, g in ranking(summary, sampler, steps, metric).items():
        best = g.iloc[0]
        pm1 = pm_cell(fmt_number(best["mean"]), fmt_number(best["std"]))
        text = f"On {tt(ds)}, {tt(best['model'])} has the lowest {label} ({pm1}"
        text += f", {num(best['ratio'])} times the data floor)" if np.isfinite(best["ratio"]) else ")"
        if len(g) > 1:
            second = g.iloc[1]
            pm2 = pm_cell(fmt_number(second["mean"]), fmt_number(second["std"]))
            if best["mean"] > 0:
                text += f", {num(second['mean'] / best['mean'])} times lower than {tt(second['model'])} ({pm2})"
            else:
                text += f", ahead of {tt(second['model'])} ({pm2})"
            spread = best["std"] + second["std"]
            if np.isfinite(spread):
                text += ("; the gap exceeds the sum of their standard deviations over seeds"
                         if second["mean"] - best["mean"] > spread else
                         "; the gap is within the sum of their standard deviations over seeds, so the two are not "
                         "separated")
        sentences = [text + "."]
        agree = []
        for other in (m for m in DISTANCE_METRICS if m != metric):
            g2 = ranking(summary, sampler, steps, other).get(ds)
            if g2 is not None and len(g2) > 1 and len(g) > 1:
                if g2.iloc[0]["model"] == best["model"]:
                    agree.append(SENTENCE_LABELS[other])
                else:
                    sentences.append(f"By {SENTENCE_LABELS[other]}, {tt(g2.iloc[0]['model'])} is best instead.")
        if agree:
            sentences.insert(1, f"By {words(agree)}, {tt(best['model'])} is best as well.")
        claims[ds] = sentences
    return claims


def mode_claims(summary: pd.DataFrame, sampler: str, steps: int) -> dict[str, list[str]]:
    """Per mixture dataset and model: modes covered (of the total) and % high-quality samples at one setting."""
    stats = at_setting(summary, sampler, steps).set_index(["dataset", "model", "metric"])
    claims: dict[str, list[str]] = {}
    for ds, model, metric in stats.index:
        if metric != "modes_covered" or (ds, model, "modes_total") not in stats.index:
            continue
        row = stats.loc[(ds, model, metric)]
        total = int(round(stats.loc[(ds, model, "modes_total"), "mean"]))
        if row["mean"] == total:
            text = f"{tt(model)} covers all ${total}$ modes of {tt(ds)} with every seed"
        else:
            text = (f"{tt(model)} covers {num(row['mean'])} of ${total}$ modes of {tt(ds)} on average over "
                    f"${int(row['n_seeds'])}$ seeds")
        if (ds, model, "hq_percent") in stats.index:
            text += f", with {num(stats.loc[(ds, model, 'hq_percent'), 'mean'])}\\,\\% of its samples of high quality"
        claims.setdefault(ds, []).append(text + ".")
    return claims


def nfe_claims(summary: pd.DataFrame, *, main: tuple[str, int] | None = None, metric: str = "swd",
               tol: float = 0.1) -> dict[str, list[str]]:
    """Per dataset and sampler with several step counts: the fewest network evaluations (NFE) at which each
    model's mean ``metric`` is within ``tol`` (relative) of its lowest value over the step counts tried, and how
    many times fewer evaluations that is than the ``main`` (sampler, steps) setting."""
    sub = summary[(summary["metric"] == metric) & summary["mean"].notna()]
    main_nfe = None
    if main is not None:
        nfes = at_setting(sub, *main)["nfe"]
        main_nfe = int(nfes.iloc[0]) if len(nfes) else None
    claims: dict[str, list[str]] = {}
    for (ds, sampler), g in sub.groupby(["dataset", "sampler"], sort=True):
        if g["nfe"].nunique() < 2:
            continue
        parts = []
        for model, gm in g.sort_values("nfe").groupby("model", sort=True):
            reach = int(gm.loc[gm["mean"] <= (1 + tol) * gm["mean"].min(), "nfe"].iloc[0])
            part = f"${reach}$ for {tt(model)}"
            if main_nfe is not None and main_nfe > reach:
                part += f" ({num(main_nfe / reach)} times fewer than {tt(main[0])} with ${main[1]}$ steps)"
            parts.append(part)
        tried = ", ".join(str(n) for n in sorted(g["nfe"].unique()))
        claims.setdefault(ds, []).append(
            f"With {tt(sampler)}, the {SENTENCE_LABELS[metric]} on {tt(ds)} comes within ${round(100 * tol)}\\,\\%$ of "
            f"its lowest value over the NFE tried ({tried}) at an NFE of {words(parts)}.")
    return claims


def training_claims(training: pd.DataFrame) -> list[str]:
    """Training throughput per model (mean over datasets) and, for models trained on common datasets, how many
    times slower each is than the fastest model there."""
    per_model = training.groupby("model", sort=True)
    sps = per_model["steps_per_s_mean"].mean()
    sets = per_model["dataset"].apply(set)
    items = [f"{num(sps[m])} steps/s for {tt(m)} (${len(sets[m])}$ dataset{'s' if len(sets[m]) > 1 else ''})"
             for m in sps.index]
    claims = [f"Averaged over datasets, training runs at {words(items)}."]
    fastest = sps.idxmax()
    for m in sps.index.drop(fastest):
        shared = sorted(sets[m] & sets[fastest])
        if not shared:
            continue
        rows = training[training["dataset"].isin(shared)].set_index("model")
        ratio = rows.loc[[fastest], "steps_per_s_mean"].mean() / rows.loc[[m], "steps_per_s_mean"].mean()
        wall = (num(rows.loc[[m], "wall_s_mean"].mean()), num(rows.loc[[fastest], "wall_s_mean"].mean()))
        comparison = f"{num(ratio)} times slower" if ratio >= 1 else f"{num(1 / ratio)} times faster"
        claims.append(f"On the ${len(shared)}$ datasets both were trained on, {tt(m)} trains {comparison} than "
                      f"{tt(fastest)} (mean wall time per run {wall[0]}\\,s against {wall[1]}\\,s).")
    return claims

