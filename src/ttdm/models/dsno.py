"""The DSNO student (Zheng et al. 2023): a diffusion backbone made into an operator that maps x_T to its whole
probability-flow trajectory at M output times in one forward pass.

- :class:`TemporalConv`: the temporal convolution in Fourier space over the M output times,

      h ← h + LeakyReLU(irfft_M(W · rfft_M(h)[:k])),   (W · H)_{o,j} = Σ_c W_{c,o,j} H_{c,j},

  W complex (C_in, C_out, k), shared across positions (pixels); the modes above k are zero; in float32, with the
  real DFT matrices of M points (:func:`spectral_mix`, tested against numpy's FFT).
- :class:`DSNOStudent`: the teacher's backbone (an MLP or the U-Net) evaluated on the M·B rows (x_T, t_m), the
  time embedding of each output time t_m being the backbone's own, with a :class:`TemporalConv` after each block
  (the MLP's hidden layers, the U-Net's residual blocks); its output F_m gives the state
  x̂_m = σ(t_m) x_T + α(t_m) F_m (at t = 0, x̂ = F: the sample).  Without ``temporal`` the same student has no
  temporal layers (the ablation).

Rows are laid out time-major: row m·B + b is sample b at output time m (the temporal layer's time slices are
contiguous).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ttdm.models.mlp import MLP
from ttdm.models.unet import UNet

LEAKY_SLOPE = 0.01  # torch's LeakyReLU default


def dft_matrices(M: int, k: int) -> tuple[torch.Tensor, torch.Tensor, slice]:
    """The truncated real DFT over M points and its inverse as two real matrices, float32, without the rows and
    columns that are zero for real input:

    - the modes j < k with ω_js = 2π j s/M split into real modes (j = 0, and j = M/2 for even M), whose imaginary
      part is 0 and is dropped by irfft, and the complex modes ``c`` = [1, min(k, ⌈M/2⌉)) (a slice of j);
    - ``F`` (k + |c|, M): rows Re X_j = Σ_s cos(ω_js) h_s for every j < k, then Im X_j = −Σ_s sin(ω_js) h_s for j ∈ c;
    - ``G`` (M, k + 2|c|): irfft(Y)_t = Σ_j a_j cos(ω_jt) Re Y_j − Σ_{j∈c} a_j sin(ω_jt) Im Y_j (a_0 = a_{M/2} = 1/M,
      else 2/M, as numpy's and torch's irfft), laid out for [Re Y; Im Y_c; R_c] with R_c = the part of Re Y_c that
      comes from Im X (its column is −(a_j cos ω_jt): see :func:`spectral_mix`).

    Returns (F, G, c).  The ``rfft`` and ``irfft`` buffers of :class:`TemporalConv`."""
    j = torch.arange(k, dtype=torch.float64)
    ang = 2 * math.pi * j[:, None] * torch.arange(M, dtype=torch.float64)[None, :] / M  # (k, M)
    a = torch.full((k,), 2.0 / M, dtype=torch.float64)
    a[0] = 1.0 / M
    if M % 2 == 0 and k > M // 2:
        a[M // 2] = 1.0 / M
    c = slice(1, max(1, min(k, (M + 1) // 2)))
    gc, gs = (a[:, None] * ang.cos()).T, (-a[:, None] * ang.sin()).T  # (M, k)
    rfft_m = torch.cat([ang.cos(), -ang.sin()[c]])
    irfft_m = torch.cat([gc, gs[:, c], -gc[:, c]], dim=1)
    return rfft_m.float(), irfft_m.float(), c


def _mix(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Σ_c x[j, n, c, p] w[c, o, j] per mode j: x (k, N, C, P), w (C, O, k) -> (k, N, O, P)."""
    if x.shape[-1] == 1:  # vectors: one (N, C) @ (C, O) product per mode
        return torch.bmm(x[..., 0], w.permute(2, 0, 1)).unsqueeze(-1)
    return torch.matmul(w.permute(2, 1, 0).unsqueeze(1), x)  # images: (O, C) @ (C, P) per mode and sample


