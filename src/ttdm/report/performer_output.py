"""The Performer study's tables and figures, from :mod:`ttdm.report.performer`'s numbers.

- ``performer_compare.tex``: softmax against FAVOR+ U-Net on the digits, mean ± std over seeds: time per training
  step, parameters, peak training memory, FD, feature precision and recall, class KL, ELBO (bits/dim);
- ``performer_scaling.tex``: per attention implementation, the fitted time and memory slopes, the crossover length
  against softmax (SDPA) and the time at the shortest and longest L;
- ``performer_unet.tex``: a U-Net training step on larger images with each attention (when measured);
- ``performer_targets.tex``: the issue's targets, met or not;
- ``attention_scaling.pdf``: time and memory against L, log-log, fitted slopes in the legend, the crossover marked;
- ``attention_error.pdf``: FAVOR+'s relative error against m, one panel per trained network, one line per t.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ttdm.report import performer as perf
from ttdm.report.tables import booktabs, fmt_number, fmt_spread, pm_cell, tex_escape, write_table

PathLike = str | os.PathLike
COMPARE_COLUMNS = {"ms_per_step": "ms / step", "params": "Params", "peak_train_mem_mb": "Peak mem.\\ (MiB)",
                   "fd": "FD", "f_precision": "Prec.", "f_recall": "Rec.", "class_kl": "Class KL",
                   "elbo_bpd": "ELBO (bits/dim)"}
ATTENTION_LABELS = {"softmax": "softmax", "performer": "FAVOR+"}
# one colour per method, solid for ttdm's implementations and dashed for the references
LINES = {"softmax": {"color": "#1f77b4", "marker": "o", "ls": "-"},
         "softmax-explicit": {"color": "#1f77b4", "marker": "s", "ls": "--"},
         "performer": {"color": "#d62728", "marker": "^", "ls": "-"},
         "performer-pytorch": {"color": "#d62728", "marker": "v", "ls": "--"}}
IMPLEMENTATION_LABELS = {"softmax": "softmax (SDPA)", "softmax-explicit": "softmax (explicit)",
                         "performer": "FAVOR+ (ours)", "performer-pytorch": "performer-pytorch"}


def _cell(value: Any, std: Any = None) -> str:
    if value is None or not np.isfinite(value):
        return "--"
    return pm_cell(fmt_number(value), fmt_spread(std, value) if std is not None and np.isfinite(std) else "")


def _params(n: float) -> str:
    return "--" if not np.isfinite(n) else f"{n / 1e3:.1f}k" if n < 1e6 else f"{n / 1e6:.2f}M"


def compare_table(summary: pd.DataFrame, models: list[str]) -> str:
    """One row per model (the study's order): attention and every :data:`COMPARE_COLUMNS` metric, mean ± std."""
    header = ["Model", "Attention", "Seeds"] + list(COMPARE_COLUMNS.values())
    rows = []
    for model in models:
        sub = summary[summary["model"] == model].set_index("metric")
        if sub.empty:
            continue
        cells = []
        for metric in COMPARE_COLUMNS:
            if metric not in sub.index:
                cells.append("--")
            elif metric == "params":
                cells.append(_params(float(sub.loc[metric, "mean"])))
            elif metric == "peak_train_mem_mb":  # one measurement per model (complexity.csv), not per seed
                cells.append(_cell(float(sub.loc[metric, "mean"])))
            else:
                cells.append(_cell(float(sub.loc[metric, "mean"]), float(sub.loc[metric, "std"])))
        attention = str(sub["attention"].iloc[0])
        rows.append([f"\\texttt{{{tex_escape(model)}}}", ATTENTION_LABELS.get(attention, tex_escape(attention)),
                     str(int(sub["n_seeds"].max()))] + cells)
    return booktabs(header, rows, align="llr" + "r" * len(COMPARE_COLUMNS))


def scaling_table(bench: pd.DataFrame, fits: pd.DataFrame) -> str:
    """Per implementation and device: time and memory slopes, the time crossover against softmax (SDPA), and the
    forward + backward time at the shortest and the longest length it was run at."""
    header = ["Implementation", "Device", "Time slope", "Memory slope", "Crossover $L$", "ms at $L_{\\min}$",
              "ms at $L_{\\max}$"]
    rows = []
    for (name, device), g in bench.groupby(["implementation", "device"], sort=False):
        f = fits[fits["device"] == device]
        cross = perf.fit_value(f, name, "time", "crossover_length")
        first, last = g.loc[g["length"].idxmin()], g.loc[g["length"].idxmax()]
        rows.append([IMPLEMENTATION_LABELS.get(name, tex_escape(name)), tex_escape(device),
                     _cell(perf.fit_value(f, name, "time")), _cell(perf.fit_value(f, name, "memory")),
                     "--" if name == "softmax" else (f"${int(cross)}$" if np.isfinite(cross) else "none"),
                     f"{_cell(first['fwd_bwd_ms'])} ($L = {int(first['length'])}$)",
                     f"{_cell(last['fwd_bwd_ms'])} ($L = {int(last['length'])}$)"])
    return booktabs(header, rows, align="llrrrrr")


def unet_table(unet: pd.DataFrame) -> str:
    """Per image size: tokens at the attention, ms per training step and memory with each attention, and FAVOR+'s
    time over softmax's."""
    header = ["Image", "Tokens", "Softmax (ms)", "FAVOR+ (ms)", "FAVOR+ / softmax", "Softmax (MB)", "FAVOR+ (MB)"]
    rows = []
    for (size, device), g in unet.groupby(["image_size", "device"], sort=True):
        by = g.set_index("attention")
        soft, fav = by.loc["softmax"], by.loc["performer"]
        rows.append([f"${int(size)}\\times{int(size)}$ ({tex_escape(device)})", f"${int(soft['tokens'])}$",
                     _cell(soft["step_ms"]), _cell(fav["step_ms"]), _cell(fav["step_ms"] / soft["step_ms"]),
                     _cell(soft["peak_mem_mb"]), _cell(fav["peak_mem_mb"])])
    return booktabs(header, rows, align="lrrrrrr")


def targets_table(targets: pd.DataFrame) -> str:
    """The targets: what, the measured value against its threshold, met or not."""
    header = ["Target", "Value", "Threshold", "Met", "Note"]
    rows = [[t["text"], _cell(t["value"]), _cell(t["threshold"]), "yes" if t["met"] else "\\textbf{no}",
             tex_escape(t["note"]) if isinstance(t["note"], str) else ""] for _, t in targets.iterrows()]
    return booktabs(header, rows, align="lrrll")


def plot_scaling(bench: pd.DataFrame, fits: pd.DataFrame):
    """Forward + backward time (left) and memory (right) against L, log-log, one line per implementation; the legend
    below gives each one's fitted time and memory slopes; the time crossover of FAVOR+ against softmax (SDPA) is a
    dotted vertical line."""
    from ttdm.report import style

    cuda = (bench["device"] == "cuda").all()
    memory = "peak memory (MB)" if cuda else "saved for backward (MB)"
    with style.plt.rc_context(style.RC):
        fig, axes = style.plt.subplots(1, 2, figsize=(style.TEXT_WIDTH_IN, 2.9), layout="constrained")
        for (name, device), g in bench.groupby(["implementation", "device"], sort=False):
            f = fits[fits["device"] == device]
            tag = IMPLEMENTATION_LABELS.get(name, name) + ("" if not cuda and device == "cpu" else f" {device}")
            label = (f"{tag}: slopes {perf.fit_value(f, name, 'time'):.2f} (time), "
                     f"{perf.fit_value(f, name, 'memory'):.2f} (memory)")
            for ax, column in zip(axes, ("fwd_bwd_ms", "peak_mem_mb")):
                ax.plot(g["length"], g[column], label=label, **LINES.get(name, {}), ms=3, lw=1.2)
        for ax, label in zip(axes, ("forward + backward (ms)", memory)):
            ax.set_xlabel("sequence length $L$")
            ax.set_ylabel(label)
            style.log_axes(ax, "x", "y")
        cross = perf.fit_value(fits, "performer", "time", "crossover_length")
        if np.isfinite(cross):
            axes[0].axvline(cross, color="0.3", ls=":", lw=1.0)
            axes[0].annotate(f"crossover $L = {int(cross)}$", (cross, 0.98), xycoords=("data", "axes fraction"),
                             xytext=(-3, 0), textcoords="offset points", ha="right", va="top", rotation=90,
                             fontsize=style.TEXT_PT - 2)
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=2, frameon=False,
                   fontsize=style.TEXT_PT - 2)
    return fig


