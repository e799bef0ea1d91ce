"""ALS sweeps and Riemannian gradient iterations as training steps of a regression method (tensor-train models).

The solver fits the method's regression triplets (x_t, t, target) on a fixed sample of ``n_fit`` rows of the
training data, drawn once from the loop's generator (so a resumed run draws the same sample):

- ``als``: one step is one sweep of alternating least squares (:mod:`ttdm.tt.als`), by ``teneva.als_func``
  (``engine: teneva``; the default on the CPU for the per_output layout) or the batched torch ALS;
- ``rgd``: one step is one Riemannian gradient iteration on the fixed-rank manifold (:mod:`ttdm.tt.riemannian`),
  full batch or ``fit_batch`` rows drawn per iteration, with Armijo backtracking from min(2α, step_size) or a
  fixed step.  The step size α is the solver's state, checkpointed with the run.

The logged loss is the exact mean squared error of the TT on the whole fitting sample after the step.
"""

from __future__ import annotations

from typing import Any

import torch

from ttdm.tt import als, riemannian


class Solver:
    """The least-squares fit of ``model`` (a :class:`ttdm.models.tt.TTNoise`) to ``method``'s triplets."""

    def __init__(self, model: Any, method: Any, generator: torch.Generator, device: str) -> None:
        opts = method.options
        self.model, self.opts, self.optimizer = model, opts, opts.optimizer
        engine = opts.engine
        if engine == "auto":
            engine = "teneva" if (model.cfg.layout == "per_output" and device == "cpu") else "torch"
        if engine == "teneva" and model.cfg.layout != "per_output":
            raise ValueError("ALS engine 'teneva' fits one TT per output (layout per_output); use engine 'torch'")
        self.engine = engine
        data = method.ctx.data
        idx = torch.randint(0, data.shape[0], (int(opts.n_fit),), generator=generator, device=data.device)
        x_t, t, target = method.triplets(data[idx], generator)
        self.feats, self.y = model.regression(x_t, t, target)
        self.points = torch.cat([model.scaled(x_t).clamp(-1, 1), (2 * t[:, None] - 1).to(model.lo.dtype)], dim=1)
        self.bases = [lambda v: model.basis(v, model.n_x)] * model.dim + [lambda v: model.time_basis(v, model.n_t)]
        self.alpha = float(opts.step_size)
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
            trial = min(2 * self.alpha, float(opts.step_size)) if opts.line_search else self.alpha
            cores, self.alpha, _ = riemannian.descent(cores, feats, y, model.ranks, trial,
                                                      line_search=bool(opts.line_search))
        loss = float(riemannian.mse(cores, self.feats, self.y))
        model.set_cores(cores)
        return loss

    def state_dict(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "engine": self.engine}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.alpha = float(state["alpha"])
