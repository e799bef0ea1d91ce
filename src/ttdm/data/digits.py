"""The 8×8 handwritten digits bundled with scikit-learn (no download), as (N, 64) vectors in [−1, 1].

``sklearn.datasets.load_digits``: 1797 images of 8×8 pixels with integer values 0..16 (the UCI optical recognition of
handwritten digits set, each pixel counting the on-bits of a 4×4 block of a 32×32 bitmap). A pixel v is stored as
v/16·2 − 1, so the 17 grey levels are −1 + 2j/16, j = 0..16; the data are not standardised (images keep [−1, 1]).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ttdm.data import DATASETS
from ttdm.data.base import Dataset
from ttdm.options import NoOptions, check_options

LEVELS = 17  # pixel values 0..16


def to_unit_range(pixels: np.ndarray) -> np.ndarray:
    """v ↦ v/16·2 − 1: pixel values 0..16 to [−1, 1].  pixels: (N, 64) -> (N, 64) float64."""
    return np.asarray(pixels, dtype=np.float64) / (LEVELS - 1) * 2.0 - 1.0


@DATASETS.register("digits", options=NoOptions)
def digits(cfg: dict[str, Any]) -> Dataset:
    """All 1797 sklearn digits as rows (1797, 64) in [−1, 1], viewed as images (1, 8, 8) with 17 levels, labelled
    with their digit."""
    check_options(NoOptions, cfg, "digits")
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = bunch.data  # (1797, 64), row-major 8×8 images
    return Dataset(
        source="sklearn.datasets.load_digits (UCI optical recognition of handwritten digits, 8x8, values 0-16)",
        points=to_unit_range(pixels),
        image_shape=(1, 8, 8),
        levels=LEVELS,
        standardize=False,
        labels=bunch.target,  # (1797,) the digit 0..9
    )
