"""Noise-prediction networks: shapes, gradients, sizes, hyper-parameter checks, time embedding and attention."""

from __future__ import annotations

import pytest
import torch
from diffusers.models.embeddings import get_timestep_embedding

from ttdm.models import MODELS
from ttdm.models.embeddings import count_parameters, timestep_embedding
from ttdm.models.unet import SoftmaxAttention

# (arch, D, image_shape, small hparams)
CASES = [
    ("mlp", 3, None, {"hidden": 16, "depth": 2, "time_dim": 8}),
    ("resnet", 3, None, {"hidden": 16, "blocks": 2, "time_dim": 8}),
    ("unet", 64, (1, 8, 8), {"channels": 8, "time_dim": 16}),
    ("unet", 64, (1, 8, 8), {"channels": 8, "time_dim": 16, "attention": False, "channel_mult": [1, 2, 2]}),
]


@pytest.mark.parametrize(("arch", "dim", "shape", "hparams"), CASES)
def test_shape_gradients_and_time_conditioning(arch: str, dim: int, shape, hparams: dict) -> None:
    torch.manual_seed(0)
    model = MODELS.get(arch)(dim, shape, **hparams)
    x, t = torch.randn(5, dim), torch.rand(5)
    out = model(x, t)
    assert out.shape == (5, dim) and out.dtype == torch.float32
    out.square().sum().backward()
    # every parameter receives a gradient, and no gradient is NaN
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert sum(float(p.grad.abs().sum()) for p in model.parameters()) > 0
    assert count_parameters(model) == sum(p.numel() for p in model.parameters()) > 0
    with torch.no_grad():
        # the output depends on t, and a scalar t means the same time for the whole batch
        assert not torch.allclose(model(x, torch.full((5,), 0.1)), model(x, torch.full((5,), 0.9)))
        torch.testing.assert_close(model(x, torch.tensor(0.3)), model(x, torch.full((5,), 0.3)))
        # samples do not interact (no batch statistics): one row alone gives the same output
        torch.testing.assert_close(model(x[:1], t[:1]), model(x, t)[:1], rtol=1e-5, atol=1e-6)


def test_mlp_parameter_count_by_hand() -> None:
    # time MLP 4→4→4: 2·(4·4 + 4) = 40; layers (2+4)→8, 8→8, 8→2: 56 + 72 + 18 = 146
    model = MODELS.get("mlp")(2, None, hidden=8, depth=2, time_dim=4)
    assert count_parameters(model) == 40 + 146


@pytest.mark.parametrize("arch", ["mlp", "resnet", "unet"])
def test_unknown_hparam_is_refused(arch: str) -> None:
    with pytest.raises(ValueError, match=r"unknown hyper-parameter\(s\) \['widht'\] for model .*; allowed: "):
        MODELS.get(arch)(64, (1, 8, 8), widht=3)


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="depth=0 must be positive"):
        MODELS.get("mlp")(2, None, depth=0)
    with pytest.raises(ValueError, match="needs image data"):
        MODELS.get("unet")(64, None)
    with pytest.raises(ValueError, match="C·H·W = dim"):
        MODELS.get("unet")(63, (1, 8, 8))
    with pytest.raises(ValueError, match="groups=3 must divide"):
        MODELS.get("unet")(64, (1, 8, 8), channels=8, groups=3)
    with pytest.raises(ValueError, match="not divisible"):
        MODELS.get("unet")(64, (1, 8, 8), channel_mult=[1, 1, 1, 1, 1])


@pytest.mark.parametrize("dim", [4, 7, 32])
def test_time_embedding_matches_diffusers(dim: int) -> None:
    t = torch.tensor([0.001, 0.02, 0.5, 1.0])
    ref = get_timestep_embedding(1000.0 * t, dim, flip_sin_to_cos=False, downscale_freq_shift=1)
    torch.testing.assert_close(timestep_embedding(t, dim), ref, rtol=1e-5, atol=1e-4)


def test_time_embedding_of_size_two() -> None:
    # one frequency, w = 1 (diffusers divides by zero here)
    t = torch.tensor([0.0, 0.25, 1.0])
    ref = torch.stack([torch.sin(1000 * t), torch.cos(1000 * t)], dim=1)
    torch.testing.assert_close(timestep_embedding(t, 2), ref, rtol=1e-5, atol=1e-5)


def test_softmax_attention_matches_torch() -> None:
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 16, 8, generator=g) for _ in range(3))
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(SoftmaxAttention()(q, k, v), ref, rtol=1e-5, atol=1e-6)
