"""A DSNO student against its teacher (``ttdm dsno-eval``): the per-sample error of its one-step samples against
the teacher's ODE end points for the same held-out noises, and its forward time against the backbone's.

- error: e_i = ‖x̂_M(x_T^i) − x_M^i‖ / √D (RMS over the coordinates) on the trajectories file's ``n_eval`` held-out
  trajectories: mean, median, 90th percentile; the mean RMS error at every output time m (``error_t{m}``);
- time: one forward pass of the student (all M states) and one of the teacher's denoiser on the same batch of B
  noises (B in ``batch_sizes``), the median of ``repeats`` timed passes after one warm-up, in ms, and their ratio;
- size: the parameters of the student and of the teacher's denoiser.

Writes a long CSV (metric, value), its spec beside it (.spec.json) and the first ``n_pairs`` (one-step sample,
teacher end point) pairs (.npz: ``student``, ``teacher``, (n_pairs, D); ``image_shape``, (C, H, W) for images or
empty) for the report's figure.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ttdm.io import atomic_write, device_info, resolve_device, save_json
from ttdm.methods.dsno import every_mth
from ttdm.models.embeddings import count_parameters
from ttdm.runs import load_run


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def forward_ms(fn: Any, x: torch.Tensor, repeats: int, device: str) -> float:
    """Median wall time of ``fn(x)`` in ms over ``repeats`` calls, after one warm-up call (no gradients)."""
    times = []
    with torch.no_grad():
        fn(x)
        for _ in range(repeats):
            _sync(device)
            tick = time.perf_counter()
            fn(x)
            _sync(device)
            times.append(1e3 * (time.perf_counter() - tick))
    return statistics.median(times)


def dsno_eval(spec: dict[str, Any], run_dir: str | Path, teacher_dir: str | Path, trajectories: str | Path,
              out: str | Path) -> pd.DataFrame:
    """See the module docstring.  spec: {batch_sizes, repeats, n_pairs, device, threads}."""
    device = resolve_device(spec.get("device", "auto"))
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    run, teacher = load_run(run_dir, device), load_run(teacher_dir, device)
    student, backbone = run.parts["student"], teacher.parts["denoiser"]
    with np.load(trajectories) as f:  # (n_eval, M+1, D): the student's states of a file of traj_M = c·M times
        held = torch.from_numpy(every_mth(f["eval"], student.M)).float().to(device)
    x_T, target = held[:, 0], held[:, 1:]
    with torch.no_grad():
        pred = torch.cat([student(x_T[lo: lo + 256]) for lo in range(0, len(x_T), 256)])  # (n_eval, M, D)
    rms = (pred - target).pow(2).mean(dim=2).sqrt().cpu().numpy()  # (n_eval, M)
    rows = {"error_mean": float(rms[:, -1].mean()), "error_median": float(np.median(rms[:, -1])),
            "error_p90": float(np.quantile(rms[:, -1], 0.9)), "end_rms": float(target[:, -1].pow(2).mean().sqrt()),
            "n_eval": float(len(x_T)), "M": float(target.shape[1])}
    rows |= {f"error_t{m + 1}": float(v) for m, v in enumerate(rms.mean(axis=0))}
    gen = torch.Generator().manual_seed(0)
    for b in spec["batch_sizes"]:
        x = torch.randn(int(b), x_T.shape[1], generator=gen).to(device)
        t = torch.ones(int(b), device=device)
        s = forward_ms(student, x, int(spec["repeats"]), device)
        k = forward_ms(lambda z: backbone(z, t), x, int(spec["repeats"]), device)
        rows |= {f"student_ms_b{b}": s, f"backbone_ms_b{b}": k, f"time_ratio_b{b}": s / k}
    rows |= {"params_student": float(count_parameters(student)), "params_backbone": float(count_parameters(backbone))}
    table = pd.DataFrame({"metric": list(rows), "value": list(rows.values())})
    out = Path(out)
    atomic_write(out, lambda p: table.to_csv(p, index=False))
    n_pairs = int(spec.get("n_pairs", 200))
    pairs = {"student": pred[:n_pairs, -1].cpu().numpy(), "teacher": target[:n_pairs, -1].cpu().numpy(),
             "image_shape": np.array(run.image_shape or (), dtype=np.int64)}  # (C, H, W) of image data, else ()

    def write_pairs(p: Path) -> None:
        with open(p, "wb") as fh:
            np.savez(fh, **pairs)

    atomic_write(out.with_suffix(".npz"), write_pairs)
    save_json(out.with_suffix(".spec.json"), {**spec, "run": str(run_dir), "teacher": str(teacher_dir),
                                              "trajectories": str(trajectories), "device_info": device_info(device)})
    return table
