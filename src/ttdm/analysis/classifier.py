"""A small CNN classifier of a labelled image dataset (the digits), whose penultimate features stand in for the
Inception network of FID (none can be downloaded here).

    x (B, D) -> view (B, C, H, W) -> [conv3×3 → ReLU] ×2 → maxpool2 → conv3×3 → ReLU → maxpool2 (when H, W ≥ 4)
             -> flatten -> linear → ReLU = features φ(x) (B, ``features``) -> dropout -> linear = logits (B, K)

Training: Adam, cross-entropy, ``epochs`` passes over the train split in mini-batches, each image shifted by up to
one pixel at random (the digits' only cheap augmentation); seeded, so the same spec gives the same weights on the
same machine.  :func:`features_and_probs` gives φ(x) and the softmax class probabilities of any array of images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ttdm.options import option


@dataclass(frozen=True)
class ClassifierOptions:
    channels: int = option(32, "width of the first convolutions (the third has twice as many)", min=1)
    features: int = option(128, "width of the penultimate layer: the feature space of FD and PRDC", min=2)
    epochs: int = option(40, "passes over the train split", min=1)
    batch_size: int = option(64, "images per step", min=1)
    lr: float = option(1e-3, "Adam learning rate", gt=0)
    dropout: float = option(0.3, "dropout before the last layer", min=0, lt=1)
    min_accuracy: float = option(0.97, "test accuracy the classifier must reach, else the job fails", min=0, max=1)


class DigitClassifier(nn.Module):
    """x: (B, C·H·W) -> logits (B, n_classes); :meth:`features` gives the penultimate activations (B, features)."""

    def __init__(self, image_shape: tuple[int, int, int], n_classes: int, channels: int = 32, features: int = 128,
                 dropout: float = 0.3) -> None:
        super().__init__()
        c, h, w = image_shape
        self.image_shape = tuple(image_shape)
        pools = 2 if min(h, w) >= 4 else 1
        self.conv = nn.Sequential(
            nn.Conv2d(c, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2) if pools == 2 else nn.Identity(),
        )
        flat = 2 * channels * (h // 2 ** pools) * (w // 2 ** pools)
        self.fc = nn.Linear(flat, features)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(features, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        z = self.conv(x.reshape(len(x), *self.image_shape))
        return F.relu(self.fc(z.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.features(x)))


def _shift(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image (B, C, H, W) shifted by (dy, dx) ∈ {−1, 0, 1}², the uncovered border filled with the background
    value −1."""
    out = torch.full_like(x, -1.0)
    h, w = x.shape[-2:]
    shifts = torch.randint(-1, 2, (len(x), 2), generator=generator)
    for (dy, dx) in shifts.unique(dim=0).tolist():
        rows = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
        src = x[rows][..., max(0, -dy): h - max(0, dy), max(0, -dx): w - max(0, dx)]
        out[rows, ..., max(0, dy): h - max(0, -dy), max(0, dx): w - max(0, -dx)] = src
    return out


def train_classifier(train_x: np.ndarray, train_y: np.ndarray, image_shape: tuple[int, int, int], n_classes: int,
                     options: ClassifierOptions, seed: int = 0) -> DigitClassifier:
    """Fit a :class:`DigitClassifier` on (N, D) images ``train_x`` with labels ``train_y`` (N,) in 0..K−1."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = DigitClassifier(image_shape, n_classes, options.channels, options.features, options.dropout)
    opt = torch.optim.Adam(model.parameters(), lr=options.lr)
    x = torch.as_tensor(train_x, dtype=torch.float32).reshape(len(train_x), *image_shape)
    y = torch.as_tensor(train_y, dtype=torch.long)
    model.train()
    for _ in range(options.epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), options.batch_size):
            idx = order[start : start + options.batch_size]
            loss = F.cross_entropy(model(_shift(x[idx], generator).flatten(1)), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def features_and_probs(model: DigitClassifier, x: np.ndarray, batch: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """(φ(x) (N, features), softmax class probabilities (N, K)) of images x: (N, D), float64 numpy."""
    model.eval()
    feats, probs = [], []
    xt = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    for start in range(0, len(xt), batch):
        f = model.features(xt[start : start + batch])
        feats.append(f)
        probs.append(torch.softmax(model.head(f), dim=1))
    return torch.cat(feats).double().numpy(), torch.cat(probs).double().numpy()


def accuracy(model: DigitClassifier, x: np.ndarray, y: np.ndarray) -> float:
    _, probs = features_and_probs(model, x)
    return float((probs.argmax(1) == np.asarray(y)).mean())


def save_classifier(model: DigitClassifier, path: Any, meta: dict[str, Any]) -> None:
    torch.save({"state": model.state_dict(), **meta}, path)


def load_classifier(path: Any) -> DigitClassifier:
    """A classifier saved by :func:`save_classifier` (with its image_shape, n_classes and options)."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    opts = blob["options"]
    model = DigitClassifier(tuple(blob["image_shape"]), int(blob["n_classes"]), int(opts["channels"]),
                            int(opts["features"]), float(opts["dropout"]))
    model.load_state_dict(blob["state"])
    return model.eval()
