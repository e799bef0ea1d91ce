"""The ``ttdm`` command: one sub-command per pipeline stage, each called by one Snakemake rule.

Every stage takes its settings as a JSON spec (``--spec``), built by the workflow from the validated config, and
saves it beside its outputs. Imports are local to each command so that ``ttdm --help`` and light stages start fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _spec(text: str) -> dict[str, Any]:
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"--spec is not valid JSON: {err}") from None
    if not isinstance(spec, dict):
        raise argparse.ArgumentTypeError("--spec must be a JSON object")
    return spec


def _role_dir(text: str) -> tuple[str, Path]:
    role, sep, path = text.partition("=")
    if not sep or not role or not path:
        raise argparse.ArgumentTypeError(f"--needs takes ROLE=RUN_DIR, got {text!r}")
    return role, Path(path)


def cmd_check_config(args: argparse.Namespace) -> None:
    from ttdm.config import load_config, runs

    config = load_config(args.config)
    n_runs = sum(1 for _ in runs(config))
    print(f"{args.config}: valid; {len(config['datasets'])} datasets, {n_runs} training runs")


def cmd_data(args: argparse.Namespace) -> None:
    from ttdm.stages.data import prepare_dataset

    meta = prepare_dataset(args.spec, args.out)
    print(f"{args.out}: {meta['n_train']} train, {meta['n_test']} test, {meta['n_floor']} floor rows, D = {meta['dim']}")


def cmd_train(args: argparse.Namespace) -> None:
    from ttdm.stages.train import train

    train(args.spec, args.data, args.out, needs=dict(args.needs or []))


def cmd_sample(args: argparse.Namespace) -> None:
    from ttdm.stages.sample import generate

    generate(args.spec, args.run, args.out)


def cmd_evaluate(args: argparse.Namespace) -> None:
    from ttdm.stages.evaluate import evaluate_run

    evaluate_run(args.spec, samples=args.samples, data_dir=args.data, out=args.out)


def cmd_floor(args: argparse.Namespace) -> None:
    from ttdm.stages.evaluate import evaluate_floor

    evaluate_floor(args.spec, data_dir=args.data, out=args.out)


def cmd_tables(args: argparse.Namespace) -> None:
    from ttdm.report.tables import write_tables

    write_tables(args.metrics, args.floors, args.runs, args.bench, args.out, main=args.main, models=args.models)


def cmd_tt_tables(args: argparse.Namespace) -> None:
    from ttdm.report.tables import split_setting
    from ttdm.report.tt import write_tt_tables

    write_tt_tables(args.runs, args.metrics, args.floors, split_setting(args.main), args.out, data_root=args.data)


def cmd_tt_figures(args: argparse.Namespace) -> None:
    from ttdm.report.tt_figures import write_tt_figures

    write_tt_figures(args.runs_table, args.out)


def cmd_figures(args: argparse.Namespace) -> None:
    from ttdm.report.figures import write_figures

    write_figures(args.results, args.out, main=args.main, datasets=args.datasets, models=args.models)


def cmd_bench(args: argparse.Namespace) -> None:
    from ttdm.stages.bench import run_benchmarks

    run_benchmarks(args.spec, args.out, data_root=args.data)


def cmd_complexity(args: argparse.Namespace) -> None:
    from ttdm.stages.complexity import complexity

    complexity(args.spec, args.data, args.out)


def cmd_paper(args: argparse.Namespace) -> None:
    from ttdm.report.paper import compile_paper, render_paper

    render_paper(args.results, args.templates, args.spec, args.out)
    if not args.no_compile:
        print(compile_paper(args.out))


def cmd_landscape(args: argparse.Namespace) -> None:
    from ttdm.stages.landscape import write_landscape

    df = write_landscape(args.run, args.data, args.out, n=args.n, span=args.span, n_points=args.points,
                         seed=args.seed, device=args.device)
    print(f"{args.out}: {len(df)} grid points, loss at the trained weights {df.attrs['loss_at_minimum']:.6g}")


def cmd_landscape_figure(args: argparse.Namespace) -> None:
    from ttdm.report.landscape import plot_landscapes

    plot_landscapes(args.csv, args.labels, args.out.with_suffix(".pdf"), args.out.with_suffix(".png"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ttdm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: Any, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        return p

    p = add("check-config", cmd_check_config, "validate a config file against the schema and the registries")
    p.add_argument("config", type=Path)

    p = add("data", cmd_data, "write the train/test/floor splits and meta.json of one dataset")
    p.add_argument("--spec", type=_spec, required=True)
    p.add_argument("--out", type=Path, required=True)

    p = add("train", cmd_train, "train one model (resumes from its last checkpoint)")
    p.add_argument("--spec", type=_spec, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--needs", type=_role_dir, nargs="*", default=[], metavar="ROLE=RUN_DIR",
                   help="the finished runs this run needs (its spec's needs), by role")

    p = add("sample", cmd_sample, "draw samples from a trained run with one sampler setting")
    p.add_argument("--spec", type=_spec, required=True)
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)

    p = add("evaluate", cmd_evaluate, "compute the metrics of one setting's samples against the test split")
    p.add_argument("--spec", type=_spec, required=True)
    p.add_argument("--samples", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)

    p = add("floor", cmd_floor, "compute the metrics of a fresh true sample (the data floor)")
    p.add_argument("--spec", type=_spec, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)

    p = add("tables", cmd_tables, "aggregate metrics and runs into CSV and LaTeX tables")
    p.add_argument("--metrics", type=Path, nargs="+", required=True)
    p.add_argument("--floors", type=Path, nargs="+", required=True)
    p.add_argument("--runs", type=Path, nargs="+", required=True)
    p.add_argument("--bench", type=Path, default=None)
    p.add_argument("--main", default=None, help="setting of the main table, SAMPLER_STEPS")
    p.add_argument("--models", nargs="+", default=None, help="models of the main and training tables (default all)")
    p.add_argument("--out", type=Path, required=True)

    p = add("tt-tables", cmd_tt_tables, "tables of the tensor-train experiments (comparison, grid, isolation, convergence)")
    p.add_argument("--runs", type=Path, nargs="+", required=True, help="every run directory")
    p.add_argument("--metrics", type=Path, required=True, help="results/tables/metrics.csv")
    p.add_argument("--floors", type=Path, nargs="+", required=True)
    p.add_argument("--main", required=True, help="sampling setting of the SWD column, SAMPLER_STEPS")
    p.add_argument("--data", type=Path, default=Path("results/data"))
    p.add_argument("--out", type=Path, required=True)

    p = add("tt-figures", cmd_tt_figures, "figures of the tensor-train experiments (PDF and PNG)")
    p.add_argument("--runs-table", type=Path, required=True, help="results/tables/tt_runs.csv")
    p.add_argument("--out", type=Path, required=True)

    p = add("figures", cmd_figures, "draw the figures (PDF and PNG) from the results")
    p.add_argument("--results", type=Path, required=True)
    p.add_argument("--main", default=None, help="setting whose samples are drawn, SAMPLER_STEPS")
    p.add_argument("--datasets", nargs="+", default=None, help="only these datasets (default: all in results)")
    p.add_argument("--models", nargs="+", default=None, help="only these models (default: all in results)")
    p.add_argument("--out", type=Path, required=True)

    p = add("bench", cmd_bench, "benchmark training and sampling speed, memory and parameter counts")
    p.add_argument("--spec", type=_spec, required=True)
    p.add_argument("--data", type=Path, default=Path("results/data"), help="folder of the datasets' folders")
    p.add_argument("--out", type=Path, required=True)

    p = add("complexity", cmd_complexity, "parameters, FLOPs per forward and training step, peak training memory")
    p.add_argument("--spec", type=_spec, required=True)
    p.add_argument("--data", type=Path, default=Path("results/data"), help="folder of the datasets' folders")
    p.add_argument("--out", type=Path, required=True, help="folder of complexity.csv")

    p = add("paper", cmd_paper, "render the LaTeX paper from the results and compile it")
    p.add_argument("--spec", type=_spec, required=True, help="the validated config, as JSON")
    p.add_argument("--results", type=Path, required=True)
    p.add_argument("--templates", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--no-compile", action="store_true")

    p = add("landscape", cmd_landscape, "loss surface of a trained run along two filter-normalised random directions")
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="CSV (alpha, beta, loss); a .json record is written beside")
    p.add_argument("--n", type=int, default=21, help="grid points per axis")
    p.add_argument("--span", type=float, default=1.0, help="alpha, beta in [-span, span]")
    p.add_argument("--points", type=int, default=4096, help="fixed evaluation triplets")
    p.add_argument("--seed", type=int, default=0, help="seed of the directions and the triplets")
    p.add_argument("--device", default="cpu")

    p = add("landscape-figure", cmd_landscape_figure, "contour plots of loss-landscape CSVs (PDF and PNG)")
    p.add_argument("--csv", type=Path, nargs="+", required=True)
    p.add_argument("--labels", nargs="+", required=True)
    p.add_argument("--out", type=Path, required=True, help="the .pdf; the .png gets the same stem")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, FloatingPointError, RuntimeError) as err:
        print(f"ttdm {args.command}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