def plot_errors(errors: pd.DataFrame, labels: dict[str, str]):
    """FAVOR+'s relative error against m (log-log), one panel per trained network, one line per t (mean ± std over
    the draws), and m^{-1/2} through the first point as a dashed reference."""
    from ttdm.report import style

    models = list(dict.fromkeys(errors["model"]))
    times = sorted(errors["t"].unique())
    with style.plt.rc_context(style.RC):
        fig, axes = style.plt.subplots(1, len(models), figsize=(style.TEXT_WIDTH_IN, 2.5), squeeze=False,
                                       sharey=True, layout="constrained")
        for ax, model in zip(axes[0], models):
            g = errors[errors["model"] == model]
            for i, t in enumerate(times):
                line = g[g["t"] == t].sort_values("features")
                ax.errorbar(line["features"], line["mean"], yerr=line["std"].fillna(0.0), color=style.PALETTE[i],
                            marker=style.MARKERS[i], ms=3, lw=1.2, capsize=2, label=f"$t = {t:g}$")
            first = g[g["features"] == g["features"].min()]["mean"].mean()
            m = np.sort(g["features"].unique()).astype(float)
            ax.plot(m, first * np.sqrt(m[0] / m), color="0.3", ls="--", lw=1.0, label="$\\propto m^{-1/2}$")
            ax.set_title(labels.get(model, model))
            ax.set_xlabel("random features $m$")
            style.log_axes(ax, "x", "y")
        axes[0][0].set_ylabel("relative error")
        axes[0][0].legend(fontsize=style.TEXT_PT - 2)
    return fig


