"""The digits classifier and the metrics on its features: FD against scipy's matrix square root and the Gaussian
closed form, PRDC against the ``prdc`` package, the class KL against its definition, labels against sklearn."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg
from prdc import compute_prdc

from ttdm.analysis.classifier import ClassifierOptions, features_and_probs, load_classifier
from ttdm.metrics.features import class_kl, feature_metrics, frechet_distance
from ttdm.stages.classifier import train_classifier_stage
from ttdm.stages.data import prepare_dataset
from ttdm.stages.evaluate import evaluate_floor


def fid_reference(fx: np.ndarray, fy: np.ndarray) -> float:
    """FID's formula as written in pytorch-fid: tr(sqrtm(Σ_x Σ_y)) by scipy.linalg.sqrtm."""
    mu_x, mu_y, cx, cy = fx.mean(0), fy.mean(0), np.cov(fx, rowvar=False), np.cov(fy, rowvar=False)
    covmean = scipy.linalg.sqrtm(cx @ cy).real
    return float(((mu_x - mu_y) ** 2).sum() + np.trace(cx + cy - 2 * covmean))


def test_frechet_distance_matches_scipy_and_the_gaussian_closed_form():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    cov_x, cov_y = a @ a.T + np.eye(4), b @ b.T + 0.5 * np.eye(4)
    mu_x, mu_y = np.zeros(4), np.array([1.0, -0.5, 0.0, 2.0])
    fx = rng.multivariate_normal(mu_x, cov_x, size=200_000)
    fy = rng.multivariate_normal(mu_y, cov_y, size=200_000)
    assert frechet_distance(fx, fy) == pytest.approx(fid_reference(fx, fy), rel=1e-8)
    root = scipy.linalg.sqrtm(cov_x).real
    exact = ((mu_x - mu_y) ** 2).sum() + np.trace(cov_x + cov_y - 2 * scipy.linalg.sqrtm(root @ cov_y @ root).real)
    assert frechet_distance(fx, fy) == pytest.approx(exact, rel=0.02)
    assert frechet_distance(fx, fx) == pytest.approx(0.0, abs=1e-8)


def test_class_kl_of_known_histograms():
    onehot = np.eye(10)
    assert class_kl(onehot[np.arange(100) % 10]) == (pytest.approx(0.0, abs=1e-12), 10)
    assert class_kl(onehot[np.zeros(50, dtype=int)]) == (pytest.approx(np.log(10)), 1)
    hist = np.array([0.5, 0.25, 0.25])
    probs = np.eye(3)[[0, 0, 1, 2]]
    assert class_kl(probs)[0] == pytest.approx(float((hist * np.log(3 * hist)).sum()))


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits")
    prepare_dataset({"name": "digits", "kind": "digits", "n_train": 997, "n_test": 400, "n_floor": 200, "seed": 0},
                    out)
    return out


def test_digits_labels_are_the_digits_of_the_rows(digits_dir):
    from sklearn.datasets import load_digits

    from ttdm.data.digits import to_unit_range

    bunch = load_digits()
    rows = {to_unit_range(r).astype(np.float32).tobytes(): int(y) for r, y in zip(bunch.data, bunch.target)}
    labels = json.loads((digits_dir / "labels.json").read_text())
    meta = json.loads((digits_dir / "meta.json").read_text())
    assert meta["n_classes"] == 10
    for split in ("train", "test", "floor"):
        x = np.load(digits_dir / f"{split}.npy")
        assert len(labels[split]) == len(x)
        assert all(rows[r.tobytes()] == y for r, y in zip(x, labels[split]))


def test_classifier_reaches_its_accuracy_and_its_features_give_the_metrics(digits_dir, tmp_path):
    record = train_classifier_stage({"options": {}, "seed": 0}, data_dir=digits_dir, out_dir=tmp_path)
    assert record["test_accuracy"] >= ClassifierOptions().min_accuracy
    model = load_classifier(tmp_path / "model.pt")
    test, floor = np.load(digits_dir / "test.npy"), np.load(digits_dir / "floor.npy")
    fx, _ = features_and_probs(model, floor)
    fy, _ = features_and_probs(model, test)
    ours = feature_metrics(floor, test, model, nearest_k=5)
    ref = compute_prdc(real_features=fy, fake_features=fx, nearest_k=5)
    for key in ("precision", "recall", "density", "coverage"):
        assert ours[f"f_{key}"] == pytest.approx(ref[key], rel=1e-12)
    assert ours["classes_covered"] == 10 and ours["class_kl"] < 0.05
    # blurred digits (every sample the mean image) sit far from the floor on FD and cover one class
    blur = np.repeat(test.mean(0, keepdims=True), len(floor), 0) + 1e-3 * np.random.default_rng(0).normal(
        size=floor.shape)
    worse = feature_metrics(blur, test, model)
    assert worse["fd"] > 10 * ours["fd"] and worse["classes_covered"] <= 2 and worse["f_recall"] < 0.05
    # the floor job adds them to its metrics when it is given the classifier
    out = evaluate_floor({"metrics": {"swd": {}}, "seed": 0}, data_dir=digits_dir, out=tmp_path / "floor.csv",
                         classifier=tmp_path / "model.pt")
    text = out.read_text()
    assert "fd," in text and "class_kl," in text and "swd," in text


def test_classifier_below_its_accuracy_is_an_error(digits_dir, tmp_path):
    with pytest.raises(ValueError, match="below classifier.min_accuracy = 0.999"):
        train_classifier_stage({"options": {"epochs": 1, "min_accuracy": 0.999}, "seed": 0}, data_dir=digits_dir,
                               out_dir=tmp_path)
    assert not (tmp_path / "model.pt").exists()


def test_config_refuses_an_unlabelled_classifier_dataset(quick_config):
    from ttdm.config import ConfigError, validate_config

    quick_config["classifier"] = {"datasets": ["moons", "nope"], "epochs": 0}
    with pytest.raises(ConfigError) as err:
        validate_config(quick_config)
    message = str(err.value)
    assert "classifier.datasets: 'moons' is of kind 'moons', which has no class labels; labelled kinds: digits" in message
    assert "classifier.datasets: 'nope' is not defined under datasets" in message
    assert "classifier.epochs" in message
