"""Sentences of the DDPM results section, computed from the summary and training tables, and the two rules every
comparison of the report follows: which metric is primary (:data:`PRIMARY`, :func:`primary_metric`) and when a
difference between two means counts (:func:`separated`).

Every number in a sentence is formatted by :func:`ttdm.report.tables.fmt_number`, so it reads as in the tables, and
every string is LaTeX-ready (names escaped).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from ttdm.report.tables import DISTANCE_METRICS, fmt_number, pm_cell, tex_escape

SENTENCE_LABELS = {"swd": "SWD", "mmd": "MMD$^2$", "energy": "energy distance", "w2": "$W_2$",
                   "nll": "test NLL", "hq_percent": "HQ percentage", "modes_covered": "modes covered",
                   "precision": "precision", "recall": "recall", "density": "density", "coverage": "coverage",
                   "sample_logp": "sample log-density", "mode_kl": "mode KL", "nonfinite_fraction": "non-finite share",
                   "fd": "FD on classifier features", "f_precision": "feature precision", "f_recall": "feature recall",
                   "f_density": "feature density", "f_coverage": "feature coverage", "class_kl": "class KL",
                   "classes_covered": "classes covered"}

# ---- the primary metric of each kind of dataset (declared here, once) ----------------------------------------------
# "model": what ranks the models of a dataset (the main table's bold entry, "best model" sentences), used where the
# dataset has a test likelihood of at least two models; "sampler": what ranks sampler settings and models at one
# setting (the NFE figures and table, "best at this setting" sentences, and the model ranking without likelihoods).
# A dataset is a "mixture" when its metrics include the HQ percentage (a Gaussian mixture with known modes), and
# "classified" when they include the FD on its classifier's features (labelled images: the digits).
PRIMARY = {"mixture": {"model": "nll", "sampler": "hq_percent"},
           "classified": {"model": "nll", "sampler": "fd"},
           "other": {"model": "nll", "sampler": "swd"}}
# metrics where higher is better; every other metric (distances, NLL, mode KL, non-finite share) is lower-is-better
HIGHER_IS_BETTER = frozenset({"hq_percent", "modes_covered", "precision", "recall", "density", "coverage",
                              "sample_logp", "f_precision", "f_recall", "f_density", "f_coverage", "classes_covered"})


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is better (HQ %, modes covered, precision, recall, density, coverage,
    sample log-density); False for the distances, the NLL, the mode KL and the non-finite share."""
    return metric in HIGHER_IS_BETTER


def dataset_kind(metrics: Iterable[str]) -> str:
    """"mixture" when the dataset's metrics include ``hq_percent`` (its modes are known), "classified" when they
    include ``fd`` (a classifier's features), else "other"."""
    metrics = set(metrics)
    return "mixture" if "hq_percent" in metrics else "classified" if "fd" in metrics else "other"


def primary_metric(metrics: Iterable[str], *, level: str = "sampler", likelihood: bool = False) -> str:
    """The primary metric of a dataset whose results hold ``metrics``.

    ``level="sampler"`` (NFE figures and tables, comparisons at one sampler setting): ``PRIMARY[kind]["sampler"]``
    (HQ % on mixtures, FD on classified images, SWD elsewhere), or SWD when that metric is missing. ``level="model"``: the test NLL when
    ``likelihood`` (the dataset has test NLLs to compare), else the sampler-level metric.
    """
    metrics = set(metrics)
    entry = PRIMARY[dataset_kind(metrics)]
    if level == "model" and likelihood:
        return entry["model"]
    if level not in ("model", "sampler"):
        raise ValueError(f"level={level!r}: 'model' or 'sampler'")
    return entry["sampler"] if entry["sampler"] in metrics else "swd"


# ---- the spread rule ----------------------------------------------------------------------------------------------
def standard_error(std: float | None, n: float | None) -> float:
    """The standard error of a mean of ``n`` values with sample standard deviation ``std``: std / √n; NaN when
    ``std`` is missing (one seed) or ``n`` < 1."""
    if std is None or n is None or not np.isfinite(std) or not np.isfinite(n) or n < 1:
        return float("nan")
    return float(std) / math.sqrt(float(n))


