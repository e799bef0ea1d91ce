"""Latent diffusion: an autoencoder run, then a DDPM on its scaled latents that needs it; samples decoded to data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ttdm.config import likelihood_runs, validate_config
from ttdm.io import spec_hash
from ttdm.runs import load_run
from ttdm.stages.sample import generate
from ttdm.stages.train import train

from test_train import make_data, make_spec


def ae_spec() -> dict:
    spec = make_spec(steps=150, checkpoint_every=50, log_every=50)
    spec.update(model="ae", method="autoencoder", model_cfg={"hidden": 32, "depth": 2})
    spec["training"] = {k: v for k, v in spec["training"].items() if k != "ema_decay"} | {
        "ema_decay": 0.9, "latent_dim": 3, "lr": 3e-3}
    return spec


def latent_spec(arch: str = "mlp", **training) -> dict:
    spec = make_spec(steps=60, checkpoint_every=20, log_every=20)
    spec.update(model=f"{arch}-latent", method="latent_ddpm", arch=arch)
    if arch == "tt":
        spec["model_cfg"] = {"rank": 2, "degree": 4, "dtype": "float64"}
    spec["training"].update(autoencoder="ae", latent_dim=3, ae_hidden=32, ae_depth=2, **training)
    return spec


@pytest.mark.parametrize("arch,training", [("mlp", {}), ("tt", {"optimizer": "als", "steps": 2, "n_fit": 500})])
def test_latent_ddpm_trains_on_scaled_codes_and_samples_data_rows(tmp_path, arch, training):
    data = make_data(tmp_path / "data", image=True, n=256)  # 64-D rows
    train(ae_spec(), data, tmp_path / "ae")
    ae = load_run(tmp_path / "ae")
    x = torch.from_numpy(np.load(data / "train.npy"))
    with torch.no_grad():
        recon = ae.parts["decoder"](ae.parts["encoder"](x)[0])
    assert float(((x - recon) ** 2).mean()) < float(x.var(0).mean())  # it reconstructs better than the mean

    spec = latent_spec(arch, **training)
    spec["needs"] = {"autoencoder": {"model": "ae", "spec_hash": spec_hash(ae.spec)}}
    record = train(spec, data, tmp_path / "latent", needs={"autoencoder": tmp_path / "ae"})
    assert record["latent_scale"] > 0
    run = load_run(tmp_path / "latent")
    assert run.parts["denoiser"](torch.zeros(2, 3), torch.full((2,), 0.5)).shape == (2, 3)  # a model of latents
    # the decoder part is the autoencoder's, bit for bit
    assert all(torch.equal(run.parts["decoder"].decoder.state_dict()[k], v)
               for k, v in ae.parts["decoder"].state_dict().items())
    out = generate({"seed": 0, "setting": "ddim_5", "sampler": "ddim", "kind": "ddim", "steps": 5, "knobs": {},
                    "n_samples": 16, "batch_size": 8, "device": "cpu", "threads": 1},
                   tmp_path / "latent", tmp_path / "s.npz")
    samples = np.load(tmp_path / "s.npz")["x"]
    assert samples.shape == (16, 64) and np.isfinite(samples).all() and out["nfe"] == 5


def test_latent_runs_need_the_autoencoder_and_have_no_likelihood_job(quick_config):
    quick_config["models"]["autoencoder"] = {"arch": "mlp", "hidden": 64, "depth": 2}
    quick_config["grid"] += [
        {"datasets": ["digits"], "models": ["autoencoder"], "training": {"method": "autoencoder"}, "seeds": [0]},
        {"datasets": ["digits"], "models": ["mlp"], "training": {"method": "latent_ddpm", "ae_hidden": 64},
         "tag": "latent", "seeds": [0]}]
    config = validate_config(quick_config)
    from ttdm.config import needs_of

    assert needs_of(config, "digits", "mlp-latent") == {"autoencoder": "autoencoder"}
    assert not [r for r in likelihood_runs(config) if r[1] in ("mlp-latent", "autoencoder")]
