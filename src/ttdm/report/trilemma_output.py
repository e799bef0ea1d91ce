"""The trilemma study's tables and figure, from :mod:`ttdm.report.trilemma`'s annotated rows.

- ``trilemma_{dataset}.tex``: seed 003's table form (method, NFE, quality, model size) with the diversity and speed
  columns and the three ranks, for the settings the config shows; the data floor first, the sampler floor last;
- ``trilemma_methods.tex``: per dataset and model, the method, parameters, training seconds, ODE NLL and bound;
- ``trilemma_targets.tex``: the issue's targets, met or not;
- ``trilemma_pareto.pdf``: the primary metric against NFE, one panel per dataset, every model and sampler, the
  Pareto front, the data floor and the sampler floor.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ttdm.report import trilemma as tri
from ttdm.report.tables import DISTANCE_METRICS, METRIC_LABELS, booktabs, fmt_number, tex_escape, write_table

PathLike = str | os.PathLike
TABLE_COLUMNS = {"hq_percent": "HQ (\\%)", "fd": "FD", "swd": "SWD", "modes_covered": "Modes", "class_kl": "Class KL",
                 "precision": "Prec.", "density": "Dens.", "recall": "Rec.", "coverage": "Cov.",
                 "f_precision": "Prec.", "f_density": "Dens.", "f_recall": "Rec.", "f_coverage": "Cov."}


def _cell(value: Any, std: Any = None) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "--"
    if std is not None and isinstance(std, float) and np.isfinite(std):
        return f"${fmt_number(value)} \\pm {fmt_number(std)}$"
    return f"${fmt_number(value)}$"


COUNT_METRICS = ("modes_covered", "classes_covered")  # printed as integers when every seed agrees


def _params(n: Any) -> str:
    if n is None or not np.isfinite(n):
        return "--"
    n = float(n)
    return "0" if n == 0 else f"{n / 1e3:.1f}k" if n < 1e6 else f"{n / 1e6:.2f}M"


def model_cell(row: pd.Series) -> str:
    """"mlp (DDPM)": the model name and its method."""
    return f"\\texttt{{{tex_escape(row['model'])}}} ({tri.METHOD_LABELS.get(row['method'], tex_escape(row['method']))})"


def dataset_table(table: pd.DataFrame, floor: dict[str, float], labels: dict[str, str]) -> tuple[pd.DataFrame, str]:
    """The table of one dataset: its shown rows, ordered by model (config order) then NFE, the data floor first and
    the sampler floor last. Returns (the display strings, one row per table row; the LaTeX tabular)."""
    kind = {"hq_percent": "mixture", "fd": "classified"}.get(table["primary"].iloc[0], "other")
    extras, diversity = tri.COLUMNS[kind]
    primary = table["primary"].iloc[0]
    metrics = [primary, *extras, *diversity]
    header = (["Model (method)", "Sampler", "NFE"] + [TABLE_COLUMNS.get(m, METRIC_LABELS.get(m, m)) for m in metrics]
              + ["Params", "s / 1k", "Ranks Q/D/S"])
    rows = [["data floor", "--", "--"] + [_cell(floor.get(m)) for m in metrics] + ["--", "--", "--"]]
    shown = table[table["shown"]]
    order = list(dict.fromkeys(shown["model"]))
    shown = shown.assign(_order=shown["model"].map({m: i for i, m in enumerate(order)}) + shown["reference"] * 1e6)
    for _, r in shown.sort_values(["_order", "nfe", "sampler"]).iterrows():
        name = "sampler floor" if r["reference"] else model_cell(r)
        ranks = ("--" if r["reference"] or pd.isna(r["rank_quality"]) else
                 f"{int(r['rank_quality'])}/{int(r['rank_diversity'])}/{int(r['rank_speed'])}")
        quality = _cell(r.get(primary), r.get(f"{primary}_std"))
        if primary in DISTANCE_METRICS and floor.get(primary, 0) > 0 and np.isfinite(r.get(primary, np.nan)):
            quality += f" ($\\times {fmt_number(r[primary] / floor[primary])}$)"  # a multiple of the data floor
        cells = [quality] + [f"${int(r[m])}$" if m in COUNT_METRICS and float(r.get(m, np.nan)).is_integer()
                             else _cell(r.get(m)) for m in metrics[1:]]
        rows.append([name, labels.get(r["sampler"], tex_escape(r["sampler"])), str(int(r["nfe"]))] + cells
                    + [_params(r.get("params")), _cell(r.get("s_per_1k")), ranks])
    display = pd.DataFrame(rows, columns=[h.replace("\\", "") for h in header])
    return display, booktabs(header, rows, align="ll" + "r" * (len(header) - 2), groups=[1, len(rows) - sum(
        shown["reference"])] if shown["reference"].any() else [1])


def methods_table(table: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Per dataset and model (the sampler floor left out): method, parameters, training seconds (with the runs it
    needs), the probability-flow NLL in nats/dim and the method's variational bound in bits/dim, where computed."""
    runs = table[~table["reference"]].drop_duplicates(["dataset", "model"])
    header = ["Dataset", "Model (method)", "Params", "Training (s)", "ODE NLL (nats/dim)", "Bound (bits/dim)"]
    rows, groups, last = [], [], None
    for _, r in runs.iterrows():
        if r["dataset"] != last:
            groups.append(len(rows))
            last = r["dataset"]
        rows.append([tex_escape(r["dataset"]), model_cell(r), _params(r.get("params")),
                     _cell(r.get("train_s"), r.get("train_s_std")), _cell(r.get("nll"), r.get("nll_std")),
                     _cell(r.get("bound_bpd"), r.get("bound_bpd_std"))])
    return pd.DataFrame(rows, columns=header), booktabs(header, rows, align="llrrrr", groups=groups)


