"""The DSNO study's tables, from :mod:`ttdm.report.dsno`'s rows.

- ``dsno_{dataset}.tex``: seed 003's table (method, sampler, NFE, quality, model size) for the shown settings, the
  data floor first and the sampler floor last; ``dsno_{dataset}_display.csv`` the same cells;
- ``dsno_ablation.tex``: the ablation students (M, temporal convolution): one-step quality, per-sample error
  against the teacher, forward time against the backbone, parameters;
- ``dsno_error.tex``: every student against its teacher: per-sample error (mean ± std over seeds, median, the end
  points' RMS) and the forward time of student and backbone at each timed batch size;
- ``dsno_device.tex``: the forward times measured on other devices (``dsno.device_timings``: e.g. a GPU, at the
  sizes of the config the script read), per student and batch, with one training step of student and teacher;
- ``dsno_targets.tex``: the targets, met or not;
- ``dsno_samples.pdf``: per dataset, the main student's one-step samples beside the teacher's ODE end points from
  the same held-out noises (dsno-eval's pairs);
- CSVs: ``dsno.csv`` (per seed), ``dsno_summary.csv`` (annotated rows), ``dsno_eval.csv`` (per seed) and
  ``dsno_error.csv`` (per student, mean ± std over seeds), ``dsno_ablation.csv``, ``dsno_cost.csv`` (seconds of
  every job the students add, from Snakemake's benchmark files), ``dsno_targets.csv``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ttdm.report import dsno as ds
from ttdm.report import trilemma as tri
from ttdm.report.claims import tt
from ttdm.report.tables import DISTANCE_METRICS, booktabs, fmt_number, tex_escape, write_table
from ttdm.report.trilemma_output import TABLE_COLUMNS, _cell, _params, model_cell, targets_table

PathLike = Any


def compare_table(table: pd.DataFrame, floor: dict[str, float], labels: dict[str, str]) -> tuple[pd.DataFrame, str]:
    """One dataset's table in seed 003's form: model (method), sampler, NFE, quality (the primary metric, with its
    multiple of the data floor for a distance), precision and recall (on the classifier's features for the
    digits), parameters; the data floor first, the sampler floor last."""
    primary = table["primary"].iloc[0]
    kind = {"hq_percent": "mixture", "fd": "classified"}.get(primary, "other")
    pr = [tri.COLUMNS[kind][0][0], tri.COLUMNS[kind][1][0]]  # precision, recall
    header = (["Model (method)", "Sampler", "NFE", TABLE_COLUMNS.get(primary, primary)]
              + [TABLE_COLUMNS.get(m, m) for m in pr] + ["Params"])
    rows = [["data floor", "--", "--", _cell(floor.get(primary))] + [_cell(floor.get(m)) for m in pr] + ["--"]]
    shown = table[table["shown"]]
    order = list(dict.fromkeys(shown["model"]))
    shown = shown.assign(_order=shown["model"].map({m: i for i, m in enumerate(order)}) + shown["reference"] * 1e6)
    for _, r in shown.sort_values(["_order", "nfe", "sampler"]).iterrows():
        quality = _cell(r.get(primary), r.get(f"{primary}_std"))
        if primary in DISTANCE_METRICS and floor.get(primary, 0) > 0 and np.isfinite(r.get(primary, np.nan)):
            quality += f" ($\\times {fmt_number(r[primary] / floor[primary])}$)"
        name = "sampler floor" if r["reference"] else model_cell(r)
        name = f"\\textbf{{{name}}}" if r["method"] == "dsno" else name
        rows.append([name, labels.get(r["sampler"], tex_escape(r["sampler"])), str(int(r["nfe"])), quality]
                    + [_cell(r.get(m)) for m in pr] + [_params(r.get("params"))])
    display = pd.DataFrame(rows, columns=[h.replace("\\", "") for h in header])
    groups = [1, len(rows) - int(shown["reference"].sum())] if shown["reference"].any() else [1]
    return display, booktabs(header, rows, align="llrrrrr", groups=groups)


def ablation_table(abl: pd.DataFrame, batch_sizes: list[int]) -> str:
    """The ablation: M, temporal convolution, quality, per-sample error, forward-time ratios, parameters."""
    if not len(abl):
        return ""
    primary = abl["primary"].iloc[0]
    header = (["Model", "$M$", "Temporal conv.", TABLE_COLUMNS.get(primary, primary), "Error to teacher"]
              + [f"Time / backbone ($B = {b}$)" for b in batch_sizes] + ["Params"])
    rows = []
    for _, r in abl.iterrows():
        rows.append([tt(r["model"]), str(int(r["M"])), "yes" if r["temporal"] else "no",
                     _cell(r["quality"], r["quality_std"]), _cell(r.get("error_mean"), r.get("error_mean_std"))]
                    + [_cell(r.get(f"time_ratio_b{b}")) for b in batch_sizes] + [_params(r.get("params"))])
    return booktabs(header, rows, align="lrl" + "r" * (len(header) - 3))


def error_table(evals: pd.DataFrame, batch_sizes: list[int]) -> str:
    """Per student: dataset, model, M, per-sample error (mean ± std, median), the end points' RMS, and per timed
    batch size the student's and the backbone's forward time (ms) with their ratio."""
    if not len(evals):
        return ""
    header = (["Dataset", "Student", "$M$", "Error", "Median", "End RMS"]
              + [f"Student / backbone, $B = {b}$ (ms)" for b in batch_sizes])
    rows = []
    for _, r in evals.iterrows():
        times = []
        for b in batch_sizes:
            s, k = r.get(f"student_ms_b{b}"), r.get(f"backbone_ms_b{b}")
            times.append(f"{_cell(s)} / {_cell(k)} (${fmt_number(s / k)}\\times$)" if pd.notna(s) and pd.notna(k)
                         else "--")
        rows.append([tt(r["dataset"]), tt(r["model"]), str(int(r["M"])),
                     _cell(r.get("error_mean"), r.get("error_mean_std")), _cell(r.get("error_median")),
                     _cell(r.get("end_rms"))] + times)
    return booktabs(header, rows, align="llr" + "r" * (len(header) - 3))


def device_table(devices: pd.DataFrame) -> str:
    """Per student (and device, when there are several): M, temporal convolution, parameters (student / backbone),
    for each batch B the student's and the backbone's forward time (ms) with their ratio, and one training step of
    each (ms, at their training batch) when measured."""
    if not len(devices):
        return ""
    batches = sorted(int(b) for b in devices["batch"].unique())
    several = devices["device_name"].nunique() > 1
    steps = "student_step_ms" in devices and "teacher_step_ms" in devices
    header = ((["Device"] if several else []) + ["Dataset", "Student", "$M$", "Temp.", "Params"]
              + [f"$B = {b}$ (ms)" for b in batches] + (["Train step (ms)"] if steps else []))
    rows = []
    for (device, dataset, model), g in devices.groupby(["device_name", "dataset", "model"], sort=False):
        r = g.iloc[0]
        by_b = {int(x["batch"]): x for _, x in g.iterrows()}
        times = [f"{_cell(by_b[b]['student_ms'])} / {_cell(by_b[b]['backbone_ms'])} "
                 f"(${fmt_number(by_b[b]['ratio'])}\\times$)" if b in by_b else "--" for b in batches]
        params = (f"{_params(r.get('params_student'))} / {_params(r.get('params_backbone'))}"
                  if "params_student" in r else "--")
        rows.append(([tex_escape(device)] if several else [])
                    + [tt(dataset), tt(model), str(int(r["M"])), "yes" if r["temporal"] else "no", params] + times
                    + ([f"{_cell(r.get('student_step_ms'))} / {_cell(r.get('teacher_step_ms'))}"] if steps else []))
    fixed = 6 if several else 5
    return booktabs(header, rows, align="l" * fixed + "r" * (len(header) - fixed))


IMAGE_PAIRS = 8  # image data: the first 8 (teacher, student) pairs


def _image_strip(teacher: np.ndarray, student: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The first :data:`IMAGE_PAIRS` teacher end points (top row) over the student's samples from the same noises
    (bottom row), channel 0, one pixel of gap: (2 H + 1, n (W + 1) − 1)."""
    _, H, W = shape
    n = min(IMAGE_PAIRS, len(teacher))
    strip = np.full((2 * H + 1, n * (W + 1) - 1), np.nan)
    for i in range(n):
        for row, x in enumerate((teacher, student)):
            strip[row * (H + 1): row * (H + 1) + H, i * (W + 1): i * (W + 1) + W] = x[i].reshape(shape)[0]
    return strip


