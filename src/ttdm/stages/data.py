"""The data stage: write a dataset's fixed train/test/floor splits, their labels and meta.json (docs/design.md,
"Arrays").  labels.json holds each split's class labels ({"train": [...], "test": [...], "floor": [...]}, the
digit of each digits image; −1 for every row of an unlabelled set), and meta.json its ``n_classes`` (None).

Generated sets (a ``sample`` generator): train and test are the first n_train and next n_test rows of one draw from
the stream ``SeedSequence(seed).spawn(2)[0]``; the floor is n_floor draws from the independent stream ``[1]``.
Real sets (digits, user files): one permutation ``default_rng(seed).permutation(N)`` gives test its first n_test
rows, floor the next n_floor and train the next n_train, so the three are disjoint and test/floor do not move when
n_train changes. When the table has fewer than n_train + n_test + n_floor rows, train is shrunk to the rows left
(meta.json records ``n_train_requested`` and a note, and a warning is issued), since test and floor sizes fix what
the metrics compare; fewer than n_test + n_floor + 2 rows is an error that names the data and the sizes.

Standardisation (generated sets and user files): every split becomes (x − shift)/scale with the train split's
per-coordinate mean and standard deviation (a constant coordinate keeps scale 1); a mixture density is transformed
the same way, so the mixture in meta.json is the exact density of the stored data. Digits keep [−1, 1].
The same spec gives byte-identical files.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ttdm.data import DATASETS
from ttdm.data.base import Dataset
from ttdm.io import save_json, save_npy

SPEC_KEYS = ("name", "kind", "n_train", "n_test", "n_floor", "seed")  # the rest of a spec are the loader's options
MIN_TRAIN = 2  # a standard deviation needs two rows


def prepare_dataset(spec: dict[str, Any], out_dir: str | Path) -> dict[str, Any]:
    """Write train.npy, test.npy, floor.npy (float32, (N, D)), spec.json and meta.json to ``out_dir``; return meta.

    spec: ``{"name", "kind", "n_train", "n_test", "n_floor", "seed", **options of the kind}``. The spec and the
    kind's options are checked before any data are drawn or split.
    """
    check_spec(spec)
    cfg = {k: v for k, v in spec.items() if k not in SPEC_KEYS}
    dataset = DATASETS.get(spec["kind"])(cfg)
    sizes = {k: int(spec[k]) for k in ("n_train", "n_test", "n_floor")}
    if dataset.is_generated:
        splits, notes = _draw(dataset, sizes, spec["seed"]), []
        labels = {k: np.full(len(v), -1, dtype=np.int64) for k, v in splits.items()}
    else:
        rows, notes = _split_rows(dataset, sizes, spec["seed"])
        splits = {k: dataset.points[idx] for k, idx in rows.items()}
        labels = {k: (dataset.labels[idx] if dataset.labels is not None else np.full(len(idx), -1, dtype=np.int64))
                  for k, idx in rows.items()}

    standardize, mixture = None, dataset.mixture
    if dataset.standardize:
        shift, std = splits["train"].mean(axis=0), splits["train"].std(axis=0)  # (D,), (D,); ddof 0
        scale = np.where(std > 0, std, 1.0)
        if (std == 0).any():
            notes.append(f"coordinates {np.flatnonzero(std == 0).tolist()} are constant in train and keep scale 1")
        splits = {k: (v - shift) / scale for k, v in splits.items()}
        standardize = {"shift": shift.tolist(), "scale": scale.tolist()}
        mixture = mixture.affine(shift, scale) if mixture is not None else None

    out_dir = Path(out_dir)
    for split, values in splits.items():
        save_npy(out_dir / f"{split}.npy", values.astype(np.float32))
    save_json(out_dir / "labels.json", {k: v.tolist() for k, v in labels.items()})  # −1: an unlabelled row
    meta = {
        "name": spec["name"],
        "kind": spec["kind"],
        "dim": int(splits["train"].shape[1]),
        "image_shape": list(dataset.image_shape) if dataset.image_shape is not None else None,
        "n_train": len(splits["train"]),
        "n_test": len(splits["test"]),
        "n_floor": len(splits["floor"]),
        "n_train_requested": sizes["n_train"],
        "standardize": standardize,
        "mixture": mixture.to_dict() if mixture is not None else None,
        "levels": dataset.levels,
        "n_classes": dataset.n_classes,
        "source": dataset.source,
        "notes": notes,
    }
    save_json(out_dir / "spec.json", spec)
    save_json(out_dir / "meta.json", meta)  # last: its presence means the split files are complete
    return meta


def check_spec(spec: dict[str, Any]) -> None:
    """Raise a ValueError naming the first bad field of a data spec (missing keys, unknown kind, bad sizes)."""
    if not isinstance(spec, dict):
        raise ValueError(f"a data spec must be a dict, got {type(spec).__name__}")
    missing = [k for k in SPEC_KEYS if k not in spec]
    if missing:
        raise ValueError(f"data spec lacks {missing}; required: {', '.join(SPEC_KEYS)}")
    if not isinstance(spec["name"], str) or not spec["name"]:
        raise ValueError(f"data spec name={spec['name']!r} must be a non-empty string")
    DATASETS.get(spec["kind"])  # a ValueError listing the registered kinds
    for key in ("n_train", "n_test", "n_floor"):
        if not _is_int(spec[key]) or spec[key] < 1:
            raise ValueError(f"data spec {key}={spec[key]!r} must be a positive integer")
    if not _is_int(spec["seed"]) or spec["seed"] < 0:
        raise ValueError(f"data spec seed={spec['seed']!r} must be a non-negative integer")


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _draw(dataset: Dataset, sizes: dict[str, int], seed: int) -> dict[str, np.ndarray]:
    """Train and test from one stream, the floor from an independent one.  -> {split: (n, D) float64}."""
    main, floor = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    n_train, n_test = sizes["n_train"], sizes["n_test"]
    x = dataset.sample(n_train + n_test, main)  # (n_train + n_test, D)
    return {"train": x[:n_train], "test": x[n_train:], "floor": dataset.sample(sizes["n_floor"], floor)}


def _split_rows(dataset: Dataset, sizes: dict[str, int], seed: int) -> tuple[dict[str, np.ndarray], list[str]]:
    """Disjoint test, floor and train row indices of a seeded permutation; train shrinks to the rows left if need
    be.  -> ({split: (n,) row indices}, notes)."""
    points = dataset.points
    n_rows, n_test, n_floor = len(points), sizes["n_test"], sizes["n_floor"]
    left = n_rows - n_test - n_floor
    if left < MIN_TRAIN:
        raise ValueError(
            f"{dataset.source}: has {n_rows} rows, too few for n_test = {n_test} + n_floor = {n_floor} + at least "
            f"{MIN_TRAIN} train rows; lower n_test or n_eval (the floor size)"
        )
    notes = []
    n_train = sizes["n_train"]
    if left < n_train:
        note = (
            f"n_train shrunk from {n_train} to {left}: {dataset.source} has {n_rows} rows "
            f"and n_test = {n_test}, n_floor = {n_floor}"
        )
        warnings.warn(note, stacklevel=3)
        notes.append(note)
        n_train = left
    perm = np.random.default_rng(seed).permutation(n_rows)  # (N,)
    test, floor = perm[:n_test], perm[n_test : n_test + n_floor]
    train = perm[n_test + n_floor : n_test + n_floor + n_train]
    return {"train": train, "test": test, "floor": floor}, notes