def separated(mean_a: float, se_a: float, mean_b: float, se_b: float) -> bool:
    """The report's spread rule: two means differ only when their gap exceeds the combined standard error,

        |mean_a − mean_b| > sqrt(se_a² + se_b²),    se = s / √n

    (s the sample standard deviation over the n seeds of a mean, :func:`standard_error`). A missing standard error
    (NaN: a mean of one seed) means the gap cannot be judged, so the two are *not separated* (False); pass 0 for an
    exact reference value (a floor). Every comparative sentence and bold entry of the report uses this rule; a
    sentence about two means that are not separated says "not separated".
    """
    values = (mean_a, se_a, mean_b, se_b)
    if any(v is None or not np.isfinite(v) for v in values):
        return False
    return bool(abs(mean_a - mean_b) > math.hypot(se_a, se_b))


def row_se(row: pd.Series | dict) -> float:
    """The standard error of a summary row (columns std and n_seeds; a ``se`` column when present)."""
    get = row.get if hasattr(row, "get") else row.__getitem__
    se = get("se", None)
    if se is not None and np.isfinite(se):
        return float(se)
    return standard_error(get("std", None), get("n_seeds", None))


def tt(name: object) -> str:
    """A name in typewriter type, escaped: ``\\texttt{swiss\\_roll}``."""
    return f"\\texttt{{{tex_escape(name)}}}"


def num(x: float) -> str:
    """A number in math mode, rounded as in the tables."""
    return f"${fmt_number(x)}$"


