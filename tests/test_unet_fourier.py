"""VDM's input Fourier features in the U-Net: sin(2^n π x) and cos(2^n π x) of every pixel as extra channels."""

import math

import pytest
import torch

from ttdm.config import ConfigError, load_config
from ttdm.models.unet import PixelFourier, build


def test_pixel_features_are_the_closed_form_channels():
    x = torch.rand(3, 2, 4, 4, dtype=torch.float64) * 2 - 1
    f = PixelFourier((3, 4))(x)
    assert f.shape == (3, 2 * 5, 4, 4)
    assert torch.equal(f[:, :2], x)
    # channel order: [x (C), sin for (c, n) in C x K, cos for (c, n)]: c = 1, n = 4 is sin channel 2 + 1 * 2 + 1
    assert torch.allclose(f[:, 2 + 3], torch.sin(16 * math.pi * x[:, 1]))
    assert torch.allclose(f[:, 6 + 0], torch.cos(8 * math.pi * x[:, 0]))
    assert torch.equal(PixelFourier(())(x), x)


def test_unet_with_fourier_features_runs_and_sees_fine_detail():
    torch.manual_seed(0)
    plain, fourier = build(64, image_shape=(1, 8, 8), channels=8), build(64, image_shape=(1, 8, 8), channels=8,
                                                                         fourier=(3, 4))
    assert plain.conv_in.in_channels == 1 and fourier.conv_in.in_channels == 5
    x = torch.rand(4, 64) * 2 - 1
    out = fourier(x, torch.full((4,), 0.3))
    out.sum().backward()
    assert out.shape == (4, 64) and all(p.grad is not None for p in fourier.parameters() if p.requires_grad)
    # a shift of one grey level (1/8) moves sin(8 π x) by a full half period: the first layer's input changes sign
    f0, f1 = fourier.fourier(x.reshape(4, 1, 8, 8)), fourier.fourier((x + 0.125).reshape(4, 1, 8, 8))
    assert torch.allclose(f1[:, 1], -f0[:, 1], atol=1e-5)


def test_config_refuses_a_negative_exponent(tmp_path):
    import yaml

    raw = yaml.safe_load(open("config.yaml"))
    raw["models"]["unet"]["fourier"] = [3, -1]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="models.unet.fourier"):
        load_config(path)
