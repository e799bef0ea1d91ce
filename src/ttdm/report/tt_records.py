"""Tensor-train experiments (seed 000): per-run records, the groups of runs each table and figure shows, the
aggregated frames of the TT tables and the issue's computed targets.

A run's record joins its spec (architecture, rank, degree, optimizer, method and the ``variant`` the grid expansion
recorded), its train.json (parameters, wall time, validation loss, error against the exact ε* on mixtures) and its
SWD at the main setting.  Groups of runs are told apart by their spec, never by their names, and only by the spec's
*structural* columns (:func:`spec_record`), so the same :func:`selections` applied to records built from the config
alone tell which tables have rows and which figures exist (``ttdm.report.studies.tensor_train.outputs``):

- *comparison*: DDPM runs of plain models and of each optimizer's base TT (no sweep, no tag), per dataset;
- *grid*: DDPM runs of TT variants swept over rank and degree (:data:`GRID_KEYS`), per dataset;
- *isolation*: runs fitted to ε* (method eps_star) and their DDPM counterparts;
- *variants*: tagged TT runs on the DDPM loss (optimizer hyper-parameters);
- *convergence*: base TT runs of datasets where several optimizers trained it.

Runs of other studies never enter them: the training-budget runs (tag :data:`BUDGET_TAG`), the sampler floor (its own
arch and method) and the runs that only switch the analytic head start (a ``prior`` sweep), which the targets
(:func:`targets_frame`) compare like for like.

Every comparison between two means follows the report's spread rule (:func:`ttdm.report.claims.separated`: the gap
must exceed the combined standard error of the two means) through :func:`compare`; a mean of one seed has no spread,
and the comparison says so.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ttdm.report.claims import separated, standard_error
from ttdm.report.tables import fmt_number, tex_escape

PathLike = str | os.PathLike
SETTING_KEYS = ("lr", "lam", "step_size", "line_search", "fit_batch", "n_fit")
SPEC_COLUMNS = ["dataset", "model", "seed", "arch", "base", "optimizer", "solver", "method", "rank", "degree",
                "layout", "prior", "tag", "swept", *SETTING_KEYS]
RUN_COLUMNS = ["dataset", "model", "seed", "arch", "base", "optimizer", "solver", "method", "rank", "degree",
               "layout", "prior", "tag", "swept", "dim", "n_params", "steps", *SETTING_KEYS, "wall_s", "val_loss",
               "eps_rel_error", "swd", "hq_percent", "nll", "swd_floor", "run_dir"]
TABLES = ("comparison", "grid", "isolation", "variants", "convergence")  # tt_{name}.csv, in writing order
MEASURED = ["n_params", "wall_s", "val_loss", "eps_rel_error", "swd", "hq_percent", "nll"]  # aggregated over seeds
NETWORKS = ("mlp", "resnet")  # the network archs the TT is compared with (the main, converged baselines)
GRID_KEYS = frozenset({"rank", "degree"})  # the sweeps of the rank x basis-size grid
PRIOR_KEYS = frozenset({"prior"})  # a sweep that only switches the analytic head start sigma_t x
BUDGET_TAG = "budget"  # runs of the training-budget study (ttdm.config.grid): never TT records
# the TT-vs-network targets (:func:`targets_frame`): the TT's parameters and training time as fractions of the network's
PARAM_TARGET, TIME_TARGET = 0.1, 0.2
RGD_TIME_TARGET = 2.0  # Riemannian GD reaches the ALS run's final validation loss within this multiple of its time
TARGET_COLUMNS = ["name", "met", "text", "kind", "dataset", "setting", "tt_model", "tt_prior", "network",
                  "network_prior", "n_seeds_tt", "n_seeds_network", "hq_tt", "hq_tt_std", "hq_network",
                  "hq_network_std", "hq_verdict", "nll_tt", "nll_tt_std", "nll_network", "nll_network_std",
                  "nll_verdict", "swd_ratio", "param_ratio", "time_ratio", "quality_met", "failed"]


def spec_record(spec: dict[str, Any], priors: dict[str, str | None] | None = None) -> dict[str, Any]:
    """The structural columns (``SPEC_COLUMNS``) of a run, from its spec (``ttdm.config.run_spec``, spec.json);
    ``priors``: {arch: default prior} (``ttdm.config.arch_priors``), else looked up in the model registry."""
    variant = spec.get("variant") or {}
    cfg = spec.get("model_cfg", {})
    return {
        "dataset": spec["dataset"], "model": spec["model"], "seed": int(spec["seed"]), "arch": spec["arch"],
        "base": variant.get("base") or spec["model"],
        "optimizer": variant.get("optimizer") or spec["training"].get("optimizer", "adam"),
        "solver": spec["training"].get("optimizer", "adam"), "method": spec["method"],
        "rank": cfg.get("rank"), "degree": cfg.get("degree"), "layout": cfg.get("layout"),
        "prior": model_prior(spec["arch"], cfg, priors), "tag": variant.get("tag"),
        "swept": json.dumps(variant.get("sweep") or {}, sort_keys=True),
        **{k: spec["training"].get(k) for k in SETTING_KEYS},
    }


def model_prior(arch: str, model_cfg: dict[str, Any], priors: dict[str, str | None] | None = None) -> str | None:
    """The analytic head start a model uses (its ``prior`` option: "gaussian" adds σ_t x, "none" does not): the
    configured value, else the architecture's declared default (networks "none", the TT "gaussian"); None for an
    architecture without the option (the sampler floor)."""
    if "prior" in model_cfg:
        return str(model_cfg["prior"])
    if priors is not None and arch in priors:
        return priors[arch]
    try:
        from ttdm.models import MODELS
        from ttdm.options import fields_of

        options = MODELS.options(arch)
    except (ImportError, ValueError):
        return None
    field = fields_of(options).get("prior") if options is not None else None
    return str(field[2]) if field is not None else None


def swept_keys(swept: object) -> frozenset[str]:
    """The option names of a run's sweep (the ``swept`` column, JSON)."""
    if not isinstance(swept, str) or not swept:
        return frozenset()
    return frozenset(json.loads(swept))


