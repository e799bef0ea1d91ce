rule train:
    """One training run (dataset x model x seed), after the runs its method needs and the other files it reads
    (Method.inputs); resumes from its checkpoint."""
    input:
        unpack(run_needs),
        unpack(run_inputs),
        train="results/data/{dataset}/train.npy",
        meta="results/data/{dataset}/meta.json",
    output:
        model="results/runs/{dataset}/{model}/{seed}/model.pt",
        loss="results/runs/{dataset}/{model}/{seed}/loss.csv",
        info="results/runs/{dataset}/{model}/{seed}/train.json",
    params:
        spec=run_spec,
        data=subpath(input.meta, parent=True),
        out=subpath(output.model, parent=True),
        needs=needs_args,
        inputs=inputs_args,
    resources:
        **job_resources("train", threads=config["threads"], gpu=True),
    conda:
        CONDA_ENV
    log:
        "logs/train/{dataset}/{model}/{seed}.log",
    benchmark:
        "benchmarks/train/{dataset}/{model}/{seed}.tsv"
    threads: config["threads"]
    shell:
        "ttdm train --spec {params.spec:q} --data {params.data:q} --out {params.out:q} --needs {params.needs}"
        " --inputs {params.inputs} > {log:q} 2>&1"
