"""The training stage: one generic loop that trains any registered method, with checkpoints and exact resume.

The loop owns what every method shares (the method owns the rest, :mod:`ttdm.methods.base`):

- held-out validation rows: :func:`hold_out` splits ``train.npy`` into fitting rows (``ctx.data``) and
  ``val_fraction`` validation rows (``ctx.val_data``; a training key of the methods that declare it, default
  :data:`~ttdm.methods.base.VAL_FRACTION`), the same rows for every run of a dataset; training never sees them;
- batches: each step draws ``method.batch_size`` indices of the N fitting rows uniform on {0..N−1} *with
  replacement* from one torch.Generator seeded by spec_hash([method.rng_stream, seed]); the method draws its noise
  from the same generator, so the whole random state of a run is one generator state;
- the EMA θ_ema ← d_n θ_ema + (1 − d_n) θ of the parts the method names, after the n-th step (n = 1, 2, …), with
  the warm-up d_n = min(d, (1 + n)/(10 + n)) of the configured ``ema_decay`` d: early updates follow the weights
  closely, so a short run does not sample from a lagged average of its random initial weights (300 steps at
  d = 0.995 without it leave 0.995³⁰⁰ ≈ 22 % of them); n is the checkpointed step, so resume is unchanged;
- the learning-rate schedule of every optimizer the method returns: lr_n = lr · f(n) at step n = 1, 2, …, a linear
  warm-up f(n) = n/W over the first W = ``warmup`` steps, then ``lr_schedule`` constant (f = 1) or cosine
  (f = ½(1 + cos(π (n − W − 1)/(S − W))) for S steps: 1 at the first step after the warm-up, small but positive at
  the last); f depends on n only, so resume is unchanged;
- one atomic checkpoint (``checkpoints/ckpt.pt``) every ``checkpoint_every`` steps of every part, EMA, optimizer,
  the method's state, the generator, the loss log and the wall time; a run that finds a checkpoint of its own spec
  resumes from it and repeats an uninterrupted run bit for bit (one of another spec is an error);
- the stop on a non-finite loss, naming the step; a progress bar (quiet when stderr is not a terminal);
- ``loss.csv``: step, loss (the window mean over ``log_every`` steps, or the step's own for exact objectives),
  wall_s (training time only, the method's ``setup`` included: validation is excluded; resumed runs sum their
  processes, each with its own setup), then the method's
  validation numbers on the sampling weights.

Outputs, ``model.pt`` last: loss.csv, train.json, spec.json, model.pt (:mod:`ttdm.runs`).
"""

from __future__ import annotations

import copy
import csv
import io
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ttdm.config.methods import LOOP_KEYS
from ttdm.io import atomic_write, device_info, load_json, resolve_device, save_json, spec_hash
from ttdm.methods.base import VAL_FRACTION, Context, Method, hold_out
from ttdm.models.embeddings import count_parameters
from ttdm.runs import MODEL_FORMAT, canonical, load_run, make_method

OPTIONAL_LOOP_KEYS = {"method": "ddpm", "lr_schedule": "constant", "warmup": 0}  # a spec without them: these values
CKPT_FORMAT = 3  # 3: EMA warm-up and held-out validation rows (a format-2 checkpoint is refused)


def _check_loop(training: dict[str, Any], trains: bool = True) -> None:
    """The loop's keys; ``steps`` is positive, or 0 for a method with nothing to train (``Method.trains``)."""
    missing = [k for k in LOOP_KEYS if k not in training and k not in OPTIONAL_LOOP_KEYS]
    if missing:
        raise ValueError(f"spec['training'] lacks {missing}; required: {', '.join(LOOP_KEYS[1:])}")
    for key in ("steps", "checkpoint_every", "log_every"):
        if not isinstance(training[key], int) or training[key] < 1:
            if key == "steps" and not trains and training[key] == 0:
                continue
            raise ValueError(f"spec['training']['{key}'] must be a positive integer, got {training[key]!r}")
    if not trains and training["steps"] != 0:
        raise ValueError(f"spec['training']['steps'] must be 0 for a method with nothing to train, got "
                         f"{training['steps']!r}")
    if not 0.0 <= training["ema_decay"] < 1.0:
        raise ValueError(f"spec['training']['ema_decay'] must lie in [0, 1), got {training['ema_decay']!r}")


def ema_decay(decay: float, n: int) -> float:
    """The decay of the n-th EMA update (n = 1, 2, … counts updates): min(d, (1 + n)/(10 + n)), the standard
    warm-up, so that a short run does not sample from weights that still hold a large share of its initial ones."""
    return min(float(decay), (1.0 + n) / (10.0 + n))


