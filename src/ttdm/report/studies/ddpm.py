"""The DDPM baselines (paper section "Results: DDPM baselines" and the benchmark appendix).

Commands: ``ttdm tables`` writes the main table (summary.*), the metric-vs-NFE, divergence and training tables and one
table per benchmark CSV; ``ttdm figures`` (one job per dataset) draws ``{dataset}_samples``, ``{dataset}_loss`` and
``{dataset}_nfe`` for every dataset that a main model (:func:`ttdm.config.main_models`) is trained on. The paper also
reads the test likelihoods of the main models and of the sampler floor (:func:`inputs`), for the NLL column.

The sampler floor: the model named by the config's ``paper.sampler_floor`` (the exact ε* of a mixture, sampled
under every setting) when the grid trains it; it appears in the main table, the NFE table and the NFE figures as
"sampler floor" and never ranks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ttdm import config as cfg
from ttdm.report import findings
from ttdm.report.claims import (SENTENCE_LABELS, best_model_claims, mode_claims, model_primaries, nfe_claims,
                                ranking, sampler_primaries, training_claims, tt)
from ttdm.report.files import PaperFiles
from ttdm.report.studies import STUDIES, Study
from ttdm.report.per_run import (add_likelihood, add_likelihood_runs, collect_likelihood, diverged_runs,
                                 likelihood_summary, run_tables)
from ttdm.report.tables import constant_note, fmt_number, main_table

MAIN_METRICS = ("nll", "swd", "w2", "fd", "modes_covered", "modes_total", "hq_percent")  # the main text's table
FULL_METRICS = ("nll", "swd", "mmd", "energy", "w2", "fd", "modes_covered", "modes_total", "hq_percent")  # appendix

TABLES = ("metrics.csv", "summary.csv", "summary.tex", "summary_display.csv", "nfe.csv", "divergence.csv",
          "training.csv", "training.tex", "training_display.csv")
BENCH = ("models", "train", "sampling", "complexity")  # results/bench/{name}.csv -> table bench_{name}
KINDS = ("samples", "loss", "nfe")  # results/figures/{dataset}_{kind}.pdf


def bench_files() -> list[str]:
    """The benchmark CSVs ``ttdm tables`` turns into tables (written by the bench and complexity rules)."""
    return [f"results/bench/{name}.csv" for name in BENCH]


def figure_kinds(config: dict[str, Any]) -> list[str]:
    """The per-dataset figures: samples, loss and, when SWD is a configured metric, the primary metric (HQ % on
    mixtures, SWD elsewhere) against NFE."""
    return [k for k in KINDS if k != "nfe" or "swd" in config["metrics"]]


def known_causes(config: dict[str, Any]) -> dict[Any, str]:
    """{model or (model, sampler name): the known cause of its divergence}, from the configuration:

    - a TT without the analytic head start: its inputs are clamped to a box, so outside it ε_θ stays flat while
      ε* ≈ x grows, and the samplers' 1/√α expansion is not cancelled;
    - a ResNet or U-Net under a deterministic DDIM sampler (η = 0): their last norm layer bounds the output, and
      even with the linear skip ε_θ falls short of ε* ≈ x beyond the range it was trained on (|x| ≳ 3.5 at t ≈ 1);
      DDIM multiplies the part of x that ε_θ misses by √ᾱ_prev/√ᾱ_i at every step (up to 1/√ᾱ_T ≈ 160 in all),
      while ancestral DDPM damps it.
    """
    out: dict[Any, str] = {}
    ddim = [name for name, s in config.get("sampling", {}).get("samplers", {}).items()
            if s.get("kind") == "ddim" and not s.get("eta")]
    for name, model in config.get("models", {}).items():
        arch = model.get("arch")
        if arch == "tt" and model.get("prior") == "none":
            out[name] = "TT without the $\\sigma_t x$ head start: flat outside its input box"
        elif arch in ("resnet", "unet") and model.get("prior", "none") == "none":
            for sampler in ddim:
                out[(name, sampler)] = "bounded output falls short of $\\epsilon^* \\approx x$ in the tails; DDIM amplifies it"
    return out


def sampler_floor(config: dict[str, Any]) -> str | None:
    """The sampler floor model: ``paper.sampler_floor`` when the grid trains that model, else None."""
    name = (config.get("paper") or {}).get("sampler_floor")
    return name if name and any(m == name for _, m, _ in cfg.runs(config)) else None


def shown_models(config: dict[str, Any]) -> list[str]:
    """The models of the main table: the main models, then the sampler floor (when trained)."""
    floor = sampler_floor(config)
    return [m for m in cfg.main_models(config) if m != floor] + ([floor] if floor else [])


def figure_runs(config: dict[str, Any], dataset: str) -> list[tuple[str, str, int]]:
    """The runs the figures of ``dataset`` draw: every seed of the main models trained on it."""
    main = set(cfg.main_models(config)) - {sampler_floor(config)}
    return [(d, m, s) for d, m, s in cfg.runs(config) if d == dataset and m in main]


def floor_runs(config: dict[str, Any], dataset: str) -> list[tuple[str, str, int]]:
    """The sampler floor's runs on ``dataset`` (drawn in its NFE figure; none without a sampler floor)."""
    floor = sampler_floor(config)
    return [(d, m, s) for d, m, s in cfg.runs(config) if d == dataset and m == floor]


