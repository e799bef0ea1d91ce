"""The Method contract with a method of two parts and two optimizers and a sampler of its own (a tiny GAN).

It is registered for these tests only: it trains through the generic loop (batches, EMA of the part it names, one
checkpoint of both parts, both optimizers and the generator, bit-identical resume), is loaded by ``ttdm.runs``,
samples through the generic sampling stage with its own protocol, and refuses the denoiser samplers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import torch
from torch import nn

from ttdm.config import ConfigError, validate_config
from ttdm.methods import METHODS
from ttdm.methods.base import Method
from ttdm.options import option
from ttdm.runs import load_run
from ttdm.samplers import SAMPLERS
from ttdm.stages.sample import generate
from ttdm.stages.train import train

from test_generate import make_gen_spec
from test_train import make_data, make_spec, train_killed_at


@dataclass(frozen=True)
class GANOptions:
    batch_size: int = option(32, "rows per step", min=1)
    lr: float = option(2e-3, "learning rate of both parts", gt=0)
    noise_dim: int = option(2, "size of z", min=1)


class TinyGAN(Method):
    """Generator G(z) and discriminator D(x), non-saturating losses, one step of each per training step."""

    Options: ClassVar[type] = GANOptions
    provides: ClassVar[tuple[str, ...]] = ("generator",)

    def build(self) -> dict[str, nn.Module]:
        d, z = self.ctx.dim, self.options.noise_dim
        return {"generator": nn.Sequential(nn.Linear(z, 16), nn.SiLU(), nn.Linear(16, d)),
                "discriminator": nn.Sequential(nn.Linear(d, 16), nn.SiLU(), nn.Linear(16, 1))}

    def ema_parts(self) -> tuple[str, ...]:
        return ("generator",)

    def optimizers(self, parts):
        return {name: torch.optim.Adam(part.parameters(), lr=self.options.lr, betas=(0.5, 0.9))
                for name, part in parts.items()}

    def train_step(self, parts, optimizers, batch, generator) -> float:
        g, d = parts["generator"], parts["discriminator"]
        z = torch.randn(batch.shape[0], self.options.noise_dim, generator=generator)
        fake = g(z)
        loss_d = nn.functional.softplus(-d(batch)).mean() + nn.functional.softplus(d(fake.detach())).mean()
        optimizers["discriminator"].zero_grad(set_to_none=True)
        loss_d.backward()
        optimizers["discriminator"].step()
        loss_g = nn.functional.softplus(-d(fake)).mean()
        optimizers["generator"].zero_grad(set_to_none=True)
        loss_g.backward()
        optimizers["generator"].step()
        return float(loss_d.detach() + loss_g.detach())

    def validate(self, parts) -> dict[str, float]:
        z = torch.randn(256, self.options.noise_dim, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            return {"mean_error": float((parts["generator"](z).mean(0) - self.ctx.data.mean(0)).norm())}

    def sampling_object(self, parts, protocol):
        return lambda x: parts["generator"](x[:, : self.options.noise_dim])  # the starting noise is z


def one_step(generator_fn, x, steps, *, generator=None):
    """A test sampler of protocol "generator": one evaluation of the generator."""
    return generator_fn(x)


one_step.protocol = "generator"


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    monkeypatch.setitem(METHODS.load()._items, "_gan", TinyGAN)
    monkeypatch.setitem(METHODS._options, "_gan", GANOptions)
    monkeypatch.setitem(SAMPLERS.load()._items, "_one", one_step)
    monkeypatch.setitem(SAMPLERS._options, "_one", None)


def gan_spec(**training) -> dict:
    spec = make_spec(**training)
    spec["method"] = "_gan"
    spec["training"] = {k: v for k, v in spec["training"].items()
                        if k in ("steps", "ema_decay", "checkpoint_every", "log_every", "batch_size")}
    spec["training"]["lr"] = 2e-3
    return spec


def test_two_parts_two_optimizers_resume_bit_for_bit(tmp_path, monkeypatch):
    data = make_data(tmp_path / "data")
    spec = gan_spec()  # 30 steps, checkpoints every 7
    full = train(spec, data, tmp_path / "full")
    n_params = sum(p.numel() for part in _ctx_method(spec).build().values() for p in part.parameters())
    assert full["n_params"] == n_params

    train_killed_at(spec, data, tmp_path / "parts", 17, monkeypatch)
    ckpt = torch.load(tmp_path / "parts" / "checkpoints" / "ckpt.pt", weights_only=True)
    assert ckpt["step"] == 14 and set(ckpt["optimizers"]) == {"generator", "discriminator"}
    assert set(ckpt["parts"]) == {"generator", "discriminator"} and set(ckpt["ema"]) == {"generator"}
    record = train(spec, data, tmp_path / "parts")
    assert record["resumed_from_step"] == 14

    a = torch.load(tmp_path / "full" / "model.pt", weights_only=True)["parts"]
    b = torch.load(tmp_path / "parts" / "model.pt", weights_only=True)["parts"]
    for part in ("generator", "discriminator"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part
    ca = torch.load(tmp_path / "full" / "checkpoints" / "ckpt.pt", weights_only=True)
    cb = torch.load(tmp_path / "parts" / "checkpoints" / "ckpt.pt", weights_only=True)
    for name in ("generator", "discriminator"):
        for sa, sb in zip(ca["optimizers"][name]["state"].values(), cb["optimizers"][name]["state"].values()):
            assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert (tmp_path / "full" / "loss.csv").read_text().split("\n")[0] == "step,loss,wall_s,mean_error"
    rows_a = [r.split(",")[:2] for r in (tmp_path / "full" / "loss.csv").read_text().split("\n")[1:]]
    rows_b = [r.split(",")[:2] for r in (tmp_path / "parts" / "loss.csv").read_text().split("\n")[1:]]
    assert rows_a == rows_b


def _ctx_method(spec):
    from ttdm.methods.base import Context

    return TinyGAN(GANOptions(), Context(spec=spec, dim=2, image_shape=None))


def test_its_own_sampler_samples_it_and_denoiser_samplers_are_refused(tmp_path):
    run_dir = tmp_path / "run"
    train(gan_spec(steps=5, checkpoint_every=5), make_data(tmp_path / "data"), run_dir)
    run = load_run(run_dir)
    assert set(run.parts) == {"generator", "discriminator"} and not run.parts["generator"].training
    record = generate(make_gen_spec("one", "_one", 1), run_dir, tmp_path / "one_1.npz")
    assert record["nfe"] == 1  # one evaluation of the generator per sample
    with np.load(tmp_path / "one_1.npz") as npz:
        assert npz["x"].shape == (10, 2) and np.isfinite(npz["x"]).all()
    with pytest.raises(ValueError, match=r"cannot sample .*provides generator, not 'denoiser'"):
        generate(make_gen_spec("ddim", "ddim", 5), run_dir, tmp_path / "ddim_5.npz")


def test_the_config_refuses_a_sampler_the_method_cannot_use(quick_config):
    quick_config["grid"] = [{"datasets": ["8gaussians"], "models": ["mlp"], "training": {"method": "_gan"}}]
    quick_config["training"] = {"steps": 10}
    quick_config["sampling"]["samplers"] = {"ddim": {"kind": "ddim", "steps": [10], "methods": ["_gan"]},
                                            "one": {"kind": "_one", "steps": [1]}}
    quick_config["sampling"].pop("main")
    quick_config["paper"].pop("main_models")
    quick_config.pop("landscape")
    quick_config.pop("budget")
    quick_config.pop("trilemma")
    quick_config.pop("performer")  # studies of runs this cut grid does not train
    quick_config.pop("dsno", None)
    with pytest.raises(ConfigError) as err:
        validate_config(quick_config)
    assert "sampling.samplers.ddim: cannot sample 'mlp' on '8gaussians' (method '_gan') with 10 steps: " \
           "method provides generator, not 'denoiser'" in str(err.value)
    del quick_config["sampling"]["samplers"]["ddim"]["methods"]  # by default a sampler samples what it can
    quick_config["sampling"]["samplers"]["ddpm"] = {"kind": "ddpm", "steps": [100], "methods": ["ddpm"]}
    quick_config["grid"].append({"datasets": ["8gaussians"], "models": ["resnet"]})
    config = validate_config(quick_config)
    from ttdm.config import run_settings

    assert run_settings(config, "8gaussians", "mlp") == ["one_1"]
    assert run_settings(config, "8gaussians", "resnet") == ["ddim_10", "ddpm_100"]
