"""The training-budget study (paper section "Training budget"): are the baselines trained to convergence?

Command: ``ttdm budget-report`` writes budget.csv (one row per run: steps, training seconds, the sample metric at the
main setting, the test NLL), budget_summary.csv, budget_reach.csv, budget.tex and the figure budget.pdf, from the
budget runs that ``budget`` in the config generates (:func:`ttdm.config.grid.budget_name`) and the main runs of
the same networks.  Nothing is declared without a ``budget`` block.
"""

from __future__ import annotations

from typing import Any

from ttdm import config as cfg
from ttdm.config.grid import budget_name
from ttdm.report.budget import METRIC_TEX
from ttdm.report.claims import tt
from ttdm.report.files import PaperFiles
from ttdm.report.studies import STUDIES, Study
from ttdm.report.tables import fmt_number

TABLES = ("budget.csv", "budget_summary.csv", "budget_reach.csv", "budget.tex")


def entries(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Every run the study reads, with its files: the budget runs of every listed (dataset, network), then the
    network's main runs (every seed), each {dataset, model, seed, steps, main, train, metrics, likelihood, meta}."""
    study = config.get("budget")
    if not study:
        return []
    main = cfg.main_setting(config)
    with_nll = {(d, m, s) for d, m, s in cfg.likelihood_runs(config)} if config.get("likelihood") else set()
    trained = set(cfg.runs(config))
    out = []
    for dataset in study["datasets"]:
        for model in study["models"]:
            main_steps = int(cfg.run_spec(config, dataset, model, 0)["training"]["steps"])
            runs = [(model if int(n) == main_steps else budget_name(model, n), s, int(n), False)
                    for n in study["steps"] for s in study.get("seeds", [0])]  # a budget of the grid's steps: its run
            runs += [(model, s, main_steps, True) for d, m, s in cfg.runs(config) if (d, m) == (dataset, model)]
            for name, seed, steps, is_main in runs:
                if (dataset, name, seed) not in trained:
                    continue
                run = f"results/runs/{dataset}/{name}/{seed}"
                out.append({"dataset": dataset, "model": model, "seed": seed, "steps": steps, "main": is_main,
                            "train": f"{run}/train.json", "metrics": f"results/metrics/{dataset}/{name}/{seed}/{main}.csv",
                            "likelihood": (f"results/likelihood/{dataset}/{name}/{seed}.csv"
                                           if (dataset, name, seed) in with_nll else None),
                            "meta": f"results/data/{dataset}/meta.json"})
    return out


def inputs_of(config: dict[str, Any]) -> dict[str, list[str]]:
    """The files ``ttdm budget-report`` reads: every entry's files, the data floors and the true NLLs."""
    es = entries(config)
    datasets = list(dict.fromkeys(e["dataset"] for e in es))
    with_nll = {e["dataset"] for e in es if e["likelihood"]}
    return {
        "files": list(dict.fromkeys(f for e in es for f in (e["train"], e["metrics"], e["likelihood"], e["meta"])
                                    if f)),
        "floors": [f"results/metrics/{d}/floor.csv" for d in datasets],
        "nll_floors": [f"results/likelihood/{d}/floor.csv" for d in datasets if d in with_nll],
    }


def outputs(config: dict[str, Any]) -> dict[str, list[str]]:
    if not entries(config):
        return {"budget-report": []}
    return {"budget-report": [f"results/tables/{t}" for t in TABLES] + ["results/figures/budget.pdf"]}


def findings(reach: Any) -> list[str]:
    """The study's findings: how many main runs are within 10 % of the longest budget on their sample metric and
    within 0.1 nats/dim on the test NLL (the largest NLL gap named), the networks still improving at the longest
    budget, and the fewest steps that reached 10 %."""
    if reach is None or not len(reach):
        return []
    out = []
    main = reach[reach["main_converged"].notna()]
    if len(main):
        ok = main[main["main_metric_ok"] == True]  # noqa: E712
        out.append(f"On the sample metric (HQ percentage on the mixtures, SWD elsewhere) {len(ok)} of {len(main)} "
                   f"main runs of the training-budget study are within 10\\,\\% of the longest budget's value"
                   + ("." if len(ok) == len(main) else "; not: " + "; ".join(
                       f"{tt(r['model'])} on {tt(r['dataset'])} ({100 * r['main_gap']:+.0f}\\,\\%)"
                       for _, r in main[main["main_metric_ok"] != True].head(5).iterrows()) + "."))  # noqa: E712
        gaps = main.dropna(subset=["main_nll_gap"])
        if len(gaps):
            near = gaps[gaps["main_nll_gap"] <= 0.1]
            worst = gaps.loc[gaps["main_nll_gap"].idxmax()]
            out.append(f"On the test NLL {len(near)} of {len(gaps)} are within 0.1~nats/dim of the longest budget; the "
                       f"largest gap is {fmt_number(worst['main_nll_gap'])}~nats/dim ({tt(worst['model'])} on "
                       f"{tt(worst['dataset'])}), so the NLL comparisons of the other sections are between networks "
                       f"that are not trained to convergence.")
    improving = reach[reach["still_improving"]]
    if len(improving):
        names = ", ".join(f"{tt(r['model'])} on {tt(r['dataset'])}" for _, r in improving.head(5).iterrows())
        out.append(f"Still improving by more than 10\\,\\% between the two longest budgets: {names}"
                   + (f" and {len(improving) - 5} more" if len(improving) > 5 else "")
                   + "; their converged value is not known.")
    reached = reach.dropna(subset=["steps"])
    if len(reached):
        slow = reached.loc[reached["steps"].idxmax()]
        out.append(f"The slowest to come within 10\\,\\% of its longest budget is {tt(slow['model'])} on "
                   f"{tt(slow['dataset'])}: {int(slow['steps'])} steps ({fmt_number(slow['train_s'])} s of training).")
    return out


def context(files: PaperFiles, config: dict[str, Any]) -> dict[str, Any]:
    reach = files.csv("budget_reach")
    tables = files.tex()
    figure = files.figure("budget.pdf")
    study = config.get("budget") or {}
    return {"budget": None if reach is None else {
        "findings": findings(reach),
        "table": tables.get("budget"),
        "figure": "figures/budget.pdf" if figure is not None else None,
        "steps": [int(n) for n in study.get("steps", [])],
        "metrics": sorted({METRIC_TEX.get(m, m) for m in reach["metric"]}),
    }, "figure_files": ["budget.pdf"] if figure is not None else []}


STUDY = STUDIES.register("budget")(Study(outputs=outputs, context=context,
                                         inputs=lambda config: []))
