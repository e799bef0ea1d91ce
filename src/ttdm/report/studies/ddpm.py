"""The DDPM baselines (paper section "Results: DDPM baselines" and the benchmark appendix).

Commands: ``ttdm tables`` writes the main table (summary.*), the metric-vs-NFE and training tables and one table per
benchmark CSV; ``ttdm figures`` (one job per dataset) draws ``{dataset}_samples``, ``{dataset}_loss`` and
``{dataset}_nfe`` for every dataset that a main model (:func:`ttdm.config.main_models`) is trained on.
"""

from __future__ import annotations

from typing import Any

from ttdm import config as cfg
from ttdm.report.claims import best_model_claims, mode_claims, nfe_claims, ranking, training_claims, tt
from ttdm.report.files import PaperFiles
from ttdm.report.studies import STUDIES, Study
from ttdm.report import findings
from ttdm.report.tables import constant_note, fmt_number, main_table

MAIN_METRICS = ("swd", "w2", "modes_covered", "modes_total", "hq_percent")  # the main text's table; all: appendix

TABLES = ("metrics.csv", "summary.csv", "summary.tex", "summary_display.csv", "nfe.csv", "training.csv",
          "training.tex", "training_display.csv")
BENCH = ("models", "train", "sampling", "complexity")  # results/bench/{name}.csv -> table bench_{name}
KINDS = ("samples", "loss", "nfe")  # results/figures/{dataset}_{kind}.pdf


def bench_files() -> list[str]:
    """The benchmark CSVs ``ttdm tables`` turns into tables (written by the bench and complexity rules)."""
    return [f"results/bench/{name}.csv" for name in BENCH]


def figure_kinds(config: dict[str, Any]) -> list[str]:
    """The per-dataset figures: samples, loss and, when SWD is a configured metric, SWD against NFE."""
    return [k for k in KINDS if k != "nfe" or "swd" in config["metrics"]]


def figure_runs(config: dict[str, Any], dataset: str) -> list[tuple[str, str, int]]:
    """The runs the figures of ``dataset`` draw: every seed of the main models trained on it."""
    main = set(cfg.main_models(config))
    return [(d, m, s) for d, m, s in cfg.runs(config) if d == dataset and m in main]


def figure_datasets(config: dict[str, Any]) -> list[str]:
    """Datasets with figures (config order): those a main model is trained on."""
    return [d for d in cfg.used_datasets(config) if figure_runs(config, d)]


def outputs(config: dict[str, Any]) -> dict[str, list[str]]:
    tables = [f"results/tables/{name}" for name in TABLES]
    tables += [f"results/tables/bench_{name}{suffix}" for name in BENCH for suffix in (".tex", "_display.csv")]
    figures = [f"results/figures/{d}_{k}.pdf" for d in figure_datasets(config) for k in figure_kinds(config)]
    return {"tables": tables, "figures": figures}


def shown_setting(config: dict[str, Any], dataset: str, model: str) -> str:
    """The setting whose samples the samples figure shows for a run: the main one when it samples the run, else the
    one with the most steps (ties: first sampler name), as ``ttdm.report.figures.pick_key``."""
    settings = cfg.run_settings(config, dataset, model)
    main = cfg.main_setting(config)
    if main in settings:
        return main
    return sorted(settings, key=lambda k: (-cfg.split_setting(k)[1], cfg.split_setting(k)[0]))[0]


def figure_inputs(config: dict[str, Any], dataset: str) -> dict[str, list[str]]:
    """The files ``ttdm figures`` reads for ``dataset``: the shown samples file of each main model's first seed,
    every loss.csv and per-setting metrics CSV of the main models' runs, floor.csv, test.npy and meta.json."""
    runs = figure_runs(config, dataset)
    first = {}
    for d, m, s in sorted(runs, key=lambda r: r[2]):
        first.setdefault(m, s)
    return {
        "samples": [f"results/samples/{dataset}/{m}/{s}/{shown_setting(config, dataset, m)}.npz"
                    for m, s in first.items()],
        "losses": [f"results/runs/{d}/{m}/{s}/loss.csv" for d, m, s in runs],
        "metrics": [f"results/metrics/{d}/{m}/{s}/{k}.csv" for d, m, s in runs for k in cfg.run_settings(config, d, m)],
        "floor": [f"results/metrics/{dataset}/floor.csv"],
        "test": [f"results/data/{dataset}/test.npy"],
        "meta": [f"results/data/{dataset}/meta.json"],
    }


