"""Attention (ttdm.models.attention): softmax against its definition; FAVOR+ against the exact softmax kernel (an
unbiased estimate whose error falls as m grows) and against performer-pytorch's FastAttention; its random features
(orthogonal Gaussian blocks, fixed in eval mode, redrawn on schedule, restored from a state dict and by a killed and
resumed training run); the U-Net's attention option, old booleans included."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest
import torch

from test_train import assert_same_parts, make_data, make_spec, train_killed_at
from ttdm.models import MODELS
from ttdm.models.attention import (PerformerAttention, SoftmaxAttention, default_features, favor_attention,
                                   favor_features, make_attention, orthogonal_gaussian_projection)
from ttdm.models.unet import UNetConfig
from ttdm.options import OptionsError, check_options
from ttdm.stages.train import train

F64 = torch.float64


def randn(*shape: int, seed: int, scale: float = 1.0, dtype: torch.dtype = F64) -> torch.Tensor:
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def projection(m: int, d: int, seed: int) -> torch.Tensor:
    return orthogonal_gaussian_projection(m, d, torch.Generator().manual_seed(seed))


def exact_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(Q Kᵀ/√d) V, written out."""
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1) @ v


@pytest.mark.parametrize("shape", [(2, 16, 8), (2, 3, 16, 8)])
def test_softmax_attention_is_its_definition(shape: tuple[int, ...]) -> None:
    q, k, v = (randn(*shape, seed=s) for s in range(3))
    torch.testing.assert_close(SoftmaxAttention()(q, k, v), exact_attention(q, k, v), rtol=1e-12, atol=1e-12)


def test_favor_kernel_estimate_is_unbiased() -> None:
    # E_W[φ(q̂)·φ(k̂)] = exp(q·k/√d).  One feature's relative variance is exp(‖q̂ + k̂‖²) − 1, so ‖q̂‖² = ‖q‖²/√d ≈ 1
    # here (entries of sd 1/2 at d = 16): 2000 draws of m = 16 features give relative standard errors of 1–4 %.
    # The 2000 draws are the 2000 independent orthogonal blocks of one (2000·16, 16) projection.
    d, m, draws = 16, 16, 2000
    q, k = randn(4, d, seed=0, scale=0.5), randn(4, d, seed=1, scale=0.5)
    exact = torch.exp(q @ k.T / math.sqrt(d))  # (4, 4)
    w = projection(draws * m, d, seed=0).reshape(draws, m, d)
    estimates = favor_features(q, w) @ favor_features(k, w).transpose(-2, -1)  # (draws, 4, 4)
    mean, standard_error = estimates.mean(0), estimates.std(0) / math.sqrt(draws)
    assert float((standard_error / exact).max()) < 0.05  # the test can see a bias of a few per cent
    assert float(((mean - exact) / standard_error).abs().max()) < 4.0


def test_favor_error_falls_as_features_grow() -> None:
    # d = 16, L = 64, ‖q̂‖² ≈ 1 (see above); the mean over 10 draws of ‖Att_FAVOR − Att‖_F / ‖Att‖_F is about 0.40,
    # 0.26, 0.16, 0.09 at m = 16, 64, 256, 1024.  (With unit-variance entries, ‖q̂‖² ≈ 4, it is still about 0.8 at
    # m = 1024: FAVOR+ needs moderate query and key norms.)
    d, L = 16, 64
    q, k, v = randn(L, d, seed=0, scale=0.5), randn(L, d, seed=1, scale=0.5), randn(L, d, seed=2)
    exact = exact_attention(q, k, v)
    errors = []
    for m in (16, 64, 256, 1024):
        outs = [favor_attention(q, k, v, projection(m, d, seed), eps=0.0) for seed in range(10)]
        errors.append(sum(float((o - exact).norm() / exact.norm()) for o in outs) / len(outs))
    assert errors == sorted(errors, reverse=True), errors
    assert errors[-1] < 0.12 and errors[-1] < errors[0] / 3, errors


