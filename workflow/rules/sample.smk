rule sample:
    """Samples of one trained run with every configured sampler and step count, with NFE and wall time."""
    input:
        model="results/runs/{dataset}/{model}/{seed}/model.pt",
    output:
        samples="results/samples/{dataset}/{model}/{seed}/samples.npz",
        info="results/samples/{dataset}/{model}/{seed}/samples.json",
    params:
        spec=sample_spec,
        run=subpath(input.model, parent=True),
        out=subpath(output.samples, parent=True),
    resources:
        **job_resources("sample", threads=config["threads"], gpu=True),
    conda:
        CONDA_ENV
    log:
        "logs/sample/{dataset}/{model}/{seed}.log",
    benchmark:
        "benchmarks/sample/{dataset}/{model}/{seed}.tsv"
    threads: config["threads"]
    shell:
        "ttdm sample --spec {params.spec:q} --run {params.run:q} --out {params.out:q} > {log:q} 2>&1"
