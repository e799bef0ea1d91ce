"""Generated data sets: the 2-D toy distributions of the flow and diffusion literature, and a D-dimensional mixture.

The 2-D sets follow FFJORD's toy data (Grathwohl et al. 2019, ``lib/toy_data.py``) and, for the 5×5 grid, the
WGAN-GP/VEEGAN grid that DDGAN (Xiao et al. 2022) uses. Where a reference lays points on an evenly spaced grid of
angles (rings, sklearn's moons) these generators draw the angle uniformly instead: the same distribution, but every
call gives independent draws. The Gaussian mixtures are sampled from their :class:`GaussianMixture`, so the stored
density is exact. Overall scales do not matter: the data stage standardises every generated set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ttdm.data import DATASETS
from ttdm.data.base import Dataset
from ttdm.data.mixture import GaussianMixture
from ttdm.options import NoOptions, check_options, option


@dataclass(frozen=True)
class EightGaussiansOptions:
    std: float = option(0.5, "standard deviation of each Gaussian before the division by 1.414", gt=0)


@dataclass(frozen=True)
class GridGaussiansOptions:
    std: float = option(0.05, "standard deviation of each Gaussian before the division by 2.828", gt=0)


@dataclass(frozen=True)
class SwissRollOptions:
    noise: float = option(1.0, "standard deviation of the Gaussian noise added before the division by 5", min=0)


@dataclass(frozen=True)
class MoonsOptions:
    noise: float = option(0.1, "standard deviation of the Gaussian noise (sklearn's make_moons)", min=0)


@dataclass(frozen=True)
class RingsOptions:
    noise: float = option(0.08, "standard deviation of the Gaussian noise", min=0)


@dataclass(frozen=True)
class PinwheelOptions:
    n_arms: int = option(5, "number of arms", min=1)
    radial_std: float = option(0.3, "radial noise", min=0)
    tangential_std: float = option(0.1, "tangential noise", min=0)
    rate: float = option(0.25, "how fast the arms curl", min=0)


@dataclass(frozen=True)
class GaussiansNDOptions:
    dim: int = option(8, "dimension D", min=1)
    n_modes: int = option(8, "number of Gaussians K", min=1)
    std: float = option(0.5, "standard deviation of every Gaussian", gt=0)
    radius: float = option(4.0, "distance of every mean from the origin", gt=0)
    mode_seed: int = option(0, "seed of the mean directions", min=0)


def _mixture_dataset(mixture: GaussianMixture, source: str) -> Dataset:
    return Dataset(source=source, sample=mixture.sample, mixture=mixture)


@DATASETS.register("8gaussians", options=EightGaussiansOptions)
def eight_gaussians(cfg: dict[str, Any]) -> Dataset:
    """8 equal Gaussians with means 4·(cos kπ/4, sin kπ/4) and std ``std`` (0.5), all divided by 1.414 (FFJORD)."""
    std = check_options(EightGaussiansOptions, cfg, "8gaussians").std
    angles = np.arange(8) * math.pi / 4
    means = 4.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1) / 1.414  # (8, 2)
    mixture = GaussianMixture(np.full(8, 1 / 8), means, np.full((8, 2), std / 1.414))
    return _mixture_dataset(mixture, f"8 Gaussians on a circle (FFJORD toy data), std {std} at radius 4")


@DATASETS.register("25gaussians", options=GridGaussiansOptions)
def twenty_five_gaussians(cfg: dict[str, Any]) -> Dataset:
    """25 equal Gaussians with means 2·(i, j), i, j ∈ {−2, …, 2}, std ``std`` (0.05), all divided by 2.828 (DDGAN)."""
    std = check_options(GridGaussiansOptions, cfg, "25gaussians").std
    grid = np.arange(-2, 3, dtype=np.float64)
    means = 2.0 * np.stack(np.meshgrid(grid, grid, indexing="ij"), axis=-1).reshape(25, 2) / 2.828  # (25, 2)
    mixture = GaussianMixture(np.full(25, 1 / 25), means, np.full((25, 2), std / 2.828))
    return _mixture_dataset(mixture, f"25 Gaussians on a 5x5 grid of spacing 2 (WGAN-GP, DDGAN), std {std}")


@DATASETS.register("swissroll", options=SwissRollOptions)
def swissroll(cfg: dict[str, Any]) -> Dataset:
    """A 2-D swiss roll: (t cos t, t sin t) + ``noise``·z, t = 1.5π(1 + 2u), u ~ U[0, 1], divided by 5 (FFJORD)."""
    noise = check_options(SwissRollOptions, cfg, "swissroll").noise

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = 1.5 * math.pi * (1 + 2 * rng.random(n))  # (n,), sklearn's make_swiss_roll
        x = np.stack([t * np.cos(t), t * np.sin(t)], axis=1)  # (n, 2)
        return (x + noise * rng.standard_normal((n, 2))) / 5.0

    return Dataset(source=f"swiss roll (FFJORD toy data), noise {noise}", sample=sample)


@DATASETS.register("moons", options=MoonsOptions)
def moons(cfg: dict[str, Any]) -> Dataset:
    """Two interleaved half circles, sklearn's make_moons with ``noise`` (0.1), then 2x + (−1, −0.2) (FFJORD).

    Upper moon (cos θ, sin θ), lower moon (1 − cos θ, 0.5 − sin θ), θ ~ U[0, π], each moon with probability 1/2.
    """
    noise = check_options(MoonsOptions, cfg, "moons").noise

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        theta = math.pi * rng.random(n)  # (n,)
        lower = rng.random(n) < 0.5  # (n,)
        x = np.stack([np.cos(theta), np.sin(theta)], axis=1)  # (n, 2)
        x[lower] = np.array([1.0, 0.5]) - x[lower]
        x += noise * rng.standard_normal((n, 2))
        return 2.0 * x + np.array([-1.0, -0.2])

    return Dataset(source=f"two moons (sklearn make_moons as in FFJORD toy data), noise {noise}", sample=sample)


@DATASETS.register("checkerboard", options=NoOptions)
def checkerboard(cfg: dict[str, Any]) -> Dataset:
    """Uniform on the 8 dark squares of a 4×4 checkerboard of side-2 squares on [−4, 4]² (FFJORD).

    x₁ ~ U[−2, 2), x₂ ~ U[0, 1) − 2b + (⌊x₁⌋ mod 2), b ~ Bernoulli(½), then 2(x₁, x₂): ⌊x₁/2⌋ + ⌊x₂/2⌋ is even.
    """
    check_options(NoOptions, cfg, "checkerboard")

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        x1 = 4.0 * rng.random(n) - 2.0  # (n,)
        x2 = rng.random(n) - 2.0 * rng.integers(0, 2, n) + np.floor(x1) % 2  # (n,)
        return 2.0 * np.stack([x1, x2], axis=1)

    return Dataset(source="checkerboard (FFJORD toy data)", sample=sample)


@DATASETS.register("rings", options=RingsOptions)
def rings(cfg: dict[str, Any]) -> Dataset:
    """Four concentric circles of radii 3, 2.25, 1.5, 0.75 with equal mass, plus ``noise``·z (0.08) (FFJORD)."""
    noise = check_options(RingsOptions, cfg, "rings").noise
    radii = 3.0 * np.array([1.0, 0.75, 0.5, 0.25])

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        r = radii[rng.integers(0, len(radii), n)]  # (n,)
        theta = 2 * math.pi * rng.random(n)  # (n,)
        x = r[:, None] * np.stack([np.cos(theta), np.sin(theta)], axis=1)  # (n, 2)
        return x + noise * rng.standard_normal((n, 2))

    return Dataset(source=f"4 concentric rings (FFJORD toy data), noise {noise}", sample=sample)


@DATASETS.register("pinwheel", options=PinwheelOptions)
def pinwheel(cfg: dict[str, Any]) -> Dataset:
    """A pinwheel of ``n_arms`` (5) curved arms (FFJORD, after Johnson et al. 2016).

    f = (1 + radial_std·z₁, tangential_std·z₂), angle a = 2πk/n_arms + rate·exp(f₁), k uniform; the point is
    2·(f₁ cos a + f₂ sin a, −f₁ sin a + f₂ cos a). Defaults radial_std 0.3, tangential_std 0.1, rate 0.25.
    """
    opts = check_options(PinwheelOptions, cfg, "pinwheel")
    n_arms, radial, tangential, rate = opts.n_arms, opts.radial_std, opts.tangential_std, opts.rate

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        f = rng.standard_normal((n, 2)) * np.array([radial, tangential])  # (n, 2)
        f[:, 0] += 1.0
        a = 2 * math.pi * rng.integers(0, n_arms, n) / n_arms + rate * np.exp(f[:, 0])  # (n,)
        cos, sin = np.cos(a), np.sin(a)
        return 2.0 * np.stack([f[:, 0] * cos + f[:, 1] * sin, -f[:, 0] * sin + f[:, 1] * cos], axis=1)

    return Dataset(source=f"pinwheel with {n_arms} arms (FFJORD toy data)", sample=sample)


@DATASETS.register("gaussians_nd", options=GaussiansNDOptions)
def gaussians_nd(cfg: dict[str, Any]) -> Dataset:
    """``n_modes`` (8) equal Gaussians in ``dim`` (8) dimensions with std ``std`` (0.5) and means at ``radius`` (4).

    The mean directions are uniform on the unit sphere, drawn once from ``np.random.default_rng(mode_seed)`` (0), so
    the distribution is fixed by the options; random directions in D ≥ 8 are nearly orthogonal, which puts modes
    about radius·√2 apart.
    """
    opts = check_options(GaussiansNDOptions, cfg, "gaussians_nd")
    dim, n_modes, std, radius, mode_seed = opts.dim, opts.n_modes, opts.std, opts.radius, opts.mode_seed
    directions = np.random.default_rng(mode_seed).standard_normal((n_modes, dim))  # (K, D)
    means = radius * directions / np.linalg.norm(directions, axis=1, keepdims=True)  # (K, D)
    mixture = GaussianMixture(np.full(n_modes, 1 / n_modes), means, np.full((n_modes, dim), float(std)))
    source = f"{n_modes} Gaussians in {dim} dimensions, std {std}, means at radius {radius} (mode_seed {mode_seed})"
    return _mixture_dataset(mixture, source)
