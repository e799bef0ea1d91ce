"""The DSNO study (paper section "One-step sampling with neural operators", seed 003).

The students (method ``dsno``, :mod:`ttdm.methods.dsno`) are ordinary grid runs that need their teacher and read its
trajectories (``ttdm trajectories``); the study adds one command per student and the report:

- ``ttdm dsno-eval`` (one job per student run): the per-sample error against the teacher's ODE end points on held-out
  noises and the forward time against the backbone (:mod:`ttdm.stages.dsno_eval`), results/dsno/{d}/{m}/{s}.csv;
- ``ttdm dsno-report`` writes the tables (:mod:`ttdm.report.dsno_output`) from the comparison's runs (read with
  the trilemma study's functions), the data floors and the dsno-eval CSVs.

Nothing is declared without a ``dsno`` block.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ttdm import config as cfg
from ttdm.config.dsno import eval_path, students, trajectory_key, trajectory_path
from ttdm.report import claims
from ttdm.report.claims import SENTENCE_LABELS, n_missed, separated, standard_error, target_summary, tt
from ttdm.report.files import PaperFiles
from ttdm.report.studies import STUDIES, Study
from ttdm.report.studies.trilemma import run_entries, sampler_kinds, sampler_labels
from ttdm.report.tables import fmt_number, tex_escape

TABLES = ("dsno.csv", "dsno_summary.csv", "dsno_eval.csv", "dsno_error.csv", "dsno_error.tex", "dsno_ablation.csv",
          "dsno_ablation.tex", "dsno_cost.csv", "dsno_device.csv", "dsno_device.tex", "dsno_targets.csv",
          "dsno_targets.tex")
FIGURE = "dsno_samples.pdf"


def _study(config: dict[str, Any]) -> dict[str, Any]:
    return config.get("dsno") or {}


def datasets(config: dict[str, Any]) -> list[str]:
    """The comparison's datasets, then the ablation's when it is another (config order)."""
    study = _study(config)
    return list(dict.fromkeys([*study.get("datasets", []), *([study["ablation"]["dataset"]] if study else [])]))


def reference(config: dict[str, Any]) -> str | None:
    from ttdm.report.studies.ddpm import sampler_floor

    floor = sampler_floor(config)
    return floor if floor in _study(config).get("models", []) else None


def shown_settings(config: dict[str, Any]) -> list[str]:
    return list(_study(config).get("settings") or cfg.sampling_keys(config))


def entries(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The comparison's runs (every model of ``dsno.models`` on ``dsno.datasets``) and the ablation's students on
    its dataset, each once (:func:`ttdm.report.studies.trilemma.run_entries`)."""
    study = _study(config)
    if not study:
        return []
    main = run_entries(config, study["datasets"], study["models"])
    seen = {(e["dataset"], e["model"], e["seed"]) for e in main}
    extra = [e for e in run_entries(config, [study["ablation"]["dataset"]], study["ablation"]["models"])
             if (e["dataset"], e["model"], e["seed"]) not in seen]
    return main + extra


