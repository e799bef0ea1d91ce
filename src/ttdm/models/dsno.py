"""The DSNO student (Zheng et al. 2023): a diffusion backbone made into an operator that maps x_T to its whole
probability-flow trajectory at M output times in one forward pass.

- :class:`TemporalConv`: the temporal convolution in Fourier space over the M output times,

      h ← h + LeakyReLU(irfft_M(W · rfft_M(h)[:k])),   (W · H)_{o,j} = Σ_c W_{c,o,j} H_{c,j},

  W complex (C_in, C_out, k), shared across positions (pixels); the modes above k are zero; in float32, with the
  real DFT matrices of M points (:func:`spectral_mix`, tested against numpy's FFT).
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


def dft_matrices(M: int, k: int) -> tuple[torch.Tensor, ...]:
    """Real matrices of the truncated rfft and of irfft over M points, float32:
    (fc, fs): (k, M) with Re X_j = Σ_s fc_js h_s, Im X_j = Σ_s fs_js h_s (fc = cos ω_js, fs = −sin ω_js,
    ω_js = 2π j s/M); (gc, gs): (M, k) with irfft(Y)_t = Σ_j gc_tj Re Y_j + gs_tj Im Y_j for Y zero beyond k
    (gc = a_j cos ω_jt, gs = −a_j sin ω_jt, a_0 = a_{M/2} = 1/M, else 2/M: the imaginary parts of the DC and Nyquist
    terms drop out, as in numpy's and torch's irfft)."""
    j = torch.arange(k, dtype=torch.float64)
    ang = 2 * math.pi * j[:, None] * torch.arange(M, dtype=torch.float64)[None, :] / M  # (k, M)
    a = torch.full((k,), 2.0 / M, dtype=torch.float64)
    a[0] = 1.0 / M
    if M % 2 == 0 and k > M // 2:
        a[M // 2] = 1.0 / M
    return (ang.cos().float(), (-ang.sin()).float(), (a[:, None] * ang.cos()).T.float(),
            (-a[:, None] * ang.sin()).T.float())


def spectral_mix(h: torch.Tensor, w_re: torch.Tensor, w_im: torch.Tensor, M: int,
                 dft: tuple[torch.Tensor, ...] | None = None) -> torch.Tensor:
    """irfft_M(W · rfft_M(h)[:k]) over the time axis 1 of h: (B, M, C_in, P), W = w_re + i w_im: (C_in, C_out, k),
    (W · X)_{o,j} = Σ_c W_{c,o,j} X_{c,j}; the modes from k to M//2 are zero.

    Computed in float32 with real matrices only: [Re X, Im X] = h [fc; fs]ᵀ over time (:func:`dft_matrices`, or
    ``dft``), then per mode j one product with the real block form of W_j, [Re Y, Im Y] = [Re X, Im X]
    [[W_re, W_im], [−W_im, W_re]], then irfft = [gc, gs] [Re Y; Im Y]: the same numbers as torch.fft without
    complex tensors (several times faster on a CPU for M = 2..8).  Returns (B, M, C_out, P) in float32.
    """
    B, _, C, P = h.shape
    k, O = w_re.shape[-1], w_re.shape[1]
    fc, fs, gc, gs = dft if dft is not None else (t.to(h.device) for t in dft_matrices(M, k))
    x = h.float().permute(0, 3, 2, 1).reshape(B * P * C, M)  # rows (b, p, c), time last
    spec = x @ torch.cat([fc, fs]).T  # (B·P·C, 2k): [Re X_j, Im X_j]
    spec = spec.reshape(B * P, C, 2, k).permute(3, 0, 2, 1).reshape(k, B * P, 2 * C)  # (k, B·P, [re c, im c])
    wr, wi = w_re.float().permute(2, 0, 1), w_im.float().permute(2, 0, 1)  # (k, C_in, C_out)
    block = torch.cat([torch.cat([wr, wi], dim=2), torch.cat([-wi, wr], dim=2)], dim=1)  # (k, 2 C_in, 2 C_out)
    y = torch.bmm(spec, block)  # (k, B·P, [Re Y_o, Im Y_o])
    y = y.reshape(k, B * P, 2, O).permute(1, 3, 2, 0).reshape(B * P * O, 2 * k)  # rows (b, p, o), [re j, im j]
    out = y @ torch.cat([gc, gs], dim=1).T  # (B·P·C_out, M)
    return out.reshape(B, P, O, M).permute(0, 3, 2, 1)  # (B, M, C_out, P)


class TemporalConv(nn.Module):
    """h ← h + LeakyReLU(irfft(W · rfft(h)[:k])) over the M output times; see the module docstring.

    The complex weights W = ``weight_re`` + i ``weight_im`` (two real parameters of shape (C, C, k)).

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
        w = scale * torch.randn(channels, channels, modes, dtype=torch.cfloat)
        self.weight_re = nn.Parameter(w.real.clone())
        self.weight_im = nn.Parameter(w.imag.clone())
        for name, t in zip(("fc", "fs", "gc", "gs"), dft_matrices(M, modes)):
            self.register_buffer(name, t, persistent=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        rows, C = h.shape[:2]
        B = rows // self.M
        flat = h.reshape(B, self.M, C, -1)  # (B, M, C, P): P positions (1 for vectors, H·W for images)
        with torch.autocast(device_type=h.device.type, enabled=False):
            k = spectral_mix(flat, self.weight_re.float(), self.weight_im.float(), self.M,
                             (self.fc, self.fs, self.gc, self.gs))  # (B, M, C, P) float32
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
