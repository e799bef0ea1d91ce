"""The DSNO student's files in the config (no torch): its teacher trajectories, their key, path and job spec.

A run of method ``dsno`` (``ttdm.methods.dsno``) reads one trajectories file of its teacher run (same dataset and
seed), ``results/trajectories/{dataset}/{teacher}/{seed}/{key}.npz``: ``key`` names what the file holds (its number
of output times, ``traj_M`` or else M; n training and n_eval held-out trajectories; the solver and its steps and
spacing), so students that differ in anything else (``temporal``, the loss) share one, and so do students of M = 2,
4 and 8 that all set ``traj_M: 8`` (DSNO's quadratic states of M are every (traj_M/M)-th state of traj_M's).  One
``trajectories`` job (``ttdm trajectories``, workflow/rules/dsno.smk) writes each file that some run reads; its spec
holds the teacher's spec hash, so a changed teacher writes new trajectories, and the file is an input of the
student's train job, which then retrains.
"""

from __future__ import annotations

import os
from typing import Any

METHOD = "dsno"
TRAJECTORY_KEYS = ("M", "traj_M", "n_traj", "n_eval", "solver", "traj_steps", "traj_spacing")


def stored_times(training: dict[str, Any]) -> int:
    """The output times a student's trajectories file holds: ``traj_M``, or M when it is 0 (unset)."""
    return int(training.get("traj_M") or training["M"])


def trajectory_key(training: dict[str, Any]) -> str:
    """The file name's key of a student's resolved training options, e.g. ``M4-n2048-e500-ddim256-trailing``."""
    t = training
    return f"M{stored_times(t)}-n{t['n_traj']}-e{t['n_eval']}-{t['solver']}{t['traj_steps']}-{t['traj_spacing']}"


def trajectory_path(dataset: str, teacher: str, seed: int, key: str) -> str:
    return f"results/trajectories/{dataset}/{teacher}/{int(seed)}/{key}.npz"


