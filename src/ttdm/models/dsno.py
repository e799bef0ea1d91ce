"""The DSNO student (Zheng et al. 2023): a diffusion backbone made into an operator that maps x_T to its whole
probability-flow trajectory at M output times in one forward pass.

- :class:`TemporalConv`: the temporal convolution in Fourier space over the M output times,

      h ← h + LeakyReLU(irfft_M(W · rfft_M(h)[:k])),   (W · H)_{o,j} = Σ_c W_{c,o,j} H_{c,j},

  W complex (C_in, C_out, k), shared across positions (pixels); the modes above k are zero; in float32.
- :class:`DSNOStudent`: the teacher's backbone (an MLP or the U-Net) evaluated on the B·M rows (x_T, t_m), the
  time embedding of each output time t_m being the backbone's own, with a :class:`TemporalConv` after each block
  (the MLP's hidden layers, the U-Net's residual blocks); its output F_m gives the state
  x̂_m = σ(t_m) x_T + α(t_m) F_m (at t = 0, x̂ = F: the sample).  Without ``temporal`` the same student has no
  temporal layers (the ablation).

Rows are laid out batch-major: row b·M + m is sample b at output time m.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ttdm.models.mlp import MLP
from ttdm.models.unet import UNet

LEAKY_SLOPE = 0.01  # torch's LeakyReLU default


def spectral_mix(h: torch.Tensor, weight: torch.Tensor, M: int) -> torch.Tensor:
    """irfft_M(W · rfft_M(h)[:k]) over the time axis 1 of h: (B, M, C_in, P) with W: (C_in, C_out, k) complex;
    the modes from k to M//2 are zero.  Returns (B, M, C_out, P) in float32."""
    k = weight.shape[-1]
    spec = torch.fft.rfft(h.float(), dim=1)  # (B, M//2 + 1, C_in, P) complex
    mixed = torch.einsum("bjcp,coj->bjop", spec[:, :k], weight)  # (B, k, C_out, P)
    full = torch.zeros(h.shape[0], M // 2 + 1, weight.shape[1], h.shape[-1], dtype=mixed.dtype, device=h.device)
    full[:, :k] = mixed
    return torch.fft.irfft(full, n=M, dim=1)  # (B, M, C_out, P)


class TemporalConv(nn.Module):
    """h ← h + LeakyReLU(irfft(W · rfft(h)[:k])) over the M output times; see the module docstring.

    Args:
        channels: C (C_in = C_out: a residual layer).
        M: the number of output times; k = ``modes`` ≤ M//2 + 1.
    Shapes: h: (B·M, C) or (B·M, C, H, W) -> the same; computed in float32, returned in h's dtype.
    """

    def __init__(self, channels: int, M: int, modes: int) -> None:
        super().__init__()
        if not 1 <= modes <= M // 2 + 1:
            raise ValueError(f"temporal modes must lie in [1, M//2 + 1 = {M // 2 + 1}] for M = {M}, got {modes}")
        self.M, self.modes = M, modes
        scale = 1.0 / channels  # FNO's initialisation: small, so the student starts near its backbone
        self.weight = nn.Parameter(scale * torch.randn(channels, channels, modes, dtype=torch.cfloat))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        rows, C = h.shape[:2]
        B = rows // self.M
        flat = h.reshape(B, self.M, C, -1)  # (B, M, C, P): P positions (1 for vectors, H·W for images)
        with torch.autocast(device_type=h.device.type, enabled=False):
            k = spectral_mix(flat, self.weight, self.M)  # (B, M, C, P) float32
            out = flat.float() + F.leaky_relu(k, LEAKY_SLOPE)
        return out.reshape(h.shape).to(h.dtype)


class _After(nn.Module):
    """A block followed by a temporal layer: ``temporal(block(*args))``."""

    def __init__(self, block: nn.Module, temporal: TemporalConv) -> None:
        super().__init__()
        self.block, self.temporal = block, temporal

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return self.temporal(self.block(*args))


def _blocks(backbone: nn.Module) -> list[tuple[nn.Module, str, int]]:
    """(container, attribute or index, channels) of every block a temporal layer follows: each hidden layer's
    activation of the MLP; every residual block of the U-Net (down, middle, up)."""
    if isinstance(backbone, MLP):
        net = backbone.net
        return [(net, i, net[i - 1].out_features) for i in range(1, len(net) - 1, 2)]
    if isinstance(backbone, UNet):
        out: list[tuple[nn.Module, str | int, int]] = []
        for seq in (backbone.down,):
            out += [(seq, i, b.conv2.out_channels) for i, b in enumerate(seq)]
        out += [(backbone, "mid1", backbone.mid1.conv2.out_channels), (backbone, "mid2", backbone.mid2.conv2.out_channels)]
        out += [(backbone.up, i, b.conv2.out_channels) for i, b in enumerate(backbone.up)]
        return out  # type: ignore[return-value]
    raise ValueError(f"DSNO needs an MLP or U-Net backbone (arch mlp or unet), got {type(backbone).__name__}")


class DSNOStudent(nn.Module):
    """x_T (B, D) -> the M states (B, M, D) at ``times`` t_1 > ... > t_M (t_M = 0: the sample); see the module
    docstring.  ``alpha``/``sigma`` (M,) are the schedule's α(t_m), σ(t_m) (buffers, saved with the weights)."""

    def __init__(self, backbone: nn.Module, times: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor, *,
                 temporal: bool = True, modes: int = 2) -> None:
        super().__init__()
        M = len(times)
        self.M = M
        self.register_buffer("times", times.float().clone())
        self.register_buffer("alpha", alpha.float().clone())
        self.register_buffer("sigma", sigma.float().clone())
        self.backbone = backbone
        self.temporal = temporal
        if temporal:
            for container, key, channels in _blocks(backbone):
                layer = TemporalConv(channels, M, min(modes, M // 2 + 1))
                if isinstance(key, int):
                    container[key] = _After(container[key], layer)
                else:
                    setattr(container, key, _After(getattr(container, key), layer))

    def backbone_state(self) -> dict[str, torch.Tensor]:
        """The backbone's weights under the teacher's names (the temporal wrappers' ``.block`` removed)."""
        return {k.replace(".block.", "."): v for k, v in self.backbone.state_dict().items()
                if ".temporal." not in k}

    def load_backbone(self, state: dict[str, torch.Tensor]) -> None:
        """Load a teacher's denoiser weights into the backbone (every weight must match; temporal layers kept)."""
        mine = self.backbone.state_dict()
        mapped = {}
        for k in mine:
            if ".temporal." in k:
                mapped[k] = mine[k]
                continue
            name = k.replace(".block.", ".")
            if name not in state:
                raise ValueError(f"the teacher's denoiser has no weight {name!r}: not the student's backbone")
            mapped[k] = state[name]
        extra = set(state) - {k.replace(".block.", ".") for k in mine}
        if extra:
            raise ValueError(f"the teacher's denoiser has weights the backbone lacks: {sorted(extra)[:3]}")
        self.backbone.load_state_dict(mapped)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, D = x.shape
        rows = x.repeat_interleave(self.M, dim=0)  # (B·M, D): row b·M + m
        t = self.times.to(x.dtype).repeat(B)  # (B·M,)
        out = self.backbone(rows, t).reshape(B, self.M, D)  # F_m
        x_T = rows.reshape(B, self.M, D)
        return self.sigma[None, :, None].to(x.dtype) * x_T + self.alpha[None, :, None].to(x.dtype) * out  # (B, M, D)


def quadratic_indices(steps: int, M: int) -> list[int]:
    """DSNO's quadratic index spacing: the teacher states j_m = S − round(S (1 − m/M)²), m = 0..M, of a trajectory
    of S = ``steps`` solver steps (state j: after j steps; j_0 = 0 is x_T, j_M = S the ODE's end point), crowded
    towards the data (the last gap is about S/M²).  Strictly increasing; S < M² (a repeated state) is an error."""
    if M < 1 or steps < 1:
        raise ValueError(f"need M ≥ 1 output times and steps ≥ 1, got M = {M}, steps = {steps}")
    js = [steps - int(math.floor(steps * (1 - m / M) ** 2 + 0.5)) for m in range(M + 1)]
    if any(b <= a for a, b in zip(js, js[1:])):
        raise ValueError(f"{steps} teacher steps cannot hold {M} distinct quadratically spaced states ({js}); "
                         f"use at least M² = {M * M} steps")
    return js
