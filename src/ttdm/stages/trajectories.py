"""The teacher-trajectories stage of a DSNO student (``ttdm trajectories``): N seeded noises x_T and the teacher's
deterministic probability-flow ODE path from each, kept at DSNO's quadratic states (:mod:`ttdm.methods.dsno`).

The noises (n training + n_eval held-out rows) come from one CPU generator seeded by spec_hash(["trajectories",
dataset, seed]), so they depend on the dataset and seed alone (students of other M see the same x_T) and not on the
device.  The solver is DDIM with η = 0 (:func:`ttdm.samplers.ddim.ode_trajectory`, the sampler's own updates) with
``steps`` steps of ``spacing``; the kept states are j_m = S − round(S (1 − m/M)²), m = 0..M
(:func:`ttdm.models.dsno.quadratic_indices`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ttdm.io import atomic_write, device_info, resolve_device, save_json, spec_hash
from ttdm.models.dsno import quadratic_indices
from ttdm.runs import load_run
from ttdm.samplers.ddim import ode_trajectory

SOLVERS = ("ddim",)


def noises(dataset: str, seed: int, n: int, dim: int) -> torch.Tensor:
    """The (n, D) float32 noises x_T of the trajectories of (dataset, seed), on the CPU."""
    gen = torch.Generator().manual_seed(int(spec_hash(["trajectories", dataset, int(seed)], 15), 16))
    return torch.randn(n, dim, generator=gen)


def write_trajectories(spec: dict[str, Any], run_dir: str | Path, out: str | Path) -> dict[str, Any]:
    """Solve the teacher's ODE from n + n_eval noises and write ``out`` (.npz) and its record (.json beside it).

    spec: {dataset, teacher, seed, teacher_spec_hash, M, n, n_eval, solver, steps, spacing, batch_size, device,
    threads}.  The npz holds ``train`` (n, M+1, D) and ``eval`` (n_eval, M+1, D) float32 states (index 0: x_T,
    index M: the ODE's end point), ``state`` (M+1,) the kept state indices j_m, ``step`` (M+1,) their step indices
    (−1: the data) and ``t`` (M+1,) their continuous times (0 at the data).
    """
    if spec["solver"] not in SOLVERS:
        raise ValueError(f"trajectory solver {spec['solver']!r} is not allowed; allowed: {', '.join(SOLVERS)}")
    device = resolve_device(spec.get("device", "auto"))
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    run = load_run(run_dir, device)
    if spec_hash(run.spec) != spec["teacher_spec_hash"]:
        raise ValueError(f"{run_dir}: its spec is not the teacher's this job was asked for; retrain it first")
    js = quadratic_indices(int(spec["steps"]), int(spec["M"]))
    denoiser = run.sampling_object("denoiser")
    n, n_eval, batch = int(spec["n"]), int(spec["n_eval"]), int(spec["batch_size"])
    x_T = noises(spec["dataset"], spec["seed"], n + n_eval, run.method.noise_dim)
    start = time.perf_counter()
    chunks, steps = [], None
    for lo in range(0, len(x_T), batch):
        states, steps = ode_trajectory(denoiser, x_T[lo: lo + batch].to(device), int(spec["steps"]), js,
                                       spacing=spec["spacing"])
        chunks.append(states.float().cpu())
    wall = time.perf_counter() - start
    states = torch.cat(chunks).numpy()  # (n + n_eval, M+1, D)
    schedule = denoiser.schedule
    t = np.where(steps.numpy() < 0, 0.0, schedule.time(steps.clamp(min=0)).numpy())
    out = Path(out)

    def write(p: Path) -> None:
        with open(p, "wb") as fh:
            np.savez(fh, train=states[:n], eval=states[n:], state=np.array(js), step=steps.numpy(), t=t)

    atomic_write(out, write)
    record = {"spec": spec, "wall_s": wall, "nfe": int(spec["steps"]), "n": n, "n_eval": n_eval,
              "states": js, "steps": steps.tolist(), "t": t.tolist(), "device": device_info(device),
              "end_rms": float(np.sqrt((states[:, -1] ** 2).mean()))}
    save_json(out.with_suffix(".json"), record)
    return record