def trajectory_jobs(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{path: spec} of every trajectories file a student of the grid reads (one job each).

    spec: {dataset, teacher, seed, teacher_spec_hash, M, n, n_eval, solver, steps, spacing, batch_size, device,
    threads}: what ``ttdm trajectories`` computes (:mod:`ttdm.stages.trajectories`)."""
    from ttdm import config as cfg

    jobs: dict[str, dict[str, Any]] = {}
    for d, m, s in cfg.runs(config):
        spec = cfg.run_spec(config, d, m, s)
        if spec["method"] != METHOD:
            continue
        t = spec["training"]
        teacher = spec["needs"]["teacher"]
        path = trajectory_path(d, teacher["model"], s, trajectory_key(t))
        jobs[path] = {"dataset": d, "teacher": teacher["model"], "seed": int(s),
                      "teacher_spec_hash": teacher["spec_hash"], "M": stored_times(t), "n": t["n_traj"],
                      "n_eval": t["n_eval"], "solver": t["solver"], "steps": t["traj_steps"],
                      "spacing": t["traj_spacing"], "batch_size": config["sampling"]["batch_size"],
                      "device": config["device"], "threads": config["threads"]}
    return jobs


def students(config: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(dataset, model, seed) of every DSNO run of the grid."""
    from ttdm import config as cfg

    return [(d, m, s) for d, m, s in cfg.runs(config) if cfg.run_spec(config, d, m, s)["method"] == METHOD]


def eval_path(dataset: str, model: str, seed: int) -> str:
    """The student's evaluation against its teacher (``ttdm dsno-eval``): per-sample error and forward time (CSV;
    the sample pairs of the figure beside it, .npz)."""
    return f"results/dsno/{dataset}/{model}/{int(seed)}.csv"


def eval_spec(config: dict[str, Any]) -> dict[str, Any]:
    """Spec of ``ttdm dsno-eval``: timed batch sizes, repeats, device, threads."""
    study = config.get("dsno") or {}
    return {"batch_sizes": list(study.get("batch_sizes", [1, config["sampling"]["batch_size"]])),
            "repeats": int(study.get("repeats", 20)), "n_pairs": 200, "device": config["device"],
            "threads": config["threads"]}


def dsno_errors(config: dict[str, Any]) -> list[str]:
    """Every problem of the DSNO runs and of the ``dsno`` block in an expanded config, each naming its key:

    - a student's model has its teacher's arch and sizes (it starts from the teacher's weights), and the teacher's
      method gives a denoiser; ``traj_M`` is 0 or a multiple of M; ``traj_steps`` lies in [traj_M², T] (distinct
      quadratic states, within the schedule);
      ``n_val`` ≤ ``n_eval``;
    - the block's datasets and models are trained by the grid, its ablation models are students on its dataset,
      its settings are configured, its ``device_timings`` files exist.
    """
    from ttdm.config.grid import block_for, runs
    from ttdm.config.methods import _method, resolved_training

    errors: list[str] = []
    trained = {(d, m) for d, m, _ in runs(config)}
    T = int(config["schedule"]["T"])
    for d, m in dict.fromkeys(trained):
        training = resolved_training(config, d, m)
        if training["method"] != METHOD:
            continue
        where = f"grid (run {m!r} on {d!r}, block {block_for(config, d, m).get('datasets')}).training"
        teacher = training["teacher"]
        if teacher in config["models"] and config["models"][teacher] != config["models"][m]:
            errors.append(f"{where}.teacher: {teacher!r} is {config['models'][teacher]}, but the student's model "
                          f"{m!r} is {config['models'][m]}: the student starts from its teacher's weights, so both "
                          f"must be the same model entry")
        if (d, teacher) in trained:
            tmethod = resolved_training(config, d, teacher)["method"]
            if "denoiser" not in _method(tmethod).provides:
                errors.append(f"{where}.teacher: {teacher!r} (method {tmethod!r}) gives no denoiser whose ODE the "
                              f"student could learn")
        M, stored, steps = training["M"], stored_times(training), training["traj_steps"]
        if stored % M:
            errors.append(f"{where}.traj_M: {training['traj_M']} is not a multiple of M = {M} (the student takes "
                          f"every (traj_M/M)-th stored state); use 0 (= M) or a multiple of M")
        if not stored * stored <= steps <= T:
            errors.append(f"{where}.traj_steps: {steps} must lie in [{stored}² = {stored * stored}, T = {T}] "
                          f"(distinct quadratic states of {stored} stored times, within the schedule's T)")
        if training["n_val"] > training["n_eval"]:
            errors.append(f"{where}.n_val: {training['n_val']} exceeds n_eval = {training['n_eval']}")
    study = config.get("dsno")
    if not study:
        return errors
    for d in study["datasets"]:
        if not any((d, m) in trained for m in study["models"]):
            errors.append(f"dsno.datasets: no model of dsno.models is trained on {d!r} by the grid")
    for m in study["models"]:
        if not any((d, m) in trained for d in study["datasets"]):
            errors.append(f"dsno.models: {m!r} is not trained on any of {study['datasets']} by the grid")
    ab = study["ablation"]
    for m in ab["models"]:
        if (ab["dataset"], m) not in trained:
            errors.append(f"dsno.ablation.models: {m!r} is not trained on {ab['dataset']!r} by the grid")
        elif resolved_training(config, ab["dataset"], m)["method"] != METHOD:
            errors.append(f"dsno.ablation.models: {m!r} is not a DSNO student (method {METHOD!r})")
    keys = [f"{name}_{n}" for name, s in config["sampling"]["samplers"].items() for n in s["steps"]]
    errors += [f"dsno.settings: {k!r} is not a configured setting; allowed: {', '.join(keys)}"
               for k in study.get("settings", []) if k not in keys]
    errors += [f"dsno.device_timings[{i}]: {f!r} does not exist (a CSV of scripts/dsno_forward_bench.py, relative to "
               f"the working directory {os.getcwd()})" for i, f in enumerate(study.get("device_timings", []))
               if not os.path.isfile(f)]
    return errors
