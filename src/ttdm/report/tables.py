"""Result tables: metrics collected over seeds, summaries against the data floor, CSV and booktabs LaTeX writers.

Numbers are printed with ``SIG`` = 3 significant digits in positional notation (never an exponent), by
:func:`fmt_number`; integers (parameter counts, steps) are printed exactly. Every LaTeX table ``X.tex`` has a
``X_display.csv`` beside it holding, one number per cell, the exact strings the table prints, so a test can find them
in the compiled PDF. A LaTeX cell is built from those strings only: "mean ± std" is ``$m \\pm s$`` and a ratio to the
data floor is appended as ``($\\times r$)``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ttdm.io import atomic_write
from ttdm.report.files import run_key

SIG = 3
DISTANCE_METRICS = ("swd", "mmd", "energy", "w2", "fd")  # fd: on a classifier's features (digits)
MODE_METRICS = ("modes_covered", "hq_percent")
METRIC_LABELS = {"swd": "SWD", "mmd": "MMD$^2$", "energy": "Energy", "w2": "$W_2$", "modes_covered": "Modes",
                 "hq_percent": "HQ (\\%)", "nll": "NLL (nats/dim)", "precision": "Prec.", "recall": "Rec.",
                 "density": "Dens.", "coverage": "Cov.", "sample_logp": "$\\log p$ (nats/dim)",
                 "nonfinite_fraction": "Non-finite (\\%)", "mode_kl": "Mode KL", "fd": "FD",
                 "f_precision": "Prec.$_\\phi$", "f_recall": "Rec.$_\\phi$", "f_density": "Dens.$_\\phi$",
                 "f_coverage": "Cov.$_\\phi$", "class_kl": "Class KL", "classes_covered": "Classes"}
# the per-run appendix tables: test NLL, SWD, precision/recall/density/coverage, sample log-density, non-finite share
RUN_METRICS = ("nll", "swd", "precision", "recall", "density", "coverage", "sample_logp", "nonfinite_fraction")
EXPLODING = 10.0  # a run "explodes" at a setting when its SWD exceeds this multiple of the data floor's SWD
RUN_ROWS = 40  # rows per per-run table (a new table starts at a dataset boundary)
KEYS = ["dataset", "model", "sampler", "steps", "nfe", "metric"]
METRIC_COLUMNS = ["dataset", "model", "seed", "sampler", "steps", "nfe", "metric", "value"]
FLOOR_COLUMNS = ["dataset", "metric", "value"]
_TEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
PathLike = str | os.PathLike
# benchmark columns: human headers with units; other columns get their name with spaces (n_fit -> N fit)
COLUMN_LABELS = {"model": "Model", "dataset": "Dataset", "arch": "Architecture", "optimizer": "Optimizer",
                 "rank": "Rank", "degree": "Degree", "layout": "Layout", "n_params": "Parameters", "dim": "$D$",
                 "flops_forward": "FLOPs / forward", "flops_train_step": "FLOPs / step",
                 "peak_train_mem_mb": "Peak memory (MB)", "peak_mem_mb": "Peak memory (MB)", "device": "Device",
                 "threads": "Threads", "batch_size": "Batch", "steps": "Steps", "steps_per_s": "Steps / s",
                 "sampler": "Sampler", "kind": "Kind", "nfe": "NFE", "n_samples": "Samples",
                 "s_per_1000": "Time / 1000 samples (s)", "implementation": "Implementation",
                 "s_per_step": "Time / step (s)"}
CONSTANT_NOTE = "% same in every row: "  # the first line of a table .tex whose constant columns were dropped


def tex_escape(text: object) -> str:
    """``text`` with the LaTeX specials \\ & % $ # _ { } ~ ^ escaped (e.g. swiss_roll -> swiss\\_roll)."""
    return "".join(_TEX_SPECIALS.get(ch, ch) for ch in str(text))


def fmt_number(x: float | None, *, sig: int = SIG) -> str:
    """``x`` rounded to ``sig`` significant digits, positional (0.0123, 1.00, 12300); "" for None, NaN or ±inf."""
    if x is None or not np.isfinite(x):
        return ""
    if x == 0:
        return "0"
    mantissa, exponent = f"{abs(x):.{sig - 1}e}".split("e")  # correctly rounded: "1.23e-02"
    digits, e = mantissa.replace(".", ""), int(exponent)
    if e >= sig - 1:
        text = digits + "0" * (e - sig + 1)
    elif e >= 0:
        text = f"{digits[:e + 1]}.{digits[e + 1:]}"
    else:
        text = "0." + "0" * (-e - 1) + digits
    return ("-" if x < 0 else "") + text


