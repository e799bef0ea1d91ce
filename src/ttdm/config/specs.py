"""The job specs: the small dicts built from the validated config and a job's wildcards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ttdm.config.grid import block_for, main_models, n_eval, runs, training_for
from ttdm.config.methods import resolved_training
from ttdm.config.schema import ConfigError, validate_config

# Bumped when the training loop's semantics or a model's default architecture change (2: EMA warm-up, held-out
# validation rows, the solver's setup in wall_s; 3: the learning-rate schedule, the linear skip of resnet and unet;
# 4: foreach Adam, gradient clipping and EMA, equal in exact arithmetic but not bit for bit), so runs trained before
# are retrained: it is part of every run's spec.
LOOP_VERSION = 4

# --------------------------------------------------------------------------------------------------------------------
# The grid and the job specs


def sampling_keys(config: dict[str, Any]) -> list[str]:
    """Every configured sampler setting as SAMPLER_STEPS, e.g. ['ddpm_1000', 'ddim_10']."""
    return [f"{name}_{steps}" for name, s in config["sampling"]["samplers"].items() for steps in s["steps"]]


def run_settings(config: dict[str, Any], dataset: str, model: str) -> list[str]:
    """The settings (SAMPLER_STEPS) that sample the run (dataset, model): ttdm.config.methods.settings_for."""
    from ttdm.config.methods import settings_for

    return [f"{name}_{steps}" for name, steps in settings_for(config, dataset, model)]


def split_setting(setting: str) -> tuple[str, int]:
    """'ddim_20' -> ('ddim', 20): a setting is SAMPLER_STEPS, the sampler's name itself may hold '_'."""
    name, _, steps = setting.rpartition("_")
    if not name or not steps.isdigit():
        raise ValueError(f"sampling setting {setting!r} is not SAMPLER_STEPS (e.g. ddim_20)")
    return name, int(steps)


def main_setting(config: dict[str, Any]) -> str:
    """The setting of the main results table: sampling.main, else the first sampler at its largest step count."""
    main = config["sampling"].get("main")
    if main:
        return main
    name, sampler = next(iter(config["sampling"]["samplers"].items()))
    return f"{name}_{max(sampler['steps'])}"


def data_spec(config: dict[str, Any], dataset: str) -> dict[str, Any]:
    """Spec of the data job of ``dataset``."""
    entry = dict(config["datasets"][dataset])
    entry.pop("n_eval", None)
    return {"name": dataset, **entry, "n_floor": n_eval(config, dataset), "seed": config["data_seed"]}


def run_spec(config: dict[str, Any], dataset: str, model: str, seed: int) -> dict[str, Any]:
    """Spec of the training job (dataset, model, seed)."""
    from ttdm.config.methods import needs_of
    from ttdm.io import spec_hash

    model_cfg = dict(config["models"][model])
    arch = model_cfg.pop("arch")
    training = resolved_training(config, dataset, model)
    needs = {role: {"model": need, "spec_hash": spec_hash(run_spec(config, dataset, need, seed))}
             for role, need in needs_of(config, dataset, model).items()}
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
        "needs": needs,
        "loop_version": LOOP_VERSION,
    }


PIXEL_RANGES = {"digits": (-1.0, 1.0)}  # dataset kinds whose rows are pixels in a known range (ttdm.data.digits)


def sample_spec(config: dict[str, Any], dataset: str, seed: int, setting: str) -> dict[str, Any]:
    """Spec of the sampling job of one run and one setting (the model and schedule come from the run's model.pt).

    It holds that setting's sampler only, so adding a setting to the config changes no existing job's spec.  For a
    dataset of :data:`PIXEL_RANGES` (unless ``sampling.clip_x0`` is false) it holds ``clip_x0``, the range a
    denoiser's x̂_0 is clipped to (:func:`ttdm.samplers.clip_x0`).
    """
    name, steps = split_setting(setting)
    sampler = dict(config["sampling"]["samplers"][name])
    kind = sampler.pop("kind")
    knobs = {k: v for k, v in sampler.items() if k not in ("steps", "methods")}
    clip = PIXEL_RANGES.get(config["datasets"][dataset]["kind"]) if config["sampling"].get("clip_x0", True) else None
    return {**({"clip_x0": list(clip)} if clip else {}),
        "seed": int(seed),
        "setting": setting,
        "sampler": name,
        "kind": kind,
        "steps": steps,
        "knobs": knobs,
        "n_samples": n_eval(config, dataset),
        "batch_size": config["sampling"]["batch_size"],
        "device": config["device"],
        "threads": config["threads"],
    }


