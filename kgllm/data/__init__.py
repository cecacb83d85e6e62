"""Datasets, features, collators (text batch + PyG Batch) and LightningDataModules.

The datamodules are imported on first use (PEP 562), so reading the dataset registry
(``kgllm datasets``, ``--help``) does not import Lightning and torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from kgllm.data.datamodule import KGDataModule
    from kgllm.data.linkpred import LinkPredDataModule

__all__ = ["KGDataModule", "LinkPredDataModule"]
_WHERE = {"KGDataModule": "kgllm.data.datamodule", "LinkPredDataModule": "kgllm.data.linkpred"}


def __getattr__(name: str):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'kgllm.data' has no attribute {name!r}")
