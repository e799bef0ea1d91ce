"""Noise-prediction methods: regress ε_θ(x_t, t) on a target (ε for DDPM, the exact ε* for the isolation fit).

A :class:`RegressionMethod` has one part, ``denoiser`` (any registered model), and trains it with

- a gradient optimizer (``optimizer: adam | sgd``): a batch of rows per step, loss = mean (target − ε_θ)², global
  gradient-norm clipping, EMA weights that sample;
- or a least-squares solver of tensor-train models (``optimizer: als | rgd``, :mod:`ttdm.methods.tt_solvers`): a
  fixed sample of ``n_fit`` triplets drawn once; one step is one ALS sweep or one Riemannian iteration, and the
  last iterate samples.

Both log ``val_loss``, the loss of the sampling weights on ``n_val`` triplets of the held-out validation rows
(``ctx.val_data``: ``val_fraction`` of train.npy, which no training batch or fitting sample draws), drawn once per
dataset (the same for every model and optimizer), and report ``eps_rel_error`` = ‖ε_θ − ε*‖/‖ε*‖ on them for
Gaussian mixtures.

Every model that declares ``prior`` (:class:`ttdm.models.embeddings.GaussianPrior`) receives the schedule's σ
table at :meth:`RegressionMethod.build`, so ``prior: gaussian`` adds σ_t x to its output (stored with its weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ttdm.io import spec_hash
from ttdm.methods.base import VAL_FRACTION, Context, Method
from ttdm.models.embeddings import GaussianPrior
from ttdm.options import option
from ttdm.samplers import Denoiser
from ttdm.schedules import NoiseSchedule, make_schedule

GRADIENT_OPTIMIZERS = ("adam", "sgd")
ELBO_STRATA = 100  # the DDPM ELBO's steps: one per row in each of 100 strata (10x fewer evaluations at T = 1000)
SOLVER_OPTIMIZERS = ("als", "rgd")


@dataclass(frozen=True)
class RegressionOptions:
    optimizer: str = option("adam", "adam | sgd (gradient steps, any model) | als | rgd (tensor-train solvers)",
                            choices=GRADIENT_OPTIMIZERS + SOLVER_OPTIMIZERS)
    batch_size: int = option(256, "rows per gradient step", min=1)
    lr: float = option(1e-3, "learning rate", gt=0)
    grad_clip: float = option(1.0, "max global gradient norm (0: no clipping)", min=0)
    n_val: int = option(2048, "validation triplets (the same for every run of a dataset)", min=1)
    val_fraction: float = option(VAL_FRACTION, "fraction of train.npy held out as validation rows, never trained on "
                                               "(the same rows for every run of a dataset)", gt=0, lt=1)
    n_fit: int = option(20000, "als/rgd: fixed sample of regression triplets", min=1)
    lam: float = option(1e-3, "als: ridge weight on the coefficient tensor's norm", min=0)
    step_size: float = option(1.0, "rgd: fixed step, or the largest Armijo trial", gt=0)
    line_search: bool = option(True, "rgd: Armijo backtracking (else a fixed step)")
    fit_batch: int = option(0, "rgd: rows per stochastic iteration (0: full batch)", min=0)
    engine: str = option("auto", "als: the batched torch ALS in the orthogonal gauge (auto) or teneva.als_func, whose "
                         "ridge acts on non-orthogonal cores", choices=("auto", "torch", "teneva"))
    t_sampling: str = option("uniform", "how the training steps i are drawn: uniform on {0..T-1} (the DDPM loss), or "
                                        "low: i = ⌊T u²⌋, u ~ U(0, 1), density ∝ 1/√i, more steps near the data "
                                        "(scripts/training_recipes.py); validation always draws them uniformly",
                             choices=("uniform", "low"))
    init: str | None = option(None, "warm start: the model name of a run (same dataset and seed) whose sampling "
                                    "weights initialise the denoiser", pattern=r"[A-Za-z0-9_-]+")


class RegressionMethod(Method):
    """Loss = mean over the batch and the D coordinates of (target − ε_θ(x_t, t))², with (x_t, t, target) drawn by
    :meth:`triplets`: i ~ U{0..T−1}, ε ~ N(0, I), x_t = α_i x_0 + σ_i ε, t = (i + 1)/T."""

    Options: ClassVar[type] = RegressionOptions

    def __init__(self, options: RegressionOptions, ctx: Context) -> None:
        super().__init__(options, ctx)
        self.schedule: NoiseSchedule = make_schedule(ctx.spec["schedule"])
        self.solver = None
        self._val = None

    @classmethod
    def needs(cls, options: RegressionOptions) -> dict[str, str]:
        return {"init": options.init} if options.init else {}

    @property
    def uses_solver(self) -> bool:
        return self.options.optimizer in SOLVER_OPTIMIZERS

    @property
    def batch_size(self) -> int | None:
        return None if self.uses_solver else self.options.batch_size

    @property
    def rng_stream(self) -> str:  # type: ignore[override]
        return "fit" if self.uses_solver else "batches"

    @property
    def window_mean(self) -> bool:  # type: ignore[override]
        return not self.uses_solver  # a solver's loss is the exact objective on its fixed sample

    # ---- the regression target -------------------------------------------------------------------------------
    def target(self, x0: torch.Tensor, x_t: torch.Tensor, i: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def triplets(
        self, x0: torch.Tensor, generator: torch.Generator, *, t_sampling: str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x_t (B, D), t (B,), target (B, D)) for a batch x0: (B, D); ``generator`` lives on x0's device.

        The steps i follow ``t_sampling`` (default: the method's option): "uniform" on {0..T−1}, or "low",
        i = min(⌊T u²⌋, T − 1) with u ~ U(0, 1), which puts more steps near the data (density ∝ 1/√i)."""
        schedule = self.schedule
        if (t_sampling or self.options.t_sampling) == "low":
            u = torch.rand(x0.shape[0], generator=generator, device=x0.device, dtype=torch.float64)
            i = (schedule.T * u**2).long().clamp(max=schedule.T - 1)  # (B,)
        else:
            i = torch.randint(0, schedule.T, (x0.shape[0],), generator=generator, device=x0.device)  # (B,)
        eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)  # (B, D)
        i_cpu = i.cpu()  # the schedule's tables live on the CPU and are indexed there
        x_t = schedule.q_sample(x0, i_cpu, eps)  # (B, D)
        t = schedule.time(i_cpu).to(device=x0.device, dtype=x0.dtype)
        return x_t, t, self.target(x0, x_t, i_cpu, eps)

    def loss(self, model: nn.Module, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x_t, t, target = self.triplets(x0, generator)
        return ((target - model(x_t, t)) ** 2).mean()

    # ---- training --------------------------------------------------------------------------------------------
    def build(self) -> dict[str, nn.Module]:
        from ttdm.runs import build_model

        spec, ctx = self.ctx.spec, self.ctx
        # the model lives where the sampler's noise does: the data's D, or a latent method's L (no image shape)
        model = build_model(spec, self.noise_dim, ctx.image_shape if self.noise_dim == ctx.dim else None)
        alpha, sigma = self.schedule.alpha_sigma(torch.arange(self.schedule.T))
        if isinstance(model, GaussianPrior):  # the σ table of ``prior: gaussian`` (a loaded run's is its stored one)
            model.set_sigmas(sigma)
        if hasattr(model, "fit_domain") and ctx.data is not None:  # a fixed input domain (tensor trains)
            model.fit_domain(ctx.data.cpu(), alpha, sigma)
        if self.options.init and "init" in ctx.needs:  # training; a finished run loads its own weights
            source = ctx.needs["init"].parts["denoiser"]
            model.load_state_dict(source.state_dict())
        if self.uses_solver and not hasattr(model, "regression"):
            raise ValueError(f"optimizer {self.options.optimizer!r} fits tensor-train models only (arch 'tt'); "
                             f"{spec['arch']!r} trains with adam")
        return {"denoiser": model.to(ctx.device)}

    def ema_parts(self) -> tuple[str, ...]:
        return () if self.uses_solver else ("denoiser",)

    def optimizers(self, parts: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        if self.uses_solver:
            return {}
        opt_class = torch.optim.SGD if self.options.optimizer == "sgd" else torch.optim.Adam
        # foreach: one kernel per step for all tensors (torch picks it on CUDA only by default; 3x faster here)
        return {"denoiser": opt_class(parts["denoiser"].parameters(), lr=float(self.options.lr), foreach=True)}

    def setup(self, parts: dict[str, nn.Module], generator: torch.Generator) -> None:
        if self.uses_solver:
            from ttdm.methods.tt_solvers import Solver

            self.solver = Solver(parts["denoiser"], self, generator, self.ctx.device)

    def train_step(self, parts, optimizers, batch, generator) -> float:  # type: ignore[no-untyped-def]
        if self.solver is not None:
            return self.solver.step(generator)
        model, optimizer = parts["denoiser"], optimizers["denoiser"]
        loss = self.loss(model, batch, generator)
        value = loss.item()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.options.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), float(self.options.grad_clip), foreach=True)
        optimizer.step()
        return value

    def state_dict(self) -> dict[str, Any]:
        return self.solver.state_dict() if self.solver is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.solver is not None:
            self.solver.load_state_dict(state)

    # ---- validation ------------------------------------------------------------------------------------------
    def validation_triplets(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """n_val triplets on the held-out validation rows, drawn once per dataset (independent of the run's seed)."""
        if self._val is None:
            data = self.ctx.val_data
            if data is None:
                raise ValueError("validation needs the held-out rows ctx.val_data (the training loop sets them)")
            gen = torch.Generator(device=data.device).manual_seed(
                int(spec_hash(["validation", self.ctx.spec["dataset"]], 15), 16))
            idx = torch.randint(0, data.shape[0], (int(self.options.n_val),), generator=gen, device=data.device)
            self._val = self.triplets(data[idx], gen, t_sampling="uniform")  # the DDPM loss, whatever trains
        return self._val

    @torch.no_grad()
    def validate(self, parts: dict[str, nn.Module]) -> dict[str, float]:
        x_t, t, target = self.validation_triplets()
        model = parts["denoiser"]
        was_training = model.training
        model.eval()
        loss = float(((target - model(x_t, t)) ** 2).mean())
        model.train(was_training)
        return {"val_loss": loss}

    @torch.no_grad()
    def summary(self, parts: dict[str, nn.Module]) -> dict[str, Any]:
        """optimizer, and ‖ε_θ − ε*‖/‖ε*‖ at the validation points when the data is a Gaussian mixture."""
        record: dict[str, Any] = {"optimizer": self.options.optimizer, "eps_rel_error": None}
        if self.ctx.meta.get("mixture"):
            from ttdm.data.mixture import GaussianMixture

            x_t, t, _ = self.validation_triplets()
            eps_star = GaussianMixture.from_dict(self.ctx.meta["mixture"]).eps_model(self.schedule)(x_t, t)
            model = parts["denoiser"].eval()
            record["eps_rel_error"] = float(torch.linalg.norm(model(x_t, t) - eps_star) / torch.linalg.norm(eps_star))
        return record

    def elbo(self, parts: dict[str, nn.Module], x0: torch.Tensor, generator: torch.Generator, *,
             levels: int | None = None, strata: int | None = ELBO_STRATA) -> dict[str, torch.Tensor]:
        """The DDPM's discrete-time ELBO of ε_θ (:func:`ttdm.analysis.elbo.ddpm_elbo`), its steps sampled in
        ``strata`` strata."""
        from ttdm.analysis.elbo import ddpm_elbo

        model = parts["denoiser"].eval()
        dtype = next((p.dtype for p in model.parameters()), torch.float32)
        return ddpm_elbo(model, self.schedule, x0, generator, levels=levels, model_dtype=dtype, strata=strata)

    # ---- sampling --------------------------------------------------------------------------------------------
    def sampling_object(self, parts: dict[str, nn.Module], protocol: str) -> Denoiser:
        return Denoiser(parts["denoiser"], self.schedule)