def write_performer(entries: list[dict[str, Any]], error_files: dict[str, PathLike], bench_files: Iterable[PathLike],
                    complexity: PathLike | None, *, models: list[str], out_tables: Path,
                    out_figures: Path, device_folders: Iterable[PathLike] = ()) -> list[Path]:
    """Every file of the study: performer.csv (per run), performer_summary.csv, performer_error.csv,
    performer_targets.csv, the LaTeX tables and the two figures.  The benchmarks of ``device_folders`` (other
    devices, e.g. a GPU) join this machine's rows in the scaling and U-Net tables; the targets and the scaling
    figure stay this machine's."""
    from ttdm.report.style import save_figure

    attention = {e["model"]: e["attention"] for e in entries}
    runs = perf.collect_runs(entries, complexity)
    summary = perf.summarize(runs)
    errors = perf.error_summary(error_files, attention)
    bench = perf.read_bench(bench_files)
    if bench["attention"] is None or bench["attention_fit"] is None:
        raise ValueError("ttdm performer-report: the attention benchmark's attention.csv and attention_fit.csv "
                         "were not given")
    targets = perf.targets(summary, bench["attention"], bench["attention_fit"], softmax=models[0],
                           performer=models[1])
    out_tables, out_figures = Path(out_tables), Path(out_figures)
    written: list[Path] = []

    def write(name: str, content: pd.DataFrame | str) -> None:
        written.append(write_table(out_tables / name, content))

    write("performer.csv", runs)
    write("performer_summary.csv", summary)
    write("performer_error.csv", errors)
    write("performer_targets.csv", targets)
    write("performer_compare.tex", compare_table(summary, models))
    shown = perf.merge_bench([bench, *(perf.read_device_bench(d) for d in device_folders)])
    write("performer_scaling.tex", scaling_table(shown["attention"], shown["attention_fit"]))
    write("performer_targets.tex", targets_table(targets))
    if bench["attention_unet"] is not None:
        write("performer_unet.tex", unet_table(shown["attention_unet"]))
    labels = {m: f"{m} ({ATTENTION_LABELS.get(attention.get(m, ''), '')}-trained)" for m in models}
    written += save_figure(plot_scaling(bench["attention"], bench["attention_fit"]), out_figures, "attention_scaling")
    if len(errors):
        written += save_figure(plot_errors(errors, labels), out_figures, "attention_error")
    return written