def lr_factor(schedule: str, warmup: int, n: int, steps: int) -> float:
    """The multiplier f(n) of the base learning rate at step n (1-based) of ``steps``: n/W during the W = ``warmup``
    warm-up steps, then 1 (``constant``) or ½(1 + cos(π (n − W − 1)/(steps − W))) (``cosine``)."""
    if n <= warmup:
        return n / warmup
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * (n - warmup - 1) / max(1, steps - warmup)))
    raise ValueError(f"lr_schedule {schedule!r} is not allowed; allowed: constant, cosine")


def _ema_update(ema_params: list[torch.Tensor], params: list[torch.Tensor], decay: float) -> None:
    """θ_ema ← decay θ_ema + (1 − decay) θ, all parameters in one foreach call.  The lists are built once per run
    (walking the module tree every step cost ~5 % of an MLP's step); buffers are not averaged but copied whenever the
    EMA is read (:meth:`_Loop.ema_modules`), as a module may replace a buffer (FAVOR+ redraws its features)."""
    if ema_params:
        with torch.no_grad():
            torch._foreach_lerp_(ema_params, params, 1.0 - decay)


def _loss_csv(rows: list[list[float]], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["step", "loss", "wall_s", *columns])
    writer.writerows([int(r[0]), *(repr(float(v)) for v in r[1:])] for r in rows)
    return buf.getvalue()


def _load_data(data_dir: Path, device: str) -> tuple[dict[str, Any], torch.Tensor]:
    meta = load_json(data_dir / "meta.json")
    data = np.load(data_dir / "train.npy")
    if data.ndim != 2 or data.shape[1] != int(meta["dim"]):
        raise ValueError(f"{data_dir / 'train.npy'}: shape {data.shape} does not match dim {meta['dim']} in meta.json")
    return meta, torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32)).to(device)  # (N, D)


def _load_needs(spec: dict[str, Any], needs: dict[str, str | Path] | None, device: str) -> dict[str, Any]:
    """The finished runs the spec needs, by role; their spec hashes must match the ones in ``spec["needs"]``."""
    wanted = spec.get("needs") or {}
    given = {k: Path(v) for k, v in (needs or {}).items()}
    if set(wanted) != set(given):
        raise ValueError(f"the run needs runs for roles {sorted(wanted)}; given {sorted(given)} (--needs ROLE=DIR)")
    runs = {}
    for role, run_dir in given.items():
        run = load_run(run_dir, device)
        if spec_hash(run.spec) != wanted[role]["spec_hash"]:
            raise ValueError(f"{run_dir}: its spec is not the one this run needs for {role!r}; retrain it first")
        runs[role] = run
    return runs


def _check_inputs(spec: dict[str, Any], inputs: dict[str, str | Path] | None) -> dict[str, Path]:
    """The other files the run's method reads (:meth:`Method.inputs`), by role: exactly its roles, existing files."""
    from ttdm.config.methods import LOOP_KEYS
    from ttdm.methods import METHODS
    from ttdm.options import check_options

    cls = METHODS.get(spec.get("method", "ddpm"))
    options = check_options(cls.Options, {k: v for k, v in spec["training"].items() if k not in LOOP_KEYS},
                            "training")
    wanted = cls.inputs(options, str(spec["dataset"]), int(spec["seed"]))
    given = {k: Path(v) for k, v in (inputs or {}).items()}
    if set(wanted) != set(given):
        raise ValueError(f"the run reads files for roles {sorted(wanted)}; given {sorted(given)} (--inputs ROLE=PATH)")
    for role, path in given.items():
        if not path.is_file():
            raise FileNotFoundError(f"--inputs {role}={path}: no such file")
    return given


