"""The DSNO study's numbers (seed 003): one-step students beside the other methods, their ablation and targets.

- the comparison: every model of ``dsno.models`` on every dataset of ``dsno.datasets`` under every sampler setting
  it has, read, summarised and annotated by the trilemma study's functions (:mod:`ttdm.report.trilemma`: quality
  is the dataset's primary metric, NFE, parameters; mean ± std over seeds);
- the students' evaluation against their teachers (``ttdm dsno-eval``, one CSV per run): per-sample RMS error of
  the one-step sample against the teacher's ODE end point on held-out noises, at every output time, and the forward
  time of the student against the backbone at each timed batch size;
- the ablation: the students of ``dsno.ablation`` (one dataset; other M, without the temporal convolution) with
  their one-step quality, per-sample error and forward-time ratio;
- the targets of issue 13, each met or not: DSNO at 1 NFE within 1.5× of its teacher's primary metric (at the main
  setting) on the 2-D mixtures; the temporal convolution beats the same student without it (same M and training
  steps); the student's forward pass ≤ 1.6× the backbone's (at each timed batch size, and on every device of
  ``dsno.device_timings``: CSVs of ``scripts/dsno_forward_bench.py``, e.g. measured on a GPU).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from ttdm.io import load_json
from ttdm.report import trilemma as tri
from ttdm.report.claims import higher_is_better
from ttdm.report.tables import tex_escape

PathLike = str | os.PathLike
QUALITY_LIMIT = 1.5  # DSNO's primary metric within this factor of its teacher's
TIME_LIMIT = 1.6  # the student's forward time at most this many times the backbone's
COST_LIMIT_S = 5 * 60.0  # the jobs the students add: at most 5 minutes of wall time on 2 cores
COST_CORES = 2
EVAL_KEYS = ["dataset", "model", "M", "temporal", "teacher"]


def collect_evals(entries: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Per seed, the dsno-eval metrics of every student: entries {dataset, model, seed, eval: CSV, train:
    train.json}; columns dataset, model, M, temporal, teacher, seed, metric, value."""
    rows = []
    for e in entries:
        record = load_json(e["train"])
        key = {"dataset": e["dataset"], "model": e["model"], "M": int(record["M"]),
               "temporal": bool(record["temporal"]), "teacher": record["teacher"], "seed": int(e["seed"])}
        table = pd.read_csv(e["eval"])
        rows += [{**key, "metric": str(m), "value": float(v)} for m, v in zip(table["metric"], table["value"])
                 if str(m) not in EVAL_KEYS]  # M is a key column already
        rows.append({**key, "metric": "train_s", "value": float(record["wall_s"])})
    return pd.DataFrame(rows, columns=EVAL_KEYS + ["seed", "metric", "value"])


def summarize_evals(per_seed: pd.DataFrame) -> pd.DataFrame:
    """One row per student: METRIC (mean over seeds), METRIC_std, n_seeds."""
    if not len(per_seed):
        return pd.DataFrame(columns=EVAL_KEYS + ["n_seeds"])
    g = per_seed.groupby(EVAL_KEYS + ["metric"], sort=False)["value"]
    s = g.agg(mean="mean", std="std", n="count").reset_index()
    means = s.pivot_table(index=EVAL_KEYS, columns="metric", values="mean", sort=False)
    stds = s.pivot_table(index=EVAL_KEYS, columns="metric", values="std", sort=False).add_suffix("_std")
    n = s.groupby(EVAL_KEYS, sort=False)["n"].max().rename("n_seeds")
    out = means.join(stds).join(n).reset_index()
    out.columns.name = None
    return out


