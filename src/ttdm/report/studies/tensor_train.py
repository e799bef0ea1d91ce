"""The tensor-train section (paper section "Tensor-train noise models"; seed 000).

Commands: ``ttdm tt-tables`` writes tt_runs.csv, tt_targets.csv and the tables of :data:`ttdm.report.tt_records.TABLES`
(with .tex and _display.csv where they have rows); ``ttdm tt-figures`` draws tt_convergence_{dataset}, tt_rank and
tt_isolation where the runs give them; ``ttdm landscape-figure`` draws landscape.pdf when ``landscape`` is configured.
Which tables have rows and which figures exist follows from the runs' specs alone, so :func:`outputs` applies the
writers' own selections (:func:`ttdm.report.tt_records.layout`) to the specs the config gives its runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from ttdm import config as cfg
from ttdm.io import load_json
from ttdm.report import tt_claims, tt_targets
from ttdm.report.files import PaperFiles, by_dataset, read_table, run_key
from ttdm.report.studies import STUDIES, Study
from ttdm.report.per_run import collect_likelihood
from ttdm.report.tables import booktabs, collect_floors, tex_escape
from ttdm.report.tt_records import BUDGET_TAG, TABLES, collect_runs, is_tt, layout, selections, spec_frame

LANDSCAPE_FIGURE = "results/figures/landscape.pdf"


def run_specs(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The spec of every run of the config (what its spec.json holds)."""
    return [cfg.run_spec(config, d, m, s) for d, m, s in cfg.runs(config)]


def outputs(config: dict[str, Any]) -> dict[str, list[str]]:
    runs = spec_frame(run_specs(config), cfg.arch_priors(config))
    out: dict[str, list[str]] = {"tt-tables": [], "tt-figures": [], "landscape-figure": []}
    if (runs["arch"] == "tt").any():
        lay = layout(runs)
        out["tt-tables"] = (["results/tables/tt_runs.csv", "results/tables/tt_targets.csv"]
                            + [f"results/tables/tt_{name}.csv" for name in TABLES]
                            + [f"results/tables/tt_{name}{suffix}" for name in lay["tables"]
                               for suffix in (".tex", "_display.csv")])
        out["tt-figures"] = ([f"results/figures/tt_convergence_{d}.pdf" for d in lay["convergence"]]
                             + (["results/figures/tt_rank.pdf"] if lay["rank"] else [])
                             + (["results/figures/tt_isolation.pdf"] if lay["isolation"] else []))
    if config.get("landscape"):
        out["landscape-figure"] = [LANDSCAPE_FIGURE]
    return out


def landscape_files(config: dict[str, Any]) -> list[str]:
    """The loss-landscape CSVs the landscape figure draws, in the configured order (``ttdm landscape``)."""
    land = config.get("landscape")
    if not land:
        return []
    return [f"results/landscape/{land['dataset']}/{m}/{land.get('seed', 0)}.csv" for m in land["models"]]


def inputs(config: dict[str, Any]) -> list[str]:
    """The section also reads the landscapes themselves (CSV and the .json record beside each)."""
    return [f for csv in landscape_files(config) for f in (csv, csv[: -len(".csv")] + ".json")]


def convergence_losses(config: dict[str, Any]) -> list[str]:
    """The loss.csv files ``ttdm tt-figures`` reads: those of the runs the convergence figures draw."""
    runs = spec_frame(run_specs(config), cfg.arch_priors(config))
    conv = selections(runs)["convergence"]
    return [f"results/runs/{r.dataset}/{r.model}/{r.seed}/loss.csv" for r in conv.itertuples(index=False)]


def likelihood_files(config: dict[str, Any]) -> list[str]:
    """The test-NLL files ``ttdm tt-tables`` reads (results/likelihood/{dataset}/{model}/{seed}.csv): those of every
    run with a likelihood (``ttdm.config.likelihood_runs``) on a dataset with TT runs, but the training-budget runs
    (no TT table reads them); none without a ``likelihood`` block."""
    runs = spec_frame(run_specs(config), cfg.arch_priors(config))
    tt_sets = set(runs.loc[is_tt(runs), "dataset"])
    budget = {(r.dataset, r.model) for r in runs.itertuples(index=False) if r.tag == BUDGET_TAG}
    return [f"results/likelihood/{d}/{m}/{s}.csv" for d, m, s in cfg.likelihood_runs(config)
            if d in tt_sets and (d, m) not in budget]


