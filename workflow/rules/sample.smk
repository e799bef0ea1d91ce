rule sample:
    """Samples of one trained run with one sampler setting (SAMPLER_STEPS), with NFE and wall time."""
    input:
        model="results/runs/{dataset}/{model}/{seed}/model.pt",
    output:
        samples="results/samples/{dataset}/{model}/{seed}/{setting}.npz",
        info="results/samples/{dataset}/{model}/{seed}/{setting}.json",
    params:
        spec=sample_spec,
        run=subpath(input.model, parent=True),
    resources:
        **job_resources("sample", threads=config["threads"], gpu=True),
    conda:
        CONDA_ENV
    log:
        "logs/sample/{dataset}/{model}/{seed}/{setting}.log",
    benchmark:
        "benchmarks/sample/{dataset}/{model}/{seed}/{setting}.tsv"
    threads: config["threads"]
    shell:
        "ttdm sample --spec {params.spec:q} --run {params.run:q} --out {output.samples:q} > {log:q} 2>&1"
