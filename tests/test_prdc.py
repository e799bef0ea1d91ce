"""k-NN precision/recall/density/coverage against the reference package ``prdc``, and the true sample log-density."""

from __future__ import annotations

import contextlib
import io
import math
import subprocess
import sys

import numpy as np
import pytest
import scipy.stats

from ttdm.metrics import METRICS
from ttdm.metrics.evaluate import evaluate
from ttdm.metrics.logdensity import logdensity, mixture_log_prob
from ttdm.metrics.prdc import knn_radii, prdc, prdc_values

KEYS = ("precision", "recall", "density", "coverage")


def reference(x: np.ndarray, ref: np.ndarray, k: int) -> dict[str, float]:
    """``prdc.compute_prdc(real_features=ref, fake_features=x, nearest_k=k)`` (it prints the set sizes: silenced)."""
    compute_prdc = pytest.importorskip("prdc").compute_prdc
    with contextlib.redirect_stdout(io.StringIO()):
        values = compute_prdc(real_features=ref, fake_features=x, nearest_k=k)
    return {key: float(values[key]) for key in KEYS}


def assert_matches(x: np.ndarray, ref: np.ndarray, k: int) -> dict[str, float]:
    ours, theirs = prdc_values(x, ref, k), reference(x, ref, k)
    for key in KEYS:
        assert ours[key] == pytest.approx(theirs[key], abs=1e-12), (key, ours, theirs)
    return ours


@pytest.mark.parametrize(
    ("n", "m", "dim", "k", "shift", "scale"),
    [
        (200, 300, 2, 5, 0.0, 1.0),  # same distribution
        (300, 200, 2, 3, 0.5, 1.0),  # shifted
        (250, 250, 5, 5, 0.0, 0.3),  # collapsed samples: high precision, low recall
        (150, 400, 8, 10, 0.0, 3.0),  # spread samples: low precision, high recall
        (120, 90, 64, 1, 0.2, 1.0),  # digits' dimension, k = 1
    ],
)
def test_matches_reference_package(n: int, m: int, dim: int, k: int, shift: float, scale: float) -> None:
    rng = np.random.default_rng([n, m, dim, k])
    ref = rng.standard_normal((m, dim))
    x = shift + scale * rng.standard_normal((n, dim))
    values = assert_matches(x, ref, k)
    if scale < 1:
        assert values["precision"] > values["recall"]
    if scale > 1:
        assert values["recall"] > values["precision"]


def test_matches_reference_on_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sets larger than a distance block give the same values as one block."""
    import ttdm.metrics.prdc as module

    rng = np.random.default_rng(7)
    ref, x = rng.standard_normal((230, 3)), rng.standard_normal((170, 3)) * 1.2
    whole = prdc_values(x, ref, 4)
    monkeypatch.setattr(module, "_BLOCK", 64)
    assert prdc_values(x, ref, 4) == whole
    assert_matches(x, ref, 4)


def test_degenerate_cases_match_reference() -> None:
    """Integer-valued points (exact distances in both implementations): ties, duplicates, identical sets."""
    rng = np.random.default_rng(3)
    grid = rng.integers(-3, 4, size=(60, 2)).astype(np.float64)  # many duplicates and equal distances
    other = rng.integers(-3, 4, size=(50, 2)).astype(np.float64)
    assert_matches(grid, other, 5)
    assert_matches(grid, grid, 5)  # identical sets
    # every reference point duplicated k + 1 times: radius 0, strict inequality -> no ball contains anything
    ref = np.repeat(rng.integers(-5, 6, size=(10, 2)).astype(np.float64), 6, axis=0)
    x = rng.standard_normal((40, 2))
    values = assert_matches(x, ref, 5)
    assert values["precision"] == 0.0 and values["density"] == 0.0 and values["coverage"] == 0.0
    # the samples are all one point: their radius is 0, so recall is 0, whatever the coverage
    x_collapsed = np.zeros((30, 2))
    values = assert_matches(x_collapsed, rng.standard_normal((40, 2)), 5)
    assert values["recall"] == 0.0
    # far away samples: nothing inside anything
    values = assert_matches(rng.standard_normal((40, 2)) + 100.0, rng.standard_normal((40, 2)), 5)
    assert values == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    # the largest k the reference package accepts (k + 1 < min(N, M))
    assert_matches(rng.standard_normal((12, 2)), rng.standard_normal((12, 2)), 10)


def test_identical_sets_closed_form() -> None:
    """x = ref, distinct points in general position: every point lies in its own ball (precision = recall =
    coverage = 1), and ball j contains exactly k points (itself and its k − 1 nearer neighbours), so density = 1."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((100, 3))
    values = prdc_values(a, a, 5)
    assert values["precision"] == values["recall"] == values["coverage"] == 1.0
    assert values["density"] == pytest.approx(1.0, abs=1e-12)


