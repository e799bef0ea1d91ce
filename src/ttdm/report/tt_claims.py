"""Sentences, findings and small tables of the paper's tensor-train section, computed from the TT tables (and the
loss landscapes).

Every comparative word (lower, higher, better, worse, first) follows the report's spread rule through
:func:`ttdm.report.tt_targets.compare` (:func:`ttdm.report.claims.separated`: a gap counts only beyond the combined
standard error sqrt(se1² + se2²) of the two means; otherwise "not separated"); a comparison of a mean of one seed says
"one seed: no spread". Instead of one sentence per optimizer or dataset, each subsection gets 2-4 findings (the
largest effect, the best trade-off, what failed) beside its table. Every number is formatted by
:func:`ttdm.report.tables.fmt_number`, as in the tables; names are LaTeX-escaped.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from ttdm.io import load_json
from ttdm.report.claims import SENTENCE_LABELS, higher_is_better, primary_metric
from ttdm.report.tables import booktabs, fmt_number, fmt_spread, pm_cell, tex_escape
from ttdm.report.tt_targets import PRIOR_TEXT, Verdict, compare

PathLike = str | os.PathLike
RANK_TOL = 0.01  # a rank "saturates" the validation loss when it is within this fraction of the best


def _tt(name: object) -> str:
    return f"\\texttt{{{tex_escape(name)}}}"


def _num(x: float, sig: int = 3) -> str:
    return f"${fmt_number(x, sig=sig)}$"


def _pm(mean: float, std: float) -> str:
    return pm_cell(fmt_number(mean), fmt_spread(std, mean)) if np.isfinite(mean) else "--"


def _stat(row: pd.Series, metric: str) -> tuple[float, float, float]:
    """(mean, std, n_seeds) of ``metric`` in an aggregated row (columns METRIC_mean, METRIC_std, n_seeds)."""
    mean = row.get(f"{metric}_mean", np.nan)
    return (float(mean) if pd.notna(mean) else np.nan, float(row.get(f"{metric}_std", np.nan)),
            float(row.get("n_seeds", 1)))


def _spread_note(v: Verdict) -> str:
    """How a gap stands under the spread rule: "beyond their combined standard error", "not separated" or "one
    seed: no spread"."""
    if v.one_seed:
        return "one seed: no spread"
    return "beyond their combined standard error" if v.word in ("better", "worse") else "not separated"


def _verdict_phrase(v: Verdict) -> str:
    """The TT against the network: "the TT is better beyond their combined standard error", "not separated (within
    their combined standard error)", "the TT is worse (one seed: no spread)"."""
    if v.word == "not separated":
        return "not separated (within their combined standard error)"
    if not v.word:
        return "not comparable"
    return f"the TT is {v.word} " + ("(one seed: no spread)" if v.one_seed else "beyond their combined standard error")


def _label(metric: str) -> str:
    return SENTENCE_LABELS.get(metric, metric)


