"""The classifier stage: train the feature network of a labelled image dataset (results/classifier/{dataset}).

Reads train.npy, test.npy, labels.json and meta.json of the dataset; writes model.pt (weights, image shape, classes,
options) and record.json (test and train accuracy, parameters, seconds).  A classifier below ``min_accuracy`` on the
test split is an error: its features would not be a metric to trust.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ttdm.io import atomic_write, load_json, save_json


def train_classifier_stage(spec: dict[str, Any], *, data_dir: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """spec = {"options": ClassifierOptions fields, "seed", "threads"}.  Returns the record written."""
    from dataclasses import asdict

    from ttdm.analysis.classifier import ClassifierOptions, accuracy, save_classifier, train_classifier
    from ttdm.options import check_options

    data_dir, out_dir = Path(data_dir), Path(out_dir)
    options = check_options(ClassifierOptions, spec.get("options", {}), "classifier")
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    meta = load_json(data_dir / "meta.json")
    if not meta.get("n_classes") or not meta.get("image_shape"):
        raise ValueError(f"{data_dir / 'meta.json'}: dataset {meta['name']!r} has no class labels or no image shape; "
                         "a classifier needs a labelled image dataset (kind digits)")
    labels = load_json(data_dir / "labels.json")
    train_x, test_x = (np.load(data_dir / f"{s}.npy", allow_pickle=False) for s in ("train", "test"))
    train_y, test_y = np.asarray(labels["train"]), np.asarray(labels["test"])
    started = time.perf_counter()
    model = train_classifier(train_x, train_y, tuple(meta["image_shape"]), int(meta["n_classes"]), options,
                             seed=int(spec["seed"]))
    record = {"dataset": meta["name"], "test_accuracy": accuracy(model, test_x, test_y),
              "train_accuracy": accuracy(model, train_x, train_y), "n_test": len(test_y),
              "n_params": sum(p.numel() for p in model.parameters()), "wall_s": time.perf_counter() - started,
              "options": asdict(options)}
    if record["test_accuracy"] < options.min_accuracy:
        raise ValueError(f"classifier of {meta['name']!r}: test accuracy {record['test_accuracy']:.4f} is below "
                         f"classifier.min_accuracy = {options.min_accuracy}; train longer (classifier.epochs) or "
                         "wider (classifier.channels)")
    atomic_write(out_dir / "model.pt", lambda p: save_classifier(
        model, p, {"image_shape": meta["image_shape"], "n_classes": meta["n_classes"], "options": asdict(options)}))
    save_json(out_dir / "record.json", record)
    return record