def train(
    spec: dict[str, Any], data_dir: str | Path, out_dir: str | Path, *, needs: dict[str, str | Path] | None = None,
    inputs: dict[str, str | Path] | None = None, stop_after: int | None = None,
) -> dict[str, Any]:
    """Train the run ``spec`` on ``data_dir/train.npy`` with its method; write the run into ``out_dir``.

    Args:
        spec: {"dataset", "model", "arch", "model_cfg", "seed", "method", "schedule", "training", "device",
            "threads", "needs"}, see docs/design.md.  ``training`` holds the loop's keys (:data:`LOOP_KEYS`) and
            the method's options.
        needs: {role: run directory} of the runs ``spec["needs"]`` names.
        inputs: {role: file} of the other files the method reads (``Method.inputs``; ``ctx.inputs``).
        stop_after: end after this many steps (counted from step 0) with a checkpoint and without the final
            outputs, as if the job were killed there; for splitting runs across job time limits and for tests.
    Returns:
        The ``train.json`` record, or {"steps_done", "complete": False} when stopped early.
    """
    training = spec["training"]
    from ttdm.methods import METHODS

    _check_loop(training, trains=METHODS.get(spec.get("method", "ddpm")).trains)
    out_dir, data_dir = Path(out_dir), Path(data_dir)
    device = resolve_device(spec.get("device", "auto"))
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    meta, x_train = _load_data(data_dir, device)
    image_shape = tuple(meta["image_shape"]) if meta.get("image_shape") is not None else None
    x_fit, x_val = hold_out(x_train, str(spec["dataset"]), float(training.get("val_fraction", VAL_FRACTION)))
    ctx = Context(spec=spec, dim=int(meta["dim"]), image_shape=image_shape, device=device, meta=meta, data=x_fit,
                  needs=_load_needs(spec, needs, device), val_data=x_val, inputs=_check_inputs(spec, inputs))
    method = make_method(spec, ctx)
    with torch.random.fork_rng(devices=[]):  # parts are initialised from the run's seed, without side effects
        torch.manual_seed(int(spec["seed"]))
        parts = method.build()
    loop = _Loop(method, parts, spec, out_dir, device)
    if not loop.run(stop_after):
        return {"steps_done": min(stop_after or 0, training["steps"]), "complete": False}

    sampling = loop.sampling_parts()
    if loop.log:
        _, final_loss, wall_s, *validation = loop.log[-1]  # the last step is always logged
    else:  # 0 steps (nothing to train): no loss; the setup's time; validation of the parts as built
        final_loss, wall_s, validation = None, loop.wall_s, list(method.validate(sampling).values())
    steps = training["steps"]
    record = {
        "steps": steps,
        "method": spec["method"],
        "wall_s": wall_s,
        "steps_per_s": steps / wall_s if steps else None,
        "n_params": sum(count_parameters(p) for p in parts.values()),
        "n_fit_rows": int(x_fit.shape[0]),
        "n_val_rows": int(x_val.shape[0]),
        "final_loss": final_loss,
        **dict(zip(loop.columns, validation)),
        **method.summary(sampling),
        "resumed_from_step": loop.resumed_from,
        "device": device_info(device),
    }
    text = _loss_csv(loop.log, loop.columns)
    atomic_write(out_dir / "loss.csv", lambda p: p.write_text(text))
    save_json(out_dir / "train.json", record)
    save_json(out_dir / "spec.json", spec)
    blob = {
        "format": MODEL_FORMAT,
        "parts": {name: {k: v.detach().cpu() for k, v in part.state_dict().items()} for name, part in sampling.items()},
        "spec": canonical(spec),
        "dim": ctx.dim,
        "image_shape": list(image_shape) if image_shape is not None else None,
    }
    atomic_write(out_dir / "model.pt", lambda p: torch.save(blob, p))
    return record


