"""Methods in the config: their options, the runs they need, and which sampler settings apply to which runs.

A run's training settings are the loop's keys (``ttdm.stages.train.LOOP_KEYS``, typed by the schema) and its
method's options (the method's ``Options`` dataclass).  They are checked where they are written: the global
``training``, each grid block's ``training`` and each entry of ``optimizers``, against the method that uses them, so
an error names the key the user wrote.  After the grid is expanded:

- a run's ``needs`` (e.g. ``init: mlp``) must name a model trained on the same dataset with the same seed, without
  cycles; the needed run is trained first and its spec hash enters the needing run's spec;
- a run's method must accept its model's arch (``Method.archs``), a model's arch its method (a model class's
  ``methods``: ``mixture_eps`` is the ``analytic`` method's) and its dataset (``Method.dataset_error``: the sampler
  floor needs a Gaussian mixture); ``paper.sampler_floor``, when the grid trains it, must be a model whose runs
  have nothing to train;
- a sampler setting applies to a run when the run's method provides the sampler's protocol (and, when the sampler
  lists ``methods``, the method is listed); a listed method that cannot use the sampler (ddpm_1000 on a model with
  its own 4-step chain, DDIM on a one-step model) is refused, naming ``sampling.samplers.NAME``.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Any

from ttdm.config.grid import block_for, runs, training_for, trilemma_errors
from ttdm.config.performer import performer_errors
from ttdm.config.dsno import dsno_errors
from ttdm.options import check_options, option_errors

LOOP_KEYS = ("method", "steps", "ema_decay", "lr_schedule", "warmup", "checkpoint_every", "log_every")


def _method(name: str) -> Any:
    from ttdm.methods import METHODS

    return METHODS.get(name)


def _options_part(training: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in (training or {}).items() if k not in LOOP_KEYS}


def run_training(config: dict[str, Any], dataset: str, model: str) -> dict[str, Any]:
    """The run's training keys: the global ones overridden by its grid block's (:func:`training_for`), less the global
    method options that the run's method does not declare (a block that switches to ``analytic`` does not inherit
    the global ``lr``); the loop's keys always carry over.  For methods with the same options nothing is left out."""
    training = training_for(config, dataset, model)
    block = block_for(config, dataset, model).get("training") or {}
    declared = {f.name for f in dataclasses.fields(_method(training["method"]).Options)}
    return {k: v for k, v in training.items() if k in LOOP_KEYS or k in declared or k in block}


def method_options(training: dict[str, Any]) -> Any:
    """The options instance of a run's merged ``training`` (defaults filled in)."""
    cls = _method(training["method"])
    return check_options(cls.Options, _options_part(training), "training")


def resolved_training(config: dict[str, Any], dataset: str, model: str) -> dict[str, Any]:
    """The run's loop keys and its method's options with every default filled in (what its spec records)."""
    training = run_training(config, dataset, model)
    options = dataclasses.asdict(method_options(training))
    loop = {k: training[k] for k in LOOP_KEYS if k in training}
    if not _method(training["method"]).trains:
        loop["steps"] = 0  # nothing to train: the loop writes the run's outputs at once
    return {**loop, **options}


def source_errors(config: dict[str, Any], raw_grid: list[dict[str, Any]] | None = None) -> list[str]:
    """Method options where they are written: training, grid.N.training, optimizers.NAME."""
    from ttdm.methods import METHODS

    raw_grid = config["grid"] if raw_grid is None else raw_grid
    default = config["training"].get("method", "ddpm")
    methods = {default} | {(b.get("training") or {}).get("method", default) for b in raw_grid}
    methods |= {e.get("method", default) for e in config.get("optimizers", {}).values()}
    if any(m not in METHODS for m in methods):
        return []  # the schema names the unknown method
    errors = option_errors(_method(default).Options, _options_part(config["training"]), "training")
    users: dict[str, set[str]] = {}
    for b, block in enumerate(raw_grid):
        method = (block.get("training") or {}).get("method", default)
        if block.get("training"):
            errors += option_errors(_method(method).Options, _options_part(block["training"]), f"grid.{b}.training")
        for opt in block.get("optimizers", []):
            users.setdefault(opt, set()).add(method)
    for name, entry in config.get("optimizers", {}).items():
        for method in sorted(users.get(name, {entry.get("method", default)})):
            errors += option_errors(_method(method).Options, _options_part(entry), f"optimizers.{name}")
    return list(dict.fromkeys(errors))