def spectral_mix(h: torch.Tensor, w_re: torch.Tensor, w_im: torch.Tensor, M: int,
                 dft: tuple[torch.Tensor, torch.Tensor, slice] | None = None) -> torch.Tensor:
    """irfft_M(W · rfft_M(h)[:k]) over the time axis 0 of h: (M, N, C_in, P) (time-major: N samples, P positions),
    W = w_re + i w_im: (C_in, C_out, k), (W · X)_{o,j} = Σ_c W_{c,o,j} X_{c,j}; the modes from k to M//2 are zero.

    Computed in float32 with real products only (no complex tensors: several times faster on a CPU for M = 2..8,
    the same numbers as torch.fft), with the matrices of :func:`dft_matrices` (``dft``, computed when None):

    1. [Re X; Im X_c] = F h: one (k + |c|, M) matrix against the (M, N·C·P) time slices;
    2. per mode, Re Y_j = W_re,j Re X_j (− W_im,j Im X_j for complex j) and, for complex j only,
       Im Y_j = W_im,j Re X_j + W_re,j Im X_j (the real modes' Im X and Im Y are 0 or dropped by irfft: 5 channel
       products instead of 8 for M = 4, k = 2);
    3. irfft = G [Re Y; Im Y_c; W_im Im X_c]: one (M, k + 2|c|) matrix against the (·, N·C_out·P) slices.

    Returns (M, N, C_out, P) in float32.
    """
    _, N, C, P = h.shape
    k, O = w_re.shape[-1], w_re.shape[1]
    rfft_m, irfft_m, c = dft if dft is not None else tuple(t.to(h.device) if torch.is_tensor(t) else t
                                                           for t in dft_matrices(M, k))
    spec = (rfft_m @ h.float().reshape(M, N * C * P)).view(-1, N, C, P)  # (k + |c|, N, C, P)
    x_re, x_im = spec[:k], spec[k:]
    parts = [_mix(x_re, w_re.float())]  # Σ W_re Re X over every mode
    if len(x_im):
        w_re_c, w_im_c = w_re[..., c].float(), w_im[..., c].float()
        parts += [_mix(x_re[c], w_im_c) + _mix(x_im, w_re_c), _mix(x_im, w_im_c)]  # Im Y_c; W_im Im X_c
    y = torch.cat(parts).reshape(-1, N * O * P)  # (k + 2|c|, N·C_out·P)
    return (irfft_m @ y).view(M, N, O, P)


class TemporalConv(nn.Module):
    """h ← h + LeakyReLU(irfft(W · rfft(h)[:k])) over the M output times; see the module docstring.

    The complex weights W = ``weight_re`` + i ``weight_im`` (two real parameters of shape (C, C, k)).

    Args:
        channels: C (C_in = C_out: a residual layer).
        M: the number of output times; k = ``modes`` ≤ M//2 + 1.
    Shapes: h: (M·N, C) or (M·N, C, H, W), time-major (row m·N + n: sample n at time m) -> the same; computed in
    float32, returned in h's dtype.
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
        rfft_m, irfft_m, self.complex_modes = dft_matrices(M, modes)
        self.register_buffer("rfft", rfft_m, persistent=False)
        self.register_buffer("irfft", irfft_m, persistent=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        rows, C = h.shape[:2]
        flat = h.reshape(self.M, rows // self.M, C, -1)  # (M, N, C, P): P positions (1 for vectors, H·W for images)
        with torch.autocast(device_type=h.device.type, enabled=False):
            k = spectral_mix(flat, self.weight_re, self.weight_im, self.M, (self.rfft, self.irfft, self.complex_modes))
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
        rows = x.repeat(self.M, 1)  # (M·B, D), time-major: row m·B + b
        t = self.times.to(x.dtype).repeat_interleave(B)  # (M·B,)
        out = self.backbone(rows, t).reshape(self.M, B, D)  # F_m
        states = self.sigma[:, None, None].to(x.dtype) * x + self.alpha[:, None, None].to(x.dtype) * out
        return states.transpose(0, 1)  # (B, M, D)


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