def fmt_spread(std: float | None, mean: float | None, *, sig: int = SIG) -> str:
    """A standard deviation printed to the last decimal place that :func:`fmt_number` prints of ``mean`` (at least
    one significant digit, at most ``sig``): 0.200 ± 0.022, 378 ± 4; "" for None, NaN or ±inf."""
    if std is None or not np.isfinite(std):
        return ""
    if std == 0 or mean is None or not np.isfinite(mean) or mean == 0:
        return fmt_number(std, sig=sig)
    last = int(np.floor(np.log10(abs(float(fmt_number(mean, sig=sig)))))) - sig + 1  # 10^last: mean's last digit
    first = int(np.floor(np.log10(abs(std))))  # 10^first: the std's first significant digit
    digits = min(sig, max(1, first - last + 1))
    return fmt_number(std, sig=digits)


def fmt_value(x: object, *, sig: int = SIG) -> str:
    """A table cell's string: integers exactly, floats by :func:`fmt_number`, anything else as text."""
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        return fmt_number(float(x), sig=sig)
    return "" if x is None or (isinstance(x, str) and x == "") else str(x)


def pm_cell(mean: str, std: str = "", ratio: str = "") -> str:
    """The LaTeX cell "$m \\pm s$ ($\\times r$)" from display strings; "--" when ``mean`` is empty."""
    if not mean:
        return "--"
    cell = f"${mean} \\pm {std}$" if std else f"${mean}$"
    return f"{cell} ($\\times {ratio}$)" if ratio else cell


def bold_cell(cell: str) -> str:
    """A LaTeX cell set in bold (math included); its printed numbers are unchanged."""
    return f"{{\\boldmath {cell}}}" if cell and cell != "--" else cell


def separated_best(stats: pd.DataFrame, *, higher_is_better: bool = False) -> str | None:
    """The index of the best row of ``stats`` (columns mean, std and n_seeds, or se; lowest mean first, highest with
    ``higher_is_better``) when the spread rule (:func:`ttdm.report.claims.separated`) separates it from every other
    row; None otherwise (or for one row).

    The standard error of a row is its ``se`` column, else std / √n_seeds; without either, its std is taken as the
    standard error (stricter). A row without a spread (one seed: NaN) is never separated.
    """
    from ttdm.report.claims import separated

    stats = stats.dropna(subset=["mean"])
    if len(stats) < 2:
        return None
    if "se" in stats.columns:
        se = stats["se"].astype(float)
    elif "n_seeds" in stats.columns:
        se = stats["std"].astype(float) / np.sqrt(stats["n_seeds"].astype(float))
    else:
        se = stats["std"].astype(float)
    best = stats["mean"].idxmax() if higher_is_better else stats["mean"].idxmin()
    ok = all(separated(stats.at[best, "mean"], se[best], stats.at[o, "mean"], se[o]) for o in stats.index if o != best)
    return best if ok else None


def column_label(name: str) -> str:
    """The header of a benchmark column: ``COLUMN_LABELS`` or the name with spaces, capitalised."""
    if name in COLUMN_LABELS:
        return COLUMN_LABELS[name]
    text = tex_escape(name.replace("_", " "))
    return text[:1].upper() + text[1:]


