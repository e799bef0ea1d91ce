"""The TT model's targets: against the converged networks (quality by the spread rule, parameters and training time
as fractions of the network's), in the default setting and like for like with the analytic head start, and the
Riemannian-GD target; as records (:func:`describe_targets`, :func:`targets_frame`, tt_targets.csv) and as the
paper's table and sentences (:func:`target_table`, :func:`target_rows`, :func:`other_targets`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ttdm.report.claims import separated, standard_error
from ttdm.report.tables import booktabs, fmt_number, tex_escape
from ttdm.report.tt_records import NETWORKS, PRIOR_KEYS, is_tt, swept_keys, time_to_loss


def _tt(name: object) -> str:
    return f"\\texttt{{{tex_escape(name)}}}"


def _num(x: float, sig: int = 3) -> str:
    return f"${fmt_number(x, sig=sig)}$"

# the TT-vs-network targets (:func:`targets_frame`): the TT's parameters and training time as fractions of the network's
PARAM_TARGET, TIME_TARGET = 0.1, 0.2
RGD_TIME_TARGET = 2.0  # Riemannian GD reaches the ALS run's final validation loss within this multiple of its time
TARGET_COLUMNS = ["name", "met", "text", "kind", "dataset", "setting", "tt_model", "tt_prior", "network",
                  "network_prior", "n_seeds_tt", "n_seeds_network", "hq_tt", "hq_tt_std", "hq_network",
                  "hq_network_std", "hq_verdict", "nll_tt", "nll_tt_std", "nll_network", "nll_network_std",
                  "nll_verdict", "swd_ratio", "param_ratio", "time_ratio", "quality_met", "failed"]


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


def target_rows(targets: pd.DataFrame) -> list[dict]:
    """The targets as {"name", "met", "text", "tabled"} records, failed ones first; ``tabled``: the target is a row
    of the TT-vs-network target table (kind "network"), so the paper need not repeat its sentence."""
    t = targets.assign(ok=targets["met"].astype(str).str.lower() == "true").sort_values("ok", kind="stable")
    kinds = t["kind"] if "kind" in t.columns else pd.Series([None] * len(t), index=t.index)
    return [{"name": tex_escape(r.name), "met": bool(r.ok), "text": r.text, "tabled": kind == "network"}
            for r, kind in zip(t.itertuples(index=False), kinds)]


def _prior_word(prior: object) -> str:
    return {"gaussian": "$+\\sigma_t\\mathbf{x}$", "none": "none"}.get(str(prior), "--") if pd.notna(prior) else "--"


def _quality_cell(r: pd.Series, short: str) -> str:
    a, b, verdict = r.get(f"{short}_tt"), r.get(f"{short}_network"), r.get(f"{short}_verdict")
    if a is None or b is None or not (pd.notna(a) and pd.notna(b)):
        return "--"
    word = {"better": "better", "worse": "worse", "not separated": "n.s."}
    text = str(verdict) if pd.notna(verdict) else ""
    one = "one seed" in text
    key = text.split(" (")[0]
    return f"${fmt_number(float(a))}$ / ${fmt_number(float(b))}$ ({word.get(key, key)}{'$^1$' if one else ''})"


def target_table(targets: pd.DataFrame | None) -> str | None:
    """The TT-vs-network targets (rows of kind "network" of tt_targets.csv) as a table, one block per dataset (its
    name on a line of its own): the two models, the head start of each (TT / network), the setting (default or like
    for like), the primary metrics TT / network with the spread-rule verdict (a column only where some row has the
    metric), the secondary SWD ratio, the parameter and time ratios (targets ``PARAM_TARGET``, ``TIME_TARGET``: in
    the caption) and met / not met."""
    if targets is None or "kind" not in targets.columns:
        return None
    t = targets[targets["kind"] == "network"]
    if not len(t):
        return None
    quality = [(short, label) for short, label in (("hq", "HQ\\,\\% TT / net"), ("nll", "NLL TT / net"))
               if (t[f"{short}_tt"].notna() & t[f"{short}_network"].notna()).any()]
    header = (["TT", "Network", "Head start", "Setting"] + [label for _, label in quality]
              + ["SWD ratio", "Param.\\ ratio", "Time ratio", "Target"])
    rows, groups = [], []
    for ds, g in t.groupby("dataset", sort=False):
        groups.append(len(rows))
        rows.append([f"\\multicolumn{{{len(header)}}}{{l}}{{{_tt(ds)}}}"])
        for _, r in g.iterrows():
            met = str(r["met"]).lower()
            rows.append([_tt(r["tt_model"]), _tt(r["network"]),
                         f"{_prior_word(r['tt_prior'])} / {_prior_word(r['network_prior'])}",
                         "default" if r["setting"] == "default" else "like for like"]
                        + [_quality_cell(r, short) for short, _ in quality]
                        + [_num(r[c]) if pd.notna(r[c]) else "--" for c in ("swd_ratio", "param_ratio", "time_ratio")]
                        + ["met" if met == "true" else ("not met" if met == "false" else "--")])
    return booktabs(header, rows, align="llll" + "l" * len(quality) + "rrrl", groups=groups)


def other_targets(targets: pd.DataFrame | None) -> list[str]:
    """The sentences of the targets that are not TT-vs-network rows (the optimizer targets)."""
    if targets is None:
        return []
    kind = targets["kind"] if "kind" in targets.columns else pd.Series("", index=targets.index)
    return [str(x) for x in targets.loc[kind != "network", "text"]]
