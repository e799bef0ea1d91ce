"""The workflow configuration: schema validation with defaults, and the job specs built from it.

`validate_config` checks a config dict against workflow/schemas/config.schema.yaml (whose `x-registry` fields take
their allowed values from ttdm's registries), fills defaults, then checks what a schema cannot: that the grid names
existing datasets and models, that component options are accepted by the component, and that the main-table setting
exists. Every error names the config file, the key's path and the allowed values, and all are reported at once, before
any job starts. The `*_spec` functions turn the validated config and a job's wildcards into the small dict that the
job receives on its command line and saves beside its outputs.
"""

from __future__ import annotations

import copy
import inspect
import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators

from ttdm.registry import Registry

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A configuration that cannot run; the message lists every problem found."""


def _registries() -> dict[str, Registry]:
    from ttdm.data import DATASETS
    from ttdm.methods import METHODS
    from ttdm.metrics import METRICS
    from ttdm.models import MODELS
    from ttdm.samplers import SAMPLERS
    from ttdm.schedules import SCHEDULES

    return {
        "dataset": DATASETS,
        "model": MODELS,
        "sampler": SAMPLERS,
        "metric": METRICS,
        "method": METHODS,
        "schedule": SCHEDULES,
    }


def load_schema(path: str | Path = SCHEMA_PATH) -> dict[str, Any]:
    """Read the YAML schema and turn each ``x-registry: NAME`` field into an enum of NAME's registered names."""
    schema = yaml.safe_load(Path(path).read_text())
    registries = _registries()

    def fill(node: Any) -> None:
        if isinstance(node, dict):
            if "x-registry" in node:
                node["enum"] = registries[node["x-registry"]].names()
            for value in node.values():
                fill(value)
        elif isinstance(node, list):
            for value in node:
                fill(value)

    fill(schema)
    return schema


def _with_defaults(validator_class: type) -> type:
    """A validator that also writes each property's `default` into the instance (jsonschema FAQ recipe)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):  # type: ignore[no-untyped-def]
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": set_defaults})


_DefaultFillingValidator = _with_defaults(Draft202012Validator)


def _key_path(path: Any) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def validate_config(
    config: dict[str, Any], *, source: str = "config", schema_path: str | Path = SCHEMA_PATH
) -> dict[str, Any]:
    """Return a completed copy of ``config`` or raise ConfigError listing every problem with its key path."""
    config = copy.deepcopy(config)
    schema = load_schema(schema_path)
    errors = []
    for err in sorted(_DefaultFillingValidator(schema).iter_errors(config), key=lambda e: list(e.absolute_path)):
        where = _key_path(err.absolute_path)
        if err.validator == "propertyNames":
            # the message of a bad name is about the name, not the value
            where = f"{where}: key {err.instance!r}"
        errors.append(f"{where}: {err.message}")
    if not errors:
        errors = _semantic_errors(config)
    if not errors:
        config, errors = expand_grid(config)
    if errors:
        raise ConfigError(f"{source} is not valid:\n  - " + "\n  - ".join(errors))
    return config


def _name_part(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", str(value))


def expand_grid(config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Expand grid blocks with ``optimizers``, ``sweep`` or ``tag`` into plain blocks of generated models.

    A block {models: [tt], sweep: {rank: [2, 4]}, optimizers: [als, rgd], tag: iso} yields the models
    tt-rank2-als-iso, tt-rank2-rgd-iso, ... (a swept value equal to the base model's own adds no suffix, so the
    same model trained in two blocks is one run), each in its own block whose training is the block's overridden
    by the optimizer's.  Plain blocks pass through.  Returns (config, errors).
    """
    errors: list[str] = []
    models = dict(config["models"])
    grid = []
    for b, block in enumerate(config["grid"]):
        if not ({"optimizers", "sweep", "tag"} & set(block)):
            grid.append(block)
            continue
        for opt in block.get("optimizers", []):
            if opt not in config["optimizers"]:
                known = ", ".join(sorted(config["optimizers"])) or "(none defined)"
                errors.append(f"grid.{b}.optimizers: {opt!r} is not defined under optimizers; defined: {known}")
        if errors:
            continue
        sweep = block.get("sweep", {})
        combos = [dict(zip(sweep, values)) for values in itertools.product(*sweep.values())] or [{}]
        for base in block["models"]:
            base_cfg = config["models"][base]
            for combo in combos:
                changed = {k: v for k, v in combo.items() if base_cfg.get(k) != v}
                name = base + "".join(f"-{_name_part(k)}{_name_part(v)}" for k, v in changed.items())
                cfg = {**base_cfg, **combo}
                for opt in block.get("optimizers", [None]):
                    full = name + (f"-{opt}" if opt else "") + (f"-{block['tag']}" if block.get("tag") else "")
                    if full in models and models[full] != cfg:
                        errors.append(f"grid.{b}: generated model {full!r} clashes with a different model of that name")
                        continue
                    models[full] = cfg
                    training = {**(block.get("training") or {}), **(config["optimizers"][opt] if opt else {})}
                    variant = {"base": base, "optimizer": opt, "sweep": changed, "tag": block.get("tag")}
                    plain = {"datasets": block["datasets"], "models": [full], "variant": variant}
                    if training:
                        plain["training"] = training
                    if "seeds" in block:
                        plain["seeds"] = block["seeds"]
                    grid.append(plain)
    land = config.get("landscape")
    if land:
        trained = {(d, m, s) for blk in grid for d in blk["datasets"] for m in blk["models"]
                   for s in blk.get("seeds") or config["seeds"]}
        for name in land["models"]:
            if (land["dataset"], name, land.get("seed", 0)) not in trained:
                errors.append(f"landscape.models: {name!r} is not trained on {land['dataset']!r} with seed "
                              f"{land.get('seed', 0)} by the grid")
    for name in config.get("paper", {}).get("main_models", []):
        if name not in models:
            errors.append(f"paper.main_models: {name!r} is not a model; defined: {', '.join(sorted(models))}")
    return {**config, "models": models, "grid": grid}, errors


