"""The grid of runs at a glance, from the validated config: how many networks and TT models, a compact dataset ×
model table for the setup section, and the complete per-model settings for the appendix.

A grid block of the validated config lists expanded model names (``tt-rank8-rgd``) with their ``variant`` (base
model, optimizer, sweep, tag), its ``training`` overrides and, optionally, its own ``seeds``.
"""

from __future__ import annotations

from typing import Any

from ttdm.report.claims import tt, words
from ttdm.report.tables import booktabs, tex_escape


def _kv(params: dict[str, Any]) -> str:
    return ", ".join(f"{tex_escape(k)} = {tex_escape(v)}" for k, v in params.items())


def grid_models(config: dict[str, Any]) -> list[dict[str, Any]]:
    """One record per trained model (first block that lists it): name, base, arch, optimizer, sweep, tag,
    training overrides (beyond the named optimizer's settings; logging left out), datasets and seeds (each in
    config order, over every block that lists the model)."""
    out: dict[str, dict[str, Any]] = {}
    for block in config.get("grid", []):
        variant = block.get("variant") or {}
        seeds = list(block.get("seeds") or config.get("seeds", []))
        opt = (config.get("optimizers") or {}).get(variant.get("optimizer") or "", {})
        training = {k: v for k, v in (block.get("training") or {}).items()
                    if opt.get(k, object()) != v and k not in ("log_every", "checkpoint_every")}
        for m in block["models"]:
            base = variant.get("base") or m
            spec = config.get("models", {}).get(m) or config.get("models", {}).get(base) or {}
            rec = out.setdefault(m, {"name": m, "base": base, "arch": spec.get("arch", "?"),
                                     "optimizer": variant.get("optimizer"), "sweep": dict(variant.get("sweep") or {}),
                                     "tag": variant.get("tag"), "training": training,
                                     "datasets": [], "seeds": []})
            rec["datasets"] = list(dict.fromkeys(rec["datasets"] + list(block["datasets"])))
            rec["seeds"] = sorted(set(rec["seeds"]) | set(seeds))
    return list(out.values())


def counts(config: dict[str, Any]) -> dict[str, int]:
    """networks: trained models that are not TTs, variants or the sampler floor (``paper.sampler_floor``); tt_models:
    trained TT models (every rank/basis/optimizer variant); variants: other variants of networks (e.g. fitted to ε*);
    runs; datasets."""
    models = grid_models(config)
    runs = sum(len(m["datasets"]) * len(m["seeds"]) for m in models)
    floor = (config.get("paper") or {}).get("sampler_floor")  # the exact ε*: nothing learned, not a network
    nets = [m for m in models if m["arch"] != "tt" and m["name"] == m["base"] and m["name"] != floor]
    return {"networks": len(nets), "tt_models": sum(m["arch"] == "tt" for m in models),
            "network_variants": sum(m["arch"] != "tt" and m["name"] != m["base"] for m in models), "runs": runs,
            "datasets": len({d for m in models for d in m["datasets"]}),
            "min_seeds": min((len(m["seeds"]) for m in models), default=0),
            "max_seeds": max((len(m["seeds"]) for m in models), default=0)}


def grid_table(config: dict[str, Any]) -> str | None:
    """Datasets (rows) × base models (columns): the number of runs, and in parentheses the number of models where
    several variants of the base model train on that dataset ("--": not trained there)."""
    models = grid_models(config)
    if not models:
        return None
    bases = list(dict.fromkeys(m["base"] for m in models))
    datasets = list(dict.fromkeys(d for m in models for d in m["datasets"]))
    rows = []
    for ds in datasets:
        row = [tt(ds)]
        for b in bases:
            here = [m for m in models if m["base"] == b and ds in m["datasets"]]
            n_runs = sum(len(m["seeds"]) for m in here)
            row.append("--" if not here else f"${n_runs}$" + (f" (${len(here)}$)" if len(here) > 1 else ""))
        rows.append(row)
    return booktabs(["Dataset"] + [tt(b) for b in bases], rows, align="l" + "c" * len(bases))


def runs_table(config: dict[str, Any]) -> str | None:
    """Every trained model with its settings: base, optimizer, swept hyper-parameters, tag, training overrides,
    datasets and seeds (for the appendix)."""
    models = grid_models(config)
    if not models:
        return None
    all_ds = list(dict.fromkeys(d for m in models for d in m["datasets"]))
    rows = []
    for m in models:
        ds = m["datasets"]
        ds_text = "all" if ds == all_ds else (words([tt(d) for d in ds]) if len(ds) <= 3 else f"${len(ds)}$ sets")
        rows.append([tt(m["name"]), tex_escape(m["arch"]), tt(m["optimizer"]) if m["optimizer"] else "--",
                     _kv(m["sweep"]) or "--", _kv(m["training"]) or "--", ds_text,
                     ", ".join(str(s) for s in m["seeds"])])
    return booktabs(["Model", "Arch.", "Optimizer", "Swept", "Training overrides", "Datasets", "Seeds"], rows,
                    align="lllllll")
