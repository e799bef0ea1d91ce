"""The Performer study: FAVOR+'s error on a U-Net's attention inputs (the error stage), the attention benchmark's
files and fits, the study's tables, targets and findings from synthetic result files, and the config block's
checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from test_train import make_data, make_spec
from ttdm.config import ConfigError, load_config, validate_config
from ttdm.models import MODELS
from ttdm.models.attention import favor_attention
from ttdm.report import performer as perf
from ttdm.report.files import PaperFiles
from ttdm.report.performer_output import write_performer
from ttdm.report.studies import check_written
from ttdm.report.studies import performer as study
from ttdm.schedules import make_schedule
from ttdm.stages import attention_bench as bench_stage
from ttdm.stages.attention_error import attention_error, capture_qkv, error_table
from ttdm.stages.train import train

SCHEDULE = {"kind": "linear", "T": 100, "beta_start": 1e-4, "beta_end": 0.05}


def tiny_unet(attention: str = "softmax") -> torch.nn.Module:
    torch.manual_seed(0)
    return MODELS.get("unet")(64, (1, 8, 8), channels=8, time_dim=16, attention=attention).eval()


def images(n: int = 16) -> torch.Tensor:
    return 2 * torch.rand(n, 64, generator=torch.Generator().manual_seed(1)) - 1


# ---- the error stage -----------------------------------------------------------------------------------------------
def test_error_falls_as_features_grow_on_a_random_unet() -> None:
    spec = {"times": [0.1, 0.9], "features": [4, 64, 1024], "draws": 3, "seed": 0}
    table = error_table(tiny_unet(), make_schedule(SCHEDULE), images(), spec)
    assert list(table.columns) == ["t", "features", "draw", "rel_error", "tokens", "dim_head"]
    assert len(table) == 2 * 3 * 3 and set(table["tokens"]) == {16} and set(table["dim_head"]) == {16}  # 4x4, 2c
    for _, g in table.groupby("t"):
        curve = g.groupby("features")["rel_error"].mean()
        assert curve.is_monotonic_decreasing, curve
        assert curve.iloc[-1] < 0.5 * curve.iloc[0]  # 256 times the features: well below half the error
    again = error_table(tiny_unet(), make_schedule(SCHEDULE), images(), spec)
    pd.testing.assert_frame_equal(table, again)  # seeded noise and projections


def test_the_hook_captures_what_the_attention_receives() -> None:
    # FAVOR+ with the performer U-Net's own projection on the captured q, k, v is the module's own output
    model = tiny_unet("performer")
    x, t = images(4), torch.full((4,), 0.5)
    q, k, v = capture_qkv(model, x, t)
    assert q.shape == (4, 16, 16)
    attend = model.attn.attend
    assert torch.equal(favor_attention(q, k, v, attend.projection, eps=attend.eps), attend(q, k, v))
    with pytest.raises(ValueError, match="no attention module"):
        capture_qkv(MODELS.get("mlp")(64, None, hidden=8, depth=1), x, t, where="runs/x/mlp/0")


def test_attention_error_stage_on_a_trained_run(tmp_path: Path) -> None:
    data = make_data(tmp_path / "data", n=64, image=True)
    np.save(data / "test.npy", images(8).numpy())
    spec = make_spec(steps=2, batch_size=8, checkpoint_every=2, log_every=1)
    spec.update(arch="unet", model="unet", schedule=SCHEDULE, model_cfg={"channels": 8, "time_dim": 16})
    train(spec, data, tmp_path / "run")
    error_spec = {"times": [0.5], "features": [8, 32], "draws": 2, "n_images": 4, "seed": 3, "device": "cpu"}
    out = tmp_path / "attention" / "0.csv"
    table = attention_error(error_spec, run_dir=tmp_path / "run", data_dir=data, out=out)
    assert pd.read_csv(out).shape == (4, 6) and len(table) == 4
    assert json.loads(out.with_name("0.spec.json").read_text()) == error_spec


# ---- the attention benchmark ---------------------------------------------------------------------------------------
def test_attention_bench_writes_its_files(tmp_path: Path) -> None:
    spec = {"lengths_max": 128, "explicit_max": 64, "repeats": 1, "unet_sizes": [8], "unet_batch": 2,
            "device": "cpu"}
    written = bench_stage.run_attention_bench(spec, tmp_path, log=lambda _: None)
    assert [p.name for p in written] == ["attention.csv", "attention_fit.csv", "attention_unet.csv"]
    table = pd.read_csv(tmp_path / "attention.csv")
    lengths = table.groupby("implementation")["length"].apply(list).to_dict()
    assert lengths["softmax"] == [64, 128] and lengths["softmax-explicit"] == [64]  # capped at explicit_max
    assert (table["fwd_bwd_ms"] > 0).all() and (table["peak_mem_mb"] > 0).all()
    unet = pd.read_csv(tmp_path / "attention_unet.csv")
    assert list(unet["attention"]) == ["softmax", "performer"] and set(unet["tokens"]) == {16}


def test_slopes_and_crossover_of_known_curves() -> None:
    lengths = [64 * 2**k for k in range(7)]
    table = pd.DataFrame([{"implementation": name, "device": "cpu", "length": n, "fwd_bwd_ms": ms(n),
                           "peak_mem_mb": mem(n)}
                          for name, ms, mem in (("softmax", lambda n: 1e-3 * n**2, lambda n: 1e-3 * n),
                                                ("performer", lambda n: 0.1 * n, lambda n: 0.01 * n))
                          for n in lengths])
    fits = pd.DataFrame(bench_stage.fit_rows(table)).set_index(["implementation", "quantity"])
    assert fits.loc[("softmax", "time"), "slope"] == pytest.approx(2.0)
    assert fits.loc[("performer", "memory"), "slope"] == pytest.approx(1.0)
    assert fits.loc[("performer", "time"), "crossover_length"] == 128  # 0.1 L < 1e-3 L² from L > 100
    assert bench_stage.crossover(table[table["implementation"] == "softmax"],
                                 table[table["implementation"] == "performer"], "fwd_bwd_ms") is None


def test_slower_than_the_reference_only_beyond_the_timing_spread() -> None:
    rows = [("performer", 64, 10.0, 0.1), ("performer-pytorch", 64, 9.0, 0.1),  # 10 % slower, tight: slower
            ("performer", 128, 10.0, 5.0), ("performer-pytorch", 128, 9.0, 5.0),  # within the spread
            ("performer", 256, 8.0, 0.1), ("performer-pytorch", 256, 9.0, 0.1)]  # faster
    bench = pd.DataFrame([{"implementation": i, "length": n, "fwd_bwd_ms": ms, "fwd_bwd_ms_std": sd, "repeats": 3}
                          for i, n, ms, sd in rows])
    ratios = perf.speed_ratios(bench).set_index("length")
    assert ratios["slower"].to_dict() == {64: True, 128: False, 256: False}
    assert ratios.loc[256, "ratio"] == pytest.approx(8 / 9)
    assert not perf.speed_ratios(bench.drop(columns=["fwd_bwd_ms_std"]))["slower"].any()  # no spread: never


# ---- the study from synthetic result files -------------------------------------------------------------------------
def _write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def synthetic_results(root: Path, *, performer_fd: float = 12.0) -> dict:
    """Runs of unet (softmax) and unet-attentionperformer (3 seeds), their error CSVs, the benchmark's CSVs and
    complexity.csv, written as the pipeline writes them."""
    rng = np.random.default_rng(0)
    entries = []
    for model, kind, fd, sps in (("unet", "softmax", 10.0, 30.0), ("unet-attentionperformer", "performer",
                                                                    performer_fd, 20.0)):
        for seed in (0, 1, 2):
            run = root / "runs" / "digits" / model / str(seed)
            run.mkdir(parents=True)
            (run / "train.json").write_text(json.dumps({"steps_per_s": sps + seed * 0.1, "n_params": 166481,
                                                        "wall_s": 1000 / sps, "steps": 1000}))
            values = {"fd": fd + 0.1 * rng.standard_normal(), "f_precision": 0.9, "f_recall": 0.8 + 0.01 * seed,
                      "class_kl": 0.05, "time_per_sample_s": 0.2}
            metrics = _write(root / "metrics" / "digits" / model / str(seed) / "ddpm_1000.csv",
                             [{"metric": m, "value": v} for m, v in values.items()])
            lik = _write(root / "likelihood" / "digits" / model / f"{seed}.csv",
                         [{"metric": "elbo_bpd", "value": 1.5 + 0.01 * seed}])
            entries.append({"model": model, "attention": kind, "seed": seed, "train": run / "train.json",
                            "metrics": metrics, "likelihood": lik})
    errors = {model: _write(root / "attention" / "digits" / model / "0.csv",
                            [{"t": t, "features": m, "draw": d, "rel_error": scale / np.sqrt(m) * (1 + 0.01 * d),
                              "tokens": 16, "dim_head": 32}
                             for t in (0.1, 0.9) for m in (8, 32, 128) for d in range(3)])
              for model, scale in (("unet", 1.0), ("unet-attentionperformer", 2.0))}
    lengths = [64 * 2**k for k in range(5)]
    curves = {"softmax": (lambda n: 1e-3 * n**2, lambda n: 1e-3 * n),
              "softmax-explicit": (lambda n: 2e-3 * n**2, lambda n: 1e-4 * n**2),
              "performer": (lambda n: 0.1 * n, lambda n: 0.01 * n),
              "performer-pytorch": (lambda n: 0.12 * n, lambda n: 0.01 * n)}
    table = pd.DataFrame([{"implementation": name, "device": "cpu", "length": n, "heads": 4, "dim_head": 32,
                           "features": 111 if "performer" in name else None, "fwd_bwd_ms": ms(n), "peak_mem_mb": mb(n)}
                          for name, (ms, mb) in curves.items() for n in lengths])
    bench = [_write(root / "bench" / "attention.csv", table.to_dict("records")),
             _write(root / "bench" / "attention_fit.csv", bench_stage.fit_rows(table)),
             _write(root / "bench" / "attention_unet.csv",
                    [{"attention": a, "device": "cpu", "image_size": 64, "tokens": 1024, "dim_head": 64,
                      "features": 266 if a == "performer" else None, "batch": 8, "step_ms": ms, "peak_mem_mb": 200.0}
                     for a, ms in (("softmax", 700.0), ("performer", 560.0))])]
    complexity = _write(root / "bench" / "complexity.csv", [{"model": "unet", "peak_train_mem_mb": 40.0},
                                                            {"model": "unet-attentionperformer",
                                                             "peak_train_mem_mb": 42.0}])
    return {"entries": entries, "errors": errors, "bench": bench, "complexity": complexity}


def quick_config() -> dict:
    return load_config("config.yaml")


def test_study_tables_targets_and_findings(tmp_path: Path) -> None:
    files = synthetic_results(tmp_path / "results")
    config = quick_config()
    models = study.models(config)
    assert models == ["unet", "unet-attentionperformer"]
    written = write_performer(files["entries"], files["errors"], files["bench"], files["complexity"], models=models,
                              out_tables=tmp_path / "tables", out_figures=tmp_path / "figures")
    check_written(study.outputs(config)["performer-report"], written, "test")  # exactly the declared files
    summary = pd.read_csv(tmp_path / "tables" / "performer_summary.csv").set_index(["model", "metric"])
    assert summary.loc[("unet", "ms_per_step"), "mean"] == pytest.approx(1000 / 30.1, rel=1e-3)
    assert summary.loc[("unet-attentionperformer", "peak_train_mem_mb"), "mean"] == 42.0
    assert summary.loc[("unet", "elbo_bpd"), "n_seeds"] == 3
    targets = pd.read_csv(tmp_path / "tables" / "performer_targets.csv").set_index("target")
    assert targets.loc["favor memory slope", "met"] and targets.loc["softmax memory slope", "met"]
    assert targets.loc["performer faster beyond a crossover", "value"] == 128
    assert targets.loc["ours at least as fast as performer-pytorch", "value"] == pytest.approx(0.1 / 0.12)
    assert targets.loc["performer fd within 1.5x", "value"] == pytest.approx(1.2, abs=0.05)
    assert targets["met"].all()
    compare = (tmp_path / "tables" / "performer_compare.tex").read_text()
    assert "FAVOR+" in compare and "166.5k" in compare and "$42.0$" in compare

    paper = PaperFiles(tables=list((tmp_path / "tables").iterdir()),
                       figures=[tmp_path / "figures" / f for f in study.FIGURES], inputs=files["bench"])
    ctx = study.context(paper, config)["performer"]
    text = " ".join(ctx["findings"])
    assert ctx["findings"][0].startswith("5 of 5 targets are met")
    assert "ratio $1.20$): separated by the spread rule" in text  # FD 12 ± 0.1 against 10 ± 0.1
    assert "16$ tokens, fewer than FAVOR+'s $m = 111$ features" in text  # why FAVOR+ is slower on the digits
    assert "as $m^{-0.500}$" in text  # the error curves are m^(-1/2) by construction
    assert "lower on the softmax-trained network's inputs" in text
    assert "FAVOR+ is faster from $L = 128$ on" in text and "$0.833$ times theirs" in text
    assert "$0.800$ times softmax's at $64\\times64$" in text
    assert ctx["missed"] == [] and ctx["scaling_figure"] == "figures/attention_scaling.pdf"


def test_missed_targets_are_named(tmp_path: Path) -> None:
    files = synthetic_results(tmp_path / "results", performer_fd=40.0)  # four times softmax's FD
    written = write_performer(files["entries"], files["errors"], files["bench"], None,
                              models=["unet", "unet-attentionperformer"], out_tables=tmp_path / "tables",
                              out_figures=tmp_path / "figures")
    assert (tmp_path / "figures" / "attention_error.png") in written
    targets = pd.read_csv(tmp_path / "tables" / "performer_targets.csv").set_index("target")
    assert not targets.loc["performer fd within 1.5x", "met"]
    paper = PaperFiles(tables=list((tmp_path / "tables").iterdir()), inputs=files["bench"])
    ctx = study.context(paper, quick_config())["performer"]
    assert ctx["findings"][0].startswith("4 of 5 targets are met") and "within $1.5\\times$" in ctx["findings"][0]
    assert ctx["missed"] and ctx["scaling_figure"] is None
    assert study.context(PaperFiles(), quick_config()) == {"performer": None}


def test_outputs_and_inputs_follow_the_config() -> None:
    config = quick_config()
    outputs = study.outputs(config)
    assert outputs["attention-bench"] == ["results/bench/attention.csv", "results/bench/attention_fit.csv",
                                          "results/bench/attention_unet.csv"]
    inputs = study.inputs_of(config)
    assert "results/likelihood/digits/unet-attentionperformer/2.csv" in inputs["files"]
    assert "results/metrics/digits/unet/2/ddpm_1000.csv" in inputs["files"]
    assert inputs["errors"] == ["results/attention/digits/unet/0.csv",
                                "results/attention/digits/unet-attentionperformer/0.csv"]
    without = {k: v for k, v in config.items() if k != "performer"}
    assert study.outputs(without) == {"attention-bench": [], "performer-report": []}


# ---- config checks -------------------------------------------------------------------------------------------------
def raw_config() -> dict:
    return yaml.safe_load(Path("config.yaml").read_text())


def errors_of(config: dict) -> str:
    with pytest.raises(ConfigError) as info:
        validate_config(config, source="test.yaml")
    return str(info.value)


def test_config_refuses_bad_performer_values() -> None:
    config = raw_config()
    config["performer"].update(features=[0, 8], dim_head=1, colour="red")
    message = errors_of(config)
    assert "performer.features.0: 0 is less than the minimum of 1" in message
    assert "performer.dim_head: 1 is less than the minimum of 2" in message
    assert "performer: Additional properties are not allowed ('colour' was unexpected)" in message


def test_config_refuses_models_the_grid_does_not_train_or_in_the_wrong_order() -> None:
    config = raw_config()
    config["performer"].update(models=["unet-attentionperformer", "unet"], seed=7, explicit_max=32768)
    message = errors_of(config)
    assert ("performer.models: 'unet-attentionperformer' has attention 'performer'; the first model must have "
            "attention 'softmax'") in message
    assert "performer.models: 'unet' is not trained on 'digits' with seed 7 by the grid" in message
    assert "performer.explicit_max: 32768 must be ≤ performer.lengths_max 16384" in message
    config = raw_config()
    config["performer"]["models"] = ["unet", "mlp"]
    message = errors_of(config)
    assert "performer.models: 'mlp' has arch 'mlp'; the study compares U-Nets (arch unet)" in message
    config = raw_config()
    config["sampling"]["main"] = "ddim_20"  # the performer runs are sampled with ddpm_1000 only
    message = errors_of(config)
    assert ("performer.models: 'unet-attentionperformer' on 'digits' is not sampled at the main setting 'ddim_20' "
            "(sampling.main)") in message


def test_a_benchmark_measured_on_a_gpu_joins_the_tables_and_findings_under_its_name(tmp_path: Path) -> None:
    files = synthetic_results(tmp_path / "results")
    gpu = tmp_path / "h200"
    for f in files["bench"]:  # the same curves, as if measured with --device cuda, a tenth of the time
        t = pd.read_csv(f)
        if "fwd_bwd_ms" in t:
            t["fwd_bwd_ms"] /= 10
        if "step_ms" in t:
            t["step_ms"] /= 10
        _write(gpu / f.name, t.assign(device="cuda").to_dict("records"))
    (gpu / "nvidia_smi.csv").write_text("name, driver_version, memory.total [MiB]\nNVIDIA H200, 580.159.04, 143771 MiB\n")
    tables = perf.read_device_bench(gpu)
    assert set(tables["attention"]["device"]) == {"NVIDIA H200"} == set(tables["attention_unet"]["device"])
    models = ["unet", "unet-attentionperformer"]
    write_performer(files["entries"], files["errors"], files["bench"], None, models=models,
                    out_tables=tmp_path / "tables", out_figures=tmp_path / "figures", device_folders=[gpu])
    scaling = (tmp_path / "tables" / "performer_scaling.tex").read_text()
    assert scaling.count("NVIDIA H200") == 4 and scaling.count("& cpu &") == 4  # one row per implementation each
    assert "NVIDIA H200" in (tmp_path / "tables" / "performer_unet.tex").read_text()
    targets = pd.read_csv(tmp_path / "tables" / "performer_targets.csv")
    assert len(targets) == 5  # the targets stay this machine's
    config = quick_config()
    config["performer"]["device_benchmarks"] = [str(gpu)]
    paper = PaperFiles(tables=list((tmp_path / "tables").iterdir()), inputs=files["bench"])
    ctx = study.context(paper, config)["performer"]
    on_gpu = [f for f in ctx["findings"] if f.startswith("On the NVIDIA H200")]
    assert len(on_gpu) == 3 and "FAVOR+ is faster from $L = 128$ on" in on_gpu[0]  # time, memory, U-Net step
    assert on_gpu[1].startswith("On the NVIDIA H200, the allocator's peak memory grows as")
    assert not any("performer-pytorch" in f for f in on_gpu)  # compared with it on this machine only
    assert any(f.startswith("Our FAVOR+ is not slower than performer-pytorch") for f in ctx["findings"])
    assert ctx["other_devices"] == ["NVIDIA H200"]
    assert str(gpu / "attention.csv") in study.inputs(config)


def test_config_refuses_a_device_benchmark_folder_without_its_tables(tmp_path: Path) -> None:
    config = raw_config()
    config["performer"]["device_benchmarks"] = [str(tmp_path)]
    assert (f"performer.device_benchmarks[0]: {str(tmp_path)!r} has no attention.csv or attention_fit.csv"
            in errors_of(config))
