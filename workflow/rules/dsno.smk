# The DSNO study (issue 13, seed 003): a student (method dsno) is an ordinary grid run that needs its teacher run and
# reads the teacher's trajectories (its train job's inputs: Method.inputs); these rules write the trajectories,
# evaluate each student against its teacher, and turn everything into the section's tables.

# TRAJECTORIES, DSNO_EVALS and dsno_eval_inputs live in common.smk.
DSNO = STUDY_OUTPUTS["dsno"]["dsno-report"]
DSNO_INPUTS = dsno_study.inputs_of(config)

if TRAJECTORIES:

    rule trajectories:
        """A teacher's probability-flow ODE (DDIM, eta = 0) from seeded noises, kept at DSNO's quadratic states; the
        teacher's model.pt is an input, so a retrained teacher writes new trajectories and retrains its students."""
        input:
            model="results/runs/{dataset}/{teacher}/{seed}/model.pt",
            info="results/runs/{dataset}/{teacher}/{seed}/train.json",
        output:
            npz="results/trajectories/{dataset}/{teacher}/{seed}/{key}.npz",
            info="results/trajectories/{dataset}/{teacher}/{seed}/{key}.json",
        params:
            spec=lambda wildcards, output: as_json(TRAJECTORIES[output.npz]),
            run=subpath(input.model, parent=True),
        resources:
            **job_resources("sample", threads=config["threads"], gpu=True),
        conda:
            CONDA_ENV
        log:
            "logs/trajectories/{dataset}/{teacher}/{seed}/{key}.log",
        benchmark:
            "benchmarks/trajectories/{dataset}/{teacher}/{seed}/{key}.tsv"
        threads: config["threads"]
        shell:
            "ttdm trajectories --spec {params.spec:q} --run {params.run:q} --out {output.npz:q} > {log:q} 2>&1"

if DSNO_EVALS:

    rule dsno_eval:
        """A student against its teacher: per-sample error on held-out noises, forward time against the backbone."""
        input:
            unpack(dsno_eval_inputs),
            model="results/runs/{dataset}/{model}/{seed}/model.pt",
        output:
            csv="results/dsno/{dataset}/{model}/{seed}.csv",
            pairs="results/dsno/{dataset}/{model}/{seed}.npz",
        params:
            spec=lambda wildcards: as_json(dsno_cfg.eval_spec(config)),
            run=subpath(input.model, parent=True),
            teacher=lambda wildcards, input: os.path.dirname(input.teacher),
        resources:
            **job_resources("sample", threads=config["threads"], gpu=True),
        conda:
            CONDA_ENV
        log:
            "logs/dsno/{dataset}/{model}/{seed}.log",
        benchmark:
            "benchmarks/dsno/{dataset}/{model}/{seed}.tsv"
        threads: config["threads"]
        shell:
            "ttdm dsno-eval --spec {params.spec:q} --run {params.run:q} --teacher {params.teacher:q}"
            " --trajectories {input.trajectories:q} --out {output.csv:q} > {log:q} 2>&1"

if DSNO:

    rule dsno_report:
        """DSNO beside the other methods (seed 003's table), the ablation over M and the temporal convolution, the
        per-sample error and forward time, and the targets."""
        input:
            files=DSNO_INPUTS["files"],
            floors=DSNO_INPUTS["floors"],
            evals=DSNO_INPUTS["evals"],
            pairs=DSNO_INPUTS["pairs"],
            costs=DSNO_INPUTS["costs"],  # the benchmark files of the jobs the students add: their seconds
            devices=DSNO_INPUTS["devices"],  # forward times measured on other devices (dsno.device_timings)
        output:
            tables=[f for f in DSNO if "/tables/" in f],
            pdf=[f for f in DSNO if f.endswith(".pdf")],
            png=report(
                [f.replace(".pdf", ".png") for f in DSNO if f.endswith(".pdf")],
                caption="../report/dsno.rst",
                category="DSNO",
            ),
        params:
            spec=config_spec,
        conda:
            CONDA_ENV
        log:
            "logs/dsno_report.log",
        shell:
            "ttdm dsno-report --spec {params.spec:q} --out results > {log:q} 2>&1"