def _accepts(component: Any, options: dict[str, Any], skip: int) -> list[str]:
    """Option names that ``component`` does not accept (by its signature, after ``skip`` positional args)."""
    params = list(inspect.signature(component).parameters.values())[skip:]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return []
    allowed = {p.name for p in params}
    return sorted(set(options) - allowed)


def _semantic_errors(config: dict[str, Any]) -> list[str]:
    reg = _registries()
    errors = []
    for b, block in enumerate(config["grid"]):
        for kind, known in (("datasets", config["datasets"]), ("models", config["models"])):
            for name in block[kind]:
                if name not in known:
                    errors.append(
                        f"grid.{b}.{kind}: {name!r} is not defined under {kind}; defined: {', '.join(sorted(known))}"
                    )
    for name, entry in config["datasets"].items():
        options = {k: v for k, v in entry.items() if k not in ("kind", "n_train", "n_test", "n_eval")}
        if entry["kind"] == "file":
            path = Path(options.get("path") or "")
            if not options.get("path") or not path.is_file():
                errors.append(f"datasets.{name}.path: data file {str(path)!r} not found (kind: file needs a path)")
            continue
        try:  # loaders check their options when called; generated and bundled sets are cheap to build
            reg["dataset"].get(entry["kind"])(options)
        except ValueError as err:
            errors.append(f"datasets.{name}: {err}")
    for name, sampler in config["sampling"]["samplers"].items():
        knobs = {k: v for k, v in sampler.items() if k not in ("kind", "steps")}
        for bad in _accepts(reg["sampler"].get(sampler["kind"]), knobs, skip=4):
            errors.append(f"sampling.samplers.{name}: unknown option {bad!r} for sampler kind {sampler['kind']!r}")
        too_many = [s for s in sampler["steps"] if s > config["schedule"]["T"]]
        if too_many:
            errors.append(f"sampling.samplers.{name}.steps: {too_many} exceed schedule.T = {config['schedule']['T']}")
    for name, options in config["metrics"].items():
        for bad in _accepts(reg["metric"].get(name), options, skip=2):
            errors.append(f"metrics.{name}: unknown option {bad!r}")
    main = config["sampling"].get("main")
    if main is not None and main not in sampling_keys(config):
        errors.append(f"sampling.main: {main!r} is not a configured setting; allowed: {', '.join(sampling_keys(config))}")
    return errors


# --------------------------------------------------------------------------------------------------------------------
# The grid and the job specs