def booktabs(header: Sequence[str], rows: Iterable[Sequence[str]], *, align: str | None = None,
             groups: Sequence[int] = ()) -> str:
    """A booktabs ``tabular`` (\\toprule, \\midrule, \\bottomrule) of LaTeX-ready cells.

    ``groups``: row indices before which a thin rule (\\addlinespace) separates groups, e.g. datasets.
    """
    rows = [list(r) for r in rows]
    align = align or "l" * len(header)
    lines = [f"\\begin{{tabular}}{{{align}}}", "\\toprule", " & ".join(header) + " \\\\", "\\midrule"]
    for i, row in enumerate(rows):
        if i in groups and i > 0:
            lines.append("\\addlinespace")
        lines.append(" & ".join(row) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


def compact_booktabs(header: Sequence[str], rows: Iterable[Sequence[str]], *, align: str,
                     groups: Sequence[int] = ()) -> str:
    """:func:`booktabs` without the columns whose cell is the same in every row (of two or more rows); their
    "header: cell" pairs go to a first comment line ``CONSTANT_NOTE`` for the caption (:func:`constant_note`)."""
    rows = [list(r) for r in rows]
    const = [j for j in range(len(header)) if len(rows) > 1 and len({r[j] for r in rows}) == 1] if rows else []
    const = const if len(const) < len(header) else []
    keep = [j for j in range(len(header)) if j not in const]
    tex = booktabs([header[j] for j in keep], [[r[j] for j in keep] for r in rows],
                   align="".join(align[j] for j in keep), groups=groups)
    note = "; ".join(f"{header[j]}: {rows[0][j]}" for j in const)
    return CONSTANT_NOTE + note.replace("\n", " ") + "\n" + tex if const else tex


def collect_metrics(files: Iterable[PathLike]) -> pd.DataFrame:
    """Concatenate long-format metrics.csv files into one frame with columns ``METRIC_COLUMNS``."""
    frames = []
    for f in files:
        df = pd.read_csv(f)
        missing = set(METRIC_COLUMNS) - set(df.columns)
        if missing:
            raise ValueError(f"{f}: missing columns {sorted(missing)}; expected {METRIC_COLUMNS}")
        frames.append(df[METRIC_COLUMNS])
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in METRIC_COLUMNS})
    df = pd.concat(frames, ignore_index=True)
    df = df.astype({"dataset": str, "model": str, "sampler": str, "metric": str, "seed": int, "steps": int,
                    "nfe": int, "value": float})
    return df.sort_values(METRIC_COLUMNS[:-1], kind="stable").reset_index(drop=True)


def collect_floors(files: Iterable[PathLike]) -> pd.DataFrame:
    """Concatenate floor.csv files (columns dataset, metric, value)."""
    frames = [pd.read_csv(f)[FLOOR_COLUMNS] for f in files]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in FLOOR_COLUMNS})
    return pd.concat(frames, ignore_index=True).astype({"dataset": str, "metric": str, "value": float})


