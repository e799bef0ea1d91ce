"""Variational diffusion models (Kingma et al. 2021): continuous time, a learned noise schedule, the VLB as the loss.

With γ(t) = log(σ_t²/α_t²) increasing on [0, 1] (``schedule: learned``, the monotone network
:class:`ttdm.schedules.LearnedGamma` initialised linear from ``gamma_min`` to ``gamma_max``; ``fixed``: that line,
:class:`ttdm.schedules.LinearGamma`), z_t = α_t x + σ_t ε, α_t² = sigmoid(−γ_t), σ_t² = sigmoid(γ_t), the negative
VLB of a row x (D coordinates), in nats, is

    L(x) = KL(q(z_1 | x) ‖ N(0, I))                      prior:     ½ Σ_d (σ_1² + α_1² x_d² − log σ_1² − 1)
         + E_{ε} [−log p(x | z_0)]                       decoder
         + ½ E_{t ~ U(0,1), ε} [γ'(t) ‖ε − ε̂_θ(z_t, t)‖²]  diffusion (the continuous-time limit, eq. 17)

The decoder is VDM's discrete one on data with grey levels (digits: p(x_d = v_k | z_0) ∝ exp(−(z_0d − α_0 v_k)²/
2σ_0²) over the 17 levels, so the bound is on a probability: true bits/dim), else the Gaussian N(z_0/α_0, σ_0²/α_0²)
whose expectation is ½ D (log 2π + γ_0 + 1) (a bound on the density, comparable with the probability-flow NLL).
γ'(t) is exact (autograd through γ).  Each batch draws antithetic times t_b = (u + b/B) mod 1 (``antithetic``),
which lowers the variance of the diffusion term.

Training: the denoiser (any registered model; ``fourier`` on mlp/resnet gives VDM's input Fourier features)
minimises the mean of L/D; the learned schedule minimises the mean of (L/D)², i.e. the variance of the estimator plus
its squared mean (VDM's variance reduction: in continuous time only γ's end points change the VLB itself).
Sampling: the schedule is read on the grid t_i = (i + 1)/T of the config's T and handed to the generic samplers as
a discrete schedule (:meth:`ttdm.schedules.NoiseSchedule.from_gamma`), so ancestral DDPM with any number of steps
is VDM's ancestral sampler on that grid, and DDIM/DPM-Solver++ apply unchanged.  :meth:`VDM.elbo` gives the bound
of test rows for the likelihood stage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ttdm.analysis.elbo import decoder_levels, softmax_decoder_nll
from ttdm.io import spec_hash
from ttdm.methods import METHODS
from ttdm.methods.base import VAL_FRACTION, Context, Method
from ttdm.models import MODELS
from ttdm.options import option
from ttdm.samplers import Denoiser
from ttdm.schedules import LearnedGamma, LinearGamma, NoiseSchedule


@dataclass(frozen=True)
class VDMOptions:
    batch_size: int = option(256, "rows per gradient step", min=1)
    lr: float = option(1e-3, "learning rate of the denoiser (Adam)", gt=0)
    schedule_lr: float = option(1e-3, "learning rate of the learned schedule (Adam)", gt=0)
    grad_clip: float = option(1.0, "max global gradient norm of the denoiser (0: no clipping)", min=0)
    schedule: str = option("learned", "learned: the monotone network γ_η; fixed: γ linear in t (the ablation)",
                           choices=("learned", "fixed"))
    gamma_min: float = option(-13.3, "γ at t = 0 (initial value when learned)")
    gamma_max: float = option(5.0, "γ at t = 1 (initial value when learned)")
    gamma_hidden: int = option(1024, "width of the learned schedule's hidden layer", min=1)
    antithetic: bool = option(True, "antithetic times t_b = (u + b/B) mod 1 in each batch")
    n_val: int = option(2048, "validation rows x time draws (the same for every run of a dataset)", min=1)
    val_fraction: float = option(VAL_FRACTION, "fraction of train.npy held out as validation rows", gt=0, lt=1)


@METHODS.register("vdm")
class VDM(Method):
    """Continuous-time VLB training of ε̂_θ(z_t, t) with a fixed or learned γ; see the module docstring."""

    Options: ClassVar[type] = VDMOptions

    def __init__(self, options: VDMOptions, ctx: Context) -> None:
        super().__init__(options, ctx)
        self.T = int(ctx.spec["schedule"]["T"])
        self.levels = decoder_levels(ctx.meta)
        self._val: tuple[torch.Tensor, ...] | None = None

    # ---- parts -----------------------------------------------------------------------------------------------
    def build(self) -> dict[str, nn.Module]:
        spec = self.ctx.spec
        model = MODELS.get(spec["arch"])(self.ctx.dim, self.ctx.image_shape, **spec["model_cfg"])
        if getattr(model, "prior", "none") != "none":
            raise ValueError(f"model {spec['model']!r}: VDM learns its own schedule, so the Gaussian head start "
                             "σ_t x (prior: gaussian) of a discrete schedule does not apply; set prior: none")
        o = self.options
        gamma = (LearnedGamma(o.gamma_min, o.gamma_max, o.gamma_hidden) if o.schedule == "learned"
                 else LinearGamma(o.gamma_min, o.gamma_max))
        return {"denoiser": model.to(self.ctx.device), "gamma": gamma.to(self.ctx.device)}

    def ema_parts(self) -> tuple[str, ...]:
        return ("denoiser",)

    def optimizers(self, parts: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        opts = {"denoiser": torch.optim.Adam(parts["denoiser"].parameters(), lr=self.options.lr, foreach=True)}
        if list(parts["gamma"].parameters()):
            opts["gamma"] = torch.optim.Adam(parts["gamma"].parameters(), lr=self.options.schedule_lr, foreach=True)
        return opts

    # ---- the bound ---------------------------------------------------------------------------------------------
    def times(self, n: int, generator: torch.Generator, device: Any) -> torch.Tensor:
        """(n,) times in [0, 1): antithetic (u + b/n) mod 1, or i.i.d. uniform."""
        u = torch.rand(1 if self.options.antithetic else n, generator=generator, device=device, dtype=torch.float64)
        if self.options.antithetic:
            return (u + torch.arange(n, device=device, dtype=torch.float64) / n) % 1.0
        return u

    def terms(self, parts: dict[str, nn.Module], x: torch.Tensor, t: torch.Tensor, eps: torch.Tensor,
              eps0: torch.Tensor, *, create_graph: bool, levels: int | None) -> dict[str, torch.Tensor]:
        """Per-row terms of L (nats): prior, decoder, diffusion.  x, eps, eps0: (B, D); t: (B,) float64;
        levels: the discrete decoder's grey levels (None: the Gaussian decoder)."""
        model, schedule = parts["denoiser"], parts["gamma"]
        dim = x.shape[1]
        x64 = x.to(torch.float64)
        t = t.detach().requires_grad_(True)
        with torch.enable_grad():
            g = schedule.gamma(t).to(torch.float64)  # (B,)
            (dg,) = torch.autograd.grad(g.sum(), t, create_graph=create_graph)
        ends = schedule.gamma(torch.tensor([0.0, 1.0], dtype=torch.float64, device=x.device)).to(torch.float64)
        var1 = torch.sigmoid(ends[1])
        prior = 0.5 * (var1 + (1 - var1) * x64**2 - torch.log(var1) - 1).sum(1)
        a0, s0 = torch.sigmoid(-ends[0]).sqrt(), torch.sigmoid(ends[0]).sqrt()
        if levels:
            decoder = softmax_decoder_nll(x64, a0 * x64 + s0 * eps0.to(torch.float64), a0, s0, levels)
        else:  # E[−log N(x; z_0/α_0, σ_0²/α_0²)] in closed form
            decoder = (0.5 * dim * (math.log(2 * math.pi) + ends[0] + 1)).expand(len(x))
        alpha, sigma = torch.sigmoid(-g).sqrt()[:, None], torch.sigmoid(g).sqrt()[:, None]
        dtype = next((p.dtype for p in model.parameters()), x.dtype)  # the network's own precision
        z = (alpha * x64 + sigma * eps.to(torch.float64)).to(dtype)
        eps_hat = model(z, t.detach().to(dtype)).to(torch.float64)
        diffusion = 0.5 * dg * ((eps.to(torch.float64) - eps_hat) ** 2).sum(1)
        return {"prior": prior, "decoder": decoder, "diffusion": diffusion}

    def train_step(self, parts, optimizers, batch, generator) -> float:  # type: ignore[no-untyped-def]
        dim = batch.shape[1]
        t = self.times(len(batch), generator, batch.device)
        eps = torch.randn(batch.shape, generator=generator, device=batch.device, dtype=batch.dtype)
        eps0 = torch.randn(batch.shape, generator=generator, device=batch.device, dtype=batch.dtype)
        terms = self.terms(parts, batch, t, eps, eps0, create_graph="gamma" in optimizers, levels=self.levels)
        per_row = (terms["prior"] + terms["decoder"] + terms["diffusion"]) / dim  # (B,) nats/dim
        loss = per_row.mean()
        for opt in optimizers.values():
            opt.zero_grad(set_to_none=True)
        den = list(parts["denoiser"].parameters())
        den_grads = torch.autograd.grad(loss, den, retain_graph="gamma" in optimizers)
        if "gamma" in optimizers:  # both gradients before either part moves
            gam = list(parts["gamma"].parameters())
            for p, g in zip(gam, torch.autograd.grad((per_row**2).mean(), gam, allow_unused=True)):
                p.grad = g
        for p, g in zip(den, den_grads):
            p.grad = g
        if self.options.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(den, self.options.grad_clip, foreach=True)
        for opt in optimizers.values():
            opt.step()
        return float(loss.detach())

    def _validation(self) -> tuple[torch.Tensor, ...]:
        """Fixed (x, t, ε, ε_0) of the held-out rows: ``n_val`` draws, the same for every run of a dataset."""
        if self._val is None:
            data = self.ctx.val_data
            gen = torch.Generator(device=data.device).manual_seed(
                int(spec_hash(["vdm-validation", self.ctx.spec["dataset"]], 15), 16))
            idx = torch.randint(0, len(data), (self.options.n_val,), generator=gen, device=data.device)
            x = data[idx]
            t = torch.rand(len(x), generator=gen, device=data.device, dtype=torch.float64)
            eps, eps0 = (torch.randn(x.shape, generator=gen, device=data.device, dtype=x.dtype) for _ in range(2))
            self._val = (x, t, eps, eps0)
        return self._val

    def validate(self, parts: dict[str, nn.Module]) -> dict[str, float]:
        """The VLB of the held-out rows in nats/dim (val_loss) and bits/dim (val_bpd), on the sampling weights."""
        x, t, eps, eps0 = self._validation()
        model = parts["denoiser"]
        was_training = model.training
        model.eval()
        with torch.no_grad():
            terms = self.terms(parts, x, t, eps, eps0, create_graph=False, levels=self.levels)
        model.train(was_training)
        nats = float(sum(terms.values()).mean()) / x.shape[1]
        return {"val_loss": nats, "val_bpd": nats / math.log(2)}

    def summary(self, parts: dict[str, nn.Module]) -> dict[str, Any]:
        ends = parts["gamma"].gamma(torch.tensor([0.0, 1.0], dtype=torch.float64)).detach()
        return {"gamma_0": float(ends[0]), "gamma_1": float(ends[1]), "schedule": self.options.schedule}

    # ---- likelihood and sampling -------------------------------------------------------------------------------
    @torch.no_grad()
    def elbo(self, parts: dict[str, nn.Module], x0: torch.Tensor, generator: torch.Generator, *,
             levels: int | None = None, draws: int = 4) -> dict[str, torch.Tensor]:
        """The bound L of every row of x0: (N, D), in nats per row (the diffusion term averaged over ``draws``
        antithetic time draws), with the discrete decoder over ``levels`` grey levels (None: Gaussian):
        {"elbo", "prior", "decoder", "diffusion"}."""
        parts["denoiser"].eval()
        total: dict[str, torch.Tensor] = {}
        for _ in range(draws):  # drawn by ``generator`` on its own device, then moved to the rows'
            t = self.times(len(x0), generator, generator.device).to(x0.device)
            eps, eps0 = (torch.randn(x0.shape, generator=generator, device=generator.device, dtype=x0.dtype
                                     ).to(x0.device) for _ in range(2))
            for k, v in self.terms(parts, x0, t, eps, eps0, create_graph=False, levels=levels).items():
                total[k] = total.get(k, 0) + v.detach() / draws
        total["elbo"] = total["prior"] + total["decoder"] + total["diffusion"]
        return total

    def sampling_object(self, parts: dict[str, nn.Module], protocol: str) -> Denoiser:
        with torch.no_grad():
            schedule = NoiseSchedule.from_gamma(parts["gamma"], self.T)
        return Denoiser(parts["denoiser"], schedule)