def _is_image(path: PathLike) -> bool:
    with np.load(path) as f:
        return "image_shape" in f and len(f["image_shape"]) == 3


def plot_samples(pairs: list[dict[str, Any]]):
    """One panel per entry {dataset, model, seed, path}: for vectors, the teacher's ODE end points (grey) and the
    student's one-step samples from the same noises (colour), joined by a segment each (the first two coordinates);
    for images, the first teacher end points over the student's samples (pixel values clipped to [−1, 1])."""
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    from ttdm.report import style

    with plt.rc_context(style.RC):
        widths = [2.0 if _is_image(e["path"]) else 1.0 for e in pairs] or [1.0]
        fig, axes = plt.subplots(1, len(widths), figsize=(style.TEXT_WIDTH_IN, 2.4), squeeze=False,
                                 gridspec_kw={"width_ratios": widths})
        handles, labels = [], []
        for ax, e in zip(axes[0], pairs):
            with np.load(e["path"]) as f:
                student, teacher = f["student"], f["teacher"]
                shape = tuple(int(v) for v in f["image_shape"]) if "image_shape" in f else ()
            ax.set_xticks([])
            ax.set_yticks([])
            if len(shape) == 3:
                ax.imshow(_image_strip(teacher, student, shape), cmap="gray_r", vmin=-1, vmax=1,
                          interpolation="nearest")
                ax.set_title(f"{e['dataset']} ({e['model']})")
                ax.set_ylabel("DSNO    teacher", fontsize="small")
                continue
            student, teacher = student[:, :2], teacher[:, :2]
            ax.add_collection(LineCollection(np.stack([teacher, student], axis=1), colors="0.75", linewidths=0.4))
            ax.scatter(teacher[:, 0], teacher[:, 1], s=3, color="0.5", label="teacher ODE end point")
            ax.scatter(student[:, 0], student[:, 1], s=3, color=style.color_of(e["model"]), label="DSNO, 1 NFE")
            ax.set_title(f"{e['dataset']} ({e['model']})")
            ax.set_aspect("equal", adjustable="datalim")
            if not handles:
                handles, labels = ax.get_legend_handles_labels()
        fig.tight_layout(rect=(0, 0.1 if handles else 0, 1, 1))
        if handles:
            fig.legend(handles, labels, loc="lower center", ncol=2, markerscale=3)
    return fig


