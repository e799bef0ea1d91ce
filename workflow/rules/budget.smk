# The training-budget study (issue 9): the budget runs are ordinary grid runs (rules train, sample, evaluate,
# likelihood) that `budget:` in the config generates; this rule turns them into a table and a figure.

from ttdm.report.studies import budget as budget_study

BUDGET = STUDY_OUTPUTS["budget"]["budget-report"]
BUDGET_INPUTS = budget_study.inputs_of(config)

if BUDGET:

    rule budget_report:
        """Quality and test NLL against training steps and seconds; how far each main network is from converged."""
        input:
            files=BUDGET_INPUTS["files"],
            floors=BUDGET_INPUTS["floors"],
            nll_floors=BUDGET_INPUTS["nll_floors"],
        output:
            tables=[f for f in BUDGET if "/tables/" in f],
            pdf=[f for f in BUDGET if f.endswith(".pdf")],
            png=report(
                [f.replace(".pdf", ".png") for f in BUDGET if f.endswith(".pdf")],
                caption="../report/budget.rst",
                category="Training budget",
            ),
        params:
            spec=config_spec,
        conda:
            CONDA_ENV
        log:
            "logs/budget_report.log",
        shell:
            "ttdm budget-report --spec {params.spec:q} --out results > {log:q} 2>&1"
