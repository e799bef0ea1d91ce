# Test likelihoods (issue 9): the probability-flow ODE NLL of every run whose method provides a denoiser, and the
# true NLL of the same test rows for Gaussian mixtures. Only with a `likelihood:` block in the config.


rule likelihood:
    """Test NLL (nats/dim) of one run by the probability-flow ODE, with the solver and its NFE, and the method's
    variational bound (DDPM's ELBO, VDM's VLB) on the same rows."""
    input:
        model="results/runs/{dataset}/{model}/{seed}/model.pt",
        test="results/data/{dataset}/test.npy",
        meta="results/data/{dataset}/meta.json",
    output:
        "results/likelihood/{dataset}/{model}/{seed}.csv",
    params:
        spec=lambda wildcards: as_json(cfg.likelihood_spec(config, wildcards.dataset, wildcards.model)),
        run=subpath(input.model, parent=True),
        data=subpath(input.meta, parent=True),
    resources:
        **job_resources("sample", threads=config["threads"], gpu=True),
    conda:
        CONDA_ENV
    log:
        "logs/likelihood/{dataset}/{model}/{seed}.log",
    benchmark:
        "benchmarks/likelihood/{dataset}/{model}/{seed}.tsv"
    threads: config["threads"]
    shell:
        "ttdm likelihood --spec {params.spec:q} --run {params.run:q} --data {params.data:q} --out {output:q}"
        " > {log:q} 2>&1"


rule likelihood_floor:
    """The true NLL of the same test rows for a Gaussian-mixture dataset (an empty table for other data)."""
    input:
        test="results/data/{dataset}/test.npy",
        meta="results/data/{dataset}/meta.json",
    output:
        "results/likelihood/{dataset}/floor.csv",
    params:
        spec=lambda wildcards: as_json(cfg.likelihood_spec(config)),
        data=subpath(input.meta, parent=True),
    resources:
        **job_resources("floor"),
    conda:
        CONDA_ENV
    log:
        "logs/likelihood/{dataset}/floor.log",
    shell:
        "ttdm likelihood-floor --spec {params.spec:q} --data {params.data:q} --out {output:q} > {log:q} 2>&1"