def likelihood_spec(config: dict[str, Any], dataset: str | None = None, model: str | None = None) -> dict[str, Any]:
    """Spec of the likelihood jobs (``ttdm.stages.likelihood``): the ODE solver's settings, the data seed that picks
    the test rows and the probes, and the schedule (for the mixtures' floor); for a run (``dataset``, ``model``),
    ``ode``: False when its grid block asks for the variational bound only (``likelihood: elbo``)."""
    spec = {**config["likelihood"], "seed": config["data_seed"], "schedule": config["schedule"],
            "device": config["device"], "threads": config["threads"]}
    if dataset is not None and model is not None:
        spec["ode"] = block_for(config, dataset, model).get("likelihood", True) != "elbo"
    return spec


def likelihood_runs(config: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(dataset, model, seed) of every run whose method provides a denoiser on the data (not latents), except the runs
    of grid blocks with ``likelihood: false`` (none without a likelihood block; ``likelihood: elbo`` runs have one)."""
    from ttdm.methods import METHODS

    if not config.get("likelihood"):
        return []
    return [(d, m, s) for d, m, s in runs(config)
            if block_for(config, d, m).get("likelihood", True) is not False
            and "denoiser" in METHODS.get(training_for(config, d, m)["method"]).provides
            and METHODS.get(training_for(config, d, m)["method"]).data_likelihood]


def default_prior(arch: str) -> str | None:
    """The default of architecture ``arch``'s ``prior`` option (None without one; it imports the models, i.e. torch)."""
    from ttdm.models import MODELS
    from ttdm.options import fields_of

    options = MODELS.options(arch)
    field = fields_of(options).get("prior") if options is not None else None
    return str(field[2]) if field is not None else None


def arch_priors(config: dict[str, Any]) -> dict[str, str | None]:
    """{arch: :func:`default_prior`} for every architecture of the config's models."""
    return {arch: default_prior(arch) for arch in sorted({m["arch"] for m in config["models"].values()})}


def classifier_datasets(config: dict[str, Any]) -> list[str]:
    """The datasets that have a feature classifier (``classifier.datasets``)."""
    return list((config.get("classifier") or {}).get("datasets") or [])


def classifier_spec(config: dict[str, Any]) -> dict[str, Any]:
    """Spec of a classifier job (ttdm.stages.classifier): its options, the data seed and the threads."""
    options = {k: v for k, v in (config.get("classifier") or {}).items() if k != "datasets"}
    return {"options": options, "seed": config["data_seed"], "threads": config.get("threads", 1)}


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

    ``models`` maps a model name to ``{"arch", "model_cfg", "dataset", "batch_size", "lr"}``: its training batch and
    learning rate on that dataset (the digits U-Net trains at its own batch, not the config's default); the
    benchmark reads that dataset's meta.json (dimension, image shape).
    """
    models: dict[str, Any] = {}
    chosen = set(main_models(config))
    for dataset, model, _ in runs(config):
        if model not in models and model in chosen:
            model_cfg = dict(config["models"][model])
            training = training_for(config, dataset, model)  # merged keys only: a dry run imports no torch
            models[model] = {"arch": model_cfg.pop("arch"), "model_cfg": model_cfg, "dataset": dataset,
                             "batch_size": int(training.get("batch_size", config["training"].get("batch_size", 256))),
                             "lr": float(training.get("lr", config["training"].get("lr", 1e-3)))}
    return {
        **config["bench"],
        "models": models,
        "samplers": config["sampling"]["samplers"],
        "schedule": config["schedule"],
        "batch_size": config["training"].get("batch_size", 256),
        "lr": config["training"].get("lr", 1e-3),
        "device": config["device"],
        "threads": config["threads"],
        "seed": config["data_seed"],
    }


def complexity_spec(config: dict[str, Any]) -> dict[str, Any]:
    """Spec of the complexity job (``ttdm.stages.complexity``): every trained model on the first dataset it is trained
    on, with its own resolved training (optimizer, batch size, fitting-sample size, ALS engine and ridge), for FLOPs
    per forward and per step and peak training memory of what its training runs.  Models whose method has nothing to
    train (``analytic``: the sampler floor, no parameters) are left out, and so are methods whose parts are not the
    registry model (a GAN's generator and discriminator): its FLOPs would describe another network."""
    from ttdm.methods import METHODS

    models: dict[str, Any] = {}
    for dataset, model, _ in runs(config):
        if model in models:
            continue
        model_cfg = dict(config["models"][model])
        training = resolved_training(config, dataset, model)
        method = METHODS.get(training["method"])
        if not method.trains or "denoiser" not in method.provides or not method.data_likelihood:
            continue  # nothing trained, not the registry model, or a model of latents (not the data's D)
        optimizer = training.get("optimizer", "adam")
        models[model] = {"arch": model_cfg.pop("arch"), "model_cfg": model_cfg, "dataset": dataset,
                         "optimizer": optimizer, "n_fit": training.get("n_fit", 20000),
                         "batch_size": training.get("batch_size", 256)}
        if optimizer == "als":
            models[model].update(engine=training.get("engine", "auto"), lam=training.get("lam"))
    return {"models": models, "device": config["device"], "threads": config["threads"]}


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
