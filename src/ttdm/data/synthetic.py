"""Generated data sets: the 2-D toy distributions of the flow and diffusion literature, and a D-dimensional mixture.

The 2-D sets follow FFJORD's toy data (Grathwohl et al. 2019, ``lib/toy_data.py``) and, for the 5×5 grid, the
WGAN-GP/VEEGAN grid that DDGAN (Xiao et al. 2022) uses. Where a reference lays points on an evenly spaced grid of
angles (rings, sklearn's moons) these generators draw the angle uniformly instead: the same distribution, but every
call gives independent draws. The Gaussian mixtures are sampled from their :class:`GaussianMixture`, so the stored
density is exact. Overall scales do not matter: the data stage standardises every generated set.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ttdm.data import DATASETS
from ttdm.data.base import Dataset, options, positive
from ttdm.data.mixture import GaussianMixture


def _mixture_dataset(mixture: GaussianMixture, source: str) -> Dataset:
    return Dataset(source=source, sample=mixture.sample, mixture=mixture)


@DATASETS.register("8gaussians")
def eight_gaussians(cfg: dict[str, Any]) -> Dataset:
    """8 equal Gaussians with means 4·(cos kπ/4, sin kπ/4) and std ``std`` (0.5), all divided by 1.414 (FFJORD)."""
    opts = options("8gaussians", cfg, {"std": 0.5})
    std = positive("8gaussians", "std", opts["std"])
    angles = np.arange(8) * math.pi / 4
    means = 4.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1) / 1.414  # (8, 2)
    mixture = GaussianMixture(np.full(8, 1 / 8), means, np.full((8, 2), std / 1.414))
    return _mixture_dataset(mixture, f"8 Gaussians on a circle (FFJORD toy data), std {std} at radius 4")


@DATASETS.register("25gaussians")
def twenty_five_gaussians(cfg: dict[str, Any]) -> Dataset:
    """25 equal Gaussians with means 2·(i, j), i, j ∈ {−2, …, 2}, std ``std`` (0.05), all divided by 2.828 (DDGAN)."""
    opts = options("25gaussians", cfg, {"std": 0.05})
    std = positive("25gaussians", "std", opts["std"])
    grid = np.arange(-2, 3, dtype=np.float64)
    means = 2.0 * np.stack(np.meshgrid(grid, grid, indexing="ij"), axis=-1).reshape(25, 2) / 2.828  # (25, 2)
    mixture = GaussianMixture(np.full(25, 1 / 25), means, np.full((25, 2), std / 2.828))
    return _mixture_dataset(mixture, f"25 Gaussians on a 5x5 grid of spacing 2 (WGAN-GP, DDGAN), std {std}")


@DATASETS.register("swissroll")
def swissroll(cfg: dict[str, Any]) -> Dataset:
    """A 2-D swiss roll: (t cos t, t sin t) + ``noise``·z, t = 1.5π(1 + 2u), u ~ U[0, 1], divided by 5 (FFJORD)."""
    noise = positive("swissroll", "noise", options("swissroll", cfg, {"noise": 1.0})["noise"], zero=True)

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = 1.5 * math.pi * (1 + 2 * rng.random(n))  # (n,), sklearn's make_swiss_roll
        x = np.stack([t * np.cos(t), t * np.sin(t)], axis=1)  # (n, 2)
        return (x + noise * rng.standard_normal((n, 2))) / 5.0

    return Dataset(source=f"swiss roll (FFJORD toy data), noise {noise}", sample=sample)


@DATASETS.register("moons")
def moons(cfg: dict[str, Any]) -> Dataset:
    """Two interleaved half circles, sklearn's make_moons with ``noise`` (0.1), then 2x + (−1, −0.2) (FFJORD).

    Upper moon (cos θ, sin θ), lower moon (1 − cos θ, 0.5 − sin θ), θ ~ U[0, π], each moon with probability 1/2.
    """
    noise = positive("moons", "noise", options("moons", cfg, {"noise": 0.1})["noise"], zero=True)

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        theta = math.pi * rng.random(n)  # (n,)
        lower = rng.random(n) < 0.5  # (n,)
        x = np.stack([np.cos(theta), np.sin(theta)], axis=1)  # (n, 2)
        x[lower] = np.array([1.0, 0.5]) - x[lower]
        x += noise * rng.standard_normal((n, 2))
        return 2.0 * x + np.array([-1.0, -0.2])

    return Dataset(source=f"two moons (sklearn make_moons as in FFJORD toy data), noise {noise}", sample=sample)


@DATASETS.register("checkerboard")
def checkerboard(cfg: dict[str, Any]) -> Dataset:
    """Uniform on the 8 dark squares of a 4×4 checkerboard of side-2 squares on [−4, 4]² (FFJORD).

    x₁ ~ U[−2, 2), x₂ ~ U[0, 1) − 2b + (⌊x₁⌋ mod 2), b ~ Bernoulli(½), then 2(x₁, x₂): ⌊x₁/2⌋ + ⌊x₂/2⌋ is even.
    """
    options("checkerboard", cfg, {})

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        x1 = 4.0 * rng.random(n) - 2.0  # (n,)
        x2 = rng.random(n) - 2.0 * rng.integers(0, 2, n) + np.floor(x1) % 2  # (n,)
        return 2.0 * np.stack([x1, x2], axis=1)

    return Dataset(source="checkerboard (FFJORD toy data)", sample=sample)


@DATASETS.register("rings")
def rings(cfg: dict[str, Any]) -> Dataset:
    """Four concentric circles of radii 3, 2.25, 1.5, 0.75 with equal mass, plus ``noise``·z (0.08) (FFJORD)."""
    noise = positive("rings", "noise", options("rings", cfg, {"noise": 0.08})["noise"], zero=True)
    radii = 3.0 * np.array([1.0, 0.75, 0.5, 0.25])

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        r = radii[rng.integers(0, len(radii), n)]  # (n,)
        theta = 2 * math.pi * rng.random(n)  # (n,)
        x = r[:, None] * np.stack([np.cos(theta), np.sin(theta)], axis=1)  # (n, 2)
        return x + noise * rng.standard_normal((n, 2))

    return Dataset(source=f"4 concentric rings (FFJORD toy data), noise {noise}", sample=sample)


@DATASETS.register("pinwheel")
def pinwheel(cfg: dict[str, Any]) -> Dataset:
    """A pinwheel of ``n_arms`` (5) curved arms (FFJORD, after Johnson et al. 2016).

    f = (1 + radial_std·z₁, tangential_std·z₂), angle a = 2πk/n_arms + rate·exp(f₁), k uniform; the point is
    2·(f₁ cos a + f₂ sin a, −f₁ sin a + f₂ cos a). Defaults radial_std 0.3, tangential_std 0.1, rate 0.25.
    """
    defaults = {"n_arms": 5, "radial_std": 0.3, "tangential_std": 0.1, "rate": 0.25}
    opts = options("pinwheel", cfg, defaults)
    n_arms = positive("pinwheel", "n_arms", opts["n_arms"], integer=True)
    radial = positive("pinwheel", "radial_std", opts["radial_std"], zero=True)
    tangential = positive("pinwheel", "tangential_std", opts["tangential_std"], zero=True)
    rate = positive("pinwheel", "rate", opts["rate"], zero=True)

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        f = rng.standard_normal((n, 2)) * np.array([radial, tangential])  # (n, 2)
        f[:, 0] += 1.0
        a = 2 * math.pi * rng.integers(0, n_arms, n) / n_arms + rate * np.exp(f[:, 0])  # (n,)
        cos, sin = np.cos(a), np.sin(a)
        return 2.0 * np.stack([f[:, 0] * cos + f[:, 1] * sin, -f[:, 0] * sin + f[:, 1] * cos], axis=1)

    return Dataset(source=f"pinwheel with {n_arms} arms (FFJORD toy data)", sample=sample)


@DATASETS.register("gaussians_nd")
def gaussians_nd(cfg: dict[str, Any]) -> Dataset:
    """``n_modes`` (8) equal Gaussians in ``dim`` (8) dimensions with std ``std`` (0.5) and means at ``radius`` (4).

    The mean directions are uniform on the unit sphere, drawn once from ``np.random.default_rng(mode_seed)`` (0), so
    the distribution is fixed by the options; random directions in D ≥ 8 are nearly orthogonal, which puts modes
    about radius·√2 apart.
    """
    defaults = {"dim": 8, "n_modes": 8, "std": 0.5, "radius": 4.0, "mode_seed": 0}
    opts = options("gaussians_nd", cfg, defaults)
    dim = positive("gaussians_nd", "dim", opts["dim"], integer=True)
    n_modes = positive("gaussians_nd", "n_modes", opts["n_modes"], integer=True)
    std = positive("gaussians_nd", "std", opts["std"])
    radius = positive("gaussians_nd", "radius", opts["radius"])
    mode_seed = positive("gaussians_nd", "mode_seed", opts["mode_seed"], integer=True, zero=True)
    directions = np.random.default_rng(mode_seed).standard_normal((n_modes, dim))  # (K, D)
    means = radius * directions / np.linalg.norm(directions, axis=1, keepdims=True)  # (K, D)
    mixture = GaussianMixture(np.full(n_modes, 1 / n_modes), means, np.full((n_modes, dim), float(std)))
    source = f"{n_modes} Gaussians in {dim} dimensions, std {std}, means at radius {radius} (mode_seed {mode_seed})"
    return _mixture_dataset(mixture, source)
