"""Diffusion sampling with neural operators, DSNO (Zheng et al. 2023): a student that maps the noise x_T to its
teacher's probability-flow trajectory at M output times in one forward pass (1 NFE; the last state is the sample).

- The teacher is a finished denoiser run (``teacher``, a need: same dataset and seed).  Its trajectories are a file
  of their own (:mod:`ttdm.config.dsno`, written by ``ttdm trajectories``): N seeded noises x_T, the deterministic
  DDIM (η = 0) path of the probability-flow ODE with ``traj_steps`` steps, kept at the M + 1 states of DSNO's
  quadratic index spacing j_m = S − round(S (1 − m/M)²) (:func:`ttdm.models.dsno.quadratic_indices`; m = 0 is x_T),
  plus ``n_eval`` held-out trajectories (validation and the per-sample error).  A file of ``traj_M`` = c·M stored
  times serves a student of M too: j_{cm}(cM) = j_m(M), so it takes every c-th state (:func:`every_mth`).
- The student (:class:`ttdm.models.dsno.DSNOStudent`) is the teacher's backbone initialised from its sampling (EMA)
  weights, with the backbone's time embedding at each output time t_m and, with ``temporal``, a temporal Fourier
  convolution (``modes`` of the M) after each block.
- Loss: Σ_m w_m d(x̂_m, x_m) / Σ_m w_m, w_m = clamp(√SNR(t_m), 1, 10⁴) (10⁴ at the data, t_M = 0), d the mean
  squared (``loss: l2``) or absolute (``l1``) error over the D coordinates, on ``batch_size`` trajectories drawn
  with replacement from the loop's generator per step; Adam, gradient clipping, EMA (which samples).
- Sampling: the sampler kind ``dsno`` (protocol "dsno", 1 step).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ttdm.config.dsno import stored_times, trajectory_key, trajectory_path
from ttdm.io import load_json
from ttdm.methods import METHODS
from ttdm.methods.base import Context, Method
from ttdm.models.dsno import DSNOStudent, quadratic_indices
from ttdm.models.embeddings import GaussianPrior, count_parameters
from ttdm.options import option
from ttdm.samplers.timesteps import SPACINGS, step_pairs
from ttdm.schedules import make_schedule

PROTOCOL = "dsno"
WEIGHT_MAX = 1e4  # w_m = clamp(√SNR, 1, 1e4): DSNO's weights


@dataclass(frozen=True)
class DSNOOptions:
    teacher: str = option("mlp", "the model name of the teacher run (same dataset and seed; a denoiser of the same "
                                 "arch and sizes as this run's model)", pattern=r"[A-Za-z0-9_-]+")
    M: int = option(4, "output times of the operator (its temporal resolution)", min=1, max=64)
    traj_M: int = option(0, "output times stored in the trajectories file (0: M); a multiple of M: students of M = 2, "
                            "4, 8 with traj_M 8 share one file and take every (traj_M/M)-th state", min=0, max=64)
    modes: int = option(2, "Fourier modes k of the temporal convolution (at most M//2 + 1: fewer are taken)", min=1)
    temporal: bool = option(True, "temporal convolution after each block (false: the ablation without it)")
    loss: str = option("l2", "d: mean squared (l2) or absolute (l1) error over the coordinates", choices=("l2", "l1"))
    n_traj: int = option(16384, "teacher trajectories to train on (2048 overfit a 25gaussians student: held-out loss "
                                "8x the training loss)", min=1)
    n_eval: int = option(500, "held-out teacher trajectories (validation, per-sample error)", min=2)
    n_val: int = option(256, "held-out trajectories of the logged validation loss (at most n_eval)", min=1)
    solver: str = option("ddim", "the teacher's ODE solver: ddim (η = 0)", choices=("ddim",))
    traj_steps: int = option(256, "the teacher solver's steps S (at least M²)", min=1)
    traj_spacing: str = option("trailing", "the steps the teacher solver visits (ttdm.samplers.timesteps)",
                               choices=SPACINGS)
    batch_size: int = option(256, "trajectories per step", min=1)
    lr: float = option(1e-3, "Adam learning rate", gt=0)
    grad_clip: float = option(1.0, "max global gradient norm (0: no clipping)", min=0)


class OneStep:
    """What the ``dsno`` sampler runs: ``states(x_T)`` (B, M, D), the student's whole trajectory."""

    def __init__(self, student: nn.Module) -> None:
        self.student = student

    def states(self, x: torch.Tensor) -> torch.Tensor:
        return self.student(x)


