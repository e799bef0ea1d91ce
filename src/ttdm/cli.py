"""The ``ttdm`` command: one sub-command per pipeline stage, each called by one Snakemake rule.

Every stage takes its settings as a JSON spec (``--spec``), built by the workflow from the validated config, and
saves it beside its outputs. Imports are local to each command so that ``ttdm --help`` and light stages start fast.
The report commands (tables, figures, study reports, the paper) live in :mod:`ttdm.cli_report`.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path
from typing import Any

from ttdm.cli_report import (
    cmd_budget_report, cmd_dsno_report, cmd_figures, cmd_landscape_figure, cmd_paper, cmd_performer_report, cmd_tables,
    cmd_trilemma_report, cmd_tt_figures, cmd_tt_tables,
)


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
        raise argparse.ArgumentTypeError(f"--needs takes ROLE=RUN_DIR and --inputs ROLE=PATH, got {text!r}")
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

    train(args.spec, args.data, args.out, needs=dict(args.needs or []), inputs=dict(args.inputs or []))


def cmd_trajectories(args: argparse.Namespace) -> None:
    from ttdm.stages.trajectories import write_trajectories

    r = write_trajectories(args.spec, args.run, args.out)
    print(f"{args.out}: {r['n']} + {r['n_eval']} trajectories of {r['nfe']} {args.spec['solver']} steps, states "
          f"{r['states']} ({r['wall_s']:.1f} s)")


def cmd_dsno_eval(args: argparse.Namespace) -> None:
    from ttdm.stages.dsno_eval import dsno_eval

    table = dsno_eval(args.spec, args.run, args.teacher, args.trajectories, args.out)
    values = dict(zip(table["metric"], table["value"]))
    print(f"{args.out}: per-sample RMS error {values['error_mean']:.4g} (median {values['error_median']:.4g}); "
          + ", ".join(f"{k} {v:.3g}" for k, v in values.items() if k.startswith("time_ratio")))


def cmd_sample(args: argparse.Namespace) -> None:
    from ttdm.stages.sample import generate

    generate(args.spec, args.run, args.out)


def cmd_evaluate(args: argparse.Namespace) -> None:
    from ttdm.stages.evaluate import evaluate_run

    evaluate_run(args.spec, samples=args.samples, data_dir=args.data, out=args.out, classifier=args.classifier)


def cmd_floor(args: argparse.Namespace) -> None:
    from ttdm.stages.evaluate import evaluate_floor

    evaluate_floor(args.spec, data_dir=args.data, out=args.out, classifier=args.classifier)


def cmd_attention_bench(args: argparse.Namespace) -> None:
    import pandas as pd

    from ttdm.stages.attention_bench import run_attention_bench

    quiet = not sys.stdout.isatty()  # one line per measurement on a terminal only; the fitted slopes always
    written = run_attention_bench(args.spec, args.out, log=(lambda _: None) if quiet else print)
    print(pd.read_csv(args.out / "attention_fit.csv").to_string(index=False))
    print("wrote " + ", ".join(map(str, written)))


def cmd_attention_error(args: argparse.Namespace) -> None:
    from ttdm.stages.attention_error import attention_error

    table = attention_error(args.spec, run_dir=args.run, data_dir=args.data, out=args.out)
    curve = table.groupby("features")["rel_error"].mean()
    print(f"{args.out}: FAVOR+ relative error {curve.iloc[0]:.3g} at m = {curve.index[0]}, {curve.iloc[-1]:.3g} at "
          f"m = {curve.index[-1]} ({table['tokens'].iloc[0]} tokens of width {table['dim_head'].iloc[0]})")


def cmd_bench(args: argparse.Namespace) -> None:
    from ttdm.stages.bench import run_benchmarks

    run_benchmarks(args.spec, args.out, meta_files=args.meta)


def cmd_complexity(args: argparse.Namespace) -> None:
    from ttdm.stages.complexity import complexity

    complexity(args.spec, args.meta, args.out)


def cmd_landscape(args: argparse.Namespace) -> None:
    from ttdm.stages.landscape import write_landscape

    df = write_landscape(args.run, args.data, args.out, n=args.n, span=args.span, n_points=args.points,
                         seed=args.seed, device=args.device)
    print(f"{args.out}: {len(df)} grid points, loss at the trained weights {df.attrs['loss_at_minimum']:.6g}")


@functools.cache
def build_parser() -> argparse.ArgumentParser:
    """The parser of every command, built once per process (about 25 ms): the warm worker builds it before it forks,
    so a job's command only parses.  No command changes its parsed arguments in place (defaults are shared)."""
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
    p.add_argument("--inputs", type=_role_dir, nargs="*", default=[], metavar="ROLE=PATH",
                   help="the other files its method reads (Method.inputs, e.g. teacher trajectories), by role")

    p = add("trajectories", cmd_trajectories,
            "a DSNO student's teacher trajectories: the teacher's probability-flow ODE from seeded noises")
    p.add_argument("--spec", type=_spec, required=True, help="ttdm.config.dsno.trajectory_jobs: one job's spec")
    p.add_argument("--run", type=Path, required=True, help="the teacher run's folder (model.pt)")
    p.add_argument("--out", type=Path, required=True, help="the .npz; its record is written beside it (.json)")

    p = add("dsno-eval", cmd_dsno_eval,
            "a DSNO student against its teacher: per-sample error on held-out noises, forward time against the backbone")
    p.add_argument("--spec", type=_spec, required=True, help="batch_sizes, repeats, device, threads")
    p.add_argument("--run", type=Path, required=True, help="the student run's folder")
    p.add_argument("--teacher", type=Path, required=True, help="the teacher run's folder")
    p.add_argument("--trajectories", type=Path, required=True, help="the student's trajectories file (.npz)")
    p.add_argument("--out", type=Path, required=True, help="the CSV; its spec is written beside it (.spec.json)")

    p = add("sample", cmd_sample, "draw samples from a trained run with one sampler setting")
    p.add_argument("--spec", type=_spec, required=True)
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)

    p = add("evaluate", cmd_evaluate, "compute the metrics of one setting's samples against the test split")
    p.add_argument("--spec", type=_spec, required=True)
    p.add_argument("--samples", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--classifier", type=Path, help="the dataset's classifier model.pt: adds FD, PRDC and class KL")

    p = add("floor", cmd_floor, "compute the metrics of a fresh true sample (the data floor)")
    p.add_argument("--spec", type=_spec, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--classifier", type=Path, help="the dataset's classifier model.pt: adds FD, PRDC and class KL")

    p = add("classifier", cmd_classifier, "train the feature classifier of a labelled image dataset")
    p.add_argument("--spec", type=_spec, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)

    p = add("tables", cmd_tables, "aggregate metrics and runs into CSV and LaTeX tables (the DDPM study's)")
    p.add_argument("--spec", type=_spec, required=True, help="the validated config, as JSON")
    p.add_argument("--metrics", type=Path, nargs="+", required=True, help="per-setting metrics CSVs of every run")
    p.add_argument("--floors", type=Path, nargs="+", required=True, help="floor.csv of every dataset")
    p.add_argument("--runs", type=Path, nargs="+", required=True, help="train.json of every run")
    p.add_argument("--bench", type=Path, nargs="*", default=[], help="benchmark CSVs, one table each")
    p.add_argument("--out", type=Path, required=True)

    p = add("budget-report", cmd_budget_report, "table and figure of the training-budget study (quality against steps)")
    p.add_argument("--spec", type=_spec, required=True, help="the validated config, as JSON (it lists the runs read)")
    p.add_argument("--out", type=Path, required=True, help="results/: writes tables/budget* and figures/budget.*")

    p = add("trilemma-report", cmd_trilemma_report,
            "tables and Pareto figure of the trilemma study (quality, diversity, speed of every method and sampler)")
    p.add_argument("--spec", type=_spec, required=True, help="the validated config, as JSON (it lists the runs read)")
    p.add_argument("--out", type=Path, required=True, help="results/: writes tables/trilemma* and figures/trilemma*")

    p = add("performer-report", cmd_performer_report,
            "tables and figures of the Performer study (softmax against FAVOR+ attention in the U-Net)")
    p.add_argument("--spec", type=_spec, required=True, help="the validated config, as JSON (it lists the files read)")
    p.add_argument("--out", type=Path, required=True, help="results/: writes tables/performer* and figures/attention*")

    p = add("dsno-report", cmd_dsno_report,
            "tables of the DSNO study (one-step students beside the other methods, the ablation, the targets)")
    p.add_argument("--spec", type=_spec, required=True, help="the validated config, as JSON (it lists the files read)")
    p.add_argument("--out", type=Path, required=True, help="results/: writes tables/dsno*")

    p = add("attention-bench", cmd_attention_bench,
            "time and memory of softmax and FAVOR+ attention against sequence length, and U-Net steps on larger images")
    p.add_argument("--spec", type=_spec, required=True,
                   help="lengths_max, explicit_max, heads, dim_head, repeats, unet_sizes, unet_batch, device, threads")
    p.add_argument("--out", type=Path, required=True, help="folder of attention.csv, attention_fit.csv, attention_unet.csv")

    p = add("attention-error", cmd_attention_error,
            "FAVOR+'s relative error on a trained U-Net's own attention inputs against the number of features m")
    p.add_argument("--spec", type=_spec, required=True, help="times, features, draws, n_images, seed, device, threads")
    p.add_argument("--run", type=Path, required=True, help="the run's folder (model.pt)")
    p.add_argument("--data", type=Path, required=True, help="the dataset's folder (test.npy)")
    p.add_argument("--out", type=Path, required=True, help="the CSV; its spec is written beside it (.spec.json)")

    p = add("tt-tables", cmd_tt_tables, "tables of the tensor-train experiments (comparison, grid, isolation, convergence)")
    p.add_argument("--spec", type=_spec, required=True, help="the validated config, as JSON (it gives each run's spec)")
    p.add_argument("--runs", type=Path, nargs="+", required=True, help="train.json of every run")
    p.add_argument("--losses", type=Path, nargs="+", required=True, help="loss.csv of every run")
    p.add_argument("--metrics", type=Path, required=True, help="results/tables/metrics.csv")
    p.add_argument("--floors", type=Path, nargs="+", required=True, help="floor.csv of every dataset")
    p.add_argument("--meta", type=Path, nargs="+", required=True, help="meta.json of every dataset")
    p.add_argument("--likelihood", type=Path, nargs="*", default=[],
                   help="test-NLL CSVs (results/likelihood/...) of the runs on the TT datasets")
    p.add_argument("--out", type=Path, required=True)

    p = add("tt-figures", cmd_tt_figures, "figures of the tensor-train experiments (PDF and PNG)")
    p.add_argument("--spec", type=_spec, required=True, help="the validated config, as JSON")
    p.add_argument("--runs-table", type=Path, required=True, help="results/tables/tt_runs.csv")
    p.add_argument("--losses", type=Path, nargs="*", default=[], help="loss.csv of the convergence figures' runs")
    p.add_argument("--out", type=Path, required=True)

    p = add("figures", cmd_figures, "draw one dataset's figures (PDF and PNG) from the given result files")
    p.add_argument("--spec", type=_spec, required=True, help="the validated config, as JSON")
    p.add_argument("--dataset", required=True)
    p.add_argument("--samples", type=Path, nargs="+", required=True, help="samples file (.npz) shown per model")
    p.add_argument("--losses", type=Path, nargs="+", required=True, help="loss.csv of every run drawn")
    p.add_argument("--metrics", type=Path, nargs="+", required=True, help="per-setting metrics CSVs of the runs")
    p.add_argument("--floor", type=Path, required=True, help="the dataset's floor.csv")
    p.add_argument("--test", type=Path, required=True, help="the dataset's test.npy")
    p.add_argument("--meta", type=Path, required=True, help="the dataset's meta.json")
    p.add_argument("--out", type=Path, required=True)

    p = add("bench", cmd_bench, "benchmark training and sampling speed, memory and parameter counts")
    p.add_argument("--spec", type=_spec, required=True)
    p.add_argument("--meta", type=Path, nargs="+", required=True, help="meta.json of the benchmarked models' datasets")
    p.add_argument("--out", type=Path, required=True)

    p = add("complexity", cmd_complexity, "parameters, FLOPs per forward and training step, peak training memory")
    p.add_argument("--spec", type=_spec, required=True)
    p.add_argument("--meta", type=Path, nargs="+", required=True, help="meta.json of the models' datasets")
    p.add_argument("--out", type=Path, required=True, help="folder of complexity.csv")

    p = add("paper", cmd_paper, "render the LaTeX paper from the given result files and compile it")
    p.add_argument("--spec", type=_spec, required=True, help="the validated config, as JSON")
    p.add_argument("--templates", type=Path, required=True)
    p.add_argument("--tables", type=Path, nargs="+", required=True, help="the studies' tables (results/tables)")
    p.add_argument("--figures", type=Path, nargs="*", default=[], help="the studies' figures (PDF)")
    p.add_argument("--meta", type=Path, nargs="*", default=[], help="meta.json of every dataset")
    p.add_argument("--runs", type=Path, nargs="*", default=[], help="train.json of every run (provenance)")
    p.add_argument("--inputs", type=Path, nargs="*", default=[], help="other files the studies read")
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

    p = add("likelihood", cmd_likelihood, "test NLL of a run by the probability-flow ODE (nats per dimension)")
    p.add_argument("--spec", type=_spec, required=True)
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)

    p = add("likelihood-floor", cmd_likelihood_floor, "true test NLL of a Gaussian-mixture dataset (the floor)")
    p.add_argument("--spec", type=_spec, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)

    p = add("worker", cmd_worker, "serve ttdm commands by forking a warm process (started by the workflow)")
    p.add_argument("--socket", type=Path, required=True, help="Unix socket to listen on")
    return parser


def cmd_likelihood(args: argparse.Namespace) -> None:
    from ttdm.stages.likelihood import run_nll

    record = run_nll(args.spec, run_dir=args.run, data_dir=args.data, out=args.out)
    if "nll" in record:
        print(f"{args.out}: NLL {record['nll']:.4f} ± {record['nll_std_err']:.4f} nats/dim ({record['nfe']:.0f} NFE)")
    if "elbo" in record:
        print(f"{args.out}: bound {record['elbo']:.4f} ± {record['elbo_std_err']:.4f} nats/dim "
              f"({record['elbo_bpd']:.4f} bits/dim)")


def cmd_classifier(args: argparse.Namespace) -> None:
    from ttdm.stages.classifier import train_classifier_stage

    record = train_classifier_stage(args.spec, data_dir=args.data, out_dir=args.out)
    print(f"{args.out}: test accuracy {record['test_accuracy']:.4f} ({record['wall_s']:.1f} s)")


def cmd_likelihood_floor(args: argparse.Namespace) -> None:
    from ttdm.stages.likelihood import floor_nll

    floor_nll(args.spec, data_dir=args.data, out=args.out)


def cmd_worker(args: argparse.Namespace) -> None:
    from ttdm.worker import serve

    serve(args.socket)


def main(argv: list[str] | None = None, *, started: float | None = None) -> int:
    """Run ``ttdm argv`` in this process (the console script, :mod:`ttdm.launcher`, first offers it to the warm
    worker of a local Snakemake run, whose child then calls this).

    Every command ends its log with one line ``ttdm COMMAND: start-up S s (imports I s), total T s``: S is the
    time from the process's start (the client's, through the worker) to the command's work, imports included.
    ``scripts/pipeline_bench.py`` sums these lines into the pipeline's job overhead.
    """
    from ttdm.timing import ImportClock, process_start_time

    started = process_start_time() if started is None else started
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    clock = ImportClock()
    code = 0
    try:
        with clock:
            args.func(args)
    except (ValueError, FileNotFoundError, FloatingPointError, RuntimeError) as err:
        print(f"ttdm {args.command}: error: {err}", file=sys.stderr)
        code = 1
    if args.command != "worker":
        print(clock.summary(f"ttdm {args.command}", started), file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
