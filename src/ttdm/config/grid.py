"""The grid: blocks of datasets × models × seeds, expanded (optimizers, sweeps, tags) into plain blocks and runs."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

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
    configured = [f"{name}_{steps}" for name, s in config["sampling"]["samplers"].items() for steps in s["steps"]]
    for b, block in enumerate(config["grid"]):
        for setting in block.get("settings", []):
            if setting not in configured:
                errors.append(f"grid.{b}.settings: {setting!r} is not a configured sampler setting; configured: "
                              f"{', '.join(configured)}")
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
                    for key in ("seeds", "settings", "likelihood"):
                        if key in block:
                            plain[key] = block[key]
                    grid.append(plain)
    budget_blocks, budget_errors = _budget_blocks(config, models, grid)
    errors += budget_errors
    grid += budget_blocks
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




def trilemma_errors(config: dict[str, Any], grid: list[dict[str, Any]]) -> list[str]:
    """Every dataset and model of the ``trilemma`` study is trained by the (expanded) grid, each model on one of
    the study's datasets at least; every listed setting is a configured sampler setting."""
    study = config.get("trilemma")
    if not study:
        return []
    pairs = {(d, m) for blk in grid for d in blk["datasets"] for m in blk["models"]}
    trained_models = sorted({m for _, m in pairs})
    errors = [f"trilemma.datasets: {d!r} is trained on by no grid block" for d in study["datasets"]
              if not any(pd == d for pd, _ in pairs)]
    for m in study["models"]:
        if not any((d, m) in pairs for d in study["datasets"]):
            errors.append(f"trilemma.models: {m!r} is not trained on any of {study['datasets']} by the grid; "
                          f"models it trains: {', '.join(trained_models)}")
    keys = [f"{name}_{n}" for name, s in config.get("sampling", {}).get("samplers", {}).items() for n in s["steps"]]
    errors += [f"trilemma.settings: {k!r} is not a configured setting; allowed: {', '.join(keys)}"
               for k in study.get("settings", []) if k not in keys]
    return errors


def budget_name(model: str, steps: int) -> str:
    """The generated model of the training-budget study: ``model`` trained for ``steps`` steps."""
    return f"{model}-steps{int(steps)}-budget"


def _budget_blocks(config: dict[str, Any], models: dict[str, Any],
                   grid: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Grid blocks of the ``budget`` study: for every listed (dataset, model) of the grid and budget N, the model
    NAME-stepsN-budget, trained like the grid's run but for N steps, sampled with the main setting only (none for
    the budget that equals the grid run's own steps: that run is reused)."""
    from ttdm.config.specs import main_setting

    study = config.get("budget")
    if not study:
        return [], []
    blocks, errors = [], []
    expanded = {**config, "grid": grid}
    for dataset in study["datasets"]:
        for model in study["models"]:
            try:
                base = block_for(expanded, dataset, model)
            except KeyError:
                errors.append(f"budget: model {model!r} is not trained on dataset {dataset!r} by the grid; the "
                              f"budget study retrains runs of the grid")
                continue
            main_steps = int({**config["training"], **(base.get("training") or {})}["steps"])
            for steps in study["steps"]:
                if int(steps) == main_steps:
                    continue  # the grid's own run is this budget's run (ttdm.report.studies.budget.entries)
                name = budget_name(model, steps)
                models[name] = config["models"][model]
                variant = {"base": model, "optimizer": None, "sweep": {}, "tag": "budget", "budget_steps": steps}
                blocks.append({"datasets": [dataset], "models": [name], "variant": variant,
                               "training": {**(base.get("training") or {}), "steps": int(steps)},
                               "settings": [main_setting(config)], "seeds": list(study.get("seeds") or [0])})
    return blocks, errors


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


def block_for(config: dict[str, Any], dataset: str, model: str) -> dict[str, Any]:
    """The first grid block that trains ``model`` on ``dataset`` (it sets the run's training overrides)."""
    for block in config["grid"]:
        if dataset in block["datasets"] and model in block["models"]:
            return block
    raise KeyError(f"no grid block trains model {model!r} on dataset {dataset!r}")


def training_for(config: dict[str, Any], dataset: str, model: str) -> dict[str, Any]:
    """Training settings of a run: the global ones, overridden by the first grid block that holds the pair."""
    return {**config["training"], **(block_for(config, dataset, model).get("training") or {})}


def main_models(config: dict[str, Any]) -> list[str]:
    """Models of the main table and the per-dataset figures: paper.main_models, else every trained model."""
    trained = list(dict.fromkeys(m for _, m, _ in runs(config)))
    chosen = config.get("paper", {}).get("main_models")
    return [m for m in trained if m in chosen] if chosen else trained
