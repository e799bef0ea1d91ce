"""The training stage: fit a noise-prediction network with a registered method, with EMA, checkpoints and resume.

Batches are drawn *with replacement*: each step takes ``batch_size`` indices uniform on {0..N−1} from a
torch.Generator seeded from the spec's seed, so the whole random state of a run is one generator state (saved in the
checkpoint) and a resumed run repeats an uninterrupted one bit for bit.  The same generator draws the method's noise.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ttdm.io import atomic_write, device_info, load_json, resolve_device, save_json, spec_hash
from ttdm.methods import METHODS
from ttdm.models import MODELS
from ttdm.models.embeddings import count_parameters
from ttdm.schedules import make_schedule

TRAINING_KEYS = ("steps", "batch_size", "lr", "ema_decay", "grad_clip", "checkpoint_every", "log_every")
CKPT_FORMAT = 1


def canonical(spec: dict[str, Any]) -> str:
    """The spec as key-sorted JSON: the form stored in checkpoints and compared on resume."""
    return json.dumps(spec, sort_keys=True)


def build_model(spec: dict[str, Any], dim: int, image_shape: tuple[int, ...] | None) -> nn.Module:
    """The network ``spec["arch"]`` with hparams ``spec["model_cfg"]``, initialised by torch's RNG at ``spec["seed"]``.

    The global RNG is restored afterwards, so building a model has no side effect on other random draws.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(spec["seed"]))
        return MODELS.get(spec["arch"])(dim, image_shape, **spec.get("model_cfg", {}))


class Run(NamedTuple):
    """A finished training run: the EMA network (eval mode), its spec, the data dimension D and image shape."""

    model: nn.Module
    spec: dict[str, Any]
    dim: int
    image_shape: tuple[int, ...] | None


def load_run(run_dir: str | Path, device: str = "cpu") -> Run:
    """Load ``run_dir/model.pt`` (``weights_only=True``) into a :class:`Run` whose model lives on ``device``."""
    path = Path(run_dir) / "model.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no trained model (the training run is missing or did not finish)")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    spec = json.loads(blob["spec"])
    shape = tuple(blob["image_shape"]) if blob["image_shape"] is not None else None
    model = build_model(spec, int(blob["dim"]), shape)
    model.load_state_dict(blob["ema"])
    return Run(model.to(device).eval(), spec, int(blob["dim"]), shape)


