"""ALS sweeps and Riemannian gradient iterations as training steps of a regression method (tensor-train models).

The solver fits the method's regression triplets (x_t, t, target) on a fixed sample of ``n_fit`` rows of the
training data, drawn once from the loop's generator (so a resumed run draws the same sample):

- ``als``: one step is one sweep of alternating least squares (:mod:`ttdm.tt.als`): the batched torch ALS
  (``engine: torch``, and ``auto`` everywhere), which keeps the orthogonal gauge so its ridge λ‖C‖² is exact, or
  ``teneva.als_func`` (``engine: teneva``, per_output layout only), which applies the ridge to non-orthogonal
  cores and can shrink whole cores to zero (λ = 0.1 empties every core in the first sweep);
- ``rgd``: one step is one Riemannian gradient iteration on the fixed-rank manifold (:mod:`ttdm.tt.riemannian`),
  full batch or ``fit_batch`` rows drawn per iteration, with Armijo backtracking from min(2α, step_size) down to
  the floor ``MIN_STEP`` · step_size (an iteration whose trials all fail keeps the iterate), or a fixed step.  The
  step size α is the solver's state, checkpointed with the run.

A TT that collapses (every core of an output zero after a step, so that output is identically zero) stops the run
with an error naming the run, the step and the outputs.  The logged loss is the exact mean squared error of the TT
on the whole fitting sample after the step.
"""

from __future__ import annotations

from typing import Any

import torch

from ttdm.tt import als, riemannian
from ttdm.tt.algebra import values

MIN_STEP = 1e-8  # the Armijo step never goes below this fraction of step_size (and grows back by doubling)


def resolve_engine(engine: str, layout: str = "per_output") -> str:
    """The ALS engine that ``engine`` (auto | torch | teneva) runs: ``auto`` is the batched torch ALS everywhere.

    torch is the default because it solves each core in the orthogonal gauge (the ridge is exactly λ‖C‖²) and is
    faster; ``teneva.als_func`` regularises non-orthogonal cores and collapses them to zero for a large λ.
    """
    engine = "torch" if engine == "auto" else engine
    if engine == "teneva" and layout != "per_output":
        raise ValueError("ALS engine 'teneva' fits one TT per output (layout per_output); use engine 'torch'")
    return engine


class CollapsedTTError(FloatingPointError):
    """A solver step left an output's tensor train identically zero."""


def zero_outputs(
    cores: list[torch.Tensor], layout: str = "per_output", fitted: torch.Tensor | None = None
) -> list[int]:
    """The outputs that a batched TT makes identically zero: per_output, the tensors C_p one of whose cores is
    exactly zero or whose values ``fitted`` (P, N) on the fitting sample are all zero; shared (P = 1, core 0 indexes
    the D outputs), the outputs j whose slice G_0[0, 0, j] is zero, or all of them when another core is zero."""
    if layout == "shared":
        dead = cores[0][0, 0].abs().amax(dim=1) == 0  # (D,)
        if any(bool((c.abs().amax() == 0)) for c in cores[1:]) or (fitted is not None and not fitted.any()):
            dead[:] = True
    else:
        dead = torch.zeros(cores[0].shape[0], dtype=torch.bool, device=cores[0].device)
        for core in cores:
            dead |= core.flatten(1).abs().amax(dim=1) == 0
        if fitted is not None:
            dead |= ~fitted.bool().any(dim=1)
    return [int(p) for p in torch.nonzero(dead).flatten()]


class Solver:
    """The least-squares fit of ``model`` (a :class:`ttdm.models.tt.TTNoise`) to ``method``'s triplets."""

    def __init__(self, model: Any, method: Any, generator: torch.Generator, device: str) -> None:
        opts = method.options
        self.model, self.opts, self.optimizer = model, opts, opts.optimizer
        self.engine = resolve_engine(opts.engine, model.cfg.layout)
        spec = method.ctx.spec
        self.run = f"{spec.get('dataset')}/{spec.get('model')}/{spec.get('seed')}"
        self.steps = 0  # steps taken (restored on resume), for the error messages
        data = method.ctx.data
        idx = torch.randint(0, data.shape[0], (int(opts.n_fit),), generator=generator, device=data.device)
        x_t, t, target = method.triplets(data[idx], generator)
        self.feats, self.y = model.regression(x_t, t, target)
        self.points = torch.cat([model.scaled(x_t).clamp(-1, 1), (2 * t[:, None] - 1).to(model.lo.dtype)], dim=1)
        self.bases = [lambda v: model.basis(v, model.n_x)] * model.dim + [lambda v: model.time_basis(v, model.n_t)]
        self.alpha = float(opts.step_size)
        self.min_alpha = MIN_STEP * float(opts.step_size)
        self.device = device

    def step(self, generator: torch.Generator) -> float:
        """One sweep or iteration; the model's cores are replaced; returns the fitting loss afterwards."""
        model, opts = self.model, self.opts
        cores = [c.detach() for c in model.cores]
        if self.optimizer == "als" and self.engine == "teneva":
            cores = als.sweep_teneva(cores, self.points, self.bases, self.y, float(opts.lam))
        elif self.optimizer == "als":
            cores = als.sweep(cores, self.feats, self.y, float(opts.lam))
        else:
            feats, y = self.feats, self.y
            if opts.fit_batch:  # stochastic RGD: a fresh mini-batch of rows of the fitting sample
                rows = torch.randint(0, y.shape[1], (int(opts.fit_batch),), generator=generator, device=self.device)
                feats, y = [f[rows] for f in feats], y[:, rows]
            if opts.line_search:
                trial = max(min(2 * self.alpha, float(opts.step_size)), self.min_alpha)
            else:
                trial = self.alpha
            cores, self.alpha, _ = riemannian.descent(cores, feats, y, model.ranks, trial,
                                                      line_search=bool(opts.line_search), min_alpha=self.min_alpha)
        self.steps += 1
        fitted = values(cores, self.feats)  # (P, N)
        self.check(cores, fitted)
        loss = float(((fitted - self.y) ** 2).mean())  # riemannian.mse
        model.set_cores(cores)
        return loss

    def check(self, cores: list[torch.Tensor], fitted: torch.Tensor | None = None) -> None:
        """Refuse a collapsed TT: an output that the TT makes identically zero is not a fit."""
        dead = zero_outputs(cores, self.model.cfg.layout, fitted)
        if not dead:
            return
        what = f"ALS, engine {self.engine}" if self.optimizer == "als" else "RGD"
        hint = "; lower lam or use engine 'torch'" if self.optimizer == "als" and self.engine == "teneva" else ""
        raise CollapsedTTError(
            f"run {self.run}: the tensor train collapsed at step {self.steps} ({what}): output(s) "
            f"{', '.join(map(str, dead))} of {self.model.dim} are identically zero"
            f"{hint}")

    def state_dict(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "engine": self.engine, "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.alpha = float(state["alpha"])
        self.steps = int(state.get("steps", 0))
