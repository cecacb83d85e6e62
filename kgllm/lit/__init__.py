"""LightningModules: steps, losses, metrics, optimisers. Model code lives in :mod:`kgllm.nn`."""

from kgllm.lit.classify import ClassifierModule, DocREModule
from kgllm.lit.linkpred import LinkPredModule
from kgllm.lit.mlm import MLMModule

__all__ = ["ClassifierModule", "DocREModule", "LinkPredModule", "MLMModule"]