def figure_datasets(config: dict[str, Any]) -> list[str]:
    """Datasets with figures (config order): those a main model is trained on."""
    return [d for d in cfg.used_datasets(config) if figure_runs(config, d)]


def outputs(config: dict[str, Any]) -> dict[str, list[str]]:
    tables = [f"results/tables/{name}" for name in TABLES]
    tables += [f"results/tables/bench_{name}{suffix}" for name in BENCH for suffix in (".tex", "_display.csv")]
    figures = [f"results/figures/{d}_{k}.pdf" for d in figure_datasets(config) for k in figure_kinds(config)]
    return {"tables": tables, "figures": figures}


def likelihood_inputs(config: dict[str, Any]) -> list[str]:
    """The test likelihoods the paper reads: results/likelihood/{dataset}/{model}/{seed}.csv of every run of the
    main table's models (:func:`shown_models`) that has one (:func:`ttdm.config.likelihood_runs`), and
    results/likelihood/{dataset}/floor.csv (the true NLL of mixtures) of their datasets."""
    shown = set(shown_models(config))
    runs = [(d, m, s) for d, m, s in cfg.likelihood_runs(config) if m in shown]
    return ([f"results/likelihood/{d}/{m}/{s}.csv" for d, m, s in runs]
            + [f"results/likelihood/{d}/floor.csv" for d in dict.fromkeys(d for d, _, _ in runs)])


def inputs(config: dict[str, Any]) -> list[str]:
    return likelihood_inputs(config)


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
    every loss.csv and per-setting metrics CSV of the main models' runs (and the sampler floor's metrics, for the NFE
    figure), floor.csv, test.npy and meta.json."""
    runs = figure_runs(config, dataset)
    floor = floor_runs(config, dataset) if "nfe" in figure_kinds(config) else []
    first = {}
    for d, m, s in sorted(runs, key=lambda r: r[2]):
        first.setdefault(m, s)
    return {
        "samples": [f"results/samples/{dataset}/{m}/{s}/{shown_setting(config, dataset, m)}.npz"
                    for m, s in first.items()],
        "losses": [f"results/runs/{d}/{m}/{s}/loss.csv" for d, m, s in runs],
        "metrics": [f"results/metrics/{d}/{m}/{s}/{k}.csv" for d, m, s in runs + floor
                    for k in cfg.run_settings(config, d, m)],
        "floor": [f"results/metrics/{dataset}/floor.csv"],
        "test": [f"results/data/{dataset}/test.npy"],
        "meta": [f"results/data/{dataset}/meta.json"],
    }


def is_likelihood_file(path: Path) -> bool:
    """A file of results/likelihood/: {dataset}/{model}/{seed}.csv or {dataset}/floor.csv."""
    parts = Path(path).parts
    return (len(parts) >= 3 and parts[-3] == "likelihood" and parts[-1] == "floor.csv") or (
        len(parts) >= 4 and parts[-4] == "likelihood" and Path(path).stem.isdigit())


def _floors(summary: pd.DataFrame, likelihood_floors: pd.DataFrame) -> pd.DataFrame:
    """The data floor of every metric (dataset, metric, value): the summary's floor column and the true NLL."""
    floors = summary.dropna(subset=["floor"]).drop_duplicates(["dataset", "metric"])[["dataset", "metric", "floor"]]
    true = likelihood_floors[likelihood_floors["metric"] == "nll"]
    return pd.concat([floors.rename(columns={"floor": "value"}), true[["dataset", "metric", "value"]]],
                     ignore_index=True)


