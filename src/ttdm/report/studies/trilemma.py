"""The trilemma study (paper section "Accelerating sampling: the trilemma", seed 001).

Every model that ``trilemma.models`` lists, on every dataset of ``trilemma.datasets`` it is trained on, under every
sampler setting the grid gives it: sample quality, diversity and speed (:mod:`ttdm.report.trilemma`).  Command:
``ttdm trilemma-report`` writes the tables and the Pareto figure (:mod:`ttdm.report.trilemma_output`) from the files
:func:`inputs_of` lists; the paper's section prints the tables of the settings in ``trilemma.settings`` (all of them
when absent).  Nothing is declared without a ``trilemma`` block.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from ttdm import config as cfg
from ttdm.report.claims import missed_targets, n_missed, separated, target_summary, tt
from ttdm.report.files import PaperFiles
from ttdm.report.studies import STUDIES, Study
from ttdm.report.tables import fmt_number
from ttdm.report.trilemma import METHOD_LABELS, sampler_label

TABLES = ("trilemma.csv", "trilemma_summary.csv", "trilemma_targets.csv", "trilemma_targets.tex",
          "trilemma_methods.tex", "trilemma_methods_display.csv")


def _study(config: dict[str, Any]) -> dict[str, Any]:
    return config.get("trilemma") or {}


def datasets(config: dict[str, Any]) -> list[str]:
    """The study's datasets that some listed model is trained on (config order)."""
    study = _study(config)
    trained = {(d, m) for d, m, _ in cfg.runs(config)}
    return [d for d in study.get("datasets", []) if any((d, m) in trained for m in study.get("models", []))]


def models(config: dict[str, Any]) -> list[str]:
    """The listed models, in the study's order, without the sampler floor (drawn as a reference)."""
    from ttdm.report.studies.ddpm import sampler_floor

    return [m for m in _study(config).get("models", []) if m != sampler_floor(config)]


def reference(config: dict[str, Any]) -> str | None:
    """The sampler floor when the study lists it (its rows are a reference, never ranked)."""
    from ttdm.report.studies.ddpm import sampler_floor

    floor = sampler_floor(config)
    return floor if floor in _study(config).get("models", []) else None


def shown_settings(config: dict[str, Any]) -> list[str]:
    """The settings of the paper's tables: ``trilemma.settings``, else every configured setting."""
    return list(_study(config).get("settings") or cfg.sampling_keys(config))


def sampler_kinds(config: dict[str, Any]) -> dict[str, str]:
    return {name: s["kind"] for name, s in config["sampling"]["samplers"].items()}


def sampler_labels(config: dict[str, Any]) -> dict[str, str]:
    return {name: sampler_label(s) for name, s in config["sampling"]["samplers"].items()}


def entries(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Every run the study reads with its files (:func:`run_entries` of its datasets and models)."""
    study = _study(config)
    return run_entries(config, study["datasets"], study["models"]) if study else []


def run_entries(config: dict[str, Any], datasets: list[str], models: list[str]) -> list[dict[str, Any]]:
    """Every run of ``models`` on ``datasets`` with its files, in the lists' order: {dataset, model, seed, method,
    metrics (one CSV per setting), train, needs (train.json of the runs it needs), likelihood (CSV or None)}.  The
    DSNO study reads its comparison through it too."""
    with_nll = set(cfg.likelihood_runs(config)) if config.get("likelihood") else set()
    out = []
    for d, m, s in cfg.runs(config):
        if d not in datasets or m not in models:
            continue
        run = f"results/runs/{d}/{m}/{s}"
        out.append({"dataset": d, "model": m, "seed": s,
                    "method": cfg.run_spec(config, d, m, s)["method"],
                    "metrics": [f"results/metrics/{d}/{m}/{s}/{k}.csv" for k in cfg.run_settings(config, d, m)],
                    "train": f"{run}/train.json",
                    "needs": [f"results/runs/{d}/{need}/{s}/train.json" for need in cfg.needs_of(config, d, m).values()],
                    "likelihood": f"results/likelihood/{d}/{m}/{s}.csv" if (d, m, s) in with_nll else None})
    order = {d: i for i, d in enumerate(datasets)} | {m: i for i, m in enumerate(models)}
    return sorted(out, key=lambda e: (order[e["dataset"]], order[e["model"]], e["seed"]))


def inputs_of(config: dict[str, Any]) -> dict[str, list[str]]:
    """The files ``ttdm trilemma-report`` reads: every entry's files, and the data floors."""
    es = entries(config)
    files = [f for e in es for f in (*e["metrics"], e["train"], *e["needs"], e["likelihood"]) if f]
    return {"files": list(dict.fromkeys(files)),
            "floors": [f"results/metrics/{d}/floor.csv" for d in dict.fromkeys(e["dataset"] for e in es)]}


def outputs(config: dict[str, Any]) -> dict[str, list[str]]:
    if not entries(config):
        return {"trilemma-report": []}
    per_dataset = [f"results/tables/trilemma_{d}{suffix}" for d in datasets(config)
                   for suffix in (".tex", "_display.csv")]
    return {"trilemma-report": [f"results/tables/{t}" for t in TABLES] + per_dataset
            + ["results/figures/trilemma_pareto.pdf"]}


# ---- findings -------------------------------------------------------------------------------------------------------
def _se(row: pd.Series, column: str) -> float:
    std, n = row.get(f"{column}_std"), row.get("n_seeds")
    return float(std) / math.sqrt(float(n)) if std is not None and n and pd.notna(std) else float("nan")


