"""Sample-quality metrics against independent references: POT, scipy, brute-force sums and closed forms."""

from __future__ import annotations

import itertools
import math

import numpy as np
import ot
import pytest
import scipy.stats

from ttdm.metrics import METRICS
from ttdm.metrics.distances import energy, mmd, random_directions, subsample, swd, w2
from ttdm.metrics.evaluate import evaluate, floor_metrics, long_rows
from ttdm.metrics.modes import modes

NO_META: dict = {"mixture": None}


def ring_meta(k: int = 8, radius: float = 2.0, std: float = 0.05) -> dict:
    """meta.json of a ring of ``k`` equal-weight 2-D Gaussians (DDGAN/VEEGAN's ring), std ≪ spacing."""
    angles = 2 * np.pi * np.arange(k) / k
    means = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)  # (K, 2)
    mixture = {"weights": [1.0 / k] * k, "means": means.tolist(), "stds": [[std, std]] * k}
    return {"dim": 2, "image_shape": None, "mixture": mixture}


def sample_mixture(meta: dict, n: int, rng: np.random.Generator, *, components=None) -> np.ndarray:
    """``n`` draws from the mixture in ``meta``, restricted (equal weights) to ``components`` when given."""
    mix = meta["mixture"]
    means, stds = np.asarray(mix["means"]), np.asarray(mix["stds"])
    pool = np.arange(len(means)) if components is None else np.asarray(components)
    k = rng.choice(pool, size=n)
    return means[k] + stds[k] * rng.standard_normal((n, means.shape[1]))


# ---------------------------------------------------------------- swd


