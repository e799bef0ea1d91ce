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


def test_full_preset_over_the_quick_one_is_valid(root, quick_config):
    """``snakemake --configfile workflow/presets/full.yaml`` merges the preset over config.yaml key by key (nested
    mappings recursively, lists replaced): that merged config must validate, the quick preset's studies included."""
    import yaml

    def merge(base: dict, over: dict) -> dict:
        return {**base, **{k: merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
                           for k, v in over.items()}}

    full = yaml.safe_load((root / "workflow" / "presets" / "full.yaml").read_text())
    config = validate_config(merge(quick_config, full))
    assert config["sampling"]["n_samples"] == 10000 and config["trilemma"]["settings"][-1] == "gan_4"


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
    assert "sampling.samplers.ddim.etta: unknown option; allowed: eta, spacing" in error_of(quick_config)


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
    bench = cfg.bench_spec(config)["models"]  # each model timed at its own training batch and learning rate
    for model, dataset in (("unet", "digits"), ("mlp", "8gaussians")):
        training = cfg.run_spec(config, dataset, model, 0 if model == "mlp" else 1)["training"]
        assert (bench[model]["batch_size"], bench[model]["lr"]) == (training["batch_size"], training["lr"])
    complexity = cfg.complexity_spec(config)["models"]
    assert complexity["tt-rgd"]["optimizer"] == "rgd" and complexity["tt-rgd"]["n_fit"] == 500
    assert set(complexity) == {m for _, m, _ in cfg.runs(config)} - {"sampler-floor"}  # nothing trained there


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
    assert cfg.main_models(config) == ["mlp", "unet", "tt-als"]


def test_grid_expansion_errors_name_the_key(tiny_config):
    tiny_config["grid"].append({"datasets": ["8gaussians"], "models": ["tt"], "optimizers": ["lbfgs"]})
    tiny_config["paper"]["main_models"] = ["nope"]
    tiny_config["landscape"]["models"] = ["tt-rgd-x"]
    with pytest.raises(ConfigError) as err:
        validate_config(tiny_config)
    text = str(err.value)
    block = len(tiny_config["grid"]) - 1
    assert f"grid.{block}.optimizers: 'lbfgs' is not defined under optimizers; defined: als, rgd" in text
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


# --------------------------------------------------------------------------------------------------------------------
# Every component's declared options, checked before any job starts: one test per kind of option problem


def test_negative_integer_option(quick_config):
    quick_config["models"]["mlp"]["depth"] = -5
    quick_config["models"]["unet"]["channels"] = -5
    message = error_of(quick_config)
    assert "models.mlp.depth: -5 must be ≥ 1" in message and "models.unet.channels: -5 must be ≥ 1" in message


def test_string_for_a_number(quick_config):
    quick_config["models"]["resnet"]["hidden"] = "ten"
    quick_config["models"]["tt"]["rank"] = "ten"
    message = error_of(quick_config)
    assert "models.resnet.hidden: 'ten' is not an integer" in message
    assert "models.tt.rank: 'ten' is not an integer" in message


def test_bad_choice_lists_the_allowed(quick_config):
    quick_config["models"]["tt"]["basis"] = "bogus"
    quick_config["models"]["tt"]["dtype"] = "float16"
    message = error_of(quick_config)
    assert "models.tt.basis: 'bogus' is not allowed; allowed: bspline, chebyshev, legendre" in message
    assert "models.tt.dtype: 'float16' is not allowed; allowed: float32, float64" in message


def test_unknown_option_lists_the_allowed(quick_config):
    quick_config["models"]["mlp"]["hiddne"] = 64
    quick_config["datasets"]["gmm8"]["dimm"] = 3
    quick_config["metrics"]["swd"] = {"n_proj": 10}
    message = error_of(quick_config)
    assert "models.mlp.hiddne: unknown option; allowed: depth, fourier, fourier_max, hidden, prior, time_dim" in message
    assert "datasets.gmm8.dimm: unknown option; allowed: dim, mode_seed, n_modes, radius, std" in message
    assert "metrics.swd.n_proj: unknown option; allowed: n_projections" in message


def test_shell_like_string_is_refused(quick_config):
    quick_config["models"]["tt"]["layout"] = "x; touch /tmp/ttdm-pwned"
    message = error_of(quick_config)
    assert "models.tt.layout: 'x; touch /tmp/ttdm-pwned' is not allowed; allowed: per_output, shared" in message


def test_sampler_knob_out_of_range(quick_config):
    quick_config["sampling"]["samplers"]["ddim"]["eta"] = -5
    assert "sampling.samplers.ddim.eta: -5 must be ≥ 0" in error_of(quick_config)


