"""The paper's template context: the setup, the tables, provenance and every study's part (sections' sentences and
figures), all computed from the files the paper rule lists (:class:`ttdm.report.files.PaperFiles`).

Every string is LaTeX-ready (names escaped) except the raw ``name`` fields. Whatever the files lack is left out (an
empty list or dict, or None), never filled with placeholder text; templates test it with ``((* if ... *))``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ttdm.report import overview
from ttdm.report.claims import PRIMARY, SENTENCE_LABELS, tt, words
from ttdm.report.files import PaperFiles
from ttdm.report.provenance import collect_provenance
from ttdm.report.tables import booktabs, constant_note, tex_escape

METRIC_TEXT = {
    "swd": "the sliced Wasserstein-2 distance (SWD) over random directions \\citep{bonneel2015sliced}",
    "mmd": "the unbiased squared maximum mean discrepancy (MMD$^2$) with a sum of RBF kernels whose bandwidths "
           "are scaled from the median pairwise distance \\citep{gretton2012mmd}",
    "energy": "the energy distance as an unbiased U-statistic \\citep{szekely2013energy}",
    "w2": "the exact Wasserstein-2 distance $W_2$ between the empirical measures, by linear programming with POT "
          "\\citep{flamary2021pot}",
    "modes": "for Gaussian mixtures, the number of modes covered and the percentage of high-quality (HQ) samples, "
             "those within three standard deviations of their nearest mode \\citep{srivastava2017veegan}",
    "prdc": "precision, recall, density and coverage from $k$-nearest-neighbour balls around the samples and the "
            "test points (higher is better; \\citealp{naeem2020prdc})",
    "logdensity": "for Gaussian mixtures, the mean true log-density of the samples in nats per dimension (higher "
                  "is sharper; the data floor's value estimates the negative entropy per dimension)",
}
HPARAM_SYMBOLS = {"T": "$T$", "beta_start": "$\\beta_1$", "beta_end": "$\\beta_T$", "s": "$s$", "eta": "$\\eta$",
                  "batch_size": "batch size", "lr": "learning rate", "ema_decay": "EMA decay",
                  "grad_clip": "gradient-norm clip", "steps": "training steps", "method": "method",
                  "checkpoint_every": "checkpoint every", "log_every": "loss logged every"}


def kv_text(params: dict[str, Any]) -> str:
    """"$T$ = 1000, $\\beta_1$ = 0.0001": known keys as symbols, others escaped; values as configured."""
    return ", ".join(f"{HPARAM_SYMBOLS.get(k, tex_escape(k))} = {tex_escape(v)}" for k, v in params.items())


def clipped_datasets(config: dict[str, Any], datasets: list[str]) -> list[str]:
    """Those of ``datasets`` (LaTeX) whose samples are drawn with x̂_0 clipped to their pixel range
    (``sampling.clip_x0``)."""
    from ttdm.config.specs import PIXEL_RANGES

    if not config.get("sampling", {}).get("clip_x0", True):
        return []
    return [f"{tt(d)} (to $[{lo:g}, {hi:g}]$)" for d in datasets
            for lo, hi in [PIXEL_RANGES.get(config["datasets"][d].get("kind"), (None, None))] if lo is not None]


def setup_context(config: dict[str, Any], files: PaperFiles, training: pd.DataFrame | None) -> dict[str, Any]:
    """The experimental setup from the config: datasets (sizes from the meta.json files given), models (parameter
    counts from training.csv), grid, schedule, training, sampling, seeds and metrics."""
    grid = config.get("grid", [])
    datasets = list(dict.fromkeys(d for g in grid for d in g["datasets"]))
    models = list(dict.fromkeys(m for g in grid for m in g["models"]))
    rows, dims = [], []
    for ds in datasets:
        meta = files.meta_of(ds)
        if meta is not None:
            dims.append(int(meta["dim"]))
            k = len(meta["mixture"]["weights"]) if meta.get("mixture") else None
            kind = meta.get("kind") or config["datasets"][ds]["kind"]
            rows.append([tt(ds), tex_escape(kind), f"${meta['dim']}$"]
                        + [f"${meta[n]}$" for n in ("n_train", "n_test", "n_floor")] + [f"${k}$" if k else "--"])
    data_table = booktabs(["Dataset", "Kind", "$D$", "Train", "Test", "Floor", "Modes"], rows,
                          align="llrrrrr") if rows else None
    base_of = {m["name"]: m["base"] for m in overview.grid_models(config)}
    if training is not None:  # parameter counts of the trained models, under their base model's name
        params = training.assign(base=training["model"].map(lambda m: base_of.get(m, m)))
        params = params.groupby("base")["n_params"].agg(["min", "max"])
    else:
        params = None
    model_rows = []
    for m in dict.fromkeys(base_of.get(m, m) for m in models):  # base models only; variants: the appendix
        spec = dict(config["models"][m])
        arch = spec.pop("arch")
        row = [tt(m), tex_escape(arch), kv_text(spec) or "--"]
        if params is not None:
            lo, hi = (params.loc[m, "min"], params.loc[m, "max"]) if m in params.index else (None, None)
            row.append("--" if lo is None else f"${lo}$" if lo == hi else f"${lo}$--${hi}$")
        model_rows.append(row)
    header = ["Model", "Architecture", "Hyper-parameters"] + (["Parameters"] if params is not None else [])
    model_table = booktabs(header, model_rows, align="lll" + "r" * (params is not None)) if model_rows else None
    grid_text = []  # kept for the HTML report's readers; the paper prints overview.grid_table
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
        "n_samples": sampling.get("n_samples"), "samplers": samplers, "clipped": clipped_datasets(config, [d for d in datasets if files.meta_of(d) is not None]),
        "seeds": ", ".join(str(s) for s in config.get("seeds", [])), "n_seeds": len(config.get("seeds", [])),
        "metrics": [METRIC_TEXT.get(m, tt(m)) for m in config.get("metrics", {})],
        "counts": overview.counts(config), "grid_table": overview.grid_table(config),
        "runs_table": overview.runs_table(config), "max_dim": max(dims) if dims else None,
        "likelihood": likelihood_text(config.get("likelihood")),
        "sampler_floor": sampler_floor_name(config),
        "primary": {kind: {level: SENTENCE_LABELS.get(m, m) for level, m in entry.items()}
                    for kind, entry in PRIMARY.items()},
    }


def likelihood_text(spec: dict[str, Any] | None) -> str | None:
    """How the test NLL is computed, from the config's ``likelihood`` block (None without one)."""
    if not spec:
        return None
    solver = tex_escape(spec.get("solver", "rk4"))
    steps = spec.get("steps")
    text = f"the {solver} solver" + (f" with ${steps}$ steps" if steps and solver != "dopri5" else "")
    n = spec.get("n_max")
    return text + (f" on at most ${n}$ test points" if n else "")


