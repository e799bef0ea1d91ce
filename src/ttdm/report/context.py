"""The paper's template context: tables, figures, the setup and sentences computed from the result files.

Every number in a sentence is formatted by :func:`ttdm.report.tables.fmt_number`, so it reads as in the tables, and
every string is LaTeX-ready (names escaped) except the raw ``name`` fields. Whatever the results lack is left out (an
empty list or dict, or None), never filled with placeholder text; templates test it with ``((* if ... *))``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ttdm.io import load_json
from ttdm.report.provenance import collect_provenance
from ttdm.report.tables import DISTANCE_METRICS, booktabs, fmt_number, pm_cell, tex_escape

PathLike = str | os.PathLike
SENTENCE_LABELS = {"swd": "SWD", "mmd": "MMD$^2$", "energy": "energy distance", "w2": "$W_2$"}
METRIC_TEXT = {
    "swd": "the sliced Wasserstein-2 distance (SWD) over random directions \\citep{bonneel2015sliced}",
    "mmd": "the unbiased squared maximum mean discrepancy (MMD$^2$) with a sum of RBF kernels whose bandwidths "
           "are scaled from the median pairwise distance \\citep{gretton2012mmd}",
    "energy": "the energy distance as an unbiased U-statistic \\citep{szekely2013energy}",
    "w2": "the exact Wasserstein-2 distance $W_2$ between the empirical measures, by linear programming with POT "
          "\\citep{flamary2021pot}",
    "modes": "for Gaussian mixtures, the number of modes covered and the percentage of high-quality (HQ) samples, "
             "those within three standard deviations of their nearest mode \\citep{srivastava2017veegan}",
}
FIGURE_KINDS = ("samples", "loss", "nfe")  # figures/{dataset}_{kind}.pdf, as ttdm.report.figures writes them
HPARAM_SYMBOLS = {"T": "$T$", "beta_start": "$\\beta_1$", "beta_end": "$\\beta_T$", "s": "$s$", "eta": "$\\eta$",
                  "batch_size": "batch size", "lr": "learning rate", "ema_decay": "EMA decay",
                  "grad_clip": "gradient-norm clip", "steps": "training steps", "method": "method",
                  "checkpoint_every": "checkpoint every", "log_every": "loss logged every"}


def tt(name: object) -> str:
    """A name in typewriter type, escaped: ``\\texttt{swiss\\_roll}``."""
    return f"\\texttt{{{tex_escape(name)}}}"


def num(x: float) -> str:
    """A number in math mode, rounded as in the tables."""
    return f"${fmt_number(x)}$"


def words(items: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def kv_text(params: dict[str, Any]) -> str:
    """"$T$ = 1000, $\\beta_1$ = 0.0001": known keys as symbols, others escaped; values as configured."""
    return ", ".join(f"{HPARAM_SYMBOLS.get(k, tex_escape(k))} = {tex_escape(v)}" for k, v in params.items())


def read_csv(path: Path) -> pd.DataFrame | None:
    """The CSV at ``path`` with empty cells as "", or None when it is missing or has no rows."""
    if not path.is_file():
        return None
    df = pd.read_csv(path, keep_default_na=False, na_values=[""])
    return df if len(df) else None


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


def setup_context(config: dict[str, Any], results_dir: Path, training: pd.DataFrame | None) -> dict[str, Any]:
    """The experimental setup from the config: datasets (sizes from meta.json of the datasets that were run),
    models (parameter counts from training.csv), grid, schedule, training, sampling, seeds and metrics."""
    grid = config.get("grid", [])
    datasets = list(dict.fromkeys(d for g in grid for d in g["datasets"]))
    models = list(dict.fromkeys(m for g in grid for m in g["models"]))
    rows = []
    for ds in datasets:
        meta_file = results_dir / "data" / ds / "meta.json"
        if meta_file.is_file():
            meta = load_json(meta_file)
            k = len(meta["mixture"]["weights"]) if meta.get("mixture") else None
            kind = meta.get("kind") or config["datasets"][ds]["kind"]
            rows.append([tt(ds), tex_escape(kind), f"${meta['dim']}$"]
                        + [f"${meta[n]}$" for n in ("n_train", "n_test", "n_floor")] + [f"${k}$" if k else "--"])
    data_table = booktabs(["Dataset", "Kind", "$D$", "Train", "Test", "Floor", "Modes"], rows,
                          align="llrrrrr") if rows else None
    params = training.groupby("model")["n_params"].agg(["min", "max"]) if training is not None else None
    model_rows = []
    for m in models:
        spec = dict(config["models"][m])
        arch = spec.pop("arch")
        row = [tt(m), tex_escape(arch), kv_text(spec) or "--"]
        if params is not None:
            lo, hi = (params.loc[m, "min"], params.loc[m, "max"]) if m in params.index else (None, None)
            row.append("--" if lo is None else f"${lo}$" if lo == hi else f"${lo}$--${hi}$")
        model_rows.append(row)
    header = ["Model", "Architecture", "Hyper-parameters"] + (["Parameters"] if params is not None else [])
    model_table = booktabs(header, model_rows, align="lll" + "r" * (params is not None)) if model_rows else None
    grid_text = []
    for g in grid:
        text = f"{words([tt(m) for m in g['models']])} on {words([tt(d) for d in g['datasets']])}"
        grid_text.append(text + (f" (training overrides: {kv_text(g['training'])})" if g.get("training") else ""))
    schedule = dict(config.get("schedule", {}))
    sampling = config.get("sampling", {})
    samplers = []
    for name, s in sampling.get("samplers", {}).items():
        knobs = {k: v for k, v in s.items() if k not in ("kind", "steps")}
        steps = ", ".join(str(n) for n in s.get("steps", []))
        samplers.append(f"{tt(name)} (kind {tex_escape(s.get('kind', name))}"
                        + (f", {kv_text(knobs)}" if knobs else "") + f"; steps {steps})")
    return {
        "datasets": [tex_escape(d) for d in datasets], "models": [tex_escape(m) for m in models],
        "data_table": data_table, "model_table": model_table, "grid": grid_text,
        "schedule": f"{tex_escape(schedule.pop('kind'))} ({kv_text(schedule)})" if schedule else None,
        "training": kv_text(config["training"]) if config.get("training") else None,
        "ema": config.get("training", {}).get("ema_decay") is not None,
        "n_samples": sampling.get("n_samples"), "samplers": samplers,
        "seeds": ", ".join(str(s) for s in config.get("seeds", [])), "n_seeds": len(config.get("seeds", [])),
        "metrics": [METRIC_TEXT.get(m, tt(m)) for m in config.get("metrics", {})],
    }


def build_context(results_dir: PathLike, config: dict[str, Any], *, repo: PathLike | None = None) -> dict:
    """Everything the paper templates use, from results/tables, results/figures, results/data and the config.

    Keys: title, author, setup (:func:`setup_context`), tables (stem -> LaTeX of results/tables/*.tex), main
    ({"sampler", "steps"} of the main table, or None), datasets (per dataset: name, label, image (bool),
    best_model (lowest SWD at the main setting, or None), figure paths relative to the paper, and the sentences
    best, modes and nfe), training_claims, bench ([{name, label, table}]),
    figure_files (figures to copy) and provenance (:func:`ttdm.report.provenance.collect_provenance`; ``repo``
    is where git is asked).
    """
    results = Path(results_dir)
    tables_dir, figures_dir = results / "tables", results / "figures"
    tables = {p.stem: p.read_text() for p in sorted(tables_dir.glob("*.tex"))}
    summary = read_csv(tables_dir / "summary.csv")
    display = read_csv(tables_dir / "summary_display.csv")
    training = read_csv(tables_dir / "training.csv")
    main, best_model = None, {}
    claims: dict[str, dict[str, list[str]]] = {"best": {}, "modes": {}, "nfe": {}}
    if summary is not None and display is not None and "summary" in tables:
        main = {"sampler": str(display["sampler"].iloc[0]), "steps": int(display["steps"].iloc[0])}
        ranked = ranking(summary, main["sampler"], main["steps"], "swd")
        best_model = {ds: g["model"].iloc[0] for ds, g in ranked.items()}
        claims = {"best": best_model_claims(summary, main["sampler"], main["steps"]),
                  "modes": mode_claims(summary, main["sampler"], main["steps"]),
                  "nfe": nfe_claims(summary, main=(main["sampler"], main["steps"]))}
    setup = setup_context(config, results, training)
    figure_datasets = (p.name[: -len(f"_{k}.pdf")] for k in FIGURE_KINDS for p in figures_dir.glob(f"*_{k}.pdf"))
    names = set().union(*claims.values(), figure_datasets)
    order = {ds: i for i, ds in enumerate(dict.fromkeys(d for g in config.get("grid", []) for d in g["datasets"]))}
    names = {d for d in names if not order or d in order}  # stale results of datasets no longer configured
    datasets, figure_files = [], []
    for ds in sorted(names, key=lambda d: (order.get(d, len(order)), d)):
        meta_file = results / "data" / ds / "meta.json"
        image = bool(load_json(meta_file).get("image_shape")) if meta_file.is_file() else False
        entry: dict[str, Any] = {"name": ds, "label": tt(ds), "image": image, "best_model": best_model.get(ds)}
        for kind in FIGURE_KINDS:
            found = (figures_dir / f"{ds}_{kind}.pdf").is_file()
            entry[f"{kind}_figure"] = f"figures/{ds}_{kind}.pdf" if found else None
            figure_files += [f"{ds}_{kind}.pdf"] if found else []
        entry.update({k: claims[k].get(ds, []) for k in claims})
        datasets.append(entry)
    bench = [{"name": stem[len("bench_"):], "label": tt(stem[len("bench_"):] + ".csv"), "table": text}
             for stem, text in tables.items() if stem.startswith("bench_") and stem != "bench_complexity"]
    paper = config.get("paper", {})
    from ttdm.report.tt import tt_context

    tt_ctx = tt_context(results, config)
    figure_files += tt_ctx.get("figure_files", [])
    return {
        "tt": tt_ctx,
        "title": tex_escape(paper.get("title", "Efficient diffusion models: a reproducible study")),
        "author": tex_escape(paper.get("author", "ttdm")),
        "setup": setup, "tables": tables, "main": main, "datasets": datasets,
        "training_claims": training_claims(training) if training is not None else [],
        "bench": bench, "figure_files": figure_files,
        "provenance": collect_provenance(results, config, repo=repo),
    }
