"""Datasets: a registry of generators and loaders, and the data stage that writes fixed train/test/floor splits."""

from ttdm.registry import Registry

DATASETS = Registry("dataset", "ttdm.data")