def sampler_floor_name(config: dict[str, Any]) -> str | None:
    """The sampler floor model (``paper.sampler_floor``, when the grid trains it), typeset; None otherwise."""
    from ttdm.report.studies.ddpm import sampler_floor

    name = sampler_floor(config) if "grid" in config and "seeds" in config else None  # a partial config: none
    return tt(name) if name else None


def build_context(files: PaperFiles, config: dict[str, Any], *, repo: str | None = None) -> dict[str, Any]:
    """Everything the paper templates use, from the given ``files`` and the config.

    Keys: title, author, setup (:func:`setup_context`), tables (stem -> LaTeX of every .tex table given),
    figure_files (names of the figures to copy beside the paper), provenance
    (:func:`ttdm.report.provenance.collect_provenance` of the runs' train.json files; ``repo`` is where git is asked),
    and every registered study's part (``ttdm.report.studies``: the DDPM baselines' main, datasets, training_claims
    and bench; the tensor-train section's tt).
    """
    from ttdm.report.studies import STUDIES

    paper = config.get("paper", {})
    context: dict[str, Any] = {
        "title": tex_escape(paper.get("title", "Efficient diffusion models: a reproducible study")),
        "author": tex_escape(paper.get("author", "ttdm")),
        "setup": setup_context(config, files, files.csv("training")),
        "tables": files.tex(),
        "table_notes": {stem: constant_note(text) for stem, text in files.tex().items()},
        "figure_files": [],
        "provenance": collect_provenance(files.runs, config, repo=repo),
    }
    for name in STUDIES.names():
        part = dict(STUDIES.get(name).context(files, config))
        context["figure_files"] += part.pop("figure_files", [])
        clash = sorted(set(part) & set(context))
        if clash:
            raise ValueError(f"study {name!r} sets context keys that are already set: {', '.join(clash)}")
        context.update(part)
    return context
