"""The trilemma study: Pareto front, ranks, targets, and the tables, figure and paper context from result files."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from ttdm.config import ConfigError, load_config
from ttdm.report import trilemma as tri
from ttdm.report.files import PaperFiles
from ttdm.report.studies import trilemma as study
from ttdm.report.trilemma_output import write_trilemma


def test_pareto_front_keeps_exactly_the_undominated_rows():
    nfe = np.array([1000, 20, 10, 4, 10, 50])
    hq = np.array([95.0, 90.0, 80.0, 60.0, 70.0, 90.0])  # (10, 70) is dominated by (10, 80); (50, 90) by (20, 90)
    assert tri.pareto_front(nfe, hq, higher=True).tolist() == [True, True, True, True, False, False]
    fd = -hq  # lower is better: the same order
    assert tri.pareto_front(nfe, fd, higher=False).tolist() == [True, True, True, True, False, False]
    assert not tri.pareto_front(np.array([4, 10]), np.array([np.nan, 1.0]), higher=True)[0]


def test_speed_rank_orders_by_nfe_then_time_and_shares_ties():
    rows = pd.DataFrame({"nfe": [1000, 10, 10, 4, 4], "s_per_1k": [9.0, 2.0, 1.0, 0.5, 0.5]})
    assert tri.speed_rank(rows).tolist() == [5, 4, 3, 1, 1]


def _row(model, method, sampler, kind, steps, hq, **extra):
    return {"dataset": "25gaussians", "model": model, "method": method, "sampler": sampler, "kind": kind,
            "steps": steps, "nfe": steps, "hq_percent": hq, "coverage": extra.pop("coverage", 0.9),
            "modes_covered": extra.pop("modes", 25.0), "modes_total": 25.0, "n_seeds": 2, **extra}


def test_targets_are_judged_against_the_same_runs_ancestral_sampler():
    table = pd.DataFrame([
        _row("mlp", "ddpm", "ddpm", "ddpm", 1000, 95.0), _row("mlp", "ddpm", "dpmpp", "dpmpp", 10, 73.0),
        _row("mlp", "ddpm", "ddim", "ddim", 20, 90.0), _row("ddgan-mlp", "ddgan", "gan", "ddgan", 4, 93.0, modes=24.0),
        _row("sampler-floor", "analytic", "dpmpp", "dpmpp", 10, 99.0)])
    table = tri.annotate(table, reference="sampler-floor", shown=["ddpm_1000", "dpmpp_10", "gan_4"])
    targets = tri.targets(table).set_index("target")
    dpm = targets.loc["dpmpp 10 NFE within 1.2x of ddpm 1000"]
    assert dpm["value"] == pytest.approx(95 / 73) and not dpm["met"]
    ddim = targets.loc["ddim 20 NFE within 1.5x of ddpm 1000"]
    assert ddim["value"] == pytest.approx(95 / 90) and ddim["met"]
    gan = targets.loc["ddgan 4 NFE: every mode, >= 90 % HQ"]
    assert not gan["met"] and "24 of 25" in gan["note"]  # 93 % HQ but a mode missed
    assert "sampler-floor" not in set(targets["model"])
    # ranks over the shown, non-reference rows only; the DDIM row is not shown
    ranked = table.dropna(subset=["rank_quality"]).set_index("sampler")
    assert set(ranked.index) == {"ddpm", "dpmpp", "gan"}
    assert ranked.loc["ddpm", "rank_quality"] == 1 and ranked.loc["gan", "rank_speed"] == 1
    front = table.set_index(["model", "sampler"])["pareto"]
    assert front[("mlp", "ddpm")] and front[("ddgan-mlp", "gan")]  # the best quality; the fewest NFE
    assert not front[("mlp", "ddim")] and not front[("mlp", "dpmpp")]  # 4 NFE at 93 % beats 20 at 90 and 10 at 73
    assert not front[("sampler-floor", "dpmpp")]  # a reference, never on the front


# ---- from result files to the paper's context -------------------------------------------------------------------
SAMPLERS = {"ddpm": {"kind": "ddpm", "steps": [1000]}, "dpmpp": {"kind": "dpmpp", "order": 2, "steps": [10]},
            "gan": {"kind": "ddgan", "steps": [4]}}


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)


def _results(root, rng):
    """Metric, train and likelihood files of mlp (ddpm; 2 seeds, two samplers) and ddgan-mlp on one mixture."""
    entries = []
    for model, method, settings in (("mlp", "ddpm", [("ddpm", 1000, 92.0), ("dpmpp", 10, 85.0)]),
                                    ("ddgan-mlp", "ddgan", [("gan", 4, 60.0)])):
        for seed in (0, 1):
            run = root / "runs" / "8gaussians" / model / str(seed)
            run.mkdir(parents=True)
            (run / "train.json").write_text(json.dumps({"n_params": 1000 * (1 + seed), "wall_s": 10.0 + seed}))
            files = []
            for sampler, steps, hq in settings:
                f = root / "metrics" / "8gaussians" / model / str(seed) / f"{sampler}_{steps}.csv"
                values = {"hq_percent": hq + rng.normal(), "coverage": 0.8, "recall": 0.9, "precision": 0.95,
                          "density": 1.0, "modes_covered": 8.0, "modes_total": 8.0, "time_per_sample_s": 0.002}
                _write(f, [{"dataset": "8gaussians", "model": model, "seed": seed, "sampler": sampler, "steps": steps,
                            "nfe": steps, "metric": m, "value": v} for m, v in values.items()])
                files.append(f)
            lik = None
            if method == "ddpm":
                lik = root / "likelihood" / "8gaussians" / model / f"{seed}.csv"
                _write(lik, [{"dataset": "8gaussians", "model": model, "seed": seed, "metric": m, "value": v}
                             for m, v in (("nll", 1.3), ("elbo", 1.5), ("elbo_bpd", 1.5 / math.log(2)))])
            entries.append({"dataset": "8gaussians", "model": model, "seed": seed, "method": method,
                            "metrics": files, "train": run / "train.json", "needs": [], "likelihood": lik})
    floor = root / "metrics" / "8gaussians" / "floor.csv"
    _write(floor, [{"dataset": "8gaussians", "metric": "hq_percent", "value": 99.0}])
    return entries, [floor]


def test_write_trilemma_and_paper_context(tmp_path):
    entries, floors = _results(tmp_path / "results", np.random.default_rng(0))
    written = write_trilemma(entries, {"ddpm": "ddpm", "dpmpp": "dpmpp", "gan": "ddgan"},
                             {"ddpm": "ancestral", "dpmpp": "DPM-Solver++(2M)", "gan": "DDGAN chain"}, floors,
                             shown=["ddpm_1000", "dpmpp_10", "gan_4"], reference=None, models=["mlp", "ddgan-mlp"],
                             out_tables=tmp_path / "tables", out_figures=tmp_path / "figures")
    names = {p.name for p in written}
    assert {"trilemma_8gaussians.tex", "trilemma_methods.tex", "trilemma_targets.tex", "trilemma_pareto.pdf",
            "trilemma_pareto.png"} <= names
    summary = pd.read_csv(tmp_path / "tables" / "trilemma_summary.csv")
    mlp = summary[(summary["model"] == "mlp") & (summary["sampler"] == "ddpm")].iloc[0]
    assert mlp["params"] == 1500 and mlp["train_s"] == 10.5 and mlp["s_per_1k"] == pytest.approx(2.0)
    assert mlp["n_seeds"] == 2 and mlp["nll"] == pytest.approx(1.3) and mlp["bound_bpd"] == pytest.approx(2.164, abs=1e-3)
    methods = (tmp_path / "tables" / "trilemma_methods.tex").read_text()
    assert "$1.30 \\pm 0$" in methods and "$2.16 \\pm 0$" in methods  # ODE NLL and bound, both seeds equal
    table = (tmp_path / "tables" / "trilemma_8gaussians.tex").read_text()
    assert "data floor" in table and "DPM-Solver++(2M)" in table and "1/" in table
    targets = pd.read_csv(tmp_path / "tables" / "trilemma_targets.csv").set_index("model")
    assert targets.loc["mlp", "met"] and not targets.loc["ddgan-mlp", "met"]  # 92/85 < 1.2; 60 % HQ < 90 %
    config = {"trilemma": {"datasets": ["8gaussians"], "models": ["mlp", "ddgan-mlp"]},
              "sampling": {"samplers": SAMPLERS}, "grid": [{"datasets": ["8gaussians"], "models": ["mlp", "ddgan-mlp"]}],
              "seeds": [0, 1], "paper": {}}
    files = PaperFiles(tables=list((tmp_path / "tables").iterdir()), figures=[tmp_path / "figures" / "trilemma_pareto.pdf"])
    ctx = study.context(files, config)["trilemma"]
    text = " ".join(ctx["findings"])
    assert "1 of 2 targets are met" in text
    assert "No setting leads on quality, diversity and speed at once" in text or "leads on all three axes" in text
    assert "best quality is \\texttt{mlp} (DDPM) with ancestral at 1000 NFE" in text
    assert ctx["datasets"][0]["table"] and ctx["figure"] == "figures/trilemma_pareto.pdf"


def test_config_refuses_a_model_or_setting_the_grid_does_not_have(tmp_path):
    config = load_config("config.yaml")
    assert study.datasets(config) == ["8gaussians", "25gaussians", "digits"]
    inputs = study.inputs_of(config)
    assert "results/runs/digits/autoencoder/0/train.json" in inputs["files"]  # latent runs count their autoencoder
    assert "results/metrics/25gaussians/ddgan-mlp/1/gan_4.csv" in inputs["files"]
    import yaml

    raw = yaml.safe_load(open("config.yaml"))
    raw["trilemma"]["models"].append("unet-nope")
    raw["trilemma"]["settings"].append("ddim_7")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "trilemma.models: 'unet-nope' is not trained" in str(err.value)
    assert "trilemma.settings: 'ddim_7' is not a configured setting" in str(err.value)


def test_a_diverged_setting_is_named_and_drawn_off_scale():
    rows = pd.DataFrame([
        {"dataset": "digits", "model": "tt-als-latent", "method": "latent_ddpm", "sampler": "ddim", "kind": "ddim",
         "steps": 10, "nfe": 10, "fd": 4.6e4, "fd_std": 6.5e4, "n_seeds": 2, "f_coverage": 0.1},
        {"dataset": "digits", "model": "unet", "method": "ddpm", "sampler": "ddim", "kind": "ddim", "steps": 10,
         "nfe": 10, "fd": 42.0, "fd_std": 4.0, "n_seeds": 2, "f_coverage": 0.5}])
    table = tri.annotate(rows, reference=None, shown=["ddim_10"]).assign(floor_quality=9.66)
    text = " ".join(study.diverged_findings(table, {"ddim": "DDIM"}))
    assert "tt-als-latent" in text and "unet}" not in text and "above 10 times the data floor" in text
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot(table["nfe"], table["quality"])
    ax.set_yscale("log")
    from ttdm.report.trilemma_output import clip_off_scale

    clip_off_scale(ax, table, 9.66)
    assert ax.get_ylim()[1] == pytest.approx(20 * 9.66) and ax.texts[0].get_text().startswith("1 off scale")
    plt.close(fig)