def test_stabilisers_and_floor() -> None:
    # with ε = 0 the subtracted maxima cancel in D̂⁻¹: the estimate equals the unstabilised one
    d, L = 8, 32
    q, k, v = (randn(2, L, d, seed=s) for s in range(3))
    w = projection(20, d, seed=0)
    phi_q, phi_k = favor_features(q, w), favor_features(k, w)
    plain = (phi_q @ (phi_k.transpose(-2, -1) @ v)) / (phi_q @ phi_k.sum(-2).unsqueeze(-1))
    torch.testing.assert_close(favor_attention(q, k, v, w, eps=0.0), plain, rtol=1e-10, atol=1e-12)
    # max over x of w·x̂ − ‖x̂‖²/2 is ‖w‖²/2 (at x̂ = w), ≈ d/2 = 128 > log(float32 max) ≈ 88 at d = 256: queries and
    # keys along the projection overflow in float32 without the stabilisers and not with them
    d = 256
    w = projection(2 * d, d, seed=0).float()
    x = d**0.25 * w[:8] + randn(8, d, seed=1, dtype=torch.float32)  # (8, d)
    assert not torch.isfinite(favor_features(x, w)).all()
    for stabilize in ("row", "all"):
        assert torch.isfinite(favor_features(x, w, stabilize=stabilize)).all()
    assert torch.isfinite(favor_attention(x, x, x, w)).all()
    with pytest.raises(ValueError, match="stabilize 'max' is not allowed; allowed: none, row, all"):
        favor_features(x, w, stabilize="max")


def test_projection_has_orthogonal_gaussian_blocks() -> None:
    d, m = 16, 40  # blocks of 16, 16 and 8 rows
    w = projection(m, d, seed=0)
    norms = w.norm(dim=1)
    u = w / norms[:, None]
    for rows in (slice(0, 16), slice(16, 32), slice(32, 40)):
        block = u[rows]
        torch.testing.assert_close(block @ block.T, torch.eye(block.shape[0], dtype=F64), rtol=0, atol=1e-12)
    assert float((u[:16] @ u[16:32].T).abs().max()) > 0.1  # distinct blocks are independent, not orthogonal
    # rows are N(0, I_d) marginally: mean 0, E[w wᵀ] = I, ‖w‖² ~ χ²_d (mean d).  A Q factor without the sign fix
    # of R's diagonal fails the mean: LAPACK's first direction always has a negative first entry.
    blocks = projection(2000 * d, d, seed=1).reshape(2000, d, d)  # 2000 independent blocks
    assert float(blocks.mean(0).abs().max()) < 4 / math.sqrt(2000)
    second_moment = torch.einsum("nri,nrj->ij", blocks, blocks) / (2000 * d)
    torch.testing.assert_close(second_moment, torch.eye(d, dtype=F64), rtol=0, atol=0.05)
    assert abs(float(blocks.square().sum(-1).mean()) - d) < 0.2
    assert default_features(16) == 44 and default_features(1) == 1


def test_features_are_fixed_in_eval_and_redrawn_on_schedule_in_training() -> None:
    d = 8
    layer = PerformerAttention(d, features=12, redraw_every=3, seed=7)
    q = randn(2, 10, d, seed=0, dtype=torch.float32)
    first = layer.projection.clone()
    torch.testing.assert_close(first, layer.draw(0).float(), rtol=0, atol=0)
    layer.eval()
    outputs = [layer(q, q, q) for _ in range(5)]
    assert int(layer.calls) == 0 and torch.equal(layer.projection, first)
    assert all(torch.equal(o, outputs[0]) for o in outputs)
    layer.train()
    seen = []
    for _ in range(7):
        layer(q, q, q)
        seen.append(layer.projection.clone())
    # calls 1–3 use W_0, calls 4–6 W_1, call 7 W_2
    for call, expected in zip(range(7), [0, 0, 0, 1, 1, 1, 2]):
        torch.testing.assert_close(seen[call], layer.draw(expected).float(), rtol=0, atol=0)
    assert not torch.equal(seen[2], seen[3])
    never = PerformerAttention(d, features=12, redraw_every=0, seed=7)
    for _ in range(5):
        never(q, q, q)
    assert torch.equal(never.projection, first)
    # the seed decides the draws; without one it comes from the global torch RNG
    assert not torch.equal(PerformerAttention(d, seed=8).projection, PerformerAttention(d, seed=7).projection)
    torch.manual_seed(3)
    a = PerformerAttention(d)
    torch.manual_seed(3)
    assert torch.equal(a.projection, PerformerAttention(d).projection)


def test_state_dict_round_trip_resumes_bit_for_bit() -> None:
    d = 8
    q, k, v = (randn(2, 10, d, seed=s, dtype=torch.float32) for s in range(3))
    layer = PerformerAttention(d, features=12, redraw_every=3, seed=1)
    for _ in range(4):
        layer(q, k, v)
    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    buffer.seek(0)
    resumed = PerformerAttention(d, features=12, redraw_every=3, seed=2)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    assert (int(resumed.seed), int(resumed.calls)) == (1, 4)
    for _ in range(4):  # across the redraw before call 7
        assert torch.equal(resumed(q, k, v), layer(q, k, v))
    assert torch.equal(resumed.projection, layer.projection)


