"""The training stage: fit a noise predictor with a registered method, with checkpoints and resume.

Two kinds of optimiser, chosen by ``training.optimizer``:
- ``adam`` / ``sgd``: mini-batch gradient steps through autograd (any model), EMA weights, gradient clipping;
- ``als`` / ``rgd``: the least-squares optimisers of tensor-train models (``ttdm.tt``) on a fixed sample of
  ``n_fit`` regression triplets (x_t, t, target) of the method: one step is one ALS sweep or one Riemannian
  gradient iteration (full batch, or ``fit_batch`` rows drawn per iteration).

Every run logs, besides its training loss, ``val_loss``: the method's loss of the sampled weights on ``n_val``
triplets drawn once per dataset, the same for every model and optimiser, so their curves compare directly.

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
GRADIENT_OPTIMIZERS = ("adam", "sgd")
SOLVER_OPTIMIZERS = ("als", "rgd")
SOLVER_DEFAULTS = {"n_fit": 20000, "lam": 1e-3, "step_size": 1.0, "line_search": True, "fit_batch": 0,
                   "engine": "auto"}
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
    optimizer = training.get("optimizer", "adam")
    if optimizer not in GRADIENT_OPTIMIZERS + SOLVER_OPTIMIZERS:
        allowed = ", ".join(GRADIENT_OPTIMIZERS + SOLVER_OPTIMIZERS)
        raise ValueError(f"spec['training']['optimizer'] = {optimizer!r}; allowed: {allowed}")


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
    writer.writerow(["step", "loss", "wall_s", "val_loss"])
    writer.writerows([int(r[0]), *(repr(float(v)) for v in r[1:])] for r in rows)
    return buf.getvalue()


class _Setting(NamedTuple):
    """What both training loops share."""

    spec: dict[str, Any]
    training: dict[str, Any]
    out_dir: Path
    ckpt_path: Path
    device: str
    x_train: torch.Tensor  # (N, D) on device
    schedule: Any
    method: Any
    model: nn.Module
    val: tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (x_t, t, target) of the validation triplets


@torch.no_grad()
def _val_loss(model: nn.Module, val: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> float:
    x_t, t, target = val
    was_training = model.training
    model.eval()
    loss = float(((target - model(x_t, t)) ** 2).mean())
    model.train(was_training)
    return loss


def _validation_triplets(method: Any, x_train: torch.Tensor, schedule: Any, dataset: str, n_val: int):
    """n_val triplets of the method on the training data, drawn once per dataset (independent of the run's seed)."""
    gen = torch.Generator(device=x_train.device).manual_seed(int(spec_hash(["validation", dataset], 15), 16))
    idx = torch.randint(0, x_train.shape[0], (n_val,), generator=gen, device=x_train.device)
    return method.triplets(x_train[idx], schedule, gen)


def _eps_star_of(meta, val, schedule):
    """(x_t, t, ε*(x_t, t)) at the validation points when the data is a Gaussian mixture, else None."""
    if not meta.get("mixture"):
        return None
    from ttdm.data.mixture import GaussianMixture

    x_t, t, _ = val
    return x_t, t, GaussianMixture.from_dict(meta["mixture"]).eps_model(schedule)(x_t, t)


@torch.no_grad()
def _eps_rel_error(model: nn.Module, triplets) -> float:
    """‖ε_θ − ε*‖ / ‖ε*‖ over the validation points: the model's error against the exact noise predictor."""
    x_t, t, target = triplets
    model.eval()
    return float(torch.linalg.norm(model(x_t, t) - target) / torch.linalg.norm(target))


def _load_checkpoint(st: _Setting) -> dict[str, Any] | None:
    if not st.ckpt_path.exists():
        return None
    ckpt = torch.load(st.ckpt_path, map_location="cpu", weights_only=True)
    if ckpt.get("spec") != canonical(st.spec):
        raise ValueError(
            f"{st.ckpt_path} belongs to a different spec; delete it (or the run directory {st.out_dir}) to retrain"
        )
    return ckpt


def train(
    spec: dict[str, Any], data_dir: str | Path, out_dir: str | Path, *, stop_after: int | None = None
) -> dict[str, Any]:
    """Train ``spec["arch"]`` on ``data_dir/train.npy`` with ``spec["method"]``; write the run into ``out_dir``.

    Every ``checkpoint_every`` steps ``out_dir/checkpoints/ckpt.pt`` is replaced atomically; a run finding a
    checkpoint of the same spec resumes from it, one of another spec is an error.  Outputs, ``model.pt`` last:
    ``loss.csv`` (step, loss, wall_s, val_loss), ``train.json``, ``spec.json``, ``model.pt`` (the weights that
    sample: the EMA for gradient optimisers, the last iterate for ALS/RGD).  wall_s sums the training time of every
    process of the run, up to its last checkpoint for interrupted ones (the steps redone after a resume are counted
    once); it excludes the validation loss.

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
    method = METHODS.get(spec["method"]).from_data(meta)
    model = build_model(spec, dim, image_shape)
    if hasattr(model, "fit_domain"):  # models with a fixed input domain (tensor trains) take it from the data
        alpha, sigma = schedule.alpha_sigma(torch.arange(schedule.T))
        model.fit_domain(x_train.cpu(), alpha, sigma)
    model = model.to(device)
    val = _validation_triplets(method, x_train, schedule, spec["dataset"], int(training.get("n_val", 2048)))
    eps_star = _eps_star_of(meta, val, schedule)
    st = _Setting(spec, training, out_dir, out_dir / "checkpoints" / "ckpt.pt", device, x_train, schedule, method,
                  model, val)
    optimizer = training.get("optimizer", "adam")
    loop = _solver_loop if optimizer in SOLVER_OPTIMIZERS else _gradient_loop
    result = loop(st, stop_after)
    if result is None:
        return {"steps_done": min(stop_after or 0, training["steps"]), "complete": False}
    final_model, log, resumed_from = result

    _, final_loss, wall_s, val_loss = log[-1]  # the last step is always logged
    steps = training["steps"]
    record = {
        "steps": steps,
        "optimizer": optimizer,
        "wall_s": wall_s,
        "steps_per_s": steps / wall_s,
        "n_params": count_parameters(model),
        "final_loss": final_loss,
        "val_loss": val_loss,
        "eps_rel_error": _eps_rel_error(final_model, eps_star) if eps_star is not None else None,
        "resumed_from_step": resumed_from,
        "device": device_info(device),
    }
    text = _loss_csv(log)
    atomic_write(out_dir / "loss.csv", lambda p: p.write_text(text))
    save_json(out_dir / "train.json", record)
    save_json(out_dir / "spec.json", spec)
    blob = {
        "ema": {k: v.detach().cpu() for k, v in final_model.state_dict().items()},
        "spec": canonical(spec),
        "dim": dim,
        "image_shape": list(image_shape) if image_shape is not None else None,
    }
    _save_checkpoint(out_dir / "model.pt", blob)
    return record


def _gradient_loop(st: _Setting, stop_after: int | None):
    """Adam (or SGD) on the method's loss with clipping and an EMA; returns (ema, log, resumed_from) or None."""
    training, model = st.training, st.model
    ema = copy.deepcopy(model).requires_grad_(False)
    opt_class = torch.optim.SGD if training.get("optimizer") == "sgd" else torch.optim.Adam
    optimizer = opt_class(model.parameters(), lr=float(training["lr"]))
    generator = torch.Generator(device=st.device).manual_seed(int(spec_hash(["batches", st.spec["seed"]], 15), 16))

    steps = training["steps"]
    end = steps if stop_after is None else min(stop_after, steps)
    step, wall_prev, resumed_from = 0, 0.0, 0  # resumed_from 0: a fresh start
    losses = torch.zeros(steps, dtype=torch.float64)  # per-step loss, kept for loss.csv's window means
    log: list[list[float]] = []  # rows [step, window-mean loss, wall_s, val_loss]
    ckpt = _load_checkpoint(st)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        ema.load_state_dict(ckpt["ema"])
        optimizer.load_state_dict(ckpt["optimizer"])
        generator.set_state(ckpt["generator"])
        step = resumed_from = int(ckpt["step"])
        wall_prev, log = float(ckpt["wall_s"]), ckpt["log"]
        losses[:step] = ckpt["losses"]

    model.train()
    start = time.perf_counter()
    bar = tqdm(total=steps, initial=step, desc=str(st.out_dir), disable=not sys.stderr.isatty(), leave=False)
    while step < end:
        idx = torch.randint(0, st.x_train.shape[0], (training["batch_size"],), generator=generator, device=st.device)
        loss = st.method.loss(model, st.x_train[idx], st.schedule, generator)
        value = loss.item()
        if not np.isfinite(value):
            raise FloatingPointError(f"training loss is {value} at step {step + 1} of {st.out_dir}; lower the lr?")
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
            tick = time.perf_counter()
            log.append([step, float(window.mean()), wall, _val_loss(ema, st.val)])
            start += time.perf_counter() - tick  # validation time is not training time
            bar.set_postfix(loss=f"{log[-1][1]:.4f}")
        if step % training["checkpoint_every"] == 0 or step == end:
            state = {
                "format": CKPT_FORMAT,
                "spec": canonical(st.spec),
                "step": step,
                "model": model.state_dict(),
                "ema": ema.state_dict(),
                "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(),
                "losses": losses[:step].clone(),
                "log": log,
                "wall_s": wall,
            }
            _save_checkpoint(st.ckpt_path, state)
    bar.close()
    if step < steps:
        return None
    return ema, log, resumed_from


def _solver_loop(st: _Setting, stop_after: int | None):
    """ALS sweeps or Riemannian GD iterations of a TT model; returns (model, log, resumed_from) or None."""
    from ttdm.tt import als, riemannian

    training, model = st.training, st.model
    opts = {**SOLVER_DEFAULTS, **{k: training[k] for k in SOLVER_DEFAULTS if k in training}}
    optimizer = training["optimizer"]
    if not hasattr(model, "regression"):
        raise ValueError(
            f"optimizer {optimizer!r} fits tensor-train models only (arch 'tt'); {st.spec['arch']!r} trains with adam"
        )
    engine = opts["engine"]
    if engine == "auto":
        engine = "teneva" if (model.cfg.layout == "per_output" and st.device == "cpu") else "torch"
    if engine == "teneva" and model.cfg.layout != "per_output":
        raise ValueError("ALS engine 'teneva' fits one TT per output (layout per_output); use engine 'torch'")

    # the fixed fitting sample, drawn from the run's seed (a resumed run draws the same one)
    gen = torch.Generator(device=st.device).manual_seed(int(spec_hash(["fit", st.spec["seed"]], 15), 16))
    idx = torch.randint(0, st.x_train.shape[0], (int(opts["n_fit"]),), generator=gen, device=st.device)
    x_t, t, target = st.method.triplets(st.x_train[idx], st.schedule, gen)
    feats, y = model.regression(x_t, t, target)
    points = torch.cat([model.scaled(x_t).clamp(-1, 1), (2 * t[:, None] - 1).to(model.lo.dtype)], dim=1)
    bases = [lambda v: model.basis(v, model.n_x)] * model.dim + [lambda v: model.time_basis(v, model.n_t)]

    steps = training["steps"]
    end = steps if stop_after is None else min(stop_after, steps)
    step, wall_prev, resumed_from, alpha = 0, 0.0, 0, float(opts["step_size"])
    log: list[list[float]] = []
    ckpt = _load_checkpoint(st)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        gen.set_state(ckpt["generator"])
        step = resumed_from = int(ckpt["step"])
        wall_prev, log, alpha = float(ckpt["wall_s"]), ckpt["log"], float(ckpt["alpha"])
    cores = [c.detach() for c in model.cores]

    start = time.perf_counter()
    bar = tqdm(total=steps, initial=step, desc=str(st.out_dir), disable=not sys.stderr.isatty(), leave=False)
    while step < end:
        if optimizer == "als" and engine == "teneva":
            cores = als.sweep_teneva(cores, points, bases, y, float(opts["lam"]))
        elif optimizer == "als":
            cores = als.sweep(cores, feats, y, float(opts["lam"]))
        else:
            rows_feats, rows_y = feats, y
            if opts["fit_batch"]:  # stochastic RGD: a fresh mini-batch of rows of the fitting sample
                rows = torch.randint(0, y.shape[1], (int(opts["fit_batch"]),), generator=gen, device=st.device)
                rows_feats, rows_y = [f[rows] for f in feats], y[:, rows]
            trial = min(2 * alpha, float(opts["step_size"])) if opts["line_search"] else alpha
            cores, alpha, _ = riemannian.descent(
                cores, rows_feats, rows_y, model.ranks, trial, line_search=bool(opts["line_search"])
            )
        fit_loss = float(riemannian.mse(cores, feats, y))
        if not np.isfinite(fit_loss):
            raise FloatingPointError(f"training loss is {fit_loss} at step {step + 1} of {st.out_dir}; lower step_size?")
        model.set_cores(cores)
        step += 1
        wall = wall_prev + time.perf_counter() - start
        bar.update(1)
        if step % training["log_every"] == 0 or step == steps:
            tick = time.perf_counter()
            log.append([step, fit_loss, wall, _val_loss(model, st.val)])
            start += time.perf_counter() - tick
            bar.set_postfix(loss=f"{fit_loss:.4f}")
        if step % training["checkpoint_every"] == 0 or step == end:
            state = {"format": CKPT_FORMAT, "spec": canonical(st.spec), "step": step, "model": model.state_dict(),
                     "generator": gen.get_state(), "log": log, "wall_s": wall, "alpha": alpha}
            _save_checkpoint(st.ckpt_path, state)
    bar.close()
    if step < steps:
        return None
    return model, log, resumed_from
