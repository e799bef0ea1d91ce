"""Training to convergence (issue 9): the learning-rate schedule, input Fourier features, and the training-budget
study's expansion of the config into runs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import ttdm.config as cfg
from ttdm.config.schema import ConfigError, validate_config
from ttdm.methods.regression import RegressionMethod
from ttdm.models import MODELS
from ttdm.models.embeddings import FourierFeatures
from ttdm.stages.train import lr_factor, train

from test_train import make_data, make_spec


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data(tmp_path_factory.mktemp("data"))


# ---- the learning-rate schedule -------------------------------------------------------------------------------

def test_lr_factor_closed_forms() -> None:
    assert [lr_factor("constant", 4, n, 20) for n in (1, 2, 4, 5, 20)] == [0.25, 0.5, 1.0, 1.0, 1.0]
    assert lr_factor("cosine", 4, 5, 20) == 1.0  # the first step after the warm-up has the full rate
    # ½(1 + cos(π (n − W − 1)/(S − W))) halfway: n − W − 1 = (S − W)/2
    assert lr_factor("cosine", 4, 13, 20) == pytest.approx(0.5)
    last = lr_factor("cosine", 4, 20, 20)
    assert 0 < last == pytest.approx(0.5 * (1 + math.cos(math.pi * 15 / 16)))
    assert lr_factor("cosine", 0, 1, 10) == 1.0
    with pytest.raises(ValueError, match="constant, cosine"):
        lr_factor("linear", 0, 3, 10)


def test_the_loop_sets_every_optimizer_rate_from_the_step(data_dir: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    step = RegressionMethod.train_step

    def recording(self, parts, optimizers, batch, generator):  # type: ignore[no-untyped-def]
        seen.append(optimizers["denoiser"].param_groups[0]["lr"])
        return step(self, parts, optimizers, batch, generator)

    monkeypatch.setattr(RegressionMethod, "train_step", recording)
    train(make_spec(lr=0.01, lr_schedule="cosine", warmup=5), data_dir, tmp_path)
    expected = [0.01 * lr_factor("cosine", 5, n, 30) for n in range(1, 31)]
    assert seen == pytest.approx(expected)


def test_a_cosine_run_resumes_bit_for_bit(data_dir: Path, tmp_path: Path) -> None:
    spec = make_spec(lr_schedule="cosine", warmup=3)
    train(spec, data_dir, tmp_path / "whole")
    train(spec, data_dir, tmp_path / "split", stop_after=14)
    train(spec, data_dir, tmp_path / "split")
    whole = torch.load(tmp_path / "whole" / "model.pt", weights_only=True)
    split = torch.load(tmp_path / "split" / "model.pt", weights_only=True)
    for name, value in whole["parts"]["denoiser"].items():
        assert torch.equal(value, split["parts"]["denoiser"][name]), name


# ---- input Fourier features ------------------------------------------------------------------------------------

def test_fourier_features_are_sines_and_cosines_of_log_spaced_frequencies() -> None:
    x = torch.tensor([[0.5, -1.0]])
    phi = FourierFeatures(2, 3, max_freq=4.0)
    freqs = [math.pi, 2 * math.pi, 4 * math.pi]  # π · 4^(k/2)
    angles = [xd * w for xd in (0.5, -1.0) for w in freqs]  # coordinate-major
    expected = [0.5, -1.0, *map(math.sin, angles), *map(math.cos, angles)]
    assert phi.out_dim == 2 * (1 + 2 * 3)
    torch.testing.assert_close(phi(x)[0], torch.tensor(expected), rtol=1e-5, atol=1e-6)
    assert torch.equal(FourierFeatures(2, 0)(x), x)


@pytest.mark.parametrize("arch", ["mlp", "resnet"])
def test_networks_take_fourier_features(arch: str) -> None:
    torch.manual_seed(0)
    plain, featured = MODELS.get(arch)(3), MODELS.get(arch)(3, fourier=4)
    assert featured(torch.randn(5, 3), torch.rand(5)).shape == (5, 3)
    assert sum(p.numel() for p in featured.parameters()) > sum(p.numel() for p in plain.parameters())


# ---- the training-budget study -----------------------------------------------------------------------------------

def test_budget_runs_are_grid_runs_with_the_budget_and_the_main_setting(tiny_config: dict) -> None:
    tiny_config["grid"][0]["training"] = {"lr": 0.004}
    config = validate_config(tiny_config)
    names = {m for _, m, _ in cfg.runs(config)}
    assert "mlp-steps50-budget" in names
    assert "mlp-steps200-budget" not in names  # 200 steps is the grid run's own budget: that run is reused
    from ttdm.report.studies.budget import entries

    chosen = [(e["model"], e["steps"], e["main"], e["train"]) for e in entries(config) if e["seed"] == 0]
    assert ("mlp", 200, False, "results/runs/8gaussians/mlp/0/train.json") in chosen
    assert ("mlp", 50, False, "results/runs/8gaussians/mlp-steps50-budget/0/train.json") in chosen
    spec = cfg.run_spec(config, "8gaussians", "mlp-steps50-budget", 0)
    main = cfg.run_spec(config, "8gaussians", "mlp", 0)
    assert spec["training"]["steps"] == 50 and spec["training"]["lr"] == 0.004  # the grid block's own settings
    assert {k: v for k, v in spec["training"].items() if k != "steps"} == \
        {k: v for k, v in main["training"].items() if k != "steps"}
    assert spec["model_cfg"] == main["model_cfg"] and spec["variant"]["budget_steps"] == 50
    assert cfg.run_settings(config, "8gaussians", "mlp-steps50-budget") == [cfg.main_setting(config)]
    assert [s for _, m, s in cfg.runs(config) if m == "mlp-steps50-budget"] == [0]


def test_a_budget_of_an_untrained_pair_is_refused(tiny_config: dict) -> None:
    tiny_config["budget"] = {"datasets": ["digits"], "models": ["mlp"], "steps": [10, 20]}
    with pytest.raises(ConfigError, match="budget: model 'mlp' is not trained on dataset 'digits'"):
        validate_config(tiny_config)


def test_a_block_may_name_its_sampler_settings(tiny_config: dict) -> None:
    tiny_config["grid"][0]["settings"] = ["ddim_20"]
    config = validate_config(tiny_config)
    assert cfg.run_settings(config, "8gaussians", "mlp") == ["ddim_20"]
    tiny_config["grid"][0]["settings"] = ["ddim_30"]
    with pytest.raises(ConfigError, match=r"grid\.0\.settings: 'ddim_30' is not a configured sampler setting"):
        validate_config(tiny_config)


# ---- the study's report ---------------------------------------------------------------------------------------

def _write_run(root: Path, name: str, hq: float, nll: float, wall: float) -> dict:
    import json

    run = root / name
    run.mkdir(parents=True)
    (run / "train.json").write_text(json.dumps({"wall_s": wall}))
    (run / "metrics.csv").write_text(f"metric,value\nswd,0.1\nhq_percent,{hq}\n")
    (run / "nll.csv").write_text(f"metric,value\nnll,{nll}\n")
    return {"train": run / "train.json", "metrics": run / "metrics.csv", "likelihood": run / "nll.csv"}


def test_the_budget_report_finds_the_fewest_converged_steps_and_the_main_gap(tmp_path: Path) -> None:
    import json

    from ttdm.report.budget import steps_to_converge, summarise, collect
    from ttdm.report.studies.budget import findings

    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"mixture": {"weights": [1.0], "means": [[0.0]], "stds": [[1.0]]}}))
    curve = {500: (40.0, 2.0), 1000: (80.0, 1.2), 2000: (92.0, 1.0), 4000: (95.0, 0.95)}  # hq %, NLL
    entries = []
    for steps, (hq, nll) in curve.items():
        files = _write_run(tmp_path, f"b{steps}", hq, nll, steps / 100)
        entries.append({"dataset": "8g", "model": "mlp", "seed": 0, "steps": steps, "main": False, "meta": meta,
                        **files})
    files = _write_run(tmp_path, "main", 60.0, 1.5, 15.0)  # a main run 37 % below the longest budget
    entries.append({"dataset": "8g", "model": "mlp", "seed": 0, "steps": 1500, "main": True, "meta": meta, **files})
    runs = collect(entries)
    assert list(runs["metric"].unique()) == ["hq_percent"]
    reach = steps_to_converge(summarise(runs)).iloc[0]
    assert reach["steps"] == 2000 and reach["train_s"] == 20.0  # 92 is within 10 % of 95, 80 is not
    assert reach["main_gap"] == pytest.approx((60 - 95) / 95) and not reach["main_converged"]
    assert not reach["still_improving"]  # 92 → 95: within 10 %
    text = " ".join(findings(steps_to_converge(summarise(runs))))
    assert "0 of 1 main runs of the training-budget study are within 10" in text and "(-37" in text
    assert "On the test NLL 0 of 1 are within 0.1~nats/dim" in text and "largest gap is 0.550~nats/dim" in text


def test_a_curve_still_rising_at_the_longest_budget_is_flagged(tmp_path: Path) -> None:
    import json

    from ttdm.report.budget import steps_to_converge, summarise, collect

    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({}))  # not a mixture: SWD, lower is better
    entries = []
    for steps, swd in {100: 1.0, 200: 0.5, 400: 0.2}.items():
        run = tmp_path / f"b{steps}"
        run.mkdir()
        (run / "train.json").write_text(json.dumps({"wall_s": 1.0}))
        (run / "m.csv").write_text(f"metric,value\nswd,{swd}\n")
        entries.append({"dataset": "cb", "model": "resnet", "seed": 0, "steps": steps, "main": False,
                        "train": run / "train.json", "metrics": run / "m.csv", "likelihood": None, "meta": meta})
    reach = steps_to_converge(summarise(collect(entries))).iloc[0]
    assert reach["metric"] == "swd" and reach["still_improving"] and reach["steps"] == 400


# ---- the DDIM explosion of bounded-output networks ------------------------------------------------------------------

@pytest.mark.parametrize("arch, dim, shape", [("resnet", 2, None), ("unet", 64, (1, 8, 8))])
def test_a_linear_skip_lets_the_output_follow_large_inputs(arch: str, dim: int, shape) -> None:
    """ε* ≈ x in the tails of N(0, I) at t ≈ 1. The output norm layer bounds these networks' outputs, so without the
    skip ε_θ saturates (DDIM then multiplies the missed part of x by up to 1/√ᾱ_T); with it ε_θ grows with x."""
    torch.manual_seed(0)
    x = torch.randn(4, dim)
    t = torch.ones(4)
    hp = {"channels": 8} if arch == "unet" else {}
    bounded = MODELS.get(arch)(dim, shape, linear_skip=False, **hp)
    linear = MODELS.get(arch)(dim, shape, **hp)
    with torch.no_grad():
        grow_bounded = bounded(100 * x, t).norm() / bounded(x, t).norm()
        grow_linear = linear(100 * x, t).norm() / linear(x, t).norm()
    assert grow_bounded < 5 and grow_linear > 20


# ---- time sampling ------------------------------------------------------------------------------------------------

def test_low_t_sampling_draws_steps_towards_the_data_and_validation_stays_uniform() -> None:
    from ttdm.methods.base import Context
    from ttdm.methods.ddpm import DDPM
    from ttdm.methods.regression import RegressionOptions

    schedule = {"kind": "linear", "T": 100, "beta_start": 1e-4, "beta_end": 0.02}
    x0 = torch.zeros(200_000, 1)
    ctx = Context(spec={"schedule": schedule}, dim=1, image_shape=None)
    low = DDPM(RegressionOptions(t_sampling="low"), ctx)
    _, t, _ = low.triplets(x0, torch.Generator().manual_seed(0))
    i = (t * 100).round() - 1  # t = (i + 1)/T
    # i = ⌊T u²⌋: P(i < k) = P(u < √(k/T)) = √(k/T); E[i] ≈ T/3 − 1/2
    assert float((i < 25).double().mean()) == pytest.approx(0.5, abs=0.005)
    assert float(i.mean()) == pytest.approx(100 / 3 - 0.5, abs=0.2)
    uniform = DDPM(RegressionOptions(), ctx)
    for a, b in zip(low.triplets(x0[:50], torch.Generator().manual_seed(3), t_sampling="uniform"),
                    uniform.triplets(x0[:50], torch.Generator().manual_seed(3))):
        assert torch.equal(a, b)  # validation and the landscape draw uniformly, whatever trains
