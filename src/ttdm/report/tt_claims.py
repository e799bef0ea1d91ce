"""Sentences of the paper's tensor-train section, computed from the TT tables (and the loss landscapes).

Every number is formatted by :func:`ttdm.report.tables.fmt_number`, as in the tables; names are LaTeX-escaped.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ttdm.io import load_json
from ttdm.report.tables import booktabs, fmt_number, tex_escape

PathLike = str | os.PathLike


def best_pairs(comp: pd.DataFrame) -> Iterable[tuple[str, pd.Series, pd.Series]]:
    """(dataset, best network, best TT model) by mean SWD, for every dataset that has both."""
    for ds, g in comp.groupby("dataset", sort=False):
        nets = g[g["arch"] != "tt"].sort_values("swd_mean")
        tts = g[g["arch"] == "tt"].sort_values("swd_mean")
        if len(nets) and len(tts):
            yield ds, nets.iloc[0], tts.iloc[0]


def comparison_claims(comp: pd.DataFrame) -> list[str]:
    """Per dataset: how the base TT optimizers compare with the best network on SWD, parameters and time."""
    out = []
    for ds, net, best in best_pairs(comp):
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


def headline(comp: pd.DataFrame, main_models: list[str] | None = None) -> dict | None:
    """The TT model of the main table (the first TT in ``main_models``, else the first TT) against the MLP, over
    the datasets both trained on: median parameter fraction and SWD ratio, and on how many datasets its SWD is
    lower. None when no dataset has both."""
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
    return {"model": tex_escape(names[0]), "mlp": tex_escape(n.loc[shared[0], "model"]), "n_datasets": len(shared),
            "param_fraction": fmt_number(float(params)), "param_percent": fmt_number(100 * float(params)),
            "swd_ratio": fmt_number(float(swd.median())), "n_lower": int((swd < 1).sum())}


def findings(comp: pd.DataFrame | None, conv: pd.DataFrame | None, targets: pd.DataFrame | None,
             main_models: list[str] | None = None) -> list[str]:
    """The TT section's opening findings: the main TT model against the MLP (parameters, SWD), the fastest
    optimizer to the common target, and how many of the computed targets are met."""
    out = []
    h = headline(comp, main_models) if comp is not None else None
    if h:
        out.append(f"With ${h['param_percent']}\\,\\%$ of the MLP's parameters (median over ${h['n_datasets']}$ "
                   f"datasets), \\texttt{{{h['model']}}} reaches ${h['swd_ratio']}\\times$ the MLP's SWD, lower on "
                   f"${h['n_lower']}$ of the ${h['n_datasets']}$.")
    if conv is not None and conv["time_to_target"].notna().any():
        first = conv[conv["time_to_target"].notna()].groupby("optimizer")["time_to_target"].median().sort_values()
        never = sorted(set(conv["optimizer"]) - set(first.index))
        text = (f"{tex_escape(first.index[0])} reaches the common validation-loss target first (median "
                f"${fmt_number(first.iloc[0])}$~s)")
        out.append(text + (f"; {', '.join(tex_escape(o) for o in never)} never within its budget." if never else "."))
    if targets is not None and len(targets):
        met = targets["met"].astype(str).str.lower() == "true"
        out.append(f"${int(met.sum())}$ of the ${len(targets)}$ computed targets are met"
                   + ("; Section~\\ref{sec:limitations} lists the others." if (~met).any() else "."))
    return out


def target_rows(targets: pd.DataFrame) -> list[dict]:
    """The targets as {"name", "met", "text"} records, failed ones first."""
    t = targets.assign(ok=targets["met"].astype(str).str.lower() == "true").sort_values("ok", kind="stable")
    return [{"name": tex_escape(r.name), "met": bool(r.ok), "text": r.text} for r in t.itertuples(index=False)]


def comparison_table(comp: pd.DataFrame) -> str | None:
    """Per dataset: the best TT model and the best network by SWD (mean over seeds), with the TT's SWD, parameters
    and training time as multiples of the network's — the table that replaces one sentence per dataset."""
    rows = []
    for ds, net, best in best_pairs(comp):

        def ratio(col: str) -> str:
            return f"${fmt_number(best[col] / net[col])}$" if net[col] > 0 else "--"
        rows.append([f"\\texttt{{{tex_escape(ds)}}}", f"\\texttt{{{tex_escape(best['model'])}}}",
                     f"${fmt_number(best['swd_mean'])}$", f"\\texttt{{{tex_escape(net['model'])}}}",
                     f"${fmt_number(net['swd_mean'])}$", ratio("swd_mean"), ratio("n_params_mean"),
                     ratio("wall_s_mean")])
    if not rows:
        return None
    return booktabs(["Dataset", "Best TT", "SWD", "Best network", "SWD", "SWD ratio", "Param.\\ ratio",
                     "Time ratio"], rows, align="llrlrrrr")
