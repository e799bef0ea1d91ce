"""The Performer study (paper section "Performer-backed DDPM", seed 002): FAVOR+ against softmax attention.

The two U-Nets of ``performer.models`` (softmax, then FAVOR+) are ordinary grid runs on ``performer.dataset``; the
study adds two commands and reads their outputs:

- ``ttdm attention-error`` (one job per model, seed ``performer.seed``): FAVOR+'s error on the trained network's own
  attention inputs against m (:mod:`ttdm.stages.attention_error`), results/attention/{dataset}/{model}/{seed}.csv;
- ``ttdm attention-bench`` (one job): time and memory of attention against the sequence length, and U-Net training
  steps on larger images (:mod:`ttdm.stages.attention_bench`), results/bench/attention*.csv;
- ``ttdm performer-report`` writes the tables and figures (:mod:`ttdm.report.performer_output`) from the runs'
  files, the error CSVs, the benchmark's CSVs and complexity.csv.

The paper section also reads the benchmark's CSVs (:func:`inputs`) for its findings.  Nothing is declared without
a ``performer`` block.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ttdm import config as cfg
from ttdm.config.performer import attention_of
from ttdm.report import performer as perf
from ttdm.report.claims import (SENTENCE_LABELS, missed_targets, n_missed, separated, standard_error, target_summary,
                                 tt, words)
from ttdm.report.files import PaperFiles
from ttdm.report.studies import STUDIES, Study
from ttdm.report.tables import fmt_number, tex_escape

TABLES = ("performer.csv", "performer_summary.csv", "performer_error.csv", "performer_targets.csv",
          "performer_compare.tex", "performer_scaling.tex", "performer_targets.tex")
FIGURES = ("attention_scaling.pdf", "attention_error.pdf")
BENCH = ("attention.csv", "attention_fit.csv")
COMPLEXITY = "results/bench/complexity.csv"


def _study(config: dict[str, Any]) -> dict[str, Any]:
    return config.get("performer") or {}


def models(config: dict[str, Any]) -> list[str]:
    """[softmax model, FAVOR+ model]."""
    return list(_study(config).get("models", []))


def attention(config: dict[str, Any]) -> dict[str, str]:
    """{model: its attention (softmax, performer)}."""
    return {m: attention_of(config["models"][m]) for m in models(config)}


def entries(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Every run of the two models on the study's dataset (every seed the grid trains): {model, attention, seed,
    train, metrics (the main setting's CSV), likelihood (CSV or None)}."""
    study = _study(config)
    if not study:
        return []
    dataset, main = study["dataset"], cfg.main_setting(config)
    with_nll = set(cfg.likelihood_runs(config)) if config.get("likelihood") else set()
    kinds = attention(config)
    return [{"model": m, "attention": kinds[m], "seed": s, "train": f"results/runs/{d}/{m}/{s}/train.json",
             "metrics": f"results/metrics/{d}/{m}/{s}/{main}.csv",
             "likelihood": f"results/likelihood/{d}/{m}/{s}.csv" if (d, m, s) in with_nll else None}
            for model in models(config) for d, m, s in cfg.runs(config) if (d, m) == (dataset, model)]


def error_files(config: dict[str, Any]) -> dict[str, str]:
    """{model: results/attention/{dataset}/{model}/{seed}.csv} of the error stage."""
    study = _study(config)
    return {m: f"results/attention/{study['dataset']}/{m}/{study.get('seed', 0)}.csv" for m in models(config)}


def bench_files(config: dict[str, Any]) -> list[str]:
    """What ``ttdm attention-bench`` writes: attention.csv, attention_fit.csv, and attention_unet.csv with
    ``unet_sizes``."""
    study = _study(config)
    if not study:
        return []
    names = BENCH + (("attention_unet.csv",) if study.get("unet_sizes") else ())
    return [f"results/bench/{name}" for name in names]