def words(items: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


SAMPLER_FLOOR_LABEL = "sampler floor"  # how the sampler floor model is named in tables, figures and sentences
DATA_FLOOR_LABEL = "data floor"  # held-out true samples against the test set


def model_label(model: object, sampler_floor: str | None = None) -> str:
    """A model's name as the paper prints it: "sampler floor" for the sampler floor model, else ``\\texttt{name}``."""
    return SAMPLER_FLOOR_LABEL if sampler_floor is not None and model == sampler_floor else tt(model)


def at_setting(summary: pd.DataFrame, sampler: str, steps: int) -> pd.DataFrame:
    """The summary rows of one sampling setting."""
    return summary[(summary["sampler"] == sampler) & (summary["steps"] == steps)]


def ranking(summary: pd.DataFrame, sampler: str, steps: int, metric: str, *,
            exclude: Iterable[str] = ()) -> dict[str, pd.DataFrame]:
    """Per dataset, the models at one setting sorted best first by the mean of ``metric`` (lowest first, highest
    first for :func:`higher_is_better` metrics; ties by name). NaN means (runs whose samples were not finite) and the
    models of ``exclude`` (the sampler floor: a reference, not a contender) are left out."""
    sub = at_setting(summary, sampler, steps)
    sub = sub[(sub["metric"] == metric) & sub["mean"].notna() & ~sub["model"].isin(list(exclude))]
    sub = sub.sort_values(["dataset", "mean", "model"], ascending=[True, not higher_is_better(metric), True])
    return {ds: g.reset_index(drop=True) for ds, g in sub.groupby("dataset", sort=True)}


def sampler_primaries(summary: pd.DataFrame) -> dict[str, str]:
    """Per dataset, its sampler-level primary metric (:func:`primary_metric`): HQ % on mixtures, SWD elsewhere."""
    return {ds: primary_metric(g["metric"]) for ds, g in summary.groupby("dataset", sort=True)}


def model_primaries(summary: pd.DataFrame, sampler: str, steps: int, *,
                    exclude: Iterable[str] = ()) -> dict[str, str]:
    """Per dataset at one setting, its model-level primary metric: the test NLL where at least two models (outside
    ``exclude``) have one (rows of metric "nll", :func:`ttdm.report.per_run.add_likelihood`), else the sampler-level
    primary metric."""
    sub = at_setting(summary, sampler, steps)
    sub = sub[~sub["model"].isin(list(exclude))]
    out = {}
    for ds, g in sub.groupby("dataset", sort=True):
        nll = g[(g["metric"] == "nll") & g["mean"].notna()]
        out[ds] = primary_metric(g["metric"], level="model", likelihood=nll["model"].nunique() >= 2)
    return out


def pm_text(row: pd.Series) -> str:
    """"$m \\pm s$" of a summary row, rounded as in the tables."""
    from ttdm.report.tables import fmt_spread

    return pm_cell(fmt_number(row["mean"]), fmt_spread(row["std"], row["mean"]))


def gap_text(best: pd.Series, other: pd.Series, metric: str, other_label: str) -> str:
    """How ``best`` (a summary row) leads ``other`` on ``metric``, by the spread rule (:func:`separated`): the gap as
    a factor (positive distances), a difference (NLL, HQ %) or "ahead of", or "not separated"."""
    pm2 = pm_text(other)
    if not separated(best["mean"], row_se(best), other["mean"], row_se(other)):
        return (f"; {other_label} ({pm2}) is not separated from it (the gap is within their combined standard "
                f"error)")
    gap = abs(other["mean"] - best["mean"])
    if metric == "nll":
        lead = f"{num(gap)} nats/dim below {other_label} ({pm2})"
    elif metric == "hq_percent":
        lead = f"{num(gap)} percentage points above {other_label} ({pm2})"
    elif not higher_is_better(metric) and best["mean"] > 0:
        lead = f"{num(other['mean'] / best['mean'])} times lower than {other_label} ({pm2})"
    else:
        lead = f"ahead of {other_label} ({pm2})"
    return f", {lead}, beyond their combined standard error"


def best_model_claims(summary: pd.DataFrame, sampler: str, steps: int, *, metric: str | None = None,
                      sampler_floor: str | None = None) -> dict[str, list[str]]:
    """Per dataset: which model is best by the primary metric (:func:`model_primaries`, or ``metric``) at one
    setting, by how much and whether the gap to the runner-up is separated (:func:`separated`); whether the distances
    agree; and how far the best model stays from the sampler floor (``sampler_floor``: its model name, a reference
    with a standard error of zero). Sampler-floor rows never rank."""
    exclude = [sampler_floor] if sampler_floor else []
    primaries = model_primaries(summary, sampler, steps, exclude=exclude)
    stats = at_setting(summary, sampler, steps).set_index(["dataset", "model", "metric"])
    claims: dict[str, list[str]] = {}
    for ds, primary in primaries.items():
        chosen = metric or primary
        g = ranking(summary, sampler, steps, chosen, exclude=exclude).get(ds)
        if g is None:
            continue
        label, best = SENTENCE_LABELS.get(chosen, tex_escape(chosen)), g.iloc[0]
        text = (f"On {tt(ds)}, {tt(best['model'])} has the {'highest' if higher_is_better(chosen) else 'lowest'} "
                f"{label} ({pm_text(best)}")
        if np.isfinite(best.get("ratio", np.nan)):
            text += f", {num(best['ratio'])} times the data floor"
        elif np.isfinite(best.get("floor", np.nan)):
            text += f"; data floor {num(best['floor'])}"
        text += ")"
        if len(g) > 1:
            text += gap_text(best, g.iloc[1], chosen, tt(g.iloc[1]["model"]))
        sentences = [text + "."]
        agree = []
        for other in (m for m in DISTANCE_METRICS + ("hq_percent",) if m != chosen):
            g2 = ranking(summary, sampler, steps, other, exclude=exclude).get(ds)
            if g2 is None or len(g2) < 2 or len(g) < 2:
                continue
            top = g2.iloc[0]
            if top["model"] == best["model"]:
                agree.append(SENTENCE_LABELS[other])
                continue
            ours = g2[g2["model"] == best["model"]]
            apart = len(ours) and separated(top["mean"], row_se(top), ours["mean"].iloc[0], row_se(ours.iloc[0]))
            sentences.append(f"By {SENTENCE_LABELS[other]}, {tt(top['model'])} is best instead"
                             + ("." if apart else f", not separated from {tt(best['model'])}."))
        if agree:
            sentences.insert(1, f"By {words(agree)}, {tt(best['model'])} is best as well.")
        key = (ds, sampler_floor, chosen)
        if sampler_floor and key in stats.index and np.isfinite(stats.loc[key, "mean"]):
            floor_row = stats.loc[key].copy()
            floor_row["se"] = 0.0
            apart = separated(best["mean"], row_se(best), floor_row["mean"], 0.0)
            sentences.append(f"The sampler floor (the exact noise predictor, same sampler) reaches "
                             f"{pm_cell(fmt_number(floor_row['mean']))}; {tt(best['model'])} is "
                             + ("separated from it." if apart else "not separated from it."))
        claims[ds] = sentences
    return claims


def mode_claims(summary: pd.DataFrame, sampler: str, steps: int, *,
                sampler_floor: str | None = None) -> dict[str, list[str]]:
    """Per mixture dataset and model: modes covered (of the total) and % high-quality samples at one setting."""
    stats = at_setting(summary, sampler, steps).set_index(["dataset", "model", "metric"])
    claims: dict[str, list[str]] = {}
    for ds, model, metric in stats.index:
        if metric != "modes_covered" or (ds, model, "modes_total") not in stats.index:
            continue
        row = stats.loc[(ds, model, metric)]
        total = int(round(stats.loc[(ds, model, "modes_total"), "mean"]))
        name = "the sampler floor" if model == sampler_floor else tt(model)
        if row["mean"] == total:
            text = f"{name} covers all ${total}$ modes of {tt(ds)} with every seed"
        else:
            text = (f"{name} covers {num(row['mean'])} of ${total}$ modes of {tt(ds)} on average over "
                    f"${int(row['n_seeds'])}$ seeds")
        if (ds, model, "hq_percent") in stats.index:
            text += f", with {num(stats.loc[(ds, model, 'hq_percent'), 'mean'])}\\,\\% of its samples of high quality"
        claims.setdefault(ds, []).append(text + ".")
    return claims


def nfe_reach(summary: pd.DataFrame, *, metric: str | None = None, tol: float = 0.1) -> pd.DataFrame:
    """Per dataset × sampler with several step counts × model: the fewest NFE at which the mean of the dataset's
    sampler-level primary metric (:func:`sampler_primaries`; or ``metric``) comes within ``tol`` (relative) of its
    best value over the NFE tried, or is not separated from it (:func:`separated`; only where both standard errors
    are known, so a single-seed run such as the sampler floor follows the tolerance alone). Columns dataset,
    sampler, model, metric, reach, tried (the NFE tried, comma-separated)."""
    primaries = sampler_primaries(summary)
    rows = []
    for ds, gds in summary.groupby("dataset", sort=True):
        m = metric or primaries[ds]
        hib = higher_is_better(m)
        sub = gds[(gds["metric"] == m) & gds["mean"].notna()]
        for sampler, g in sub.groupby("sampler", sort=True):
            if g["nfe"].nunique() < 2:
                continue
            tried = ", ".join(str(n) for n in sorted(g["nfe"].unique()))
            for model, gm in g.sort_values("nfe").groupby("model", sort=True):
                best = gm.loc[gm["mean"].idxmax() if hib else gm["mean"].idxmin()]
                close = (gm["mean"] >= best["mean"] - tol * abs(best["mean"])) if hib else (
                    gm["mean"] <= best["mean"] + tol * abs(best["mean"]))
                # not separated from the best: only where both spreads are known (one seed: the tolerance alone)
                same = [np.isfinite(row_se(r)) and np.isfinite(row_se(best))
                        and not separated(r["mean"], row_se(r), best["mean"], row_se(best)) for _, r in gm.iterrows()]
                ok = close.to_numpy() | np.asarray(same, dtype=bool)
                rows.append({"dataset": ds, "sampler": sampler, "model": model, "metric": m,
                             "reach": int(gm["nfe"].to_numpy()[ok][0]), "tried": tried})
    return pd.DataFrame(rows, columns=["dataset", "sampler", "model", "metric", "reach", "tried"])


def nfe_claims(summary: pd.DataFrame, *, main: tuple[str, int] | None = None, metric: str | None = None,
               tol: float = 0.1, sampler_floor: str | None = None) -> dict[str, list[str]]:
    """Per dataset and sampler with several step counts: the fewest network evaluations (NFE) at which each
    model's primary metric comes within ``tol`` of its best value over the step counts tried, or is not separated
    from it (:func:`nfe_reach`), and how many times fewer evaluations that is than the ``main`` (sampler, steps)."""
    reach = nfe_reach(summary, metric=metric, tol=tol)
    main_nfe = None
    if main is not None:
        nfes = at_setting(summary, *main)["nfe"]
        main_nfe = int(nfes.iloc[0]) if len(nfes) else None
    claims: dict[str, list[str]] = {}
    for (ds, sampler), g in reach.groupby(["dataset", "sampler"], sort=True):
        parts = []
        for r in g.itertuples(index=False):
            part = f"${r.reach}$ for {model_label(r.model, sampler_floor)}"
            if main_nfe is not None and main_nfe > r.reach:
                part += f" ({num(main_nfe / r.reach)} times fewer than {tt(main[0])} with ${main[1]}$ steps)"
            parts.append(part)
        label = SENTENCE_LABELS.get(g["metric"].iloc[0], tex_escape(g["metric"].iloc[0]))
        claims.setdefault(ds, []).append(
            f"With {tt(sampler)}, the {label} on {tt(ds)} comes within ${round(100 * tol)}\\,\\%$ of its best value "
            f"over the NFE tried ({g['tried'].iloc[0]}), or is not separated from it, at an NFE of {words(parts)}.")
    return claims


def training_claims(training: pd.DataFrame) -> list[str]:
    """Training throughput per model (mean over datasets) and, for models trained on common datasets, how many
    times slower each is than the fastest model there, when the spread rule separates the two (:func:`separated`,
    standard errors over seeds combined over the shared datasets)."""
    per_model = training.groupby("model", sort=True)
    sps = per_model["steps_per_s_mean"].mean()
    sets = per_model["dataset"].apply(set)
    items = [f"{num(sps[m])} steps/s for {tt(m)} (${len(sets[m])}$ dataset{'s' if len(sets[m]) > 1 else ''})"
             for m in sps.index]
    claims = [f"Averaged over datasets, training runs at {words(items)}."]
    fastest = sps.idxmax()

    def mean_se(rows: pd.DataFrame) -> tuple[float, float]:
        se = [standard_error(s, n) for s, n in zip(rows["steps_per_s_std"], rows["n_seeds"])]
        return float(rows["steps_per_s_mean"].mean()), float(math.sqrt(np.sum(np.square(se))) / len(se))

    for m in sps.index.drop(fastest):
        shared = sorted(sets[m] & sets[fastest])
        if not shared:
            continue
        rows = training[training["dataset"].isin(shared)].set_index("model")
        (mean_f, se_f), (mean_m, se_m) = mean_se(rows.loc[[fastest]]), mean_se(rows.loc[[m]])
        wall = (num(rows.loc[[m], "wall_s_mean"].mean()), num(rows.loc[[fastest], "wall_s_mean"].mean()))
        if separated(mean_f, se_f, mean_m, se_m):
            ratio = mean_f / mean_m
            comparison = f"{num(ratio)} times slower" if ratio >= 1 else f"{num(1 / ratio)} times faster"
            claims.append(f"On the ${len(shared)}$ datasets both were trained on, {tt(m)} trains {comparison} than "
                          f"{tt(fastest)} (mean wall time per run {wall[0]}\\,s against {wall[1]}\\,s).")
        else:
            claims.append(f"On the ${len(shared)}$ datasets both were trained on, the throughputs of {tt(m)} and "
                          f"{tt(fastest)} are not separated (mean wall time per run {wall[0]}\\,s against "
                          f"{wall[1]}\\,s).")
    return claims


def _finite(value: object) -> bool:
    try:
        return math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def missed_targets(targets: pd.DataFrame | None, noun: str = "runs") -> list[str]:
    """The targets of a study's table (columns text, met, value, threshold; model and dataset when it has them) that
    are not met, one phrase per target: what, for which model on which dataset, the value against the limit.  A
    target missed by several rows is one phrase that names them (``noun``: what they are) and gives the range of
    their values."""
    if targets is None or not len(targets):
        return []
    out = []
    for text, group in targets[targets["met"] != True].groupby("text", sort=False):  # noqa: E712
        whom = [f"{tt(r['model'])} on {tt(r['dataset'])}" for _, r in group.iterrows()
                if isinstance(r.get("model"), str) and r.get("model") and isinstance(r.get("dataset"), str)]
        values = [float(v) for v in group["value"] if _finite(v)]
        numbers = (f"${fmt_number(min(values))}$" if len(values) == 1 else
                   f"${fmt_number(min(values))}$ to ${fmt_number(max(values))}$" if values else "")
        limit = group["threshold"].iloc[0] if "threshold" in group else None
        if numbers and _finite(limit):
            numbers += f" against ${fmt_number(float(limit))}$"
        if len(group) == 1:
            out.append(text + (f" for {whom[0]}" if whom else "") + (f" ({numbers})" if numbers else ""))
        else:
            names = f"{', '.join(whom)}: " if whom else ""
            out.append(f"{text} for {len(group)} {noun} ({names}{numbers})")
    return out


def target_summary(targets: pd.DataFrame | None, label: str, noun: str = "runs") -> list[str]:
    """One sentence over a study's targets: how many are met (Table ``label``), and which are not
    (:func:`missed_targets`); [] without targets."""
    if targets is None or not len(targets):
        return []
    missed = missed_targets(targets, noun)
    met = int((targets["met"] == True).sum())  # noqa: E712
    text = f"{met} of {len(targets)} targets are met (Table~\\ref{{{label}}})"
    return [text + ("; not met: " + "; ".join(missed) if missed else "") + "."]


def n_missed(targets: pd.DataFrame | None) -> int:
    """How many rows of a study's targets table are not met (:func:`missed_targets` groups them by target)."""
    return 0 if targets is None else int((targets["met"] != True).sum())  # noqa: E712