def write_dsno(entries: list[dict[str, Any]], eval_entries: list[dict[str, Any]], kinds: dict[str, str],
               labels: dict[str, str], floor_files: Iterable[PathLike], *, shown: Iterable[str], reference: str | None,
               ablation: dict[str, Any], main: str, batch_sizes: list[int], models: list[str],
               datasets: list[str], cost_files: Iterable[PathLike] = (), pairs: list[dict[str, Any]] = (),
               device_files: Iterable[PathLike] = (), out_tables: Path, out_figures: Path) -> list[Path]:
    """Every file of the study (see the module docstring); returns the paths written.  ``models``, ``datasets``:
    the comparison's (``dsno.models``, ``dsno.datasets``): the per-dataset tables and the quality and time targets are theirs; the
    ablation's other students appear in the CSVs and the ablation table only."""
    per_seed, table = ds.compare(entries, kinds, reference=reference, shown=shown)
    eval_seed = ds.collect_evals(eval_entries)
    evals = ds.summarize_evals(eval_seed)
    abl = ds.ablation(table, evals, ablation["dataset"], ablation["models"])
    main_rows = table[table["model"].isin(models) & table["dataset"].isin(datasets)]
    costs = ds.job_seconds(cost_files)
    devices = ds.device_timings(device_files)
    targets = ds.targets(main_rows, evals, abl, main=main, batch_sizes=batch_sizes, costs=costs, devices=devices)
    floors = {Path(f).parent.name: tri._long(f) for f in floor_files}
    out_tables = Path(out_tables)
    out_tables.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def write(name: str, content: pd.DataFrame | str) -> None:
        written.append(write_table(out_tables / name, content))

    write("dsno.csv", per_seed)
    write("dsno_summary.csv", table)
    write("dsno_eval.csv", eval_seed)
    write("dsno_error.csv", evals)
    write("dsno_error.tex", error_table(evals, batch_sizes))
    write("dsno_ablation.csv", abl)
    write("dsno_ablation.tex", ablation_table(abl, batch_sizes))
    write("dsno_cost.csv", costs)
    write("dsno_device.csv", devices)
    write("dsno_device.tex", device_table(devices))
    write("dsno_targets.csv", targets)
    write("dsno_targets.tex", targets_table(targets))
    for dataset, sub in main_rows.groupby("dataset", sort=False):
        display, tex = compare_table(sub, floors.get(dataset, {}), labels)
        write(f"dsno_{dataset}.tex", tex)
        write(f"dsno_{dataset}_display.csv", display)
    from ttdm.report.style import save_figure

    first = {}
    for e in sorted(pairs, key=lambda e: (datasets.index(e["dataset"]) if e["dataset"] in datasets else 1e9,
                                          models.index(e["model"]) if e["model"] in models else 1e9, e["seed"])):
        if e["dataset"] in datasets and e["model"] in models:
            first.setdefault(e["dataset"], e)
    written += save_figure(plot_samples(list(first.values())), Path(out_figures), "dsno_samples")
    return written