def compare(entries: list[dict[str, Any]], kinds: dict[str, str], *, reference: str | None,
            shown: Iterable[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per seed, annotated summary) of the comparison's runs: :func:`ttdm.report.trilemma.collect`, ``summarize``,
    ``wide`` and ``annotate``."""
    per_seed = tri.collect(entries, kinds)
    return per_seed, tri.annotate(tri.wide(tri.summarize(per_seed)), reference=reference, shown=shown)


def one_step(table: pd.DataFrame) -> pd.DataFrame:
    """The students' rows (method dsno) of an annotated table: their one-step setting."""
    return table[table["method"] == "dsno"]


def ablation(table: pd.DataFrame, evals: pd.DataFrame, dataset: str, models: list[str]) -> pd.DataFrame:
    """One row per ablation student (``models`` order) on ``dataset``: M, temporal, quality (mean, std, primary),
    and its dsno-eval numbers."""
    rows = one_step(table[table["dataset"] == dataset]).set_index("model")
    ev = evals[evals["dataset"] == dataset].set_index("model")
    out = []
    for m in models:
        if m not in rows.index or m not in ev.index:
            continue
        r, e = rows.loc[m], ev.loc[m]
        out.append({"dataset": dataset, "model": m, "M": int(e["M"]), "temporal": bool(e["temporal"]), "primary": r["primary"],
                    "quality": float(r["quality"]), "quality_std": float(r["quality_std"]),
                    "n_seeds": int(r["n_seeds"]), "params": float(r.get("params", np.nan)),
                    **{k: float(v) for k, v in e.items() if k not in EVAL_KEYS and k != "n_seeds"}})
    return pd.DataFrame(out)


DEVICE_COLUMNS = ["dataset", "model", "M", "temporal", "batch", "student_ms", "backbone_ms", "ratio", "device", "gpu"]


def train_steps_path(timings: PathLike) -> str:
    """The training-step CSV that ``scripts/dsno_forward_bench.py`` writes beside its forward-time CSV."""
    return str(timings)[: -len(".csv")] + "_train.csv"


def device_timings(files: Iterable[PathLike]) -> pd.DataFrame:
    """The forward times measured elsewhere (``scripts/dsno_forward_bench.py``: one row per student and batch B),
    each with ``source`` (its file), ``device_name`` (the GPU's name, else the device) and, from the
    ``*_train.csv`` beside it when there is one, ``student_step_ms`` and ``teacher_step_ms`` (one training step)."""
    tables = []
    for f in files:
        t = pd.read_csv(f)
        missing = [c for c in DEVICE_COLUMNS if c not in t]
        if missing:
            raise ValueError(f"{f}: not a dsno_forward_bench.py table (missing columns {', '.join(missing)})")
        t = t.assign(source=str(f), device_name=[g if isinstance(g, str) and g else d
                                                 for g, d in zip(t["gpu"], t["device"])])
        train = train_steps_path(f)
        if os.path.exists(train):
            steps = pd.read_csv(train).pivot_table(index=["dataset", "model"], columns="part", values="step_ms")
            steps.columns = [f"{c}_step_ms" for c in steps.columns]
            t = t.merge(steps.reset_index(), on=["dataset", "model"], how="left")
        tables.append(t)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=DEVICE_COLUMNS + ["device_name"])


def job_seconds(files: Iterable[PathLike]) -> pd.DataFrame:
    """Stage and seconds (column ``s``) of every Snakemake benchmark file (benchmarks/{stage}/...)."""
    rows = []
    for f in files:
        stage = str(f).split("benchmarks/", 1)[-1].split("/", 1)[0]
        rows.append({"stage": stage, "file": str(f), "s": float(pd.read_csv(f, sep="\t")["s"].iloc[0])})
    return pd.DataFrame(rows, columns=["stage", "file", "s"])