def test_make_attention() -> None:
    assert isinstance(make_attention("softmax", 8), SoftmaxAttention)
    layer = make_attention("performer", 8, features=5, redraw_every=2)
    assert isinstance(layer, PerformerAttention) and layer.projection.shape == (5, 8) and layer.redraw_every == 2
    assert make_attention("performer", 16).features == 44
    with pytest.raises(ValueError, match="attention 'linear' is not allowed; allowed: softmax, performer"):
        make_attention("linear", 8)
    with pytest.raises(TypeError, match="softmax attention takes no options"):
        make_attention("softmax", 8, features=4)
    with pytest.raises(ValueError, match="features -1"):
        make_attention("performer", 8, features=-1)


@pytest.mark.parametrize(("dtype", "tolerance"), [(torch.float32, 1e-5), (F64, 1e-10)])
def test_favor_matches_performer_pytorch(dtype: torch.dtype, tolerance: float) -> None:
    performer_pytorch = pytest.importorskip("performer_pytorch")
    torch.manual_seed(0)
    theirs = performer_pytorch.FastAttention(32, nb_features=111).to(dtype)
    ours = PerformerAttention(32, features=111).to(dtype)
    ours.projection.copy_(theirs.projection_matrix)
    q, k, v = (randn(2, 4, 256, 32, seed=s, dtype=dtype) for s in range(3))  # (B, H, N, d)
    torch.testing.assert_close(ours(q, k, v), theirs(q, k, v), rtol=tolerance, atol=tolerance)


def unet(**options: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return MODELS.get("unet")(64, (1, 8, 8), channels=8, time_dim=16, **options)


def test_unet_with_performer_attention_trains_and_resumes() -> None:
    model = unet(attention="performer", redraw_every=2)
    attend = model.attn.attend
    assert isinstance(attend, PerformerAttention) and (attend.dim_head, attend.features) == (16, 44)
    x, t = torch.randn(4, 64), torch.rand(4)
    for _ in range(3):  # the third call redraws
        out = model(x, t)
        assert out.shape == (4, 64)
        model.zero_grad()
        out.square().sum().backward()
        for name, p in model.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
    resumed = unet(attention="performer", redraw_every=2)
    resumed.load_state_dict(model.state_dict())
    assert torch.equal(resumed(x, t), model(x, t))
    assert unet(attention="performer", features=7).attn.attend.features == 7


def test_killed_training_of_a_performer_unet_resumes_bit_for_bit(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # features redrawn every 3 steps, checkpoints every 4, a kill after step 6: the resumed run (from step 4) redraws
    # at the same steps with the same draws and ends with the same weights as the run that was never killed
    data = make_data(tmp_path / "data", n=64, image=True)
    spec = make_spec(steps=12, batch_size=8, checkpoint_every=4, log_every=3)
    spec.update(arch="unet", model="unet",
                model_cfg={"channels": 8, "time_dim": 16, "attention": "performer", "redraw_every": 3})
    train(spec, data, tmp_path / "full")
    train_killed_at(spec, data, tmp_path / "parts", 6, monkeypatch)
    assert train(spec, data, tmp_path / "parts")["resumed_from_step"] == 4
    assert_same_parts(tmp_path / "full", tmp_path / "parts", ("denoiser",))
    weights = torch.load(tmp_path / "full" / "model.pt", weights_only=True)["parts"]["denoiser"]
    assert int(weights["attn.attend.calls"]) == 12  # one training forward call per step; validation does not count


def test_unet_accepts_the_old_boolean_option() -> None:
    assert check_options(UNetConfig, {"attention": True}, "unet").attention == "softmax"
    assert check_options(UNetConfig, {"attention": False}, "unet") == UNetConfig(attention="none")
    assert isinstance(unet(attention=True).attn.attend, SoftmaxAttention)
    assert isinstance(unet(attention=False).attn, torch.nn.Identity)
    assert isinstance(unet().attn.attend, SoftmaxAttention)  # the default
    # a model saved with attention: true loads into attention: softmax (softmax attention has no state)
    unet(attention="softmax").load_state_dict(unet(attention=True).state_dict())
    with pytest.raises(OptionsError, match="unet.attention: 'yes' is not allowed; allowed: softmax, performer, none"):
        check_options(UNetConfig, {"attention": "yes"}, "unet")
    with pytest.raises(OptionsError, match="unet.redraw_every: -1 must be ≥ 0"):
        check_options(UNetConfig, {"redraw_every": -1}, "unet")
