# Everything that is not a rule: config validation, the grid, wildcard constraints, input and params functions.
import json
import os
import sys
from pathlib import Path

from ttdm import config as cfg

# Validate before any job starts: unknown keys, wrong types, unknown component names, a grid naming undefined
# datasets/models, every component's options (a data file is read)... are all reported at once with their key paths
# (ttdm.config.validate_config). A valid config's result is cached in .snakemake/ttdm/, keyed by the config, the
# schema and the fingerprints of ttdm's sources and of the data files, so an unchanged setup skips the registries.
try:
    config.update(
        cfg.validate_config(
            config,
            source=", ".join(map(str, workflow.configfiles)) or "config",
            schema_path=os.path.join(workflow.basedir, "workflow", "schemas", "config.schema.yaml"),
            cache_dir=os.path.join(".snakemake", "ttdm"),
        )
    )
except cfg.ConfigError as err:  # the message names every bad key: no traceback to read through
    sys.stderr.write(f"{err}\n")
    sys.exit(1)

RUNS = list(cfg.runs(config))  # (dataset, model, seed) of every training job
MAIN_MODELS = cfg.main_models(config)  # models of the main table and the per-dataset figures
DATASETS = cfg.used_datasets(config)
SEEDS = config["seeds"]
CONDA_ENV = f"../../envs/{config['conda_env']}.yaml"  # relative to the rule files


wildcard_constraints:
    dataset=r"[A-Za-z0-9_-]+",
    model=r"[A-Za-z0-9_-]+",
    seed=r"\d+",
    setting=r"[A-Za-z0-9_-]+_\d+",
    teacher=r"[A-Za-z0-9_-]+",
    key=r"[A-Za-z0-9_-]+",


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


def run_inputs(wildcards):
    """The other files the run's method reads (Method.inputs, e.g. a student's teacher trajectories), by role."""
    return cfg.inputs_of(config, wildcards.dataset, wildcards.model, int(wildcards.seed))


def inputs_args(wildcards, input):
    """--inputs ROLE=PATH for every such file (empty when none)."""
    roles = cfg.inputs_of(config, wildcards.dataset, wildcards.model, int(wildcards.seed))
    return " ".join(f"{role}={input[role]}" for role in roles)


from ttdm.report.studies import ddpm as ddpm_study
from ttdm.report.studies import paper_files, study_outputs
from ttdm.report.studies import tensor_train as tt_study


def figure_inputs(wildcards):
    """Every file `ttdm figures` reads for the job's dataset (ttdm.report.studies.ddpm.figure_inputs), by role."""
    return ddpm_study.figure_inputs(config, wildcards.dataset)


def bench_meta(spec):
    """meta.json of the datasets of a bench/complexity spec's models: the only data files those jobs read."""
    return [f"results/data/{d}/meta.json" for d in dict.fromkeys(e["dataset"] for e in spec["models"].values())]


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


def classifier_spec(wildcards):
    return as_json(cfg.classifier_spec(config))


CLASSIFIED = set(cfg.classifier_datasets(config))  # datasets whose metrics add the classifier's FD, PRDC, class KL


def classifier_input(wildcards):
    """The dataset's classifier (model.pt) for its evaluate and floor jobs, when it has one."""
    return {"classifier": f"results/classifier/{wildcards.dataset}/model.pt"} if wildcards.dataset in CLASSIFIED else {}


def classifier_arg(wildcards, input):
    return f"--classifier {input.classifier}" if "classifier" in input.keys() else ""


def config_spec(wildcards):
    # where jobs run (cluster resources) is not part of the experiment: it neither reruns nor changes the paper
    return as_json({key: value for key, value in config.items() if key != "resources"})


def bench_spec(wildcards):
    return as_json(cfg.bench_spec(config))


def final_outputs():
    """The paper, and the test likelihoods (not yet in the paper) when the config asks for them."""
    nll = [f"results/likelihood/{d}/{m}/{s}.csv" for d, m, s in cfg.likelihood_runs(config)]
    floors = [f"results/likelihood/{d}/floor.csv" for d in dict.fromkeys(d for d, _, _ in cfg.likelihood_runs(config))]
    return ["results/paper/paper.pdf", *nll, *floors]


# The paper's studies (ttdm.report.studies): each declares, from the config, the tables and figures its commands
# write ({study: {command: files}}); the rules of a study take their outputs from it, and the paper rule reads the
# outputs and inputs of every registered study.
STUDY_OUTPUTS = study_outputs(config)
DDPM = STUDY_OUTPUTS["ddpm"]
TT = STUDY_OUTPUTS["tensor_train"]
PAPER_FILES = paper_files(config)  # {"tables", "figures", "inputs"}: what `ttdm paper` reads
FIGURE_KINDS = ddpm_study.figure_kinds(config)  # {dataset}_{kind}.pdf/.png, one figures job per dataset
FIGURE_REPORT = {  # caption, category and label of each kind's PNG in `snakemake --report`
    "samples": ("../report/samples.rst", "Samples", "samples over data"),
    "loss": ("../report/loss.rst", "Training loss", "loss"),
    "nfe": ("../report/nfe.rst", "Quality vs NFE", "quality vs NFE"),
}
TT_FIGURES = TT["tt-figures"]
BENCH_FILES = [f"results/bench/{name}" for name in ("models.csv", "train.csv", "sampling.csv")]
PAPER_TEMPLATES = sorted(str(p) for p in Path("paper").rglob("*") if p.is_file())
LANDSCAPE = config.get("landscape") or {}
LANDSCAPE_CSVS = tt_study.landscape_files(config)


# DSNO (workflow/rules/dsno.smk): every teacher-trajectories file a student reads, {path: spec}, and every student the
# study evaluates against its teacher, by its dsno-eval CSV.
from ttdm.config import dsno as dsno_cfg
from ttdm.report.studies import dsno as dsno_study

TRAJECTORIES = dsno_cfg.trajectory_jobs(config)
DSNO_EVALS = {e["eval"]: e for e in dsno_study.eval_entries(config)}


def dsno_eval_inputs(wildcards):
    """The teacher's model.pt and the trajectories file of a student's dsno-eval job."""
    entry = DSNO_EVALS[dsno_cfg.eval_path(wildcards.dataset, wildcards.model, wildcards.seed)]
    return {"teacher": f"{entry['teacher']}/model.pt", "trajectories": entry["trajectories"]}


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
