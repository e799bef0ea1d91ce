"""A small U-Net noise predictor for small images (the 8×8 digits): residual blocks, skips, attention at the bottom.

Layout for ``channel_mult = (1, 2)`` on (1, 8, 8) images with c = ``channels`` (Ho et al. 2020, appendix B, shrunk):

    conv_in 1→c @8×8 · Res c→c @8×8 ─skip─┐ · down 8→4 · Res c→2c @4×4 ─skip─┐ ·
    middle: Res 2c, self-attention (softmax or FAVOR+, ``attention``), Res 2c @4×4 ·
    Res [2c, 2c]→2c @4×4 ┘ · up 4→8 · Res [2c, c]→c @8×8 ┘ · GroupNorm, SiLU, conv_out c→1,
    plus a 1×1 convolution of the input (``linear_skip``)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ttdm.models import MODELS
from ttdm.models.attention import ATTENTIONS, make_attention
from ttdm.models.attention import SoftmaxAttention as SoftmaxAttention  # re-exported: tests import it from here
from ttdm.models.embeddings import PRIORS, GaussianPrior, TimeMLP, broadcast_time
from ttdm.options import check_options, option


@dataclass(frozen=True)
class UNetConfig:
    channels: int = option(32, "base width c; level l has c * channel_mult[l] channels", min=1)
    channel_mult: tuple[int, ...] = option((1, 2), "one entry per resolution; each level after the first halves H "
                                                   "and W", min=1)
    # true/false are the options of configs written before FAVOR+: true means softmax, false none (__post_init__)
    attention: str | bool = option("softmax", "single-head self-attention at the lowest resolution: softmax "
                                              "(exact), performer (FAVOR+, ttdm.models.attention) or none",
                                   choices=(*ATTENTIONS, "none", True, False))
    features: int = option(0, "performer only: random features m; 0 means round(d ln d), d the channels at the "
                              "lowest resolution", min=0)
    redraw_every: int = option(1000, "performer only: draw new random features every this many training forward "
                                     "calls; 0 never", min=0)
    groups: int = option(8, "GroupNorm groups; must divide every channel count", min=1)
    time_dim: int = option(128, "size of the sinusoidal time embedding and of its MLP", min=2)
    linear_skip: bool = option(True, "add a 1×1 convolution of the input to the output: the output GroupNorm bounds "
                                     "the rest, which then cannot follow ε* ≈ x where |x_T| is large (DDIM amplifies "
                                     "the miss by up to 1/√ᾱ_T)")
    fourier: tuple[int, ...] = option((), "VDM's input Fourier features (Kingma et al. 2021, app. C): for each "
                                          "exponent n, sin(2^n π x) and cos(2^n π x) of every pixel x join the "
                                          "input channels, e.g. [3, 4] for the digits' grey levels 1/8 apart; [] "
                                          "none", min=0)
    prior: str = option("none", "gaussian: ε_θ = σ_t x + network (the network fits the deviation from N(0, I) data); "
                                "none: ε_θ = network", choices=PRIORS)

    def __post_init__(self) -> None:
        if isinstance(self.attention, bool):
            object.__setattr__(self, "attention", "softmax" if self.attention else "none")

    def widths(self) -> list[int]:
        """Every channel count: c and c · m for each m of channel_mult."""
        return [self.channels] + [self.channels * m for m in self.channel_mult]

    def problems(self) -> list[tuple[str, str]]:
        """At least one level; groups divide every channel count."""
        if not self.channel_mult:
            return [("channel_mult", "[] is empty; give one multiplier per resolution, e.g. [1, 2]")]
        if any(w % self.groups for w in self.widths()):
            return [("groups", f"{self.groups} must divide every channel count, got {sorted(set(self.widths()))} "
                               f"(channels {self.channels} x channel_mult {list(self.channel_mult)})")]
        return []


class SelfAttention2d(nn.Module):
    """h ↦ h + W_o Att(W_q ĥ, W_k ĥ, W_v ĥ), ĥ = GroupNorm(h) over the H·W pixels as tokens, one head; Att is
    ``attend`` (:func:`ttdm.models.attention.make_attention`).

    Shapes: h: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int, groups: int, attend: nn.Module) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.attend = attend
        self.out = nn.Linear(channels, channels)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        B, C, H, W = h.shape
        tokens = self.norm(h).flatten(2).transpose(1, 2)  # (B, H*W, C)
        q, k, v = self.qkv(tokens).chunk(3, dim=-1)  # 3 × (B, H*W, C)
        a = self.out(self.attend(q, k, v))  # (B, H*W, C)
        return h + a.transpose(1, 2).reshape(B, C, H, W)  # (B, C, H, W)