def every_mth(states: np.ndarray, M: int, axis: int = 1) -> np.ndarray:
    """The M + 1 states (x_T and M outputs) of a student of M from an array of S + 1 = c·M + 1 stored states along
    ``axis`` (trajectories (n, S + 1, D); the (S + 1,) state and step indices with axis 0): every c-th state (the
    quadratic states of M are every c-th of those of c·M)."""
    stored = states.shape[axis] - 1
    if stored % M:
        raise ValueError(f"trajectories of {stored} stored times cannot serve a student of M = {M} (not a multiple)")
    return np.take(states, np.arange(0, stored + 1, stored // M), axis=axis)


def output_steps(options: DSNOOptions, schedule: Any) -> tuple[list[int], list[int]]:
    """(state indices j_1..j_M of the teacher path, their step indices i (−1: the data)) of the M outputs."""
    js = quadratic_indices(options.traj_steps, options.M)
    index = [i for i, _ in step_pairs(schedule.T, options.traj_steps, options.traj_spacing, schedule)] + [-1]
    return js[1:], [index[j] for j in js[1:]]


@METHODS.register("dsno")
class DSNO(Method):
    """The DSNO student; see the module docstring."""

    Options: ClassVar[type] = DSNOOptions
    provides: ClassVar[tuple[str, ...]] = (PROTOCOL,)
    archs: ClassVar[tuple[str, ...] | None] = ("mlp", "unet")
    data_likelihood: ClassVar[bool] = False  # no density: one deterministic map

    def __init__(self, options: DSNOOptions, ctx: Context) -> None:
        super().__init__(options, ctx)
        if options.n_val > options.n_eval:
            raise ValueError(f"n_val = {options.n_val} exceeds n_eval = {options.n_eval} held-out trajectories")
        self.schedule = make_schedule(ctx.spec["schedule"])
        self.js, self.steps = output_steps(options, self.schedule)
        steps = torch.tensor(self.steps)
        abar = self.schedule.abar(steps).double()  # (M,): ᾱ = 1 at the data
        self.times = torch.where(steps < 0, torch.zeros(len(steps)), self.schedule.time(steps))  # t_m; 0 at the data
        self.alpha, self.sigma = abar.sqrt().float(), (1 - abar).clamp(min=0).sqrt().float()
        snr = abar / (1 - abar)  # inf at the data
        self.weights = snr.sqrt().clamp(1.0, WEIGHT_MAX).float().to(ctx.device)  # (M,)
        self.x_T = self.targets = self.val_x = self.val_targets = None
        if "trajectories" in ctx.inputs:
            self._load(ctx.inputs["trajectories"])

    def _load(self, path: Any) -> None:
        """The trajectories file: its spec must be this run's (teacher, M, counts, solver); states to the device."""
        o, spec = self.options, self.ctx.spec
        meta = load_json(str(path)[: -len(".npz")] + ".json")
        teacher_hash = spec["needs"]["teacher"]["spec_hash"]
        expect = {"teacher": o.teacher, "teacher_spec_hash": teacher_hash, "M": stored_times(asdict(o)),
                  "n": o.n_traj,
                  "n_eval": o.n_eval, "solver": o.solver, "steps": o.traj_steps, "spacing": o.traj_spacing}
        wrong = {k: (meta["spec"].get(k), v) for k, v in expect.items() if meta["spec"].get(k) != v}
        if wrong:
            raise ValueError(f"{path}: trajectories of another teacher or setting ({wrong}: file, run); regenerate")
        with np.load(path) as f:
            state, step = (every_mth(f[k], o.M, axis=0) for k in ("state", "step"))
            if list(state) != [0, *self.js] or list(step[1:]) != self.steps:
                raise ValueError(f"{path}: states {list(state)} are not the quadratic indices {[0, *self.js]}")
            train, held = (torch.from_numpy(every_mth(f[k], o.M)).float().to(self.ctx.device)
                           for k in ("train", "eval"))
        self.x_T, self.targets = train[:, 0], train[:, 1:]  # (N, D), (N, M, D)
        self.val_x, self.val_targets = held[: o.n_val, 0], held[: o.n_val, 1:]

    @classmethod
    def needs(cls, options: DSNOOptions) -> dict[str, str]:
        return {"teacher": options.teacher}

    @classmethod
    def inputs(cls, options: DSNOOptions, dataset: str, seed: int) -> dict[str, str]:
        return {"trajectories": trajectory_path(dataset, options.teacher, seed, trajectory_key(asdict(options)))}

    @classmethod
    def sampler_error(cls, options: Any, protocol: str, steps: int, spec: dict[str, Any]) -> str | None:
        if protocol != PROTOCOL:
            return f"method provides {PROTOCOL!r} (one forward pass of its operator), not {protocol!r}"
        if steps != 1:
            return f"the operator samples in one step, not {steps}"
        return None

    # ---- parts -----------------------------------------------------------------------------------------------
    @property
    def batch_size(self) -> int | None:
        return None  # the loop draws no data rows: train_step draws trajectories

    def build(self) -> dict[str, nn.Module]:
        from ttdm.runs import build_model

        ctx, o = self.ctx, self.options
        backbone = build_model(ctx.spec, ctx.dim, ctx.image_shape)
        if isinstance(backbone, GaussianPrior):
            backbone.set_sigmas(self.schedule.alpha_sigma(torch.arange(self.schedule.T))[1])
        teacher = ctx.needs.get("teacher")
        if teacher is not None:  # training: start from the teacher's sampling weights
            if teacher.spec["arch"] != ctx.spec["arch"] or teacher.spec["model_cfg"] != ctx.spec["model_cfg"]:
                raise ValueError(f"the teacher {o.teacher!r} is a {teacher.spec['arch']} {teacher.spec['model_cfg']}, "
                                 f"not this run's {ctx.spec['arch']} {ctx.spec['model_cfg']}: use the same model entry")
            backbone.load_state_dict(teacher.parts["denoiser"].state_dict())
        student = DSNOStudent(backbone, self.times, self.alpha, self.sigma, temporal=o.temporal, modes=o.modes)
        return {"student": student.to(ctx.device)}

    def ema_parts(self) -> tuple[str, ...]:
        return ("student",)

    def optimizers(self, parts: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        return {"student": torch.optim.Adam(parts["student"].parameters(), lr=float(self.options.lr), foreach=True)}

    # ---- training ----------------------------------------------------------------------------------------------
    def loss(self, student: nn.Module, x_T: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Σ_m w_m d(x̂_m, x_m) / Σ_m w_m, averaged over the batch; x_T: (B, D), targets: (B, M, D)."""
        diff = student(x_T) - targets  # (B, M, D)
        d = diff.pow(2) if self.options.loss == "l2" else diff.abs()
        per_time = d.mean(dim=(0, 2))  # (M,)
        return (self.weights * per_time).sum() / self.weights.sum()

    def train_step(self, parts, optimizers, batch, generator) -> float:  # type: ignore[no-untyped-def]
        if self.x_T is None:
            raise ValueError("training a DSNO student needs its teacher trajectories (--inputs trajectories=NPZ)")
        idx = torch.randint(0, len(self.x_T), (self.options.batch_size,), generator=generator,
                            device=self.x_T.device)
        student, optimizer = parts["student"], optimizers["student"]
        loss = self.loss(student, self.x_T[idx], self.targets[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.options.grad_clip:
            nn.utils.clip_grad_norm_(student.parameters(), float(self.options.grad_clip), foreach=True)
        optimizer.step()
        return float(loss.detach())

    @torch.no_grad()
    def validate(self, parts: dict[str, nn.Module]) -> dict[str, float]:
        """The loss on the first ``n_val`` held-out trajectories, and the RMS error of the last state (the
        sample) against the teacher's end point."""
        if self.val_x is None:
            return {}
        student = parts["student"]
        was = student.training
        student.eval()
        loss = float(self.loss(student, self.val_x, self.val_targets))
        end = student(self.val_x)[:, -1]
        rms = float((end - self.val_targets[:, -1]).pow(2).mean(dim=1).sqrt().mean())
        student.train(was)
        return {"val_loss": loss, "val_end_rms": rms}

    def summary(self, parts: dict[str, nn.Module]) -> dict[str, Any]:
        student = parts["student"]
        temporal = sum(p.numel() for n, p in student.named_parameters() if ".temporal." in n)  # W's re and im
        return {"optimizer": "adam", "teacher": self.options.teacher, "M": self.options.M,
                "temporal": self.options.temporal, "output_times": [float(t) for t in self.times],
                "n_params_backbone": count_parameters(student) - temporal, "n_params_temporal": temporal,
                "eps_rel_error": None}

    def sampling_object(self, parts: dict[str, nn.Module], protocol: str) -> OneStep:
        return OneStep(parts["student"])