def inputs_of(config: dict[str, Any]) -> dict[str, list[str]]:
    """The files ``ttdm performer-report`` reads: the runs' files, the error CSVs, the benchmark and complexity.csv."""
    es = entries(config)
    return {"files": [f for e in es for f in (e["train"], e["metrics"], e["likelihood"]) if f],
            "errors": list(error_files(config).values()), "bench": bench_files(config),
            "complexity": [COMPLEXITY] if es else [], "devices": device_inputs(config)}


def device_inputs(config: dict[str, Any]) -> list[str]:
    """The files of ``performer.device_benchmarks`` (benchmarks measured on other devices, kept in the repository)."""
    return perf.device_files(_study(config).get("device_benchmarks", [])) if entries(config) else []


def bench_spec(config: dict[str, Any]) -> dict[str, Any]:
    """Spec of ``ttdm attention-bench``: the benchmark's keys of the study, the device and threads."""
    keys = ("lengths_max", "explicit_max", "heads", "dim_head", "repeats", "unet_sizes", "unet_batch")
    return {**{k: _study(config)[k] for k in keys}, "device": config["device"], "threads": config["threads"]}


def error_spec(config: dict[str, Any]) -> dict[str, Any]:
    """Spec of ``ttdm attention-error``: noise levels, m, draws, images, the data seed (noise and projections)."""
    study = _study(config)
    return {**{k: study[k] for k in ("times", "features", "draws", "n_images")}, "seed": config["data_seed"],
            "device": config["device"], "threads": config["threads"]}


def outputs(config: dict[str, Any]) -> dict[str, list[str]]:
    if not entries(config):
        return {"attention-bench": [], "performer-report": []}
    tables = list(TABLES) + (["performer_unet.tex"] if _study(config).get("unet_sizes") else [])
    return {"attention-bench": bench_files(config),
            "performer-report": [f"results/tables/{t}" for t in tables] + [f"results/figures/{f}" for f in FIGURES]}


def inputs(config: dict[str, Any]) -> list[str]:
    """The benchmark's CSVs and those measured on other devices: the section's findings quote them."""
    return bench_files(config) + device_inputs(config) if entries(config) else []


# ---- findings -------------------------------------------------------------------------------------------------------
def _row(summary: pd.DataFrame, model: str, metric: str) -> pd.Series | None:
    rows = summary[(summary["model"] == model) & (summary["metric"] == metric)]
    return rows.iloc[0] if len(rows) else None


def _se(row: pd.Series) -> float:
    return standard_error(row["std"], row["n_seeds"])


def _pm(row: pd.Series) -> str:
    from ttdm.report.tables import fmt_spread

    std = fmt_spread(row["std"], row["mean"])
    return f"${fmt_number(row['mean'])} \\pm {std}$" if std else f"${fmt_number(row['mean'])}$"


def run_findings(summary: pd.DataFrame, softmax: str, performer: str, tokens: int | None = None,
                 features: int | None = None) -> list[str]:
    """FD of the two models (separated or not, their ratio), the other sample metrics and the ELBO that separate or
    not, and the training time per step (with ``tokens`` N and ``features`` m of the trained FAVOR+ attention:
    when m ≥ N, FAVOR+'s N·m·d products cannot undercut the exact N²·d)."""
    out = []
    a, b = _row(summary, performer, "fd"), _row(summary, softmax, "fd")
    if a is not None and b is not None:
        apart = separated(a["mean"], _se(a), b["mean"], _se(b))
        out.append(f"On the digits the FAVOR+ U-Net {tt(performer)} reaches an FD of {_pm(a)} against {_pm(b)} for "
                   f"the softmax U-Net {tt(softmax)} (${int(a['n_seeds'])}$ and ${int(b['n_seeds'])}$ seeds; ratio "
                   f"${fmt_number(a['mean'] / b['mean'])}$): "
                   + ("separated by the spread rule." if apart else "not separated by the spread rule."))
    same, apart_names = [], []
    for metric in ("f_precision", "f_recall", "class_kl", "elbo_bpd"):
        a, b = _row(summary, performer, metric), _row(summary, softmax, metric)
        if a is None or b is None:
            continue
        name = "the ELBO" if metric == "elbo_bpd" else SENTENCE_LABELS.get(metric, metric)
        if separated(a["mean"], _se(a), b["mean"], _se(b)):
            apart_names.append(f"{name} ({_pm(a)} against {_pm(b)})")
        else:
            same.append(name)
    if same:
        out.append(f"By {words(same)} the two are not separated.")
    if apart_names:
        out.append(f"Separated: {'; '.join(apart_names)} (FAVOR+ first).")
    a, b = _row(summary, performer, "ms_per_step"), _row(summary, softmax, "ms_per_step")
    if a is not None and b is not None:
        verdict = ("separated" if separated(a["mean"], _se(a), b["mean"], _se(b)) else "not separated")
        why = ""
        if tokens and features and features >= tokens:
            why = (f"; the attention sees ${tokens}$ tokens, fewer than FAVOR+'s $m = {features}$ features, so its "
                   f"$N m d$ products cannot undercut the exact $N^2 d$")
        out.append(f"A training step takes {_pm(a)}~ms with FAVOR+ and {_pm(b)}~ms with softmax ({verdict}; ratio "
                   f"${fmt_number(a['mean'] / b['mean'])}$){why}.")
    return out