def test_too_few_points_give_nan() -> None:
    rng = np.random.default_rng(0)
    values = prdc_values(rng.standard_normal((5, 2)), rng.standard_normal((50, 2)), 5)
    assert set(values) == set(KEYS) and all(math.isnan(v) for v in values.values())
    with pytest.raises(ValueError, match="nearest_k"):
        prdc_values(rng.standard_normal((50, 2)), rng.standard_normal((50, 2)), 0)
    with pytest.raises(ValueError, match="k="):
        knn_radii(rng.standard_normal((5, 2)), 5)


def test_knn_radii_brute_force() -> None:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((40, 3))
    d = np.sqrt(((a[:, None] - a[None]) ** 2).sum(-1))
    expected = np.sort(d, axis=1)[:, 3]  # column 0 is the point itself
    np.testing.assert_allclose(knn_radii(a, 3), expected, rtol=0, atol=1e-12)


def test_registered_metric_subsamples_with_its_rng() -> None:
    assert "prdc" in METRICS.names() and "logdensity" in METRICS.names()
    rng = np.random.default_rng(2)
    x, ref = rng.standard_normal((300, 2)), rng.standard_normal((500, 2))
    full = prdc(x, ref, meta={}, rng=np.random.default_rng(0))
    assert full == prdc_values(x, ref, 5)  # below max_points nothing is drawn
    a = prdc(x, ref, meta={}, rng=np.random.default_rng(1), max_points=100, nearest_k=3)
    b = prdc(x, ref, meta={}, rng=np.random.default_rng(1), max_points=100, nearest_k=3)
    assert a == b and a != prdc_values(x, ref, 3)
    values = evaluate(x, ref, meta={"mixture": None}, metrics={"prdc": {"nearest_k": 3}, "logdensity": {}}, seed=0)
    assert set(values) == {"nonfinite_fraction", *KEYS}  # logdensity: {} without a mixture
    with pytest.raises(ValueError, match="metrics.prdc.nearest_k"):
        evaluate(x, ref, meta={}, metrics={"prdc": {"nearest_k": 0}}, seed=0)


def test_metrics_do_not_import_torch() -> None:
    code = (
        "import sys, numpy as np\n"
        "from ttdm.metrics.evaluate import evaluate\n"
        "m = {'weights': [1.0], 'means': [[0.0, 0.0]], 'stds': [[1.0, 1.0]]}\n"
        "x = np.random.default_rng(0).standard_normal((50, 2))\n"
        "evaluate(x, x + 0.1, meta={'mixture': m}, metrics={'prdc': {}, 'logdensity': {}}, seed=0)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- true log-density of the samples


def two_component_mixture() -> dict:
    return {"weights": [0.3, 0.7], "means": [[-1.0, 0.5], [2.0, -0.5]], "stds": [[0.4, 0.8], [1.2, 0.3]]}


def scipy_log_prob(x: np.ndarray, mixture: dict) -> np.ndarray:
    dens = sum(
        w * scipy.stats.multivariate_normal(mean=mu, cov=np.diag(np.square(s))).pdf(x)
        for w, mu, s in zip(mixture["weights"], mixture["means"], mixture["stds"])
    )
    return np.log(dens)


def test_sample_logp_matches_scipy() -> None:
    mixture = two_component_mixture()
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 2)) * 2.0
    np.testing.assert_allclose(mixture_log_prob(x, mixture), scipy_log_prob(x, mixture), rtol=1e-12, atol=1e-12)
    values = logdensity(x, x, meta={"mixture": mixture}, rng=rng)
    assert values == {"sample_logp": pytest.approx(np.mean(scipy_log_prob(x, mixture)) / 2, rel=1e-12)}
    assert logdensity(x, x, meta={"mixture": None}, rng=rng) == {}
    assert logdensity(x, x, meta={}, rng=rng) == {}


def test_sample_logp_matches_the_mixture_class_and_ranks_blur() -> None:
    from ttdm.data.mixture import GaussianMixture

    mixture = two_component_mixture()
    gm = GaussianMixture.from_dict(mixture)
    rng = np.random.default_rng(5)
    x = gm.sample(2000, rng)
    np.testing.assert_allclose(mixture_log_prob(x, mixture), gm.log_prob(x), rtol=1e-12, atol=1e-12)
    sharp = logdensity(x, x, meta={"mixture": mixture}, rng=rng)["sample_logp"]
    blurred = logdensity(x + 0.5 * rng.standard_normal(x.shape), x, meta={"mixture": mixture}, rng=rng)["sample_logp"]
    assert blurred < sharp
    # E_p[log p] = −H(p): a 1-component mixture's entropy is known, ½ log(2πe s²) per dimension
    single = {"weights": [1.0], "means": [[0.0, 0.0]], "stds": [[0.5, 0.5]]}
    y = rng.standard_normal((200_000, 2)) * 0.5
    expected = -0.5 * math.log(2 * math.pi * math.e * 0.25)
    assert logdensity(y, y, meta={"mixture": single}, rng=rng)["sample_logp"] == pytest.approx(expected, abs=5e-3)
