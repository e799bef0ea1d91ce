"""The sampling stage: files, shapes, exact NFE counts, seeding and determinism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ttdm.generate import generate, sampler_seed
from ttdm.samplers import SAMPLERS
from ttdm.train import train

from test_train import make_data, make_spec


def toy_sampler(model, x, schedule, steps, *, generator=None, scale=1.0, keep_noise=False):
    """A test-only sampler: ``steps`` model calls and one generator draw per call; returns x_T if keep_noise."""
    x_T = x
    for k in range(steps):
        t = torch.full((x.shape[0],), 1.0 - k / steps)
        x = x - 0.1 * scale * model(x, t) + 0.01 * torch.randn(x.shape, generator=generator, device=x.device)
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


def make_gen_spec(samplers: dict, **kw) -> dict:
    return {"seed": 3, "n_samples": 10, "batch_size": 4, "device": "cpu", "threads": 1, "samplers": samplers, **kw}


def test_writes_samples_with_exact_nfe(run_dir: Path, tmp_path: Path) -> None:
    spec = make_gen_spec({"a": {"kind": "_toy", "steps": [1, 3]}, "b": {"kind": "_toy", "steps": [2], "scale": 2.0}})
    record = generate(spec, run_dir, tmp_path)
    with np.load(tmp_path / "samples.npz") as npz:
        arrays = dict(npz)
    assert sorted(arrays) == ["a_1", "a_3", "b_2"]
    assert all(a.shape == (10, 2) and a.dtype == np.float32 and np.isfinite(a).all() for a in arrays.values())
    assert json.loads((tmp_path / "samples.json").read_text()) == json.loads(json.dumps(record))
    entries = {e["key"]: e for e in record["entries"]}
    for key, (name, steps) in {"a_1": ("a", 1), "a_3": ("a", 3), "b_2": ("b", 2)}.items():
        e = entries[key]
        assert (e["sampler"], e["kind"], e["steps"], e["n"]) == (name, "_toy", steps, 10)
        assert e["nfe"] == steps and isinstance(e["nfe"], int)  # 10 samples in batches 4, 4, 2
        assert e["wall_s"] > 0 and e["time_per_sample_s"] == pytest.approx(e["wall_s"] / 10)
    assert record["device"]["device"] == "cpu"
    assert json.loads((tmp_path / "spec.json").read_text()) == spec


def test_starting_noise_is_seeded_by_seed_name_and_steps(run_dir: Path, tmp_path: Path) -> None:
    samplers = {"a": {"kind": "_toy", "steps": [2], "keep_noise": True}, "c": {"kind": "_toy", "steps": [2],
                                                                             "keep_noise": True}}
    generate(make_gen_spec(samplers), run_dir, tmp_path)
    with np.load(tmp_path / "samples.npz") as npz:
        a, c = npz["a_2"], npz["c_2"]
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
    spec = make_gen_spec({"a": {"kind": "_toy", "steps": [3]}})
    generate(spec, run_dir, tmp_path / "one")
    generate(spec, run_dir, tmp_path / "two")
    with np.load(tmp_path / "one" / "samples.npz") as one, np.load(tmp_path / "two" / "samples.npz") as two:
        np.testing.assert_array_equal(one["a_3"], two["a_3"])


def test_bad_sampler_settings_are_refused(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown sampler 'nope'; allowed: .*_toy"):
        generate(make_gen_spec({"a": {"kind": "nope", "steps": [3]}}), run_dir, tmp_path)
    with pytest.raises(ValueError, match=r"steps must be positive integers, got \[0\]"):
        generate(make_gen_spec({"a": {"kind": "_toy", "steps": [0]}}), run_dir, tmp_path)
    assert not (tmp_path / "samples.npz").exists()


@pytest.mark.skipif("ddim" not in SAMPLERS or "ddpm" not in SAMPLERS, reason="samplers ddim/ddpm not written yet")
def test_registered_samplers_use_one_evaluation_per_step(run_dir: Path, tmp_path: Path) -> None:
    spec = make_gen_spec({"ddpm": {"kind": "ddpm", "steps": [50]}, "ddim": {"kind": "ddim", "steps": [5, 10]}})
    record = generate(spec, run_dir, tmp_path)
    assert {e["key"]: e["nfe"] for e in record["entries"]} == {"ddpm_50": 50, "ddim_5": 5, "ddim_10": 10}