@pytest.mark.parametrize("n, m", [(300, 300), (300, 170), (64, 257)])
def test_swd_matches_pot_with_same_projections(n, m):
    """Same directions → same Monte-Carlo SW₂ as POT (exact 1-D W2 also for N ≠ M); rel. tol 1e-10."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((n, 3)), 0.5 + 2.0 * rng.standard_normal((m, 3))
    ours = swd(x, y, meta=NO_META, rng=np.random.default_rng(7), n_projections=200)["swd"]
    theta = random_directions(3, 200, np.random.default_rng(7))
    ref = ot.sliced_wasserstein_distance(x, y, projections=theta, p=2)
    assert ours == pytest.approx(float(ref), rel=1e-10)


def test_swd_one_dimension_is_exact_w2():
    """In 1-D every direction is ±1, so SW₂ = W2 = sorted matching; rel. tol 1e-12."""
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((400, 1)), rng.exponential(size=(400, 1))
    exact = math.sqrt(np.mean((np.sort(x[:, 0]) - np.sort(y[:, 0])) ** 2))
    assert swd(x, y, meta=NO_META, rng=rng, n_projections=5)["swd"] == pytest.approx(exact, rel=1e-12)


def test_swd_rejects_zero_projections():
    with pytest.raises(ValueError, match="n_projections"):
        swd(np.zeros((3, 2)), np.zeros((3, 2)), meta=NO_META, rng=np.random.default_rng(0), n_projections=0)


# ---------------------------------------------------------------- mmd


def brute_mmd(x: np.ndarray, y: np.ndarray, bandwidths: list[float]) -> float:
    """Gretton et al. (2012) eq. 3 with explicit double loops."""
    k = lambda a, b: sum(math.exp(-float(np.sum((a - b) ** 2)) / (2 * h * h)) for h in bandwidths)  # noqa: E731
    n, m = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kxy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return kxx + kyy - 2 * kxy


def test_mmd_matches_brute_force_sum():
    """Given bandwidths and the default median heuristic (pooled pairs computed with itertools); rel. tol 1e-10."""
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((9, 2)), 1.0 + rng.standard_normal((6, 2))
    given = mmd(x, y, meta=NO_META, rng=rng, bandwidths=[0.3, 1.7])["mmd"]
    assert given == pytest.approx(brute_mmd(x, y, [0.3, 1.7]), rel=1e-10)
    pooled = np.concatenate([x, y])
    median = float(np.median([np.linalg.norm(a - b) for a, b in itertools.combinations(pooled, 2)]))
    default = mmd(x, y, meta=NO_META, rng=rng)["mmd"]
    assert default == pytest.approx(brute_mmd(x, y, [0.5 * median, median, 2 * median]), rel=1e-10)


def test_mmd_unbiased_mean_zero_for_same_distribution():
    """Over 200 repeats of N = M = 40 the mean of MMD²_u is within 4 standard errors of 0."""
    rng = np.random.default_rng(3)
    vals = [
        mmd(rng.standard_normal((40, 2)), rng.standard_normal((40, 2)), meta=NO_META, rng=rng)["mmd"]
        for _ in range(200)
    ]
    assert abs(np.mean(vals)) < 4 * np.std(vals) / math.sqrt(len(vals))
    assert min(vals) < 0  # unbiased, so negative values occur


def test_mmd_subsamples_to_max_points():
    """With max_points = N the value is unchanged; with fewer it is the MMD of a random subsample."""
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((30, 2)), rng.standard_normal((30, 2))
    full = mmd(x, y, meta=NO_META, rng=np.random.default_rng(0), bandwidths=[1.0])["mmd"]
    same = mmd(x, y, meta=NO_META, rng=np.random.default_rng(0), bandwidths=[1.0], max_points=30)["mmd"]
    sub = mmd(x, y, meta=NO_META, rng=np.random.default_rng(0), bandwidths=[1.0], max_points=10)["mmd"]
    assert same == full and sub != full


# ---------------------------------------------------------------- energy


def test_energy_one_dimension_vs_scipy():
    """scipy returns sqrt(V-statistic); U = scipy² − V_xx/(N−1) − V_yy/(M−1), V_xx = mean_{i,j}|x_i − x_j|."""
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal(50), 0.7 + 1.3 * rng.standard_normal(37)
    v_xx = np.abs(x[:, None] - x[None, :]).mean()
    v_yy = np.abs(y[:, None] - y[None, :]).mean()
    expected = scipy.stats.energy_distance(x, y) ** 2 - v_xx / (len(x) - 1) - v_yy / (len(y) - 1)
    ours = energy(x[:, None], y[:, None], meta=NO_META, rng=rng)["energy"]
    assert ours == pytest.approx(expected, rel=1e-10)


def test_energy_two_dimensions_brute_force():
    """Székely–Rizzo U-statistic with explicit loops; rel. tol 1e-10."""
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((8, 2)), rng.uniform(size=(11, 2))
    d = lambda a, b: float(np.linalg.norm(a - b))  # noqa: E731
    n, m = len(x), len(y)
    exy = sum(d(a, b) for a in x for b in y) / (n * m)
    exx = sum(d(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    eyy = sum(d(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    assert energy(x, y, meta=NO_META, rng=rng)["energy"] == pytest.approx(2 * exy - exx - eyy, rel=1e-10)


# ---------------------------------------------------------------- w2


def test_w2_translate_equals_shift_norm():
    """W2(μ, μ + s) = ‖s‖ for any point set (the identity coupling is optimal); abs. tol 1e-8."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((60, 3))
    shift = np.array([0.3, -1.2, 0.5])
    assert w2(x, x + shift, meta=NO_META, rng=rng)["w2"] == pytest.approx(np.linalg.norm(shift), abs=1e-8)


def test_w2_one_dimension_sorted_matching_and_w1_bound():
    """1-D: W2 = sorted matching exactly; scipy's wasserstein_distance is W1 ≤ W2 (Jensen), not W2."""
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal(80), rng.exponential(size=80)
    ours = w2(x[:, None], y[:, None], meta=NO_META, rng=rng)["w2"]
    assert ours == pytest.approx(math.sqrt(np.mean((np.sort(x) - np.sort(y)) ** 2)), rel=1e-9)
    assert scipy.stats.wasserstein_distance(x, y) < ours


def test_w2_subsampled_when_above_max_points():
    """Above max_points the value is POT's exact W2 between the rng's subsamples (x first, then ref); tol 1e-9."""
    rng = np.random.default_rng(9)
    x, y = rng.standard_normal((50, 2)), rng.uniform(size=(40, 2))
    out = w2(x, y, meta=NO_META, rng=np.random.default_rng(0), max_points=20)["w2"]
    sub_rng = np.random.default_rng(0)
    xs, ys = subsample(x, 20, sub_rng), subsample(y, 20, sub_rng)
    assert len(xs) == len(ys) == 20
    expected = math.sqrt(ot.emd2(np.full(20, 0.05), np.full(20, 0.05), ot.dist(xs, ys)))
    assert out == pytest.approx(expected, rel=1e-9)