def _name(row: pd.Series, labels: dict[str, str]) -> str:
    if row.get("reference"):
        return f"the sampler floor with {labels.get(row['sampler'], row['sampler'])} at {int(row['nfe'])} NFE"
    return (f"{tt(row['model'])} ({METHOD_LABELS.get(row['method'], row['method'])}) with "
            f"{labels.get(row['sampler'], row['sampler'])} at {int(row['nfe'])} NFE")


def dataset_findings(sub: pd.DataFrame, labels: dict[str, str]) -> list[str]:
    """One finding per dataset: the best quality (separated from the runner-up or not), the fewest NFE within 1.2x
    of it, the most diverse setting and whether one setting leads on all three axes (the shown rows); then the
    settings whose samples diverged (non-finite samples, or a distance above 10 times the data floor)."""
    from ttdm.report.claims import higher_is_better

    rows = sub[sub["shown"] & ~sub["reference"] & sub["quality"].notna()]
    if not len(rows):
        return []
    dataset = rows["dataset"].iloc[0]
    primary = rows["primary"].iloc[0]
    higher = higher_is_better(primary)
    ordered = rows.sort_values("quality", ascending=not higher)
    best = ordered.iloc[0]
    text = f"On {tt(dataset)} the best quality is {_name(best, labels)} ({fmt_number(best['quality'])}"
    if len(ordered) > 1:
        second = ordered.iloc[1]
        sep = separated(best["quality"], _se(best, primary), second["quality"], _se(second, primary))
        text += (f", separated from the runner-up, {_name(second, labels)}, at {fmt_number(second['quality'])})"
                 if sep else f", not separated from {_name(second, labels)} at {fmt_number(second['quality'])})")
    else:
        text += ")"
    ratio = (best["quality"] / rows["quality"]) if higher else (rows["quality"] / best["quality"])
    near = rows[ratio <= 1.2].sort_values(["nfe", "quality"], ascending=[True, not higher])
    if len(near) and int(near["nfe"].iloc[0]) < int(best["nfe"]):
        fast = near.iloc[0]
        text += (f"; the fewest evaluations within $1.2\\times$ of it: {_name(fast, labels)} "
                 f"({fmt_number(fast['quality'])}, {int(best['nfe']) / int(fast['nfe']):.0f} times fewer NFE)")
    elif len(near):
        text += "; no setting with fewer evaluations comes within $1.2\\times$ of it"
    if rows["diversity"].notna().any():
        div = rows.loc[rows["diversity"].idxmax()]
        text += f"; the most diverse (coverage {fmt_number(div['diversity'])}) is {_name(div, labels)}"
    ranked = rows.dropna(subset=["rank_quality"])
    leaders = ranked[(ranked["rank_quality"] == 1) & (ranked["rank_diversity"] == 1) & (ranked["rank_speed"] == 1)]
    text += (f". {_name(leaders.iloc[0], labels)} leads on all three axes." if len(leaders) else
             ". No setting leads on quality, diversity and speed at once.")
    return [text] + diverged_findings(sub, labels)


def diverged_findings(sub: pd.DataFrame, labels: dict[str, str]) -> list[str]:
    """The settings of a dataset whose samples diverged: a non-finite share above 0, or a distance (SWD, FD) above
    ``EXPLODING`` times its data floor in the mean over seeds."""
    from ttdm.report.tables import DISTANCE_METRICS, EXPLODING

    primary = sub["primary"].iloc[0]
    bad = sub["nonfinite_fraction"].fillna(0) > 0 if "nonfinite_fraction" in sub else pd.Series(False, index=sub.index)
    floor = sub["floor_quality"].iloc[0] if "floor_quality" in sub else float("nan")
    if primary in DISTANCE_METRICS and pd.notna(floor) and floor > 0:
        bad |= sub["quality"] > EXPLODING * floor
    if not bad.any():
        return []
    items = [f"{_name(r, labels)} ({fmt_number(r['quality'])}, std {fmt_number(r['quality_std'])} over "
             f"{int(r['n_seeds'])} seeds)" for _, r in sub[bad].iterrows()]
    return [f"Diverged on {tt(sub['dataset'].iloc[0])} (non-finite samples, or {primary.upper()} above "
            f"{EXPLODING:g} times the data floor): " + "; ".join(items) + "; these rows are not comparable."]


def target_findings(targets: pd.DataFrame | None) -> list[str]:
    """One sentence over the issue's targets: how many are met, and which are not."""
    return target_summary(targets, "tab:trilemma-targets")


def context(files: PaperFiles, config: dict[str, Any]) -> dict[str, Any]:
    summary = files.csv("trilemma_summary")
    if summary is None or not _study(config):
        return {"trilemma": None}
    labels = sampler_labels(config)
    tables = files.tex()
    targets = files.csv("trilemma_targets")
    findings = [f for d in datasets(config) for f in dataset_findings(summary[summary["dataset"] == d], labels)]
    figure = files.figure("trilemma_pareto.pdf")
    return {"trilemma": {
        "findings": target_findings(targets) + findings,
        "datasets": [{"name": d, "table": tables.get(f"trilemma_{d}")} for d in datasets(config)],
        "methods_table": tables.get("trilemma_methods"),
        "targets_table": tables.get("trilemma_targets"),
        "figure": "figures/trilemma_pareto.pdf" if figure is not None else None,
        "settings": shown_settings(config),
        "reference": reference(config) is not None,
        "missed": missed_targets(targets),
        "n_missed": n_missed(targets),
    }, "figure_files": ["trilemma_pareto.pdf"] if figure is not None else []}


STUDY = STUDIES.register("trilemma")(Study(outputs=outputs, context=context))