def context(files: PaperFiles, config: dict[str, Any]) -> dict[str, Any]:
    """The section's context: main ({"sampler", "steps"} of the main table, or None), datasets (per dataset: name,
    label, image (bool), best_model (best by the dataset's model-level primary metric at the main setting, or None),
    primary (that metric's name), nfe_label (what its NFE figure shows), figure paths relative to the paper, and the
    sentences best, modes and nfe), training_claims, bench ([{name, label, table}]), figure_files and ddpm (the
    section's tables and findings, the divergence report and the per-run appendix tables)."""
    tables = files.tex()
    summary, display, training = files.csv("summary"), files.csv("summary_display"), files.csv("training")
    floor_model = sampler_floor(config)
    lik_runs, lik_floors = collect_likelihood(f for f in files.inputs if is_likelihood_file(f))
    main, best_model, primaries, shown, models = None, {}, {}, None, []
    claims: dict[str, dict[str, list[str]]] = {"best": {}, "modes": {}, "nfe": {}}
    if summary is not None and display is not None and "summary" in tables:
        main = {"sampler": str(display["sampler"].iloc[0]), "steps": int(display["steps"].iloc[0])}
        sampler, steps = main["sampler"], main["steps"]
        rows = display[display["row"] == "model"] if "row" in display.columns else display
        models = list(dict.fromkeys(rows["model"]))  # the main models, as the tables command kept them
        names = models + ([floor_model] if floor_model in set(summary["model"]) - set(models) else [])
        full = add_likelihood(summary, likelihood_summary(lik_runs, lik_floors), sampler, steps)
        shown = full[full["model"].isin(names)]  # the main table's models and the sampler floor
        exclude = [floor_model] if floor_model else []
        primaries = model_primaries(shown, sampler, steps, exclude=exclude)
        for ds, metric in primaries.items():
            ranked = ranking(shown, sampler, steps, metric, exclude=exclude).get(ds)
            if ranked is not None and len(ranked):
                best_model[ds] = ranked["model"].iloc[0]
        claims = {"best": best_model_claims(shown, sampler, steps, sampler_floor=floor_model),
                  "modes": mode_claims(shown, sampler, steps, sampler_floor=floor_model),
                  "nfe": nfe_claims(shown, main=(sampler, steps), sampler_floor=floor_model)}
    nfe_metric = sampler_primaries(summary) if summary is not None else {}
    figure_datasets = (name[: -len(f"_{k}.pdf")] for k in KINDS for name in files.figure_names()
                       if name.endswith(f"_{k}.pdf"))
    names = set().union(*claims.values(), figure_datasets)
    order = {ds: i for i, ds in enumerate(dict.fromkeys(d for g in config.get("grid", []) for d in g["datasets"]))}
    names = {d for d in names if not order or d in order}  # stale results of datasets no longer configured
    datasets, figure_files = [], []
    for ds in sorted(names, key=lambda d: (order.get(d, len(order)), d)):
        meta = files.meta_of(ds)
        image = bool(meta.get("image_shape")) if meta is not None else False
        entry: dict[str, Any] = {"name": ds, "label": tt(ds), "image": image, "best_model": best_model.get(ds),
                                 "primary": primaries.get(ds),
                                 "nfe_label": SENTENCE_LABELS.get(nfe_metric.get(ds, "swd"), "SWD")}
        for kind in KINDS:
            found = files.figure(f"{ds}_{kind}.pdf") is not None
            entry[f"{kind}_figure"] = f"figures/{ds}_{kind}.pdf" if found else None
            figure_files += [f"{ds}_{kind}.pdf"] if found else []
        entry.update({k: claims[k].get(ds, []) for k in claims})
        datasets.append(entry)
    bench = [{"name": stem[len("bench_"):], "label": tt(stem[len("bench_"):] + ".csv"), "table": text,
              "constant": constant_note(text)}
             for stem, text in tables.items() if stem.startswith("bench_") and stem != "bench_complexity"]
    div = files.csv("divergence")
    ddpm: dict[str, Any] = {"findings": [], "mode_table": None, "nfe_table": None, "nfe_saving": None,
                            "nfe_samplers": [], "first_figure": None, "floor_range": None,
                            "main_table": None, "full_table": None, "run_tables": [],
                            "divergence": findings.divergence_report(div, sampler_floor=floor_model,
                                                                     causes=known_causes(config)),
                            "sampler_floor": None, "has_nll": False, "has_true_nll": False, "primary": [],
                            "mixtures": None}
    if main is not None and shown is not None:
        sampler, steps = main["sampler"], main["steps"]
        setting = f"{sampler}_{steps}"
        contenders = shown[shown["model"] != floor_model]
        ds_order = sorted(names, key=lambda d: (order.get(d, len(order)), d))
        saving = findings.nfe_saving(contenders, sampler, steps)
        reach = findings.nfe_reach(contenders)
        bad_runs = diverged_runs(div) if div is not None else set()
        bad_pairs = {(d, m) for d, m, _ in bad_runs}
        has_floor = floor_model is not None and floor_model in set(shown["model"])
        tabled = {"main_table": MAIN_METRICS, "full_table": FULL_METRICS}
        for key, keep in tabled.items():
            ddpm[key] = main_table(shown[shown["metric"].isin(keep)], main=setting, sampler_floor=floor_model,
                                   diverged=bad_pairs)[1]
        metrics = files.csv("metrics")
        if metrics is not None:
            metrics = add_likelihood_runs(metrics, lik_runs, sampler, steps)
            ddpm["run_tables"] = [tex for _, tex in run_tables(
                metrics, _floors(summary, lik_floors), main=setting, sampler_floor=floor_model, diverged=bad_runs,
                models=[m for m in models] + ([floor_model] if has_floor else []), datasets=ds_order)]
        used = dict.fromkeys(primaries.values())
        ddpm.update({"findings": (findings.primary_findings(shown, sampler, steps, sampler_floor=floor_model)
                                  + findings.ddpm_findings(shown, sampler, steps, sampler_floor=floor_model))[:5],
                     "mode_table": findings.mode_table(shown, sampler, steps, models, ds_order,
                                                       sampler_floor=floor_model),
                     "nfe_table": findings.nfe_table(shown, models, ds_order, sampler_floor=floor_model),
                     "nfe_saving": fmt_number(saving) if saving else None,
                     "floor_range": findings.floor_range(shown, sampler, steps, sampler_floor=floor_model),
                     "nfe_samplers": [tt(s) for s in dict.fromkeys(reach["sampler"])],
                     "nfe_tried": sorted({int(n) for n in reach["tried"].str.split(", ").explode()})
                     if len(reach) else [],
                     "mixtures": findings.mixture_headline(
                         shown, sampler, steps, sampler_floor=floor_model,
                         networks=[m for m in models if config.get("models", {}).get(m, {}).get("arch") != "tt"
                                   and m != floor_model]),
                     "sampler_floor": tt(floor_model) if has_floor else None,
                     "has_nll": bool((shown["metric"] == "nll").any()),
                     "has_true_nll": bool(len(lik_floors[lik_floors["metric"] == "nll"])),
                     "primary": [SENTENCE_LABELS.get(m, m) for m in used]})
    with_all = [d for d in datasets if d["samples_figure"] and d["loss_figure"] and d["nfe_figure"]]
    ddpm["first_figure"] = (with_all or [None])[0]
    return {"main": main, "datasets": datasets, "bench": bench, "figure_files": figure_files, "ddpm": ddpm,
            "training_claims": training_claims(training) if training is not None else []}


STUDY = STUDIES.register("ddpm")(Study(outputs=outputs, context=context, inputs=inputs))