# ---------------------------------------------------------------- same vs shifted distributions


@pytest.mark.parametrize(
    "name, small, large",
    [("swd", 0.2, 0.55), ("mmd", 0.01, 0.15), ("energy", 0.02, 0.25), ("w2", 0.4, 0.85)],
)
def test_metric_small_for_same_and_large_for_shifted(name, small, large):
    """N = M = 600 standard 2-D normals: same law → below ``small``; shifted by (1, 0) → above ``large``.

    SW₂ and W2 keep a finite-sample bias (≈ 0.1 and ≈ 0.25 here); shifted, SW₂ → √½ and W2 → 1.
    """
    rng = np.random.default_rng(10)
    x, y, z = (rng.standard_normal((600, 2)) for _ in range(3))
    fn = METRICS.get(name)
    same = fn(x, y, meta=NO_META, rng=np.random.default_rng(0))[name]
    shifted = fn(x, z + [1.0, 0.0], meta=NO_META, rng=np.random.default_rng(0))[name]
    assert abs(same) < small < large < shifted


# ---------------------------------------------------------------- modes


def test_modes_true_mixture_covers_all_with_closed_form_hq():
    """20000 true samples: 8/8 modes, hq% = 100 (1 − e^{−4.5}) ± 0.4 (≈ 5 binomial s.e.), KL ≈ 0."""
    meta = ring_meta()
    x = sample_mixture(meta, 20000, np.random.default_rng(11))
    out = modes(x, x, meta=meta, rng=np.random.default_rng(0))
    assert out["modes_covered"] == 8 and out["modes_total"] == 8
    assert out["hq_percent"] == pytest.approx(100 * (1 - math.exp(-4.5)), abs=0.4)
    assert 0 <= out["mode_kl"] < 1e-3


def test_modes_three_components_and_far_points():
    """Samples of 3 modes cover 3; far-away points are low quality; KL = log(8/3) for 3 equal modes (±0.01)."""
    meta = ring_meta()
    rng = np.random.default_rng(12)
    x = sample_mixture(meta, 3000, rng, components=[0, 2, 5])
    out = modes(x, x, meta=meta, rng=rng)
    assert out["modes_covered"] == 3
    assert out["mode_kl"] == pytest.approx(math.log(8 / 3), abs=0.01)
    far = np.concatenate([x, 50.0 + rng.standard_normal((1000, 2))])
    out_far = modes(far, x, meta=meta, rng=rng)
    assert out_far["hq_percent"] == pytest.approx(out["hq_percent"] * 3000 / 4000, rel=1e-12)
    nothing = modes(50.0 + rng.standard_normal((10, 2)), x, meta=meta, rng=rng)
    assert nothing["hq_percent"] == 0 and nothing["modes_covered"] == 0 and math.isnan(nothing["mode_kl"])


def test_modes_min_count_and_no_mixture():
    """A mode with fewer HQ samples than min_count is not covered; no mixture → {}."""
    meta = ring_meta()
    rng = np.random.default_rng(13)
    x = np.concatenate([sample_mixture(meta, 500, rng, components=[0]), sample_mixture(meta, 3, rng, components=[1])])
    assert modes(x, x, meta=meta, rng=rng, min_count=1)["modes_covered"] == 2
    assert modes(x, x, meta=meta, rng=rng, min_count=10)["modes_covered"] == 1
    assert modes(x, x, meta=NO_META, rng=rng) == {}


# ---------------------------------------------------------------- evaluate


CONFIG = {"swd": {"n_projections": 50}, "mmd": {}, "energy": {}, "w2": {}, "modes": {}}


def test_evaluate_deterministic_and_order_independent():
    meta = ring_meta()
    rng = np.random.default_rng(14)
    x, ref = sample_mixture(meta, 200, rng), sample_mixture(meta, 150, rng)
    a = evaluate(x, ref, meta=meta, metrics=CONFIG, seed=3)
    b = evaluate(x, ref, meta=meta, metrics=dict(reversed(list(CONFIG.items()))), seed=3)
    only = evaluate(x, ref, meta=meta, metrics={"swd": {"n_projections": 50}}, seed=3)
    assert a == b and only["swd"] == a["swd"]
    assert set(a) == {"nonfinite_fraction", "swd", "mmd", "energy", "w2", "modes_covered", "modes_total",
                      "hq_percent", "mode_kl"}
    assert evaluate(x, ref, meta=meta, metrics=CONFIG, seed=4)["swd"] != a["swd"]
    assert floor_metrics(x, ref, meta=meta, metrics=CONFIG, seed=3) == a


