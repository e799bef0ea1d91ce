"""Checks of every component's options that a JSON schema cannot express: each names the config key it is about.

Every registered component declares its options as a dataclass (:mod:`ttdm.options`), so the options written in the
config are checked against the declaration, without building anything: datasets (``datasets.NAME.KEY``), models
(``models.NAME.KEY``) and the values a grid block sweeps (``grid.N.sweep.KEY``), samplers
(``sampling.samplers.NAME.KEY``), metrics (``metrics.NAME.KEY``) and the noise schedule (``schedule.KEY``).  A
user's data file (``kind: file``) is read here too, so a missing file, a table that is not (N, D) numbers or a bad
delimiter is reported with the file and the key before any job starts, not by the data job.  A component whose kind
is unknown is left to the schema's message.
"""

from __future__ import annotations

import itertools
from typing import Any

from ttdm.options import NoOptions, option_errors
from ttdm.registry import Registry

DATASET_KEYS = ("kind", "n_train", "n_test", "n_eval")  # the data stage's keys: the rest are the loader's options
SAMPLER_KEYS = ("kind", "steps", "methods")  # the workflow's keys: the rest are the sampler's knobs
MIN_TRAIN = 2  # train rows a user's table must leave after the test and floor rows (ttdm.stages.data)


def component_errors(config: dict[str, Any]) -> list[str]:
    """Grid names defined; dataset, model, swept, sampler, metric and schedule options valid; main setting known."""
    from ttdm.config.schema import registries

    reg = registries()
    errors = _grid_name_errors(config)
    errors += _dataset_errors(config, reg["dataset"])
    errors += _model_errors(config, reg["model"])
    errors += _sweep_errors(config, reg["model"])
    errors += _sampler_errors(config, reg["sampler"])
    errors += _metric_errors(config, reg["metric"])
    errors += _schedule_errors(config, reg["schedule"])
    errors += _classifier_errors(config)
    return list(dict.fromkeys(errors + _main_errors(config)))


LABELLED_KINDS = ("digits",)  # dataset kinds whose rows carry class labels (ttdm.data.base.Dataset.labels)


def _classifier_errors(config: dict[str, Any]) -> list[str]:
    """Every classifier dataset is a defined, labelled image dataset; the other keys are ClassifierOptions."""
    from ttdm.analysis.classifier import ClassifierOptions

    section = config.get("classifier")
    if not isinstance(section, dict):
        return []
    datasets = _entries(config, "datasets")
    errors = []
    for name in section.get("datasets") or []:
        if name not in datasets:
            errors.append(f"classifier.datasets: {name!r} is not defined under datasets; "
                          f"defined: {', '.join(sorted(datasets))}")
        elif datasets[name].get("kind") not in LABELLED_KINDS:
            errors.append(f"classifier.datasets: {name!r} is of kind {datasets[name].get('kind')!r}, which has no "
                          f"class labels; labelled kinds: {', '.join(LABELLED_KINDS)}")
    options = {k: v for k, v in section.items() if k != "datasets"}
    return errors + option_errors(ClassifierOptions, options, "classifier")


def options_errors(registry: Registry, kind: Any, values: dict[str, Any], where: str) -> list[str]:
    """The problems of ``values`` for component ``kind`` of ``registry``, each naming ``where.KEY``.

    An unknown kind gives none (the schema names it); a component that declares no options takes none.
    """
    if not isinstance(kind, str) or kind not in registry:
        return []
    return option_errors(registry.options(kind) or NoOptions, values, where)


def _entries(config: dict[str, Any], key: str) -> dict[str, dict[str, Any]]:
    """The mapping ``config[key]`` without the entries that are not mappings (the schema reports those)."""
    section = config.get(key)
    return {n: e for n, e in section.items() if isinstance(e, dict)} if isinstance(section, dict) else {}


