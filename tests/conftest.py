"""Shared test fixtures: the repository root and a tiny, complete config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def quick_config() -> dict:
    """The embedded quick preset, as a fresh dict."""
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def tiny_config_dict() -> dict:
    """A config small enough to run the whole pipeline in about a minute."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config.update(
        seeds=[0, 1],
        schedule={"kind": "linear", "T": 200, "beta_start": 0.0001, "beta_end": 0.05},
        datasets={
            "8gaussians": {"kind": "8gaussians", "n_train": 500, "n_test": 200},
            "digits": {"kind": "digits", "n_train": 300, "n_test": 200, "n_eval": 200},
        },
        models={"mlp": {"arch": "mlp", "hidden": 32, "depth": 2}, "unet": {"arch": "unet", "channels": 8},
                "tt": {"arch": "tt", "rank": 2, "degree": 4, "dtype": "float64"},
                "sampler-floor": {"arch": "mixture_eps"}},
        optimizers={"als": {"optimizer": "als", "steps": 2, "n_fit": 500, "log_every": 1, "checkpoint_every": 1},
                    "rgd": {"optimizer": "rgd", "steps": 4, "n_fit": 500, "log_every": 1, "checkpoint_every": 2}},
        grid=[{"datasets": ["8gaussians"], "models": ["mlp"]}, {"datasets": ["digits"], "models": ["unet"],
                                                              "training": {"steps": 40}, "likelihood": "elbo"},
              {"datasets": ["8gaussians"], "models": ["tt"], "optimizers": ["als", "rgd"]},
              {"datasets": ["8gaussians"], "models": ["tt"], "sweep": {"rank": [2, 3]}, "optimizers": ["als"],
               "seeds": [0]},
              {"datasets": ["8gaussians"], "models": ["tt"], "optimizers": ["als"],
               "training": {"method": "eps_star"}, "tag": "iso", "seeds": [0]},
              {"datasets": ["8gaussians"], "models": ["sampler-floor"], "training": {"method": "analytic"},
               "seeds": [0]},
              {"datasets": ["8gaussians"], "models": ["mlp"], "training": {"method": "vdm", "gamma_hidden": 16},
               "tag": "vdm", "seeds": [0]}],
        landscape={"dataset": "8gaussians", "models": ["mlp", "tt-als"], "seed": 0, "n": 5, "points": 256},
        budget={"datasets": ["8gaussians"], "models": ["mlp"], "steps": [50, 200]},
        trilemma={"datasets": ["8gaussians", "digits"], "models": ["mlp", "mlp-vdm", "tt-als", "unet", "sampler-floor"],
                  "settings": ["ddpm_200", "ddim_20"]},
        training={"steps": 200, "batch_size": 64, "lr": 0.002, "checkpoint_every": 50, "log_every": 20},
        sampling={"n_samples": 200, "samplers": {"ddpm": {"kind": "ddpm", "steps": [200]},
                                                 "ddim": {"kind": "ddim", "steps": [5, 20]}}, "main": "ddpm_200"},
        bench={"repeats": 1, "train_steps": 5, "n_samples": 50},
        classifier={"datasets": ["digits"], "epochs": 20, "min_accuracy": 0.9},  # 300 train images: about 95 %
    )
    config["paper"] = {**config["paper"], "main_models": ["mlp", "unet", "tt-als"]}
    config.pop("performer")  # the Performer study needs a FAVOR+ U-Net run, which the tiny grid does not train
    config.pop("dsno")  # the DSNO study needs students, which the tiny grid does not train
    return config


@pytest.fixture
def tiny_config() -> dict:
    return tiny_config_dict()


@pytest.fixture(scope="session")
def tiny_config_module() -> dict:
    return tiny_config_dict()