def test_evaluate_reports_nonfinite_rows():
    """10% NaN/inf rows: nonfinite_fraction = 0.1 and the metrics equal those of the finite rows alone."""
    rng = np.random.default_rng(15)
    x, ref = rng.standard_normal((100, 2)), rng.standard_normal((80, 2))
    bad = x.copy()
    bad[:5, 0], bad[5:10, 1] = np.nan, np.inf
    out = evaluate(bad, ref, meta=NO_META, metrics=CONFIG, seed=0)
    finite = evaluate(x[10:], ref, meta=NO_META, metrics=CONFIG, seed=0)
    assert out["nonfinite_fraction"] == pytest.approx(0.1)
    assert {k: v for k, v in out.items() if k != "nonfinite_fraction"} == {
        k: v for k, v in finite.items() if k != "nonfinite_fraction"
    }
    assert evaluate(np.full((4, 2), np.nan), ref, meta=NO_META, metrics=CONFIG, seed=0) == {"nonfinite_fraction": 1.0}


def test_evaluate_refuses_unknown_metric_and_bad_ref():
    ref = np.zeros((5, 2))
    with pytest.raises(ValueError, match="unknown metric 'fid'.*allowed"):
        evaluate(ref, ref, meta=NO_META, metrics={"fid": {}}, seed=0)
    with pytest.raises(ValueError, match="ref"):
        evaluate(ref, np.full((5, 2), np.nan), meta=NO_META, metrics={"swd": {}}, seed=0)
    with pytest.raises(ValueError, match="seed"):
        evaluate(ref, ref, meta=NO_META, metrics={"swd": {}}, seed=-1)


def test_long_rows():
    rows = long_rows({"swd": 0.5, "mmd": np.float32(0.25)}, dataset="ring", model="mlp", seed=0)
    assert rows == [
        {"dataset": "ring", "model": "mlp", "seed": 0, "metric": "swd", "value": 0.5},
        {"dataset": "ring", "model": "mlp", "seed": 0, "metric": "mmd", "value": 0.25},
    ]
    with pytest.raises(ValueError, match="reserved"):
        long_rows({"swd": 0.5}, metric="x")


@pytest.mark.parametrize("n,m", [(60, 60), (30, 90), (90, 45), (60, 45)])
def test_w2_equals_pot_emd2(n, m):
    """Equal sizes and sizes that divide each other take the assignment path (with repeated points), others POT's
    simplex: all equal POT's exact W2."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(n, 3)), rng.normal(size=(m, 3)) + 0.5
    expected = math.sqrt(ot.emd2(np.full(n, 1 / n), np.full(m, 1 / m), ot.dist(x, y)))
    assert w2(x, y, meta=NO_META, rng=rng)["w2"] == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize(("metrics", "message"), [
    ({"swd": {"n_projections": 0}}, "metrics.swd.n_projections: 0 must be ≥ 1"),
    ({"mmd": {"bandwidths": []}}, "metrics.mmd.bandwidths: [] is empty"),
    ({"mmd": {"bandwidths": [1.0, "wide"]}}, "metrics.mmd.bandwidths: [1.0, 'wide'] is not a list of numbers or null"),
    ({"energy": {"max_points": 1}}, "metrics.energy.max_points: 1 must be ≥ 2"),
    ({"w2": {"max_pts": 10}}, "metrics.w2.max_pts: unknown option; allowed: max_points"),
    ({"modes": {"min_count": 0}}, "metrics.modes.min_count: 0 must be ≥ 1"),
])
def test_evaluate_checks_declared_options_before_any_metric(metrics, message):
    ref = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(ValueError) as info:
        evaluate(ref, ref, meta=NO_META, metrics={"swd": {}, **metrics}, seed=0)
    assert message in str(info.value)


def test_every_metric_declares_its_options():
    import dataclasses

    for name in METRICS.names():
        cls = METRICS.options(name)
        assert cls is not None and dataclasses.is_dataclass(cls), name