def sampling_keys(config: dict[str, Any]) -> list[str]:
    """Every configured sampler setting as SAMPLER_STEPS, e.g. ['ddpm_1000', 'ddim_10']."""
    return [f"{name}_{steps}" for name, s in config["sampling"]["samplers"].items() for steps in s["steps"]]


def main_setting(config: dict[str, Any]) -> str:
    """The setting of the main results table: sampling.main, else the first sampler at its largest step count."""
    main = config["sampling"].get("main")
    if main:
        return main
    name, sampler = next(iter(config["sampling"]["samplers"].items()))
    return f"{name}_{max(sampler['steps'])}"


def runs(config: dict[str, Any]) -> Iterator[tuple[str, str, int]]:
    """(dataset, model, seed) for every training job, each once, in grid order."""
    seen = set()
    for block in config["grid"]:
        for dataset in block["datasets"]:
            for model in block["models"]:
                for seed in block.get("seeds") or config["seeds"]:
                    if (dataset, model, seed) not in seen:
                        seen.add((dataset, model, seed))
                        yield dataset, model, seed


def used_datasets(config: dict[str, Any]) -> list[str]:
    """Datasets that some grid block trains on, in config order."""
    used = {d for block in config["grid"] for d in block["datasets"]}
    return [d for d in config["datasets"] if d in used]


def n_eval(config: dict[str, Any], dataset: str) -> int:
    """Number of model samples evaluated on ``dataset``, which is also the size of its data floor."""
    return config["datasets"][dataset].get("n_eval") or config["sampling"]["n_samples"]


def data_spec(config: dict[str, Any], dataset: str) -> dict[str, Any]:
    """Spec of the data job of ``dataset``."""
    entry = dict(config["datasets"][dataset])
    entry.pop("n_eval", None)
    return {"name": dataset, **entry, "n_floor": n_eval(config, dataset), "seed": config["data_seed"]}


def block_for(config: dict[str, Any], dataset: str, model: str) -> dict[str, Any]:
    """The first grid block that trains ``model`` on ``dataset`` (it sets the run's training overrides)."""
    for block in config["grid"]:
        if dataset in block["datasets"] and model in block["models"]:
            return block
    raise KeyError(f"no grid block trains model {model!r} on dataset {dataset!r}")


def training_for(config: dict[str, Any], dataset: str, model: str) -> dict[str, Any]:
    """Training settings of a run: the global ones, overridden by the first grid block that holds the pair."""
    return {**config["training"], **(block_for(config, dataset, model).get("training") or {})}


def run_spec(config: dict[str, Any], dataset: str, model: str, seed: int) -> dict[str, Any]:
    """Spec of the training job (dataset, model, seed)."""
    model_cfg = dict(config["models"][model])
    arch = model_cfg.pop("arch")
    training = training_for(config, dataset, model)
    return {
        "dataset": dataset,
        "model": model,
        "arch": arch,
        "model_cfg": model_cfg,
        "seed": int(seed),
        "method": training.pop("method"),
        "schedule": config["schedule"],
        "training": training,
        "device": config["device"],
        "threads": config["threads"],
        "variant": block_for(config, dataset, model).get("variant"),
    }


def tt_plan(config: dict[str, Any]) -> dict[str, Any]:
    """Which tensor-train outputs the config yields (they must match ``ttdm.report.tt_figures``).

    convergence: datasets where the base TT model (no sweep, no tag) is trained on the DDPM loss by ≥ 2 optimizers;
    rank: some swept TT model is trained on the DDPM loss; isolation: some run fits ε*; any: some TT run exists.
    """
    optimizers: dict[str, set] = {}
    rank = isolation = any_tt = False
    for dataset, model, _ in runs(config):
        block = block_for(config, dataset, model)
        if config["models"][model]["arch"] != "tt":
            isolation |= training_for(config, dataset, model)["method"] == "eps_star"
            continue
        any_tt = True
        variant = block.get("variant") or {}
        method = training_for(config, dataset, model)["method"]
        isolation |= method == "eps_star"
        if method != "ddpm" or variant.get("tag"):
            continue
        if variant.get("sweep"):
            rank = True
        else:
            optimizers.setdefault(dataset, set()).add(variant.get("optimizer") or model)
    conv = [d for d in used_datasets(config) if len(optimizers.get(d, ())) >= 2]
    return {"any": any_tt, "convergence": conv, "rank": rank, "isolation": isolation and any_tt}


