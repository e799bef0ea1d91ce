"""A warm worker for local runs: torch and ttdm are imported once, and every ``ttdm`` job forks from that process.

The quick preset runs several hundred short jobs, and ``import torch`` alone costs 1.5-2 s of each one's 2-4 s.  When
Snakemake executes jobs locally, the workflow starts one worker process (``ttdm worker --socket PATH``) that imports
the libraries and listens on a Unix socket, and exports ``TTDM_WORKER=PATH`` to the jobs.  A job's ``ttdm`` command
then sends its argv, working directory, environment and standard file descriptors (SCM_RIGHTS) to the worker, which
forks; the child runs the command exactly as ``ttdm`` would (same output files, same logs, same exit status) and
reports its exit status back.  This is the fork-server pattern of ``multiprocessing``'s "forkserver" start method.

- The worker never runs torch operations or initialises CUDA before forking, so every child starts as a fresh process
  would (thread pools and CUDA are created in the child); every random stream in ttdm is seeded explicitly.
- A child whose client goes away (the job is killed) interrupts itself, so killing a job kills its work.
- The worker exits when its parent (Snakemake) does.  Without the variable, or when the socket does not answer
  (another node of a cluster, a stale path), ``ttdm`` runs the command in its own process as usual.

Snakemake's ``benchmark`` files record the wall time of each job correctly; their CPU and memory columns measure the
small client process only.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ttdm.launcher import ENV, HEADER as _HEADER  # noqa: F401  (ENV: tests and callers; the client is ttdm.launcher)


# ---- server ----------------------------------------------------------------------------------------------------
def _preload() -> None:
    """Import what the commands import (no torch operation runs here: see the module docstring)."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib  # noqa: F401
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import scipy.optimize  # noqa: F401  (the metrics import scipy lazily; the worker pays for it once)
    import scipy.spatial.distance  # noqa: F401
    import teneva  # noqa: F401
    import torch  # noqa: F401
    import torch._dynamo  # noqa: F401  (the optimizers' first step imports it, and sympy with it: 0.7 s)
    import torch._decomp.decompositions_for_jvp  # noqa: F401  (forward-mode AD, the TT's likelihood: 0.5 s)

    import ttdm.cli

    ttdm.cli.build_parser()  # cached: each command's child only parses
    from ttdm.data import DATASETS
    from ttdm.methods import METHODS
    from ttdm.metrics import METRICS
    from ttdm.models import MODELS
    from ttdm.samplers import SAMPLERS

    for registry in (DATASETS, METHODS, METRICS, MODELS, SAMPLERS):
        registry.load()
    import importlib

    for module in ("ttdm.config", "ttdm.tt.als", "ttdm.tt.riemannian", "ttdm.methods.tt_solvers",
                   "ttdm.stages.data", "ttdm.stages.train", "ttdm.stages.sample", "ttdm.stages.evaluate",
                   "ttdm.stages.bench", "ttdm.stages.complexity", "ttdm.stages.landscape", "ttdm.report.tables",
                   "ttdm.report.figures", "ttdm.report.tt_tables", "ttdm.report.tt_figures", "ttdm.report.landscape",
                   "ttdm.report.paper", "ttdm.report.studies"):
        importlib.import_module(module)


def serve(path: str | Path) -> None:
    """Listen on ``path`` and fork one child per request until the parent process ends."""
    parent = os.getppid()  # polled every second (PR_SET_PDEATHSIG would follow the parent *thread*, not process)
    _preload()
    path = str(path)
    if os.path.exists(path):
        os.unlink(path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(128)
    server.settimeout(1.0)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped automatically
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while os.getppid() == parent:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            sys.stdout.flush()
            sys.stderr.flush()
            if os.fork() == 0:
                try:
                    server.close()
                    _child(conn)  # ends in os._exit
                finally:
                    os._exit(1)  # whatever escapes the child, it never runs the server's clean-up below
            conn.close()
    finally:
        server.close()
        if os.path.exists(path):
            os.unlink(path)


def _child(conn: socket.socket) -> None:
    code = 1
    done = threading.Event()  # set once the command has returned: the watchdog then leaves it alone
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        conn.settimeout(None)
        first, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
        size = _HEADER.unpack(first[: _HEADER.size])[0]
        body = first[_HEADER.size :]
        while len(body) < size:
            body += conn.recv(size - len(body))
        request = json.loads(body)
        for target, fd in zip((0, 1, 2), fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ.pop(ENV, None)
        _limit_threads(os.environ)
        sys.argv = ["ttdm", *request["argv"]]
        threading.Thread(target=_watch, args=(conn, done), daemon=True).start()
        from ttdm.cli import main

        try:
            code = main(request["argv"], started=request.get("started"))
        except SystemExit as exit_:  # argparse's --help and usage errors
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        except KeyboardInterrupt:
            code = 130
        except BaseException:  # noqa: BLE001 - report like the interpreter, then the status
            import traceback

            traceback.print_exc()
            code = 1
    finally:
        done.set()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        try:
            conn.sendall(_HEADER.pack(code & 0xFFFFFFFF))
        except OSError:
            pass
        os._exit(code)


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "GOTO_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def _limit_threads(env: dict[str, str]) -> None:
    """Apply the job's thread count (Snakemake sets OMP_NUM_THREADS and the BLAS variables to the rule's
    ``threads``) to the BLAS and OpenMP pools this process loaded before forking; a fresh process would have read
    them at import.  Without this, numpy's BLAS ran with every core in each job: 5-10x slower ALS sweeps."""
    value = env.get("OMP_NUM_THREADS") or env.get("OPENBLAS_NUM_THREADS")
    if not (value and value.isdigit() and int(value) > 0):
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(int(value))
    import torch

    torch.set_num_threads(int(value))


def _watch(conn: socket.socket, done: threading.Event) -> None:
    """Interrupt the command when the client hangs up (its job was killed); exit for good 10 s later."""
    try:
        while conn.recv(1):
            pass
    except OSError:
        pass
    if done.is_set():
        return
    import _thread

    _thread.interrupt_main()
    time.sleep(10)
    os._exit(143)


# ---- lifecycle, for the Snakefile -------------------------------------------------------------------------------
def start(log: str | Path | None = None, timeout_s: float = 60.0) -> subprocess.Popen | None:
    """Start a worker for this process's jobs and export $TTDM_WORKER; None (no worker) if it does not come up."""
    path = os.path.join(tempfile.mkdtemp(prefix="ttdm-"), "worker.sock")
    if log:
        Path(log).parent.mkdir(parents=True, exist_ok=True)
    err = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - the worker keeps it open
    env = {**os.environ, **{name: "1" for name in THREAD_VARIABLES}}  # no BLAS thread pools before forking
    proc = subprocess.Popen([sys.executable, "-m", "ttdm", "worker", "--socket", path],
                            stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=env)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if os.path.exists(path):
            os.environ[ENV] = path
            return proc
        time.sleep(0.05)
    proc.kill()
    return None


def stop(proc: subprocess.Popen | None) -> None:
    """Stop the worker started by :func:`start` and stop exporting its socket."""
    os.environ.pop(ENV, None)
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
