# The Performer study (issue 12, seed 002): the softmax and FAVOR+ U-Nets are ordinary grid runs (rules train,
# sample, evaluate, likelihood); these rules measure FAVOR+'s error on their attention inputs and the cost of
# attention against the sequence length, and turn everything into the section's tables and figures.

from ttdm.report.studies import performer as performer_study

PERFORMER = STUDY_OUTPUTS["performer"]["performer-report"]
PERFORMER_BENCH = STUDY_OUTPUTS["performer"]["attention-bench"]
PERFORMER_INPUTS = performer_study.inputs_of(config)

if PERFORMER:

    rule attention_error:
        """FAVOR+'s relative error on one trained U-Net's attention inputs (test images noised to a few t) against
        the number of random features m, over seeded projection draws."""
        input:
            model="results/runs/{dataset}/{model}/{seed}/model.pt",
            test="results/data/{dataset}/test.npy",
        output:
            "results/attention/{dataset}/{model}/{seed}.csv",
        params:
            spec=lambda wildcards: as_json(performer_study.error_spec(config)),
            run=subpath(input.model, parent=True),
            data=subpath(input.test, parent=True),
        resources:
            **job_resources("sample", threads=config["threads"], gpu=True),
        conda:
            CONDA_ENV
        log:
            "logs/attention/{dataset}/{model}/{seed}.log",
        benchmark:
            "benchmarks/attention/{dataset}/{model}/{seed}.tsv"
        threads: config["threads"]
        shell:
            "ttdm attention-error --spec {params.spec:q} --run {params.run:q} --data {params.data:q}"
            " --out {output:q} > {log:q} 2>&1"

    rule attention_bench:
        """Time and memory of softmax and FAVOR+ attention against the sequence length (slopes, crossover), and
        U-Net training steps on larger images with each attention."""
        priority: 50  # a long single-core job: start it early rather than alone at the end
        output:
            PERFORMER_BENCH,
        params:
            spec=lambda wildcards: as_json(performer_study.bench_spec(config)),
            out=lambda wildcards, output: os.path.dirname(output[0]),
        resources:
            **job_resources("bench", threads=config["threads"], gpu=True),
        conda:
            CONDA_ENV
        log:
            "logs/attention_bench.log",
        benchmark:
            "benchmarks/attention_bench.tsv"
        threads: config["threads"]
        shell:
            "ttdm attention-bench --spec {params.spec:q} --out {params.out:q} > {log:q} 2>&1"

    rule performer_report:
        """Softmax against FAVOR+ U-Net (time per step, memory, FD, precision/recall, class KL, ELBO), the
        approximation error against m, the scaling figure and table, and the targets."""
        input:
            files=PERFORMER_INPUTS["files"],
            errors=PERFORMER_INPUTS["errors"],
            bench=PERFORMER_INPUTS["bench"],
            complexity=PERFORMER_INPUTS["complexity"],
            devices=PERFORMER_INPUTS["devices"],  # the benchmark measured on other devices (performer.device_benchmarks)
        output:
            tables=[f for f in PERFORMER if "/tables/" in f],
            pdf=[f for f in PERFORMER if f.endswith(".pdf")],
            png=report(
                [f.replace(".pdf", ".png") for f in PERFORMER if f.endswith(".pdf")],
                caption="../report/performer.rst",
                category="Performer",
            ),
        params:
            spec=config_spec,
        conda:
            CONDA_ENV
        log:
            "logs/performer_report.log",
        shell:
            "ttdm performer-report --spec {params.spec:q} --out results > {log:q} 2>&1"
