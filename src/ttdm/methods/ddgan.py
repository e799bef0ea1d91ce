"""Denoising diffusion GANs (Xiao et al. 2022): a few large denoising steps, each a conditional GAN.

The run's own chain has ``n_steps`` = T levels k = 0..T (k = 0 the data) of a VP diffusion on τ ∈ [t_min, 1]:

    ᾱ_k = exp(−β_min τ_k − ½ (β_max − β_min) τ_k²),  τ_k = t_min + (1 − t_min) k/T  (k ≥ 1),  ᾱ_0 = 1,
    α_k = ᾱ_k/ᾱ_{k−1},  β_k = 1 − α_k,

so with T = 4 each step removes a quarter of the noise, far more than a Gaussian reverse step can model.  The
generator G(x_k, z, k/T) predicts x̂_0, and x_{k−1} is drawn from the forward posterior q(x_{k−1} | x_k, x̂_0):

    mean = √ᾱ_{k−1} β_k/(1 − ᾱ_k) x̂_0 + √α_k (1 − ᾱ_{k−1})/(1 − ᾱ_k) x_k,  var = β_k (1 − ᾱ_{k−1})/(1 − ᾱ_k)

(var = 0 at k = 1: the last step returns x̂_0).  The discriminator D(x_{k−1}, x_k, k/T) tells real pairs
(x_{k−1} ~ q(x_{k−1} | x_0), x_k ~ q(x_k | x_{k−1})) from generated ones; k ~ U{1..T}.  Losses: non-saturating,
softplus(−D(real)) + softplus(D(fake)) and softplus(−D(fake)); a lazy R1 penalty (γ/2) E‖∇_{x_{k−1}} D(real)‖²
every ``lazy_reg`` steps (scaled by ``lazy_reg``); Adam with β = (0.5, 0.9); EMA of the generator, which samples.

Sampling (sampler kind ``ddgan``, protocol "ddgan"): x_T ~ N(0, I), then T generator steps: NFE = T; the setting's
steps must equal the run's T.  The networks are :mod:`ttdm.models.gan_nets`: MLPs sized by the grid model's
``hidden``/``depth`` (arch mlp) or convolutions of ``channels`` (arch unet) for images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ttdm.io import spec_hash
from ttdm.methods import METHODS
from ttdm.methods.base import VAL_FRACTION, Context, Method
from ttdm.models.gan_nets import ConvDiscriminator, ConvGenerator, MLPDiscriminator, MLPGenerator
from ttdm.options import option

PROTOCOL = "ddgan"


@dataclass(frozen=True)
class DDGANOptions:
    n_steps: int = option(4, "T: the generator steps of the run's own chain (its NFE)", choices=(1, 2, 4, 8))
    beta_min: float = option(0.1, "β_min of the VP diffusion on [t_min, 1]", gt=0)
    beta_max: float = option(20.0, "β_max of the VP diffusion on [t_min, 1]", gt=0)
    t_min: float = option(1e-3, "the smallest diffusion time", gt=0, lt=1)
    nz: int = option(16, "size of the generator's latent z", min=1)
    batch_size: int = option(256, "rows per step", min=1)
    lr_g: float = option(2e-4, "generator learning rate (Adam, β = (0.5, 0.9))", gt=0)
    lr_d: float = option(2e-4, "discriminator learning rate (Adam, β = (0.5, 0.9))", gt=0)
    r1_gamma: float = option(0.05, "weight γ of the R1 penalty (γ/2) ‖∇D(real)‖²", min=0)
    lazy_reg: int = option(1, "apply R1 every this many steps (scaled up by it)", min=1)
    n_val: int = option(1024, "validation rows and generated samples of the sliced-W1 validation", min=2)
    val_fraction: float = option(VAL_FRACTION, "fraction of train.npy held out as validation rows", gt=0, lt=1)


class PosteriorChain:
    """What the ``ddgan`` sampler runs: the generator and the chain's ᾱ_0..ᾱ_T.  ``step(x_k, k, z, noise)``."""

    def __init__(self, generator: nn.Module, abar: torch.Tensor, nz: int) -> None:
        self.generator, self.abar, self.nz = generator, abar, nz

    @property
    def T(self) -> int:
        return len(self.abar) - 1

    def posterior(self, x0: torch.Tensor, x_k: torch.Tensor, k: torch.Tensor,
                  noise: torch.Tensor) -> torch.Tensor:
        """A draw of q(x_{k−1} | x_k, x0); k: (B,) long in 1..T; noise (B, D)."""
        a_k, a_prev = self.abar[k][:, None], self.abar[k - 1][:, None]
        beta = 1 - a_k / a_prev
        mean = (a_prev.sqrt() * beta / (1 - a_k)) * x0 + ((1 - beta).sqrt() * (1 - a_prev) / (1 - a_k)) * x_k
        var = beta * (1 - a_prev) / (1 - a_k)
        return (mean + var.sqrt() * noise).to(x_k.dtype)

    def __call__(self, x_k: torch.Tensor, k: int, generator: torch.Generator | None) -> torch.Tensor:
        """One step from level k to k − 1 for a batch x_k: (B, D)."""
        b = len(x_k)
        kk = torch.full((b,), k, dtype=torch.long, device=x_k.device)
        z = torch.randn(b, self.nz, generator=generator, device=x_k.device, dtype=x_k.dtype)
        x0 = self.generator(x_k, z, kk.to(x_k.dtype) / self.T)
        noise = torch.randn(x_k.shape, generator=generator, device=x_k.device, dtype=x_k.dtype)
        return self.posterior(x0, x_k, kk, noise)