def load_model(run_dir: str | Path, device: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The EMA network of a finished run in eval mode on ``device``, and the run's spec (see :func:`load_run`)."""
    run = load_run(run_dir, device)
    return run.model, run.spec


def _check_training(training: dict[str, Any]) -> None:
    missing = [k for k in TRAINING_KEYS if k not in training]
    if missing:
        raise ValueError(f"spec['training'] lacks {missing}; required: {', '.join(TRAINING_KEYS)}")
    for key in ("steps", "batch_size", "checkpoint_every", "log_every"):
        if not isinstance(training[key], int) or training[key] < 1:
            raise ValueError(f"spec['training']['{key}'] must be a positive integer, got {training[key]!r}")
    if not 0.0 <= training["ema_decay"] < 1.0:
        raise ValueError(f"spec['training']['ema_decay'] must lie in [0, 1), got {training['ema_decay']!r}")


def _ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """θ_ema ← decay θ_ema + (1 − decay) θ, parameter by parameter; buffers are copied."""
    with torch.no_grad():
        for pe, p in zip(ema.parameters(), model.parameters()):
            pe.lerp_(p, 1.0 - decay)
        for be, b in zip(ema.buffers(), model.buffers()):
            be.copy_(b)


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    atomic_write(path, lambda p: torch.save(state, p))


def _loss_csv(rows: list[list[float]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["step", "loss", "wall_s"])
    writer.writerows([int(s), repr(float(l)), repr(float(w))] for s, l, w in rows)
    return buf.getvalue()


def train(
    spec: dict[str, Any], data_dir: str | Path, out_dir: str | Path, *, stop_after: int | None = None
) -> dict[str, Any]:
    """Train ``spec["arch"]`` on ``data_dir/train.npy`` with ``spec["method"]``; write the run into ``out_dir``.

    Adam on the method's loss, gradient-norm clipping, an EMA θ_ema ← d θ_ema + (1 − d) θ after every step. Every
    ``checkpoint_every`` steps ``out_dir/checkpoints/ckpt.pt`` is replaced atomically; a run finding a checkpoint of
    the same spec resumes from it, one of another spec is an error.  Outputs, ``model.pt`` last: ``loss.csv``
    (step, loss averaged over the last ``log_every`` steps, wall_s), ``train.json``, ``spec.json``, ``model.pt``.
    ``grad_clip`` 0 or None turns clipping off.  wall_s sums the training time of every process of the run, up to
    its last checkpoint for interrupted ones (the steps redone after a resume are counted once).

    Args:
        spec: {"dataset", "model", "arch", "model_cfg", "seed", "method", "schedule", "training", "device",
            "threads"}, see docs/design.md.
        stop_after: end after this many steps (counted from step 0) with a checkpoint and without the final
            outputs, as if the job were killed there; for splitting runs across job time limits and for tests.
    Returns:
        The ``train.json`` record, or {"steps_done", "complete": False} when stopped early.
    """
    training = spec["training"]
    _check_training(training)
    out_dir, data_dir = Path(out_dir), Path(data_dir)
    ckpt_path = out_dir / "checkpoints" / "ckpt.pt"
    device = resolve_device(spec.get("device", "auto"))
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))

    meta = load_json(data_dir / "meta.json")
    dim = int(meta["dim"])
    image_shape = tuple(meta["image_shape"]) if meta.get("image_shape") is not None else None
    data = np.load(data_dir / "train.npy")
    if data.ndim != 2 or data.shape[1] != dim:
        raise ValueError(f"{data_dir / 'train.npy'}: shape {data.shape} does not match dim {dim} in meta.json")
    x_train = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32)).to(device)  # (N, D)

    schedule = make_schedule(spec["schedule"])
    method = METHODS.get(spec["method"])()
    model = build_model(spec, dim, image_shape).to(device)
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.Adam(model.parameters(), lr=float(training["lr"]))
    generator = torch.Generator(device=device).manual_seed(int(spec_hash(["batches", spec["seed"]], 15), 16))

    steps = training["steps"]
    end = steps if stop_after is None else min(stop_after, steps)
    step, wall_prev, resumed_from = 0, 0.0, 0  # resumed_from 0: a fresh start
    losses = torch.zeros(steps, dtype=torch.float64)  # per-step loss, kept for loss.csv's window means
    log: list[list[float]] = []  # rows [step, window-mean loss, wall_s]
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        if ckpt.get("spec") != canonical(spec):
            raise ValueError(
                f"{ckpt_path} belongs to a different spec; delete it (or the run directory {out_dir}) to retrain"
            )
        model.load_state_dict(ckpt["model"])
        ema.load_state_dict(ckpt["ema"])
        optimizer.load_state_dict(ckpt["optimizer"])
        generator.set_state(ckpt["generator"])
        step = resumed_from = int(ckpt["step"])
        wall_prev, log = float(ckpt["wall_s"]), ckpt["log"]
        losses[:step] = ckpt["losses"]

    model.train()
    start = time.perf_counter()
    bar = tqdm(total=steps, initial=step, desc=str(out_dir), disable=not sys.stderr.isatty(), leave=False)
    while step < end:
        idx = torch.randint(0, x_train.shape[0], (training["batch_size"],), generator=generator, device=device)
        loss = method.loss(model, x_train[idx], schedule, generator)
        value = loss.item()
        if not np.isfinite(value):
            raise FloatingPointError(f"training loss is {value} at step {step + 1} of {out_dir}; lower the lr?")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if training["grad_clip"]:
            nn.utils.clip_grad_norm_(model.parameters(), float(training["grad_clip"]))
        optimizer.step()
        _ema_update(ema, model, float(training["ema_decay"]))
        losses[step] = value
        step += 1
        wall = wall_prev + time.perf_counter() - start
        bar.update(1)
        if step % training["log_every"] == 0 or step == steps:
            window = losses[max(0, step - training["log_every"]) : step]
            log.append([step, float(window.mean()), wall])
            bar.set_postfix(loss=f"{log[-1][1]:.4f}")
        if step % training["checkpoint_every"] == 0 or step == end:
            state = {
                "format": CKPT_FORMAT,
                "spec": canonical(spec),
                "step": step,
                "model": model.state_dict(),
                "ema": ema.state_dict(),
                "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(),
                "losses": losses[:step].clone(),
                "log": log,
                "wall_s": wall,
            }
            _save_checkpoint(ckpt_path, state)
    bar.close()
    if step < steps:
        return {"steps_done": step, "complete": False}

    _, final_loss, wall_s = log[-1]  # the last step is always logged
    record = {
        "steps": steps,
        "wall_s": wall_s,
        "steps_per_s": steps / wall_s,
        "n_params": count_parameters(model),
        "final_loss": final_loss,
        "resumed_from_step": resumed_from,
        "device": device_info(device),
    }
    text = _loss_csv(log)
    atomic_write(out_dir / "loss.csv", lambda p: p.write_text(text))
    save_json(out_dir / "train.json", record)
    save_json(out_dir / "spec.json", spec)
    blob = {
        "ema": {k: v.detach().cpu() for k, v in ema.state_dict().items()},
        "spec": canonical(spec),
        "dim": dim,
        "image_shape": list(image_shape) if image_shape is not None else None,
    }
    _save_checkpoint(out_dir / "model.pt", blob)
    return record
