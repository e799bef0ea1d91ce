"""DSNO (issue 13): the temporal Fourier layer, the quadratic states, the teacher trajectories, the student, its
training and resume, its sampler and its config errors."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from ttdm.config.dsno import trajectory_key, trajectory_path
from ttdm.io import spec_hash
from ttdm.methods.dsno import DSNOOptions
from ttdm.models.dsno import DSNOStudent, TemporalConv, quadratic_indices, spectral_mix
from ttdm.models.mlp import MLPConfig, MLP
from ttdm.samplers import Denoiser
from ttdm.samplers.ddim import ode_trajectory, sample_ddim
from ttdm.schedules import make_schedule

SCHEDULE = {"kind": "linear", "T": 100, "beta_start": 1e-4, "beta_end": 0.2}


# ---- the temporal Fourier layer ------------------------------------------------------------------------------------
def numpy_spectral(h: np.ndarray, w: np.ndarray, M: int) -> np.ndarray:
    """The reference: per position, rfft over time, W_{c,o,j} on the first k modes, irfft, by loops in numpy."""
    B, _, C, P = h.shape
    k = w.shape[-1]
    out = np.zeros((B, M, w.shape[1], P))
    for b in range(B):
        for p in range(P):
            spec = np.fft.rfft(h[b, :, :, p], axis=0)  # (M//2+1, C)
            mixed = np.zeros((M // 2 + 1, w.shape[1]), dtype=complex)
            for j in range(k):
                mixed[j] = spec[j] @ w[:, :, j]  # Σ_c H_{c,j} W_{c,o,j}
            out[b, :, :, p] = np.fft.irfft(mixed, n=M, axis=0)
    return out


@pytest.mark.parametrize("M, k", [(4, 2), (8, 3), (5, 3), (2, 2), (4, 3), (1, 1), (6, 1)])
def test_spectral_mix_matches_numpy_fft_reference(M: int, k: int) -> None:
    g = torch.Generator().manual_seed(M * 10 + k)
    h = torch.randn(3, M, 4, 5, generator=g)
    w = torch.randn(4, 6, k, dtype=torch.cfloat, generator=g)
    got = spectral_mix(h.transpose(0, 1), w.real, w.imag, M).transpose(0, 1)  # time-major in and out
    assert got.shape == (3, M, 6, 5) and got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), numpy_spectral(h.double().numpy(), w.numpy().astype(complex), M),
                               atol=1e-5)


def test_all_modes_with_identity_weights_reproduce_the_input() -> None:
    # k = M//2 + 1 modes and W_{c,o,j} = δ_co: irfft(rfft(h)) = h, so the layer gives h + LeakyReLU(h)
    M, C = 6, 3
    layer = TemporalConv(C, M, M // 2 + 1)
    with torch.no_grad():
        layer.weight_re.copy_(torch.eye(C)[:, :, None].expand(C, C, M // 2 + 1))
        layer.weight_im.zero_()
    h = torch.randn(2 * M, C, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(layer(h), h + torch.nn.functional.leaky_relu(h, 0.01), atol=1e-6, rtol=0)
    # one mode (the mean over time) with identity weights: every time gets the time average
    one = TemporalConv(C, M, 1)
    with torch.no_grad():
        one.weight_re.copy_(torch.eye(C)[:, :, None])
        one.weight_im.zero_()
    mean = h.reshape(M, 2, C).mean(dim=0, keepdim=True).expand(M, 2, C).reshape(2 * M, C)  # rows m·2 + n
    torch.testing.assert_close(one(h), h + torch.nn.functional.leaky_relu(mean, 0.01), atol=1e-6, rtol=0)


def test_temporal_layer_mixes_times_of_one_sample_only_and_keeps_dtype_and_image_shapes() -> None:
    M = 4
    layer = TemporalConv(2, M, 2)
    h = torch.randn(3 * M, 2, 4, 4, dtype=torch.float64)
    out = layer(h)
    assert out.shape == h.shape and out.dtype == torch.float64
    h2 = h.clone()
    mine = torch.arange(3 * M) % 3 == 0  # time-major rows m·3 + n: sample 0's
    h2[~mine] += 1.0  # change samples 1 and 2: sample 0's rows do not move
    torch.testing.assert_close(layer(h2)[mine], out[mine])
    assert not torch.allclose(layer(h2)[~mine], out[~mine])
    with pytest.raises(ValueError, match=r"M//2 \+ 1 = 3"):
        TemporalConv(2, M, 4)


# ---- the quadratic states ------------------------------------------------------------------------------------------
def test_quadratic_indices_formula() -> None:
    assert quadratic_indices(256, 4) == [0, 112, 192, 240, 256]  # 256 − round(256 (1 − m/4)²)
    assert quadratic_indices(64, 2) == [0, 48, 64]
    js = quadratic_indices(256, 8)
    assert js[0] == 0 and js[-1] == 256 and all(b > a for a, b in zip(js, js[1:]))
    gaps = np.diff(js)
    assert (np.diff(gaps) < 0).all()  # crowded towards the data
    with pytest.raises(ValueError, match="at least M² = 64"):
        quadratic_indices(20, 8)


# ---- teacher trajectories ------------------------------------------------------------------------------------------
def gaussian_denoiser(mu: float, s: float, schedule) -> Denoiser:  # noqa: ANN001
    """The exact ε* of N(μ, s²) data: ε* = σ (x − α μ)/(α² s² + σ²)."""

    def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a, sig = schedule.alpha_sigma_at(t.double())
        a, sig = a[:, None], sig[:, None]
        return (sig * (x.double() - a * mu) / (a**2 * s**2 + sig**2)).to(x.dtype)

    return Denoiser(eps, schedule)


def _flow_errors(schedule, den, x: torch.Tensor, steps: int) -> tuple[list[float], torch.Tensor, torch.Tensor]:  # noqa: ANN001
    """Max error of each kept state of the DDIM path against the exact flow of N(0.5, 0.3²):
    x_t = α μ + r_t z, r_t = √(α² s² + σ²), z fixed by x_T."""
    states, idx = ode_trajectory(den, x, steps, quadratic_indices(steps, 4))
    a_T, s_T = (v.double() for v in schedule.alpha_sigma(schedule.T - 1))
    z = (x - a_T * 0.5) / (a_T**2 * 0.09 + s_T**2).sqrt()
    errors = []
    for m, i in enumerate(idx.tolist()):
        a, sig = (torch.tensor(1.0), torch.tensor(0.0)) if i < 0 else schedule.alpha_sigma(i)
        exact = a.double() * 0.5 + (a.double() ** 2 * 0.09 + sig.double() ** 2).sqrt() * z
        errors.append(float((states[:, m] - exact).abs().max()))
    return errors, states, idx


def test_trajectory_end_is_the_ddim_sample_and_states_follow_the_exact_flow() -> None:
    schedule = make_schedule({"kind": "linear", "T": 1000, "beta_start": 1e-4, "beta_end": 0.02})
    den = gaussian_denoiser(0.5, 0.3, schedule)
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    coarse, states, idx = _flow_errors(schedule, den, x, 256)
    fine, _, _ = _flow_errors(schedule, den, x, 1000)
    assert states.shape == (64, 5, 2) and idx.tolist() == [999, 561, 249, 61, -1]
    torch.testing.assert_close(states[:, 0], x, rtol=0, atol=0)
    torch.testing.assert_close(states[:, -1], sample_ddim(den, x, 256), rtol=0, atol=0)  # the sampler's own steps
    # DDIM is first order: 4x the steps, about 4x smaller errors at every kept state (exact at x_T)
    assert coarse[0] < 1e-12 and max(coarse) < 0.02 and max(fine) < 0.005
    assert all(3.0 < c / f < 5.0 for c, f in zip(coarse[1:], fine[1:]))


def test_trajectory_key_separates_m_and_names_the_solver() -> None:
    a, b = asdict(DSNOOptions(M=2)), asdict(DSNOOptions(M=8))
    assert trajectory_key(a) != trajectory_key(b)
    assert trajectory_key(asdict(DSNOOptions(M=4, temporal=False))) == trajectory_key(asdict(DSNOOptions(M=4)))
    assert trajectory_key(asdict(DSNOOptions())) == "M4-n16384-e500-ddim256-trailing"
    # students of M = 2, 4, 8 that store traj_M = 8 times share one file
    shared = {trajectory_key(asdict(DSNOOptions(M=m, traj_M=8))) for m in (2, 4, 8)}
    assert shared == {trajectory_key(asdict(DSNOOptions(M=8)))}


@pytest.mark.parametrize("S, M, c", [(256, 2, 4), (256, 4, 2), (64, 3, 2), (256, 5, 3)])
def test_the_quadratic_states_of_m_are_every_cth_of_those_of_cm(S: int, M: int, c: int) -> None:
    from ttdm.methods.dsno import every_mth

    fine = np.array(quadratic_indices(S, c * M))
    assert every_mth(fine[None, :, None], M)[0, :, 0].tolist() == quadratic_indices(S, M)
    with pytest.raises(ValueError, match="not a multiple"):
        every_mth(fine[None, :, None], c * M + 1)
    assert trajectory_path("8gaussians", "mlp", 0, "k") == "results/trajectories/8gaussians/mlp/0/k.npz"


# ---- the student -----------------------------------------------------------------------------------------------------
def test_student_starts_from_its_backbone_and_returns_m_states() -> None:
    torch.manual_seed(0)
    teacher = MLP(2, MLPConfig(hidden=16, depth=2))
    backbone = MLP(2, MLPConfig(hidden=16, depth=2))
    times = torch.tensor([0.6, 0.3, 0.1, 0.0])
    alpha, sigma = torch.tensor([0.5, 0.8, 0.95, 1.0]), torch.tensor([0.87, 0.6, 0.31, 0.0])
    plain = DSNOStudent(backbone, times, alpha, sigma, temporal=False)
    plain.load_backbone(teacher.state_dict())
    x = torch.randn(5, 2)
    out = plain(x)
    assert out.shape == (5, 4, 2)
    for m in range(4):  # without temporal layers: σ_m x_T + α_m ε_teacher(x_T, t_m)
        torch.testing.assert_close(out[:, m], sigma[m] * x + alpha[m] * teacher(x, times[m].expand(5)))
    full = DSNOStudent(MLP(2, MLPConfig(hidden=16, depth=2)), times, alpha, sigma, temporal=True, modes=2)
    full.load_backbone(teacher.state_dict())
    assert sum(".temporal.weight_re" in k for k in full.state_dict()) == 2  # after each of the 2 hidden layers
    torch.testing.assert_close(full.backbone_state(), teacher.state_dict())
    assert not torch.allclose(full(x), out)  # the temporal layers act
    with pytest.raises(ValueError, match="has no weight"):
        full.load_backbone({k: v for k, v in teacher.state_dict().items() if "net.0" not in k})


# ---- a tiny teacher, its trajectories, students ------------------------------------------------------------------
TEACHER_CFG = {"hidden": 32, "depth": 2, "time_dim": 8}


def student_spec(teacher_spec: dict, **training) -> dict:
    spec = {**teacher_spec, "model": "mlp-dsno", "method": "dsno",
            "training": {"steps": 40, "ema_decay": 0.9, "checkpoint_every": 7, "log_every": 10, "teacher": "mlp",
                         "M": 4, "n_traj": 256, "n_eval": 64, "n_val": 32, "traj_steps": 32, "batch_size": 64,
                         "lr": 3e-3, **training},
            "needs": {"teacher": {"model": "mlp", "spec_hash": spec_hash(teacher_spec)}}}
    return spec


def trajectories_for(spec: dict, teacher_dir: Path, root: Path) -> Path:
    from ttdm.stages.trajectories import write_trajectories

    t = spec["training"]
    opts = asdict(DSNOOptions(**{k: v for k, v in t.items() if k in DSNOOptions.__dataclass_fields__}))
    path = root / trajectory_path(spec["dataset"], "mlp", spec["seed"], trajectory_key(opts))
    if not path.exists():
        write_trajectories({"dataset": spec["dataset"], "teacher": "mlp", "seed": spec["seed"],
                            "teacher_spec_hash": spec["needs"]["teacher"]["spec_hash"], "M": t.get("traj_M") or t["M"],
                            "n": t["n_traj"], "n_eval": t["n_eval"], "solver": "ddim", "steps": t["traj_steps"],
                            "spacing": "trailing", "batch_size": 100, "device": "cpu", "threads": 1},
                           teacher_dir, path)
    return path


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, Path]:
    from test_train import make_data, make_spec

    from ttdm.stages.train import train

    root = tmp_path_factory.mktemp("dsno")
    data = make_data(root / "data")
    spec = make_spec(steps=60)
    spec["model_cfg"] = dict(TEACHER_CFG)
    train(spec, data, root / "teacher")
    return spec, data, root


def test_trajectories_file_holds_the_teacher_path_at_the_quadratic_states(teacher) -> None:  # noqa: ANN001
    from ttdm.runs import load_run
    from ttdm.stages.trajectories import noises

    t_spec, data, root = teacher
    path = trajectories_for(student_spec(t_spec), root / "teacher", root)
    with np.load(path) as f:
        assert f["train"].shape == (256, 5, 2) and f["eval"].shape == (64, 5, 2)
        assert f["state"].tolist() == [0, 14, 24, 30, 32] and f["step"].tolist()[-1] == -1 and f["t"][-1] == 0
        x_T = noises("gauss", 0, 320, 2)
        np.testing.assert_array_equal(f["train"][:, 0], x_T[:256].numpy())
        run = load_run(root / "teacher")
        end = sample_ddim(run.sampling_object("denoiser"), x_T[256:], 32)
        np.testing.assert_allclose(f["eval"][:, -1], end.numpy(), atol=1e-6)
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["spec"]["teacher_spec_hash"] == spec_hash(t_spec)
    # a changed teacher: the job refuses a run whose spec is not the one asked for
    from ttdm.stages.trajectories import write_trajectories

    with pytest.raises(ValueError, match="not the teacher's"):
        write_trajectories({**record["spec"], "teacher_spec_hash": "0" * 16}, root / "teacher", root / "x.npz")


def test_student_trains_from_its_teacher_lowers_the_loss_and_samples_in_one_step(teacher) -> None:  # noqa: ANN001
    from ttdm.runs import load_run
    from ttdm.stages.sample import counted
    from ttdm.stages.train import train

    t_spec, data, root = teacher
    spec = student_spec(t_spec)
    traj = trajectories_for(spec, root / "teacher", root)
    record = train(spec, data, root / "student", needs={"teacher": root / "teacher"},
                   inputs={"trajectories": traj})
    loss = np.loadtxt(root / "student" / "loss.csv", delimiter=",", skiprows=1)
    assert loss[-1, 1] < 0.5 * loss[0, 1]  # step, loss, wall_s, val_loss, val_end_rms
    assert loss[-1, 3] < loss[0, 3]
    assert record["M"] == 4 and record["n_params_temporal"] == 2 * 2 * 32 * 32 * 2  # 2 layers, complex (32, 32, 2)
    run = load_run(root / "student")
    teacher_run = load_run(root / "teacher")
    student = run.parts["student"]
    assert student.times[-1] == 0 and torch.allclose(student.alpha[-1], torch.tensor(1.0))
    # the backbone started from the teacher's EMA weights: the built student (before any step) holds them
    from ttdm.methods.base import Context
    from ttdm.runs import make_method

    ctx = Context(spec=spec, dim=2, image_shape=None, needs={"teacher": teacher_run})
    fresh = make_method(spec, ctx).build()["student"]
    for k, v in teacher_run.parts["denoiser"].state_dict().items():
        assert torch.equal(fresh.backbone_state()[k], v), k
    # the sampler: one evaluation of the student per sample, the last state
    from ttdm.samplers import SAMPLERS

    obj, counters = counted(run, "dsno")
    x = torch.randn(10, 2)
    out = SAMPLERS.get("dsno")(obj, x, 1)
    assert out.shape == (10, 2) and max(c.rows for c in counters) == 10  # 1 NFE
    torch.testing.assert_close(out, student(x)[:, -1])
    with pytest.raises(ValueError, match="one step"):
        SAMPLERS.get("dsno")(obj, x, 2)
    assert run.method.sampler_error(run.method.options, "denoiser", 1000, spec) is not None
    assert run.method.sampler_error(run.method.options, "dsno", 4, spec) == "the operator samples in one step, not 4"


def test_student_resumes_bit_for_bit(teacher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    from test_train import assert_same_parts, train_killed_at

    from ttdm.stages.train import train

    t_spec, data, root = teacher
    spec = student_spec(t_spec, steps=20, loss="l1")
    kw = {"needs": {"teacher": root / "teacher"}, "inputs": {"trajectories": trajectories_for(spec, root / "teacher",
                                                                                              root)}}
    train(spec, data, tmp_path / "full", **kw)
    train_killed_at(spec, data, tmp_path / "cut", 10, monkeypatch, **kw)  # checkpoint at 7, killed at 10
    train(spec, data, tmp_path / "cut", **kw)
    assert_same_parts(tmp_path / "full", tmp_path / "cut", ("student",))
    assert (tmp_path / "full" / "loss.csv").read_text() .split("\n")[1].split(",")[1] == \
        (tmp_path / "cut" / "loss.csv").read_text().split("\n")[1].split(",")[1]


def test_student_refuses_other_trajectories_and_missing_inputs(teacher, tmp_path: Path) -> None:  # noqa: ANN001
    from ttdm.stages.train import train

    t_spec, data, root = teacher
    spec = student_spec(t_spec)
    traj = trajectories_for(spec, root / "teacher", root)
    with pytest.raises(ValueError, match=r"roles \['trajectories'\]; given \[\]"):
        train(spec, data, tmp_path / "a", needs={"teacher": root / "teacher"})
    other = student_spec(t_spec, M=2)  # an M = 2 student given the M = 4 file
    with pytest.raises(ValueError, match="another teacher or setting"):
        train(other, data, tmp_path / "b", needs={"teacher": root / "teacher"}, inputs={"trajectories": traj})


def test_a_student_of_m2_reads_every_second_state_of_the_m4_file(teacher) -> None:  # noqa: ANN001
    from ttdm.methods.base import Context
    from ttdm.runs import load_run, make_method

    t_spec, _, root = teacher
    traj = trajectories_for(student_spec(t_spec), root / "teacher", root)
    spec = student_spec(t_spec, M=2, traj_M=4)
    assert trajectories_for(spec, root / "teacher", root) == traj  # the same file
    ctx = Context(spec=spec, dim=2, image_shape=None, needs={"teacher": load_run(root / "teacher")},
                  inputs={"trajectories": traj})
    method = make_method(spec, ctx)
    with np.load(traj) as f:
        np.testing.assert_array_equal(method.targets.numpy(), f["train"][:, [2, 4]])  # states j = 24, 32 of 0..32
        np.testing.assert_array_equal(method.val_targets.numpy(), f["eval"][:32, [2, 4]])
    assert method.js == [24, 32]


def test_temporal_off_has_no_temporal_layers_and_an_m8_student_its_own_file(teacher) -> None:  # noqa: ANN001
    from ttdm.methods.base import Context
    from ttdm.runs import make_method

    t_spec, _, _ = teacher
    for temporal, M, n_layers in ((False, 4, 0), (True, 8, 2)):
        spec = student_spec(t_spec, temporal=temporal, M=M, traj_steps=64)
        spec["schedule"] = {**SCHEDULE, "T": 100}  # 64 steps ≥ M² = 64
        student = make_method(spec, Context(spec=spec, dim=2, image_shape=None)).build()["student"]
        assert sum(".temporal.weight_re" in k for k in student.state_dict()) == n_layers and student.M == M


# ---- the config --------------------------------------------------------------------------------------------------------
def test_config_gives_each_student_its_trajectories_and_refuses_bad_students(tmp_path: Path) -> None:
    import yaml

    from ttdm.config import ConfigError, inputs_of, load_config, needs_of, run_settings
    from ttdm.config.dsno import trajectory_jobs

    config = load_config("config.yaml")
    assert needs_of(config, "25gaussians", "mlp-dsno-m2") == {"teacher": "mlp"}
    assert needs_of(config, "digits", "unet-dsno") == {"teacher": "unet"}
    assert run_settings(config, "8gaussians", "mlp-dsno") == ["dsno_1"]
    path = inputs_of(config, "25gaussians", "mlp-dsno-m2", 1)["trajectories"]
    assert path == "results/trajectories/25gaussians/mlp/1/M8-n16384-e500-ddim256-trailing.npz"
    jobs = trajectory_jobs(config)
    assert jobs[path]["M"] == 8 and jobs[path]["steps"] == 256 and jobs[path]["seed"] == 1
    # the ablation's students (M = 2, 4, 8, no temporal conv) all read the one M = 8 file: one job for them all
    assert all(inputs_of(config, "25gaussians", f"mlp-dsno{tag}", 0) == inputs_of(config, "25gaussians", "mlp-dsno", 0)
               for tag in ("-m2", "-m8", "-flat"))
    path = inputs_of(config, "8gaussians", "mlp-dsno", 0)["trajectories"]
    assert path.endswith("/M4-n16384-e500-ddim256-trailing.npz")
    def errors(block: dict, ablation: list[str] | None = None) -> str:
        raw = yaml.safe_load(open("config.yaml"))
        raw["grid"].append({"datasets": ["8gaussians"], "tag": "dsno-bad", "seeds": [0], **block})
        if ablation:
            raw["dsno"]["ablation"]["models"] += ablation
        bad = tmp_path / "bad.yaml"
        bad.write_text(yaml.safe_dump(raw))
        with pytest.raises(ConfigError) as err:
            load_config(bad)
        return str(err.value)

    text = errors({"models": ["resnet"], "training": {"method": "dsno", "teacher": "resnet"}})
    assert "method 'dsno' cannot train model 'resnet-dsno-bad' (arch 'resnet'); allowed archs: mlp, unet" in text
    text = errors({"models": ["mlp"], "training": {"method": "dsno", "teacher": "ddgan-mlp", "M": 8, "traj_steps": 32}},
                  ablation=["mlp"])
    assert "grid (run 'mlp-dsno-bad' on '8gaussians', block ['8gaussians']).training.traj_steps: 32 must lie in " \
           "[8² = 64, T = 1000]" in text
    assert ".training.teacher: 'ddgan-mlp' is " in text and "same model entry" in text
    assert ".training.teacher: 'ddgan-mlp' (method 'ddgan') gives no denoiser" in text
    assert "dsno.ablation.models: 'mlp' is not a DSNO student" in text
    text = errors({"models": ["mlp"], "training": {"method": "dsno", "teacher": "mlp", "M": 4, "traj_M": 6}})
    assert ".training.traj_M: 6 is not a multiple of M = 4" in text


def test_unet_student_adds_a_temporal_layer_after_every_residual_block() -> None:
    from ttdm.models.unet import UNetConfig, UNet

    torch.manual_seed(0)
    teacher = UNet((1, 8, 8), UNetConfig(channels=8))
    student = DSNOStudent(UNet((1, 8, 8), UNetConfig(channels=8)), torch.tensor([0.5, 0.2, 0.0]),
                          torch.tensor([0.7, 0.9, 1.0]), torch.tensor([0.71, 0.44, 0.0]), modes=2)
    student.load_backbone(teacher.state_dict())
    torch.testing.assert_close(student.backbone_state(), teacher.state_dict())
    names = sorted({k.split(".temporal.")[0] for k in student.state_dict() if ".temporal." in k})
    assert names == ["backbone.down.0", "backbone.down.1", "backbone.mid1", "backbone.mid2", "backbone.up.0",
                     "backbone.up.1"]
    x = torch.randn(2, 64)
    assert student(x).shape == (2, 3, 64)
    assert torch.isfinite(student(x)).all()


# ---- the study's numbers ---------------------------------------------------------------------------------------------
def _rows(flat_hq: float) -> tuple:
    import pandas as pd

    from ttdm.report import dsno as ds
    from ttdm.report import trilemma as tri

    def row(model, method, sampler, steps, hq):  # noqa: ANN001, ANN202
        return {"dataset": "8gaussians", "model": model, "method": method, "sampler": sampler, "kind": sampler,
                "steps": steps, "nfe": steps, "hq_percent": hq, "hq_percent_std": 1.0, "n_seeds": 3,
                "coverage": 0.9, "params": 1000.0}

    wide = pd.DataFrame([row("mlp", "ddpm", "ddpm", 1000, 90.0), row("mlp", "ddpm", "ddim", 20, 85.0),
                         row("mlp-dsno", "dsno", "dsno", 1, 70.0), row("mlp-dsno-flat", "dsno", "dsno", 1, flat_hq)])
    table = tri.annotate(wide, reference=None, shown=["ddpm_1000", "ddim_20", "dsno_1"])
    evals = pd.DataFrame([
        {"dataset": "8gaussians", "model": m, "M": 4, "temporal": temporal, "teacher": "mlp", "error_mean": err,
         "error_median": err, "end_rms": 1.0, "time_ratio_b1": 1.2, "time_ratio_b500": 3.9, "student_ms_b1": 0.12,
         "backbone_ms_b1": 0.1, "student_ms_b500": 3.9, "backbone_ms_b500": 1.0, "n_seeds": 3}
        for m, temporal, err in (("mlp-dsno", True, 0.1), ("mlp-dsno-flat", False, 0.2))])
    abl = ds.ablation(table, evals, "8gaussians", ["mlp-dsno", "mlp-dsno-flat"])
    main = table[table["model"].isin(["mlp", "mlp-dsno"])]
    return table, evals, abl, ds.targets(main, evals, abl, main="ddpm_1000", batch_sizes=[1, 500])


def test_targets_are_computed_from_the_rows_met_or_not() -> None:
    _, _, abl, targets = _rows(flat_hq=50.0)
    assert list(abl["model"]) == ["mlp-dsno", "mlp-dsno-flat"] and list(abl["M"]) == [4, 4]
    by = {t["target"]: t for _, t in targets.iterrows()}
    quality = by["dsno 1 NFE within 1.5x of its teacher at ddpm_1000"]
    assert quality["value"] == pytest.approx(90 / 70) and quality["met"]
    assert by["forward time <= 1.6x the backbone at batch 1"]["met"]
    assert not by["forward time <= 1.6x the backbone at batch 500"]["met"]
    assert by["temporal conv beats none at equal steps"]["met"]
    _, _, _, worse = _rows(flat_hq=80.0)  # the student without temporal layers now has the better HQ
    assert not worse.set_index("target").loc["temporal conv beats none at equal steps", "met"]
    assert len(targets) == 4  # only the comparison's student gets the quality and time targets


def test_findings_quote_the_tables_numbers() -> None:
    from ttdm.report.studies import dsno as study

    table, evals, abl, targets = _rows(flat_hq=50.0)
    text = " ".join(study.comparison_findings(table, ["8gaussians"], {"ddim": "DDIM", "ddpm": "ancestral"},
                                              ["mlp", "mlp-dsno"]))
    assert "HQ percentage $70.0 \\pm 1.00$ at 1 NFE" in text and "ancestral at 1000 NFE ($90.0 \\pm 1.00$)" in text
    assert "beats none" in text and "mlp-dsno-flat" not in text
    text = " ".join(study.ablation_findings(abl))
    assert "$50.0 \\pm 1.00$ against $70.0 \\pm 1.00$ with it (separated by the spread rule)" in text
    assert "1 of 4 targets are met" not in " ".join(study.target_findings(targets))
    assert "3 of 4 targets are met" in " ".join(study.target_findings(targets))


def test_a_target_missed_by_several_students_is_one_phrase_with_their_range() -> None:
    import pandas as pd

    from ttdm.report.studies import dsno as study

    row = {"target": "t", "text": "forward pass within 1.6x", "threshold": 1.6, "met": False, "note": ""}
    targets = pd.DataFrame([{**row, "dataset": "8gaussians", "model": "mlp-dsno", "value": 4.3},
                            {**row, "dataset": "digits", "model": "unet-dsno", "value": 6.2},
                            {**row, "text": "within 1.5x", "dataset": "25gaussians", "model": "mlp-dsno",
                             "value": 2.0, "threshold": 1.5},
                            {**row, "text": "ok", "dataset": "x", "model": "m", "value": 1.0, "met": True}])
    missed = study.missed_targets(targets)
    assert missed == ["forward pass within 1.6x for 2 students (\\texttt{mlp-dsno} on \\texttt{8gaussians}, "
                      "\\texttt{unet-dsno} on \\texttt{digits}: $4.30$ to $6.20$ against $1.60$)",
                      "within 1.5x for \\texttt{mlp-dsno} on \\texttt{25gaussians} ($2.00$ against $1.50$)"]
    assert "1 of 4 targets are met" in study.target_findings(targets)[0]


def test_cost_target_sums_the_students_job_seconds(tmp_path: Path) -> None:
    from ttdm.report import dsno as ds

    files = []
    for stage, seconds in (("train", 400.0), ("trajectories", 150.0), ("sample", 90.0)):
        f = tmp_path / "benchmarks" / stage / "8gaussians" / "x.tsv"
        f.parent.mkdir(parents=True)
        f.write_text(f"s\th:m:s\tmax_rss\n{seconds}\t0:00:01\t1.0\n")
        files.append(f)
    costs = ds.job_seconds(files)
    assert list(costs["stage"]) == ["train", "trajectories", "sample"]
    table, evals, abl, _ = _rows(flat_hq=50.0)
    t = ds.targets(table.iloc[:0], evals, abl, main="ddpm_1000", batch_sizes=[1], costs=costs)
    row = t[t["target"].str.startswith("added jobs")].iloc[0]
    assert row["value"] == pytest.approx(320.0) and not row["met"]  # 640 job-seconds on 2 cores > 300 s
    t = ds.targets(table.iloc[:0], evals, abl, main="ddpm_1000", batch_sizes=[1], costs=costs.iloc[1:])
    assert t[t["target"].str.startswith("added jobs")]["met"].iloc[0]


def test_dsno_eval_measures_the_error_against_the_teacher_and_the_forward_time(teacher, tmp_path) -> None:  # noqa: ANN001
    from ttdm.runs import load_run
    from ttdm.stages.dsno_eval import dsno_eval
    from ttdm.stages.train import train

    t_spec, data, root = teacher
    spec = student_spec(t_spec, steps=10)
    traj = trajectories_for(spec, root / "teacher", root)
    train(spec, data, tmp_path / "s", needs={"teacher": root / "teacher"}, inputs={"trajectories": traj})
    table = dsno_eval({"batch_sizes": [1, 8], "repeats": 3, "n_pairs": 5, "device": "cpu", "threads": 1},
                      tmp_path / "s", root / "teacher", traj, tmp_path / "e.csv")
    v = dict(zip(table["metric"], table["value"]))
    student = load_run(tmp_path / "s").parts["student"]
    with np.load(traj) as f:
        held = torch.from_numpy(f["eval"])
    with torch.no_grad():
        err = (student(held[:, 0])[:, -1] - held[:, -1]).pow(2).mean(dim=1).sqrt()
    assert v["error_mean"] == pytest.approx(float(err.mean()), rel=1e-5)
    assert v["error_t4"] == pytest.approx(v["error_mean"], rel=1e-6) and v["M"] == 4 and v["n_eval"] == 64
    assert v["time_ratio_b8"] == pytest.approx(v["student_ms_b8"] / v["backbone_ms_b8"])
    assert v["params_student"] == v["params_backbone"] + 2 * 2 * 32 * 32 * 2
    with np.load(tmp_path / "e.npz") as f:
        assert f["student"].shape == (5, 2)
        np.testing.assert_allclose(f["teacher"], held[:5, -1].numpy())


def test_the_samples_figure_shows_image_pairs_as_images_and_vectors_as_points(tmp_path: Path) -> None:
    from ttdm.report.dsno_output import _image_strip, plot_samples

    teacher = np.arange(10 * 4, dtype=float).reshape(10, 4) / 40
    student = -teacher
    strip = _image_strip(teacher, student, (1, 2, 2))
    assert strip.shape == (5, 8 * 3 - 1)  # two rows of 2x2 images, a pixel apart; the first 8 pairs
    np.testing.assert_array_equal(strip[0:2, 3:5], teacher[1].reshape(2, 2))  # pair 1, top: the teacher
    np.testing.assert_array_equal(strip[3:5, 3:5], student[1].reshape(2, 2))  # bottom: the student
    assert np.isnan(strip[2]).all() and np.isnan(strip[:, 2]).all()
    np.savez(tmp_path / "img.npz", student=student, teacher=teacher, image_shape=np.array([1, 2, 2]))
    np.savez(tmp_path / "vec.npz", student=student[:, :2], teacher=teacher[:, :2], image_shape=np.array([], int))
    fig = plot_samples([{"dataset": "digits", "model": "unet-dsno", "seed": 0, "path": tmp_path / "img.npz"},
                        {"dataset": "8gaussians", "model": "mlp-dsno", "seed": 0, "path": tmp_path / "vec.npz"}])
    image_ax, point_ax = fig.axes[:2]
    assert len(image_ax.images) == 1 and not image_ax.collections
    assert len(point_ax.collections) == 3 and not point_ax.images  # segments and two scatters


def test_the_comparison_table_gives_quality_precision_recall_and_size_with_the_floor_first() -> None:
    from ttdm.report.dsno_output import compare_table

    table, *_ = _rows(flat_hq=50.0)
    table = table.assign(precision=0.8, recall=0.7)
    display, tex = compare_table(table[table["shown"]], {"hq_percent": 99.0, "precision": 0.99, "recall": 0.97},
                                 {"ddpm": "ancestral", "ddim": "DDIM", "dsno": "one pass"})
    assert list(display.columns) == ["Model (method)", "Sampler", "NFE", "HQ (%)", "Prec.", "Rec.", "Params"]
    assert list(display.iloc[0]) == ["data floor", "--", "--", "$99.0$", "$0.990$", "$0.970$", "--"]
    student = display[display["Model (method)"].str.contains("textbf")]
    assert len(student) == 2 and set(student["NFE"]) == {"1"} and set(student["Prec."]) == {"$0.800$"}
    assert "\\textbf{\\texttt{mlp-dsno} (DSNO)}" in tex


def test_the_limitations_count_target_rows_not_phrases() -> None:
    import pandas as pd

    from ttdm.report.claims import missed_targets, n_missed

    rows = [{"text": "within 1.2x", "dataset": "25gaussians", "model": m, "value": v, "threshold": 1.2, "met": False}
            for m, v in (("mlp", 1.3), ("resnet", 1.24))]
    targets = pd.DataFrame(rows + [{**rows[0], "model": "tt", "value": 1.1, "met": True}])
    assert len(missed_targets(targets)) == 1 and n_missed(targets) == 2 and n_missed(None) == 0


# ---- forward times measured on another device (dsno.device_timings) -------------------------------------------------
def _device_csv(tmp_path: Path) -> Path:
    import pandas as pd

    rows = [{"dataset": "8gaussians", "model": m, "M": 4, "temporal": temporal, "batch": b, "student_ms": s,
             "backbone_ms": 1.0, "ratio": s, "params_student": 5e6, "params_backbone": 8e5, "device": "cuda",
             "gpu": "NVIDIA H200", "torch": "2.11", "config": "workflow/presets/full.yaml"}
            for m, temporal, ratios in (("mlp-dsno", True, (6.5, 1.5)), ("mlp-dsno-flat", False, (1.4, 2.6)))
            for b, s in zip((1, 10000), ratios)]
    path = tmp_path / "dsno_forward.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    pd.DataFrame([{"dataset": "8gaussians", "model": "mlp-dsno", "part": part, "batch_size": 1024, "step_ms": ms,
                   "device": "cuda"} for part, ms in (("student", 11.7), ("teacher", 3.6))]).to_csv(
        tmp_path / "dsno_forward_train.csv", index=False)
    return path


def test_device_timings_give_a_forward_time_target_per_batch_a_table_and_a_finding(tmp_path: Path) -> None:
    import pandas as pd

    from ttdm.report import dsno as ds
    from ttdm.report.dsno_output import device_table
    from ttdm.report.studies import dsno as study

    devices = ds.device_timings([_device_csv(tmp_path)])
    assert set(devices["device_name"]) == {"NVIDIA H200"}
    assert devices.loc[devices["model"] == "mlp-dsno", "student_step_ms"].iloc[0] == pytest.approx(11.7)
    table, evals, abl, _ = _rows(flat_hq=50.0)
    main = table[table["model"].isin(["mlp", "mlp-dsno"])]
    targets = ds.targets(main, evals, abl, main="ddpm_1000", batch_sizes=[1], devices=devices)
    on_gpu = targets[targets["target"].str.endswith("on NVIDIA H200")].set_index("target")
    assert list(on_gpu["model"]) == ["mlp-dsno", "mlp-dsno"]  # the comparison's student only, one row per batch
    assert not on_gpu.loc["forward time <= 1.6x the backbone at batch 1 on NVIDIA H200", "met"]
    assert on_gpu.loc["forward time <= 1.6x the backbone at batch 10000 on NVIDIA H200", "met"]
    tex = device_table(devices)
    assert "$6.50\\times$" in tex and "$11.7$ / $3.60$" in tex and "\t" not in tex
    assert "Device" not in tex and study._device_names(devices) == "NVIDIA H200"  # one device: named in the caption
    two = pd.concat([devices, devices.assign(device_name="cpu")])
    assert "Device" in device_table(two) and study._device_names(two) == "NVIDIA H200 and cpu"
    text = " ".join(study.device_findings(devices))
    assert "On the NVIDIA H200, at the sizes of \\texttt{workflow/presets/full.yaml}" in text
    assert "$6.50\\times$ at $B = 1$ (without the temporal convolution $1.40\\times$)" in text
    assert "$1.50\\times$ at $B = 10000$ (without the temporal convolution $2.60\\times$)" in text


def test_a_device_timing_file_of_another_kind_or_missing_is_refused(tmp_path: Path, quick_config) -> None:  # noqa: ANN001
    import pandas as pd

    from ttdm.config import ConfigError, validate_config
    from ttdm.report import dsno as ds

    wrong = tmp_path / "other.csv"
    pd.DataFrame({"dataset": ["x"], "ratio": [1.0]}).to_csv(wrong, index=False)
    with pytest.raises(ValueError, match=r"other\.csv: not a dsno_forward_bench\.py table \(missing columns model"):
        ds.device_timings([wrong])
    quick_config["dsno"]["device_timings"] = ["nowhere/dsno_forward.csv"]
    with pytest.raises(ConfigError, match=r"dsno\.device_timings\[0\]: 'nowhere/dsno_forward\.csv' does not exist"):
        validate_config(quick_config)


def test_the_error_table_writes_times_not_a_tab() -> None:
    import pandas as pd

    from ttdm.report.dsno_output import error_table
    from ttdm.report.tables import write_table

    evals = pd.DataFrame([{"dataset": "8gaussians", "model": "mlp-dsno", "M": 4, "error_mean": 0.1, "error_median": 0.1,
                           "end_rms": 1.0, "student_ms_b1": 2.0, "backbone_ms_b1": 1.0}])
    tex = error_table(evals, [1])
    assert "($2.00\\times$)" in tex and "\t" not in tex
    with pytest.raises(ValueError, match=r"x\.tex: the LaTeX holds control characters '\\t'"):
        write_table("x.tex", "$2\times$")
