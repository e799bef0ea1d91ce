"""The TT report's computed targets and claims on hand-made run records (independent of any training)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ttdm.report import tt_claims, tt_records, tt_targets
from ttdm.report.claims import separated

ROOT = Path(__file__).resolve().parents[1]


def record(tmp_path, model, arch, optimizer, seed, *, swd, n_params, wall_s, val_loss, losses, solver=None,
           hq=None, nll=None, prior=None, swept="{}", tag=None, method="ddpm", dataset="8gaussians"):
    run = tmp_path / dataset / model / str(seed)
    run.mkdir(parents=True)
    pd.DataFrame({"step": range(1, len(losses) + 1), "loss": losses, "wall_s": [wall_s * (i + 1) / len(losses)
                  for i in range(len(losses))], "val_loss": losses}).to_csv(run / "loss.csv", index=False)
    if prior is None:
        prior = {"tt": "gaussian", "mlp": "none", "resnet": "none"}.get(arch)
    return {"dataset": dataset, "model": model, "seed": seed, "arch": arch, "base": model.split("-")[0],
            "optimizer": optimizer, "solver": solver or optimizer, "method": method,
            "rank": 4 if arch == "tt" else None, "degree": 8 if arch == "tt" else None, "layout": None,
            "prior": prior, "tag": tag, "swept": swept, "dim": 2, "n_params": n_params, "steps": len(losses),
            "wall_s": wall_s, "val_loss": val_loss, "eps_rel_error": 0.1, "swd": swd, "hq_percent": hq, "nll": nll,
            "swd_floor": 0.1, "run_dir": str(run)}


@pytest.fixture
def runs(tmp_path):
    rows = []
    for seed in (0, 1):
        rows.append(record(tmp_path, "mlp", "mlp", "adam", seed, swd=0.2 + 0.01 * seed, n_params=40000, wall_s=10.0,
                           val_loss=0.26, losses=[0.3, 0.26], hq=90.0 + seed, nll=1.0 + 0.01 * seed))
        rows.append(record(tmp_path, "tt-als", "tt", "als", seed, swd=0.25 + 0.01 * seed, n_params=384, wall_s=1.0,
                           val_loss=0.24, losses=[0.3, 0.25, 0.24], hq=80.0 + seed, nll=1.0 + 0.01 * seed))
        # RGD reaches 0.24 at 3/4 of its 2.4 s: 1.8 s = 1.8 x the ALS time
        rows.append(record(tmp_path, "tt-rgd", "tt", "rgd", seed, swd=0.3, n_params=384, wall_s=2.4, val_loss=0.238,
                           losses=[0.3, 0.27, 0.24, 0.238], hq=60.0 + seed))
    return pd.DataFrame(rows)


@pytest.fixture
def prior_runs(runs, tmp_path):
    """The default runs plus the head-start switches, a second network, a budget run and the sampler floor."""
    rows = []
    for seed in (0, 1):
        rows.append(record(tmp_path, "resnet", "resnet", "adam", seed, swd=0.21, n_params=60000, wall_s=20.0,
                           val_loss=0.25, losses=[0.3, 0.25], hq=79.0 + 2 * seed))
        rows.append(record(tmp_path, "mlp-priorgaussian", "mlp", "adam", seed, swd=0.22, n_params=40000,
                           wall_s=10.0, val_loss=0.25, losses=[0.3, 0.25], hq=80.0 + seed, prior="gaussian",
                           swept='{"prior": "gaussian"}'))
        rows.append(record(tmp_path, "tt-priornone-als", "tt", "als", seed, swd=0.4, n_params=384, wall_s=1.0,
                           val_loss=0.3, losses=[0.35, 0.3], hq=85.0 + 10 * seed, prior="none",
                           swept='{"prior": "none"}'))
        rows.append(record(tmp_path, "mlp-steps500-budget", "mlp", "adam", seed, swd=0.9, n_params=40000,
                           wall_s=2.0, val_loss=0.5, losses=[0.6, 0.5], hq=10.0, tag="budget"))
    rows.append(record(tmp_path, "sampler-floor", "mixture_eps", "adam", 0, swd=0.11, n_params=0, wall_s=0.01,
                       val_loss=0.2, losses=[0.2], hq=99.0, method="analytic", prior=None))
    return pd.concat([runs, pd.DataFrame(rows)], ignore_index=True)


# ---- the spread rule ----------------------------------------------------------------------------------------------
def test_compare_is_the_spread_rule_of_claims():
    # se = 0.1 / 2 = 0.05 on both sides: combined sqrt(2) * 0.05 = 0.0707
    assert tt_targets.compare((1.0, 0.1, 4), (1.12, 0.1, 4)).word == "better"  # lower is better by default
    assert tt_targets.compare((1.12, 0.1, 4), (1.0, 0.1, 4)).word == "worse"
    assert tt_targets.compare((1.0, 0.1, 4), (1.05, 0.1, 4)).word == "not separated"
    assert separated(1.0, 0.05, 1.12, 0.05) and not separated(1.0, 0.05, 1.05, 0.05)
    assert tt_targets.compare((90.0, 1.0, 3), (80.0, 1.0, 3), higher_is_better=True).word == "better"
    one = tt_targets.compare((1.0, np.nan, 1), (2.0, 0.1, 3))
    assert (one.word, one.one_seed, one.text) == ("better", True, "better (one seed: no spread)")
    assert tt_targets.compare((np.nan, 0.1, 3), (1.0, 0.1, 3)).word == ""


# ---- targets ------------------------------------------------------------------------------------------------------
def test_targets_use_the_primary_metrics_and_the_spread_rule(runs):
    targets = {t["name"]: t for t in tt_targets.describe_targets(runs)}
    als = targets["tt-als_vs_mlp_8gaussians"]
    # HQ 80.5 against 90.5 (se 0.5 each): worse beyond sqrt(0.5)=0.71; NLL 1.005 against 1.005: not separated
    assert als["setting"] == "default" and (als["tt_prior"], als["network_prior"]) == ("gaussian", "none")
    assert als["hq_verdict"] == "worse" and als["nll_verdict"] == "not separated"
    assert als["param_ratio"] == pytest.approx(384 / 40000) and als["time_ratio"] == pytest.approx(0.1)
    assert als["swd_ratio"] == pytest.approx(0.255 / 0.205)  # secondary: shown, not judged
    assert als["met"] is False and als["failed"] == "HQ percentage"
    assert ("\\texttt{tt-als} (with the Gaussian term $\\sigma_t \\mathbf{x}$) against \\texttt{mlp} (without it), "
            "the default settings") in als["text"]
    assert "HQ percentage $80.5$ against $90.5$, the TT's is worse beyond their combined standard error" in als["text"]
    assert "test NLL $1.00$ against $1.00$, not separated" in als["text"] and als["text"].endswith(
        "not met (HQ percentage).")
    rgd = targets["rgd_vs_als_8gaussians"]
    assert rgd["met"] and "$1.80\\times$ the ALS training time (worst of 2 seeds" in rgd["text"]
    close = runs.copy()
    close.loc[close["model"] == "tt-als", "hq_percent"] = close.loc[close["model"] == "mlp", "hq_percent"].values
    close.loc[close["model"] == "tt-als", "wall_s"] = 3.0  # 0.3 x the MLP's time: only the time target fails
    als = {t["name"]: t for t in tt_targets.describe_targets(close)}["tt-als_vs_mlp_8gaussians"]
    assert als["hq_verdict"] == "not separated" and not als["met"] and "not met (time)" in als["text"]


def test_targets_compare_like_for_like_where_the_runs_exist(prior_runs):
    frame = tt_targets.targets_frame(prior_runs)
    assert list(frame.columns) == tt_targets.TARGET_COLUMNS
    net = frame[frame["kind"] == "network"]
    pairs = list(zip(net["tt_model"], net["network"], net["setting"]))
    # default pairs first (mlp, then resnet), then like for like: the same head start on both sides
    assert pairs == [("tt-als", "mlp", "default"), ("tt-als", "resnet", "default"),
                     ("tt-als", "mlp-priorgaussian", "like-for-like"), ("tt-priornone-als", "mlp", "like-for-like"),
                     ("tt-priornone-als", "resnet", "like-for-like")]
    assert (net["tt_prior"] == net["network_prior"]).tolist() == [False, False, True, True, True]
    row = net.set_index(["tt_model", "network"]).loc[("tt-als", "mlp-priorgaussian")]
    assert row["hq_verdict"] == "not separated" and bool(row["met"])  # 80.5 against 80.5, 1 % params, 0.1 x time
    assert "like for like: the same head start on both sides" in row["text"]
    assert pd.isna(row["nll_network"])  # no likelihood for that run: the HQ percentage alone decides
    # budget runs and the sampler floor (no parameters) are no TT records and no networks of the targets
    assert not frame["network"].isin(["mlp-steps500-budget", "sampler-floor"]).any()
    assert not frame["tt_model"].isin(["mlp-steps500-budget", "sampler-floor"]).any()
    table = tt_targets.target_table(frame)
    header = table.split("\\midrule")[0]
    assert header.strip().endswith("TT & Network & Head start & Setting & HQ\\,\\% TT / net & NLL TT / net & "
                                   "SWD ratio & Param.\\ ratio & Time ratio & Target \\\\")
    assert "\\multicolumn{10}{l}{\\texttt{8gaussians}} \\\\" in table  # one block per dataset
    assert (r"\texttt{tt-als} & \texttt{mlp} & $+\sigma_t\mathbf{x}$ / none & default & "
            r"$80.5$ / $90.5$ (worse) & $1.00$ / $1.00$ (n.s.) & $1.24$ & $0.00960$ & $0.100$ & not met") in table
    assert r"\texttt{tt-priornone-als} & \texttt{mlp} & none / none & like for like" in table
    no_nll = tt_targets.target_table(frame.assign(nll_tt=np.nan))
    assert "NLL" not in no_nll and "\\multicolumn{9}{l}" in no_nll
    assert tt_targets.other_targets(frame) == [frame.loc[frame["kind"] == "optimizer", "text"].iloc[0]]


def test_budget_prior_and_floor_runs_stay_out_of_the_tt_tables(prior_runs):
    sel = tt_records.selections(prior_runs)
    assert set(sel["comparison"]["model"]) == {"mlp", "resnet", "tt-als", "tt-rgd"}
    assert not len(sel["grid"])  # a prior sweep is no rank/degree grid
    assert "tt-priornone-als" not in set(sel["convergence"]["model"])
    comp = tt_records.comparison(prior_runs)
    assert dict(zip(comp["model"], comp["prior"])) == {"mlp": "none", "tt-als": "gaussian", "tt-rgd": "gaussian",
                                                       "resnet": "none"}
    spec = {"dataset": "8gaussians", "model": "mlp-steps500-budget", "seed": 0, "arch": "mlp", "method": "ddpm",
            "model_cfg": {"hidden": 8}, "training": {"steps": 500},
            "variant": {"base": "mlp", "optimizer": None, "sweep": {}, "tag": "budget", "budget_steps": 500}}
    floor = {"dataset": "8gaussians", "model": "sampler-floor", "seed": 0, "arch": "mixture_eps", "method": "analytic",
             "model_cfg": {}, "training": {"steps": 0}, "variant": None}
    tt = {"dataset": "8gaussians", "model": "tt-priornone-als", "seed": 0, "arch": "tt", "method": "ddpm",
          "model_cfg": {"rank": 4, "prior": "none"}, "training": {"optimizer": "als"},
          "variant": {"base": "tt", "optimizer": "als", "sweep": {"prior": "none"}, "tag": None}}
    frame = tt_records.spec_frame([spec, floor, tt])
    assert frame["prior"].fillna("-").tolist() == ["none", "-", "none"]
    assert frame["tag"].fillna("-").tolist() == ["budget", "-", "-"]
    assert tt_records.layout(frame) == {"tables": [], "convergence": [], "rank": False, "isolation": False}
    # the finished records of these runs: n_params 0 (sampler floor) and an extra variant key are no problem
    metrics = pd.DataFrame([{"dataset": "8gaussians", "model": m, "seed": 0, "sampler": "ddpm", "steps": 1000,
                             "nfe": 1000, "metric": k, "value": v} for m in ("mlp-steps500-budget", "sampler-floor")
                            for k, v in (("swd", 0.1), ("hq_percent", 95.0))])
    floors = pd.DataFrame({"dataset": ["8gaussians"], "metric": ["swd"], "value": [0.05]})
    info = {"n_params": 0, "steps": 0, "wall_s": 0.01, "val_loss": 0.2, "eps_rel_error": 0.0}
    recs = tt_records.collect_runs([(spec, {**info, "n_params": 100}, "a"), (floor, info, "b")], metrics, floors,
                                   ("ddpm", 1000), {"8gaussians": 2})
    assert recs["hq_percent"].tolist() == [95.0, 95.0] and recs["nll"].isna().all()
    assert tt_targets.targets_frame(recs).empty and not len(tt_records.comparison(recs))


def test_run_records_read_the_test_nll_and_the_hq_percentage(tmp_path):
    from ttdm.report.per_run import collect_likelihood

    spec = {"dataset": "8gaussians", "model": "tt-als", "seed": 1, "arch": "tt", "method": "ddpm",
            "model_cfg": {"rank": 4}, "training": {"optimizer": "als"},
            "variant": {"base": "tt", "optimizer": "als", "sweep": {}, "tag": None}}
    f = tmp_path / "1.csv"
    pd.DataFrame({"dataset": "8gaussians", "model": "tt-als", "seed": 1, "metric": ["nll", "nll_std_err"],
                  "value": [1.25, 0.05]}).to_csv(f, index=False)
    likelihood, _ = collect_likelihood([f])
    metrics = pd.DataFrame([{"dataset": "8gaussians", "model": "tt-als", "seed": 1, "sampler": s, "steps": n,
                             "nfe": n, "metric": k, "value": v} for s, n in (("ddpm", 1000), ("ddim", 10))
                            for k, v in (("swd", 0.1 * n / 1000), ("hq_percent", n / 20))])
    rec = tt_records.collect_runs([(spec, {"n_params": 384, "steps": 4, "wall_s": 1.0}, tmp_path)], metrics,
                                  pd.DataFrame({"dataset": [], "metric": [], "value": []}), ("ddpm", 1000),
                                  likelihood=likelihood).iloc[0]
    assert (rec["prior"], rec["nll"], rec["hq_percent"], rec["swd"]) == ("gaussian", 1.25, 50.0, 0.1)


def test_the_tt_tables_rule_reads_the_likelihoods(tiny_config):
    from ttdm.cli import build_parser
    from ttdm.config import validate_config
    from ttdm.report.studies import tensor_train

    config = validate_config(tiny_config)
    files = tensor_train.likelihood_files(config)
    assert "results/likelihood/8gaussians/tt-als/0.csv" in files and "results/likelihood/8gaussians/mlp/1.csv" in files
    assert not any("/digits/" in f for f in files)  # no TT runs there
    assert not any("-budget/" in f for f in files)  # the budget runs are no TT records
    assert tensor_train.likelihood_files({**config, "likelihood": None}) == []
    rule = (ROOT / "workflow/rules/tt.smk").read_text().split("rule tt_figures")[0]
    assert "likelihood=tt_study.likelihood_files(config)" in rule and "--likelihood {input.likelihood:q}" in rule
    args = build_parser().parse_args(["tt-tables", "--spec", json.dumps(config), "--runs", "a", "--losses", "b",
                                      "--metrics", "m", "--floors", "f", "--meta", "x", "--likelihood", "l1", "l2",
                                      "--out", "o"])
    assert [str(p) for p in args.likelihood] == ["l1", "l2"]


# ---- convergence, rank, isolation, variants: findings and tables ----------------------------------------------------
def test_convergence_uses_a_target_every_run_reaches(runs):
    conv = tt_records.convergence(runs, tt_records.comparison(runs))
    assert set(conv["optimizer"]) == {"als", "rgd"}
    assert conv["target"].iloc[0] == pytest.approx(0.24)  # the worse of the two best losses
    times = dict(zip(conv["optimizer"], conv["time_to_target"]))
    assert times["als"] == pytest.approx(1.0) and times["rgd"] == pytest.approx(1.8)
    assert conv["n_seeds"].tolist() == [2, 2] and conv["time_to_target_std"].tolist() == [0.0, 0.0]
    claims = tt_claims.convergence_claims(conv)
    assert 2 <= len(claims) <= 4
    assert claims[0] == (r"\texttt{als} reaches the common validation-loss target first on $1$ of the $1$ datasets; "
                         "its lead over the runner-up is beyond the combined standard error on $1$ of them.")
    assert r"\texttt{als} in $1.00$~s against $1.80$~s for \texttt{rgd} ($1.80\times$; beyond" in claims[1]
    one = conv.assign(n_seeds=1, time_to_target_std=np.nan, best_val_loss_std=np.nan)
    assert all("one seed: no spread" in c for c in tt_claims.convergence_claims(one)[:3])


def grid_frame():
    rows = []
    for opt, losses in (("als", [0.30, 0.25, 0.249]), ("rgd", [0.32, 0.31, 0.26])):
        for r, loss in zip((2, 4, 8), losses):
            rows.append({"dataset": "8gaussians", "optimizer": opt, "degree": 8, "rank": r,
                         "n_params_mean": 2 * 9 * 8 * r * r, "val_loss_mean": loss, "val_loss_std": np.nan,
                         "swd_mean": 0.1, "n_seeds": 1})
    return pd.DataFrame(rows)


def test_rank_findings_and_table():
    g = grid_frame()
    found = tt_claims.rank_claims(g)
    assert 2 <= len(found) <= 4
    # rgd: 0.32 -> 0.26 (18.8 %) is the largest effect of the rank
    assert found[0].startswith(r"The rank matters most with \texttt{rgd} and $n = 8$ on \texttt{8gaussians}")
    assert "one seed: no spread" in found[0]
    # als r = 4 (0.25) is within 1 % of the best (0.249) with 2 * 9 * 8 * 4^2 = 2304 parameters
    assert r"is \texttt{als}, $n = 8$, $r = 4$, with $2304$ parameters" in found[1]
    assert found[2].startswith(r"The loss is within $1\,\%$ of its best before the largest rank tried for $1$ of "
                               r"the $2$")
    table = tt_claims.rank_table(g)
    assert r"\texttt{8gaussians} & \texttt{als} & $8$ & 2, 4, 8 & $0.3000$ & $0.2490$ & $4$ & $2304$ & $0.100$" in table


def test_isolation_and_variant_findings_follow_the_spread_rule():
    iso = pd.DataFrame([
        {"dataset": "8gaussians", "model": m, "arch": a, "optimizer": o, "rank": r, "n_params": n, "wall_s": 1.0,
         "iso_error": e, "iso_error_std": np.nan, "n_seeds": 1, "ddpm_error": d, "ddpm_model": ""}
        for m, a, o, r, n, e, d in (("tt-rank2-als-iso", "tt", "als", 2, 100, 0.2, 0.4),
                                    ("tt-rank4-als-iso", "tt", "als", 4, 400, 0.1, 0.3),
                                    ("mlp-iso", "mlp", "adam", None, 40000, 0.05, 0.06))])
    found = tt_claims.isolation_claims(iso)
    assert 2 <= len(found) <= 4
    assert found[0].startswith(r"Fitted to $\epsilon^*$ on \texttt{8gaussians}, \texttt{mlp-iso} is the most accurate")
    assert r"the runner-up \texttt{tt-rank4-als-iso} has $0.100$ (one seed: no spread)" in found[0]
    assert r"ranges \texttt{als} $0.100$ to $0.200$" in found[1]
    assert r"\texttt{mlp} $1.20\times$, \texttt{tt} $2.50\times$" in found[2]
    v = pd.DataFrame([{"dataset": "8gaussians", "model": "tt-als_ridge-hp", "seed": 0, "solver": "als",
                       "settings": "lam 0.1", "val_loss": 0.3, "wall_s": 1.0, "swd": 0.2, "base_model": "tt-als",
                       "base_settings": "lam 0.001", "base_val_loss": 0.25, "base_wall_s": 1.0, "base_swd": 0.2}])
    text = tt_claims.variant_claims(v)[0]
    assert "validation loss $0.3000$ against $0.2500$, higher (one seed: no spread)" in text
    two = pd.concat([v, v.assign(seed=1, val_loss=0.31, base_val_loss=0.24)], ignore_index=True)
    assert "higher, in" in tt_claims.variant_claims(two)[0]  # 0.305 +- 0.007 against 0.245 +- 0.007: separated


def test_no_finding_names_more_than_five_models(runs, prior_runs):
    comp = tt_records.comparison(prior_runs)
    conv = tt_records.convergence(runs, comp)
    texts = (tt_claims.convergence_claims(conv) + tt_claims.rank_claims(grid_frame())
             + tt_claims.findings(comp, conv, tt_targets.targets_frame(prior_runs), ["tt-als"]))
    for text in texts:
        assert len(set(re.findall(r"\\texttt\{([^}]*)\}", text))) <= 5, text


# ---- the rest of the section ---------------------------------------------------------------------------------------
def test_time_to_loss(tmp_path):
    pd.DataFrame({"step": [1, 2, 3], "loss": [0, 0, 0], "wall_s": [1.0, 2.0, 3.0],
                  "val_loss": [0.5, 0.3, 0.2]}).to_csv(tmp_path / "loss.csv", index=False)
    assert tt_records.time_to_loss(tmp_path / "loss.csv", 0.3) == 2.0
    assert tt_records.time_to_loss(tmp_path / "loss.csv", 0.1) is None


def test_tt_study_declares_what_the_writers_give_for_the_tiny_config(tiny_config):
    from ttdm.config import validate_config
    from ttdm.report.studies import tensor_train

    config = validate_config(tiny_config)
    out = tensor_train.outputs(config)
    # the optimizers als and rgd on the base TT (convergence), the rank sweep (grid) and the eps* fit (isolation)
    assert out["tt-figures"] == ["results/figures/tt_convergence_8gaussians.pdf", "results/figures/tt_rank.pdf",
                                 "results/figures/tt_isolation.pdf"]
    tables = set(out["tt-tables"])
    assert {f"results/tables/tt_{name}.tex" for name in ("comparison", "grid", "isolation", "convergence")} <= tables
    assert "results/tables/tt_variants.csv" in tables and "results/tables/tt_variants.tex" not in tables  # no tags
    assert out["landscape-figure"] == ["results/figures/landscape.pdf"]
    assert tensor_train.inputs(config) == [f"results/landscape/8gaussians/{m}/0.{ext}" for m in ("mlp", "tt-als")
                                           for ext in ("csv", "json")]
    # a head-start sweep of the TT adds no grid (and no rank figure) on a dataset without a rank sweep
    tiny_config.pop("trilemma")  # it lists runs of the cut grids below
    swept = dict(tiny_config, grid=tiny_config["grid"][:3] + [
        {"datasets": ["8gaussians"], "models": ["tt"], "sweep": {"prior": ["none"]}, "optimizers": ["als"]}])
    swept["paper"] = dict(tiny_config["paper"])
    out = tensor_train.outputs(validate_config(swept))
    assert "results/tables/tt_grid.tex" not in out["tt-tables"] and "results/figures/tt_rank.pdf" not in out[
        "tt-figures"]
    tiny_config["grid"] = tiny_config["grid"][:2]  # no TT run: nothing of the section
    tiny_config["paper"]["main_models"] = ["mlp", "unet"]
    tiny_config["landscape"]["models"] = ["mlp"]
    assert tensor_train.outputs(validate_config(tiny_config)) == {
        "tt-tables": [], "tt-figures": [], "landscape-figure": ["results/figures/landscape.pdf"]}


def test_tt_figures_are_exactly_the_declared_ones(runs, tmp_path):
    from ttdm.report.tt_figures import write_tt_figures

    csv = tmp_path / "tt_runs.csv"
    runs.to_csv(csv, index=False)
    losses = [f"{d}/loss.csv" for d in runs["run_dir"]]
    with pytest.raises(ValueError, match=r"declared but not drawable: \['tt_rank'\]"):
        write_tt_figures(csv, losses, tmp_path, ["tt_convergence_8gaussians", "tt_rank"])
    with pytest.raises(ValueError, match=r"drawable but not declared: \['tt_convergence_8gaussians'\]"):
        write_tt_figures(csv, losses, tmp_path, [])
    with pytest.raises(ValueError, match="loss.csv of .* was not given"):
        write_tt_figures(csv, [f for f in losses if "tt-als" not in f], tmp_path, ["tt_convergence_8gaussians"])
    written = write_tt_figures(csv, losses, tmp_path / "out", ["tt_convergence_8gaussians"])
    assert sorted(p.name for p in written) == ["tt_convergence_8gaussians.pdf", "tt_convergence_8gaussians.png"]


def test_tt_findings_and_the_best_tt_table(runs):
    comp = tt_records.comparison(runs)
    table = tt_claims.comparison_table(comp)
    # primary metric: the test NLL (two models have one): tt-als 1.005 against the mlp's 1.005, not separated;
    # SWD 0.255 / 0.205, 384/40000 of the parameters, 1/10 the time
    assert (r"\texttt{8gaussians} & test NLL & \texttt{tt-als} & $1.00 \pm 0.007$ & \texttt{mlp} & $1.00 \pm 0.007$ & "
            r"not separated & $1.24$ & $0.00960$ & $0.100$") in table
    no_nll = tt_claims.comparison_table(comp.assign(nll_mean=np.nan))
    assert r"& HQ percentage & \texttt{tt-als} & $80.5 \pm 0.7$ & \texttt{mlp} & $90.5 \pm 0.7$ & worse &" in no_nll
    head = tt_claims.headline(comp, ["mlp", "tt-als"])
    assert head["param_percent"] == "0.960" and head["swd_ratio"] == "1.24"
    assert (head["n_better"], head["n_worse"], head["n_not_separated"]) == (0, 1, 0)
    assert head["n_lower"] == 0 and head["n_higher"] == 1  # SWD 0.255 +- 0.007 against 0.205 +- 0.007
    targets = pd.DataFrame({"name": ["a", "b"], "met": [True, False], "text": ["A.", "B."]})
    found = tt_claims.findings(comp, None, targets, ["tt-als"])
    assert found[0].startswith(r"With $0.960\,\%$ of the MLP's parameters")
    assert ("(default settings: the TT with the Gaussian term $\\sigma_t \\mathbf{x}$, the MLP without it) is better "
            "than the MLP by HQ percentage on $0$, worse on $1$ and not separated on $0$") in found[0]
    assert found[-1].startswith("$1$ of the $2$ computed targets are met")
    assert [t["name"] for t in tt_targets.target_rows(targets)] == ["b", "a"]  # failed first
    assert tt_targets.target_table(targets) is None  # an old targets file without kinds: no table


def test_comparison_latex_bolds_the_separated_best_primary_metric(runs):
    from ttdm.report.tt_tables import comparison_latex

    comp = tt_records.comparison(runs).assign(nll_mean=np.nan)
    display, tex = comparison_latex(comp)
    assert "HQ (\\%)" in tex and "NLL" not in tex
    mlp = next(line for line in tex.splitlines() if line.startswith("mlp &"))
    assert "{\\boldmath $90.5 \\pm 0.7$}" in mlp  # 90.5 against 80.5 and 60.5: separated
    assert math.isclose(float(display.loc[display["model"] == "mlp", "hq_percent_mean"].iloc[0]), 90.5)
