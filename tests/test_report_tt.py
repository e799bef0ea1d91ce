"""The TT report's computed targets and claims on hand-made run records (independent of any training)."""

from __future__ import annotations

import pandas as pd
import pytest

from ttdm.report import tt_claims, tt_records


def record(tmp_path, model, arch, optimizer, seed, *, swd, n_params, wall_s, val_loss, losses, solver=None):
    run = tmp_path / model / str(seed)
    run.mkdir(parents=True)
    pd.DataFrame({"step": range(1, len(losses) + 1), "loss": losses, "wall_s": [wall_s * (i + 1) / len(losses)
                  for i in range(len(losses))], "val_loss": losses}).to_csv(run / "loss.csv", index=False)
    return {"dataset": "8gaussians", "model": model, "seed": seed, "arch": arch, "base": model.split("-")[0],
            "optimizer": optimizer, "solver": solver or optimizer, "method": "ddpm", "rank": 4 if arch == "tt" else None,
            "degree": 8 if arch == "tt" else None, "layout": None, "tag": None, "swept": "{}", "dim": 2,
            "n_params": n_params, "steps": len(losses), "wall_s": wall_s, "val_loss": val_loss,
            "eps_rel_error": 0.1, "swd": swd, "swd_floor": 0.1, "run_dir": str(run)}


@pytest.fixture
def runs(tmp_path):
    rows = []
    for seed in (0, 1):
        rows.append(record(tmp_path, "mlp", "mlp", "adam", seed, swd=0.2, n_params=40000, wall_s=10.0, val_loss=0.26,
                           losses=[0.3, 0.26]))
        rows.append(record(tmp_path, "tt-als", "tt", "als", seed, swd=0.25, n_params=384, wall_s=1.0, val_loss=0.24,
                           losses=[0.3, 0.25, 0.24]))
        # RGD reaches 0.24 at 3/4 of its 2.4 s: 1.8 s = 1.8 x the ALS time
        rows.append(record(tmp_path, "tt-rgd", "tt", "rgd", seed, swd=0.3, n_params=384, wall_s=2.4, val_loss=0.238,
                           losses=[0.3, 0.27, 0.24, 0.238]))
    return pd.DataFrame(rows)


def test_targets_are_computed_not_typed(runs):
    targets = {t["name"]: t for t in tt_records.describe_targets(runs, pd.DataFrame())}
    als = targets["als_vs_mlp_8gaussians"]
    assert als["met"] and "$1.25\\times$ the MLP's SWD" in als["text"] and "met." in als["text"]
    rgd = targets["rgd_vs_als_8gaussians"]
    assert rgd["met"] and "$1.80\\times$ the ALS training time" in rgd["text"]
    slow = runs.copy()
    slow.loc[slow["model"] == "tt-als", "wall_s"] = 3.0  # 0.3 x the MLP's time: the time target fails
    als = {t["name"]: t for t in tt_records.describe_targets(slow, pd.DataFrame())}["als_vs_mlp_8gaussians"]
    assert not als["met"] and "not met (time)" in als["text"]


def test_convergence_uses_a_target_every_run_reaches(runs):
    conv = tt_records.convergence(runs, tt_records.comparison(runs))
    assert set(conv["optimizer"]) == {"als", "rgd"}
    assert conv["target"].iloc[0] == pytest.approx(0.24)  # the worse of the two best losses
    times = dict(zip(conv["optimizer"], conv["time_to_target"]))
    assert times["als"] == pytest.approx(1.0) and times["rgd"] == pytest.approx(1.8)
    claims = tt_claims.convergence_claims(conv)
    assert "als ($1.00$~s), rgd ($1.80$~s)" in claims[0]


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
    # best TT by SWD: tt-als (0.25) against the mlp (0.2): 1.25x the SWD, 384/40000 of the parameters, 1/10 the time
    assert r"\texttt{8gaussians} & \texttt{tt-als} & $0.250$ & \texttt{mlp} & $0.200$ & $1.25$ & $0.00960$ & $0.100$" \
        in table
    head = tt_claims.headline(comp, ["mlp", "tt-als"])
    assert head["param_percent"] == "0.960" and head["swd_ratio"] == "1.25" and head["n_lower"] == 0
    targets = pd.DataFrame({"name": ["a", "b"], "met": [True, False], "text": ["A.", "B."]})
    found = tt_claims.findings(comp, None, targets, ["tt-als"])
    assert found[0].startswith(r"With $0.960\,\%$ of the MLP's parameters") and "$1.25\\times$" in found[0]
    assert found[-1].startswith("$1$ of the $2$ computed targets are met")
    assert [t["name"] for t in tt_claims.target_rows(targets)] == ["b", "a"]  # failed first
