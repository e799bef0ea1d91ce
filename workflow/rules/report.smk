# The paper's studies (ttdm.report.studies) and the paper. Every rule passes the files its command reads on the
# command line and declares the same files as its inputs; its outputs are what the study declares for the config.
localrules:
    tables,
    tt_tables,
    figures,
    tt_figures,
    landscape_figure,
    paper,


rule tables:
    """DDPM baselines: every metric and run aggregated (CSV and booktabs LaTeX, mean ± std over seeds, multiples of
    the floor), the divergence of every run and sampler setting (non-finite samples, SWD above 10 times the floor),
    and one table per benchmark CSV."""
    input:
        metrics=setting_paths("results/metrics/{dataset}/{model}/{seed}/{setting}.csv"),
        floors=expand("results/metrics/{dataset}/floor.csv", dataset=DATASETS),
        runs=run_paths("results/runs/{dataset}/{model}/{seed}/train.json"),
        bench=ddpm_study.bench_files(),
    output:
        DDPM["tables"],
    params:
        spec=config_spec,
        out=lambda wildcards, output: os.path.dirname(output[0]),
    conda:
        CONDA_ENV
    log:
        "logs/tables.log",
    shell:
        "ttdm tables --spec {params.spec:q} --metrics {input.metrics:q} --floors {input.floors:q}"
        " --runs {input.runs:q} --bench {input.bench:q} --out {params.out:q} > {log:q} 2>&1"


rule bench:
    """Training steps/s, sampling time per 1000 samples for each step count, peak memory, parameter counts."""
    priority: 50  # a long single-core job: start it early rather than alone at the end
    input:
        meta=bench_meta(cfg.bench_spec(config)),
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
        "ttdm bench --spec {params.spec:q} --meta {input.meta:q} --out {params.out:q} > {log:q} 2>&1"


rule figures:
    """DDPM baselines, one dataset: samples over data, loss curves and the primary metric (HQ % on mixtures, SWD
    elsewhere) vs NFE, with the sampler floor's metrics when the config names one (PDF for the paper, PNG for the
    report)."""
    input:
        unpack(figure_inputs),
    output:
        pdf=expand("results/figures/{{dataset}}_{kind}.pdf", kind=FIGURE_KINDS),
        png=[
            report(
                f"results/figures/{{dataset}}_{kind}.png",
                caption=FIGURE_REPORT[kind][0],
                category=FIGURE_REPORT[kind][1],
                labels={"dataset": "{dataset}", "figure": FIGURE_REPORT[kind][2]},
            )
            for kind in FIGURE_KINDS
        ],
    params:
        spec=config_spec,
        out=lambda wildcards, output: os.path.dirname(output.pdf[0]),
    conda:
        CONDA_ENV
    log:
        "logs/figures/{dataset}.log",
    shell:
        "ttdm figures --spec {params.spec:q} --dataset {wildcards.dataset:q} --samples {input.samples:q}"
        " --losses {input.losses:q} --metrics {input.metrics:q} --floor {input.floor:q} --test {input.test:q}"
        " --meta {input.meta:q} --out {params.out:q} > {log:q} 2>&1"


rule paper:
    """The paper: templates in paper/ rendered from the tables, figures and other inputs of every registered study
    (the DDPM study's: the test likelihoods of the main table's models and the mixtures' true NLL), the datasets'
    meta.json and the runs' train.json (provenance), and compiled by latexmk."""
    input:
        templates=PAPER_TEMPLATES,
        tables=PAPER_FILES["tables"],
        figures=PAPER_FILES["figures"],
        meta=expand("results/data/{dataset}/meta.json", dataset=DATASETS),
        runs=run_paths("results/runs/{dataset}/{model}/{seed}/train.json"),
        inputs=PAPER_FILES["inputs"],
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
        "ttdm paper --spec {params.spec:q} --templates paper --tables {input.tables:q}"
        " --figures {input.figures:q} --meta {input.meta:q} --runs {input.runs:q} --inputs {input.inputs:q}"
        " --out {params.out:q} > {log:q} 2>&1"
