"""The report commands of ``ttdm`` (tables, figures, each study's report, the paper): they read result files and
write tables, figures and the paper, never train or sample.  :mod:`ttdm.cli` registers them as sub-commands."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def cmd_tables(args: argparse.Namespace) -> None:
    from ttdm.config import main_models, main_setting
    from ttdm.report.studies import check_written, declared
    from ttdm.report.tables import write_tables

    written = write_tables(args.metrics, args.floors, args.runs, args.bench, args.out, main=main_setting(args.spec),
                           models=main_models(args.spec))
    check_written(declared(args.spec, "tables"), written, "ttdm tables")


def cmd_tt_tables(args: argparse.Namespace) -> None:
    from ttdm.report.studies import check_written, declared
    from ttdm.report.studies.tensor_train import collect
    from ttdm.report.tt_tables import write_tt_tables

    runs = collect(args.spec, args.runs, args.losses, args.metrics, args.floors, args.meta, args.likelihood)
    check_written(declared(args.spec, "tt-tables"), write_tt_tables(runs, args.out), "ttdm tt-tables")


def _assign_styles(config: dict[str, Any]) -> None:
    """Fix every figure's colours from the config: the main models first, in config order, so a model has the same
    colour and marker in every figure of the paper (:func:`ttdm.report.style.assign`)."""
    from ttdm.config import main_models
    from ttdm.report import style

    style.assign(main_models(config))


def cmd_tt_figures(args: argparse.Namespace) -> None:
    from ttdm.report.studies import check_written, declared

    _assign_styles(args.spec)
    from ttdm.report.tt_figures import write_tt_figures

    figures = declared(args.spec, "tt-figures")
    written = write_tt_figures(args.runs_table, args.losses, args.out, [Path(f).stem for f in figures])
    check_written(figures, written, "ttdm tt-figures")


def cmd_figures(args: argparse.Namespace) -> None:
    from ttdm.config import main_setting
    from ttdm.report.figures import write_figures
    from ttdm.report.studies import check_written, declared
    from ttdm.report.studies.ddpm import sampler_floor

    _assign_styles(args.spec)
    figures = [f for f in declared(args.spec, "figures") if Path(f).stem.rpartition("_")[0] == args.dataset]
    if not figures:
        raise ValueError(f"the config declares no figures for dataset {args.dataset!r} (no main model trains on it)")
    written = write_figures(args.dataset, args.out, kinds=[Path(f).stem.rpartition("_")[2] for f in figures],
                            samples=args.samples, losses=args.losses, metrics=args.metrics, floor=args.floor,
                            test=args.test, meta=args.meta, main=main_setting(args.spec),
                            sampler_floor=sampler_floor(args.spec))
    check_written(figures, written, f"ttdm figures --dataset {args.dataset}")


def cmd_budget_report(args: argparse.Namespace) -> None:
    from ttdm.report.budget import write_budget
    from ttdm.report.studies import check_written, declared
    from ttdm.report.studies.budget import entries, inputs_of

    _assign_styles(args.spec)
    files = inputs_of(args.spec)
    written = write_budget(entries(args.spec), files["floors"], files["nll_floors"], args.out / "tables",
                           args.out / "figures")
    check_written(declared(args.spec, "budget-report"), written, "ttdm budget-report")


def cmd_trilemma_report(args: argparse.Namespace) -> None:
    from ttdm.report.studies import check_written, declared
    from ttdm.report.studies import trilemma as study
    from ttdm.report.trilemma_output import write_trilemma

    _assign_styles(args.spec)
    written = write_trilemma(study.entries(args.spec), study.sampler_kinds(args.spec), study.sampler_labels(args.spec),
                             study.inputs_of(args.spec)["floors"], shown=study.shown_settings(args.spec),
                             reference=study.reference(args.spec), models=study.models(args.spec),
                             out_tables=args.out / "tables", out_figures=args.out / "figures")
    check_written(declared(args.spec, "trilemma-report"), written, "ttdm trilemma-report")


def cmd_performer_report(args: argparse.Namespace) -> None:
    from ttdm.report.performer_output import write_performer
    from ttdm.report.studies import check_written, declared
    from ttdm.report.studies import performer as study

    files = study.inputs_of(args.spec)
    written = write_performer(study.entries(args.spec), study.error_files(args.spec), files["bench"],
                              files["complexity"][0] if files["complexity"] else None, models=study.models(args.spec),
                              out_tables=args.out / "tables", out_figures=args.out / "figures",
                              device_folders=(args.spec.get("performer") or {}).get("device_benchmarks", []))
    check_written(declared(args.spec, "performer-report"), written, "ttdm performer-report")


def cmd_dsno_report(args: argparse.Namespace) -> None:
    from ttdm.config import main_setting
    from ttdm.report.dsno_output import write_dsno
    from ttdm.report.studies import check_written, declared
    from ttdm.report.studies import dsno as study

    spec = args.spec
    _assign_styles(spec)
    written = write_dsno(study.entries(spec), study.eval_entries(spec), study.sampler_kinds(spec),
                         study.sampler_labels(spec), study.inputs_of(spec)["floors"],
                         shown=study.shown_settings(spec), reference=study.reference(spec),
                         ablation=spec["dsno"]["ablation"], main=main_setting(spec),
                         batch_sizes=list(spec["dsno"].get("batch_sizes", [1])), models=spec["dsno"]["models"],
                         datasets=spec["dsno"]["datasets"], cost_files=study.inputs_of(spec)["costs"],
                         device_files=spec["dsno"].get("device_timings", []),
                         pairs=[{**e, "path": e["eval"][: -len(".csv")] + ".npz"} for e in study.eval_entries(spec)],
                         out_tables=args.out / "tables", out_figures=args.out / "figures")
    check_written(declared(spec, "dsno-report"), written, "ttdm dsno-report")


def cmd_paper(args: argparse.Namespace) -> None:
    from ttdm.report.files import PaperFiles
    from ttdm.report.paper import compile_paper, render_paper
    from ttdm.report.studies import paper_files

    files = PaperFiles(tables=args.tables, figures=args.figures, meta=args.meta, runs=args.runs, inputs=args.inputs)
    missing = files.missing(f for group in paper_files(args.spec).values() for f in group)
    if missing:
        raise ValueError(f"the studies' tables, figures and inputs were not all given: {', '.join(missing)}")
    render_paper(files, args.templates, args.spec, args.out)
    if not args.no_compile:
        print(compile_paper(args.out))


def cmd_landscape_figure(args: argparse.Namespace) -> None:
    from ttdm.report.landscape import plot_landscapes

    plot_landscapes(args.csv, args.labels, args.out.with_suffix(".pdf"), args.out.with_suffix(".png"))