def error_findings(errors: pd.DataFrame, softmax: str, performer: str) -> list[str]:
    """How FAVOR+'s error on each trained network's attention inputs falls with m (end points, fitted exponent),
    and at the largest m which network's inputs it approximates better (spread rule over the draws)."""
    if errors is None or not len(errors):
        return []
    out = []
    slopes = perf.error_slopes(errors)
    names = {softmax: "softmax-trained", performer: "FAVOR+-trained"}
    parts = []
    for model in (softmax, performer):
        g = errors[errors["model"] == model]
        if not len(g):
            continue
        curve = g.groupby("features")["mean"].mean()
        parts.append(f"from ${fmt_number(curve.iloc[0])}$ at $m = {int(curve.index[0])}$ to "
                     f"${fmt_number(curve.iloc[-1])}$ at $m = {int(curve.index[-1])}$ on the {names[model]} network's "
                     f"inputs (as $m^{{{fmt_number(slopes[model])}}}$)")
    first = errors.iloc[0]
    out.append(f"FAVOR+'s relative error on the trained networks' own attention inputs (${int(first['tokens'])}$ "
               f"tokens of width ${int(first['dim_head'])}$, mean over the noise levels and the projection draws) "
               f"falls {' and '.join(parts)}; averaging $m$ independent features alone would give $m^{{-1/2}}$.")
    top = errors["features"].max()
    at = errors[errors["features"] == top].groupby("model").agg(mean=("mean", "mean"), std=("std", "mean"),
                                                                n=("n_draws", "min"))
    if {softmax, performer} <= set(at.index):
        a, b = at.loc[performer], at.loc[softmax]
        se = [standard_error(r["std"], r["n"]) for r in (a, b)]
        if separated(a["mean"], se[0], b["mean"], se[1]):
            (low, lo), (high, hi) = sorted([("FAVOR+-trained", a["mean"]), ("softmax-trained", b["mean"])],
                                           key=lambda pair: pair[1])
            out.append(f"At $m = {int(top)}$ the error is lower on the {low} network's inputs "
                       f"(${fmt_number(lo)}$) than on the {high} network's (${fmt_number(hi)}$), beyond their "
                       f"spread over the draws.")
        else:
            out.append(f"At $m = {int(top)}$ the errors on the two networks' inputs are not separated "
                       f"(${fmt_number(a['mean'])}$ and ${fmt_number(b['mean'])}$).")
    by_t = errors[errors["features"] == top].groupby("t")["mean"].mean()
    if len(by_t) > 1 and by_t.idxmin() != by_t.idxmax():
        out.append(f"Across the noise levels (both networks' mean at that $m$) it ranges from "
                   f"${fmt_number(by_t.min())}$ at $t = {by_t.idxmin():g}$ to ${fmt_number(by_t.max())}$ at "
                   f"$t = {by_t.idxmax():g}$.")
    return out


