"""The warm worker (ttdm.worker): a command run through it behaves exactly as one run in its own process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from ttdm import worker
from ttdm.stages.train import train

from test_generate import make_gen_spec
from test_train import make_data, make_spec

TTDM = [sys.executable, "-m", "ttdm"]


@pytest.fixture(scope="module")
def warm():
    """A worker for this module's commands; yields the environment that routes `ttdm` to it."""
    saved = os.environ.get(worker.ENV)
    proc = worker.start()
    assert proc is not None, "the worker did not come up"
    env = {**os.environ}
    if saved is None:
        os.environ.pop(worker.ENV, None)
    yield proc, env
    worker.stop(proc)


def run(args: list[str], env: dict, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*TTDM, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_exit_status_and_output_are_the_commands(warm, tmp_path):
    proc, env = warm
    good = run(["check-config", "config.yaml"], env, cwd=Path(__file__).resolve().parents[1])
    assert good.returncode == 0 and "valid; 9 datasets" in good.stdout
    bad = run(["check-config", str(tmp_path / "missing.yaml")], env)
    assert bad.returncode == 1 and "config file not found" in bad.stderr
    usage = run(["train", "--nope"], env)
    assert usage.returncode == 2 and "usage: ttdm" in usage.stderr
    assert "no worker" not in good.stderr + bad.stderr


def test_samples_are_identical_with_and_without_the_worker(warm, tmp_path):
    _, env = warm
    run_dir = tmp_path / "run"
    train(make_spec(steps=5, checkpoint_every=5), make_data(tmp_path / "data", n=64), run_dir)
    import json

    spec = json.dumps(make_gen_spec("ddim", "ddim", 10))
    args = ["sample", "--spec", spec, "--run", str(run_dir), "--out"]
    warm_run = run([*args, str(tmp_path / "warm.npz")], env)
    plain_env = {k: v for k, v in env.items() if k != worker.ENV}
    cold_run = run([*args, str(tmp_path / "cold.npz")], plain_env)
    assert warm_run.returncode == cold_run.returncode == 0, warm_run.stderr + cold_run.stderr
    with np.load(tmp_path / "warm.npz") as a, np.load(tmp_path / "cold.npz") as b:
        assert np.array_equal(a["x"], b["x"])


def test_killing_the_job_stops_its_work(warm, tmp_path):
    proc, env = warm
    data = make_data(tmp_path / "data", n=64)
    import json

    spec = json.dumps(make_spec(steps=10**7, checkpoint_every=10**6, log_every=10**6))
    client = subprocess.Popen([*TTDM, "train", "--spec", spec, "--data", str(data), "--out", str(tmp_path / "run")],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = psutil.Process(proc.pid)
    deadline = time.time() + 60
    while not server.children() and time.time() < deadline:
        time.sleep(0.05)
    children = server.children()
    assert children, "the worker forked no child for the command"
    client.send_signal(signal.SIGKILL)  # as Snakemake or a scheduler would
    client.wait()
    gone, alive = psutil.wait_procs(children, timeout=20)
    assert not alive, "the command went on after its job was killed"


def test_without_a_worker_the_command_runs_here(tmp_path):
    env = {**os.environ, worker.ENV: str(tmp_path / "nothing.sock")}
    out = run(["check-config", str(tmp_path / "missing.yaml")], env)
    assert out.returncode == 1 and "no worker at" in out.stderr and "config file not found" in out.stderr


def test_the_worker_ends_with_its_parent(tmp_path):
    code = (f"import sys, time; sys.path[:0] = {sys.path!r}; from ttdm import worker; p = worker.start(); "
            "print(p.pid, flush=True); time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    pid = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    deadline = time.time() + 15
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE and time.time() < deadline:
        time.sleep(0.1)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_a_child_takes_the_jobs_thread_count():
    """Snakemake sets OMP_NUM_THREADS and the BLAS variables to a rule's threads; a forked child applies them to the
    pools its parent loaded (a fresh process reads them at import)."""
    code = ("from ttdm.worker import _limit_threads; import numpy, torch; "
            "_limit_threads({'OMP_NUM_THREADS': '1'}); from threadpoolctl import threadpool_info; "
            "print(max(i['num_threads'] for i in threadpool_info()), torch.get_num_threads())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={k: v for k, v in os.environ.items() if "NUM_THREADS" not in k})
    assert out.stdout.split() == ["1", "1"]


def test_the_console_script_imports_only_a_client():
    """Every job starts `ttdm` (ttdm.launcher:main): it must not import the CLI, the worker's server side or torch."""
    code = ("import sys, ttdm.launcher, ttdm.timing; "
            "print(sorted({'argparse', 'subprocess', 'tempfile', 'threading', 'typing', 'numpy', 'torch', 'ttdm.cli', "
            "'ttdm.worker'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"

