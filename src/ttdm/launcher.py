"""The ``ttdm`` console script: hand the command to the warm worker when there is one, else run :mod:`ttdm.cli`.

Every Snakemake job of a local run starts this script, so it imports only what a client needs (os, socket, struct,
json): about 20 ms of interpreter start instead of the 50-90 ms that importing the CLI (argparse, pathlib) and the
worker's server side (subprocess, tempfile, threading) took in each of the quick preset's ~900 jobs.  The protocol
is described in :mod:`ttdm.worker`.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys

ENV = "TTDM_WORKER"
HEADER = struct.Struct("!I")  # byte length of the JSON request; 4-byte exit status in the reply


def run_via_worker(argv: list[str], started: float | None = None) -> int | None:
    """Run ``ttdm argv`` in the worker named by $TTDM_WORKER; its exit status, or None when there is no worker.

    ``started``: this process's start time (epoch seconds), from which the command's start-up time is counted.
    """
    path = os.environ.get(ENV)
    if not path:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as err:
        sock.close()
        print(f"ttdm: no worker at {path} ({err.strerror}); running in this process", file=sys.stderr)
        return None
    request = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ), "started": started}).encode()
    with sock:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        socket.send_fds(sock, [HEADER.pack(len(request)) + request], [0, 1, 2])
        reply = _recv_exactly(sock, HEADER.size)
    if len(reply) < HEADER.size:
        print(f"ttdm: the worker at {path} ended the command without an exit status", file=sys.stderr)
        return 1
    return HEADER.unpack(reply)[0]


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def main(argv: list[str] | None = None) -> int:
    """``ttdm argv``: through the worker when $TTDM_WORKER names one that answers, else :func:`ttdm.cli.main`."""
    from ttdm.timing import process_start_time

    started = process_start_time()
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] != ["worker"]:
        code = run_via_worker(argv, started)
        if code is not None:
            return code
    from ttdm.cli import main as cli_main

    return cli_main(argv, started=started)