def _words(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# ---- sample quality against the networks ------------------------------------------------------------------------
def comparison_metric(g: pd.DataFrame) -> str:
    """The primary metric of one dataset's comparison rows (:func:`ttdm.report.claims.primary_metric`, model level):
    the test NLL where at least two models have one, else the % high-quality samples on mixtures, else the SWD."""
    have = {m for m in ("swd", "hq_percent", "nll") if f"{m}_mean" in g.columns and g[f"{m}_mean"].notna().any()}
    n_nll = int(g["nll_mean"].notna().sum()) if "nll_mean" in g.columns else 0
    return primary_metric(have or {"swd"}, level="model", likelihood=n_nll >= 2)


def _best(g: pd.DataFrame, metric: str) -> pd.Series:
    g = g[g[f"{metric}_mean"].notna()]
    return g.sort_values([f"{metric}_mean", "model"], ascending=[not higher_is_better(metric), True]).iloc[0]


def best_pairs(comp: pd.DataFrame) -> Iterable[tuple[str, str, pd.Series, pd.Series]]:
    """(dataset, primary metric, best network, best TT model) by the mean of the dataset's primary metric
    (:func:`comparison_metric`), for every dataset that has both."""
    for ds, g in comp.groupby("dataset", sort=False):
        metric = comparison_metric(g)
        nets, tts = g[(g["arch"] != "tt") & g[f"{metric}_mean"].notna()], g[(g["arch"] == "tt")
                                                                            & g[f"{metric}_mean"].notna()]
        if len(nets) and len(tts):
            yield ds, metric, _best(nets, metric), _best(tts, metric)


def _verdict(tt: pd.Series, net: pd.Series, metric: str) -> Verdict:
    return compare(_stat(tt, metric), _stat(net, metric), higher_is_better=higher_is_better(metric))


def comparison_claims(comp: pd.DataFrame) -> list[str]:
    """Per dataset: the best TT model against the best network on the primary metric (spread rule), parameters and
    time (the sentences :func:`comparison_table` replaces)."""
    out = []
    for ds, metric, net, best in best_pairs(comp):
        v = _verdict(best, net, metric)
        out.append(
            f"On {tex_escape(ds)} the best TT model, {_tt(best['model'])}, against the best network, "
            f"{_tt(net['model'])}, by {_label(metric)} ({_pm(*_stat(best, metric)[:2])} against "
            f"{_pm(*_stat(net, metric)[:2])}): {_verdict_phrase(v)}, with ${int(best['n_params_mean'])}$ parameters "
            f"against ${int(net['n_params_mean'])}$ and ${fmt_number(best['wall_s_mean'])}$~s of training against "
            f"${fmt_number(net['wall_s_mean'])}$~s.")
    return out


def comparison_table(comp: pd.DataFrame) -> str | None:
    """Per dataset: the best TT model and the best network by the primary metric (mean ± std over seeds), the
    spread-rule verdict of the TT against the network, and the TT's SWD (secondary), parameters and training time
    as multiples of the network's."""
    rows = []
    for ds, metric, net, best in best_pairs(comp):

        def ratio(col: str) -> str:
            return f"${fmt_number(best[col] / net[col])}$" if net[col] and net[col] > 0 else "--"
        rows.append([_tt(ds), _label(metric), _tt(best["model"]), _pm(*_stat(best, metric)[:2]), _tt(net["model"]),
                     _pm(*_stat(net, metric)[:2]), _verdict(best, net, metric).text or "--", ratio("swd_mean"),
                     ratio("n_params_mean"), ratio("wall_s_mean")])
    if not rows:
        return None
    return booktabs(["Dataset", "Metric", "Best TT", "Mean $\\pm$ std", "Best network", "Mean $\\pm$ std",
                     "TT vs network", "SWD ratio",
                     "Param.\\ ratio", "Time ratio"], rows, align="lllrlrlrrr")


# ---- convergence ------------------------------------------------------------------------------------------------
def _conv_stat(r: pd.Series, col: str) -> tuple[float, float, float]:
    return float(r[col]), float(r.get(f"{col}_std", np.nan)), float(r.get("n_seeds", 1))


def convergence_claims(conv: pd.DataFrame) -> list[str]:
    """2-4 findings on the optimizers of the base TT (the table tt_convergence lists every one): which is first to
    the common validation-loss target and on how many datasets that lead is beyond the spread, the largest lead,
    which attains the lowest loss, and which never reach the target."""
    out: list[str] = []
    leads = []  # (dataset, fastest, runner-up, verdict)
    for ds, g in conv.groupby("dataset", sort=False):
        reached = g[g["time_to_target"].notna()].sort_values("time_to_target")
        if len(reached) >= 2:
            f, s = reached.iloc[0], reached.iloc[1]
            leads.append((ds, f, s, compare(_conv_stat(f, "time_to_target"), _conv_stat(s, "time_to_target"),
                                            higher_is_better=False)))
    if leads:
        firsts = pd.Series([f["optimizer"] for _, f, _, _ in leads]).value_counts()
        top = str(firsts.index[0])
        sep = sum(1 for _, f, _, v in leads if f["optimizer"] == top and v.word == "better" and not v.one_seed)
        one = any(v.one_seed for *_, v in leads)
        out.append(f"{_tt(top)} reaches the common validation-loss target first on ${int(firsts.iloc[0])}$ of the "
                   f"${len(leads)}$ datasets" + (" (one seed: no spread)." if one else
                                                 f"; its lead over the runner-up is beyond the combined standard "
                                                 f"error on ${sep}$ of them."))
        ds, f, s, v = max(leads, key=lambda x: x[2]["time_to_target"] / max(x[1]["time_to_target"], 1e-12))
        out.append(f"The largest lead is on {_tt(ds)}: {_tt(f['optimizer'])} in {_num(f['time_to_target'])}~s "
                   f"against {_num(s['time_to_target'])}~s for {_tt(s['optimizer'])} "
                   f"(${fmt_number(s['time_to_target'] / max(f['time_to_target'], 1e-12))}\\times$; "
                   f"{_spread_note(v)}).")
    lows = []
    for ds, g in conv.groupby("dataset", sort=False):
        g = g.sort_values("best_val_loss")
        if len(g) >= 2:
            lows.append((ds, g.iloc[0], compare(_conv_stat(g.iloc[0], "best_val_loss"),
                                                _conv_stat(g.iloc[1], "best_val_loss"))))
    if lows:
        counts = pd.Series([b["optimizer"] for _, b, _ in lows]).value_counts()
        top = str(counts.index[0])
        verdicts = [v for _, b, v in lows if b["optimizer"] == top]
        if any(v.one_seed for v in verdicts):
            tail = " (one seed: no spread)."
        else:
            tail = (f"; beyond the combined standard error of the runner-up on "
                    f"${sum(v.word == 'better' for v in verdicts)}$ of them.")
        out.append(f"{_tt(top)} attains the lowest validation loss on ${int(counts.iloc[0])}$ of the "
                   f"${len(lows)}$ datasets" + tail)
    never = conv[conv["time_to_target"].isna()]
    if len(never):
        out.append("Not every seed reaches the target within its budget: " + _words(
            [f"{_tt(r.optimizer)} on {_tt(r.dataset)}" for r in never.itertuples(index=False)]) + ".")
    return out[:4]


# ---- rank and basis size ------------------------------------------------------------------------------------------
def _saturation(h: pd.DataFrame, tol: float = RANK_TOL) -> pd.Series:
    """The row of the smallest rank whose mean validation loss is within ``tol`` of the best of ``h``."""
    h = h.sort_values("rank")
    return h[h["val_loss_mean"] <= h["val_loss_mean"].min() * (1 + tol)].iloc[0]


def rank_table(g: pd.DataFrame, tol: float = RANK_TOL) -> str | None:
    """Per dataset, optimizer and basis size with several ranks: the ranks tried, the validation loss at the
    smallest and the largest rank, the rank from which it is within ``tol`` of its best, and that TT's parameters
    and SWD (the full grid: Table tt_grid)."""
    rows = []
    for (ds, opt, deg), h in g.groupby(["dataset", "optimizer", "degree"], sort=True):
        if h["rank"].nunique() < 2:
            continue
        h = h.sort_values("rank")
        sat = _saturation(h, tol)
        rows.append([_tt(ds), _tt(opt), f"${int(deg)}$", ", ".join(str(int(r)) for r in h["rank"]),
                     _num(h["val_loss_mean"].iloc[0], 4), _num(h["val_loss_mean"].iloc[-1], 4),
                     f"${int(sat['rank'])}$", f"${int(sat['n_params_mean'])}$",
                     _num(sat["swd_mean"]) if pd.notna(sat["swd_mean"]) else "--"])
    if not rows:
        return None
    return booktabs(["Dataset", "Optimizer", "$n$", "Ranks", "Val.\\ loss, lowest $r$", "highest $r$",
                     f"$r$ within ${int(tol * 100)}\\,\\%$", "Parameters", "SWD"], rows, align="lllrrrrrr")


def rank_claims(g: pd.DataFrame, tol: float = RANK_TOL) -> list[str]:
    """2-4 findings on the rank x basis-size grid: the largest effect of the rank, the best trade-off (the smallest
    TT within ``tol`` of the best validation loss) and from which rank the loss saturates."""
    groups = [(key, h.sort_values("rank")) for key, h in g.groupby(["dataset", "optimizer", "degree"], sort=True)
              if h["rank"].nunique() >= 2]
    if not groups:
        return []
    out = []

    def effect(item):
        h = item[1]
        return (h["val_loss_mean"].iloc[0] - h["val_loss_mean"].iloc[-1]) / h["val_loss_mean"].iloc[0]

    (ds, opt, deg), h = max(groups, key=lambda it: abs(effect(it)))
    lo, hi = h.iloc[0], h.iloc[-1]
    v = compare(_stat(hi, "val_loss"), _stat(lo, "val_loss"))
    size = abs(effect(((ds, opt, deg), h)))
    if size < tol:
        out.append(f"From the smallest to the largest rank tried, the validation loss changes by less than "
                   f"${int(tol * 100)}\\,\\%$ for every optimizer and basis size (largest change: "
                   f"${fmt_number(100 * size)}\\,\\%$, {_tt(opt)} with $n = {int(deg)}$ on {_tt(ds)}; "
                   f"{_spread_note(v)}).")
    else:
        direction = "lowers" if hi["val_loss_mean"] < lo["val_loss_mean"] else "raises"
        out.append(f"The rank matters most with {_tt(opt)} and $n = {int(deg)}$ on {_tt(ds)}: going from $r = "
                   f"{int(lo['rank'])}$ to $r = {int(hi['rank'])}$ {direction} the validation loss from "
                   f"{_num(lo['val_loss_mean'], 4)} to {_num(hi['val_loss_mean'], 4)} "
                   f"(${fmt_number(100 * size)}\\,\\%$; {_spread_note(v)}).")
    for ds in dict.fromkeys(k[0] for k, _ in groups):
        d = g[g["dataset"] == ds]
        best = d["val_loss_mean"].min()
        ok = d[d["val_loss_mean"] <= best * (1 + tol)].sort_values(["n_params_mean", "rank"])
        if len(ok):
            r = ok.iloc[0]
            one = "n_seeds" not in d.columns or bool((d["n_seeds"] <= 1).any())
            out.append(f"Best trade-off on {_tt(ds)}: the smallest TT within ${int(tol * 100)}\\,\\%$ of the best "
                       f"validation loss ({_num(best, 4)}) is {_tt(r['optimizer'])}, $n = {int(r['degree'])}$, "
                       f"$r = {int(r['rank'])}$, with ${int(r['n_params_mean'])}$ parameters"
                       + (" (one seed: no spread)." if one else "."))
    sats = [int(_saturation(h, tol)["rank"]) for _, h in groups]
    tops = [int(h["rank"].max()) for _, h in groups]
    early = sum(s < t for s, t in zip(sats, tops))
    n1 = bool((g["n_seeds"] <= 1).any()) if "n_seeds" in g.columns else True
    out.append(f"The loss is within ${int(tol * 100)}\\,\\%$ of its best before the largest rank tried for "
               f"${early}$ of the ${len(groups)}$ optimizer and basis combinations"
               + (" (one seed: no spread)." if n1 else "."))
    return out[:4]


# ---- isolation ----------------------------------------------------------------------------------------------------
def _iso_stat(r: pd.Series, col: str = "iso_error") -> tuple[float, float, float]:
    return float(r[col]), float(r.get(f"{col}_std", np.nan)), float(r.get("n_seeds", 1))


def isolation_claims(iso: pd.DataFrame) -> list[str]:
    """2-4 findings of the ε* fits: the most accurate model against the runner-up, how the TT's error depends on
    its rank, and, per model class, how much the noisy DDPM target adds (the DDPM-trained model's error over the
    direct fit's)."""
    out = []
    for ds, g in iso.groupby("dataset", sort=False):
        g = g.sort_values("iso_error")
        best = g.iloc[0]
        text = (f"Fitted to $\\epsilon^*$ on {_tt(ds)}, {_tt(best['model'])} is the most accurate (relative error "
                f"{_num(best['iso_error'])} with ${int(best['n_params'])}$ parameters)")
        if len(g) >= 2:
            second = g.iloc[1]
            v = compare(_iso_stat(best), _iso_stat(second))
            text += f"; the runner-up {_tt(second['model'])} has {_num(second['iso_error'])} ({_spread_note(v)})"
        out.append(text + ".")
        spans = []
        for opt, h in g[g["arch"] == "tt"].groupby("optimizer", sort=True):
            if h["rank"].nunique() >= 2:
                lo, hi = h["iso_error"].min(), h["iso_error"].max()
                spans.append(f"{_tt(opt)} {_num(lo)} to {_num(hi)}"
                             + (" (less than $5\\,\\%$ apart)" if hi <= 1.05 * lo else ""))
        if spans:
            ranks = ", ".join(str(int(r)) for r in sorted(set(g.loc[g["arch"] == "tt", "rank"].dropna())))
            out.append(f"Over the ranks {ranks}, the TT's error against $\\epsilon^*$ ranges " + "; ".join(spans)
                       + ".")
    parts = []
    for arch, h in iso[iso["ddpm_error"].notna()].groupby("arch", sort=True):
        ratio = float((h["ddpm_error"] / h["iso_error"]).median())
        parts.append(f"{_tt(arch)} ${fmt_number(ratio)}\\times$")
    if parts:
        out.append("Trained on the DDPM loss instead, the error against $\\epsilon^*$ is, relative to the direct fit "
                   "(median over runs): " + ", ".join(parts) + "; near 1 the model class limits the accuracy, far "
                   "above 1 the noisy regression target does.")
    return out[:4]


# ---- optimizer hyper-parameters -----------------------------------------------------------------------------------
def variant_claims(v: pd.DataFrame) -> list[str]:
    """Per hyper-parameter variant (over its seeds): its validation loss against the same optimizer's default
    settings, by the spread rule."""
    out = []
    v = v[v["base_model"].fillna("").astype(str) != ""]
    for (ds, model), g in v.groupby(["dataset", "model"], sort=False):
        n = len(g)
        a = (float(g["val_loss"].mean()), float(g["val_loss"].std()) if n > 1 else np.nan, n)
        b = (float(g["base_val_loss"].mean()), float(g["base_val_loss"].std()) if n > 1 else np.nan, n)
        verdict = compare(a, b)
        word = {"better": "lower", "worse": "higher", "equal": "equal", "not separated": "not separated"}.get(
            verdict.word, "")
        r = g.iloc[0]
        out.append(f"On {_tt(ds)}, {tex_escape(r['solver'])} with {tex_escape(r['settings'])} against "
                   f"{tex_escape(r['base_settings'])}: validation loss {_num(a[0], 4)} against {_num(b[0], 4)}, "
                   f"{word}" + (" (one seed: no spread)" if verdict.one_seed else "") + f", in "
                   f"{_num(g['wall_s'].mean())}~s against {_num(g['base_wall_s'].mean())}~s.")
    return out


def landscape_claims(files: Iterable[PathLike], models: list[str] | None) -> list[str]:
    """How fast the loss rises away from the trained weights: mean loss on the grid's border / loss at the centre.

    files: landscape/{dataset}/{model}/{seed}.csv with their .json records beside (a CSV whose record is not among
    ``files`` is left out, as is a model not in ``models``)."""
    given = set(map(Path, files))
    out = []
    for csv in sorted(p for p in given if p.suffix == ".csv"):
        info_file = csv.with_suffix(".json")
        if info_file not in given or (models is not None and csv.parent.name not in models):
            continue
        df, info = pd.read_csv(csv), load_json(info_file)
        span = df["alpha"].abs().max()
        border = df[(df["alpha"].abs() == span) | (df["beta"].abs() == span)]["loss"].mean()
        rise = border / info["loss_at_minimum"]
        out.append(f"{tex_escape(csv.parent.name)}: the loss on the border of the $[-{fmt_number(span)}, "
                   f"{fmt_number(span)}]^2$ window is ${fmt_number(rise)}\\times$ its value at the trained weights "
                   f"(${fmt_number(info['loss_at_minimum'], sig=4)}$).")
    return out


# ---- the section's opening findings -------------------------------------------------------------------------------
def headline(comp: pd.DataFrame, main_models: list[str] | None = None) -> dict | None:
    """The TT model of the main table (the first TT in ``main_models``, else the first TT) against the MLP, over
    the datasets both trained on: median parameter fraction and SWD ratio, on how many datasets its SWD is lower /
    higher beyond the spread (``n_lower``, ``n_higher``), and on the datasets' primary metric (HQ percentage on
    mixtures, else SWD) how many are better / worse / not separated. None when no dataset has both."""
    tts = comp[comp["arch"] == "tt"]
    names = [m for m in (main_models or []) if m in set(tts["model"])] or sorted(set(tts["model"]))
    if not names:
        return None
    t = tts[tts["model"] == names[0]].set_index("dataset")
    n = comp[comp["arch"] == "mlp"].groupby("dataset").first()
    shared = [d for d in t.index if d in n.index and n.at[d, "swd_mean"] > 0]
    if not shared:
        return None
    params = (t.loc[shared, "n_params_mean"] / n.loc[shared, "n_params_mean"]).median()
    swd = (t.loc[shared, "swd_mean"] / n.loc[shared, "swd_mean"])
    swd_v = [compare(_stat(t.loc[d], "swd"), _stat(n.loc[d], "swd")) for d in shared]
    quality = {"better": 0, "worse": 0, "not separated": 0}
    metrics, one_seed = set(), False
    for d in shared:
        metric = "hq_percent" if ("hq_percent_mean" in t.columns and pd.notna(t.at[d, "hq_percent_mean"])
                                  and pd.notna(n.at[d, "hq_percent_mean"])) else "swd"
        metrics.add(metric)
        v = compare(_stat(t.loc[d], metric), _stat(n.loc[d], metric), higher_is_better=higher_is_better(metric))
        quality[v.word if v.word in quality and not v.one_seed else "not separated"] += 1
        one_seed = one_seed or v.one_seed
    prior = lambda row: row.get("prior") if pd.notna(row.get("prior", np.nan)) else None  # noqa: E731
    return {"model": tex_escape(names[0]), "mlp": tex_escape(n.loc[shared[0], "model"]), "n_datasets": len(shared),
            "param_fraction": fmt_number(float(params)), "param_percent": fmt_number(100 * float(params)),
            "swd_ratio": fmt_number(float(swd.median())),
            "n_lower": sum(v.word == "better" and not v.one_seed for v in swd_v),
            "n_higher": sum(v.word == "worse" and not v.one_seed for v in swd_v),
            "quality_metric": _label(metrics.pop()) if len(metrics) == 1 else "primary metric",
            "n_better": quality["better"], "n_worse": quality["worse"], "n_not_separated": quality["not separated"],
            "one_seed": one_seed,
            "tt_prior": prior(t.loc[shared[0]]), "mlp_prior": prior(n.loc[shared[0]])}


def findings(comp: pd.DataFrame | None, conv: pd.DataFrame | None, targets: pd.DataFrame | None,
             main_models: list[str] | None = None) -> list[str]:
    """The TT section's opening findings: the main TT model against the MLP (parameters, primary metric and SWD, by
    the spread rule, with the head start each uses), the fastest optimizer to the common target, and how many of the
    computed targets are met."""
    out = []
    h = headline(comp, main_models) if comp is not None else None
    if h:
        priors = ""
        if h["tt_prior"] and h["mlp_prior"]:
            priors = (f" (default settings: the TT {PRIOR_TEXT.get(h['tt_prior'], h['tt_prior'])}, the MLP "
                      + ("with it" if h["mlp_prior"] == "gaussian" else "without it") + ")")
        out.append(f"With ${h['param_percent']}\\,\\%$ of the MLP's parameters (median over ${h['n_datasets']}$ "
                   f"datasets), \\texttt{{{h['model']}}}{priors} is better than the MLP by {h['quality_metric']} on "
                   f"${h['n_better']}$, worse on ${h['n_worse']}$ and not separated on ${h['n_not_separated']}$ "
                   f"of them" + (" (one seed: no spread)" if h["one_seed"] else "")
                   + f"; its SWD is a median ${h['swd_ratio']}\\times$ the MLP's.")
    if conv is not None and len(conv):
        claims = convergence_claims(conv)
        if claims:
            out.append(claims[0])
    if targets is not None and len(targets):
        met = targets["met"].astype(str).str.lower() == "true"
        out.append(f"${int(met.sum())}$ of the ${len(targets)}$ computed targets are met"
                   + ("; Section~\\ref{sec:limitations} lists the others." if (~met).any() else "."))
    return out


# ---- the targets --------------------------------------------------------------------------------------------------