def eval_entries(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Every student of the study with its dsno-eval CSV, train.json, teacher run and trajectories file."""
    wanted = {(e["dataset"], e["model"], e["seed"]) for e in entries(config)}
    out = []
    for d, m, s in students(config):
        if (d, m, s) not in wanted:
            continue
        spec = cfg.run_spec(config, d, m, s)
        teacher = spec["needs"]["teacher"]["model"]
        out.append({"dataset": d, "model": m, "seed": s, "eval": eval_path(d, m, s),
                    "train": f"results/runs/{d}/{m}/{s}/train.json",
                    "teacher": f"results/runs/{d}/{teacher}/{s}",
                    "trajectories": trajectory_path(d, teacher, s, trajectory_key(spec["training"]))})
    return out


def cost_files(config: dict[str, Any]) -> list[str]:
    """The Snakemake benchmark files of every job the DSNO runs add (all students of the grid): trajectories,
    training, sampling and evaluation at their settings, dsno-eval; their seconds sum to the study's added cost."""
    from ttdm.config.dsno import trajectory_jobs

    if not _study(config):
        return []
    files = [f"benchmarks/{p[len('results/'):-len('.npz')]}.tsv" for p in trajectory_jobs(config)]
    evals = {(e["dataset"], e["model"], e["seed"]) for e in eval_entries(config)}
    for d, m, s in students(config):
        files.append(f"benchmarks/train/{d}/{m}/{s}.tsv")
        files += [f"benchmarks/{stage}/{d}/{m}/{s}/{k}.tsv" for k in cfg.run_settings(config, d, m)
                  for stage in ("sample", "evaluate")]
        if (d, m, s) in evals:
            files.append(f"benchmarks/dsno/{d}/{m}/{s}.tsv")
    return files


def device_files(config: dict[str, Any]) -> list[str]:
    """The forward times measured on other devices (``dsno.device_timings``: CSVs of scripts/dsno_forward_bench.py,
    committed with the repository) and the training-step CSV beside each one that has it."""
    from pathlib import Path

    from ttdm.report.dsno import train_steps_path

    files = []
    for f in _study(config).get("device_timings", []):
        files += [f] + ([train_steps_path(f)] if Path(train_steps_path(f)).exists() else [])
    return files


def inputs_of(config: dict[str, Any]) -> dict[str, list[str]]:
    """The files ``ttdm dsno-report`` reads: the runs' files, the data floors, the dsno-eval CSVs, the benchmark
    files of the jobs the students add (:func:`cost_files`), the device timings (:func:`device_files`)."""
    es = entries(config)
    files = [f for e in es for f in (*e["metrics"], e["train"], *e["needs"], e["likelihood"]) if f]
    return {"files": list(dict.fromkeys(files)),
            "floors": [f"results/metrics/{d}/floor.csv" for d in dict.fromkeys(e["dataset"] for e in es)],
            "evals": [e["eval"] for e in eval_entries(config)],
            "pairs": [e["eval"][: -len(".csv")] + ".npz" for e in eval_entries(config)], "costs": cost_files(config),
            "devices": device_files(config)}


def eval_spec(config: dict[str, Any]) -> dict[str, Any]:
    from ttdm.config.dsno import eval_spec as spec

    return spec(config)


def outputs(config: dict[str, Any]) -> dict[str, list[str]]:
    if not entries(config):
        return {"dsno-report": []}
    per_dataset = [f"results/tables/dsno_{d}{suffix}" for d in _study(config)["datasets"]
                   for suffix in (".tex", "_display.csv")]
    return {"dsno-report": [f"results/tables/{t}" for t in TABLES] + per_dataset + [f"results/figures/{FIGURE}"]}


# ---- findings -------------------------------------------------------------------------------------------------------
def _pm(mean: float, std: float) -> str:
    return f"${fmt_number(mean)} \\pm {fmt_number(std)}$" if pd.notna(std) else f"${fmt_number(mean)}$"


def comparison_findings(summary: pd.DataFrame, datasets_: list[str], labels: dict[str, str],
                        models: list[str] | None = None) -> list[str]:
    """Per dataset: each student's one-step quality against the best other setting shown (any method and NFE),
    and how many of the other shown settings it beats (rows of ``models`` only, when given)."""
    from ttdm.report.claims import higher_is_better

    out = []
    for d in datasets_:
        sub = summary[(summary["dataset"] == d) & summary["shown"] & ~summary["reference"]]
        if models is not None:
            sub = sub[sub["model"].isin(models)]
        for _, s in sub[sub["method"] == "dsno"].iterrows():
            higher = higher_is_better(s["primary"])
            others = sub[sub["method"] != "dsno"]
            if not len(others):
                continue
            beaten = others[(others["quality"] < s["quality"]) if higher else (others["quality"] > s["quality"])]
            best = others.sort_values("quality", ascending=not higher).iloc[0]
            text = (f"On {tt(d)} the student {tt(s['model'])} reaches {SENTENCE_LABELS.get(s['primary'], s['primary'])} "
                    f"{_pm(s['quality'], s['quality_std'])} at 1 NFE; the best other setting is {tt(best['model'])} "
                    f"with {labels.get(best['sampler'], best['sampler'])} at {int(best['nfe'])} NFE "
                    f"({_pm(best['quality'], best['quality_std'])})")
            if len(beaten):
                few = beaten.sort_values("nfe", ascending=False).iloc[0]
                text += (f"; it beats {len(beaten)} of the {len(others)} other settings shown by the mean, among them "
                         f"{tt(few['model'])} with {labels.get(few['sampler'], few['sampler'])} at "
                         f"{int(few['nfe'])} NFE")
            else:
                text += "; it beats none of the other settings shown"
            out.append(text + ".")
    return out


def ablation_findings(abl: pd.DataFrame | None) -> list[str]:
    """Quality and per-sample error against M and with/without the temporal convolution."""
    if abl is None or not len(abl):
        return []
    temporal = abl[abl["temporal"]].sort_values("M")
    out = []
    if len(temporal) > 1:
        parts = [f"$M = {int(r['M'])}$: {_pm(r['quality'], r['quality_std'])} "
                 f"(error ${fmt_number(r['error_mean'])}$)" for _, r in temporal.iterrows()]
        label = SENTENCE_LABELS.get(abl["primary"].iloc[0], abl["primary"].iloc[0])
        out.append(f"With the temporal convolution, the {label} against the temporal "
                   f"resolution: " + "; ".join(parts) + ".")
    for _, flat in abl[~abl["temporal"]].iterrows():
        same = temporal[temporal["M"] == flat["M"]]
        if len(same):
            r = same.iloc[0]
            apart = separated(r["quality"], standard_error(r["quality_std"], r["n_seeds"]), flat["quality"],
                              standard_error(flat["quality_std"], flat["n_seeds"]))
            err_apart = separated(r["error_mean"], standard_error(r.get("error_mean_std"), r["n_seeds"]),
                                  flat["error_mean"], standard_error(flat.get("error_mean_std"), flat["n_seeds"]))
            out.append(f"Without the temporal convolution ($M = {int(flat['M'])}$, the same training steps) the "
                       f"student reaches {_pm(flat['quality'], flat['quality_std'])} against "
                       f"{_pm(r['quality'], r['quality_std'])} with it ({'separated' if apart else 'not separated'} "
                       f"by the spread rule), and a per-sample error of ${fmt_number(flat['error_mean'])}$ against "
                       f"${fmt_number(r['error_mean'])}$ ({'separated' if err_apart else 'not separated'}).")
    return out


def error_findings(errors: pd.DataFrame | None, batch_sizes: list[int]) -> list[str]:
    """The range of the students' forward-time ratios over the timed batch sizes (Table dsno-error has them all)."""
    if errors is None or not len(errors):
        return []
    out = []
    for b in batch_sizes:
        col = f"time_ratio_b{b}"
        if col not in errors or not errors[col].notna().any():
            continue
        lo, hi = errors.loc[errors[col].idxmin()], errors.loc[errors[col].idxmax()]
        out.append(f"${fmt_number(lo[col])}\\times$ ({tt(lo['model'])} on {tt(lo['dataset'])}) to "
                   f"${fmt_number(hi[col])}\\times$ ({tt(hi['model'])} on {tt(hi['dataset'])}) at $B = {b}$")
    if not out:
        return []
    return ["A student's forward pass takes " + "; ".join(out) + " its backbone's time on this machine "
            "(Table~\\ref{tab:dsno-error}, with the per-sample errors against the teacher's end points)."]


def device_findings(devices: pd.DataFrame | None) -> list[str]:
    """Per device measured elsewhere: the range of the students' forward-time ratios at each batch, with and
    without the temporal convolution (Table dsno-device)."""
    if devices is None or not len(devices):
        return []
    out = []
    for device, g in devices.groupby("device_name", sort=False):
        parts = []
        for b, gb in g.groupby("batch", sort=True):
            temporal, flat = gb[gb["temporal"].astype(bool)], gb[~gb["temporal"].astype(bool)]
            if not len(temporal):
                continue
            lo, hi = temporal["ratio"].min(), temporal["ratio"].max()
            span = f"${fmt_number(lo)}\\times$" + ("" if lo == hi else f" to ${fmt_number(hi)}\\times$")
            text = f"{span} at $B = {int(b)}$"
            if len(flat):
                text += f" (without the temporal convolution ${fmt_number(flat['ratio'].min())}\\times$)"
            parts.append(text)
        if parts:
            out.append(f"On the {tex_escape(device)}, at the sizes of \\texttt{{{tex_escape(_config_of(g))}}} and "
                       f"untrained weights, a student's forward pass takes " + "; ".join(parts)
                       + " its backbone's time (Table~\\ref{tab:dsno-device}).")
    return out


def _device_names(devices: pd.DataFrame | None) -> str:
    """The devices of Table dsno-device, for its caption ("NVIDIA H200", "A and B")."""
    if devices is None or not len(devices):
        return ""
    return claims.words([tex_escape(str(n)) for n in dict.fromkeys(devices["device_name"])])


def _config_of(devices: pd.DataFrame) -> str:
    return str(devices["config"].iloc[0]) if "config" in devices and devices["config"].notna().any() else "the config"


def missed_targets(targets: pd.DataFrame | None) -> list[str]:
    """The targets not met (:func:`ttdm.report.claims.missed_targets`), several students' misses as one phrase."""
    return claims.missed_targets(targets, noun="students")


def target_findings(targets: pd.DataFrame | None) -> list[str]:
    return target_summary(targets, "tab:dsno-targets", noun="students")


def setup_table(config: dict[str, Any]) -> str:
    """The students' training setup from the config, one row per (dataset, model): teacher, M (and the stored
    times), temporal convolution, trajectories (count and DDIM steps), training steps, batch, learning rate, seeds."""
    from ttdm.config.dsno import stored_times
    from ttdm.config.methods import resolved_training
    from ttdm.report.tables import booktabs

    wanted = {(e["dataset"], e["model"]) for e in entries(config)}
    seeds: dict[tuple[str, str], list[int]] = {}
    for d, m, s in students(config):
        if (d, m) in wanted:
            seeds.setdefault((d, m), []).append(s)
    rows = []
    for (d, m), ss in seeds.items():
        t = resolved_training(config, d, m)
        stored = stored_times(t)
        rows.append([tt(d), tt(m), tt(t["teacher"]),
                     str(t["M"]) + (f" (of {stored})" if stored != t["M"] else ""), "yes" if t["temporal"] else "no",
                     f"{t['n_traj']} + {t['n_eval']}", str(t["traj_steps"]), str(t["steps"]), str(t["batch_size"]),
                     f"{float(t['lr']):g}", str(len(ss))])
    header = ["Dataset", "Student", "Teacher", "$M$", "Temporal", "Trajectories", "DDIM steps", "Steps", "Batch",
              "lr", "Seeds"]
    return booktabs(header, rows, align="lllllrrrrrr") if rows else ""


def context(files: PaperFiles, config: dict[str, Any]) -> dict[str, Any]:
    summary = files.csv("dsno_summary")
    if summary is None or not _study(config):
        return {"dsno": None}
    study = _study(config)
    tables = files.tex()
    targets = files.csv("dsno_targets")
    batch_sizes = list(study.get("batch_sizes", [1]))
    findings = (target_findings(targets) + comparison_findings(summary, study["datasets"], sampler_labels(config),
                                                                   study["models"])
                + ablation_findings(files.csv("dsno_ablation")) + error_findings(files.csv("dsno_error"), batch_sizes)
                + device_findings(files.csv("dsno_device")))
    return {"dsno": {
        "findings": findings,
        "datasets": [{"name": d, "table": tables.get(f"dsno_{d}")} for d in study["datasets"]],
        "ablation_table": tables.get("dsno_ablation") or None,
        "error_table": tables.get("dsno_error") or None,
        "device_table": tables.get("dsno_device") or None,
        "device_names": _device_names(files.csv("dsno_device")),
        "setup_table": setup_table(config),
        "targets_table": tables.get("dsno_targets"),
        "ablation": study["ablation"],
        "figure": f"figures/{FIGURE}" if files.figure(FIGURE) is not None else None,
        "missed": missed_targets(targets),
        "n_missed": n_missed(targets),
    }, "figure_files": [FIGURE] if files.figure(FIGURE) is not None else []}


STUDY = STUDIES.register("dsno")(Study(outputs=outputs, context=context))

__all__ = ["STUDY", "entries", "eval_entries", "inputs_of", "outputs", "sampler_kinds", "sampler_labels"]
