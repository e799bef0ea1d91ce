"""Latent diffusion (Rombach et al. 2022): the DDPM of :mod:`ttdm.methods.ddpm` on an autoencoder's latent codes.

The run ``needs`` an ``autoencoder`` run (same dataset and seed).  At training it encodes every fitting and
validation row with the encoder's mean, z = μ(x), scales the codes to unit standard deviation (s = 1/std(z) over
the fitting rows, LDM's ``scale_factor``) and hands the scaled codes to the unchanged DDPM machinery as its data
(``ctx.data``; the model of size ``noise_dim`` = L): any denoiser (an MLP, or the tensor train with ALS: a latent TT-DDPM) trains on
them.  Its parts are the denoiser and a frozen copy of the autoencoder's decoder with s (part ``decoder``), so the
run alone decodes: the sample stage starts the sampler from N(0, I) noise of size L (``noise_dim``) and decodes its
output, x = D(z/s), before the metrics see it.  A likelihood in latent space is not the data's (``data_likelihood``
is false): these runs have no likelihood job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ttdm.methods import METHODS
from ttdm.methods.base import Context
from ttdm.methods.ddpm import DDPM
from ttdm.methods.regression import RegressionOptions
from ttdm.models.autoencoder_nets import Decoder
from ttdm.options import option


@dataclass(frozen=True)
class LatentOptions(RegressionOptions):
    autoencoder: str = option("autoencoder", "the model name of the autoencoder run this run needs",
                              pattern=r"[A-Za-z0-9_-]+")
    latent_dim: int = option(8, "the autoencoder's latent size L (must match its run)", min=1)
    ae_hidden: int = option(256, "the autoencoder's hidden width (must match its run)", min=1)
    ae_depth: int = option(2, "the autoencoder's hidden layers (must match its run)", min=1)


class ScaledDecoder(nn.Module):
    """x = D(z/s): the autoencoder's decoder and the latent scale s (a buffer).  z: (B, L) -> (B, D)."""

    def __init__(self, decoder: Decoder, scale: float = 1.0) -> None:
        super().__init__()
        self.decoder = decoder
        self.register_buffer("scale", torch.tensor(float(scale)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z / self.scale)


@METHODS.register("latent_ddpm")
class LatentDDPM(DDPM):
    """The DDPM objective on scaled autoencoder latents; see the module docstring."""

    Options: ClassVar[type] = LatentOptions
    data_likelihood: ClassVar[bool] = False
    denoises_data: ClassVar[bool] = False  # it denoises latents: no x̂_0 clipping to the pixel range

    def __init__(self, options: LatentOptions, ctx: Context) -> None:
        self.data_dim = ctx.dim
        self._decoder_state: dict[str, Any] | None = None
        self._scale = 1.0
        autoencoder = ctx.needs.get("autoencoder")
        if autoencoder is not None and ctx.data is not None:  # training: the rows become scaled latent codes
            encoder = autoencoder.parts["encoder"]
            if encoder.latent_dim != options.latent_dim:
                raise ValueError(f"latent_dim = {options.latent_dim} but the autoencoder run "
                                 f"{options.autoencoder!r} has latent_dim = {encoder.latent_dim}")
            with torch.no_grad():
                codes = encoder(ctx.data)[0]
                self._scale = float(1.0 / codes.std())
                ctx.data = codes * self._scale
                ctx.val_data = encoder(ctx.val_data)[0] * self._scale
            self._decoder_state = autoencoder.parts["decoder"].state_dict()
        super().__init__(options, ctx)

    @classmethod
    def needs(cls, options: LatentOptions) -> dict[str, str]:
        return {**super().needs(options), "autoencoder": options.autoencoder}

    @property
    def noise_dim(self) -> int:
        return self.options.latent_dim

    def build(self) -> dict[str, nn.Module]:
        parts = super().build()
        o = self.options
        decoder = Decoder(o.latent_dim, self.data_dim, o.ae_hidden, o.ae_depth)
        if self._decoder_state is not None:
            decoder.load_state_dict(self._decoder_state)  # a size mismatch names both shapes
        parts["decoder"] = ScaledDecoder(decoder, self._scale).requires_grad_(False).to(self.ctx.device)
        return parts

    def decode(self, parts: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return parts["decoder"](x)

    def summary(self, parts: dict[str, nn.Module]) -> dict[str, Any]:
        """The optimizer and the latent scale (ε* of a mixture says nothing of a latent model)."""
        return {"optimizer": self.options.optimizer, "eps_rel_error": None,
                "latent_scale": float(parts["decoder"].scale)}
