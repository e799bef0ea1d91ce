"""The sampler floor (issue 9): method ``analytic`` samples a Gaussian-mixture dataset with its exact ε*.

Checks: the method's ε* is the mixture's (``GaussianMixture.eps_star``); a run takes 0 steps, writes every output
and is rebuilt from its model.pt alone; its DDPM samples are high quality; its PF-ODE NLL is the mixture's true NLL;
the config plans one sample and evaluate job per sampler setting and refuses a dataset without a mixture, a model of
another arch, ``mixture_eps`` under another method and a ``paper.sampler_floor`` that is a trained model; the
complexity spec and the benchmark leave the parameter-free model out.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ttdm.config import ConfigError, complexity_spec, likelihood_runs, run_settings, run_spec, sampling_keys
from ttdm.config import split_setting, validate_config
from ttdm.data.mixture import GaussianMixture
from ttdm.io import load_json
from ttdm.methods.analytic import Analytic
from ttdm.methods.base import Context
from ttdm.metrics.modes import modes
from ttdm.options import NoOptions
from ttdm.samplers import protocol_of
from ttdm.runs import load_run
from ttdm.schedules import make_schedule
from ttdm.stages.data import prepare_dataset
from ttdm.stages.likelihood import floor_nll, run_nll
from ttdm.stages.sample import generate
from ttdm.stages.train import train

SCHEDULE = {"kind": "linear", "T": 1000, "beta_start": 1e-4, "beta_end": 0.02}
FLOOR = "sampler-floor"


def floor_spec(dataset: str = "8gaussians", **training) -> dict:
    return {"dataset": dataset, "model": FLOOR, "arch": "mixture_eps", "model_cfg": {}, "seed": 0,
            "method": "analytic", "schedule": SCHEDULE, "device": "cpu", "threads": 1, "needs": {},
            "training": {"steps": 0, "ema_decay": 0.995, "checkpoint_every": 500, "log_every": 50, **training}}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("floor") / "8gaussians"  # results/data/{dataset}: the benchmark reads the name
    prepare_dataset({"name": "8gaussians", "kind": "8gaussians", "n_train": 500, "n_test": 300, "n_floor": 500,
                     "seed": 0}, out)
    return out


@pytest.fixture(scope="module")
def run_dir(data_dir) -> Path:
    out = data_dir.parent / "run"
    train(floor_spec(), data_dir, out)
    return out


def test_the_methods_eps_is_the_mixtures_eps_star(data_dir) -> None:
    meta = load_json(data_dir / "meta.json")
    train_rows = torch.from_numpy(np.load(data_dir / "train.npy"))
    ctx = Context(spec=floor_spec(), dim=2, image_shape=None, meta=meta, data=train_rows)
    method = Analytic(NoOptions(), ctx)
    parts = method.build()
    assert list(parts) == ["denoiser"] and sum(p.numel() for p in parts["denoiser"].parameters()) == 0
    assert method.optimizers(parts) == {} and method.ema_parts() == () and method.batch_size is None
    schedule = make_schedule(SCHEDULE)
    gen = torch.Generator().manual_seed(0)
    x = 3 * torch.randn(256, 2, generator=gen, dtype=torch.float64)  # (B, D), also far from every mode
    i = torch.randint(0, schedule.T, (256,), generator=gen)  # (B,) steps; the model's time is t = (i + 1)/T
    expected = GaussianMixture.from_dict(meta["mixture"]).eps_star(x, i, schedule)
    denoiser = method.sampling_object(parts, "denoiser")
    assert denoiser.schedule is method.schedule
    with torch.no_grad():
        torch.testing.assert_close(denoiser(x, schedule.time(i).to(torch.float64)), expected, rtol=1e-6, atol=1e-8)
        got32 = denoiser(x.float(), schedule.time(i).float())
    assert got32.dtype == torch.float32
    torch.testing.assert_close(got32, expected.float(), rtol=1e-4, atol=1e-5)


def test_a_run_takes_no_step_and_is_rebuilt_from_its_model_file(run_dir, data_dir) -> None:
    assert {p.name for p in run_dir.iterdir()} >= {"model.pt", "loss.csv", "train.json", "spec.json"}
    record = json.loads((run_dir / "train.json").read_text())
    assert record["steps"] == 0 and record["n_params"] == 0 and record["method"] == "analytic"
    assert record["final_loss"] is None and record["steps_per_s"] is None and record["eps_rel_error"] == 0.0
    assert record["mixture_components"] == 8 and record["wall_s"] >= 0
    assert (run_dir / "loss.csv").read_text().strip() == "step,loss,wall_s"  # no step, no loss
    assert not (run_dir / "checkpoints").exists()
    run = load_run(run_dir)  # no data, no meta.json: the mixture comes from model.pt
    mixture = GaussianMixture.from_dict(load_json(data_dir / "meta.json")["mixture"])
    x, t = torch.randn(64, 2, dtype=torch.float64), torch.rand(64, dtype=torch.float64).clamp(min=1e-3)
    with torch.no_grad():
        assert torch.equal(run.sampling_object("denoiser")(x, t), mixture.eps_model(make_schedule(SCHEDULE))(x, t))


def test_a_spec_with_steps_is_refused_for_a_method_with_nothing_to_train(data_dir, tmp_path) -> None:
    with pytest.raises(ValueError, match="must be 0 for a method with nothing to train"):
        train(floor_spec(steps=10), data_dir, tmp_path / "run")


def test_ddpm_samples_of_the_exact_eps_are_high_quality(run_dir, data_dir, tmp_path) -> None:
    spec = {"seed": 0, "setting": "ddpm_1000", "sampler": "ddpm", "kind": "ddpm", "steps": 1000, "knobs": {},
            "n_samples": 500, "batch_size": 500, "device": "cpu", "threads": 1}
    record = generate(spec, run_dir, tmp_path / "ddpm_1000.npz")
    assert record["nfe"] == 1000 and record["model"] == FLOOR
    x = np.load(tmp_path / "ddpm_1000.npz")["x"]
    scores = modes(x, x, meta=load_json(data_dir / "meta.json"), rng=np.random.default_rng(0))
    assert scores["hq_percent"] >= 95 and scores["modes_covered"] == 8, scores


def test_its_probability_flow_nll_is_the_mixtures_true_nll(run_dir, data_dir, tmp_path) -> None:
    spec = {"n_max": 200, "solver": "rk4", "steps": 20, "rtol": 1e-5, "atol": 1e-5, "n_probes": 1,
            "exact_max_dim": 8, "seed": 0, "device": "cpu", "threads": 1}
    model = run_nll(spec, run_dir=run_dir, data_dir=data_dir, out=tmp_path / "nll.csv")
    floor = floor_nll({**spec, "schedule": SCHEDULE}, data_dir=data_dir, out=tmp_path / "floor.csv")
    assert abs(model["nll"] - floor["nll"]) < 0.01 * abs(floor["nll"]), (model["nll"], floor["nll"])


# --------------------------------------------------------------------------------------------------------------------
# The config


def floor_block(quick_config: dict) -> dict:
    return next(b for b in quick_config["grid"] if FLOOR in b["models"])


def error_of(config: dict) -> str:
    with pytest.raises(ConfigError) as info:
        validate_config(config, source="test.yaml")
    return str(info.value)


def test_the_quick_preset_samples_the_floor_with_every_denoiser_setting(quick_config) -> None:
    assert floor_block(quick_config)["training"] == {"method": "analytic"}
    config = validate_config(quick_config)
    assert config["paper"]["sampler_floor"] == FLOOR
    for dataset in ("8gaussians", "25gaussians", "gmm8"):
        denoiser_settings = [k for k in sampling_keys(config)  # every setting of a denoiser sampler
                             if protocol_of(config["sampling"]["samplers"][split_setting(k)[0]]["kind"]) == "denoiser"]
        assert run_settings(config, dataset, FLOOR) == denoiser_settings
        spec = run_spec(config, dataset, FLOOR, 0)
        assert spec["method"] == "analytic" and spec["arch"] == "mixture_eps" and spec["training"]["steps"] == 0
        assert "lr" not in spec["training"]  # the global ddpm options are not the analytic method's
    assert FLOOR not in complexity_spec(config)["models"]
    assert {(d, s) for d, m, s in likelihood_runs(config) if m == FLOOR} == {
        ("8gaussians", 0), ("25gaussians", 0), ("gmm8", 0)}
    # the other runs' specs do not change: the global options still reach every method that declares them
    assert run_spec(config, "8gaussians", "mlp-iso", 0)["training"]["lr"] == config["training"]["lr"]


def test_a_dataset_without_a_mixture_is_refused_naming_it(quick_config) -> None:
    floor_block(quick_config)["datasets"] = ["8gaussians", "swissroll"]
    message = error_of(quick_config)
    assert "method 'analytic' cannot train model 'sampler-floor' on dataset 'swissroll'" in message, message
    assert "no known Gaussian-mixture density" in message
    assert "allowed datasets: 8gaussians, 25gaussians, gmm8" in message
    assert "'8gaussians':" not in message


def test_archs_and_methods_must_match(quick_config) -> None:
    quick_config["models"][FLOOR] = {"arch": "mlp"}
    assert "method 'analytic' cannot train model 'sampler-floor' (arch 'mlp'); allowed archs: mixture_eps" in (
        error_of(quick_config))
    quick_config["models"][FLOOR] = {"arch": "mixture_eps"}
    del floor_block(quick_config)["training"]
    message = error_of(quick_config)
    assert "model 'sampler-floor' (arch 'mixture_eps') is trained by method analytic only, not 'ddpm'" in message


def test_paper_sampler_floor_names_an_untrained_model(quick_config) -> None:
    quick_config["paper"]["sampler_floor"] = "mlp"
    assert "paper.sampler_floor: model 'mlp' is trained (method ddpm)" in error_of(quick_config)
    quick_config["paper"]["sampler_floor"] = "nothing"  # not trained by this grid: no floor to label, no error
    assert validate_config(quick_config)["paper"]["sampler_floor"] == "nothing"


def test_the_benchmark_leaves_a_model_without_parameters_out(data_dir, tmp_path) -> None:
    from ttdm.stages.bench import run_benchmarks

    spec = {"models": {FLOOR: {"arch": "mixture_eps", "model_cfg": {}, "dataset": "8gaussians"},
                       "mlp": {"arch": "mlp", "model_cfg": {"hidden": 8, "depth": 1}, "dataset": "8gaussians"}},
            "samplers": {"ddim": {"kind": "ddim", "steps": [2]}}, "schedule": SCHEDULE, "batch_size": 8,
            "lr": 1e-3, "device": "cpu", "threads": 1, "seed": 0, "repeats": 1, "train_steps": 2, "n_samples": 8}
    run_benchmarks(spec, tmp_path, [data_dir / "meta.json"])
    assert list(pd.read_csv(tmp_path / "models.csv")["model"]) == ["mlp"]


@pytest.mark.slow
def test_the_workflow_plans_a_sample_and_an_evaluate_job_per_setting(root, tmp_path, tiny_config) -> None:
    from test_workflow import make_workdir, snakemake

    tiny_config["models"][FLOOR] = {"arch": "mixture_eps"}
    if not any(FLOOR in block["models"] for block in tiny_config["grid"]):
        tiny_config["grid"].append({"datasets": ["8gaussians"], "models": [FLOOR],
                                    "training": {"method": "analytic"}, "seeds": [0]})
    tiny_config["paper"]["sampler_floor"] = FLOOR
    workdir = make_workdir(root, tmp_path / "dry", tiny_config)
    out = snakemake(workdir, "-n").stdout  # the whole pipeline plans (bench, complexity, tables, paper)
    settings = sampling_keys(validate_config(tiny_config))
    for kind in ("samples", "metrics"):
        planned = set(re.findall(rf"results/{kind}/8gaussians/{FLOOR}/0/(\w+)\.(?:npz|csv)\b", out))
        assert planned == set(settings), (kind, planned)
    assert f"results/runs/8gaussians/{FLOOR}/0/model.pt" in out
    assert f"results/likelihood/8gaussians/{FLOOR}/0.csv" in out