def test_file_delimiter_is_checked(quick_config, tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("1,2\n3,4\n")
    quick_config["datasets"]["mine"] = {"kind": "file", "path": str(path), "delimiter": ";;"}
    message = error_of(quick_config)
    assert "datasets.mine.delimiter: ';;' is not allowed; allowed: one character" in message


def test_metric_and_schedule_options(quick_config):
    quick_config["metrics"]["mmd"] = {"bandwidths": [1.0, -1.0]}
    quick_config["metrics"]["modes"] = {"threshold": 0}
    quick_config["schedule"]["s"] = 0.01  # a cosine option on the linear schedule
    message = error_of(quick_config)
    assert "metrics.mmd.bandwidths: [1.0, -1.0] must be > 0" in message
    assert "metrics.modes.threshold: 0 must be > 0" in message
    assert "schedule.s: unknown option; allowed: T, beta_end, beta_start" in message


def test_a_key_the_schema_refuses_is_reported_once(quick_config):
    quick_config["schedule"]["T"] = 0
    message = error_of(quick_config)
    assert message.count("schedule.T") == 1, message


def test_options_across_keys(quick_config):
    quick_config["models"]["tt"].update(basis="bspline", degree=3)
    quick_config["models"]["unet"]["groups"] = 3
    message = error_of(quick_config)
    assert "models.tt.degree: 3 is below the minimum 4 of basis 'bspline'" in message
    assert "models.unet.groups: 3 must divide every channel count" in message


def test_swept_values_are_checked(tiny_config):
    tiny_config["grid"][3]["sweep"] = {"rank": ["ten", 3], "degree": [4]}
    tiny_config["grid"].append({"datasets": ["8gaussians"], "models": ["tt"], "sweep": {"rnak": [2]}})
    message = error_of(tiny_config)
    assert "grid.3.sweep.rank: 'ten' is not an integer (model 'tt')" in message
    assert f"grid.{len(tiny_config['grid']) - 1}.sweep.rnak: unknown option; allowed: " in message


@pytest.mark.parametrize(("text", "expected"), [
    ("x,y\n1,2\n", "the table has 1 row(s); at least 2 are needed"),
    ("x,y\n1,nan\n3,4\n", "1 non-finite value(s)"),
    ("x,y\n1,abc\n3,4\n", "line 2, column 2 ('y'): cannot read 'abc' as a number"),
    ("1;2\n3;4\n5;6\n", "cannot read '3;4' as a number (read with delimiter ','"),  # '1;2' is a header
])
def test_user_file_is_read_at_validation(quick_config, tmp_path, text, expected):
    path = tmp_path / "mine.csv"
    path.write_text(text)
    quick_config["datasets"]["mine"] = {"kind": "file", "path": str(path)}
    message = error_of(quick_config)
    assert f"datasets.mine.path: {path}" in message and expected in message, message


def test_user_file_with_too_few_rows_for_the_splits(quick_config, tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("\n".join(f"{i},{i * i}" for i in range(30)) + "\n")
    quick_config["datasets"]["mine"] = {"kind": "file", "path": str(path), "delimiter": ",", "n_test": 20,
                                        "n_eval": 9}
    message = error_of(quick_config)
    assert f"datasets.mine: {path} has 30 rows, too few for n_test = 20 + n_eval = 9" in message
    quick_config["datasets"]["mine"]["n_eval"] = 8
    quick_config["grid"][0]["datasets"].append("mine")
    assert "mine" in cfg.used_datasets(validate_config(quick_config))


def test_every_component_declares_its_options():
    from ttdm.config.schema import registries

    for kind, registry in registries().items():
        for name in registry.names():
            assert kind == "method" or registry.options(name) is not None, (kind, name)


# --------------------------------------------------------------------------------------------------------------------
# The cache of validated configs (.snakemake/ttdm/ in the workflow)


def test_cache_hit_is_what_validation_returns(tiny_config, tmp_path):
    from ttdm.config import cache

    expected = validate_config(tiny_config)
    first = validate_config(tiny_config, cache_dir=tmp_path)
    entries = list(tmp_path.glob("config-*.json"))
    assert first == expected and len(entries) == 1
    cache._LOADED.clear()
    second = validate_config(tiny_config, cache_dir=tmp_path)
    assert second == expected and list(tmp_path.glob("config-*.json")) == entries
    # the derived values served from the cache equal the computed ones
    for d, m, s in cfg.runs(second):
        assert cfg.run_spec(second, d, m, s) == cfg.specs.run_spec(expected, d, m, s)
        assert cfg.run_settings(second, d, m) == cfg.specs.run_settings(expected, d, m)
        assert cfg.needs_of(second, d, m) == cfg.methods.needs_of(expected, d, m)
    assert cfg.complexity_spec(second) == cfg.specs.complexity_spec(expected)
    # a different config is computed, not served
    other = copy.deepcopy(second)
    other["training"]["steps"] = 7
    assert cfg.run_spec(other, "8gaussians", "mlp", 0)["training"]["steps"] == 7


def test_cache_misses_on_a_changed_input(quick_config, tmp_path):
    data = tmp_path / "mine.csv"
    data.write_text("\n".join(f"{i},{i * i}" for i in range(3000)) + "\n")
    quick_config["datasets"]["mine"] = {"kind": "file", "path": str(data)}
    cache_dir = tmp_path / "cache"
    validate_config(quick_config, cache_dir=cache_dir)
    data.write_text("1,2\n")  # the data file changed: validated again, and refused
    with pytest.raises(ConfigError, match="at least 2 are needed"):
        validate_config(quick_config, cache_dir=cache_dir)
    quick_config["models"]["mlp"]["depth"] = -5  # a config with errors is never stored
    with pytest.raises(ConfigError):
        validate_config(quick_config, cache_dir=cache_dir)
    assert len(list(cache_dir.glob("config-*.json"))) == 1


def test_bench_times_the_unet_at_its_own_batch_not_the_config_default(quick_config):
    config = validate_config(quick_config)
    unet = cfg.bench_spec(config)["models"]["unet"]
    assert unet["batch_size"] == cfg.run_spec(config, "digits", "unet", 0)["training"]["batch_size"] == 64
    assert config["training"]["batch_size"] != 64