def summarize(df: pd.DataFrame, floors: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample std (ddof = 1, NaN for one seed) over seeds per dataset × model × sampler × steps × metric.

    ``ratio`` = mean / floor for the distance metrics (swd, mmd, energy, w2), where the floor is the same metric of
    a fresh true sample against the test set; NaN for other metrics and where the floor or the mean is missing or
    ≤ 0 (the unbiased MMD² and energy estimators can be ≤ 0, and no ratio to or of such a value is meaningful).
    Columns: KEYS + mean, std, n_seeds, floor, ratio.
    """
    grouped = df.groupby(KEYS, sort=True)["value"]
    out = grouped.agg(mean="mean", std="std", n_seeds="count").reset_index()
    floor = floors.rename(columns={"value": "floor"})[["dataset", "metric", "floor"]]
    out = out.merge(floor, on=["dataset", "metric"], how="left")
    ok = out["metric"].isin(DISTANCE_METRICS) & (out["floor"] > 0) & (out["mean"] > 0)
    out["ratio"] = np.where(ok, out["mean"] / out["floor"].where(ok, 1.0), np.nan)
    return out


def main_setting(summary: pd.DataFrame, main: str | None = None) -> tuple[str, int]:
    """The (sampler, steps) of the main table: ``main`` = "sampler_steps" (e.g. "ddpm_1000"), or by default the
    setting with the most function evaluations (ties: first sampler name)."""
    settings = summary[["sampler", "steps", "nfe"]].drop_duplicates()
    if main is None:
        best = settings.sort_values(["nfe", "sampler"], ascending=[False, True]).iloc[0]
        return str(best["sampler"]), int(best["steps"])
    sampler, _, steps = main.rpartition("_")
    allowed = sorted(f"{s}_{n}" for s, n in zip(settings["sampler"], settings["steps"]))
    if not sampler or not steps.isdigit() or f"{sampler}_{steps}" not in allowed:
        raise ValueError(f"unknown main setting {main!r}; allowed: {', '.join(allowed)}")
    return sampler, int(steps)


def _model_order(models: Iterable[str], sampler_floor: str | None) -> list[str]:
    """Models in the given order with the sampler floor moved last."""
    models = list(dict.fromkeys(models))
    return [m for m in models if m != sampler_floor] + [m for m in models if m == sampler_floor]


def main_table(summary: pd.DataFrame, *, main: str | None = None, sig: int = SIG, sampler_floor: str | None = None,
               diverged: Iterable[tuple[str, str]] = (), floor_rows: bool = True) -> tuple[pd.DataFrame, str]:
    """The main results table: rows dataset × model at the main setting, columns the test NLL (rows of metric "nll",
    :func:`add_likelihood`), the distance metrics as "mean ± std (×floor)" and, where some dataset has them, modes
    covered (of the total) and HQ %.

    Per dataset, the model that the dataset's model-level primary metric (:func:`ttdm.report.claims.model_primaries`:
    NLL where two models have one, else HQ % on mixtures and SWD elsewhere) ranks first is bold where the spread rule
    separates it from every other (:func:`separated_best`). ``sampler_floor`` names the sampler floor model: its row
    comes last, reads "sampler floor" and never ranks. With ``floor_rows``, a mixture dataset (one with HQ %) gets a
    "data floor" row: the metrics of held-out true samples against the test set, and the true NLL. A model with a
    diverged run (``diverged``: (dataset, model) pairs, :func:`divergence`) is marked with a dagger.

    Returns (display frame of the printed strings, LaTeX tabular). Metrics absent everywhere get no column.
    """
    from ttdm.report.claims import DATA_FLOOR_LABEL, SAMPLER_FLOOR_LABEL, dataset_kind, higher_is_better, \
        model_primaries

    sampler, steps = main_setting(summary, main)
    sub = summary[(summary["sampler"] == sampler) & (summary["steps"] == steps)]
    stats = sub.set_index(["dataset", "model", "metric"])
    present = set(sub["metric"])
    lead = [m for m in ("nll",) if m in present]
    dist = [m for m in DISTANCE_METRICS if m in present]
    modes = [m for m in MODE_METRICS if m in present]
    columns = lead + dist + modes
    floors = sub.dropna(subset=["floor"]).groupby(["dataset", "metric"])["floor"].first()
    exclude = [sampler_floor] if sampler_floor else []
    best = {}
    for ds, metric in model_primaries(sub, sampler, steps, exclude=exclude).items():
        rows = sub[(sub["dataset"] == ds) & (sub["metric"] == metric) & ~sub["model"].isin(exclude)]
        best[ds] = (separated_best(rows.set_index("model")[["mean", "std", "n_seeds"]],
                                   higher_is_better=higher_is_better(metric)), metric)
    bad = set(map(tuple, diverged))
    records, rows, groups = [], [], []
    for dataset in dict.fromkeys(sub["dataset"]):
        here = sub[sub["dataset"] == dataset]
        entries = [(m, "sampler floor" if m == sampler_floor else "model")
                   for m in _model_order(here["model"], sampler_floor)]
        has_floor = any((dataset, m) in floors.index for m in columns)
        if floor_rows and dataset_kind(here["metric"]) == "mixture" and has_floor:
            entries.append((None, "data floor"))
        groups.append(len(records))
        for model, kind in entries:
            name = {"model": model, "sampler floor": SAMPLER_FLOOR_LABEL, "data floor": DATA_FLOOR_LABEL}[kind]
            rec = {"dataset": dataset, "model": name, "row": kind, "sampler": sampler, "steps": str(steps)}
            label = tex_escape(model) if kind == "model" else f"\\emph{{{name}}}"
            if kind != "data floor" and (dataset, model) in bad:
                label += "$^\\dagger$"
            row = [tex_escape(dataset), label]
            for m in columns:
                if kind == "data floor":
                    value = floors.get((dataset, m))
                    values = {"mean": value, "std": None, "ratio": None}
                else:
                    key = (dataset, model, m)
                    values = {c: (stats.at[key, c] if key in stats.index else None) for c in ("mean", "std", "ratio")}
                for col in ("mean", "std", "ratio") if m in dist else ("mean", "std"):
                    value = values[col]
                    if m == "modes_covered" and col == "mean" and value is not None and float(value).is_integer():
                        rec[f"{m}_{col}"] = str(int(value))  # a count: 8, not 8.00
                    elif m == "modes_covered" and col == "std" and value == 0:
                        rec[f"{m}_{col}"] = ""  # every seed covers the same number: no spread to print
                    elif col == "std":
                        rec[f"{m}_{col}"] = fmt_spread(value, values["mean"], sig=sig)
                    else:
                        rec[f"{m}_{col}"] = fmt_number(value, sig=sig)
                cell = pm_cell(rec[f"{m}_mean"], rec[f"{m}_std"], rec.get(f"{m}_ratio", ""))
                if kind == "model" and best.get(dataset, (None, None)) == (model, m):
                    cell = bold_cell(cell)
                if m == "modes_covered":
                    total = (floors.get((dataset, "modes_total")) if kind == "data floor" else
                             stats.at[(dataset, model, "modes_total"), "mean"]
                             if (dataset, model, "modes_total") in stats.index else None)
                    rec["modes_total"] = str(round(total)) if total is not None and np.isfinite(total) else ""
                    cell += f" / ${rec['modes_total']}$" if rec["modes_total"] and rec[f"{m}_mean"] else ""
                row.append(cell)
            rec["diverged"] = "yes" if kind != "data floor" and (dataset, model) in bad else ""
            records.append(rec)
            rows.append(row)
    header = ["Dataset", "Model"] + [METRIC_LABELS[m] for m in columns]
    return pd.DataFrame(records, dtype=str), booktabs(header, rows, align="ll" + "c" * (len(header) - 2),
                                                      groups=groups)


def nfe_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Metric vs number of function evaluations: the summary's distance metrics, modes covered, HQ %, the share of
    non-finite samples and the time per sample, by NFE."""
    keep = summary["metric"].isin(DISTANCE_METRICS + MODE_METRICS + ("nonfinite_fraction", "time_per_sample_s"))
    cols = ["dataset", "model", "sampler", "steps", "nfe", "metric", "mean", "std", "n_seeds", "ratio"]
    return summary.loc[keep, cols].sort_values(["dataset", "model", "metric", "sampler", "nfe"]).reset_index(drop=True)