def needs_of(config: dict[str, Any], dataset: str, model: str) -> dict[str, str]:
    """{role: model} of the runs that the run (dataset, model, any seed) needs."""
    training = run_training(config, dataset, model)
    return _method(training["method"]).needs(method_options(training))


def inputs_of(config: dict[str, Any], dataset: str, model: str, seed: int) -> dict[str, str]:
    """{role: path} of the other files the run (dataset, model, seed) reads (``Method.inputs``: inputs of its train job)."""
    training = run_training(config, dataset, model)
    return _method(training["method"]).inputs(method_options(training), dataset, int(seed))


def _needs_errors(config: dict[str, Any]) -> list[str]:
    trained = set(runs(config))
    errors = []
    for dataset, model, seed in trained:
        for role, need in needs_of(config, dataset, model).items():
            if (dataset, need, seed) not in trained:
                errors.append(f"models.{model}: its method needs {role} = {need!r}, which the grid does not train on "
                              f"{dataset!r} with seed {seed}")
    if errors:
        return sorted(set(errors))

    def visit(node: tuple[str, str], path: tuple[str, ...]) -> list[str]:
        dataset, model = node
        if model in path:
            return [f"models.{model}: the runs it needs form a cycle: {' -> '.join(path + (model,))}"]
        needs = needs_of(config, dataset, model).values()
        return [e for need in needs for e in visit((dataset, need), path + (model,))]

    for dataset, model, _ in trained:
        errors += visit((dataset, model), ())
    return sorted(set(errors))


def _protocol(kind: str) -> str:
    from ttdm.samplers import protocol_of

    return protocol_of(kind)


def sampler_problem(config: dict[str, Any], dataset: str, model: str, name: str, steps: int) -> str | None:
    """Why sampler setting (name, steps) cannot sample the run (dataset, model), or None."""
    from ttdm.config.specs import run_spec

    sampler = config["sampling"]["samplers"][name]
    training = run_training(config, dataset, model)
    cls = _method(training["method"])
    return cls.sampler_error(method_options(training), _protocol(sampler["kind"]), steps,
                             run_spec(config, dataset, model, 0))


def settings_for(config: dict[str, Any], dataset: str, model: str) -> list[tuple[str, int]]:
    """(sampler name, steps) of every setting that applies to the run (dataset, model): see the module docstring."""
    return list(_settings_cached(_Frozen(config), dataset, model))


class _Frozen:
    """A config hashed by identity, so settings_for caches per (config object, dataset, model)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def __hash__(self) -> int:
        return id(self.config)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Frozen) and other.config is self.config


@lru_cache(maxsize=None)
def _settings_cached(frozen: _Frozen, dataset: str, model: str) -> tuple[tuple[str, int], ...]:
    config = frozen.config
    method = training_for(config, dataset, model)["method"]
    chosen = block_for(config, dataset, model).get("settings")  # a block may name its settings
    out = []
    for name, sampler in config["sampling"]["samplers"].items():
        listed = sampler.get("methods")
        if listed is not None and method not in listed:
            continue
        for steps in sampler["steps"]:
            if chosen is not None and f"{name}_{steps}" not in chosen:
                continue
            if listed is not None or sampler_problem(config, dataset, model, name, steps) is None:
                out.append((name, int(steps)))
    return tuple(out)


def _sampler_errors(config: dict[str, Any]) -> list[str]:
    from ttdm.methods import METHODS

    errors = []
    for name, sampler in config["sampling"]["samplers"].items():
        for method in sampler.get("methods") or []:
            if method not in METHODS:
                errors.append(f"sampling.samplers.{name}.methods: unknown method {method!r}; "
                              f"allowed: {', '.join(METHODS.names())}")
    seen: dict[tuple[str, str], None] = {}  # the grid's runs in config order (the examples below are stable)
    for dataset, model, _ in runs(config):
        if (dataset, model) in seen:
            continue
        seen[(dataset, model)] = None
        method = training_for(config, dataset, model)["method"]
        for name, sampler in config["sampling"]["samplers"].items():
            if method not in (sampler.get("methods") or []):
                continue
            for steps in sampler["steps"]:
                problem = sampler_problem(config, dataset, model, name, steps)
                if problem:
                    errors.append(f"sampling.samplers.{name}: cannot sample {model!r} on {dataset!r} "
                                  f"(method {method!r}) with {steps} steps: {problem}")
    applied = {setting for d, m in seen for setting in settings_for(config, d, m)}
    for name, sampler in config["sampling"]["samplers"].items():
        unused = [steps for steps in sampler["steps"] if (name, steps) not in applied]
        if unused and sampler.get("methods") is None:
            protocol = _protocol(sampler["kind"])  # the example: the first run whose method gives the protocol
            d, m = next((r for r in seen if protocol in _method(training_for(config, *r)["method"]).provides),
                        next(iter(seen)))
            why = sampler_problem(config, d, m, name, unused[0])
            errors.append(f"sampling.samplers.{name}.steps: {unused} sample no run of the grid"
                          + (f" (e.g. {m!r} on {d!r}: {why})" if why else ""))
    return errors


def method_errors(config: dict[str, Any], raw_grid: list[dict[str, Any]] | None = None) -> list[str]:
    """Every problem of the (expanded) config's methods: options, needs, sampler settings."""
    errors = source_errors(config, raw_grid)
    if errors:
        return errors
    for dataset, model, _ in runs(config):
        try:
            method_options(run_training(config, dataset, model))
        except ValueError as err:  # a combination of sources that no single source shows
            block = block_for(config, dataset, model)
            errors.append(f"grid (run {model!r} on {dataset!r}, block {block.get('datasets')}): {err}")
    return (list(dict.fromkeys(errors)) or _run_errors(config, raw_grid) or _needs_errors(config)
            or _sampler_errors(config) or trilemma_errors(config, config["grid"]) + performer_errors(config)
            + dsno_errors(config))


