"""Tests of the report stage on a fake results tree: 2 datasets × 2 models × 2 seeds with known answers."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
import pytest

from conftest import tiny_config_dict
from ttdm import config as cfg
from ttdm.cli import build_parser
from ttdm.report import context as ctx_mod
from ttdm.report.files import PaperFiles
from ttdm.report.figures import image_grid, plot_nfe, write_figures
from ttdm.report.paper import compile_paper, make_environment, render_paper
from ttdm.report.provenance import collect_provenance, git_state
from ttdm.report.studies import check_written, paper_files as study_paper_files, with_png
from ttdm.report import findings
from ttdm.report.claims import (best_model_claims, higher_is_better, primary_metric, ranking, separated,
                                standard_error, training_claims)
from ttdm.report.studies import ddpm as ddpm_study
from ttdm.report.per_run import diverged_runs, divergence, run_tables as per_run_tables
from ttdm.report.tables import (collect_floors, collect_metrics, constant_note, fmt_number, fmt_spread, main_table,
                                separated_best, summarize, tex_escape, write_tables)

TEMPLATES = Path(__file__).resolve().parents[1] / "paper"
DATASETS = {"8gaussians": 2, "tiny_digits": 64}  # name -> D; tiny_digits holds 1×8×8 images
MODELS = ("mlp", "res_net")
SEEDS = (0, 1)
SETTINGS = [("ddpm", 100), ("ddim", 5), ("ddim", 10), ("ddim", 20)]
DDIM_FACTOR = {5: 2.0, 10: 1.05, 20: 1.0, 100: 1.0}  # SWD multiplier: DDIM is within 10 % of its best at 10 steps
FLOORS = {"swd": 0.01, "mmd": 0.0, "energy": 0.002, "w2": 0.05, "precision": 0.95, "recall": 0.95, "density": 1.02,
          "coverage": 0.97}
MIXTURE_FLOORS = {"modes_covered": 8, "modes_total": 8, "hq_percent": 99.0, "sample_logp": -0.9}  # 8gaussians only
SWD_BASE = {("8gaussians", "mlp"): 0.02, ("8gaussians", "res_net"): 0.05,  # mlp best on 8gaussians,
            ("tiny_digits", "mlp"): 0.30, ("tiny_digits", "res_net"): 0.10}  # res_net best on tiny_digits
CONFIG = {
    "seeds": list(SEEDS),
    "schedule": {"kind": "linear", "T": 100, "beta_start": 0.0001, "beta_end": 0.02},
    "datasets": {"8gaussians": {"kind": "8gaussians"}, "tiny_digits": {"kind": "digits"}},
    "models": {"mlp": {"arch": "mlp", "hidden": 16, "depth": 2}, "res_net": {"arch": "resnet", "hidden": 16}},
    "grid": [{"datasets": ["8gaussians", "tiny_digits"], "models": ["mlp", "res_net"]}],
    "training": {"method": "ddpm", "steps": 100, "batch_size": 32, "lr": 0.001, "ema_decay": 0.9},
    "sampling": {"n_samples": 64, "samplers": {"ddpm": {"kind": "ddpm", "steps": [100]},
                                                "ddim": {"kind": "ddim", "eta": 0.0, "steps": [5, 10, 20]}},
                 "main": "ddpm_100"},
    "metrics": {"swd": {}, "mmd": {}, "energy": {}, "w2": {}, "modes": {}},
    "paper": {"title": "Test paper", "author": "ttdm tests"},
}


PRDC = {"precision": 0.9, "recall": 0.8, "density": 1.0, "coverage": 0.85}
NONFINITE = {("8gaussians", "res_net", 1, "ddim", 5): 0.25}  # the one run/setting with non-finite samples
# test NLL (nats/dim) by seed: res_net beats mlp on 8gaussians beyond the combined standard error; not on tiny_digits
NLL = {("8gaussians", "mlp"): 1.50, ("8gaussians", "res_net"): 1.40, ("tiny_digits", "mlp"): 0.80,
       ("tiny_digits", "res_net"): 0.78}
TRUE_NLL = {"8gaussians": 1.30}  # the mixture's true NLL (tiny_digits: none)


def metric_rows(ds: str, model: str, seed: int, swd_base: dict) -> list[dict]:
    """Known metric values: SWD = base · DDIM factor · (1 + 0.1 seed); others derived from it. HQ % = (90 + seed) /
    DDIM factor: like SWD, within 10 % of its best from 10 DDIM steps on."""
    rows = []
    for sampler, steps in SETTINGS:
        factor = DDIM_FACTOR[steps] if sampler == "ddim" else 1.0
        swd = swd_base[(ds, model)] * factor * (1 + 0.1 * seed)
        values = {"nonfinite_fraction": NONFINITE.get((ds, model, seed, sampler, steps), 0.0), "swd": swd,
                  "mmd": swd / 10, "energy": swd / 5, "w2": 3 * swd, "time_per_sample_s": steps * 1e-4}
        values.update({k: v - 0.1 * swd for k, v in PRDC.items()})
        if ds == "8gaussians":
            values.update({"modes_covered": 8 - seed if model == "res_net" else 8, "modes_total": 8,
                           "hq_percent": (90.0 + seed) / factor, "sample_logp": -1.0 - swd})
        rows += [{"dataset": ds, "model": model, "seed": seed, "sampler": sampler, "steps": steps, "nfe": steps,
                  "metric": m, "value": v} for m, v in values.items()]
    return rows


def write_likelihood(root: Path, models=MODELS, seeds=SEEDS) -> list[Path]:
    """results/likelihood/{dataset}/{model}/{seed}.csv (NLL + 0.1 seed) and {dataset}/floor.csv (the true NLL of
    the mixture; no rows for tiny_digits), as the likelihood stage writes them."""
    files = []
    for ds in DATASETS:
        for model in models:
            for seed in seeds:
                f = root / "likelihood" / ds / model / f"{seed}.csv"
                f.parent.mkdir(parents=True, exist_ok=True)
                nll = NLL.get((ds, model), 1.35) + 0.1 * seed
                pd.DataFrame([{"dataset": ds, "model": model, "seed": seed, "metric": m, "value": v}
                              for m, v in (("nll", nll), ("nll_std_err", 0.01), ("nfe", 400.0))]).to_csv(f, index=False)
                files.append(f)
        floor = root / "likelihood" / ds / "floor.csv"
        rows = [{"dataset": ds, "metric": "nll", "value": TRUE_NLL[ds]}] if ds in TRUE_NLL else []
        pd.DataFrame(rows, columns=["dataset", "metric", "value"]).to_csv(floor, index=False)
        files.append(floor)
    return files


def make_results(root: Path, swd_base: dict = SWD_BASE) -> Path:
    """A results tree as the pipeline writes it (design.md), small and seeded."""
    rng = np.random.default_rng(0)
    for ds, dim in DATASETS.items():
        data = root / "data" / ds
        data.mkdir(parents=True)
        image = ds == "tiny_digits"
        np.save(data / "test.npy", rng.uniform(-1, 1, (100, dim)).astype(np.float32))
        mixture = None if image else {"weights": [0.125] * 8, "means": np.eye(8, 2).tolist(), "stds": [[0.1] * 2] * 8}
        meta = {"name": ds, "kind": "digits" if image else "8gaussians", "dim": dim,
                "image_shape": [1, 8, 8] if image else None, "n_train": 300, "n_test": 100, "n_floor": 64,
                "mixture": mixture}
        (data / "meta.json").write_text(json.dumps(meta))
        (root / "metrics" / ds).mkdir(parents=True)
        floors = {**FLOORS, **(MIXTURE_FLOORS if ds == "8gaussians" else {})}
        pd.DataFrame([{"dataset": ds, "metric": m, "value": v} for m, v in floors.items()]).to_csv(
            root / "metrics" / ds / "floor.csv", index=False)
        for model in MODELS:
            for seed in SEEDS:
                part = Path(ds, model, str(seed))
                run, samples, metrics = root / "runs" / part, root / "samples" / part, root / "metrics" / part
                for d in (run, samples, metrics):
                    d.mkdir(parents=True)
                rows = pd.DataFrame(metric_rows(ds, model, seed, swd_base))
                for (s, n), frame in rows.groupby(["sampler", "steps"], sort=False):  # one file per setting
                    frame.to_csv(metrics / f"{s}_{n}.csv", index=False)
                steps = np.arange(0, 101, 10)
                pd.DataFrame({"step": steps, "loss": 1.0 / (1 + steps) + 0.01 * seed, "wall_s": steps / 50}).to_csv(
                    run / "loss.csv", index=False)
                sps = (200.0 if model == "mlp" else 100.0) + 10 * seed
                train = {"steps": 100, "wall_s": 100 / sps, "steps_per_s": sps, "final_loss": 0.5 + 0.1 * seed,
                         "n_params": 1000 + dim if model == "mlp" else 5000 + dim,
                         "device": {"device": "cpu", "processor": "x86_64", "cpu_count": 2, "torch_threads": 1}}
                (run / "train.json").write_text(json.dumps(train))
                (run / "spec.json").write_text(json.dumps({"model": CONFIG["models"][model]}))
                for s, n in SETTINGS:
                    np.savez(samples / f"{s}_{n}.npz", x=rng.uniform(-1, 1, (64, dim)).astype(np.float32))
    bench = root / "bench"
    bench.mkdir()
    pd.DataFrame({"model": ["mlp", "res_net"], "n_params": [1002, 5002], "s_per_1000": [0.012345, 1.5],
                  "peak_mem_mb": [np.nan, 12.0], "device": ["cpu", "cpu"]}).to_csv(bench / "models.csv", index=False)
    return root


def run_tables(root: Path, **kwargs) -> list[Path]:
    return write_tables(sorted(root.glob("metrics/*/*/*/*.csv")), sorted(root.glob("metrics/*/floor.csv")),
                        sorted(root.glob("runs/*/*/*/train.json")), sorted(root.glob("bench/*.csv")),
                        root / "tables", **kwargs)


def draw_figures(root: Path, out: Path) -> list[Path]:
    """Every dataset's figures from the fake tree (the test lists the files; the plotter reads only those)."""
    written = []
    for data in sorted((root / "data").iterdir()):
        ds = data.name
        written += write_figures(ds, out, samples=sorted(root.glob(f"samples/{ds}/*/*/*.npz")),
                                 losses=sorted(root.glob(f"runs/{ds}/*/*/loss.csv")),
                                 metrics=sorted(root.glob(f"metrics/{ds}/*/*/*.csv")),
                                 floor=root / f"metrics/{ds}/floor.csv",
                                 test=data / "test.npy", meta=data / "meta.json")
    return written