def main_models(config: dict[str, Any]) -> list[str]:
    """Models of the main table and the per-dataset figures: paper.main_models, else every trained model."""
    trained = list(dict.fromkeys(m for _, m, _ in runs(config)))
    chosen = config.get("paper", {}).get("main_models")
    return [m for m in trained if m in chosen] if chosen else trained


def sample_spec(config: dict[str, Any], dataset: str, seed: int) -> dict[str, Any]:
    """Spec of the sampling job of one run (the model and schedule come from the run's own spec.json)."""
    return {
        "seed": int(seed),
        "n_samples": n_eval(config, dataset),
        "batch_size": config["sampling"]["batch_size"],
        "device": config["device"],
        "threads": config["threads"],
        "samplers": config["sampling"]["samplers"],
    }


def eval_spec(config: dict[str, Any], seed: int) -> dict[str, Any]:
    """Spec of a metrics job: the metrics with their options and the seed of their random projections."""
    return {"metrics": config["metrics"], "seed": int(seed) + config["data_seed"]}


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read a YAML config file, apply ``overrides`` (top-level keys) and validate it."""
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(config).__name__}")
    config.update(overrides or {})
    return validate_config(config, source=str(path))


def bench_spec(config: dict[str, Any]) -> dict[str, Any]:
    """Spec of the benchmark job: each main model (:func:`main_models`) on the first dataset it is trained on, every
    sampler setting.

    ``models`` maps a model name to ``{"arch", "model_cfg", "dataset"}``; the benchmark reads that dataset's
    meta.json (dimension, image shape) and train.npy.
    """
    models: dict[str, Any] = {}
    chosen = set(main_models(config))
    for dataset, model, _ in runs(config):
        if model not in models and model in chosen:
            model_cfg = dict(config["models"][model])
            models[model] = {"arch": model_cfg.pop("arch"), "model_cfg": model_cfg, "dataset": dataset}
    return {
        **config["bench"],
        "models": models,
        "samplers": config["sampling"]["samplers"],
        "schedule": config["schedule"],
        "batch_size": config["training"]["batch_size"],
        "lr": config["training"]["lr"],
        "device": config["device"],
        "threads": config["threads"],
        "seed": config["data_seed"],
    }


def complexity_spec(config: dict[str, Any]) -> dict[str, Any]:
    """Spec of the complexity job (``ttdm.bench.complexity``): every trained model on the first dataset it is trained
    on, with its optimizer and fitting-sample size, for FLOPs per forward and per step and peak training memory."""
    models: dict[str, Any] = {}
    for dataset, model, _ in runs(config):
        if model in models:
            continue
        model_cfg = dict(config["models"][model])
        training = training_for(config, dataset, model)
        models[model] = {"arch": model_cfg.pop("arch"), "model_cfg": model_cfg, "dataset": dataset,
                         "optimizer": training["optimizer"], "n_fit": training.get("n_fit", 20000),
                         "batch_size": training["batch_size"]}
    return {"models": models, "batch_size": config["training"]["batch_size"], "device": config["device"],
            "threads": config["threads"]}


def job_resources(config: dict[str, Any], kind: str, *, threads: int = 1, gpu: bool = False) -> dict[str, int]:
    """Cluster resources of a ``kind`` job (``resources.<kind>`` of the validated config).

    ``{"runtime": minutes, "mem_mb": MB, "cpus_per_task": n}``, cpus_per_task defaulting to the job's ``threads``;
    with ``gpu`` and ``device: cuda`` also ``{"gpu": resources.gpus}`` (the SLURM executor's ``--gpus``).  The
    workflow multiplies runtime and mem_mb by the attempt number, so a retried job gets more of both.
    """
    res = config["resources"][kind]
    out = {"runtime": int(res["runtime"]), "mem_mb": int(res["mem_mb"]),
           "cpus_per_task": int(res.get("cpus_per_task") or threads)}
    if gpu and config["device"] == "cuda" and config["resources"]["gpus"] > 0:
        out["gpu"] = int(config["resources"]["gpus"])
    return out