def _ms(bench: pd.DataFrame, name: str, length: int) -> float:
    rows = bench[(bench["implementation"] == name) & (bench["length"] == length)]
    return float(rows["fwd_bwd_ms"].iloc[0]) if len(rows) else float("nan")


def reference_findings(bench: pd.DataFrame) -> list[str]:
    """Our FAVOR+ against performer-pytorch's (the spread rule at every length) and the issue's anchor lengths."""
    out: list[str] = []
    ratios = perf.speed_ratios(bench)
    if len(ratios):
        worst = ratios.loc[ratios["ratio"].idxmax()]
        slower = [f"${int(n)}$" for n in ratios.loc[ratios["slower"], "length"]]
        lead = (f"slower than performer-pytorch's beyond the timing spread at $L$ = {words(slower)}" if slower else
                "not slower than performer-pytorch's beyond the timing spread at any $L$")
        out.append(f"Our FAVOR+ is {lead}: its time is at most ${fmt_number(worst['ratio'])}$ times theirs (at "
                   f"$L = {int(worst['length'])}$) over $L = {int(ratios['length'].min())}$ to "
                   f"${int(ratios['length'].max())}$, and its median ratio is ${fmt_number(ratios['ratio'].median())}$.")
        anchors = [f"${fmt_number(_ms(bench, 'performer-pytorch', n))}$ against "
                   f"${fmt_number(_ms(bench, 'softmax', n))}$~ms at $L = {n}$ (there ${fmt_number(a)}$ against "
                   f"${fmt_number(b)}$)"
                   for n, (a, b) in perf.ANCHOR_MS.items()
                   if np.isfinite(_ms(bench, "performer-pytorch", n) + _ms(bench, "softmax", n))]
        if anchors:
            out.append("The issue's CPU anchor (performer-pytorch against SDPA on another machine), measured here: "
                       + "; ".join(anchors) + ".")
    else:
        out.append("performer-pytorch was not installed, so our FAVOR+ was not timed against it.")
    return out


def scaling_findings(bench: pd.DataFrame | None, fits: pd.DataFrame | None, unet: pd.DataFrame | None,
                     reference: bool = True) -> list[str]:
    """Slopes, the crossover, the speed-up at the longest L, our FAVOR+ against performer-pytorch and the issue's
    anchor lengths (``reference``: this machine's benchmark only), and the U-Net steps on larger images."""
    if bench is None or fits is None or not len(bench):
        return []
    out = []
    f = lambda name, q, c="slope": perf.fit_value(fits, name, q, c)  # noqa: E731
    first = bench.iloc[0]
    top = int(bench[bench["implementation"] == "performer"]["length"].max())
    cross = f("performer", "time", "crossover_length")
    text = (f"On the {first['device'].upper() if first['device'] == 'cpu' else tex_escape(first['device'])} "
            f"(${int(first['heads'])}$ heads of width ${int(first['dim_head'])}$, "
            f"$m = {int(bench['features'].dropna().iloc[0])}$), forward and backward time grows as "
            f"$L^{{{fmt_number(f('softmax', 'time'))}}}$ for softmax (SDPA) and "
            f"$L^{{{fmt_number(f('performer', 'time'))}}}$ for FAVOR+")
    soft, fav = _ms(bench, "softmax", top), _ms(bench, "performer", top)
    if np.isfinite(cross):
        text += (f"; FAVOR+ is faster from $L = {int(cross)}$ on, ${fmt_number(soft / fav)}$ times faster at "
                 f"$L = {top}$ (${fmt_number(fav)}$ against ${fmt_number(soft)}$~ms).")
    else:
        text += f"; FAVOR+ is not faster than softmax at the longest $L = {top}$ measured."
    out.append(text)
    cpu = first["device"] == "cpu"
    where = "" if cpu else f"On the {tex_escape(first['device'])}, "
    memory = "The memory saved for the backward pass" if cpu else where + "the allocator's peak memory"
    out.append(f"{memory} grows as $L^{{{fmt_number(f('performer', 'memory'))}}}$ "
               f"for FAVOR+, $L^{{{fmt_number(f('softmax-explicit', 'memory'))}}}$ for explicit softmax (the "
               f"$L \\times L$ matrix) and $L^{{{fmt_number(f('softmax', 'memory'))}}}$ for the fused SDPA kernel, "
               f"which never stores that matrix.")
    if reference:
        out += reference_findings(bench)
    if unet is not None and len(unet):
        parts = []
        for size, g in unet.groupby("image_size", sort=True):
            by = g.set_index("attention")
            ratio = by.loc["performer", "step_ms"] / by.loc["softmax", "step_ms"]
            parts.append(f"${fmt_number(ratio)}$ times softmax's at ${int(size)}\\times{int(size)}$ "
                         f"(${int(by.loc['softmax', 'tokens'])}$ tokens)")
        out.append(f"{where}{'a' if where else 'A'} U-Net training step with FAVOR+ takes " + " and ".join(parts) + ".")
    return out