def collect(config: dict[str, Any], train_files: Iterable[Path], loss_files: Iterable[Path], metrics_csv: Path,
            floor_files: Iterable[Path], meta_files: Iterable[Path],
            nll_files: Iterable[Path] = ()) -> pd.DataFrame:
    """The run records (:func:`ttdm.report.tt_records.collect_runs`) of the runs whose train.json files are given,
    each with the spec the config gives it (the spec its training job was given and saved as spec.json) and its
    test NLL from ``nll_files`` (:func:`likelihood_files`; NaN for a run without one). Every run needs its loss.csv
    among ``loss_files`` (read for the convergence table and the targets)."""
    train_files = [Path(f) for f in train_files]
    have_loss = {Path(f).parent for f in loss_files}
    lacking = [str(f.parent) for f in train_files if f.parent not in have_loss]
    if lacking:
        raise ValueError(f"no loss.csv given for the runs {', '.join(lacking)}")
    dims = {ds: load_json(f)["dim"] for ds, f in by_dataset(meta_files).items()}
    records = [(cfg.run_spec(config, *run_key(f)), load_json(f), f.parent) for f in train_files]
    main = cfg.split_setting(cfg.main_setting(config))
    likelihood, _ = collect_likelihood(nll_files)
    return collect_runs(records, pd.read_csv(metrics_csv), collect_floors(floor_files), main, dims, likelihood)


def context(files: PaperFiles, config: dict[str, Any]) -> dict[str, Any]:
    """The section's context ({"tt": ...}): tables (LaTeX), figures, claims and targets; {"tt": {}} when there are
    no TT runs."""
    runs = files.csv("tt_runs")
    if runs is None or not (runs["arch"] == "tt").any():
        return {"tt": {}}
    comp, conv = files.csv("tt_comparison"), files.csv("tt_convergence")
    g, iso, var = files.csv("tt_grid"), files.csv("tt_isolation"), files.csv("tt_variants")
    targets = read_table(files.table("tt_targets.csv"))
    tex = {stem: text for stem, text in files.tex().items() if stem.startswith("tt_")}
    fig_files = [n for n in files.figure_names() if n.startswith("tt_") and n.endswith(".pdf")]
    fig_files += ["landscape.pdf"] if files.figure("landscape.pdf") is not None else []
    tt_runs = runs[runs["arch"] == "tt"]
    main_models = list((config.get("paper") or {}).get("main_models") or [])
    base = next((dict(m) for m in config.get("models", {}).values() if m.get("arch") == "tt"), {})
    base.pop("arch", None)
    used = sorted(set(runs["optimizer"].dropna()) & set(config.get("optimizers", {})))
    opt_text = [f"\\texttt{{{tex_escape(name)}}}: " + ", ".join(
        f"{tex_escape(k)} = {tex_escape(v)}" for k, v in config["optimizers"][name].items()
        if k not in ("log_every", "checkpoint_every")) for name in used]
    return {"tt": {
        "model": {k: tex_escape(v) for k, v in base.items()},
        "optimizer_settings": opt_text,
        "optimizer_table": booktabs(["Setting", "Optimizer", "Steps", "Other settings"], [
            [f"\\texttt{{{tex_escape(name)}}}", tex_escape(config["optimizers"][name].get("optimizer", name)),
             f"${config['optimizers'][name].get('steps', '--')}$",
             ", ".join(f"{tex_escape(k)} = {tex_escape(v)}" for k, v in config["optimizers"][name].items()
                       if k not in ("log_every", "checkpoint_every", "optimizer", "steps")) or "--"]
            for name in used], align="llrl") if used else None,
        "tables": tex,
        "figures": [f"figures/{f}" for f in fig_files],
        "convergence_figures": [f"figures/{f}" for f in fig_files if f.startswith("tt_convergence_")],
        "rank_figure": "figures/tt_rank.pdf" if "tt_rank.pdf" in fig_files else None,
        "isolation_figure": "figures/tt_isolation.pdf" if "tt_isolation.pdf" in fig_files else None,
        "landscape_figure": "figures/landscape.pdf" if "landscape.pdf" in fig_files else None,
        "n_runs": int(len(tt_runs)), "datasets": [tex_escape(d) for d in dict.fromkeys(tt_runs["dataset"])],
        "optimizers": sorted(set(tt_runs["solver"])), "layouts": sorted(set(tt_runs["layout"].dropna())),
        "comparison": tt_claims.comparison_claims(comp) if comp is not None else [],
        "comparison_table": tt_claims.comparison_table(comp) if comp is not None else None,
        "convergence": tt_claims.convergence_claims(conv) if conv is not None else [],
        "rank": tt_claims.rank_claims(g) if g is not None else [],
        "rank_table": tt_claims.rank_table(g) if g is not None else None,
        "isolation": tt_claims.isolation_claims(iso) if iso is not None else [],
        "variants": tt_claims.variant_claims(var) if var is not None else [],
        "landscape": tt_claims.landscape_claims(files.inputs, (config.get("landscape") or {}).get("models")),
        "targets": tt_targets.target_rows(targets) if targets is not None else [],
        "target_table": tt_targets.target_table(targets),
        "param_target": f"{tt_targets.PARAM_TARGET:g}", "time_target": f"{tt_targets.TIME_TARGET:g}",
        "other_targets": tt_targets.other_targets(targets),
        "findings": tt_claims.findings(comp, conv, targets, main_models),
        "headline": tt_claims.headline(comp, main_models) if comp is not None else None,
        "complexity": "bench_complexity" in files.tex(),
    }, "figure_files": fig_files}


STUDY = STUDIES.register("tensor_train")(Study(outputs=outputs, context=context, inputs=inputs))
