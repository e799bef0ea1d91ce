"""ttdm: a reproducible research pipeline for efficient diffusion models.

Notation used across the package (see docs/notation.md):
    D  data dimension, N number of points, B batch size
    T  number of discrete diffusion steps, i in {0, ..., T-1} a step index, t = (i + 1) / T in (0, 1]
    alpha_t = sqrt(abar_t), sigma_t = sqrt(1 - abar_t), lambda_t = log(alpha_t / sigma_t)
    r  tensor-train ranks, m basis size, G a core
"""

__version__ = "0.1.0"
