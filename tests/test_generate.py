"""The sampling stage: one job per setting; files, shapes, exact NFE counts, seeding and determinism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ttdm.samplers import SAMPLERS
from ttdm.stages.sample import generate, sampler_seed
from ttdm.stages.train import train

from test_train import make_data, make_spec


def toy_sampler(denoiser, x, steps, *, generator=None, scale=1.0, keep_noise=False):
    """A test-only sampler: ``steps`` model calls and one generator draw per call; returns x_T if keep_noise."""
    x_T = x
    for k in range(steps):
        t = torch.full((x.shape[0],), 1.0 - k / steps)
        x = x - 0.1 * scale * denoiser(x, t) + 0.01 * torch.randn(x.shape, generator=generator, device=x.device)
    return x_T if keep_noise else x


@pytest.fixture(autouse=True)
def toy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SAMPLERS.load()._items, "_toy", toy_sampler)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gen")
    run = root / "run"
    train(make_spec(steps=5, checkpoint_every=5), make_data(root / "data", n=64), run)
    return run


def make_gen_spec(name: str, kind: str, steps: int, **knobs) -> dict:
    return {"seed": 3, "setting": f"{name}_{steps}", "sampler": name, "kind": kind, "steps": steps, "knobs": knobs,
            "n_samples": 10, "batch_size": 4, "device": "cpu", "threads": 1}


def load(path: Path) -> np.ndarray:
    with np.load(path) as npz:
        return npz["x"]


def test_writes_samples_with_exact_nfe(run_dir: Path, tmp_path: Path) -> None:
    for name, steps, knobs in (("a", 1, {}), ("a", 3, {}), ("b", 2, {"scale": 2.0})):
        spec = make_gen_spec(name, "_toy", steps, **knobs)
        out = tmp_path / f"{name}_{steps}.npz"
        record = generate(spec, run_dir, out)
        x = load(out)
        assert x.shape == (10, 2) and x.dtype == np.float32 and np.isfinite(x).all()
        assert json.loads(out.with_suffix(".json").read_text()) == json.loads(json.dumps(record))
        assert (record["key"], record["sampler"], record["kind"], record["steps"], record["n"]) == (
            f"{name}_{steps}", name, "_toy", steps, 10)
        assert record["nfe"] == steps and isinstance(record["nfe"], int)  # 10 samples in batches 4, 4, 2
        assert record["wall_s"] > 0 and record["time_per_sample_s"] == pytest.approx(record["wall_s"] / 10)
        assert record["device"]["device"] == "cpu" and record["spec"] == spec
        assert (record["dataset"], record["model"], record["seed"]) == ("gauss", "mlp", 0)


def test_starting_noise_is_seeded_by_seed_name_and_steps(run_dir: Path, tmp_path: Path) -> None:
    generate(make_gen_spec("a", "_toy", 2, keep_noise=True), run_dir, tmp_path / "a.npz")
    generate(make_gen_spec("c", "_toy", 2, keep_noise=True), run_dir, tmp_path / "c.npz")
    a, c = load(tmp_path / "a.npz"), load(tmp_path / "c.npz")
    # by hand: batches of 4, 4, 2, each x_T drawn first, then 2 sampler draws of the batch's shape
    g = torch.Generator().manual_seed(sampler_seed(3, "a", 2))
    expected = []
    for b in (4, 4, 2):
        expected.append(torch.randn((b, 2), generator=g))
        for _ in range(2):
            torch.randn((b, 2), generator=g)
    np.testing.assert_array_equal(a, torch.cat(expected).numpy())
    assert not np.allclose(a, c)  # another sampler name: other noise
    assert len({sampler_seed(3, "a", 2), sampler_seed(3, "a", 3), sampler_seed(4, "a", 2)}) == 3


def test_is_deterministic(run_dir: Path, tmp_path: Path) -> None:
    spec = make_gen_spec("a", "_toy", 3)
    generate(spec, run_dir, tmp_path / "one.npz")
    generate(spec, run_dir, tmp_path / "two.npz")
    np.testing.assert_array_equal(load(tmp_path / "one.npz"), load(tmp_path / "two.npz"))


def test_bad_sampler_settings_are_refused(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown sampler 'nope'; allowed: .*_toy"):
        generate(make_gen_spec("a", "nope", 3), run_dir, tmp_path / "x.npz")
    with pytest.raises(ValueError, match=r"must be positive, got 10, 4 and 0"):
        generate(make_gen_spec("a", "_toy", 0), run_dir, tmp_path / "x.npz")
    with pytest.raises(ValueError, match=r"cannot sample .*: 60 steps exceed the schedule's T = 50"):
        generate(make_gen_spec("a", "ddim", 60), run_dir, tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()


def test_registered_samplers_use_one_evaluation_per_step(run_dir: Path, tmp_path: Path) -> None:
    for kind, steps in (("ddpm", 50), ("ddim", 5), ("ddim", 10)):
        record = generate(make_gen_spec(kind, kind, steps), run_dir, tmp_path / f"{kind}_{steps}.npz")
        assert record["nfe"] == steps


def test_clip_x0_in_the_spec_clips_the_data_prediction_of_generic_samplers(run_dir: Path, tmp_path: Path) -> None:
    plain = load_after(generate(make_gen_spec("ddim", "ddim", 10), run_dir, tmp_path / "p.npz"), tmp_path / "p.npz")
    spec = {**make_gen_spec("ddim", "ddim", 10), "clip_x0": [-0.05, 0.05]}
    clipped = load_after(generate(spec, run_dir, tmp_path / "c.npz"), tmp_path / "c.npz")
    assert np.abs(plain).max() > 0.1  # the toy run's samples leave the range...
    assert np.abs(clipped).max() <= 0.05 + 1e-6  # ...and DDIM's last step returns the clipped x̂_0


def load_after(record: dict, path: Path) -> np.ndarray:
    assert record["nfe"] == 10  # clipping costs no network evaluation
    return load(path)


def test_sample_specs_clip_pixel_data_only() -> None:
    from ttdm.config import load_config
    from ttdm.config.specs import sample_spec
    from ttdm.methods import METHODS

    config = load_config("config.yaml")
    assert sample_spec(config, "digits", 0, "ddim_10")["clip_x0"] == [-1.0, 1.0]
    assert "clip_x0" not in sample_spec(config, "8gaussians", 0, "ddim_10")  # mixtures: unbounded, unchanged spec
    config["sampling"]["clip_x0"] = False
    assert "clip_x0" not in sample_spec(config, "digits", 0, "ddim_10")
    assert METHODS.get("ddpm").denoises_data and not METHODS.get("latent_ddpm").denoises_data  # latents: never
