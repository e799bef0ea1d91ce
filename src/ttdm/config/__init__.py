"""The workflow configuration: schema validation with defaults, and the job specs built from it.

`validate_config` checks a config dict against workflow/schemas/config.schema.yaml (whose `x-registry` fields take
their allowed values from ttdm's registries), fills defaults, then checks what a schema cannot: that the grid names
existing datasets and models, that component options are accepted by the component, and that the main-table setting
exists. Every error names the config file, the key's path and the allowed values, and all are reported at once, before
any job starts. The `*_spec` functions turn the validated config and a job's wildcards into the small dict that the
job receives on its command line and saves beside its outputs.

`run_settings`, `needs_of`, `run_spec` and `complexity_spec` here ask a run's method (and so import torch); for a
config that `validate_config(..., cache_dir=...)` read from or wrote to its cache they return the values stored with
it instead (`ttdm.config.cache`), identical by construction, so a dry run of an unchanged setup never imports torch.
"""

from ttdm.config.grid import (
    block_for,
    expand_grid,
    main_models,
    n_eval,
    runs,
    training_for,
    used_datasets,
)
from ttdm.config import cache as _cache
from ttdm.config import methods as _methods
from ttdm.config import specs as _specs
from ttdm.config.methods import LOOP_KEYS, resolved_training, settings_for
from ttdm.config.schema import SCHEMA_PATH, ConfigError, load_schema, validate_config
from ttdm.config.specs import (
    bench_spec,
    classifier_datasets,
    classifier_spec,
    data_spec,
    eval_spec,
    job_resources,
    likelihood_spec,
    load_config,
    main_setting,
    sample_spec,
    sampling_keys,
    split_setting,
)


def run_settings(config: dict, dataset: str, model: str) -> list[str]:
    """:func:`ttdm.config.specs.run_settings`, from the validation cache when it holds ``config``."""
    return _cache.derived(config, "run_settings", (dataset, model), _specs.run_settings)


def needs_of(config: dict, dataset: str, model: str) -> dict[str, str]:
    """:func:`ttdm.config.methods.needs_of`, from the validation cache when it holds ``config``."""
    return _cache.derived(config, "needs_of", (dataset, model), _methods.needs_of)


def inputs_of(config: dict, dataset: str, model: str, seed: int) -> dict[str, str]:
    """:func:`ttdm.config.methods.inputs_of`, from the validation cache when it holds ``config``."""
    return _cache.derived(config, "inputs_of", (dataset, model, int(seed)), _methods.inputs_of)


def run_spec(config: dict, dataset: str, model: str, seed: int) -> dict:
    """:func:`ttdm.config.specs.run_spec`, from the validation cache when it holds ``config``."""
    return _cache.derived(config, "run_spec", (dataset, model, seed), _specs.run_spec)


def likelihood_runs(config: dict) -> list[tuple[str, str, int]]:
    """:func:`ttdm.config.specs.likelihood_runs` (it imports the methods, i.e. torch), from the validation cache."""
    return [tuple(r) for r in _cache.derived(config, "likelihood_runs", (), _specs.likelihood_runs)]


def arch_priors(config: dict) -> dict:
    """:func:`ttdm.config.specs.arch_priors` (it imports the models, i.e. torch), from the validation cache."""
    return _cache.derived(config, "arch_priors", (), _specs.arch_priors)


def complexity_spec(config: dict) -> dict:
    """:func:`ttdm.config.specs.complexity_spec`, from the validation cache when it holds ``config``."""
    return _cache.derived(config, "complexity_spec", (), _specs.complexity_spec)


__all__ = [
    "LOOP_KEYS", "SCHEMA_PATH", "arch_priors", "ConfigError", "bench_spec", "block_for", "classifier_datasets",
    "classifier_spec", "complexity_spec", "data_spec", "eval_spec",
    "expand_grid", "inputs_of", "job_resources", "likelihood_runs", "likelihood_spec", "load_config", "load_schema", "main_models", "main_setting", "n_eval", "needs_of",
    "resolved_training", "run_settings", "run_spec", "runs", "sample_spec", "sampling_keys", "settings_for",
    "split_setting", "training_for", "used_datasets", "validate_config",
]
