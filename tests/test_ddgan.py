"""The denoising diffusion GAN: its chain against the forward process, training, bit-for-bit resume and sampling
through the generic stages, and the config's check that a setting's steps are the run's own T."""

from __future__ import annotations

import pytest
import torch

from ttdm.config import ConfigError, validate_config
from ttdm.config.methods import settings_for
from ttdm.methods.ddgan import DDGAN, DDGANOptions, PosteriorChain, chain_abar
from ttdm.methods.base import Context
from ttdm.runs import load_run
from ttdm.samplers import SAMPLERS
from ttdm.stages.train import train

from test_train import MU, STD, assert_same_parts, make_data, make_spec, train_killed_at


def test_chain_pairs_have_the_forward_marginals_and_the_last_step_returns_x0():
    options = DDGANOptions(n_steps=4)
    method = DDGAN(options, Context(spec={"model_cfg": {}, "dataset": "d"}, dim=2, image_shape=None))
    abar = chain_abar(options)
    assert abar[0] == 1 and bool((abar[1:] < abar[:-1]).all()) and abar[-1] < 1e-4
    x0 = torch.full((200_000, 2), 0.7)
    k, x_prev, x_k = method.pairs(x0, torch.Generator().manual_seed(0))
    for level in (1, 4):
        rows = k == level
        assert x_k[rows].mean().item() == pytest.approx(0.7 * abar[level].sqrt().item(), abs=0.01)
        assert x_k[rows].var().item() == pytest.approx(1 - abar[level].item(), abs=0.01)
    chain = PosteriorChain(lambda x, z, t: torch.zeros_like(x), abar, nz=3)
    x1 = torch.randn(5, 2)
    assert torch.equal(chain.posterior(torch.ones(5, 2), x1, torch.ones(5, dtype=torch.long), torch.randn(5, 2)),
                       torch.ones(5, 2))  # σ² = 0 at k = 1: x_0 is the generator's prediction


def gan_spec(n_steps: int = 2, steps: int = 60) -> dict:
    spec = make_spec(steps=steps, checkpoint_every=10, log_every=10, ema_decay=0.9)
    spec["method"], spec["model_cfg"] = "ddgan", {"hidden": 32, "depth": 2}
    spec["training"] = {k: v for k, v in spec["training"].items() if k not in ("lr", "grad_clip")}
    spec["training"].update(n_steps=n_steps, lr_g=2e-3, lr_d=2e-3, r1_gamma=0.05, lazy_reg=2, n_val=128)
    return spec


def test_ddgan_trains_resumes_bit_for_bit_and_samples_in_t_steps(tmp_path, monkeypatch):
    data = make_data(tmp_path / "data")
    spec = gan_spec(n_steps=2, steps=300)
    train(spec, data, tmp_path / "full")
    run = load_run(tmp_path / "full")
    calls = []
    chain = run.sampling_object("ddgan")
    inner = chain.generator
    chain.generator = lambda *a: (calls.append(1), inner(*a))[1]
    x = SAMPLERS.get("ddgan")(chain, torch.randn(4000, 2, generator=torch.Generator().manual_seed(0)), 2,
                              generator=torch.Generator().manual_seed(1))
    assert len(calls) == 2 and torch.isfinite(x).all()
    # a single 2-D Gaussian N((1, −1), 0.1²) is found from N(0, I) noise in 300 short steps: the location within
    # 3 data stds and the spread within a factor 3 (a broken chain returns noise of std ~1 around 0); a GAN this
    # short underestimates the spread (std ≈ 0.05 measured)
    assert torch.allclose(x.mean(0), torch.tensor(MU, dtype=x.dtype), atol=3 * STD)
    assert bool(((x.std(0) > STD / 3) & (x.std(0) < 3 * STD)).all())
    with pytest.raises(ValueError, match="T = 2 steps cannot be sampled in 4"):
        SAMPLERS.get("ddgan")(chain, torch.randn(4, 2), 4)

    short = gan_spec(n_steps=2, steps=40)
    train(short, data, tmp_path / "a")
    train_killed_at(short, data, tmp_path / "b", 27, monkeypatch)
    assert train(short, data, tmp_path / "b")["resumed_from_step"] == 20
    assert_same_parts(tmp_path / "a", tmp_path / "b", ("generator", "discriminator"))


def test_a_setting_samples_only_the_runs_of_its_own_t(quick_config):
    quick_config["grid"] += [
        {"datasets": ["8gaussians"], "models": ["mlp"], "training": {"method": "ddgan", "n_steps": 4}, "tag": "gan4"},
        {"datasets": ["8gaussians"], "models": ["mlp"], "training": {"method": "ddgan", "n_steps": 2}, "tag": "gan2"}]
    quick_config["sampling"]["samplers"]["gan"] = {"kind": "ddgan", "steps": [2, 4]}
    config = validate_config(quick_config)
    assert settings_for(config, "8gaussians", "mlp-gan4") == [("gan", 4)]
    assert settings_for(config, "8gaussians", "mlp-gan2") == [("gan", 2)]
    assert ("gan", 4) not in settings_for(config, "8gaussians", "mlp")
    quick_config["sampling"]["samplers"]["gan"] = {"kind": "ddgan", "steps": [3], "methods": ["ddgan"]}
    with pytest.raises(ConfigError, match="n_steps = 4 generator steps, not 3"):
        validate_config(quick_config)


def test_the_conv_version_trains_and_samples_digit_shaped_images(tmp_path):
    data = make_data(tmp_path / "data", image=True, n=128)
    spec = gan_spec(n_steps=4, steps=6)
    spec["arch"], spec["model_cfg"] = "unet", {"channels": 8}
    train(spec, data, tmp_path / "run")
    run = load_run(tmp_path / "run")
    x = SAMPLERS.get("ddgan")(run.sampling_object("ddgan"), torch.randn(5, 64), 4)
    assert x.shape == (5, 64) and torch.isfinite(x).all()