def _block_name(config: dict[str, Any], raw_grid: list[dict[str, Any]] | None, dataset: str, model: str) -> str:
    """``grid.N`` of the block as written that trains (dataset, model), else its datasets (a generated block)."""
    block = block_for(config, dataset, model)
    for b, raw in enumerate(raw_grid or []):
        if raw is block or raw == block:
            return f"grid.{b}"
    return f"grid (block {block.get('datasets')})"


def _run_errors(config: dict[str, Any], raw_grid: list[dict[str, Any]] | None = None) -> list[str]:
    """Each run's method against its model's arch and its dataset; ``paper.sampler_floor`` against the methods."""
    from ttdm.models import MODELS

    errors: list[str] = []
    accepted: dict[tuple[str, str], str | None] = {}

    def dataset_error(cls: Any, options: Any, name: str) -> str | None:
        key = (cls.__name__, name)
        if key not in accepted:
            accepted[key] = cls.dataset_error(options, name, config["datasets"][name])
        return accepted[key]

    methods: dict[str, set[str]] = {}
    for dataset, model in dict.fromkeys((d, m) for d, m, _ in runs(config)):
        training = run_training(config, dataset, model)
        name = training["method"]
        methods.setdefault(model, set()).add(name)
        cls, options = _method(name), method_options(training)
        arch = config["models"][model]["arch"]
        where = _block_name(config, raw_grid, dataset, model)
        if cls.archs is not None and arch not in cls.archs:
            errors.append(f"{where}: method {name!r} cannot train model {model!r} (arch {arch!r}); allowed archs: "
                          f"{', '.join(cls.archs)}")
        only = getattr(MODELS.get(arch), "methods", None)
        if only is not None and name not in only:
            errors.append(f"{where}: model {model!r} (arch {arch!r}) is trained by method {', '.join(only)} only, "
                          f"not {name!r}; set the block's training: {{method: {only[0]}}}")
        problem = dataset_error(cls, options, dataset)
        if problem:
            allowed = [d for d in config["datasets"] if dataset_error(cls, options, d) is None]
            errors.append(f"{where}: method {name!r} cannot train model {model!r} on dataset {dataset!r}: {problem}; "
                          f"allowed datasets: {', '.join(allowed) or '(none defined)'}")
    floor = (config.get("paper") or {}).get("sampler_floor")
    if floor is not None and floor in methods:  # a floor the grid does not train labels nothing (a smaller config)
        if any(_method(m).trains for m in methods[floor]):
            untrained = sorted(m for m in _all_methods() if not _method(m).trains)
            errors.append(f"paper.sampler_floor: model {floor!r} is trained (method "
                          f"{', '.join(sorted(methods[floor]))}); the sampler floor is a model of a method with "
                          f"nothing to train: {', '.join(untrained)}")
    return list(dict.fromkeys(errors))


def _all_methods() -> list[str]:
    from ttdm.methods import METHODS

    return METHODS.names()
