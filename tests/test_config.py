"""Config validation: defaults, and a clear error naming the key path and allowed values before any work."""

from __future__ import annotations

import copy

import pytest

from ttdm import config as cfg
from ttdm.config import ConfigError, validate_config


def error_of(config: dict) -> str:
    with pytest.raises(ConfigError) as info:
        validate_config(config, source="test.yaml")
    return str(info.value)


def test_quick_preset_is_valid_and_gets_defaults(quick_config):
    config = validate_config(quick_config)
    assert config["datasets"]["8gaussians"]["n_train"] == 5000  # schema default
    assert config["training"]["method"] == "ddpm"
    assert config["bench"]["repeats"] >= 1
    assert config["conda_env"] == "cpu"


def test_full_preset_is_valid(root):
    config = cfg.load_config(root / "workflow" / "presets" / "full.yaml")
    assert len(list(cfg.runs(config))) > len(list(cfg.runs(validate_config(
        __import__("yaml").safe_load((root / "config.yaml").read_text())))))


def test_unknown_top_level_key(quick_config):
    quick_config["trainig"] = {}
    message = error_of(quick_config)
    assert "test.yaml" in message and "trainig" in message


def test_wrong_type_names_key_path(quick_config):
    quick_config["training"]["lr"] = "fast"
    message = error_of(quick_config)
    assert "training.lr" in message and "'fast'" in message


def test_unknown_dataset_kind_lists_allowed(quick_config):
    quick_config["datasets"]["8gaussians"]["kind"] = "9gaussians"
    message = error_of(quick_config)
    assert "datasets.8gaussians.kind" in message and "'25gaussians'" in message and "swissroll" in message


@pytest.mark.parametrize("where", ["model", "sampler"])
def test_unknown_component_names(quick_config, where):
    if where == "model":
        quick_config["models"]["mlp"]["arch"] = "transformer"
        expected = ["models.mlp.arch", "'transformer'", "'resnet'"]
    else:
        quick_config["sampling"]["samplers"]["ddim"]["kind"] = "euler"
        expected = ["sampling.samplers.ddim.kind", "'euler'", "'ddim'"]
    message = error_of(quick_config)
    assert all(e in message for e in expected), message


@pytest.mark.parametrize("key", ["steps", "batch_size", "checkpoint_every"])
def test_non_positive_step_counts(quick_config, key):
    quick_config["training"][key] = 0
    assert f"training.{key}" in error_of(quick_config)


def test_non_positive_sampler_steps(quick_config):
    quick_config["sampling"]["samplers"]["ddim"]["steps"] = [10, -1]
    assert "sampling.samplers.ddim.steps.1" in error_of(quick_config)


@pytest.mark.parametrize("name", ["../etc", "a b", "x;rm -rf", "ünï"])
def test_names_that_become_paths_are_restricted(quick_config, name):
    quick_config["datasets"][name] = {"kind": "moons"}
    message = error_of(quick_config)
    assert "datasets" in message and repr(name) in message


def test_grid_must_name_defined_entries(quick_config):
    quick_config["grid"][0]["models"].append("mpl")
    message = error_of(quick_config)
    assert "grid.0.models" in message and "'mpl'" in message and "resnet" in message


def test_unknown_sampler_option(quick_config):
    quick_config["sampling"]["samplers"]["ddim"]["etta"] = 0.5
    assert "'etta'" in error_of(quick_config)


def test_steps_above_T(quick_config):
    quick_config["sampling"]["samplers"]["ddim"]["steps"] = [2000]
    message = error_of(quick_config)
    assert "sampling.samplers.ddim.steps: [2000] sample no run" in message and "exceed the schedule's T = 1000" in message


def test_main_setting_must_exist(quick_config):
    quick_config["sampling"]["main"] = "ddim_7"
    message = error_of(quick_config)
    assert "sampling.main" in message and "ddim_10" in message


def test_all_errors_reported_at_once(quick_config):
    quick_config["training"]["lr"] = -1
    quick_config["device"] = "tpu"
    message = error_of(quick_config)
    assert "training.lr" in message and "device" in message


def test_config_is_not_modified(quick_config):
    before = copy.deepcopy(quick_config)
    validate_config(quick_config)
    assert quick_config == before


def test_load_config_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: config file not found"):
        cfg.load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("datasets: [unclosed")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        cfg.load_config(bad)