def paper_files(root: Path) -> PaperFiles:
    """The fake tree's tables, figures, meta.json and train.json files, as the paper rule lists them."""
    return PaperFiles(tables=sorted(root.glob("tables/*")), figures=sorted(root.glob("figures/*.pdf")),
                      meta=sorted(root.glob("data/*/meta.json")), runs=sorted(root.glob("runs/*/*/*/train.json")))


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """The fake tree with tables and figures written (shared: the figures take a few seconds)."""
    root = make_results(tmp_path_factory.mktemp("results"))
    run_tables(root)
    draw_figures(root, root / "figures")
    return root


def read_display(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def numbers(text: str) -> list[str]:
    """Number tokens in a LaTeX fragment, in order (tokens of 0.0123, 12, -3.5)."""
    return re.findall(r"-?\d+(?:\.\d+)?", text)


def test_fmt_number_and_escape():
    assert [fmt_number(x) for x in (0.0123456, 1.0, 0.5, 12345.6, 99.96, 123.45, 0.020999999999999998, -0.000123,
                                    0.0)] == ["0.0123", "1.00", "0.500", "12300", "100", "123", "0.0210", "-0.000123",
                                              "0"]
    assert fmt_number(0.012345, sig=2) == "0.012" and fmt_number(1234.5, sig=5) == "1234.5"
    assert fmt_number(float("nan")) == "" and fmt_number(None) == "" and fmt_number(float("inf")) == ""
    # a spread to the mean's last printed digit (1 to 3 significant digits)
    assert [fmt_spread(s, m) for s, m in ((0.0223, 0.200), (3.70, 378.0), (0.0519, 5.29), (4.94, 4.0), (0.5, 0.0))] \
        == ["0.022", "4", "0.05", "4.94", "0.500"]
    assert tex_escape("swiss_roll") == r"swiss\_roll"
    assert tex_escape("a&b%c$d#e{f}g~h^i\\") == (r"a\&b\%c\$d\#e\{f\}g\textasciitilde{}h\textasciicircum{}i"
                                                 r"\textbackslash{}")


def test_summary_against_numpy_by_hand(results):
    files = sorted(results.glob("metrics/*/*/*/*.csv"))
    summary = summarize(collect_metrics(files), collect_floors(sorted(results.glob("metrics/*/floor.csv"))))
    # per run and setting: non-finite share, 4 distances, time, 4 PRDC; on 8gaussians also modes (3) and log-density
    assert len(summary) == len(DATASETS) * len(MODELS) * len(SETTINGS) * 10 + len(MODELS) * len(SETTINGS) * 4
    for (ds, model), base in SWD_BASE.items():
        for sampler, steps in SETTINGS:
            values = [r["value"] for seed in SEEDS for r in metric_rows(ds, model, seed, SWD_BASE)
                      if (r["sampler"], r["steps"], r["metric"]) == (sampler, steps, "swd")]
            row = summary[(summary["dataset"] == ds) & (summary["model"] == model) & (summary["sampler"] == sampler)
                          & (summary["steps"] == steps) & (summary["metric"] == "swd")].iloc[0]
            assert row["n_seeds"] == 2
            assert row["mean"] == pytest.approx(np.mean(values), rel=1e-12)
            assert row["std"] == pytest.approx(np.std(values, ddof=1), rel=1e-12)
            assert row["ratio"] == pytest.approx(np.mean(values) / FLOORS["swd"], rel=1e-12)
    assert summary.loc[summary["metric"] == "mmd", "ratio"].isna().all()  # floor 0: no ratio
    assert summary.loc[summary["metric"] == "hq_percent", "ratio"].isna().all()  # not a distance


def test_display_csv_is_what_the_tex_prints(results):
    tables = results / "tables"
    for name in ("summary", "training", "bench_models"):
        display, tex = read_display(tables / f"{name}_display.csv"), (tables / f"{name}.tex").read_text()
        assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex
        body = tex.split("\\midrule\n", 1)[1].split("\\bottomrule")[0]
        lines = [ln for ln in body.splitlines() if ln.endswith("\\\\")]
        assert len(lines) == len(display)
        skip = {"summary": ["dataset", "model", "row", "sampler", "steps", "diverged"],
                "training": ["dataset", "model"],
                "bench_models": ["model", "device"]}[name]
        for line, (_, row) in zip(lines, display.iterrows()):
            cells = line[:-2].split(" & ")
            assert numbers(" & ".join(cells[2 if name != "bench_models" else 1:])) == [
                v for k, v in row.items() if k not in skip and v]
    summary = read_display(tables / "summary_display.csv")
    assert set(summary["steps"]) == {"100"} and set(summary["sampler"]) == {"ddpm"}  # most NFE by default
    row = summary[(summary["dataset"] == "8gaussians") & (summary["model"] == "mlp")].iloc[0]
    assert row["swd_mean"] == fmt_number(np.mean([0.02, 0.022])) == "0.0210"
    assert row["swd_ratio"] == "2.10" and row["mmd_ratio"] == "" and row["modes_total"] == "8"
    tex = (tables / "summary.tex").read_text()
    assert r"tiny\_digits & res\_net" in tex and "tiny_digits" not in tex
    assert r"$0.0210 \pm 0.0014$ ($\times 2.10$)" in tex


def test_main_setting_is_configurable(results):
    summary = pd.read_csv(results / "tables" / "summary.csv")
    display, _ = main_table(summary, main="ddim_20")
    assert set(display["steps"]) == {"20"} and set(display["sampler"]) == {"ddim"}
    with pytest.raises(ValueError, match="ddim_7.*allowed: ddim_10, ddim_20, ddim_5, ddpm_100"):
        main_table(summary, main="ddim_7")


def test_bench_table_is_generic(results):
    display = read_display(results / "tables" / "bench_models_display.csv")
    assert list(display.columns) == ["model", "n_params", "s_per_1000", "peak_mem_mb"]  # device: the same in all
    assert display["s_per_1000"].tolist() == ["0.0123", "1.50"] and display["peak_mem_mb"].tolist() == ["", "12"]
    tex = (results / "tables" / "bench_models.tex").read_text()
    assert "Model & Parameters & Time / 1000 samples (s) & Peak memory (MB)" in tex and "n\\_params" not in tex
    assert r"res\_net & $5002$ & $1.50$ & $12$ \\" in tex and constant_note(tex) == "Device: cpu"


def test_the_best_model_is_bold_only_where_the_spread_separates_it(results):
    tex = (results / "tables" / "summary.tex").read_text()
    # 8gaussians: its primary metric (no NLL here) is the HQ %, 90.5 for both models: not separated, nothing bold
    assert "8gaussians & mlp & $0.0210 \\pm 0.0014$ ($\\times 2.10$)" in tex
    # tiny_digits: SWD, res_net's 0.105 ± 0.007 against mlp's 0.315 ± 0.021 (both above 10 times the floor: daggers)
    assert r"tiny\_digits & res\_net$^\dagger$ & {\boldmath $0.105" in tex and tex.count("boldmath") == 1
    stats = pd.DataFrame({"mean": [1.0, 1.1, 2.0], "std": [0.2, 0.1, 0.1]}, index=["a", "b", "c"])
    assert separated_best(stats) is None  # no n_seeds: the std is the standard error; 0.1 < sqrt(0.2² + 0.1²)
    assert separated_best(stats.assign(std=[0.01, 0.01, 0.01])) == "a"
    assert separated_best(stats.iloc[:1]) is None
    # with n_seeds the standard errors are std/√n: n = 4 gives 0.1 and 0.05 (gap 0.1 < 0.112), n = 100 separates
    assert separated_best(stats.assign(n_seeds=4)) is None and separated_best(stats.assign(n_seeds=100)) == "a"
    assert separated_best(stats.assign(n_seeds=100), higher_is_better=True) == "c"
    assert separated_best(stats.assign(std=[np.nan, 0.01, 0.01], n_seeds=[1, 2, 2])) is None  # one seed: no se


def test_the_spread_rule():
    # |a − b| > sqrt(se_a² + se_b²)
    assert separated(1.0, 0.1, 1.3, 0.2)  # 0.3 > 0.2236
    assert not separated(1.0, 0.2, 1.25, 0.2)  # 0.25 < 0.2828
    assert not separated(1.0, 0.3, 1.5, 0.4)  # 0.5 == 0.5: not beyond
    assert separated(1.3, 0.2, 1.0, 0.1) == separated(1.0, 0.1, 1.3, 0.2)  # symmetric
    assert not separated(1.0, float("nan"), 5.0, 0.1)  # one seed: the gap cannot be judged
    assert separated(1.0, 0.0, 1.01, 0.0)  # exact references
    assert standard_error(0.2, 4) == pytest.approx(0.1) and np.isnan(standard_error(float("nan"), 1))
    assert "sqrt(se_a² + se_b²)" in separated.__doc__


def test_the_primary_metric_and_its_direction():
    assert primary_metric({"swd", "mmd", "hq_percent", "modes_covered"}) == "hq_percent"  # a mixture
    assert primary_metric({"swd", "mmd"}) == "swd"
    assert primary_metric({"swd", "hq_percent"}, level="model", likelihood=True) == "nll"
    assert primary_metric({"swd", "hq_percent"}, level="model") == "hq_percent"  # no likelihood to compare
    assert primary_metric({"swd"}, level="model", likelihood=True) == "nll"
    for m in ("hq_percent", "precision", "recall", "density", "coverage", "sample_logp", "modes_covered"):
        assert higher_is_better(m), m
    for m in ("swd", "mmd", "energy", "w2", "nll", "mode_kl", "nonfinite_fraction"):
        assert not higher_is_better(m), m
    # a synthetic mixture: "b" has the higher HQ % (the primary metric) but the higher SWD; it is ranked first and bold
    rows = []
    for model, hq, swd in (("a", 50.0, 0.01), ("b", 95.0, 0.02)):
        for metric, mean in (("hq_percent", hq), ("swd", swd)):
            rows.append({"dataset": "mix", "model": model, "sampler": "ddpm", "steps": 10, "nfe": 10,
                         "metric": metric, "mean": mean, "std": 0.001 * mean, "n_seeds": 3, "floor": np.nan,
                         "ratio": np.nan})
    summary = pd.DataFrame(rows)
    assert list(ranking(summary, "ddpm", 10, "hq_percent")["mix"]["model"]) == ["b", "a"]
    assert list(ranking(summary, "ddpm", 10, "swd")["mix"]["model"]) == ["a", "b"]
    display, tex = main_table(summary)
    assert r"mix & b & $0.0200 \pm 0.00002$ & {\boldmath $95.0 \pm 0.1$} \\" in tex and tex.count("boldmath") == 1
    claims = best_model_claims(summary, "ddpm", 10)["mix"]
    assert claims[0].startswith(r"On \texttt{mix}, \texttt{b} has the highest HQ percentage")
    assert "$45.0$ percentage points above \\texttt{a}" in claims[0] and "beyond their combined" in claims[0]
    assert r"By SWD, \texttt{a} is best instead." in claims


def test_figures_written_and_deterministic(results, tmp_path):
    for ds in DATASETS:
        for kind in ("samples", "loss", "nfe"):
            for ext in ("pdf", "png"):
                f = results / "figures" / f"{ds}_{kind}.{ext}"
                assert f.is_file() and 1000 < f.stat().st_size < 500_000, f
    again = draw_figures(results, tmp_path)
    assert len(again) == 12
    for f in again:
        assert f.read_bytes() == (results / "figures" / f.name).read_bytes(), f.name


def test_image_grid_layout():
    x = np.arange(3 * 4, dtype=float).reshape(3, 4)  # three 1×2×2 images
    grid = image_grid(x, [1, 2, 2], n=2)  # (2·3 − 1, 2·3 − 1)
    assert grid.shape == (5, 5)
    np.testing.assert_array_equal(grid[:2, :2], [[0, 1], [2, 3]])
    np.testing.assert_array_equal(grid[:2, 3:], [[4, 5], [6, 7]])
    np.testing.assert_array_equal(grid[3:, :2], [[8, 9], [10, 11]])
    assert (grid[3:, 3:] == -1).all() and (grid[2] == -1).all()


@pytest.mark.parametrize("flip", [False, True])
def test_claims_name_the_best_model(tmp_path, flip):
    base = {k: (SWD_BASE[(k[0], "res_net" if k[1] == "mlp" else "mlp")] if flip else v) for k, v in SWD_BASE.items()}
    root = make_results(tmp_path, base)
    run_tables(root)
    context = ctx_mod.build_context(paper_files(root), CONFIG, repo=tmp_path)
    by_name = {d["name"]: d for d in context["datasets"]}
    # tiny_digits: no mixture, no NLL: SWD is primary
    best = "mlp" if flip else "res_net"
    other = "mlp" if best == "res_net" else "res_net"
    entry = by_name["tiny_digits"]
    assert entry["best_model"] == best and entry["primary"] == "swd" and entry["nfe_label"] == "SWD"
    text = entry["best"][0]
    assert text.startswith(f"On \\texttt{{tiny\\_digits}}, \\texttt{{{tex_escape(best)}}} has the lowest SWD")
    assert f"$3.00$ times lower than \\texttt{{{tex_escape(other)}}}" in text and "beyond their combined" in text
    assert entry["best"][1].startswith("By MMD$^2$, energy distance and $W_2$")
    # 8gaussians: a mixture: the HQ % is primary, 90.5 ± 0.7 for both models: not separated, whatever the SWD
    entry = by_name["8gaussians"]
    assert entry["primary"] == "hq_percent" and entry["nfe_label"] == "HQ percentage"
    assert entry["best"][0].startswith(r"On \texttt{8gaussians}, \texttt{mlp} has the highest HQ percentage")
    assert "is not separated from it (the gap is within their combined standard error)" in entry["best"][0]
    if flip:  # SWD, a secondary metric here, ranks res_net first (0.021 against 0.0525, separated)
        assert r"By SWD, \texttt{res\_net} is best instead." in entry["best"]
    else:
        assert entry["best"][1].startswith(r"By SWD, MMD$^2$, energy distance and $W_2$, \texttt{mlp} is best as well")
    # DDIM: the HQ % (mixture) and the SWD come within 10 % of their best at 10 steps, 10 times fewer NFE than ddpm
    nfe = entry["nfe"][0]
    assert nfe.startswith(r"With \texttt{ddim}, the HQ percentage on \texttt{8gaussians}")
    assert "at an NFE of $10$ for \\texttt{mlp} ($10.0$ times fewer than \\texttt{ddpm}" in nfe
    assert "at an NFE of $10$ for \\texttt{mlp} ($10.0$ times fewer" in by_name["tiny_digits"]["nfe"][0]
    modes = " ".join(entry["modes"])
    assert "\\texttt{mlp} covers all $8$ modes" in modes and "\\texttt{res\\_net} covers $7.50$ of $8$ modes" in modes
    assert by_name["tiny_digits"]["modes"] == []
    training = " ".join(context["training_claims"])
    assert "\\texttt{res\\_net} trains $1.95$ times slower than \\texttt{mlp}" in training  # 205 / 105
    # the findings open with the primary metric; only the separated dataset counts
    assert context["ddpm"]["findings"][0] == (
        f"By each dataset's primary metric (HQ percentage and SWD, Section~\\ref{{sec:setup}}), the best model is \\texttt{{{tex_escape(best)}}} on $1$ of "
        "the $2$ datasets with several models; on the other $1$ the best is not separated from the runner-up (the "
        "gap is within their combined standard error).")


def test_training_claims_follow_the_spread_rule():
    training = pd.DataFrame({"dataset": ["d", "d"], "model": ["a", "b"], "n_seeds": [3, 3],
                             "steps_per_s_mean": [100.0, 98.0], "steps_per_s_std": [5.0, 5.0],
                             "wall_s_mean": [10.0, 10.2]})
    text = " ".join(training_claims(training))
    assert "the throughputs of \\texttt{b} and \\texttt{a} are not separated" in text and "slower" not in text


SAMPLER_FLOOR = "sampler-floor"


def add_sampler_floor(root: Path) -> None:
    """The sampler floor's results on 8gaussians, seed 0 only: the exact ε* under every setting (SWD near the data
    floor, HQ 98 %)."""
    metrics = root / "metrics" / "8gaussians" / SAMPLER_FLOOR / "0"
    metrics.mkdir(parents=True)
    for sampler, steps in SETTINGS:
        factor = DDIM_FACTOR[steps] if sampler == "ddim" else 1.0
        values = {"nonfinite_fraction": 0.0, "swd": 0.011 * factor, "mmd": 0.001, "energy": 0.002, "w2": 0.05,
                  "modes_covered": 8, "modes_total": 8, "hq_percent": 98.0 / factor, "time_per_sample_s": 1e-4}
        pd.DataFrame([{"dataset": "8gaussians", "model": SAMPLER_FLOOR, "seed": 0, "sampler": sampler, "steps": steps,
                       "nfe": steps, "metric": m, "value": v} for m, v in values.items()]).to_csv(
            metrics / f"{sampler}_{steps}.csv", index=False)


def floor_config(name: str | None = SAMPLER_FLOOR, trained: bool = True) -> dict:
    """CONFIG with the sampler floor model (trained on 8gaussians, seed 0, when ``trained``) named by
    ``paper.sampler_floor`` (absent when ``name`` is None)."""
    config = json.loads(json.dumps(CONFIG))
    config["models"][SAMPLER_FLOOR] = {"arch": "mixture_eps"}
    if trained:
        config["grid"].append({"datasets": ["8gaussians"], "models": [SAMPLER_FLOOR], "seeds": [0]})
    if name is not None:
        config["paper"]["sampler_floor"] = name
    return config


def test_the_diverged_flag_on_a_synthetic_summary():
    def rows(model, seed, sampler, steps, nonfinite, swd):
        return [{"dataset": "d", "model": model, "seed": seed, "sampler": sampler, "steps": steps, "nfe": steps,
                 "metric": m, "value": v} for m, v in (("nonfinite_fraction", nonfinite), ("swd", swd))]

    metrics = pd.DataFrame(rows("a", 0, "ddpm", 10, 0.0, 0.02) + rows("a", 0, "ddim", 5, 0.1, 0.03)
                           + rows("a", 1, "ddpm", 10, 0.0, 0.02) + rows("a", 1, "ddim", 5, 0.0, 0.03)
                           + rows("b", 0, "ddpm", 10, 0.0, 0.09) + rows("b", 0, "ddim", 5, 0.0, 0.11)
                           + rows("c", 0, "ddpm", 10, 0.0, 0.02) + rows("c", 0, "ddim", 5, 1.0, float("nan")))
    floors = pd.DataFrame([{"dataset": "d", "metric": "swd", "value": 0.01}])
    div = divergence(metrics, floors)
    flagged = div[div["diverged"]][["model", "seed", "sampler", "nonfinite", "exploding"]].values.tolist()
    # a/0 with DDIM: 10 % non-finite; b/0 with DDIM: SWD 11 times the floor (9 times with DDPM is not); c/0: all NaN
    assert flagged == [["a", 0, "ddim", True, False], ["b", 0, "ddim", False, True], ["c", 0, "ddim", True, False]]
    assert diverged_runs(div) == {("d", "a", 0), ("d", "b", 0), ("d", "c", 0)}
    report = findings.divergence_report(div)
    assert report["n_pairs"] == 3 and report["table"] is None
    assert (r"\texttt{a} on \texttt{d} (seed $0$) with \texttt{ddim} in $5$ steps ($10.0\,\%$ non-finite samples)"
            in report["sentence"])
    assert (r"\texttt{b} on \texttt{d} (seed $0$) with \texttt{ddim} in $5$ steps (an SWD of $11.0$ times"
            in report["sentence"])
    # more pairs than a sentence names: a table, one row per pair
    many = pd.concat([div.assign(seed=div["seed"] + 10 * k) for k in range(3)], ignore_index=True)
    report = findings.divergence_report(many)
    assert report["n_pairs"] == 9 and report["table"].count("\\\\") == 10 and "tab:diverged" in report["sentence"]
    assert not report["appendix"]
    clean = findings.divergence_report(divergence(metrics[metrics["model"] == "a"].assign(value=0.0), floors))
    assert clean["n_pairs"] == 0 and clean["sentence"].startswith("No run produced non-finite samples")
    # the main table marks the models with a diverged run
    summary = summarize(metrics, floors)
    _, tex = main_table(summary, main="ddpm_10", diverged={(d, m) for d, m, _ in diverged_runs(div)})
    assert r"d & a$^\dagger$ &" in tex and r"d & b$^\dagger$ &" in tex


def test_the_tables_write_the_divergence_of_every_run_and_setting(results):
    div = pd.read_csv(results / "tables" / "divergence.csv")
    assert len(div) == len(DATASETS) * len(MODELS) * len(SEEDS) * len(SETTINGS)
    bad = div[div["nonfinite"]]
    assert bad[["dataset", "model", "seed", "sampler", "steps"]].values.tolist() == [["8gaussians", "res_net", 1,
                                                                                       "ddim", 5]]
    exploding = div[div["exploding"]]
    # tiny_digits: every pair but res_net, seed 0, at 20 and 100 steps (0.10: exactly 10 times the floor, not above)
    assert (exploding["dataset"] == "tiny_digits").sum() == len(MODELS) * len(SEEDS) * len(SETTINGS) - 2
    # on 8gaussians only res_net, seed 1, DDIM 5 steps: 0.05 · 2 · 1.1 = 0.11 > 10 × 0.01 (seed 0: exactly 10)
    assert exploding.loc[exploding["dataset"] == "8gaussians", ["model", "seed", "steps"]].values.tolist() == [
        ["res_net", 1, 5]]


def test_nll_column_when_likelihood_files_exist(tmp_path):
    root = make_results(tmp_path / "results")
    run_tables(root)
    files = paper_files(root)
    assert "NLL" not in ctx_mod.build_context(files, CONFIG, repo=tmp_path)["ddpm"]["main_table"]
    files.inputs = [Path(f) for f in write_likelihood(root)]
    context = ctx_mod.build_context(files, CONFIG, repo=tmp_path)
    ddpm = context["ddpm"]
    tex = ddpm["main_table"]
    assert tex.splitlines()[2].startswith("Dataset & Model & NLL (nats/dim) & SWD")
    # 8gaussians: res_net 1.45 ± 0.07 against mlp 1.55 ± 0.07 (se 0.05 each: 0.1 > 0.071): bold; the true NLL below
    assert r"8gaussians & res\_net$^\dagger$ & {\boldmath $1.45 \pm 0.07$} &" in tex
    assert r"8gaussians & \emph{data floor} & $1.30$ &" in tex
    # tiny_digits: 0.83 against 0.85 is not separated: nothing bold there, no true NLL
    assert "tiny\\_digits & \\emph{data floor}" not in tex
    assert [ln for ln in tex.splitlines() if ln.startswith("tiny") and "boldmath" in ln] == []
    assert ddpm["has_nll"] and ddpm["has_true_nll"] and "NLL (nats/dim)" in ddpm["full_table"]
    by_name = {d["name"]: d for d in context["datasets"]}
    assert by_name["8gaussians"]["best_model"] == "res_net" and by_name["8gaussians"]["primary"] == "nll"
    assert by_name["8gaussians"]["best"][0].startswith(
        r"On \texttt{8gaussians}, \texttt{res\_net} has the lowest test NLL ($1.45 \pm 0.07$; data floor $1.30$), "
        r"$0.100$ nats/dim below \texttt{mlp} ($1.55 \pm 0.07$), beyond their combined standard error.")
    assert "not separated" in by_name["tiny_digits"]["best"][0]
    assert ddpm["findings"][0].startswith(
        "By the primary metric, test NLL, the best model is \\texttt{res\\_net} on $1$")
    assert all("NLL (nats/dim)" in t for t in ddpm["run_tables"])
    # the study declares the likelihood files as inputs of the paper (for a config with a likelihood block)
    config = {**CONFIG, "likelihood": {"n_max": 100, "solver": "rk4", "steps": 10}}
    declared = ddpm_study.inputs(config)
    assert sorted(declared) == sorted(str(f.relative_to(root.parent)) for f in files.inputs)
    assert ddpm_study.inputs(CONFIG) == []  # no likelihood block: nothing to read
    tex = render_paper(files, TEMPLATES, config, tmp_path / "paper", repo=tmp_path).read_text()
    assert "probability-flow ODE" in tex and "NLL (nats/dim)" in tex


def test_per_run_tables_have_prdc_log_density_and_divergence(tmp_path):
    root = make_results(tmp_path / "results")
    run_tables(root)
    files = paper_files(root)
    files.inputs = [Path(f) for f in write_likelihood(root)]
    (tex,) = ctx_mod.build_context(files, CONFIG, repo=tmp_path)["ddpm"]["run_tables"]
    header = tex.splitlines()[2]
    assert header == ("Dataset & Model & Seed & NLL (nats/dim) & SWD & Prec. & Rec. & Dens. & Cov. & $\\log p$ "
                      "(nats/dim) & Non-finite (\\%) & Diverged \\\\")
    lines = tex.splitlines()
    # mlp, seed 0 on 8gaussians: NLL 1.50, SWD 0.02, precision 0.9 − 0.002, log p −1.02; no non-finite sample
    assert (r"8gaussians & mlp & $0$ & $1.50$ & $0.0200$ & $0.898$ & $0.798$ & $0.998$ & $0.848$ & $-1.02$ & $0$ & "
            r"no \\") in lines
    assert any(ln.startswith(r"8gaussians & res\_net & $1$") and ln.endswith("& yes \\\\") for ln in lines)
    # the data floor beside the runs: the true NLL, the floor's PRDC and log-density
    assert (r"8gaussians & \emph{data floor} & -- & $1.30$ & $0.0100$ & $0.950$ & $0.950$ & $1.02$ & $0.970$ & "
            r"$-0.900$ & -- & -- \\") in lines
    assert any(ln.startswith(r"tiny\_digits & \emph{data floor} & -- & -- & $0.0100$") for ln in lines)
    # split at dataset boundaries into tables of at most max_rows rows
    metrics = pd.read_csv(root / "tables" / "metrics.csv")
    floors = collect_floors(sorted(root.glob("metrics/*/floor.csv")))
    parts = per_run_tables(metrics, floors, main="ddpm_100", max_rows=5)
    assert len(parts) == 2 and [set(d["dataset"]) for d, _ in parts] == [{"8gaussians"}, {"tiny_digits"}]


def test_sampler_floor_rows_are_labelled(tmp_path, monkeypatch):
    root = make_results(tmp_path / "results")
    add_sampler_floor(root)
    run_tables(root, models=list(MODELS))  # the main models, as `ttdm tables` keeps them
    files = paper_files(root)
    context = ctx_mod.build_context(files, floor_config(), repo=tmp_path)
    ddpm = context["ddpm"]
    lines = ddpm["main_table"].splitlines()
    rows = [ln.split(" & ")[1] for ln in lines if ln.startswith("8gaussians")]
    assert rows == ["mlp", "res\\_net$^\\dagger$", "\\emph{sampler floor}", "\\emph{data floor}"]
    floor_line = next(ln for ln in lines if "sampler floor" in ln)
    assert "boldmath" not in floor_line and "$98.0$" in floor_line  # HQ 98 %: the best of the column, never ranked
    assert not [ln for ln in lines if ln.startswith("tiny") and "sampler floor" in ln]
    assert "sampler floor" in ddpm["nfe_table"].splitlines()[2] and "sampler floor" in ddpm["mode_table"]
    assert ddpm["sampler_floor"] == r"\texttt{sampler-floor}"
    assert context["setup"]["sampler_floor"] == r"\texttt{sampler-floor}"
    assert "The sampler floor (the exact noise predictor, same sampler) reaches $98.0$" in " ".join(
        {d["name"]: d for d in context["datasets"]}["8gaussians"]["best"])
    assert context["datasets"][0]["best_model"] == "mlp"  # the sampler floor never ranks (tied models: by name)
    assert "sampler floor" in " ".join(t for t in ddpm["run_tables"])
    # the figures: declared inputs hold the sampler floor's metrics, and the NFE figure labels it
    config = floor_config()
    config["paper"]["main_models"] = list(MODELS)
    assert ddpm_study.sampler_floor(config) == SAMPLER_FLOOR and ddpm_study.shown_models(config)[-1] == SAMPLER_FLOOR
    monkeypatch.setattr(cfg, "run_settings", lambda config, d, m: [f"{s}_{n}" for s, n in SETTINGS])  # unvalidated
    monkeypatch.setattr(cfg, "main_setting", lambda config: "ddpm_100")
    inputs = ddpm_study.figure_inputs(config, "8gaussians")
    assert "results/metrics/8gaussians/sampler-floor/0/ddim_5.csv" in inputs["metrics"]
    assert not any(SAMPLER_FLOOR in f for f in inputs["losses"] + inputs["samples"])
    table = pd.concat([pd.read_csv(f) for f in sorted(root.glob("metrics/8gaussians/*/*/*.csv"))])
    fig = plot_nfe(table, 99.0, "8gaussians", metric="hq_percent", sampler_floor=SAMPLER_FLOOR)
    labels = [ln.get_label() for ln in fig.axes[0].get_lines()]
    assert "sampler floor, ddim" in labels and "data floor" in labels and not any(SAMPLER_FLOOR in x for x in labels)
    assert fig.axes[0].get_ylabel() == "HQ samples (%)" and fig.axes[0].get_yscale() == "linear"
    # the key absent, or naming a model that is not trained: no sampler floor anywhere, no error
    for config in (floor_config(name=None), floor_config(trained=False)):
        assert ddpm_study.sampler_floor(config) is None
        ddpm = ctx_mod.build_context(files, config, repo=tmp_path)["ddpm"]
        assert "sampler floor" not in ddpm["main_table"] and ddpm["sampler_floor"] is None
    tex = render_paper(files, TEMPLATES, floor_config(), tmp_path / "paper", repo=tmp_path).read_text()
    assert "\\emph{sampler floor}, model \\texttt{sampler-floor}" in tex


def test_missing_inputs_are_left_out(tmp_path):
    root = make_results(tmp_path / "results")
    for stage in ("data", "runs", "samples", "metrics"):
        shutil.rmtree(root / stage / "tiny_digits")
    shutil.rmtree(root / "bench")
    run_tables(root)
    draw_figures(root, root / "figures")
    config = {k: v for k, v in CONFIG.items() if k != "paper"}  # a config without the digits and no paper title
    config["grid"] = [{"datasets": ["8gaussians"], "models": ["mlp", "res_net"]}]
    tex = render_paper(paper_files(root), TEMPLATES, config, tmp_path / "paper", repo=tmp_path).read_text()
    assert "tiny" not in tex and "None" not in tex and "Benchmarks" not in tex
    assert "8gaussians" in tex and "\\section{Results: DDPM baselines}" in tex
    assert (tmp_path / "paper" / "figures" / "8gaussians_nfe.pdf").is_file()
    assert (tmp_path / "paper" / "refs.bib").is_file()
    tex = render_paper(PaperFiles(), TEMPLATES, config, tmp_path / "bare_paper", repo=tmp_path).read_text()
    assert "Results" not in tex and "None" not in tex and "\\section{Experimental setup}" in tex


def test_templates_are_strict(tmp_path):
    (tmp_path / "t.tex.j2").write_text(r"\texttt{((( name | tex )))} ((* if x *))x((* endif *))((= c =))")
    env = make_environment(tmp_path)
    assert env.get_template("t.tex.j2").render(name="a_b", x=False) == r"\texttt{a\_b} "
    with pytest.raises(jinja2.UndefinedError):
        env.get_template("t.tex.j2").render(name="a_b")


def test_provenance(tmp_path):
    assert git_state(tmp_path) is None
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run(git + ["init", "-q"], check=True)
    (tmp_path / "f.txt").write_text("a")
    subprocess.run(git + ["add", "f.txt"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "c"], check=True)
    head = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert git_state(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "f.txt").write_text("b")
    assert git_state(tmp_path) == {"commit": head, "dirty": True}
    prov = collect_provenance([], {"a": 1}, repo=tmp_path)
    assert prov["packages"]["numpy"] == np.__version__ and "torch" in prov["packages"]
    assert prov["config_hash"] == collect_provenance([], {"a": 1}, repo=tmp_path)["config_hash"]
    assert prov["config_hash"] != collect_provenance([], {"a": 2}, repo=tmp_path)["config_hash"]
    info = {"device": {"device": "cpu", "processor": "x86_64", "cpu_count": 2, "torch_threads": 1}}
    train = tmp_path / "runs" / "d" / "m" / "0" / "train.json"
    train.parent.mkdir(parents=True)
    train.write_text(json.dumps(info))
    assert collect_provenance([train], {}, repo=tmp_path)["devices"] == {"cpu: x86_64, 2 cores, 1 torch thread": 1}


@pytest.mark.skipif(shutil.which("latexmk") is None, reason="latexmk (TeX Live) is not installed")
def test_paper_compiles_and_prints_the_table_numbers(results, tmp_path):
    pypdf = pytest.importorskip("pypdf")
    render_paper(paper_files(results), TEMPLATES, CONFIG, tmp_path, repo=tmp_path)
    pdf = compile_paper(tmp_path)
    text = " ".join(page.extract_text() for page in pypdf.PdfReader(pdf).pages)
    display = read_display(results / "tables" / "summary_display.csv")
    for col in ("swd_mean", "swd_std", "energy_ratio"):
        assert display[col].iloc[0] in text, col
    assert read_display(results / "tables" / "training_display.csv")["steps_per_s_mean"].iloc[0] in text
    assert "Test paper" in text and "Ho" in text  # title and a bibliography entry
    (tmp_path / "paper.tex").write_text("\\documentclass{article}\\begin{document}\\undefinedmacro\\end{document}")
    with pytest.raises(RuntimeError, match=r"paper\.log.*\n.*Undefined control sequence"):
        compile_paper(tmp_path)


def test_no_ratio_of_a_non_positive_mean():
    """An unbiased MMD² below zero has no meaningful ratio to a positive floor."""
    from ttdm.report.tables import summarize

    df = pd.DataFrame(
        [{"dataset": "d", "model": "m", "seed": s, "sampler": "ddpm", "steps": 10, "nfe": 10, "metric": "mmd",
          "value": v} for s, v in ((0, -0.002), (1, 0.001))]
    )
    floors = pd.DataFrame([{"dataset": "d", "metric": "mmd", "value": 0.01}])
    out = summarize(df, floors)
    assert out["mean"].iloc[0] == pytest.approx(-0.0005) and np.isnan(out["ratio"].iloc[0])


def test_a_declared_figure_that_cannot_be_drawn_is_an_error(results, tmp_path):
    root = results
    no_swd = tmp_path / "metrics.csv"
    pd.read_csv(root / "metrics/8gaussians/mlp/0/ddim_5.csv").query("metric not in ('swd', 'hq_percent')").to_csv(
        no_swd, index=False)
    with pytest.raises(ValueError, match="figure 8gaussians_nfe cannot be drawn: no SWD or HQ"):
        write_figures("8gaussians", tmp_path, kinds=["nfe"], metrics=[no_swd])
    with pytest.raises(ValueError, match="figure 8gaussians_samples cannot be drawn: no samples"):
        write_figures("8gaussians", tmp_path, kinds=["samples"], test=root / "data/8gaussians/test.npy")
    assert not list(tmp_path.glob("*.pdf"))
    with pytest.raises(ValueError, match=r"not written: \['a.png'\]; written but not declared: \['b.pdf'\]"):
        check_written(["results/figures/a.pdf"], ["x/a.pdf", "x/b.pdf"], "ttdm figures")


# --------------------------------------------------------------------------------------------------------------------
# The report rules on the tiny config (tests/conftest.py), on fake upstream results: every command reads only the files
# its rule declares (an audit hook records every file opened, renamed or listed) and writes exactly its outputs.

REPORT_RULES = ("tables", "figures", "tt_tables", "tt_figures", "landscape_figure", "budget_report", "trilemma_report",
                "paper")
AUDIT: dict = {"on": False, "events": []}


def _audit(event: str, args: tuple) -> None:
    if AUDIT["on"] and event in ("open", "os.rename", "os.scandir", "os.listdir", "glob.glob"):
        AUDIT["events"].append((event, args))


def fake_upstream(workdir: Path, config: dict) -> None:
    """Every file the report rules need for a validated ``config``, written in pipeline order (so Snakemake plans
    only the report jobs): data, runs, samples, metrics, floors, test likelihoods, benchmarks and loss landscapes."""
    rng = np.random.default_rng(0)
    results = workdir / "results"
    runs = list(cfg.runs(config))
    dims = {}
    for ds in cfg.used_datasets(config):
        image = config["datasets"][ds]["kind"] == "digits"
        dims[ds] = dim = 64 if image else 2
        data = results / "data" / ds
        data.mkdir(parents=True)
        for split in ("train", "test", "floor"):
            np.save(data / f"{split}.npy", rng.uniform(-1, 1, (120, dim)).astype(np.float32))
        mixture = None if image else {"weights": [0.125] * 8, "means": np.eye(8, 2).tolist(), "stds": [[0.1] * 2] * 8}
        (data / "meta.json").write_text(json.dumps({"name": ds, "dim": dim, "image_shape": [1, 8, 8] if image else None,
                                                    "n_train": 120, "n_test": 120, "n_floor": 120, "mixture": mixture}))
    for i, (ds, model, seed) in enumerate(runs):
        run = results / "runs" / ds / model / str(seed)
        run.mkdir(parents=True)
        (run / "model.pt").write_bytes(b"fake")
        steps = np.arange(1, 11)
        val = 0.5 / steps + 0.01 * (i % 5) + 0.2
        pd.DataFrame({"step": steps, "loss": val + 0.01, "wall_s": steps * (0.1 + 0.01 * i), "val_loss": val}).to_csv(
            run / "loss.csv", index=False)
        (run / "train.json").write_text(json.dumps({
            "steps": 10, "wall_s": 1.0 + 0.1 * i, "steps_per_s": 10 / (1 + 0.1 * i), "n_params": 100 * (i + 1),
            "final_loss": val[-1], "val_loss": val[-1], "eps_rel_error": 0.1 + 0.01 * i if dims[ds] == 2 else None,
            "device": {"device": "cpu", "processor": "x86_64", "cpu_count": 2, "torch_threads": 1}}))
    for ds, model, seed in runs:
        (results / "samples" / ds / model / str(seed)).mkdir(parents=True)
        for setting in cfg.run_settings(config, ds, model):
            np.savez(results / "samples" / ds / model / str(seed) / f"{setting}.npz",
                     x=rng.uniform(-1, 1, (60, dims[ds])).astype(np.float32))
            (results / "samples" / ds / model / str(seed) / f"{setting}.json").write_text("{}")
    for j, (ds, model, seed) in enumerate(runs):
        (results / "metrics" / ds / model / str(seed)).mkdir(parents=True)
        for setting in cfg.run_settings(config, ds, model):
            sampler, steps = cfg.split_setting(setting)
            swd = 0.05 * (1 + j % 4) * (1 + 10 / steps) * (1 + 0.1 * seed)
            values = {"nonfinite_fraction": 0.0, "swd": swd, "mmd": swd / 10, "energy": swd / 5, "w2": 3 * swd,
                      "time_per_sample_s": 1e-4 * steps}
            values.update({"modes_covered": 8 - j % 2, "modes_total": 8, "hq_percent": 80.0} if dims[ds] == 2 else {})
            pd.DataFrame([{"dataset": ds, "model": model, "seed": seed, "sampler": sampler, "steps": steps,
                           "nfe": steps, "metric": k, "value": v} for k, v in values.items()]).to_csv(
                results / "metrics" / ds / model / str(seed) / f"{setting}.csv", index=False)
    for k, (ds, model, seed) in enumerate(cfg.likelihood_runs(config)):
        out = results / "likelihood" / ds / model / f"{seed}.csv"
        out.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"dataset": ds, "model": model, "seed": seed, "metric": ["nll", "nll_std_err"],
                      "value": [1.0 + 0.01 * k, 0.01]}).to_csv(out, index=False)
        true = [{"dataset": ds, "metric": "nll", "value": 0.9}] if dims[ds] == 2 else []
        pd.DataFrame(true, columns=["dataset", "metric", "value"]).to_csv(out.parent.parent / "floor.csv", index=False)
    for ds in cfg.used_datasets(config):
        floors = {"swd": 0.02, "mmd": 0.001, "energy": 0.004, "w2": 0.06}
        pd.DataFrame({"dataset": ds, "metric": list(floors), "value": list(floors.values())}).to_csv(
            results / "metrics" / ds / "floor.csv", index=False)
    (results / "bench").mkdir()
    models = list(dict.fromkeys(m for _, m, _ in runs))
    for name, column in (("models", "n_params"), ("train", "steps_per_s"), ("sampling", "s_per_1000"),
                         ("complexity", "flops_forward")):
        pd.DataFrame({"model": models, column: np.arange(1, len(models) + 1)}).to_csv(
            results / "bench" / f"{name}.csv", index=False)
    land = config["landscape"]
    for model in land["models"]:
        out = results / "landscape" / land["dataset"] / model
        out.mkdir(parents=True)
        grid = [(a, b, 1.0 + a * a + b * b) for a in (-1.0, 0.0, 1.0) for b in (-1.0, 0.0, 1.0)]
        pd.DataFrame(grid, columns=["alpha", "beta", "loss"]).to_csv(out / f"{land['seed']}.csv", index=False)
        (out / f"{land['seed']}.json").write_text(json.dumps({"loss_at_minimum": 1.0}))


