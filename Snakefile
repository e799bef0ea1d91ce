# ttdm: data -> DDPM training -> sampling -> metrics -> tables and figures -> LaTeX paper.
# Quick preset: `snakemake` (config.yaml). Full GPU preset: `snakemake --configfile workflow/presets/full.yaml`.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/tt.smk"
include: "workflow/rules/likelihood.smk"
include: "workflow/rules/budget.smk"
include: "workflow/rules/trilemma.smk"
include: "workflow/rules/performer.smk"
include: "workflow/rules/dsno.smk"


# Snakemake starts a 1-second re-evaluation timer in every scheduling round that leaves ready jobs, and each timer's
# round starts another: with hundreds of short jobs the rounds grow quadratically. Keep one timer pending
# (src/ttdm/snakemake_rounds.py).
from ttdm.snakemake_rounds import one_pending_reevaluation

one_pending_reevaluation()


# Local runs: one warm `ttdm worker` imports torch once and every job's `ttdm` forks from it (src/ttdm/worker.py);
# cluster jobs, conda environments and TTDM_NO_WORKER=1 run each command in its own process.
WORKER = {}


onstart:
    if workflow.local_exec and not workflow.deployment_settings.deployment_method and not os.environ.get("TTDM_NO_WORKER"):
        from ttdm import worker

        WORKER["proc"] = worker.start(log="logs/worker.log")


onsuccess:
    if WORKER:
        from ttdm import worker

        worker.stop(WORKER.pop("proc"))


onerror:
    if WORKER:
        from ttdm import worker

        worker.stop(WORKER.pop("proc"))


rule all:
    input:
        final_outputs(),
    default_target: True