def test_grid_and_specs(tiny_config):
    config = validate_config(tiny_config)
    runs = list(cfg.runs(config))
    assert runs[:4] == [("8gaussians", "mlp", 0), ("8gaussians", "mlp", 1), ("digits", "unet", 0), ("digits", "unet", 1)]
    spec = cfg.run_spec(config, "digits", "unet", 1)
    assert spec["training"]["steps"] == 40  # the grid block's override
    assert spec["arch"] == "unet" and spec["model_cfg"] == {"channels": 8} and spec["method"] == "ddpm"
    assert cfg.run_spec(config, "8gaussians", "mlp", 0)["training"]["steps"] == 200
    assert cfg.data_spec(config, "digits")["n_floor"] == 200
    sample = cfg.sample_spec(config, "8gaussians", 0, "ddim_20")
    assert sample["n_samples"] == 200 and (sample["sampler"], sample["kind"], sample["steps"]) == ("ddim", "ddim", 20)
    assert cfg.run_settings(config, "8gaussians", "mlp") == ["ddpm_200", "ddim_5", "ddim_20"]
    assert cfg.sampling_keys(config) == ["ddpm_200", "ddim_5", "ddim_20"]
    assert cfg.main_setting(config) == "ddpm_200"
    assert set(cfg.bench_spec(config)["models"]) == {"mlp", "unet", "tt-als"}  # paper.main_models
    complexity = cfg.complexity_spec(config)["models"]
    assert complexity["tt-rgd"]["optimizer"] == "rgd" and complexity["tt-rgd"]["n_fit"] == 500
    assert set(complexity) == {m for _, m, _ in cfg.runs(config)}


def test_dataset_options_are_checked(quick_config):
    quick_config["datasets"]["moons"]["nosie"] = 0.2
    message = error_of(quick_config)
    assert "datasets.moons" in message and "nosie" in message and "noise" in message


def test_missing_user_file(quick_config, tmp_path):
    quick_config["datasets"]["mine"] = {"kind": "file", "path": str(tmp_path / "mine.csv")}
    message = error_of(quick_config)
    assert "datasets.mine.path" in message and "mine.csv" in message


def test_grid_expansion_optimizers_sweep_tag(tiny_config):
    config = validate_config(tiny_config)
    tt_runs = [r for r in cfg.runs(config) if r[1].startswith("tt")]
    # optimizers x seeds, the sweep's new rank only (rank 2 is the base model: the same run), the tagged block
    assert tt_runs == [("8gaussians", "tt-als", 0), ("8gaussians", "tt-als", 1), ("8gaussians", "tt-rgd", 0),
                       ("8gaussians", "tt-rgd", 1), ("8gaussians", "tt-rank3-als", 0), ("8gaussians", "tt-als-iso", 0)]
    assert config["models"]["tt-rank3-als"] == {"arch": "tt", "rank": 3, "degree": 4, "dtype": "float64"}
    spec = cfg.run_spec(config, "8gaussians", "tt-rgd", 1)
    assert spec["training"]["optimizer"] == "rgd" and spec["training"]["steps"] == 4  # the optimizer's keys win
    assert spec["variant"] == {"base": "tt", "optimizer": "rgd", "sweep": {}, "tag": None}
    iso = cfg.run_spec(config, "8gaussians", "tt-als-iso", 0)
    assert iso["method"] == "eps_star" and iso["variant"]["tag"] == "iso"
    assert cfg.run_spec(config, "8gaussians", "tt-rank3-als", 0)["variant"]["sweep"] == {"rank": 3}
    assert cfg.tt_plan(config) == {"any": True, "convergence": ["8gaussians"], "rank": True, "isolation": True}
    assert cfg.main_models(config) == ["mlp", "unet", "tt-als"]


def test_grid_expansion_errors_name_the_key(tiny_config):
    tiny_config["grid"].append({"datasets": ["8gaussians"], "models": ["tt"], "optimizers": ["lbfgs"]})
    tiny_config["paper"]["main_models"] = ["nope"]
    tiny_config["landscape"]["models"] = ["tt-rgd-x"]
    with pytest.raises(ConfigError) as err:
        validate_config(tiny_config)
    text = str(err.value)
    assert "grid.5.optimizers: 'lbfgs' is not defined under optimizers; defined: als, rgd" in text
    tiny_config["grid"].pop()
    with pytest.raises(ConfigError) as err:
        validate_config(tiny_config)
    assert "paper.main_models: 'nope' is not a model" in str(err.value)
    assert "landscape.models: 'tt-rgd-x' is not trained on '8gaussians'" in str(err.value)


def test_job_resources_defaults_overrides_and_gpu(quick_config):
    config = validate_config(quick_config)
    assert cfg.job_resources(config, "train", threads=3) == {"runtime": 60, "mem_mb": 4000, "cpus_per_task": 3}
    assert "gpu" not in cfg.job_resources(config, "train", gpu=True)  # device auto: no GPU requested
    quick_config.update(device="cuda", resources={"train": {"runtime": 240}, "gpus": 2})
    config = validate_config(quick_config)
    res = cfg.job_resources(config, "train", threads=1, gpu=True)
    assert res == {"runtime": 240, "mem_mb": 4000, "cpus_per_task": 1, "gpu": 2}
    assert "gpu" not in cfg.job_resources(config, "evaluate", gpu=False)
    assert "resources.train.mem_mb" in error_of({**quick_config, "resources": {"train": {"mem_mb": 0}}})
