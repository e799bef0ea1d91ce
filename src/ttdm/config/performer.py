"""Checks of the ``performer`` block that the schema cannot make: its runs exist in the grid and have the right
attention (the Performer study, ``ttdm.report.studies.performer``)."""

from __future__ import annotations

import os
from typing import Any

ROLES = ("softmax", "performer")  # the attention of performer.models[0] and performer.models[1]


def attention_of(model_cfg: dict[str, Any]) -> str:
    """The attention of a U-Net model entry: its ``attention`` option (default softmax; the booleans of configs
    written before FAVOR+ mean softmax and none)."""
    value = model_cfg.get("attention", "softmax")
    return {True: "softmax", False: "none"}.get(value, value) if isinstance(value, bool) else str(value)


def performer_errors(config: dict[str, Any]) -> list[str]:
    """Every problem of ``performer`` in an expanded config, each naming its key: both models are U-Nets trained on
    the study's dataset with its seed by the grid and sampled at the main setting, the first with softmax attention
    and the second with FAVOR+ (``performer``); ``explicit_max`` ≤ ``lengths_max``; each ``device_benchmarks`` folder
    holds the benchmark's attention.csv and attention_fit.csv."""
    from ttdm.config.methods import settings_for
    from ttdm.config.specs import main_setting

    study = config.get("performer")
    if not study:
        return []
    errors = []
    if study.get("explicit_max", 0) > study.get("lengths_max", 0):
        errors.append(f"performer.explicit_max: {study['explicit_max']} must be ≤ performer.lengths_max "
                      f"{study['lengths_max']}")
    for i, folder in enumerate(study.get("device_benchmarks", [])):
        missing = [n for n in ("attention.csv", "attention_fit.csv") if not os.path.isfile(os.path.join(folder, n))]
        if missing:
            errors.append(f"performer.device_benchmarks[{i}]: {folder!r} has no {' or '.join(missing)} (a folder "
                          f"written by scripts/attention_bench.py --results, relative to the working directory "
                          f"{os.getcwd()})")
    dataset, seed = study["dataset"], study.get("seed", 0)
    trained = {(d, m, s) for block in config["grid"] for d in block["datasets"] for m in block["models"]
               for s in block.get("seeds") or config["seeds"]}
    for model, role in zip(study["models"], ROLES):
        entry = config["models"].get(model)
        if entry is None:
            errors.append(f"performer.models: {model!r} is not a model; defined: {', '.join(sorted(config['models']))}")
            continue
        if entry.get("arch") != "unet":
            errors.append(f"performer.models: {model!r} has arch {entry.get('arch')!r}; the study compares U-Nets "
                          f"(arch unet)")
        elif attention_of(entry) != role:
            errors.append(f"performer.models: {model!r} has attention {attention_of(entry)!r}; the "
                          f"{'first' if role == 'softmax' else 'second'} model must have attention {role!r}")
        if (dataset, model, seed) not in trained:
            errors.append(f"performer.models: {model!r} is not trained on {dataset!r} with seed {seed} by the grid "
                          f"(performer.dataset, performer.seed)")
        elif main_setting(config) not in [f"{name}_{steps}" for name, steps in settings_for(config, dataset, model)]:
            errors.append(f"performer.models: {model!r} on {dataset!r} is not sampled at the main setting "
                          f"{main_setting(config)!r} (sampling.main), where the study compares the two models")
    return errors