def generic_latex(df: pd.DataFrame, *, sig: int = SIG) -> tuple[pd.DataFrame, str]:
    """Any table (e.g. a benchmark CSV) as display strings and booktabs LaTeX; numeric columns right-aligned,
    headers from :func:`column_label`.

    A float column whose values are all integers (an integer column with a missing value) prints as integers. A
    column with the same value in every row (of two or more, e.g. the device) is left out of both; the .tex then
    starts with the comment ``CONSTANT_NOTE`` + "header = value; ..." (:func:`constant_note` reads it back for the
    caption).
    """
    constant = [c for c in df.columns if len(df) > 1 and df[c].nunique(dropna=False) == 1 and c not in ("model",)]
    note = "; ".join(f"{column_label(c)}: {tex_escape(fmt_value(df[c].iloc[0], sig=sig)) or '--'}" for c in constant)
    df = df.drop(columns=constant)
    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in df.columns]
    columns = {}
    for c in df.columns:
        col = df[c]
        integral = pd.api.types.is_float_dtype(col) and bool((col.dropna() % 1 == 0).all())
        columns[c] = [fmt_value(int(v) if integral and pd.notna(v) else v, sig=sig) for v in col.tolist()]
    display = pd.DataFrame(columns, dtype=str)
    rows = [[(f"${v}$" if num and v else tex_escape(v) or "--") for v, num in zip(row, numeric)]
            for row in display.itertuples(index=False)]
    align = "".join("r" if num else "l" for num in numeric)
    tex = booktabs([column_label(c) for c in df.columns], rows, align=align)
    return display, (CONSTANT_NOTE + note.replace("\n", " ") + "\n" + tex if constant else tex)


def constant_note(tex: str) -> str:
    """The "header: value; ..." of the columns :func:`generic_latex` left out as constant, "" when none."""
    first = tex.split("\n", 1)[0]
    return first[len(CONSTANT_NOTE):] if first.startswith(CONSTANT_NOTE) else ""


def _write_csv(path: Path, df: pd.DataFrame) -> Path:
    return atomic_write(path, lambda p: df.to_csv(p, index=False))


def _write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text))


