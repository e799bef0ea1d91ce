# Everything that is not a rule: config validation, the grid, wildcard constraints, input and params functions.
import json
import os
import sys
from pathlib import Path

from ttdm import config as cfg

# Validate before any job starts: unknown keys, wrong types, unknown component names, a grid naming undefined
# datasets/models... are all reported at once with their key paths (ttdm.config.validate_config).
try:
    config.update(
        cfg.validate_config(
            config,
            source=", ".join(map(str, workflow.configfiles)) or "config",
            schema_path=os.path.join(workflow.basedir, "workflow", "schemas", "config.schema.yaml"),
        )
    )
except cfg.ConfigError as err:  # the message names every bad key: no traceback to read through
    sys.stderr.write(f"{err}\n")
    sys.exit(1)

RUNS = list(cfg.runs(config))  # (dataset, model, seed) of every training job
MAIN_MODELS = cfg.main_models(config)  # models of the main table and the per-dataset figures
TT_PLAN = cfg.tt_plan(config)
DATASETS = cfg.used_datasets(config)
SEEDS = config["seeds"]
CONDA_ENV = f"../../envs/{config['conda_env']}.yaml"  # relative to the rule files


wildcard_constraints:
    dataset=r"[A-Za-z0-9_-]+",
    model=r"[A-Za-z0-9_-]+",
    seed=r"\d+",
    setting=r"[A-Za-z0-9_-]+_\d+",


def run_paths(pattern):
    """`pattern` formatted for every training run."""
    return [pattern.format(dataset=d, model=m, seed=s) for d, m, s in RUNS]


SETTINGS = {(d, m): cfg.run_settings(config, d, m) for d, m in dict.fromkeys((d, m) for d, m, _ in RUNS)}


def setting_paths(pattern, runs=None):
    """`pattern` formatted for every sampler setting of every training run (or of `runs`)."""
    return [
        pattern.format(dataset=d, model=m, seed=s, setting=k) for d, m, s in (runs or RUNS) for k in SETTINGS[(d, m)]
    ]


def run_needs(wildcards):
    """The model.pt of every run this run needs (same dataset and seed), by role."""
    needs = cfg.needs_of(config, wildcards.dataset, wildcards.model)
    return {role: f"results/runs/{wildcards.dataset}/{m}/{wildcards.seed}/model.pt" for role, m in needs.items()}


def needs_args(wildcards, input):
    """--needs ROLE=RUN_DIR for every needed run (empty when none)."""
    needs = cfg.needs_of(config, wildcards.dataset, wildcards.model)
    return " ".join(f"{role}={os.path.dirname(input[role])}" for role in needs)


def dataset_runs(pattern):
    """An input function: `pattern` formatted for every main-model run on the job's dataset (and every setting)."""

    def inputs(wildcards):
        runs = [(d, m, s) for d, m, s in RUNS if d == wildcards.dataset and m in MAIN_MODELS]
        return setting_paths(pattern, runs) if "{setting}" in pattern else run_paths_of(pattern, runs)

    return inputs


def run_paths_of(pattern, runs):
    return [pattern.format(dataset=d, model=m, seed=s) for d, m, s in runs]


def dataset_models(wildcards):
    """Main models trained on the job's dataset (names are restricted to [A-Za-z0-9_-] by the schema)."""
    return sorted({m for d, m, _ in RUNS if d == wildcards.dataset and m in MAIN_MODELS})


def as_json(spec):
    return json.dumps(spec, sort_keys=True)


def data_spec(wildcards):
    return as_json(cfg.data_spec(config, wildcards.dataset))


def user_data_file(wildcards):
    """A user's data file is an input of its data job, so editing the file reruns everything downstream."""
    path = config["datasets"][wildcards.dataset].get("path")
    return [path] if path else []


def run_spec(wildcards):
    return as_json(cfg.run_spec(config, wildcards.dataset, wildcards.model, int(wildcards.seed)))


def sample_spec(wildcards):
    return as_json(cfg.sample_spec(config, wildcards.dataset, int(wildcards.seed), wildcards.setting))


def eval_spec(wildcards):
    return as_json(cfg.eval_spec(config, int(wildcards.get("seed", 0))))


def config_spec(wildcards):
    # where jobs run (cluster resources) is not part of the experiment: it neither reruns nor changes the paper
    return as_json({key: value for key, value in config.items() if key != "resources"})


def bench_spec(wildcards):
    return as_json(cfg.bench_spec(config))


def final_outputs():
    return ["results/paper/paper.pdf"]


BENCH_FILES = [f"results/bench/{name}" for name in ("models.csv", "train.csv", "sampling.csv")]
PAPER_TEMPLATES = sorted(str(p) for p in Path("paper").rglob("*") if p.is_file())
TT_FIGURES = (
    [f"results/figures/tt_convergence_{d}.pdf" for d in TT_PLAN["convergence"]]
    + (["results/figures/tt_rank.pdf"] if TT_PLAN["rank"] else [])
    + (["results/figures/tt_isolation.pdf"] if TT_PLAN["isolation"] else [])
)
LANDSCAPE = config.get("landscape")
LANDSCAPE_CSVS = (
    [f"results/landscape/{LANDSCAPE['dataset']}/{m}/{LANDSCAPE['seed']}.csv" for m in LANDSCAPE["models"]]
    if LANDSCAPE
    else []
)
TT_OUTPUTS = (
    (["results/tables/tt_runs.csv"] + TT_FIGURES if TT_PLAN["any"] else [])
    + (["results/figures/landscape.pdf"] if LANDSCAPE else [])
)
FIGURES_PDF = expand("results/figures/{dataset}_{kind}.pdf", dataset=DATASETS, kind=["samples", "loss", "nfe"])


def job_resources(kind, threads=1, gpu=False):
    """Resources of a `kind` job for a cluster executor (config `resources`, see the schema): runtime (minutes) and
    mem_mb grow with the attempt, so a job retried after a timeout or running out of memory gets more of both."""
    res = cfg.job_resources(config, kind, threads=threads, gpu=gpu)
    runtime, mem_mb = res.pop("runtime"), res.pop("mem_mb")
    return {
        "runtime": lambda wildcards, attempt: runtime * attempt,
        "mem_mb": lambda wildcards, attempt: mem_mb * attempt,
        **res,
    }
