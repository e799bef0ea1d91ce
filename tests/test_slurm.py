"""The workflow on a real single-node SLURM: the smoke pipeline through workflow/profiles/slurm, then preemption.

A module fixture runs scripts/setup_slurm.sh (as root it installs munge and SLURM from Debian, writes slurm.conf for
this host and starts the daemons; idempotent), and skips the module with the script's reason where SLURM cannot be
started. Checks: every job of a small pipeline runs as a SLURM job and the outputs and the PDF are there; a training
job cancelled with `scancel` after its first checkpoint is resubmitted by Snakemake (`retries` of the profile) and
resumes from that checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import tiny_config_dict
from test_workflow import BIN, HAVE_LATEX, SNAKEMAKE, make_workdir, snakemake

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PARTITION = "ttdm"  # scripts/setup_slurm.sh's default partition
# the profile's partition comes from SBATCH_PARTITION; quick status checks instead of the cluster-friendly 20 s
SLURM_ARGS = ("--workflow-profile", "workflow/profiles/slurm", "--slurm-init-seconds-before-status-checks", "2",
              "--latency-wait", "10")


def slurm_config() -> dict:
    """The tiny config cut to one dataset and seed (two TT optimizers for the TT outputs), small cluster requests."""
    config = tiny_config_dict()
    config.update(
        seeds=[0],
        datasets={"8gaussians": {"kind": "8gaussians", "n_train": 500, "n_test": 200}},
        grid=[{"datasets": ["8gaussians"], "models": ["mlp"]},
              {"datasets": ["8gaussians"], "models": ["tt"], "optimizers": ["als", "rgd"]}],
        threads=1,
        classifier={"datasets": []},
        resources={kind: {"runtime": 10, "mem_mb": 1000}
                   for kind in ("data", "train", "sample", "evaluate", "floor", "bench", "complexity", "landscape")},
    )
    config["models"] = {k: v for k, v in config["models"].items() if k in ("mlp", "tt")}
    config["landscape"] = {**config["landscape"], "models": ["mlp"]}
    config["paper"] = {**config["paper"], "main_models": ["mlp", "tt-als"]}
    config["trilemma"] = {"datasets": ["8gaussians"], "models": ["mlp", "tt-als"]}
    return config


def slurm_env() -> dict:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "SBATCH_PARTITION": PARTITION}


def slurm_logs(workdir: Path) -> str:
    logs = sorted((workdir / ".snakemake" / "slurm_logs").rglob("*.log"))
    return "\n".join(f"--- {p.relative_to(workdir)}\n{p.read_text()[-2000:]}" for p in logs[-6:])


@pytest.fixture(scope="module")
def slurm() -> str:
    """A running single-node SLURM (scripts/setup_slurm.sh), or a skip with the reason."""
    if os.geteuid() != 0:
        pytest.skip("SLURM test: needs root to install and start SLURM (scripts/setup_slurm.sh); CI runs as root")
    if shutil.which("sinfo") is None and shutil.which("apt-get") is None:
        pytest.skip("SLURM test: SLURM is not installed and there is no apt-get to install it")
    try:
        proc = subprocess.run(["bash", str(ROOT / "scripts" / "setup_slurm.sh")], capture_output=True, text=True,
                              timeout=900)
    except subprocess.TimeoutExpired:
        pytest.skip("SLURM test: scripts/setup_slurm.sh did not finish in 15 minutes")
    if proc.returncode != 0:
        pytest.skip(f"SLURM test: SLURM cannot be started here: {(proc.stderr or proc.stdout).strip()[-1500:]}")
    return proc.stdout


@pytest.fixture(scope="module")
def slurm_pipeline(slurm, tmp_path_factory) -> tuple[Path, float, subprocess.CompletedProcess]:
    workdir = make_workdir(ROOT, tmp_path_factory.mktemp("slurm"), slurm_config())
    started = time.perf_counter()
    proc = subprocess.run([str(SNAKEMAKE), *SLURM_ARGS], cwd=workdir, env=slurm_env(), capture_output=True, text=True,
                          timeout=900)
    wall = time.perf_counter() - started
    (workdir / "pipeline.log").write_text(proc.stderr)
    if proc.returncode != 0:
        raise AssertionError(f"snakemake through SLURM failed:\n{proc.stderr[-8000:]}\n{slurm_logs(workdir)}")
    return workdir, wall, proc


def test_profile_settings(root):
    profile = yaml.safe_load((root / "workflow" / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["executor"] == "slurm" and profile["retries"] >= 1 and profile["rerun-incomplete"] is True
    assert profile["slurm-status-command"] == "squeue"  # works without accounting
    assert "SBATCH_PARTITION" in profile["default-resources"]["slurm_partition"]


@pytest.mark.skipif(not HAVE_LATEX, reason="latexmk/pdftotext not installed (make test installs them as root)")
def test_pipeline_through_slurm(slurm_pipeline):
    workdir, wall, proc = slurm_pipeline
    log = proc.stderr
    submitted = re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+)", log)
    # data, floor, bench, complexity, landscape, a train job per run (mlp, tt-als, tt-rgd), a sample and an evaluate
    # job per run and sampler setting
    assert len(submitted) >= 14, log[-4000:]
    for rule in ("tables", "tt_tables", "figures", "tt_figures", "landscape_figure", "paper"):
        assert re.search(rf"localrule {rule}:", log), f"{rule} did not run on the submit host"
    results = workdir / "results"
    for model in ("mlp", "tt-als", "tt-rgd"):
        run = results / "runs" / "8gaussians" / model / "0"
        for name in ("model.pt", "loss.csv", "train.json"):
            assert (run / name).is_file(), run / name
        for setting in ("ddpm_200", "ddim_5", "ddim_20"):  # one sample and one evaluate job per setting
            assert (results / "samples" / "8gaussians" / model / "0" / f"{setting}.npz").is_file()
            assert (results / "metrics" / "8gaussians" / model / "0" / f"{setting}.csv").is_file()
    for path in ("metrics/8gaussians/floor.csv", "bench/train.csv", "bench/complexity.csv", "tables/summary.csv",
                 "tables/tt_runs.csv", "figures/8gaussians_samples.pdf", "figures/tt_convergence_8gaussians.pdf",
                 "figures/landscape.pdf", "paper/paper.pdf"):
        assert (results / path).is_file(), path
    text = subprocess.run(["pdftotext", str(results / "paper" / "paper.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "Tensor-train noise models" in text
    # nothing left to do, also for the local executor
    assert "Nothing to be done" in snakemake(workdir, "-n").stdout
    print(f"pipeline through SLURM: {len(submitted)} SLURM jobs, {wall:.0f} s")


def squeue_job(comment_part: str) -> str | None:
    out = subprocess.run(["squeue", "-h", "-o", "%i|%k|%T"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        jobid, comment, state = line.split("|", 2)
        if comment_part in comment and state in ("RUNNING", "PENDING", "CONFIGURING"):
            return jobid
    return None


def test_cancelled_training_job_is_resubmitted_and_resumes(slurm_pipeline):
    """scancel a SLURM training job after its first checkpoint: Snakemake's retry resubmits it and it resumes."""
    workdir = slurm_pipeline[0]
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["grid"].append({"datasets": ["8gaussians"], "models": ["mlp2"],
                           "training": {"steps": 3000, "checkpoint_every": 100}})
    config["models"]["mlp2"] = {"arch": "mlp", "hidden": 64, "depth": 2}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    run = workdir / "results/runs/8gaussians/mlp2/0"
    target = "results/runs/8gaussians/mlp2/0/model.pt"
    log = workdir / "resume.log"
    with log.open("w") as sink:
        proc = subprocess.Popen([str(SNAKEMAKE), *SLURM_ARGS, target], cwd=workdir, env=slurm_env(), stdout=sink,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 300
        jobid = None
        while time.time() < deadline and proc.poll() is None:
            jobid = jobid or squeue_job("rule_train_wildcards_8gaussians_mlp2_0")
            if jobid and (run / "checkpoints" / "ckpt.pt").exists():
                break
            time.sleep(0.2)
        assert jobid and (run / "checkpoints" / "ckpt.pt").exists(), "no checkpoint of a SLURM training job in time"
        assert not (run / "model.pt").exists(), "training finished before it could be cancelled"
        subprocess.run(["scancel", jobid], check=True)  # as a preemption or a node failure would end it
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = log.read_text()
    assert proc.returncode == 0, f"{out[-6000:]}\n{slurm_logs(workdir)}"
    assert re.search(rf"SLURM-job '{jobid}' failed, SLURM status is: 'CANCELLED'", out), out[-4000:]
    assert len(re.findall(r"has been submitted with SLURM jobid", out)) >= 2, out[-4000:]  # resubmitted
    info = json.loads((run / "train.json").read_text())
    assert info["resumed_from_step"] and info["resumed_from_step"] > 0, info
    assert info["steps"] == 3000
