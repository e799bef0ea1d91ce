"""The complexity stage: parameters, FLOPs per forward and per optimiser step, and peak training memory.

Writes results/bench/complexity.csv: model, arch, optimizer, engine (als: the ALS engine that training runs), rank,
degree, layout, n_params, flops_forward, flops_train_step, peak_train_mem_mb, device (see :mod:`ttdm.analysis.flops`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ttdm.analysis.flops import model_complexity
from ttdm.io import atomic_write, dataset_metas, device_info, resolve_device
from ttdm.models.tt import TTConfig

COMPLEXITY_COLUMNS = ("model", "arch", "optimizer", "engine", "rank", "degree", "layout", "n_params", "flops_forward",
                      "flops_train_step", "peak_train_mem_mb", "device")


def complexity(spec: dict[str, Any], meta_files: Iterable[str | Path], out_dir: str | Path) -> Path:
    """Parameters, FLOPs and peak training memory of every model of ``spec`` into ``out_dir/complexity.csv``.

    ``spec["models"]`` maps a name to {"arch", "model_cfg", "dataset", and optionally "optimizer" (adam), "n_fit",
    "batch_size" (the run's own), "engine" (auto), "lam"}: the run's resolved training, so the numbers describe
    what training runs; the dataset's meta.json (among ``meta_files``) gives D and the image shape.  Optional spec
    keys: "batch_size" (256, for a model without its own), "device" (auto), "threads", "memory" (true; false
    leaves peak_train_mem_mb empty).  Rows follow
    :func:`ttdm.analysis.flops.model_complexity`: FLOPs per sample forward (analytic for tt, measured for networks)
    and per optimiser step (a batch's forward + backward, one ALS sweep or one RGD iteration on n_fit points).
    rank, degree and layout are the tt hyper-parameters (defaults filled in), empty for networks.
    """
    device = resolve_device(spec.get("device", "auto"))
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    info = device_info(device)
    where = info.get("gpu", info["processor"])
    metas = dataset_metas(meta_files, (entry["dataset"] for entry in spec["models"].values()))
    rows = []
    for name, entry in spec["models"].items():
        meta = metas[entry["dataset"]]
        image_shape = tuple(meta["image_shape"]) if meta.get("image_shape") else None
        cfg = dict(entry.get("model_cfg", {}))
        result = model_complexity(
            entry["arch"], cfg, int(meta["dim"]), image_shape,
            int(entry.get("batch_size") or spec.get("batch_size", 256)), n_fit=entry.get("n_fit"),
            optimizer=entry.get("optimizer"), device=device, memory=bool(spec.get("memory", True)),
            engine=entry.get("engine") or "auto", lam=entry.get("lam"),
        )
        tt = {key: cfg.get(key, getattr(TTConfig, key)) if entry["arch"] == "tt" else None
              for key in ("rank", "degree", "layout")}
        rows.append({"model": name, "arch": entry["arch"], **tt, **result, "device": where})
    df = pd.DataFrame(rows, columns=list(COMPLEXITY_COLUMNS))
    for key in ("rank", "degree"):
        df[key] = df[key].astype("Int64")  # integers, empty for networks
    text = df.to_csv(index=False)
    path = atomic_write(Path(out_dir) / "complexity.csv", lambda p: p.write_text(text))
    print(f"complexity: {len(rows)} models -> {path}")
    return path