def chain_abar(options: DDGANOptions, device: Any = "cpu") -> torch.Tensor:
    """ᾱ_0..ᾱ_T of the run's chain (float32, ᾱ_0 = 1): see the module docstring."""
    k = torch.arange(1, options.n_steps + 1, dtype=torch.float64)
    tau = options.t_min + (1 - options.t_min) * k / options.n_steps
    abar = torch.exp(-options.beta_min * tau - 0.5 * (options.beta_max - options.beta_min) * tau**2)
    return torch.cat([torch.ones(1, dtype=torch.float64), abar]).float().to(device)


@METHODS.register("ddgan")
class DDGAN(Method):
    """Denoising diffusion GAN; see the module docstring."""

    Options: ClassVar[type] = DDGANOptions
    provides: ClassVar[tuple[str, ...]] = (PROTOCOL,)
    archs: ClassVar[tuple[str, ...] | None] = ("mlp", "resnet", "unet")

    def __init__(self, options: DDGANOptions, ctx: Context) -> None:
        super().__init__(options, ctx)
        self.abar = chain_abar(options, ctx.device)
        self._step = 0  # training steps taken: when the lazy R1 applies (checkpointed as the method's state)

    @classmethod
    def sampler_error(cls, options: Any, protocol: str, steps: int, spec: dict[str, Any]) -> str | None:
        if protocol != PROTOCOL:
            return f"method provides {PROTOCOL!r} (its own posterior chain), not {protocol!r}"
        if steps != options.n_steps:
            return f"the run's chain has n_steps = {options.n_steps} generator steps, not {steps}"
        return None

    # ---- parts -----------------------------------------------------------------------------------------------
    def build(self) -> dict[str, nn.Module]:
        cfg, o = self.ctx.spec["model_cfg"], self.options
        if self.ctx.image_shape is not None:
            channels = int(cfg.get("channels", 32))
            parts = {"generator": ConvGenerator(self.ctx.image_shape, o.nz, channels),
                     "discriminator": ConvDiscriminator(self.ctx.image_shape, channels)}
        else:
            size = {"hidden": int(cfg.get("hidden", 256)), "depth": int(cfg.get("depth", cfg.get("blocks", 3))),
                    "fourier": int(cfg.get("fourier", 0)), "fourier_max": float(cfg.get("fourier_max", 16.0))}
            parts = {"generator": MLPGenerator(self.ctx.dim, o.nz, **size),
                     "discriminator": MLPDiscriminator(self.ctx.dim, **size)}
        return {k: v.to(self.ctx.device) for k, v in parts.items()}

    def ema_parts(self) -> tuple[str, ...]:
        return ("generator",)

    def optimizers(self, parts: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        o = self.options
        return {"generator": torch.optim.Adam(parts["generator"].parameters(), lr=o.lr_g, betas=(0.5, 0.9),
                                              foreach=True),
                "discriminator": torch.optim.Adam(parts["discriminator"].parameters(), lr=o.lr_d, betas=(0.5, 0.9),
                                                  foreach=True)}

    # ---- training ----------------------------------------------------------------------------------------------
    def pairs(self, x0: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        """(k (B,), x_{k−1}, x_k) of real pairs: x_{k−1} ~ q(x_{k−1} | x_0), x_k ~ q(x_k | x_{k−1})."""
        b = len(x0)
        k = torch.randint(1, self.options.n_steps + 1, (b,), generator=generator, device=x0.device)
        a_prev, a_k = self.abar[k - 1][:, None], self.abar[k][:, None]
        e1, e2 = (torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype) for _ in range(2))
        x_prev = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * e1
        alpha = a_k / a_prev
        x_k = alpha.sqrt() * x_prev + (1 - alpha).sqrt() * e2
        return k, x_prev, x_k

    def train_step(self, parts, optimizers, batch, generator) -> float:  # type: ignore[no-untyped-def]
        g, d = parts["generator"], parts["discriminator"]
        chain = PosteriorChain(g, self.abar, self.options.nz)
        k, x_prev, x_k = self.pairs(batch, generator)
        t = k.to(batch.dtype) / self.options.n_steps
        z = torch.randn(len(batch), self.options.nz, generator=generator, device=batch.device, dtype=batch.dtype)
        noise = torch.randn(batch.shape, generator=generator, device=batch.device, dtype=batch.dtype)
        # discriminator: real pairs up, generated pairs down, lazy R1 on the real x_{k−1}
        lazy = self.options.r1_gamma > 0 and self._step % self.options.lazy_reg == 0
        x_prev = x_prev.detach().requires_grad_(lazy)
        real = d(x_prev, x_k, t)
        with torch.no_grad():
            fake_prev = chain.posterior(g(x_k, z, t), x_k, k, noise)
        loss_d = F.softplus(-real).mean() + F.softplus(d(fake_prev, x_k, t)).mean()
        if lazy:
            (grad,) = torch.autograd.grad(real.sum(), x_prev, create_graph=True)
            loss_d = loss_d + 0.5 * self.options.r1_gamma * self.options.lazy_reg * grad.pow(2).sum(1).mean()
        optimizers["discriminator"].zero_grad(set_to_none=True)
        loss_d.backward()
        optimizers["discriminator"].step()
        # generator: its posterior draws should pass as real
        loss_g = F.softplus(-d(chain.posterior(g(x_k, z, t), x_k, k, noise), x_k, t)).mean()
        optimizers["generator"].zero_grad(set_to_none=True)
        loss_g.backward()
        optimizers["generator"].step()
        self._step += 1
        return float(loss_d.detach() + loss_g.detach())

    def state_dict(self) -> dict[str, Any]:
        return {"step": self._step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._step = int(state.get("step", 0))

    # ---- validation and sampling ---------------------------------------------------------------------------------
    def validate(self, parts: dict[str, nn.Module]) -> dict[str, float]:
        """Sliced W1 (64 fixed directions) between ``n_val`` fixed-noise samples and as many validation rows."""
        val = self.ctx.val_data
        gen = torch.Generator(device=val.device).manual_seed(int(spec_hash(["ddgan-validation",
                                                                            self.ctx.spec["dataset"]], 15), 16))
        n = min(self.options.n_val, len(val))
        rows = val[torch.randperm(len(val), generator=gen, device=val.device)[:n]]
        dirs = torch.randn(val.shape[1], 64, generator=gen, device=val.device, dtype=val.dtype)
        dirs = dirs / dirs.norm(dim=0, keepdim=True)
        noise = torch.randn(rows.shape, generator=gen, device=val.device, dtype=val.dtype)
        was = parts["generator"].training
        parts["generator"].eval()
        from ttdm.samplers.ddgan import sample_ddgan  # the chain the sample stage runs

        x = sample_ddgan(self.sampling_object(parts, PROTOCOL), noise, self.options.n_steps, generator=gen)
        parts["generator"].train(was)
        a, b = (rows @ dirs).sort(0).values, (x @ dirs).sort(0).values
        swd = float((a - b).abs().mean()) if torch.isfinite(b).all() else math.inf
        return {"val_loss": swd}

    def sampling_object(self, parts: dict[str, nn.Module], protocol: str) -> PosteriorChain:
        return PosteriorChain(parts["generator"], self.abar, self.options.nz)