def targets_table(targets: pd.DataFrame) -> str:
    """The targets: what, where, the measured value against its threshold, met or not."""
    header = ["Target", "Dataset", "Model", "Value", "Threshold", "Met"]
    rows = [[t["text"], tex_escape(t["dataset"]), f"\\texttt{{{tex_escape(t['model'])}}}",
             _cell(t["value"]), _cell(t["threshold"]), "yes" if t["met"] else "\\textbf{no}"]
            for _, t in targets.iterrows()]
    return booktabs(header, rows, align="lllrrl")


OFF_SCALE = 20.0  # a distance above this multiple of its data floor is drawn at the top edge, as off scale


def clip_off_scale(ax: Any, rows: pd.DataFrame, floor: float | None) -> None:
    """On a distance's log axis, cut the y range at ``OFF_SCALE`` times the data floor when some row lies above it
    (a diverged setting would squash every other curve), and say how many rows are cut at the top edge."""
    if ax.get_yscale() != "log" or floor is None or not np.isfinite(floor) or floor <= 0:
        return
    top = OFF_SCALE * floor
    off = rows[rows["quality"] > top]
    if not len(off):
        return
    ax.set_ylim(top=top)
    ax.text(0.02, 0.98, f"{len(off)} off scale (> {top:.3g})", transform=ax.transAxes, ha="left", va="top",
            fontsize=6)  # the findings name them


def plot_pareto(table: pd.DataFrame, per_seed: pd.DataFrame, floors: dict[str, dict[str, float]],
                reference: str | None, models: list[str]):
    """One panel per dataset: the primary metric against NFE for every model and sampler (mean ± std over seeds),
    the data floor dashed, the sampler floor dotted, and the Pareto front as a thick grey step line."""
    import matplotlib.pyplot as plt

    from ttdm.report import style
    from ttdm.report.figures import draw_nfe

    datasets = list(dict.fromkeys(table["dataset"]))
    with plt.rc_context(style.RC):
        fig, axes = plt.subplots(1, len(datasets), figsize=(style.TEXT_WIDTH_IN, 2.6), squeeze=False)
        handles: dict[str, Any] = {}
        for ax, dataset in zip(axes[0], datasets):
            sub = table[table["dataset"] == dataset]
            primary = sub["primary"].iloc[0]
            long = per_seed[(per_seed["dataset"] == dataset) & (per_seed["metric"] == primary)]
            for h in draw_nfe(ax, long, floors.get(dataset, {}).get(primary), metric=primary,
                              sampler_floor=reference, models=models):
                handles.setdefault(h.get_label(), h)
            clip_off_scale(ax, sub, floors.get(dataset, {}).get(primary))
            front = sub[sub["pareto"]].sort_values("nfe")
            if len(front):
                ax.step(front["nfe"], front["quality"], where="post", color="0.6", lw=3, alpha=0.5, zorder=0)
            ax.set_title(dataset)
        from matplotlib.lines import Line2D

        handles["Pareto front"] = Line2D([], [], color="0.6", lw=3, alpha=0.5, label="Pareto front")
        fig.tight_layout(rect=(0, 0.16, 1, 1))
        fig.legend(handles=list(handles.values()), loc="lower center", ncol=min(6, len(handles)),
                   bbox_to_anchor=(0.5, 0.0))
    return fig


def write_trilemma(entries: list[dict[str, Any]], kinds: dict[str, str], labels: dict[str, str],
                   floor_files: Iterable[PathLike], *, shown: Iterable[str], reference: str | None,
                   models: list[str], out_tables: Path, out_figures: Path) -> list[Path]:
    """Every file of the study: trilemma.csv (per seed), trilemma_summary.csv (one row per dataset, model and
    setting, with ranks and the Pareto flag), trilemma_targets.csv, the LaTeX tables and the Pareto figure."""
    from ttdm.report.style import save_figure

    per_seed = tri.collect(entries, kinds)
    table = tri.annotate(tri.wide(tri.summarize(per_seed)), reference=reference, shown=shown)
    targets = tri.targets(table)
    floors = {Path(f).parent.name: tri._long(f) for f in floor_files}
    table["floor_quality"] = [floors.get(d, {}).get(p, np.nan) for d, p in zip(table["dataset"], table["primary"])]
    out_tables, out_figures = Path(out_tables), Path(out_figures)
    out_tables.mkdir(parents=True, exist_ok=True)
    written = []

    def write(name: str, content: pd.DataFrame | str) -> None:
        written.append(write_table(out_tables / name, content))

    write("trilemma.csv", per_seed)
    write("trilemma_summary.csv", table)
    write("trilemma_targets.csv", targets)
    write("trilemma_targets.tex", targets_table(targets))
    display, tex = methods_table(table)
    write("trilemma_methods.tex", tex)
    write("trilemma_methods_display.csv", display)
    for dataset, sub in table.groupby("dataset", sort=False):
        display, tex = dataset_table(sub, floors.get(dataset, {}), labels)
        write(f"trilemma_{dataset}.tex", tex)
        write(f"trilemma_{dataset}_display.csv", display)
    written += save_figure(plot_pareto(table, per_seed, floors, reference, models), out_figures, "trilemma_pareto")
    return written