class _Loop:
    """The state of one training run between steps: parts, EMA, optimizers, generator, loss log."""

    def __init__(self, method: Method, parts: dict[str, nn.Module], spec: dict[str, Any], out_dir: Path,
                 device: str) -> None:
        self.method, self.parts, self.spec, self.out_dir = method, parts, spec, out_dir
        self.training = spec["training"]
        self.ckpt_path = out_dir / "checkpoints" / "ckpt.pt"
        self.ema = {name: copy.deepcopy(parts[name]).requires_grad_(False) for name in method.ema_parts()}
        self.ema_params = {name: (list(ema.parameters()), list(parts[name].parameters()))
                           for name, ema in self.ema.items()}
        self.optimizers = method.optimizers(parts)
        for optimizer in self.optimizers.values():  # the base learning rates the schedule multiplies
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        self.generator = torch.Generator(device=device).manual_seed(
            int(spec_hash([method.rng_stream, spec["seed"]], 15), 16))
        tick = time.perf_counter()
        method.setup(parts, self.generator)
        self.setup_s = time.perf_counter() - tick  # training time: counted again on every resume (it is real cost)
        self.columns = list(method.validate(self.sampling_parts()))
        self.step, self.wall_prev, self.resumed_from = 0, 0.0, 0  # resumed_from 0: a fresh start
        self.losses = torch.zeros(self.training["steps"], dtype=torch.float64)  # per-step loss, for window means
        self.log: list[list[float]] = []  # rows [step, loss, wall_s, *validation]
        self._resume()

    def ema_modules(self) -> dict[str, nn.Module]:
        """The EMA copies, given their parts' current buffers (buffers are copied, not averaged)."""
        with torch.no_grad():
            for name, ema in self.ema.items():
                for ema_buffer, buffer in zip(ema.buffers(), self.parts[name].buffers(), strict=True):
                    ema_buffer.copy_(buffer)
        return self.ema

    def sampling_parts(self) -> dict[str, nn.Module]:
        """The weights that sample: the EMA of the parts that keep one, the others as they are."""
        ema = self.ema_modules()
        return {name: ema.get(name, part) for name, part in self.parts.items()}

    def _resume(self) -> None:
        if not self.ckpt_path.exists():
            return
        ckpt = torch.load(self.ckpt_path, map_location="cpu", weights_only=True)
        if ckpt.get("spec") != canonical(self.spec) or ckpt.get("format") != CKPT_FORMAT:
            raise ValueError(f"{self.ckpt_path} belongs to a different spec; delete it (or the run directory "
                             f"{self.out_dir}) to retrain")
        for group, modules in (("parts", self.parts), ("ema", self.ema), ("optimizers", self.optimizers)):
            for name, obj in modules.items():
                obj.load_state_dict(ckpt[group][name])
        self.method.load_state_dict(ckpt["method"])
        self.generator.set_state(ckpt["generator"])
        self.step = self.resumed_from = int(ckpt["step"])
        self.wall_prev, self.log = float(ckpt["wall_s"]), ckpt["log"]
        self.losses[: self.step] = ckpt["losses"]

    def _checkpoint(self, wall: float) -> None:
        state = {
            "format": CKPT_FORMAT, "spec": canonical(self.spec), "step": self.step,
            "parts": {k: m.state_dict() for k, m in self.parts.items()},
            "ema": {k: m.state_dict() for k, m in self.ema_modules().items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "method": self.method.state_dict(), "generator": self.generator.get_state(),
            "losses": self.losses[: self.step].clone(), "log": self.log, "wall_s": wall,
        }
        atomic_write(self.ckpt_path, lambda p: torch.save(state, p))

    def run(self, stop_after: int | None) -> bool:
        """Train up to the last step (or ``stop_after``); True when the run is complete."""
        tr, method = self.training, self.method
        steps = tr["steps"]
        end = steps if stop_after is None else min(stop_after, steps)
        data, batch_size = method.ctx.data, method.batch_size
        for part in self.parts.values():
            part.train()
        start = time.perf_counter() - self.setup_s  # the method's setup is training time
        self.wall_s = self.wall_prev + self.setup_s  # the training time so far (all of it for a run of 0 steps)
        self.setup_s = 0.0
        bar = tqdm(total=steps, initial=self.step, desc=str(self.out_dir), disable=not sys.stderr.isatty(),
                   leave=False)
        while self.step < end:
            batch = None
            if batch_size:
                idx = torch.randint(0, data.shape[0], (batch_size,), generator=self.generator, device=data.device)
                batch = data[idx]
            factor = lr_factor(tr.get("lr_schedule", "constant"), tr.get("warmup", 0), self.step + 1, steps)
            for optimizer in self.optimizers.values():
                for group in optimizer.param_groups:
                    group["lr"] = group["initial_lr"] * factor
            value = method.train_step(self.parts, self.optimizers, batch, self.generator)
            if not np.isfinite(value):
                raise FloatingPointError(
                    f"training loss is {value} at step {self.step + 1} of {self.out_dir}; lower the lr or step size?")
            decay = ema_decay(tr["ema_decay"], self.step + 1)  # the warm-up counts updates: resumes with the step
            for ema_params, params in self.ema_params.values():
                _ema_update(ema_params, params, decay)
            self.losses[self.step] = value
            self.step += 1
            wall = self.wall_prev + time.perf_counter() - start
            bar.update(1)
            if self.step % tr["log_every"] == 0 or self.step == steps:
                window = self.losses[max(0, self.step - tr["log_every"]) : self.step]
                loss = float(window.mean()) if method.window_mean else value
                tick = time.perf_counter()
                self.log.append([self.step, loss, wall, *method.validate(self.sampling_parts()).values()])
                start += time.perf_counter() - tick  # validation time is not training time
                bar.set_postfix(loss=f"{loss:.4f}")
            if self.step % tr["checkpoint_every"] == 0 or self.step == end:
                self._checkpoint(wall)
        bar.close()
        return self.step >= steps