def targets(table: pd.DataFrame, evals: pd.DataFrame, abl: pd.DataFrame, *, main: str,
            batch_sizes: list[int], costs: pd.DataFrame | None = None,
            devices: pd.DataFrame | None = None) -> pd.DataFrame:
    """The issue's targets, one row each: target, text (LaTeX), dataset, model, value, threshold, met, note.  The
    cost target reads ``costs`` (:func:`job_seconds`): the jobs' seconds over ``COST_CORES`` cores, a lower bound
    of the wall time they add (perfect packing).  ``devices`` (:func:`device_timings`) adds the forward-time target
    on each device measured there, for the students that have a one-step row in ``table``."""
    rows = []
    if costs is not None and len(costs):
        total = float(costs["s"].sum())
        by = costs.groupby("stage")["s"].sum()
        rows.append({"target": f"added jobs <= {COST_LIMIT_S:g} s on {COST_CORES} cores",
                     "text": f"the students' jobs add at most {COST_LIMIT_S / 60:g} minutes on {COST_CORES} cores "
                             f"(job seconds / {COST_CORES})",
                     "dataset": "", "model": "", "value": total / COST_CORES, "threshold": COST_LIMIT_S,
                     "met": bool(total / COST_CORES <= COST_LIMIT_S),
                     "note": ", ".join(f"{k} {v:.0f} s" for k, v in by.items()) + f" ({len(costs)} jobs)"})
    for _, s in one_step(table[~table["reference"]]).iterrows():
        e = evals[(evals["dataset"] == s["dataset"]) & (evals["model"] == s["model"])]
        if not len(e):
            continue
        teacher = e["teacher"].iloc[0]
        t = table[(table["dataset"] == s["dataset"]) & (table["model"] == teacher)
                  & (table["sampler"] + "_" + table["steps"].astype(str) == main)]
        if s["primary"] == "hq_percent" and len(t):
            higher = higher_is_better(s["primary"])
            ratio = tri._ratio(float(s["quality"]), float(t["quality"].iloc[0]), higher=higher)
            rows.append({"target": f"dsno 1 NFE within {QUALITY_LIMIT}x of its teacher at {main}",
                         "text": f"DSNO at 1 NFE within ${QUALITY_LIMIT:g}\\times$ of its teacher's primary metric "
                                 f"(teacher at {main.replace('_', ' ')})",
                         "dataset": s["dataset"], "model": s["model"], "value": ratio, "threshold": QUALITY_LIMIT,
                         "met": bool(ratio <= QUALITY_LIMIT),
                         "note": f"{s['quality']:.3g} vs {float(t['quality'].iloc[0]):.3g} {s['primary']}"})
        for b in batch_sizes:
            col = f"time_ratio_b{b}"
            if col in e:
                ratio = float(e[col].iloc[0])
                rows.append({"target": f"forward time <= {TIME_LIMIT}x the backbone at batch {b}",
                             "text": f"forward pass within ${TIME_LIMIT:g}\\times$ the backbone's (batch {b})",
                             "dataset": s["dataset"], "model": s["model"], "value": ratio, "threshold": TIME_LIMIT,
                             "met": bool(ratio <= TIME_LIMIT),
                             "note": f"{float(e[f'student_ms_b{b}'].iloc[0]):.3g} vs "
                                     f"{float(e[f'backbone_ms_b{b}'].iloc[0]):.3g} ms"})
        if devices is not None and len(devices):
            for _, r in devices[(devices["dataset"] == s["dataset"]) & (devices["model"] == s["model"])].iterrows():
                rows.append({"target": f"forward time <= {TIME_LIMIT}x the backbone at batch {int(r['batch'])} on "
                                       f"{r['device_name']}",
                             "text": f"forward pass within ${TIME_LIMIT:g}\\times$ the backbone's (batch "
                                     f"{int(r['batch'])}, {tex_escape(r['device_name'])})",
                             "dataset": s["dataset"], "model": s["model"], "value": float(r["ratio"]),
                             "threshold": TIME_LIMIT, "met": bool(r["ratio"] <= TIME_LIMIT),
                             "note": f"{r['student_ms']:.3g} vs {r['backbone_ms']:.3g} ms ({r['source']})"})
    if len(abl):
        for _, flat in abl[~abl["temporal"]].iterrows():
            same = abl[abl["temporal"] & (abl["M"] == flat["M"])]
            if not len(same):
                continue
            full = same.iloc[0]
            higher = higher_is_better(full["primary"])
            better = full["quality"] > flat["quality"] if higher else full["quality"] < flat["quality"]
            rows.append({"target": "temporal conv beats none at equal steps",
                         "text": f"the temporal convolution beats the same student without it ($M = {int(flat['M'])}$, "
                                 f"equal training steps)",
                         "dataset": full["dataset"], "model": full["model"], "value": float(full["quality"]),
                         "threshold": float(flat["quality"]), "met": bool(better),
                         "note": f"{full['primary']}: {full['quality']:.3g} vs {flat['quality']:.3g} ({flat['model']}); "
                                 f"end error {full.get('error_mean', np.nan):.3g} vs {flat.get('error_mean', np.nan):.3g}"})
    return pd.DataFrame(rows, columns=["target", "text", "dataset", "model", "value", "threshold", "met", "note"])
