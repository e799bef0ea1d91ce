"""The data stage: every registered set prepares, splits are standardised, disjoint and reproducible, bad files fail."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.datasets import load_digits

from ttdm.data import DATASETS
from ttdm.data.mixture import GaussianMixture
from ttdm.stages.data import prepare_dataset

GENERATED = ["8gaussians", "25gaussians", "swissroll", "moons", "checkerboard", "rings", "pinwheel", "gaussians_nd"]
MIXTURES = ["8gaussians", "25gaussians", "gaussians_nd"]


def spec_of(kind: str, *, n_train: int = 300, n_test: int = 100, n_floor: int = 150, seed: int = 0, **opts) -> dict:
    return {"name": kind, "kind": kind, "n_train": n_train, "n_test": n_test, "n_floor": n_floor, "seed": seed, **opts}


def load_splits(out) -> dict[str, np.ndarray]:
    return {s: np.load(out / f"{s}.npy", allow_pickle=False) for s in ("train", "test", "floor")}


def raw_draws(spec: dict) -> dict[str, np.ndarray]:
    """The generated splits before standardisation, re-drawn by the protocol documented in ttdm.data.prepare."""
    cfg = {k: v for k, v in spec.items() if k not in ("name", "kind", "n_train", "n_test", "n_floor", "seed")}
    dataset = DATASETS.get(spec["kind"])(cfg)
    main, floor = (np.random.default_rng(s) for s in np.random.SeedSequence(spec["seed"]).spawn(2))
    x = dataset.sample(spec["n_train"] + spec["n_test"], main)
    n_train = spec["n_train"]
    return {"train": x[:n_train], "test": x[n_train:], "floor": dataset.sample(spec["n_floor"], floor)}


def test_every_registered_kind_is_covered():
    assert set(DATASETS.names()) == set(GENERATED) | {"digits", "file"}


# --------------------------------------------------------------------------------------------------------------------
# Generated sets


@pytest.mark.parametrize("kind", GENERATED)
def test_generated_set_is_stored_standardised(kind, tmp_path):
    spec = spec_of(kind)
    meta = prepare_dataset(spec, tmp_path)
    splits = load_splits(tmp_path)
    dim = 8 if kind == "gaussians_nd" else 2
    for name, n in (("train", 300), ("test", 100), ("floor", 150)):
        assert splits[name].dtype == np.float32 and splits[name].shape == (n, dim)
    assert (meta["dim"], meta["n_train"], meta["n_test"], meta["n_floor"]) == (dim, 300, 100, 150)
    assert meta["image_shape"] is None and meta["levels"] is None and meta["notes"] == []
    assert (meta["mixture"] is not None) == (kind in MIXTURES)
    assert json.loads((tmp_path / "meta.json").read_text()) == meta
    assert json.loads((tmp_path / "spec.json").read_text()) == spec
    # train has zero mean and unit std per coordinate (float32 storage: 1e-5)
    np.testing.assert_allclose(splits["train"].mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(splits["train"].std(axis=0), 1, atol=1e-5)
    # every split is the raw draw mapped with the train split's moments
    raw = raw_draws(spec)
    shift, scale = raw["train"].mean(axis=0), raw["train"].std(axis=0)
    np.testing.assert_allclose(meta["standardize"]["shift"], shift, rtol=1e-12)
    np.testing.assert_allclose(meta["standardize"]["scale"], scale, rtol=1e-12)
    for name in splits:
        np.testing.assert_allclose(splits[name], (raw[name] - shift) / scale, rtol=1e-6, atol=1e-6)


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path):
    for d in ("a", "b"):
        prepare_dataset(spec_of("moons"), tmp_path / d)
    prepare_dataset(spec_of("moons", seed=1), tmp_path / "c")
    for f in ("train.npy", "test.npy", "floor.npy", "labels.json", "meta.json"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    assert (tmp_path / "a" / "train.npy").read_bytes() != (tmp_path / "c" / "train.npy").read_bytes()


def test_floor_is_an_independent_stream(tmp_path):
    """Changing n_train or n_test leaves the floor draw as it is; the floor shares no row with train/test."""
    prepare_dataset(spec_of("rings"), tmp_path / "a")
    prepare_dataset(spec_of("rings", n_train=400, n_test=50), tmp_path / "b")
    a, b = load_splits(tmp_path / "a"), load_splits(tmp_path / "b")
    meta_a, meta_b = (json.loads((tmp_path / d / "meta.json").read_text()) for d in ("a", "b"))
    raw_a = a["floor"] * np.float32(meta_a["standardize"]["scale"]) + np.float32(meta_a["standardize"]["shift"])
    raw_b = b["floor"] * np.float32(meta_b["standardize"]["scale"]) + np.float32(meta_b["standardize"]["shift"])
    np.testing.assert_allclose(raw_a, raw_b, rtol=1e-5, atol=1e-5)
    train_rows = {r.tobytes() for r in np.vstack([a["train"], a["test"]])}
    assert not any(r.tobytes() in train_rows for r in a["floor"])


@pytest.mark.parametrize("kind", MIXTURES)
def test_stored_mixture_is_the_density_of_the_stored_data(kind, tmp_path):
    """Floor moments match the stored mixture's, and its mean log-likelihood matches that of the mixture's own draws.

    The floor is not used to fit the standardisation, so it tests the transformed mixture independently. Tolerances:
    5 standard errors for means, 0.05 for covariances (n = 20 000), 5 standard errors for the mean log-likelihood.
    """
    n = 20_000
    meta = prepare_dataset(spec_of(kind, n_train=2000, n_test=100, n_floor=n), tmp_path)
    floor = load_splits(tmp_path)["floor"].astype(np.float64)
    mix = GaussianMixture.from_dict(meta["mixture"])
    mean = mix.weights @ mix.means
    cov = np.einsum("k,kd,ke->de", mix.weights, mix.means, mix.means) + np.diag(mix.weights @ mix.stds**2)
    cov -= np.outer(mean, mean)
    assert np.abs(floor.mean(axis=0) - mean).max() < 5 * np.sqrt(cov.diagonal().max() / n)
    np.testing.assert_allclose(np.cov(floor.T), cov, atol=0.05)
    own = mix.log_prob(mix.sample(n, np.random.default_rng(123)))
    stored = mix.log_prob(floor)
    assert abs(stored.mean() - own.mean()) < 5 * np.sqrt((own.var() + stored.var()) / n)
    # the raw (untransformed) mixture is not the stored density: the same test tells it apart
    raw_mix = DATASETS.get(kind)({}).mixture
    raw_own = raw_mix.log_prob(raw_mix.sample(n, np.random.default_rng(1)))
    assert abs(raw_mix.log_prob(floor).mean() - raw_own.mean()) > 0.1


def test_mixture_geometry_and_options():
    eight = DATASETS.get("8gaussians")({}).mixture
    np.testing.assert_allclose(np.linalg.norm(eight.means, axis=1), 4 / 1.414)
    angles = np.sort(np.mod(np.arctan2(eight.means[:, 1], eight.means[:, 0]), 2 * math.pi))
    np.testing.assert_allclose(np.diff(angles), math.pi / 4, atol=1e-12)
    grid = DATASETS.get("25gaussians")({}).mixture
    steps = np.unique(np.round(grid.means * 2.828 / 2, 12))
    np.testing.assert_array_equal(steps, [-2, -1, 0, 1, 2])
    assert len({tuple(m) for m in np.round(grid.means, 12)}) == 25
    np.testing.assert_allclose(grid.stds, 0.05 / 2.828)
    nd = DATASETS.get("gaussians_nd")({"dim": 3, "n_modes": 5, "std": 0.2})
    assert nd.mixture.means.shape == (5, 3) and nd.sample(7, np.random.default_rng(0)).shape == (7, 3)
    np.testing.assert_allclose(np.linalg.norm(nd.mixture.means, axis=1), 4.0)


def test_noiseless_toy_sets_lie_on_their_curves():
    rng = np.random.default_rng(0)
    rings = DATASETS.get("rings")({"noise": 0}).sample(500, rng)
    radii = np.linalg.norm(rings, axis=1)
    assert np.allclose(np.min(np.abs(radii[:, None] - [3.0, 2.25, 1.5, 0.75]), axis=1), 0, atol=1e-12)
    moons = (DATASETS.get("moons")({"noise": 0}).sample(500, rng) - [-1.0, -0.2]) / 2  # back to sklearn's frame
    upper = np.abs(np.linalg.norm(moons, axis=1) - 1) < 1e-9
    lower = np.abs(np.linalg.norm(moons - [1.0, 0.5], axis=1) - 1) < 1e-9
    assert np.all(upper & (moons[:, 1] >= 0) | lower & (moons[:, 1] <= 0.5)) and upper.any() and lower.any()
    roll = 5 * DATASETS.get("swissroll")({"noise": 0}).sample(500, rng)  # = (t cos t, t sin t)
    t = np.linalg.norm(roll, axis=1)
    assert (t >= 1.5 * math.pi - 1e-9).all() and (t <= 4.5 * math.pi + 1e-9).all()
    np.testing.assert_allclose(roll, t[:, None] * np.stack([np.cos(t), np.sin(t)], axis=1), atol=1e-9)
    board = DATASETS.get("checkerboard")({}).sample(2000, rng)
    assert (np.abs(board) <= 4).all() and ((np.floor(board[:, 0] / 2) + np.floor(board[:, 1] / 2)) % 2 == 0).all()
    wheel = DATASETS.get("pinwheel")({"radial_std": 0, "tangential_std": 0}).sample(500, rng)
    np.testing.assert_allclose(np.linalg.norm(wheel, axis=1), 2.0)  # f = (1, 0): radius 2 on every arm


# --------------------------------------------------------------------------------------------------------------------
# Digits


def test_digits_are_a_disjoint_unstandardised_partition(tmp_path):
    meta = prepare_dataset(spec_of("digits", n_train=997, n_test=400, n_floor=400), tmp_path)
    splits = load_splits(tmp_path)
    assert meta["image_shape"] == [1, 8, 8] and meta["levels"] == 17 and meta["standardize"] is None
    assert meta["dim"] == 64 and meta["mixture"] is None and meta["n_train"] == 997
    every = np.vstack(list(splits.values())).astype(np.float64)  # (1797, 64)
    levels = -1 + 2 * np.arange(17) / 16
    assert np.isin(every, levels).all()
    # 997 + 400 + 400 = 1797: the splits are a partition of all images iff their rows, sorted, are the images, sorted
    reference = load_digits().data / 16 * 2 - 1
    np.testing.assert_array_equal(np.unique(every, axis=0, return_counts=True)[1],
                                  np.unique(reference, axis=0, return_counts=True)[1])
    np.testing.assert_array_equal(np.unique(every, axis=0), np.unique(reference, axis=0))


def test_digits_refuse_too_many_held_out_rows(tmp_path):
    with pytest.raises(ValueError, match=r"load_digits.*1797 rows"):
        prepare_dataset(spec_of("digits", n_train=10, n_test=1000, n_floor=797), tmp_path)


# --------------------------------------------------------------------------------------------------------------------
# User files


def id_table(n: int = 60, d: int = 3) -> np.ndarray:
    """Rows with a unique id in column 0 (so splits can be traced back) and random values elsewhere."""
    rng = np.random.default_rng(0)
    return np.column_stack([np.arange(n, dtype=np.float64), rng.normal(size=(n, d - 1))])


@pytest.mark.parametrize("form", ["npy", "csv_header", "csv_plain"])
def test_user_file_splits_are_disjoint_and_standardised(form, tmp_path):
    table = id_table()
    path = tmp_path / ("data.npy" if form == "npy" else "data.csv")
    if form == "npy":
        np.save(path, table)
    else:
        header = "id,a,b\n" if form == "csv_header" else ""
        path.write_text(header + "\n".join(",".join(repr(float(v)) for v in row) for row in table) + "\n")
    meta = prepare_dataset(spec_of("file", n_train=30, n_test=10, n_floor=15, path=str(path)), tmp_path / "out")
    splits = load_splits(tmp_path / "out")
    shift, scale = np.array(meta["standardize"]["shift"]), np.array(meta["standardize"]["scale"])
    np.testing.assert_allclose(splits["train"].mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(splits["train"].std(axis=0), 1, atol=1e-6)
    ids = {k: np.round(v[:, 0] * scale[0] + shift[0]).astype(int) for k, v in splits.items()}
    assert [len(set(ids[k])) for k in ("train", "test", "floor")] == [30, 10, 15]
    assert len(set(ids["train"]) | set(ids["test"]) | set(ids["floor"])) == 55  # disjoint
    for k, v in splits.items():  # each stored row is its source row, standardised
        np.testing.assert_allclose(v * scale + shift, table[ids[k]], atol=1e-5)
    assert meta["source"] == f"user file {path}"


def test_user_file_with_too_few_rows_shrinks_train(tmp_path):
    path = tmp_path / "small.npy"
    np.save(path, id_table(50))
    with pytest.warns(UserWarning, match="n_train shrunk from 100 to 30"):
        meta = prepare_dataset(spec_of("file", n_train=100, n_test=10, n_floor=10, path=str(path)), tmp_path / "o")
    assert meta["n_train"] == 30 and meta["n_train_requested"] == 100 and "small.npy" in meta["notes"][0]
    assert np.load(tmp_path / "o" / "train.npy").shape == (30, 3)


def test_constant_column_keeps_scale_one(tmp_path):
    table = id_table(40)
    table[:, 2] = 7.0
    path = tmp_path / "const.npy"
    np.save(path, table)
    meta = prepare_dataset(spec_of("file", n_train=20, n_test=10, n_floor=10, path=str(path)), tmp_path / "o")
    assert meta["standardize"]["scale"][2] == 1.0 and "[2]" in meta["notes"][0]
    assert (np.load(tmp_path / "o" / "test.npy")[:, 2] == 0).all()


def write_bad(tmp_path, case: str):
    """A bad data file for ``case``; returns its path and the pattern its error must contain besides its name."""
    p = tmp_path / f"bad_{case}.csv"
    if case == "missing":
        return tmp_path / "nowhere.csv", "not found"
    if case == "extension":
        p = tmp_path / "bad.txt"
        p.write_text("1,2\n3,4\n")
        return p, r"unknown extension '\.txt'; allowed: \.npy, \.csv"
    if case in ("nan_npy", "ndim1", "ndim3", "object", "strings"):
        p = tmp_path / f"bad_{case}.npy"
        arrays = {
            "nan_npy": np.where(np.arange(60)[:, None] % 7 == 3, np.nan, id_table()),  # rows 3, 10, …: 9 rows × 3
            "ndim1": np.arange(10.0),
            "ndim3": np.zeros((4, 2, 2)),
            "object": np.array([{"a": 1}, None], dtype=object),
            "strings": np.array([["a", "b"], ["c", "d"]]),
        }
        np.save(p, arrays[case], allow_pickle=True)
        return p, {
            "nan_npy": r"27 non-finite value\(s\).*row 3, column 0",
            "ndim1": r"2-D table.*shape \(10,\)",
            "ndim3": r"2-D table.*shape \(4, 2, 2\)",
            "object": "not a numeric .npy array",
            "strings": "dtype <U1 is not numeric",
        }[case]
    texts = {
        "inf_csv": ("x,y\n1,2\n3,inf\n-inf,4\n", r"2 non-finite value\(s\).*line 3, column 2"),
        "text_cell": ("x,y\n1,2\n3,abc\n", r"line 3, column 2 \('y'\): cannot read 'abc' as a number"),
        "empty_cell": ("1,2\n3,\n", r"line 2, column 2: cannot read '' as a number"),
        "ragged": ("1,2\n3,4,5\n", "line 2 has 3 columns, expected 2"),
        "empty": ("\n\n", "holds no rows"),
        "header_only": ("x,y\n", "header row but no data rows"),
    }
    text, pattern = texts[case]
    p.write_text(text)
    return p, pattern


BAD_CASES = ["missing", "extension", "nan_npy", "ndim1", "ndim3", "object", "strings", "inf_csv", "text_cell",
             "empty_cell", "ragged", "empty", "header_only"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_file_is_refused_with_its_name(case, tmp_path):
    path, pattern = write_bad(tmp_path, case)
    error = FileNotFoundError if case == "missing" else ValueError
    with pytest.raises(error, match=pattern) as info:
        prepare_dataset(spec_of("file", path=str(path)), tmp_path / "out")
    assert str(path) in str(info.value)
    assert not (tmp_path / "out").exists()  # nothing written


def test_too_few_rows_names_the_file(tmp_path):
    path = tmp_path / "tiny.csv"
    path.write_text("1,2\n3,4\n5,6\n")
    with pytest.raises(ValueError, match=r"tiny\.csv: has 3 rows, too few for n_test = 2 \+ n_floor = 1"):
        prepare_dataset(spec_of("file", n_train=5, n_test=2, n_floor=1, path=str(path)), tmp_path / "out")


# --------------------------------------------------------------------------------------------------------------------
# Spec checks


@pytest.mark.parametrize(
    "change, pattern",
    [
        ({"kind": "spiral"}, r"unknown dataset 'spiral'; allowed: 25gaussians, 8gaussians"),
        ({"n_train": 0}, r"n_train=0 must be a positive integer"),
        ({"n_floor": 2.5}, r"n_floor=2.5 must be a positive integer"),
        ({"n_test": True}, r"n_test=True must be a positive integer"),
        ({"seed": -1}, r"seed=-1 must be a non-negative integer"),
        ({"name": ""}, r"name='' must be a non-empty string"),
        ({"noise": -0.1}, r"moons\.noise: -0\.1 must be ≥ 0"),
        ({"noise": "high"}, r"moons\.noise: 'high' is not a number"),
        ({"nosie": 0.1}, r"moons\.nosie: unknown option; allowed: noise"),
    ],
)
def test_bad_spec_is_refused_before_any_work(change, pattern, tmp_path):
    with pytest.raises(ValueError, match=pattern):
        prepare_dataset({**spec_of("moons"), **change}, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_spec_key_is_named(tmp_path):
    spec = spec_of("moons")
    del spec["seed"]
    with pytest.raises(ValueError, match=r"lacks \['seed'\]"):
        prepare_dataset(spec, tmp_path)


def test_file_kind_needs_a_path(tmp_path):
    with pytest.raises(ValueError, match=r"file\.path: required"):
        prepare_dataset(spec_of("file"), tmp_path)


@pytest.mark.parametrize("delimiter", [";;", "", "1", '"', "\n"])
def test_bad_delimiter_is_refused(delimiter, tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("1,2\n3,4\n")
    with pytest.raises(ValueError, match=r"file\.delimiter: .* is not allowed; allowed: one character"):
        prepare_dataset(spec_of("file", path=str(path), delimiter=delimiter), tmp_path / "out")


def test_single_row_table_is_refused(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("x,y\n1,2\n")
    with pytest.raises(ValueError, match=r"one\.csv: the table has 1 row\(s\); at least 2 are needed"):
        prepare_dataset(spec_of("file", path=str(path)), tmp_path / "out")


@pytest.mark.parametrize("kind", sorted(set(GENERATED) | {"digits", "file"}))
def test_every_kind_declares_its_options(kind):
    import dataclasses

    cls = DATASETS.options(kind)
    assert cls is not None and dataclasses.is_dataclass(cls)