class ResBlock(nn.Module):
    """h ↦ skip(h) + Conv(SiLU(GN(Conv(SiLU(GN(h))) + P τ))), the DDPM residual block.

    Shapes: h: (B, C_in, H, W), τ: (B, time_dim) -> (B, C_out, H, W).
    """

    def __init__(self, c_in: int, c_out: int, time_dim: int, groups: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time_proj = nn.Linear(time_dim, c_out)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, h: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        z = self.conv1(nn.functional.silu(self.norm1(h)))
        z = z + self.time_proj(tau)[:, :, None, None]  # (B, C_out, 1, 1) broadcast over pixels
        z = self.conv2(nn.functional.silu(self.norm2(z)))
        return self.skip(h) + z


class UNet(GaussianPrior, nn.Module):
    """ε_θ(x, t) for x a flattened image; see the module docstring for the layout (+ σ_t x with ``prior:
    gaussian``, :class:`ttdm.models.embeddings.GaussianPrior`).

    Shapes: x: (B, D) with D = C·H·W, t: (B,) -> (B, D).
    """

    def __init__(self, image_shape: tuple[int, int, int], cfg: UNetConfig) -> None:
        super().__init__()
        self.image_shape = image_shape
        widths = [cfg.channels * m for m in cfg.channel_mult]
        g, td = cfg.groups, cfg.time_dim
        self.time = nn.Sequential(TimeMLP(td, td), nn.SiLU())
        self.fourier = PixelFourier(cfg.fourier)
        self.conv_in = nn.Conv2d(image_shape[0] * (1 + 2 * len(cfg.fourier)), cfg.channels, 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        c = cfg.channels
        for level, w in enumerate(widths):
            self.down.append(ResBlock(c, w, td, g))
            if level < len(widths) - 1:
                self.downsample.append(nn.Conv2d(w, w, 3, stride=2, padding=1))
            c = w
        self.mid1 = ResBlock(c, c, td, g)
        self.attn = attention_block(cfg, c)
        self.mid2 = ResBlock(c, c, td, g)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level in reversed(range(len(widths))):
            self.up.append(ResBlock(c + widths[level], widths[level], td, g))
            c = widths[level]
            if level > 0:
                self.upsample.append(nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(c, c, 3, padding=1)))
        self.out = nn.Sequential(nn.GroupNorm(g, c), nn.SiLU(), nn.Conv2d(c, image_shape[0], 3, padding=1))
        self.skip = nn.Conv2d(image_shape[0], image_shape[0], 1, bias=False) if cfg.linear_skip else None
        self.init_prior(cfg.prior)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]
        tau = self.time(broadcast_time(x, t))  # (B, time_dim)
        h = self.conv_in(self.fourier(x.reshape(B, *self.image_shape)))  # (B, c, H, W)
        skips = []
        for level, block in enumerate(self.down):
            h = block(h, tau)
            skips.append(h)
            if level < len(self.downsample):
                h = self.downsample[level](h)  # (B, w, H/2, W/2)
        h = self.mid2(self.attn(self.mid1(h, tau)), tau)
        for k, block in enumerate(self.up):
            h = block(torch.cat([h, skips.pop()], dim=1), tau)  # concatenated on channels
            if k < len(self.upsample):
                h = self.upsample[k](h)  # (B, w, 2H, 2W)
        out = self.out(h)  # (B, C, H, W)
        if self.skip is not None:
            out = out + self.skip(x.reshape(B, *self.image_shape))
        return self.add_prior(x, t, out.reshape(B, -1))  # (B, D)


class PixelFourier(nn.Module):
    """x ↦ [x, sin(2^n π x), cos(2^n π x) for n in ``exponents``] on the channels, pixel by pixel (VDM's input
    Fourier features: they let the network resolve the fine, high-frequency detail that a likelihood rewards).

    Shapes: x: (B, C, H, W) -> (B, C (1 + 2K), H, W), K = len(exponents); the identity for K = 0.
    """

    def __init__(self, exponents: tuple[int, ...]) -> None:
        super().__init__()
        self.exponents = tuple(int(n) for n in exponents)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.exponents:
            return x
        freqs = torch.tensor([math.pi * 2.0**n for n in self.exponents], dtype=x.dtype, device=x.device)  # (K,)
        angles = (x[:, :, None] * freqs[None, None, :, None, None]).flatten(1, 2)  # (B, C K, H, W)
        return torch.cat([x, torch.sin(angles), torch.cos(angles)], dim=1)


def attention_block(cfg: UNetConfig, channels: int) -> nn.Module:
    """The middle self-attention of ``cfg.attention`` over ``channels`` (one head of width d = ``channels``)."""
    if cfg.attention == "none":
        return nn.Identity()
    options = {"features": cfg.features, "redraw_every": cfg.redraw_every} if cfg.attention == "performer" else {}
    return SelfAttention2d(channels, cfg.groups, make_attention(str(cfg.attention), channels, **options))


@MODELS.register("unet", options=UNetConfig)
def build(dim: int, image_shape: tuple[int, ...] | None = None, **hparams: object) -> UNet:
    """A :class:`UNet` for images of ``image_shape`` (C, H, W) flattened to D = ``dim`` = C·H·W.

    hparams: channels (32), channel_mult ((1, 2)), attention (softmax; true/false of older configs mean softmax/none),
    features (0), redraw_every (1000), groups (8), time_dim (128), linear_skip (True), prior (none).
    """
    cfg = check_options(UNetConfig, hparams, "unet")
    if image_shape is None:
        raise ValueError("model 'unet' needs image data (image_shape (C, H, W) in meta.json); this dataset has none")
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3 or math.prod(shape) != dim:
        raise ValueError(f"unet: image_shape {list(image_shape)} must be (C, H, W) with C·H·W = dim = {dim}")
    factor = 2 ** (len(cfg.channel_mult) - 1)
    if shape[1] % factor or shape[2] % factor:
        raise ValueError(f"unet: image size {shape[1:]} is not divisible by 2^(levels-1) = {factor}")
    return UNet(shape, cfg)  # type: ignore[arg-type]
