"""Schema validation of the workflow configuration, with defaults filled in (workflow/schemas/config.schema.yaml).

``x-registry: NAME`` fields take their allowed values from ttdm's NAME registry when the schema is loaded.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators

from ttdm.registry import Registry

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A configuration that cannot run; the message lists every problem found."""


def registries() -> dict[str, Registry]:
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
    all_registries = registries()

    def fill(node: Any) -> None:
        if isinstance(node, dict):
            if "x-registry" in node:
                node["enum"] = all_registries[node["x-registry"]].names()
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
    config: dict[str, Any],
    *,
    source: str = "config",
    schema_path: str | Path = SCHEMA_PATH,
    cache_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Return a completed copy of ``config`` or raise ConfigError listing every problem with its key path.

    With ``cache_dir`` (the workflow passes ``.snakemake/ttdm``) a valid config's result is kept there, and the same
    inputs return it without importing the registries (torch): :mod:`ttdm.config.cache` says what "the same" means.
    A config with errors is never stored.
    """
    from ttdm.config import cache

    path = cache.entry_path(config, schema_path, cache_dir) if cache_dir is not None else None
    cached = cache.read(path)
    if cached is not None:
        return cached
    result = _validate(config, source=source, schema_path=schema_path)
    cache.write(path, result)
    return result


def _validate(config: dict[str, Any], *, source: str, schema_path: str | Path) -> dict[str, Any]:
    config = copy.deepcopy(config)
    schema = load_schema(schema_path)
    errors = []
    for err in sorted(_DefaultFillingValidator(schema).iter_errors(config), key=lambda e: list(e.absolute_path)):
        where = _key_path(err.absolute_path)
        if err.validator == "propertyNames":
            # the message of a bad name is about the name, not the value
            where = f"{where}: key {err.instance!r}"
        errors.append(f"{where}: {err.message}")
    # the components' and methods' own options are checked even when the schema found problems elsewhere, so that
    # every error is reported at once; a key the schema already refused is not reported twice, and a part too broken
    # to check is left to the schema's messages
    from ttdm.config.components import component_errors
    from ttdm.config.methods import method_errors, source_errors

    refused = {e.split(": ", 1)[0] for e in errors}
    for check in (component_errors, source_errors):
        try:
            errors += [e for e in check(config) if e not in errors and e.split(": ", 1)[0] not in refused]
        except (KeyError, TypeError, AttributeError, ValueError):
            if not errors:
                raise
    raw_grid = config.get("grid")
    if not errors:
        from ttdm.config.grid import expand_grid

        config, errors = expand_grid(config)
    if not errors:
        errors = method_errors(config, raw_grid)
    if errors:
        raise ConfigError(f"{source} is not valid:\n  - " + "\n  - ".join(errors))
    return config
