"""Checks of every component's options (datasets, samplers, metrics) that a JSON schema cannot express."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

def _accepts(component: Any, options: dict[str, Any], skip: int) -> list[str]:
    """Option names that ``component`` does not accept (by its signature, after ``skip`` positional args)."""
    params = list(inspect.signature(component).parameters.values())[skip:]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return []
    allowed = {p.name for p in params}
    return sorted(set(options) - allowed)


def component_errors(config: dict[str, Any]) -> list[str]:
    """Grid names defined, dataset, sampler and metric options accepted, the main setting configured."""
    from ttdm.config.schema import registries
    from ttdm.config.specs import sampling_keys

    reg = registries()
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
        knobs = {k: v for k, v in sampler.items() if k not in ("kind", "steps", "methods")}
        for bad in _accepts(reg["sampler"].get(sampler["kind"]), knobs, skip=4):
            errors.append(f"sampling.samplers.{name}: unknown option {bad!r} for sampler kind {sampler['kind']!r}")
    for name, options in config["metrics"].items():
        for bad in _accepts(reg["metric"].get(name), options, skip=2):
            errors.append(f"metrics.{name}: unknown option {bad!r}")
    main = config["sampling"].get("main")
    if main is not None and main not in sampling_keys(config):
        errors.append(f"sampling.main: {main!r} is not a configured setting; allowed: {', '.join(sampling_keys(config))}")
    return errors


