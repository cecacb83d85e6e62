"""Datasets, features, collators (text batch + PyG Batch) and LightningDataModules."""

from kgllm.data.datamodule import KGDataModule
from kgllm.data.linkpred import LinkPredDataModule

__all__ = ["KGDataModule", "LinkPredDataModule"]
