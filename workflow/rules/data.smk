rule data:
    """Fixed, seeded train/test/floor splits of one dataset (results/data/{dataset})."""
    input:
        user_data_file,
    output:
        train="results/data/{dataset}/train.npy",
        test="results/data/{dataset}/test.npy",
        floor="results/data/{dataset}/floor.npy",
        labels="results/data/{dataset}/labels.json",
        meta="results/data/{dataset}/meta.json",
    params:
        spec=data_spec,
        out=subpath(output.meta, parent=True),
    resources:
        **job_resources("data"),
    conda:
        CONDA_ENV
    log:
        "logs/data/{dataset}.log",
    benchmark:
        "benchmarks/data/{dataset}.tsv"
    shell:
        "ttdm data --spec {params.spec:q} --out {params.out:q} > {log:q} 2>&1"
