"""What a registered dataset loader returns.

A loader is registered with ``@DATASETS.register(kind, options=OptionsClass)`` on a function
``load(cfg: dict) -> Dataset``; ``cfg`` holds the dataset's own options from the config (``noise``, ``path``, ...),
never the split sizes or the seed, which the data stage (:mod:`ttdm.stages.data`) handles.  ``OptionsClass``
declares them (:mod:`ttdm.options`): the config validation checks them before any job starts, and the loader checks
them again with ``check_options(OptionsClass, cfg, kind)``, so a direct call gets the same messages.  A loader draws
nothing: generated sets return a sampler, real sets their rows, and the data stage does every random split and draw
with its own seeded generators.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ttdm.data.mixture import GaussianMixture

Sampler = Callable[[int, np.random.Generator], np.ndarray]


@dataclass(frozen=True, eq=False)
class Dataset:
    """A generated distribution (``sample``) or a finite table of rows (``points``), in raw coordinates.

    Args:
        source: a human-readable origin, written to meta.json (e.g. "FFJORD toy data 'moons', noise 0.1").
        sample: ``sample(n, rng) -> (n, D) float64``, fresh independent draws; for generated sets.
        points: (N, D) float64 rows; for real data (digits, a user's file).
        image_shape: (C, H, W) when the D = C·H·W coordinates are an image, else None.
        levels: number of equally spaced values each coordinate takes (17 grey levels for digits), else None.
        mixture: the exact density when the set is a Gaussian mixture (raw coordinates), else None.
        standardize: whether the data stage maps every coordinate to zero mean and unit variance on the train split
            (True for generated sets and user files; False for images, which keep their pixel range).
        labels: (N,) class of each row of ``points`` in 0..n_classes−1 (the digit of an image), else None.
    Exactly one of ``sample`` and ``points`` is given.
    """

    source: str
    sample: Sampler | None = None
    points: np.ndarray | None = None
    image_shape: tuple[int, ...] | None = None
    levels: int | None = None
    mixture: GaussianMixture | None = None
    standardize: bool = True
    labels: np.ndarray | None = None

    @property
    def n_classes(self) -> int | None:
        return None if self.labels is None else int(self.labels.max()) + 1

    def __post_init__(self) -> None:
        if (self.sample is None) == (self.points is None):
            raise ValueError(f"{self.source}: a Dataset needs exactly one of sample (a generator) and points")
        if self.points is not None:
            points = np.asarray(self.points, dtype=np.float64)
            if points.ndim != 2:
                raise ValueError(f"{self.source}: points must be an (N, D) array, got shape {points.shape}")
            object.__setattr__(self, "points", points)
        if self.labels is not None:
            labels = np.asarray(self.labels)
            if self.points is None or labels.shape != (len(self.points),) or not np.issubdtype(labels.dtype, np.integer):
                raise ValueError(f"{self.source}: labels must be one integer per row of points, got {labels.shape}")
            object.__setattr__(self, "labels", labels.astype(np.int64))

    @property
    def is_generated(self) -> bool:
        """True for a generator of fresh draws, False for a finite table."""
        return self.sample is not None