def context(files: PaperFiles, config: dict[str, Any]) -> dict[str, Any]:
    """The section's context: main ({"sampler", "steps"} of the main table, or None), datasets (per dataset: name,
    label, image (bool), best_model (lowest SWD at the main setting, or None), figure paths relative to the paper,
    and the sentences best, modes and nfe), training_claims, bench ([{name, label, table}]) and figure_files."""
    tables = files.tex()
    summary, display, training = files.csv("summary"), files.csv("summary_display"), files.csv("training")
    main, best_model = None, {}
    claims: dict[str, dict[str, list[str]]] = {"best": {}, "modes": {}, "nfe": {}}
    if summary is not None and display is not None and "summary" in tables:
        main = {"sampler": str(display["sampler"].iloc[0]), "steps": int(display["steps"].iloc[0])}
        ranked = ranking(summary, main["sampler"], main["steps"], "swd")
        best_model = {ds: g["model"].iloc[0] for ds, g in ranked.items()}
        claims = {"best": best_model_claims(summary, main["sampler"], main["steps"]),
                  "modes": mode_claims(summary, main["sampler"], main["steps"]),
                  "nfe": nfe_claims(summary, main=(main["sampler"], main["steps"]))}
    figure_datasets = (name[: -len(f"_{k}.pdf")] for k in KINDS for name in files.figure_names()
                       if name.endswith(f"_{k}.pdf"))
    names = set().union(*claims.values(), figure_datasets)
    order = {ds: i for i, ds in enumerate(dict.fromkeys(d for g in config.get("grid", []) for d in g["datasets"]))}
    names = {d for d in names if not order or d in order}  # stale results of datasets no longer configured
    datasets, figure_files = [], []
    for ds in sorted(names, key=lambda d: (order.get(d, len(order)), d)):
        meta = files.meta_of(ds)
        image = bool(meta.get("image_shape")) if meta is not None else False
        entry: dict[str, Any] = {"name": ds, "label": tt(ds), "image": image, "best_model": best_model.get(ds)}
        for kind in KINDS:
            found = files.figure(f"{ds}_{kind}.pdf") is not None
            entry[f"{kind}_figure"] = f"figures/{ds}_{kind}.pdf" if found else None
            figure_files += [f"{ds}_{kind}.pdf"] if found else []
        entry.update({k: claims[k].get(ds, []) for k in claims})
        datasets.append(entry)
    bench = [{"name": stem[len("bench_"):], "label": tt(stem[len("bench_"):] + ".csv"), "table": text,
              "constant": constant_note(text)}
             for stem, text in tables.items() if stem.startswith("bench_") and stem != "bench_complexity"]
    ddpm: dict[str, Any] = {"findings": [], "mode_table": None, "nfe_table": None, "nfe_saving": None,
                            "nfe_samplers": [], "first_figure": None, "floor_range": None,
                            "main_table": None}
    if main is not None:
        shown = summary[summary["model"].isin(set(display["model"]))]  # the main table's models
        models = list(dict.fromkeys(display["model"]))
        ds_order = sorted(names, key=lambda d: (order.get(d, len(order)), d))
        saving = findings.nfe_saving(shown, main["sampler"], main["steps"])
        reach = findings.nfe_reach(shown)
        compact = shown[shown["metric"].isin(MAIN_METRICS)]
        ddpm.update({"main_table": main_table(compact, main=f"{main['sampler']}_{main['steps']}")[1],
                     "findings": findings.ddpm_findings(shown, main["sampler"], main["steps"]),
                     "mode_table": findings.mode_table(shown, main["sampler"], main["steps"], models, ds_order),
                     "nfe_table": findings.nfe_table(shown, models, ds_order),
                     "nfe_saving": fmt_number(saving) if saving else None,
                     "floor_range": findings.floor_range(shown, main["sampler"], main["steps"]),
                     "nfe_samplers": [tt(s) for s in dict.fromkeys(reach["sampler"])],
                     "nfe_tried": sorted({int(n) for n in reach["tried"].str.split(", ").explode()})
                     if len(reach) else []})
    with_all = [d for d in datasets if d["samples_figure"] and d["loss_figure"] and d["nfe_figure"]]
    ddpm["first_figure"] = (with_all or [None])[0]
    return {"main": main, "datasets": datasets, "bench": bench, "figure_files": figure_files, "ddpm": ddpm,
            "training_claims": training_claims(training) if training is not None else []}


STUDY = STUDIES.register("ddpm")(Study(outputs=outputs, context=context))