def dry_run_jobs(workdir: Path) -> list[dict]:
    """The jobs `snakemake -n -p` plans for the paper: rule, input and output files, shell command."""
    bindir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run([str(bindir / "snakemake"), "-n", "-p", "--cores", "1", "results/paper/paper.pdf"],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    jobs: list[dict] = []
    for line in out.splitlines():
        if re.match(r"^(local)?rule \w+:$", line):
            jobs.append({"rule": line.split()[-1][:-1], "input": [], "output": []})
        elif jobs and re.match(r"^    (input|output): ", line):
            key, _, files = line.strip().partition(": ")
            jobs[-1][key] = files.split(", ")
        elif jobs and line.startswith("Shell command: "):
            jobs[-1]["shell"] = line[len("Shell command: "):]
    return jobs


def run_recorded(argv: list[str], root: Path) -> tuple[set[str], set[str], set[str]]:
    """Run ``ttdm argv`` in this process; the files under ``root`` it read, the files it wrote (after the renames of
    atomic writes), and the folders it listed, relative to ``root``."""
    if not AUDIT.get("installed"):
        sys.addaudithook(_audit)
        AUDIT["installed"] = True
    args = build_parser().parse_args(argv)
    AUDIT["events"], AUDIT["on"] = [], True
    try:
        args.func(args)
    finally:
        AUDIT["on"] = False
    reads, written, renamed, listed = set(), set(), set(), set()
    for event, a in AUDIT["events"]:
        path = a[0] if a and isinstance(a[0], (str, os.PathLike)) else None
        if event == "open" and path is not None:
            mode, flags = a[1], a[2]
            write = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(
                flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
            (written if write else reads).add(os.path.abspath(path))
        elif event == "os.rename":
            renamed.add(os.path.abspath(a[0]))
            written.add(os.path.abspath(a[1]))
        elif event != "open":
            listed.add(os.path.abspath(path if path is not None else "."))

    def under(paths: set[str]) -> set[str]:
        return {os.path.relpath(p, root) for p in paths if p.startswith(f"{root}{os.sep}")}

    return under(reads), under(written - renamed), under(listed)


def test_report_rules_read_only_their_inputs_and_write_the_declared_outputs(tmp_path, monkeypatch, root):
    config = tiny_config_dict()
    workdir = tmp_path / "work"
    workdir.mkdir()
    for name in ("Snakefile", "workflow", "paper", "envs"):
        (shutil.copytree if (root / name).is_dir() else shutil.copy)(root / name, workdir / name)
    (workdir / "config.yaml").write_text(json.dumps(config))
    validated = cfg.validate_config(config)
    fake_upstream(workdir, validated)
    jobs = dry_run_jobs(workdir)
    assert sorted(j["rule"] for j in jobs) == sorted(REPORT_RULES + ("figures",)), [j["rule"] for j in jobs]
    paper_job = next(j for j in jobs if j["rule"] == "paper")
    nll = {f for f in paper_job["input"] if f.startswith("results/likelihood/")}
    assert nll == set(ddpm_study.likelihood_inputs(validated)) and "results/likelihood/8gaussians/floor.csv" in nll
    assert "results/likelihood/8gaussians/mlp/1.csv" in nll and not any("/tt-rank" in f for f in nll)
    monkeypatch.chdir(workdir)
    figures: set[str] = set()
    for job in sorted(jobs, key=lambda j: REPORT_RULES.index(j["rule"])):
        argv = shlex.split(job["shell"])
        assert argv[0] == "ttdm", job["shell"]
        argv = argv[1:argv.index(">")] + (["--no-compile"] if job["rule"] == "paper" else [])
        reads, written, listed = run_recorded(argv, workdir.resolve())
        assert reads, f"{job['rule']}: no read recorded"
        assert reads <= set(job["input"]), f"{job['rule']} read undeclared files: {sorted(reads - set(job['input']))}"
        assert not listed, f"{job['rule']} listed folders: {sorted(listed)}"
        if job["rule"] == "paper":
            assert {w.split(os.sep)[:2] == ["results", "paper"] for w in written} == {True}, written
            assert (workdir / "results/paper/paper.tex").is_file()
            missing = next(i for i, a in enumerate(argv) if a.endswith("tt_rank.pdf"))
            with pytest.raises(ValueError, match="were not all given: results/figures/tt_rank.pdf"):
                run_recorded(argv[:missing] + argv[missing + 1:], workdir.resolve())
        else:
            assert written == set(job["output"]), (job["rule"], sorted(written ^ set(job["output"])))
        figures |= {o for o in job["output"] if o.startswith("results/figures/")}
    # the figures the rules declare are the studies' (figures of the paper) and exactly the files the plotters wrote
    assert figures == set(with_png(study_paper_files(validated)["figures"]))
    assert sorted(os.listdir(workdir / "results/figures")) == sorted(Path(f).name for f in figures)
    assert {"tt_convergence_8gaussians.pdf", "tt_rank.pdf", "tt_isolation.pdf", "landscape.pdf",
            "digits_samples.png", "8gaussians_nfe.pdf"} <= set(os.listdir(workdir / "results/figures"))
