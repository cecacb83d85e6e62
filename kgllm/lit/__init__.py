"""LightningModules: steps, losses, metrics, optimisers. Model code lives in :mod:`kgllm.nn`."""

from kgllm.lit.classify import ClassifierModule
from kgllm.lit.mlm import MLMModule

__all__ = ["ClassifierModule", "MLMModule"]