def target_findings(targets: pd.DataFrame | None) -> list[str]:
    """How many of the issue's targets are met, and which are not."""
    return target_summary(targets, "tab:performer-targets")


def _input(files: PaperFiles, name: str) -> pd.DataFrame | None:
    """This machine's benchmark table ``name`` (results/bench/), not a device folder's of the same name."""
    path = next((p for p in files.inputs if Path(p).name == name and Path(p).parent.name == "bench"), None)
    return pd.read_csv(path) if path is not None else None


def context(files: PaperFiles, config: dict[str, Any]) -> dict[str, Any]:
    summary = files.csv("performer_summary")
    if summary is None or not _study(config):
        return {"performer": None}
    softmax, performer = models(config)
    errors = files.csv("performer_error")
    bench, fits, unet = (_input(files, n) for n in ("attention.csv", "attention_fit.csv", "attention_unet.csv"))
    devices_measured = [perf.read_device_bench(d) for d in _study(config).get("device_benchmarks", [])]
    tables = files.tex()
    tokens = dim_head = features = None
    if errors is not None and len(errors):
        tokens, dim_head = int(errors["tokens"].iloc[0]), int(errors["dim_head"].iloc[0])
        features = perf.trained_features(config["models"][performer], dim_head)
    figures = [f for f in FIGURES if files.figure(f) is not None]
    devices = sorted(set(bench["device"])) if bench is not None else []
    return {"performer": {
        "findings": (target_findings(files.csv("performer_targets"))
                     + run_findings(summary, softmax, performer, tokens, features)
                     + error_findings(errors, softmax, performer) + scaling_findings(bench, fits, unet)
                     + [f for d in devices_measured
                        for f in scaling_findings(d["attention"], d["attention_fit"], d["attention_unet"],
                                                  reference=False)]),
        "compare_table": tables.get("performer_compare"),
        "scaling_table": tables.get("performer_scaling"),
        "unet_table": tables.get("performer_unet"),
        "targets_table": tables.get("performer_targets"),
        "scaling_figure": "figures/attention_scaling.pdf" if "attention_scaling.pdf" in figures else None,
        "error_figure": "figures/attention_error.pdf" if "attention_error.pdf" in figures else None,
        "models": [softmax, performer],
        "dataset": _study(config)["dataset"],
        "tokens": tokens,
        "dim_head": dim_head,
        "features": features,
        "cuda": "cuda" in devices,
        "other_devices": sorted({str(d["attention"]["device"].iloc[0]) for d in devices_measured
                                 if d["attention"] is not None and len(d["attention"])}),
        "study": _study(config),
        "redraw_every": config["models"][performer].get("redraw_every"),
        "missed": missed_targets(files.csv("performer_targets")),
        "n_missed": n_missed(files.csv("performer_targets")),
    }, "figure_files": figures}


STUDY = STUDIES.register("performer")(Study(outputs=outputs, context=context, inputs=inputs))
