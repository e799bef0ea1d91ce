"""The autoencoder of latent diffusion (Rombach et al. 2022), trained first as its own run.

Loss per row: ‖x − D(z)‖²/D + ``kl_weight`` · KL(q(z | x) ‖ N(0, I))/D, z = μ(x) + σ(x) ε (a VAE with a tiny KL
weight, LDM's "KL-reg", which keeps the latents' scale bounded without blurring the reconstructions).  The run
samples nothing itself (``provides`` is empty): a ``latent_ddpm`` run ``needs`` it, encodes its rows with μ(x) and
decodes its samples.  Validation: the reconstruction MSE of the held-out rows through μ (``val_loss``).  The
encoder and decoder are MLPs of the grid model's ``hidden`` and ``depth`` (arch mlp).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ttdm.methods import METHODS
from ttdm.methods.base import VAL_FRACTION, Method
from ttdm.models.autoencoder_nets import Decoder, Encoder
from ttdm.options import option


@dataclass(frozen=True)
class AutoencoderOptions:
    latent_dim: int = option(8, "size L of the latent code", min=1)
    kl_weight: float = option(1e-4, "weight of KL(q(z|x) ‖ N(0, I)) beside the reconstruction error", min=0)
    batch_size: int = option(256, "rows per step", min=1)
    lr: float = option(1e-3, "learning rate (Adam)", gt=0)
    grad_clip: float = option(1.0, "max global gradient norm (0: no clipping)", min=0)
    val_fraction: float = option(VAL_FRACTION, "fraction of train.npy held out as validation rows", gt=0, lt=1)


def build_autoencoder(dim: int, latent_dim: int, hidden: int, depth: int) -> dict[str, nn.Module]:
    """{"encoder", "decoder"}: MLPs of ``depth`` hidden layers of width ``hidden`` between D and L."""
    return {"encoder": Encoder(dim, latent_dim, hidden, depth), "decoder": Decoder(latent_dim, dim, hidden, depth)}


@METHODS.register("autoencoder")
class Autoencoder(Method):
    """A KL-regularised autoencoder; see the module docstring."""

    Options: ClassVar[type] = AutoencoderOptions
    provides: ClassVar[tuple[str, ...]] = ()  # nothing to sample: the latent method's runs need it
    archs: ClassVar[tuple[str, ...] | None] = ("mlp",)  # its sizes: the grid model's hidden and depth
    data_likelihood: ClassVar[bool] = False

    def build(self) -> dict[str, nn.Module]:
        cfg = self.ctx.spec["model_cfg"]
        parts = build_autoencoder(self.ctx.dim, self.options.latent_dim, int(cfg.get("hidden", 256)),
                                  int(cfg.get("depth", 2)))
        return {k: v.to(self.ctx.device) for k, v in parts.items()}

    def optimizers(self, parts: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        params = [*parts["encoder"].parameters(), *parts["decoder"].parameters()]
        return {"autoencoder": torch.optim.Adam(params, lr=self.options.lr, foreach=True)}

    def train_step(self, parts, optimizers, batch, generator) -> float:  # type: ignore[no-untyped-def]
        mean, logvar = parts["encoder"](batch)
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        recon = parts["decoder"](mean + (0.5 * logvar).exp() * eps)
        kl = 0.5 * (mean**2 + logvar.exp() - 1 - logvar).sum(1).mean()
        loss = ((batch - recon) ** 2).mean() + self.options.kl_weight * kl / batch.shape[1]
        opt = optimizers["autoencoder"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.options.grad_clip > 0:
            params = [p for group in opt.param_groups for p in group["params"]]
            nn.utils.clip_grad_norm_(params, self.options.grad_clip, foreach=True)
        opt.step()
        return float(loss.detach())

    @torch.no_grad()
    def validate(self, parts: dict[str, nn.Module]) -> dict[str, float]:
        x = self.ctx.val_data
        mean, _ = parts["encoder"](x)
        return {"val_loss": float(((x - parts["decoder"](mean)) ** 2).mean())}

    def sampling_object(self, parts: dict[str, nn.Module], protocol: str) -> Any:
        raise ValueError("an autoencoder run samples nothing; a latent_ddpm run that needs it does")
