localrules:
    tables,
    tt_tables,
    figures,
    tt_figures,
    landscape_figure,
    paper,


rule tables:
    """Every metric and run aggregated: CSV and booktabs LaTeX, mean ± std over seeds and multiples of the floor."""
    input:
        metrics=setting_paths("results/metrics/{dataset}/{model}/{seed}/{setting}.csv"),
        floors=expand("results/metrics/{dataset}/floor.csv", dataset=DATASETS),
        runs=run_paths("results/runs/{dataset}/{model}/{seed}/train.json"),
        bench=BENCH_FILES,
        complexity="results/bench/complexity.csv",
    output:
        summary="results/tables/summary.csv",
        summary_tex="results/tables/summary.tex",
        metrics="results/tables/metrics.csv",
    params:
        runs=run_paths("results/runs/{dataset}/{model}/{seed}"),
        bench=lambda wildcards, input: os.path.dirname(input.bench[0]),
        main=cfg.main_setting(config),
        models=MAIN_MODELS,
        out=subpath(output.summary, parent=True),
    conda:
        CONDA_ENV
    log:
        "logs/tables.log",
    shell:
        "ttdm tables --metrics {input.metrics:q} --floors {input.floors:q} --runs {params.runs:q}"
        " --bench {params.bench:q} --main {params.main:q} --models {params.models:q} --out {params.out:q}"
        " > {log:q} 2>&1"


rule bench:
    """Training steps/s, sampling time per 1000 samples for each step count, peak memory, parameter counts."""
    priority: 50  # a long single-core job: start it early rather than alone at the end
    input:
        meta=expand("results/data/{dataset}/meta.json", dataset=DATASETS),
    output:
        BENCH_FILES,
    params:
        spec=bench_spec,
        out=lambda wildcards, output: os.path.dirname(output[0]),
    resources:
        **job_resources("bench", threads=config["threads"], gpu=True),
    conda:
        CONDA_ENV
    log:
        "logs/bench.log",
    threads: config["threads"]
    shell:
        "ttdm bench --spec {params.spec:q} --data results/data --out {params.out:q} > {log:q} 2>&1"


rule figures:
    """Samples over data, loss curves and SWD vs NFE of one dataset (PDF for the paper, PNG for the report)."""
    input:
        samples=dataset_runs("results/samples/{dataset}/{model}/{seed}/{setting}.npz"),
        loss=dataset_runs("results/runs/{dataset}/{model}/{seed}/loss.csv"),
        metrics=dataset_runs("results/metrics/{dataset}/{model}/{seed}/{setting}.csv"),
        floor="results/metrics/{dataset}/floor.csv",
        test="results/data/{dataset}/test.npy",
    output:
        samples="results/figures/{dataset}_samples.pdf",
        loss="results/figures/{dataset}_loss.pdf",
        nfe="results/figures/{dataset}_nfe.pdf",
        samples_png=report(
            "results/figures/{dataset}_samples.png",
            caption="../report/samples.rst",
            category="Samples",
            labels={"dataset": "{dataset}", "figure": "samples over data"},
        ),
        loss_png=report(
            "results/figures/{dataset}_loss.png",
            caption="../report/loss.rst",
            category="Training loss",
            labels={"dataset": "{dataset}", "figure": "loss"},
        ),
        nfe_png=report(
            "results/figures/{dataset}_nfe.png",
            caption="../report/nfe.rst",
            category="Quality vs NFE",
            labels={"dataset": "{dataset}", "figure": "SWD vs NFE"},
        ),
    params:
        main=cfg.main_setting(config),
        models=dataset_models,
    conda:
        CONDA_ENV
    log:
        "logs/figures/{dataset}.log",
    shell:
        "ttdm figures --results results --datasets {wildcards.dataset} --models {params.models}"
        " --main {params.main:q} --out results/figures > {log:q} 2>&1"


rule paper:
    """The paper: templates in paper/ rendered from results/ and compiled by latexmk."""
    input:
        templates=PAPER_TEMPLATES,
        tables="results/tables/summary.csv",
        figures=FIGURES_PDF,
        bench=BENCH_FILES,
        tt=TT_OUTPUTS,
    output:
        tex="results/paper/paper.tex",
        pdf=report("results/paper/paper.pdf", caption="../report/paper.rst", category="Paper"),
    params:
        spec=config_spec,
        out=subpath(output.pdf, parent=True),
    conda:
        CONDA_ENV
    log:
        "logs/paper.log",
    shell:
        "ttdm paper --spec {params.spec:q} --results results --templates paper --out {params.out:q} > {log:q} 2>&1"
