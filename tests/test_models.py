"""Noise-prediction networks: shapes, gradients, sizes, declared hyper-parameters and their checks (each message
names the option, the value and what is allowed), time embedding and attention."""

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
    ("mlp", 3, None, {"hidden": 16, "depth": 2, "time_dim": 8, "prior": "gaussian"}),
    ("resnet", 3, None, {"hidden": 16, "blocks": 2, "time_dim": 8, "prior": "gaussian"}),
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


@pytest.mark.parametrize("arch", ["mlp", "resnet", "unet", "tt"])
def test_unknown_hparam_is_refused(arch: str) -> None:
    with pytest.raises(ValueError, match=rf"{arch}\.widht: unknown option; allowed: .*time_"):
        MODELS.get(arch)(64, (1, 8, 8), widht=3)


@pytest.mark.parametrize(("arch", "hparams", "message"), [
    ("mlp", {"depth": 0}, "mlp.depth: 0 must be ≥ 1"),
    ("mlp", {"depth": -5}, "mlp.depth: -5 must be ≥ 1"),
    ("mlp", {"time_dim": 1}, "mlp.time_dim: 1 must be ≥ 2"),
    ("resnet", {"hidden": "ten"}, "resnet.hidden: 'ten' is not an integer"),
    ("resnet", {"blocks": 2.5}, "resnet.blocks: 2.5 is not an integer"),
    ("unet", {"channels": -5}, "unet.channels: -5 must be ≥ 1"),
    ("unet", {"attention": "yes"}, "unet.attention: 'yes' is not allowed; allowed: softmax, performer, none"),
    ("unet", {"channel_mult": []}, "unet.channel_mult: [] is empty"),
    ("unet", {"channel_mult": [1, 0]}, r"unet.channel_mult: [1, 0] must be ≥ 1"),
    ("unet", {"channels": 8, "groups": 3}, "unet.groups: 3 must divide every channel count, got [8, 16]"),
    ("mlp", {"prior": "laplace"}, "mlp.prior: 'laplace' is not allowed; allowed: gaussian, none"),
    ("resnet", {"prior": True}, "resnet.prior: True is not"),
    ("unet", {"prior": "Gaussian"}, "unet.prior: 'Gaussian' is not allowed; allowed: gaussian, none"),
    ("tt", {"rank": "ten"}, "tt.rank: 'ten' is not an integer"),
    ("tt", {"layout": "x; touch y"}, "tt.layout: 'x; touch y' is not allowed; allowed: per_output, shared"),
    ("tt", {"basis": "bogus"}, "tt.basis: 'bogus' is not allowed; allowed: bspline, chebyshev, legendre"),
    ("tt", {"dtype": "float16"}, "tt.dtype: 'float16' is not allowed; allowed: float32, float64"),
    ("tt", {"basis": "bspline", "degree": 3}, "tt.degree: 3 is below the minimum 4 of basis 'bspline'"),
    ("tt", {"time_basis": "bspline", "time_degree": 2}, "tt.time_degree: 2 is below the minimum 4"),
])
def test_bad_hyper_parameters_name_the_option(arch: str, hparams: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        MODELS.get(arch)(64, (1, 8, 8), **hparams)
    assert message in str(info.value)


def test_options_are_registered_with_their_defaults() -> None:
    # the declared defaults are the builders' defaults: what a model without hyper-parameters gets
    for arch in MODELS.names():
        cls = MODELS.options(arch)
        assert cls is not None, arch
    torch.manual_seed(0)
    assert MODELS.get("tt")(2, None).cfg == MODELS.options("tt")()
    assert MODELS.options("unet")().channel_mult == (1, 2)
    assert MODELS.get("unet")(64, (1, 8, 8), channel_mult=[1, 2], channels=8).image_shape == (1, 8, 8)


def test_image_checks_of_the_unet() -> None:
    with pytest.raises(ValueError, match="needs image data"):
        MODELS.get("unet")(64, None)
    with pytest.raises(ValueError, match="C·H·W = dim"):
        MODELS.get("unet")(63, (1, 8, 8))
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
