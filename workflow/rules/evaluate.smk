rule evaluate:
    """Metrics of one setting's samples against the test split (long CSV: sampler, steps, nfe, metric, value)."""
    input:
        unpack(classifier_input),
        samples="results/samples/{dataset}/{model}/{seed}/{setting}.npz",
        info="results/samples/{dataset}/{model}/{seed}/{setting}.json",
        test="results/data/{dataset}/test.npy",
        meta="results/data/{dataset}/meta.json",
    output:
        "results/metrics/{dataset}/{model}/{seed}/{setting}.csv",
    params:
        spec=eval_spec,
        data=subpath(input.meta, parent=True),
        classifier=classifier_arg,
    resources:
        **job_resources("evaluate"),
    conda:
        CONDA_ENV
    log:
        "logs/evaluate/{dataset}/{model}/{seed}/{setting}.log",
    benchmark:
        "benchmarks/evaluate/{dataset}/{model}/{seed}/{setting}.tsv"
    shell:
        "ttdm evaluate --spec {params.spec:q} --samples {input.samples:q} --data {params.data:q}"
        " --out {output:q} {params.classifier} > {log:q} 2>&1"


rule floor:
    """The data floor: the same metrics for a fresh sample of the true distribution of the same size."""
    input:
        unpack(classifier_input),
        floor="results/data/{dataset}/floor.npy",
        test="results/data/{dataset}/test.npy",
        meta="results/data/{dataset}/meta.json",
    output:
        "results/metrics/{dataset}/floor.csv",
    params:
        spec=eval_spec,
        data=subpath(input.meta, parent=True),
        classifier=classifier_arg,
    resources:
        **job_resources("floor"),
    conda:
        CONDA_ENV
    log:
        "logs/floor/{dataset}.log",
    shell:
        "ttdm floor --spec {params.spec:q} --data {params.data:q} --out {output:q} {params.classifier}"
        " > {log:q} 2>&1"


rule classifier:
    """The feature classifier of a labelled image dataset: its penultimate features give FD, PRDC and class KL."""
    input:
        train="results/data/{dataset}/train.npy",
        test="results/data/{dataset}/test.npy",
        labels="results/data/{dataset}/labels.json",
        meta="results/data/{dataset}/meta.json",
    output:
        model="results/classifier/{dataset}/model.pt",
        record="results/classifier/{dataset}/record.json",
    params:
        spec=classifier_spec,
        data=subpath(input.meta, parent=True),
        out=subpath(output.record, parent=True),
    resources:
        **job_resources("classifier"),
    conda:
        CONDA_ENV
    log:
        "logs/classifier/{dataset}.log",
    benchmark:
        "benchmarks/classifier/{dataset}.tsv"
    shell:
        "ttdm classifier --spec {params.spec:q} --data {params.data:q} --out {params.out:q} > {log:q} 2>&1"
