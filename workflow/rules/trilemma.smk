# The trilemma study (issue 11, seed 001): the methods' runs are ordinary grid runs (rules train, sample, evaluate,
# likelihood); this rule turns them into the per-dataset tables, the targets and the Pareto figure.

from ttdm.report.studies import trilemma as trilemma_study

TRILEMMA = STUDY_OUTPUTS["trilemma"]["trilemma-report"]
TRILEMMA_INPUTS = trilemma_study.inputs_of(config)

if TRILEMMA:

    rule trilemma_report:
        """Quality, diversity and speed of every method and sampler setting; ranks, Pareto front and targets."""
        input:
            files=TRILEMMA_INPUTS["files"],
            floors=TRILEMMA_INPUTS["floors"],
        output:
            tables=[f for f in TRILEMMA if "/tables/" in f],
            pdf=[f for f in TRILEMMA if f.endswith(".pdf")],
            png=report(
                [f.replace(".pdf", ".png") for f in TRILEMMA if f.endswith(".pdf")],
                caption="../report/trilemma.rst",
                category="Trilemma",
            ),
        params:
            spec=config_spec,
        conda:
            CONDA_ENV
        log:
            "logs/trilemma_report.log",
        shell:
            "ttdm trilemma-report --spec {params.spec:q} --out results > {log:q} 2>&1"
