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


rule all:
    input:
        final_outputs(),
    default_target: True