def write_table(path: PathLike, content: pd.DataFrame | str) -> Path:
    r"""Write a study's output atomically: a DataFrame as CSV (no index), a string as text (a LaTeX table).

    A LaTeX string with a control character is refused: it comes from a backslash that Python read as an escape
    (``"\\times"`` written ``"\times"`` is a tab and "imes"), which LaTeX would print without complaint."""
    if isinstance(content, pd.DataFrame):
        return _write_csv(Path(path), content)
    check_latex_text(path, content)
    return _write_text(Path(path), content)


CONTROL_CHARACTERS = frozenset("\a\b\t\v\f\r")  # what "\a", "\b", "\t", "\v", "\f", "\r" become in a Python string


def check_latex_text(path: PathLike, text: str) -> None:
    """Refuse LaTeX that holds a control character (:data:`CONTROL_CHARACTERS`), naming ``path``, the characters and
    the line of the first of each: it comes from a backslash that Python read as an escape."""
    bad = sorted(f"{c!r} (line {text.count(chr(10), 0, text.index(c)) + 1})" for c in CONTROL_CHARACTERS if c in text)
    if bad:
        raise ValueError(f"{path}: the LaTeX holds control characters {', '.join(bad)} (an unescaped backslash in a "
                         f"Python string, e.g. \\t of \\times); write the backslash twice or use a raw string")


def split_setting(key: str) -> tuple[str, int]:
    """"ddpm_1000" -> ("ddpm", 1000)."""
    sampler, _, steps = key.rpartition("_")
    if not sampler or not steps.isdigit():
        raise ValueError(f"setting {key!r} is not SAMPLER_STEPS (e.g. ddpm_1000)")
    return sampler, int(steps)


def write_tables(metric_files: Iterable[PathLike], floor_files: Iterable[PathLike], train_files: Iterable[PathLike],
                 bench_files: Iterable[PathLike], out_dir: PathLike, *, main: str | None = None,
                 models: Iterable[str] | None = None, sig: int = SIG) -> list[Path]:
    """Write every table into ``out_dir`` and return the paths written.

    metrics.csv (all seeds), summary.csv (:func:`summarize`), summary.tex + summary_display.csv (main table at
    ``main`` = "sampler_steps", default the most-NFE setting), nfe.csv, training.csv (from the runs' train.json
    files), training.tex + training_display.csv, divergence.csv (:func:`divergence`: every run and setting, with its
    non-finite share and SWD multiple of the floor, and the flags), and bench_{name}.tex + bench_{name}_display.csv
    for every benchmark CSV {name}.csv of ``bench_files``. ``models`` restricts the main and training tables (not
    summary.csv, divergence.csv) to those models. Tables without rows are not written (divergence.csv always is).
    """
    out = Path(out_dir)
    written = []
    metrics = collect_metrics(metric_files)
    floors = collect_floors(floor_files)
    summary = summarize(metrics, floors)
    from ttdm.report.per_run import divergence, diverged_runs, training_latex, training_table

    div = divergence(metrics, floors)
    written += [_write_csv(out / "metrics.csv", metrics), _write_csv(out / "summary.csv", summary),
                _write_csv(out / "divergence.csv", div)]
    keep = set(models) if models is not None else None
    shown = summary if keep is None else summary[summary["model"].isin(keep)]
    if len(shown):
        bad = {(d, m) for d, m, _ in diverged_runs(div)}
        display, tex = main_table(shown, main=main, sig=sig, diverged=bad)
        written += [_write_csv(out / "summary_display.csv", display), _write_text(out / "summary.tex", tex),
                    _write_csv(out / "nfe.csv", nfe_table(summary))]
    training = training_table(f for f in map(Path, train_files) if keep is None or run_key(f)[1] in keep)
    written.append(_write_csv(out / "training.csv", training))
    if len(training):
        display, tex = training_latex(training, sig=sig)
        written += [_write_csv(out / "training_display.csv", display), _write_text(out / "training.tex", tex)]
    for f in sorted(map(Path, bench_files), key=lambda p: p.name):
        df = pd.read_csv(f)
        if len(df):
            display, tex = generic_latex(df, sig=sig)
            written += [_write_csv(out / f"bench_{f.stem}_display.csv", display),
                        _write_text(out / f"bench_{f.stem}.tex", tex)]
    return written