def _blocks(config: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    grid = config.get("grid")
    return [(b, block) for b, block in enumerate(grid) if isinstance(block, dict)] if isinstance(grid, list) else []


def _grid_name_errors(config: dict[str, Any]) -> list[str]:
    errors = []
    for b, block in _blocks(config):
        for kind in ("datasets", "models"):
            known = _entries(config, kind)
            for name in block.get(kind) or []:
                if isinstance(name, str) and name not in known:
                    errors.append(f"grid.{b}.{kind}: {name!r} is not defined under {kind}; "
                                  f"defined: {', '.join(sorted(known))}")
    return errors


# --------------------------------------------------------------------------------------------------------------------
# Datasets


def _dataset_errors(config: dict[str, Any], datasets: Registry) -> list[str]:
    errors = []
    for name, entry in _entries(config, "datasets").items():
        options = {k: v for k, v in entry.items() if k not in DATASET_KEYS}
        where = f"datasets.{name}"
        problems = options_errors(datasets, entry.get("kind"), options, where)
        if not problems and entry.get("kind") == "file":
            problems = _file_errors(config, name, entry, options)
        errors += problems
    return errors


def _file_errors(config: dict[str, Any], name: str, entry: dict[str, Any], options: dict[str, Any]) -> list[str]:
    """Read a user's table as the data job will: a missing or unreadable file, or too few rows, names the file."""
    from ttdm.data.files import read_table

    path, delimiter = options["path"], options.get("delimiter", ",")
    try:
        table = read_table(path, delimiter=delimiter)
    except OSError as err:
        return [f"datasets.{name}.path: {err}"]
    except ValueError as err:  # a table that is not (N, D) finite numbers, as read with the delimiter
        csv = path.lower().endswith(".csv")
        how = f" (read with delimiter {delimiter!r}: datasets.{name}.delimiter)" if csv else ""
        return [f"datasets.{name}.path: {err}{how}"]
    n_test = entry.get("n_test", 1000)
    n_floor = entry.get("n_eval") or (config.get("sampling") or {}).get("n_samples", 1000)
    if isinstance(n_test, int) and isinstance(n_floor, int) and len(table) < n_test + n_floor + MIN_TRAIN:
        return [f"datasets.{name}: {path} has {len(table)} rows, too few for n_test = {n_test} + n_eval = {n_floor} "
                f"(the floor) + at least {MIN_TRAIN} train rows; lower datasets.{name}.n_test or n_eval"]
    return []


# --------------------------------------------------------------------------------------------------------------------
# Models and the values a grid block sweeps


def _model_options(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != "arch"}


def _model_errors(config: dict[str, Any], models: Registry) -> list[str]:
    return [e for name, entry in _entries(config, "models").items()
            for e in options_errors(models, entry.get("arch"), _model_options(entry), f"models.{name}")]


def _sweep_errors(config: dict[str, Any], models: Registry) -> list[str]:
    """Every combination of swept values on every base model of its block, named ``grid.N.sweep.KEY``.

    A base model whose own options are wrong is skipped (``models.NAME`` names those), so every error here is
    about a swept value, or about a swept value together with the base model's options (a basis and its degree).
    """
    defined = _entries(config, "models")
    errors = []
    for b, block in _blocks(config):
        sweep = block.get("sweep")
        if not isinstance(sweep, dict) or not all(isinstance(v, list) for v in sweep.values()):
            continue
        for base in block.get("models") or []:
            entry = defined.get(base) if isinstance(base, str) else None
            if entry is None or options_errors(models, entry.get("arch"), _model_options(entry), "base"):
                continue
            for values in itertools.product(*sweep.values()):
                combo = {**_model_options(entry), **dict(zip(sweep, values))}
                problems = options_errors(models, entry["arch"], combo, f"grid.{b}.sweep")
                errors += [f"{p} (model {base!r})" for p in problems]
    return list(dict.fromkeys(errors))


# --------------------------------------------------------------------------------------------------------------------
# Samplers, metrics, the schedule, the main setting


def _sampler_errors(config: dict[str, Any], samplers: Registry) -> list[str]:
    entries = _entries(config.get("sampling") or {}, "samplers")
    return [e for name, sampler in entries.items()
            for e in options_errors(samplers, sampler.get("kind"),
                                    {k: v for k, v in sampler.items() if k not in SAMPLER_KEYS},
                                    f"sampling.samplers.{name}")]


def _metric_errors(config: dict[str, Any], metrics: Registry) -> list[str]:
    section = config.get("metrics")
    if not isinstance(section, dict):
        return []
    return [e for name, options in section.items()
            for e in options_errors(metrics, name, {} if options is None else options, f"metrics.{name}")]


def _schedule_errors(config: dict[str, Any], schedules: Registry) -> list[str]:
    schedule = config.get("schedule")
    if not isinstance(schedule, dict):
        return []
    options = {k: v for k, v in schedule.items() if k != "kind"}
    return options_errors(schedules, schedule.get("kind"), options, "schedule")


def _main_errors(config: dict[str, Any]) -> list[str]:
    from ttdm.config.specs import sampling_keys

    main = (config.get("sampling") or {}).get("main")
    if main is None:
        return []
    keys = sampling_keys(config)
    return [] if main in keys else [f"sampling.main: {main!r} is not a configured setting; allowed: {', '.join(keys)}"]