def spec_frame(specs: Iterable[dict[str, Any]], priors: dict[str, str | None] | None = None) -> pd.DataFrame:
    """Records of runs known by their specs only (columns ``RUN_COLUMNS``, the measured ones empty)."""
    return pd.DataFrame([spec_record(s, priors) for s in specs], columns=RUN_COLUMNS)


def collect_runs(runs: Iterable[tuple[dict[str, Any], dict[str, Any], PathLike]], metrics: pd.DataFrame,
                 floors: pd.DataFrame, main: tuple[str, int], dims: dict[str, int] | None = None,
                 likelihood: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per run (columns ``RUN_COLUMNS``) from (spec, train.json record, run directory) triples; swd and
    hq_percent (the % high-quality samples, mixtures only) are the run's values at the ``main`` (sampler, steps)
    setting, nll its test NLL (nats/dim) from ``likelihood`` (long rows dataset, model, seed, metric, value of
    results/likelihood; NaN without one), dim the dataset's D from ``dims`` (None when absent)."""
    sampler, steps = main
    at_main = metrics[(metrics["sampler"] == sampler) & (metrics["steps"] == steps)]

    def by_run(df: pd.DataFrame, metric: str) -> dict[tuple[str, str, int], float]:
        df = df[df["metric"] == metric]
        return {(str(d), str(m), int(s)): float(v) for d, m, s, v in zip(df["dataset"], df["model"], df["seed"],
                                                                          df["value"])}

    swd, hq = by_run(at_main, "swd"), by_run(at_main, "hq_percent")
    nll = by_run(likelihood, "nll") if likelihood is not None and len(likelihood) else {}
    floor = {r.dataset: r.value for r in floors[floors["metric"] == "swd"].itertuples(index=False)}
    rows = []
    for spec, info, run in runs:
        rec = spec_record(spec)
        key = (rec["dataset"], rec["model"], rec["seed"])
        rows.append({**rec, "dim": (dims or {}).get(rec["dataset"]), "n_params": info.get("n_params") or 0,
                     "steps": info["steps"], "wall_s": info["wall_s"], "val_loss": info.get("val_loss"),
                     "eps_rel_error": info.get("eps_rel_error"), "swd": swd.get(key), "hq_percent": hq.get(key),
                     "nll": nll.get(key), "swd_floor": floor.get(rec["dataset"]), "run_dir": str(run)})
    df = pd.DataFrame(rows, columns=RUN_COLUMNS)
    return df.sort_values(["dataset", "model", "seed"], kind="stable").reset_index(drop=True)


def time_to_loss(loss_csv: PathLike, target: float) -> float | None:
    """The first logged wall time (s) at which the validation loss is ≤ ``target``; None if never."""
    log = pd.read_csv(loss_csv)
    hit = log[log["val_loss"] <= target]
    return float(hit["wall_s"].iloc[0]) if len(hit) else None


def _agg(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Mean and std over seeds of the run columns (:data:`MEASURED`; a column the records lack is NaN), per ``keys``,
    with the number of seeds."""
    df = df.assign(**{c: np.nan for c in MEASURED if c not in df.columns})
    df = df.astype({c: float for c in MEASURED})
    g = df.groupby(keys, sort=False, dropna=False)
    out = g[MEASURED].agg(["mean", "std"])
    out.columns = [f"{a}_{b}" for a, b in out.columns]
    out["n_seeds"] = g.size()
    out["swd_floor"] = g["swd_floor"].first()
    return out.reset_index()


def is_tt(df: pd.DataFrame) -> pd.Series:
    return df["arch"] == "tt"


def selections(runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The runs each TT table shows (``TABLES``), chosen by structural columns only (see the module docstring).

    Budget runs (tag :data:`BUDGET_TAG`) enter none; runs whose sweep changes other options than the grid's
    (:data:`GRID_KEYS`; e.g. ``prior``) enter neither the comparison nor the grid."""
    runs = runs[runs["tag"].astype(object).fillna("") != BUDGET_TAG]
    tt, ddpm, untagged, unswept = is_tt(runs), runs["method"] == "ddpm", runs["tag"].isna(), runs["swept"] == "{}"
    in_grid = runs["swept"].map(lambda s: swept_keys(s) <= GRID_KEYS).astype(bool)
    tt_sets = set(runs.loc[tt & ddpm, "dataset"])
    tt_plain = runs[tt & ddpm & untagged & in_grid]
    swept = set(tt_plain.loc[tt_plain["swept"] != "{}", "dataset"])
    base = runs[tt & ddpm & untagged & unswept]
    n_optimizers = base.groupby("dataset")["optimizer"].transform("nunique") if len(base) else base["seed"]
    return {
        "comparison": runs[ddpm & untagged & unswept & runs["dataset"].isin(tt_sets)
                           & runs["arch"].isin(["tt", *NETWORKS])],
        "grid": tt_plain[tt_plain["dataset"].isin(swept)],
        "isolation": runs[runs["method"] == "eps_star"],
        "variants": runs[tt & ddpm & runs["tag"].notna()],
        "convergence": base[n_optimizers >= 2],
    }


def layout(runs: pd.DataFrame) -> dict[str, Any]:
    """What the TT tables and figures hold for these runs: {"tables": the ``TABLES`` with rows, "convergence":
    datasets with a convergence figure, "rank": whether the rank figure exists, "isolation": the isolation figure}.

    Structural: the same for records built from the config (:func:`spec_frame`) as for the finished runs'.
    """
    sel = selections(runs)
    return {"tables": [name for name in TABLES if len(sel[name])],
            "convergence": sorted(set(sel["convergence"]["dataset"])),
            "rank": bool(len(sel["grid"])), "isolation": bool(len(sel["isolation"]))}


def comparison(runs: pd.DataFrame) -> pd.DataFrame:
    """Per dataset with TT runs: plain models and base TT optimizers trained on the DDPM loss (mean ± std over seeds,
    n_seeds; with the head start ``prior`` each uses)."""
    sel = selections(runs)["comparison"]
    return _agg(sel, ["dataset", "model", "arch", "optimizer"] + (["prior"] if "prior" in sel.columns else []))


def grid(runs: pd.DataFrame) -> pd.DataFrame:
    """TT DDPM runs of datasets with a rank/degree sweep, per dataset × optimizer × degree × rank."""
    out = _agg(selections(runs)["grid"], ["dataset", "optimizer", "degree", "rank"])
    return out.sort_values(["dataset", "optimizer", "degree", "rank"], kind="stable").reset_index(drop=True)


def isolation(runs: pd.DataFrame) -> pd.DataFrame:
    """ε*-fitted runs beside their DDPM counterparts: relative L2 error to ε* of both (mean over seeds)."""
    iso = selections(runs)["isolation"]
    rows = []
    for key, g in iso.groupby(["dataset", "base", "optimizer", "swept"], sort=False):
        ds, base, opt, swept = key
        twin = runs[(runs["dataset"] == ds) & (runs["base"] == base) & (runs["optimizer"] == opt)
                    & (runs["swept"] == swept) & (runs["method"] == "ddpm") & runs["tag"].isna()]
        first = g.iloc[0]
        rows.append({"dataset": ds, "model": first["model"], "arch": first["arch"], "optimizer": opt,
                     "rank": first["rank"], "n_params": int(first["n_params"] or 0), "wall_s": g["wall_s"].mean(),
                     "iso_error": g["eps_rel_error"].mean(), "iso_error_std": g["eps_rel_error"].std(),
                     "n_seeds": len(g),
                     "ddpm_error": twin["eps_rel_error"].mean() if len(twin) else np.nan,
                     "ddpm_error_std": twin["eps_rel_error"].std() if len(twin) else np.nan,
                     "ddpm_n_seeds": len(twin),
                     "ddpm_model": twin["model"].iloc[0] if len(twin) else ""})
    out = pd.DataFrame(rows, columns=["dataset", "model", "arch", "optimizer", "rank", "n_params", "wall_s",
                                      "iso_error", "iso_error_std", "n_seeds", "ddpm_error", "ddpm_error_std",
                                      "ddpm_n_seeds", "ddpm_model"])
    return out.sort_values(["dataset", "arch", "optimizer", "n_params"], kind="stable").reset_index(drop=True)


def settings_text(row: Any) -> str:
    """The optimizer settings that tell variants apart: 'lam 0.1', 'step 0.2 fixed, batch 2000', 'lr 0.001'."""
    if row["solver"] in ("adam", "sgd"):
        return f"lr {fmt_number(float(row['lr']))}"
    if row["solver"] == "als":
        return f"lam {fmt_number(float(row['lam']))}" if pd.notna(row["lam"]) else "lam 0.001"
    step = fmt_number(float(row["step_size"])) if pd.notna(row["step_size"]) else "1"
    line = bool(row["line_search"]) if pd.notna(row["line_search"]) else True
    batch = int(row["fit_batch"]) if pd.notna(row["fit_batch"]) else 0
    return f"step {step} {'Armijo' if line else 'fixed'}" + (f", batch {batch}" if batch else ", full batch")


def variants(runs: pd.DataFrame) -> pd.DataFrame:
    """Tagged TT runs on the DDPM loss (optimizer hyper-parameter variants) beside the untagged run of the same
    solver, dataset and seed: validation loss, time and SWD of both."""
    rows = []
    tagged = selections(runs)["variants"]
    plain = runs[is_tt(runs) & (runs["method"] == "ddpm") & runs["tag"].isna() & (runs["swept"] == "{}")]
    for r in tagged.to_dict("records"):
        twin = plain[(plain["dataset"] == r["dataset"]) & (plain["solver"] == r["solver"]) & (plain["seed"] == r["seed"])
                     & (plain["base"] == r["base"])]
        t = twin.iloc[0] if len(twin) else None
        rows.append({"dataset": r["dataset"], "model": r["model"], "seed": r["seed"], "solver": r["solver"],
                     "settings": settings_text(r), "val_loss": r["val_loss"], "wall_s": r["wall_s"], "swd": r["swd"],
                     "base_model": t["model"] if t is not None else "",
                     "base_settings": settings_text(t) if t is not None else "",
                     "base_val_loss": t["val_loss"] if t is not None else np.nan,
                     "base_wall_s": t["wall_s"] if t is not None else np.nan,
                     "base_swd": t["swd"] if t is not None else np.nan})
    return pd.DataFrame(rows, columns=["dataset", "model", "seed", "solver", "settings", "val_loss", "wall_s", "swd",
                                       "base_model", "base_settings", "base_val_loss", "base_wall_s", "base_swd"])


CONVERGENCE_COLUMNS = ["dataset", "optimizer", "solver", "target", "best_val_loss", "best_val_loss_std",
                       "time_to_target", "time_to_target_std", "n_seeds", "wall_s", "steps"]


def convergence(runs: pd.DataFrame, comp: pd.DataFrame) -> pd.DataFrame:
    """Per dataset with several base TT optimizers: each one's time (s) to reach the common loss target.

    The target is the highest best validation loss of any run, so that every run of every optimizer reaches it;
    time_to_target is the mean over seeds of the first logged wall time at or below it (``_std``: the sample
    standard deviation over the ``n_seeds`` seeds; NaN for one seed).
    """
    rows = []
    for ds, g in selections(runs)["convergence"].groupby("dataset", sort=False):
        mins = {opt: [float(pd.read_csv(Path(d) / "loss.csv")["val_loss"].min()) for d in h["run_dir"]]
                for opt, h in g.groupby("optimizer", sort=False)}
        target = max(max(m) for m in mins.values())  # every run of every optimizer reaches it
        for opt, h in g.groupby("optimizer", sort=False):
            times = [time_to_loss(Path(d) / "loss.csv", target) for d in h["run_dir"]]
            ok = [t for t in times if t is not None]
            full = len(ok) == len(times)
            rows.append({"dataset": ds, "optimizer": opt, "solver": h["solver"].iloc[0], "target": target,
                         "best_val_loss": float(np.mean(mins[opt])),
                         "best_val_loss_std": float(np.std(mins[opt], ddof=1)) if len(mins[opt]) > 1 else np.nan,
                         "time_to_target": float(np.mean(ok)) if full else np.nan,
                         "time_to_target_std": float(np.std(ok, ddof=1)) if full and len(ok) > 1 else np.nan,
                         "n_seeds": len(times), "wall_s": h["wall_s"].mean(), "steps": int(h["steps"].iloc[0])})
    return pd.DataFrame(rows, columns=CONVERGENCE_COLUMNS)


@dataclass(frozen=True)
class Verdict:
    """How mean a compares with mean b by the spread rule: ``word`` is "better" or "worse" (a against b) when the
    gap exceeds the combined standard error sqrt(se_a² + se_b²) (:func:`ttdm.report.claims.separated`), "not
    separated" when it does not, "" when a mean is missing; with one seed on either side (``one_seed``: no spread to
    judge the gap) the word compares the means alone ("better", "worse" or "equal")."""

    word: str
    one_seed: bool = False

    @property
    def text(self) -> str:
        """"better", "not separated", "worse (one seed: no spread)", ..."""
        return self.word + (" (one seed: no spread)" if self.one_seed and self.word else "")

    @property
    def worse(self) -> bool:
        return self.word == "worse"


def compare(a: tuple[float, float, float], b: tuple[float, float, float], *, higher_is_better: bool = False
            ) -> Verdict:
    """The :class:`Verdict` of a = (mean, std, n_seeds) against b: better / worse beyond the combined standard error
    of the two means (se = std/√n), else not separated; by the means alone, flagged, when a side has one seed."""
    (ma, sa, na), (mb, sb, nb) = a, b
    if ma is None or mb is None or not (np.isfinite(ma) and np.isfinite(mb)):
        return Verdict("")
    sign = 1.0 if higher_is_better else -1.0
    if min(na or 0, nb or 0) < 2:
        return Verdict("equal" if ma == mb else ("better" if sign * (ma - mb) > 0 else "worse"), one_seed=True)
    if not separated(ma, standard_error(sa, na), mb, standard_error(sb, nb)):
        return Verdict("not separated")
    return Verdict("better" if sign * (ma - mb) > 0 else "worse")


def _stats(g: pd.DataFrame, col: str) -> tuple[float, float, int]:
    """(mean, std, number of seeds with a value) of a run column; NaN mean when no run has it."""
    v = g[col].astype(float).dropna() if col in g.columns else pd.Series(dtype=float)
    return (float(v.mean()) if len(v) else np.nan, float(v.std()) if len(v) > 1 else np.nan, int(len(v)))


PRIOR_TEXT = {"gaussian": "with the Gaussian term $\\sigma_t \\mathbf{x}$", "none": "without it"}
QUALITY_LABELS = {"hq_percent": "HQ percentage", "nll": "test NLL", "swd": "SWD"}


def _network_target(ds: str, tt: pd.DataFrame, net: pd.DataFrame, setting: str) -> dict[str, Any]:
    """One TT-vs-network target row (``TARGET_COLUMNS``): quality on the primary metrics, parameters and time."""
    tt_model, net_model = str(tt["model"].iloc[0]), str(net["model"].iloc[0])
    tt_prior, net_prior = tt["prior"].iloc[0], net["prior"].iloc[0]
    tt_prior = None if pd.isna(tt_prior) else str(tt_prior)
    net_prior = None if pd.isna(net_prior) else str(net_prior)
    row: dict[str, Any] = {"kind": "network", "dataset": ds, "setting": setting, "tt_model": tt_model,
                           "tt_prior": tt_prior, "network": net_model, "network_prior": net_prior,
                           "n_seeds_tt": len(tt), "n_seeds_network": len(net)}
    verdicts = {}
    for metric, short in (("hq_percent", "hq"), ("nll", "nll")):
        a, b = _stats(tt, metric), _stats(net, metric)
        row.update({f"{short}_tt": a[0], f"{short}_tt_std": a[1], f"{short}_network": b[0],
                    f"{short}_network_std": b[1]})
        v = compare(a, b, higher_is_better=metric == "hq_percent")
        row[f"{short}_verdict"] = v.text
        if v.word:
            verdicts[metric] = (v, a, b)
    if not verdicts:  # no primary metric on both sides (no mixture modes, no likelihood): the SWD decides
        a, b = _stats(tt, "swd"), _stats(net, "swd")
        v = compare(a, b)
        if v.word:
            verdicts["swd"] = (v, a, b)
    swd_t, swd_n = _stats(tt, "swd")[0], _stats(net, "swd")[0]
    par_n, time_n = _stats(net, "n_params")[0], _stats(net, "wall_s")[0]
    row["swd_ratio"] = swd_t / swd_n if swd_n and swd_n > 0 else np.nan
    row["param_ratio"] = _stats(tt, "n_params")[0] / par_n if par_n and par_n > 0 else np.nan
    row["time_ratio"] = _stats(tt, "wall_s")[0] / time_n if time_n and time_n > 0 else np.nan
    quality_ok = {m: not v.worse for m, (v, _, _) in verdicts.items()}
    checks = {**{QUALITY_LABELS[m]: ok for m, ok in quality_ok.items()},
              "parameters": bool(row["param_ratio"] <= PARAM_TARGET),
              "time": bool(row["time_ratio"] <= TIME_TARGET)}
    row["quality_met"] = bool(quality_ok) and all(quality_ok.values())
    measurable = bool(verdicts) and np.isfinite(row["param_ratio"]) and np.isfinite(row["time_ratio"])
    row["met"] = bool(measurable and all(checks.values())) if measurable else None
    row["failed"] = ", ".join(k for k, ok in checks.items() if not ok)
    row["name"] = f"{tt_model}_vs_{net_model}_{ds}"

    def side(model: str, prior: str | None) -> str:
        return f"\\texttt{{{tex_escape(model)}}}" + (f" ({PRIOR_TEXT.get(prior, tex_escape(prior))})" if prior else "")

    how = ("the default settings" if setting == "default" else "like for like: the same head start on both sides")
    parts = []
    for metric, (v, a, b) in verdicts.items():
        judged = {"better": "the TT's is better beyond their combined standard error",
                  "worse": "the TT's is worse beyond their combined standard error",
                  "not separated": "not separated (within their combined standard error)",
                  "equal": "equal"}[v.word]
        parts.append(f"{QUALITY_LABELS[metric]} ${fmt_number(a[0])}$ against ${fmt_number(b[0])}$, {judged}"
                     + (" (one seed: no spread)" if v.one_seed else ""))
    quality = "; ".join(parts) if parts else "no quality metric on both sides"
    text = (f"On {tex_escape(ds)}, {side(tt_model, tt_prior)} against {side(net_model, net_prior)}, {how}: "
            f"{quality}; ${fmt_number(row['param_ratio'])}\\times$ the parameters (target $\\le {PARAM_TARGET:g}$) and "
            f"${fmt_number(row['time_ratio'])}\\times$ the training time (target $\\le {TIME_TARGET:g}$): ")
    if row["met"] is None:
        text += "not measurable."
    else:
        text += "met." if row["met"] else f"not met ({row['failed']})."
    row["text"] = text
    return row


def _mixtures(runs: pd.DataFrame) -> list[str]:
    """Datasets whose runs have mixture measurements (the % high-quality samples or the error against ε*)."""
    has = runs["eps_rel_error"].notna()
    if "hq_percent" in runs.columns:
        has |= runs["hq_percent"].notna()
    return sorted(set(runs.loc[has, "dataset"]))


def describe_targets(runs: pd.DataFrame, conv: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    """The computed targets, each a row of ``TARGET_COLUMNS`` with "name", "met" (bool, None when not measurable)
    and "text" (a LaTeX sentence that names both sides, their head start and the verdict).

    1. On each Gaussian mixture, the ALS-trained TT against each converged network (``NETWORKS``, the main runs):
       quality not worse beyond the combined standard error on the primary metrics (the % high-quality samples,
       and the test NLL where both have one; the SWD only when neither exists), with ≤ ``PARAM_TARGET`` of the
       network's parameters and ≤ ``TIME_TARGET`` of its training time (means over seeds). Settings: "default"
       (both models as configured: the TT with the Gaussian term σ_t x, the networks without) and, where the runs
       exist, "like-for-like" (a run of the other ``prior`` on one side, the same head start on both). The SWD
       ratio is kept as a secondary column, outside the verdict.
    2. Riemannian GD reaches the ALS run's final validation loss within ``RGD_TIME_TARGET`` × the ALS wall time.
    """
    out = []
    runs = runs if "prior" in runs.columns else runs.assign(prior=None)
    runs = runs[runs["tag"].isna() & (runs["method"] == "ddpm")]
    headstart = runs["swept"].map(lambda s: swept_keys(s) <= PRIOR_KEYS).astype(bool)
    tts = runs[is_tt(runs) & (runs["optimizer"] == "als") & headstart]
    nets = runs[runs["arch"].isin(NETWORKS) & headstart]
    for ds in _mixtures(runs):
        pairs = []
        for tt_model, tg in tts[tts["dataset"] == ds].groupby("model", sort=True):
            for net_model, ng in nets[nets["dataset"] == ds].groupby("model", sort=True):
                default = tg["swept"].iloc[0] == "{}" and ng["swept"].iloc[0] == "{}"
                same = pd.notna(tg["prior"].iloc[0]) and tg["prior"].iloc[0] == ng["prior"].iloc[0]
                if default or same:
                    pairs.append((not default, NETWORKS.index(ng["arch"].iloc[0]), tt_model, net_model, tg, ng,
                                  "default" if default else "like-for-like"))
        for *_, tg, ng, setting in sorted(pairs, key=lambda p: p[:4]):
            out.append(_network_target(ds, tg, ng, setting))
    base = runs[is_tt(runs) & (runs["swept"] == "{}")]
    for ds in sorted(set(base["dataset"])):
        als = base[(base["dataset"] == ds) & (base["optimizer"] == "als")]
        rgd = base[(base["dataset"] == ds) & (base["optimizer"] == "rgd")]
        if not len(als) or not len(rgd):
            continue
        ratios = []
        for seed in sorted(set(als["seed"]) & set(rgd["seed"])):
            a = als[als["seed"] == seed].iloc[0]
            r = rgd[rgd["seed"] == seed].iloc[0]
            t = time_to_loss(Path(r["run_dir"]) / "loss.csv", float(a["val_loss"]))
            ratios.append(t / a["wall_s"] if t is not None else np.inf)
        if not ratios:
            continue
        worst = max(ratios)
        met = bool(np.isfinite(worst) and worst <= RGD_TIME_TARGET)
        if np.isfinite(worst):
            text = (f"On {tex_escape(ds)} Riemannian GD reaches the final ALS validation loss in "
                    f"${fmt_number(worst)}\\times$ the ALS training time (worst of {len(ratios)} seed"
                    f"{'s' if len(ratios) != 1 else ''}; target $\\le {RGD_TIME_TARGET:g}$): "
                    f"{'met' if met else 'not met'}.")
        else:
            text = (f"On {tex_escape(ds)} Riemannian GD does not reach the final ALS validation loss within its "
                    f"iteration budget (target: within ${RGD_TIME_TARGET:g}\\times$ the ALS training time): not met.")
        out.append({"name": f"rgd_vs_als_{ds}", "met": met, "text": text, "kind": "optimizer", "dataset": ds,
                    "setting": "default", "tt_model": str(rgd["model"].iloc[0]), "tt_prior": rgd["prior"].iloc[0],
                    "network": str(als["model"].iloc[0]), "network_prior": als["prior"].iloc[0],
                    "n_seeds_tt": len(rgd), "n_seeds_network": len(als), "time_ratio": worst,
                    "failed": "" if met else "time"})
    return out


def targets_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """:func:`describe_targets` as a table (``TARGET_COLUMNS``): tt_targets.csv, which the paper prints."""
    return pd.DataFrame(describe_targets(runs), columns=TARGET_COLUMNS)
