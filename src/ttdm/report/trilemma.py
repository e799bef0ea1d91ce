"""The trilemma study's numbers: quality, diversity and speed of every method and sampler setting (seed 001).

For every (dataset, model, sampler setting) of the study (``trilemma`` in the config) one row, mean ± sample std over
the seeds:

- **quality**: the dataset's primary metric at a setting (:func:`ttdm.report.claims.primary_metric`: the HQ
  percentage on Gaussian mixtures, FD on the digits classifier's features, SWD elsewhere), precision and density;
- **diversity**: recall, coverage, and the modes covered (mixtures) or the class KL to uniform (digits);
- **speed**: NFE, sampling seconds per 1000 samples, parameters (the run's trainable parts) and training seconds
  (including the runs it needs, e.g. latent diffusion's autoencoder);
- the run's likelihood: the probability-flow NLL in nats/dim and the method's variational bound in bits/dim
  (``elbo_bpd``: the DDPM's ELBO, VDM's VLB), where computed.

Ranks (1 = best) are taken per dataset over the rows the paper shows (the sampler floor excluded): quality by the
primary metric, diversity by coverage (on classifier features for the digits), speed by NFE then seconds per 1000
samples. A row is on the Pareto front of its dataset when no other row has at most its NFE and a better primary
metric (strictly better in one of the two).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from ttdm.io import load_json
from ttdm.report.claims import dataset_kind, higher_is_better, primary_metric

PathLike = str | os.PathLike
ROW_KEYS = ["dataset", "model", "method", "sampler", "kind", "steps", "nfe"]
DIVERSITY = {"mixture": "coverage", "classified": "f_coverage", "other": "coverage"}  # the diversity rank's metric
COLUMNS = {  # per kind of dataset: (quality extras, diversity metrics) of the table, in order
    "mixture": (("precision", "density"), ("recall", "coverage", "modes_covered")),
    "classified": (("f_precision", "f_density"), ("f_recall", "f_coverage", "class_kl")),
    "other": (("precision", "density"), ("recall", "coverage")),
}
METHOD_LABELS = {"ddpm": "DDPM", "vdm": "VDM", "ddgan": "DDGAN", "latent_ddpm": "latent DDPM",
                 "analytic": "exact $\\epsilon^*$", "eps_star": "fit to $\\epsilon^*$", "dsno": "DSNO"}
SAMPLER_LABELS = {"ddpm": "ancestral", "ddim": "DDIM", "dpmpp": "DPM-Solver++", "ddgan": "DDGAN chain",
                  "dsno": "one pass"}


def sampler_label(sampler: dict[str, Any]) -> str:
    """How the tables name a sampler configuration: DDIM, DPM-Solver++(2M), a diffusers class name, ..."""
    kind = sampler.get("kind", "")
    if kind == "dpmpp":
        return f"DPM-Solver++({int(sampler.get('order', 2))}M)"
    if kind == "diffusers":
        return str(sampler.get("scheduler", "diffusers")).replace("Scheduler", "")
    if kind == "ddim" and sampler.get("eta"):
        return f"DDIM ($\\eta={sampler['eta']}$)"
    return SAMPLER_LABELS.get(kind, kind)


def _long(path: PathLike) -> dict[str, float]:
    table = pd.read_csv(path)
    return {str(m): float(v) for m, v in zip(table["metric"], table["value"])}


def collect(entries: Iterable[dict[str, Any]], kinds: dict[str, str]) -> pd.DataFrame:
    """Per seed, one row per (dataset, model, setting) and metric: the setting's sample metrics, ``s_per_1k``
    (sampling seconds per 1000 samples), ``params``, ``train_s``, and from the likelihood job ``nll`` (the
    probability-flow ODE's, nats/dim) and ``bound_bpd`` (the method's variational bound, bits/dim) where computed. entries: {dataset, model, seed, method, metrics: [setting CSVs], train: train.json,
    needs: [train.json of the runs it needs], likelihood: CSV or None}; kinds: {sampler name: kind}."""
    rows = []
    for e in entries:
        train = load_json(e["train"])
        per_run = {"params": float(train.get("n_params", np.nan)),
                   "train_s": float(train["wall_s"]) + sum(float(load_json(f)["wall_s"]) for f in e["needs"])}
        if e.get("likelihood"):
            lik = _long(e["likelihood"])
            per_run.update({name: lik[key] for name, key in (("nll", "nll"), ("bound_bpd", "elbo_bpd")) if key in lik})
        for path in e["metrics"]:
            table = pd.read_csv(path)
            first = table.iloc[0]
            values = dict(zip(table["metric"].astype(str), table["value"].astype(float)))
            if "time_per_sample_s" in values:
                values["s_per_1k"] = 1000.0 * values.pop("time_per_sample_s")
            values.update(per_run)
            key = {"dataset": e["dataset"], "model": e["model"], "method": e["method"], "sampler": str(first["sampler"]),
                   "kind": kinds.get(str(first["sampler"]), ""), "steps": int(first["steps"]), "nfe": int(first["nfe"])}
            rows += [{**key, "seed": int(e["seed"]), "metric": m, "value": v} for m, v in values.items()]
    return pd.DataFrame(rows, columns=ROW_KEYS + ["seed", "metric", "value"])


def summarize(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample std (ddof 1; NaN for one seed) and number of seeds per row and metric."""
    grouped = per_seed.groupby(ROW_KEYS + ["metric"], sort=False)["value"]
    return grouped.agg(mean="mean", std="std", n_seeds="count").reset_index()


def wide(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, model, setting): columns METRIC (mean) and METRIC_std, and n_seeds."""
    means = summary.pivot_table(index=ROW_KEYS, columns="metric", values="mean", aggfunc="first", sort=False)
    stds = summary.pivot_table(index=ROW_KEYS, columns="metric", values="std", aggfunc="first", sort=False)
    seeds = summary.groupby(ROW_KEYS, sort=False)["n_seeds"].max()
    out = means.join(stds.add_suffix("_std")).join(seeds).reset_index()
    out.columns.name = None
    return out


def pareto_front(nfe: np.ndarray, quality: np.ndarray, *, higher: bool) -> np.ndarray:
    """Boolean mask of the rows that no other row dominates: at most the NFE and at least the quality, strictly
    better in one (NaN quality: never on the front)."""
    q = np.where(np.isnan(quality), -np.inf if higher else np.inf, quality)
    q = q if higher else -q  # higher is better from here
    front = np.zeros(len(q), dtype=bool)
    for i in range(len(q)):
        if not np.isfinite(q[i]):
            continue
        dominated = (nfe <= nfe[i]) & (q >= q[i]) & ((nfe < nfe[i]) | (q > q[i]))
        front[i] = not dominated.any()
    return front


def rank(values: pd.Series, *, higher: bool) -> pd.Series:
    """Competition ranks (1 = best; ties share the best rank; NaN last)."""
    return values.rank(ascending=not higher, method="min", na_option="bottom").astype(int)


def speed_rank(rows: pd.DataFrame) -> pd.Series:
    """Ranks by NFE, ties broken by sampling seconds per 1000 samples (1 = fastest; equal pairs share a rank)."""
    seconds = rows["s_per_1k"] if "s_per_1k" in rows else pd.Series(0.0, index=rows.index)
    keys = list(zip(rows["nfe"].astype(float), seconds.fillna(np.inf).astype(float)))
    ordered = sorted(set(keys))
    position = {k: 1 + sum(keys.count(o) for o in ordered[:i]) for i, k in enumerate(ordered)}
    return pd.Series([position[k] for k in keys], index=rows.index, dtype=int)


def annotate(table: pd.DataFrame, *, reference: str | None, shown: Iterable[str]) -> pd.DataFrame:
    """Add per dataset: ``primary`` (the metric's name), ``quality`` (its mean), ``quality_std``, ``diversity``
    (coverage), ``reference`` (the sampler floor's rows), ``shown`` (setting in the paper's table), ``pareto`` (on
    the front among the non-reference rows), and ``rank_quality``/``rank_diversity``/``rank_speed`` over the shown
    non-reference rows (NaN elsewhere)."""
    shown = set(shown)
    parts = []
    for _, sub in table.groupby("dataset", sort=False):
        sub = sub.copy()
        metrics = [c for c in ("hq_percent", "fd", "swd") if c in sub and sub[c].notna().any()]  # this dataset's
        kind = dataset_kind(metrics)
        primary = primary_metric(metrics)
        higher = higher_is_better(primary)
        sub["primary"] = primary
        sub["quality"] = sub[primary]
        sub["quality_std"] = sub.get(f"{primary}_std", np.nan)
        sub["diversity"] = sub.get(DIVERSITY[kind], np.nan)
        sub["reference"] = sub["model"] == reference if reference else False
        sub["shown"] = (sub["sampler"] + "_" + sub["steps"].astype(str)).isin(shown)
        contenders = ~sub["reference"]
        sub["pareto"] = False
        sub.loc[contenders, "pareto"] = pareto_front(sub.loc[contenders, "nfe"].to_numpy(float),
                                                     sub.loc[contenders, "quality"].to_numpy(float), higher=higher)
        ranked = contenders & sub["shown"]
        for col in ("rank_quality", "rank_diversity", "rank_speed"):
            sub[col] = np.nan
        if ranked.any():
            r = sub[ranked]
            sub.loc[ranked, "rank_quality"] = rank(r["quality"], higher=higher)
            sub.loc[ranked, "rank_diversity"] = rank(r["diversity"], higher=True)
            sub.loc[ranked, "rank_speed"] = speed_rank(r)
        parts.append(sub)
    return pd.concat(parts, ignore_index=True) if parts else table


# ---- the targets (quick preset), each reported met or not --------------------------------------------------
FAST_TARGETS = (("dpmpp", 10, 1.2), ("ddim", 20, 1.5))  # (sampler kind, steps, max ratio to the 1000-step DDPM)
DDGAN_HQ = 90.0  # % high-quality samples, with every mode covered, at the DDGAN's own 4 steps
DDGAN_STEPS = 4


def _ratio(fast: float, reference: float, *, higher: bool) -> float:
    """How many times worse ``fast`` is than ``reference`` (≥ 1 when worse): reference/fast for a metric where
    higher is better, fast/reference otherwise."""
    return reference / fast if higher else fast / reference


def targets(table: pd.DataFrame) -> pd.DataFrame:
    """The trilemma issue's targets, one row each: target (a name), text (LaTeX), dataset, model, value, threshold,
    met (bool), note. table: :func:`annotate`'s output.

    - few-step samplers (mixtures): DPM-Solver++ at 10 NFE within 1.2x, DDIM at 20 NFE within 1.5x, of the primary
      metric of the same run under its ancestral sampler with the most steps;
    - DDGAN at 4 NFE on 25-mode (every) mixture: every mode covered with >= 90 % high-quality samples;
    - digits: the VDM's bits/dim below the DDPM ELBO of the same architecture (model ``ARCH-vdm`` against ``ARCH``);
    - every method's FD on the digits as a multiple of the data floor (reported, no threshold).
    """
    rows = []
    runs = table[~table["reference"]]
    for (dataset, model), run in runs.groupby(["dataset", "model"], sort=False):
        primary = run["primary"].iloc[0]
        higher = higher_is_better(primary)
        ancestral = run[run["kind"] == "ddpm"].sort_values("steps")
        if primary == "hq_percent" and len(ancestral):
            ref = ancestral.iloc[-1]
            for kind, steps, limit in FAST_TARGETS:
                fast = run[(run["kind"] == kind) & (run["steps"] == steps)]
                if len(fast):
                    ratio = _ratio(float(fast["quality"].iloc[0]), float(ref["quality"]), higher=higher)
                    rows.append({"target": f"{kind} {steps} NFE within {limit}x of ddpm {int(ref['steps'])}",
                                 "text": f"{SAMPLER_LABELS[kind]} at {steps} NFE within ${limit:g}\\times$ of the "
                                         f"{int(ref['steps'])}-step ancestral sampler",
                                 "dataset": dataset, "model": model, "value": ratio, "threshold": limit,
                                 "met": bool(ratio <= limit),
                                 "note": f"{fast['quality'].iloc[0]:.3g} vs {ref['quality']:.3g} {primary}"})
        gan = run[(run["kind"] == "ddgan") & (run["nfe"] == DDGAN_STEPS)]
        if len(gan) and "modes_total" in gan and pd.notna(gan["modes_total"].iloc[0]):  # a mixture: modes known
            g = gan.iloc[0]
            met = bool(g["modes_covered"] >= g["modes_total"] and g["hq_percent"] >= DDGAN_HQ)
            rows.append({"target": f"ddgan {DDGAN_STEPS} NFE: every mode, >= {DDGAN_HQ:g} % HQ",
                         "text": f"DDGAN at {DDGAN_STEPS} NFE covers every mode with at least {DDGAN_HQ:g}\\,\\% "
                                 f"high-quality samples", "dataset": dataset,
                         "model": model, "value": float(g["hq_percent"]), "threshold": DDGAN_HQ, "met": met,
                         "note": f"{g['modes_covered']:.3g} of {g['modes_total']:.3g} modes"})
    classified = table[(table["primary"] == "fd") & ~table["reference"]]
    for (dataset, model), run in classified.groupby(["dataset", "model"], sort=False):
        method = run["method"].iloc[0]
        if method == "vdm" and "bound_bpd" in run:
            base = runs[(runs["dataset"] == dataset) & (runs["model"] == model.rsplit("-", 1)[0])
                        & (runs["method"] == "ddpm")]
            if len(base) and "bound_bpd" in base:
                vdm, ddpm = float(run["bound_bpd"].iloc[0]), float(base["bound_bpd"].iloc[0])
                rows.append({"target": "vdm bits/dim below the ddpm elbo",
                             "text": "VDM's bits/dim below the DDPM's ELBO", "dataset": dataset, "model": model,
                             "value": vdm, "threshold": ddpm, "met": bool(vdm < ddpm),
                             "note": f"{base['model'].iloc[0]}: {ddpm:.3g} bits/dim"})
    return pd.DataFrame(rows, columns=["target", "text", "dataset", "model", "value", "threshold", "met", "note"])
