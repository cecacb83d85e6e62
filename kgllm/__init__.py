"""kgllm: knowledge-graph-centric research framework for language models.

Data flows one way: ``kg`` (corpus -> knowledge graph, no torch) -> ``linking``
(text mentions -> graph nodes) -> ``nn`` (GAT encoder, fusion blocks, fused BERT)
-> ``data`` (datasets, collators, LightningDataModules) -> ``lit``
(LightningModules) -> ``cli``.

The main objects are importable from here (loaded on first use, so ``import kgllm`` stays light)::

    from kgllm import KnowledgeGraph, build_kg, KGDataModule, MLMModule
    kg = build_kg("corpus.jsonl", "graphs/mine")
    clf = KGClassifier.from_checkpoint("runs/mine/version_0/checkpoints/best.ckpt")
    clf.predict(["Angela Merkel speaks in Paris"])  # labels, probabilities, linked KG nodes
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS = {
    "KnowledgeGraph": "kgllm.kg.graph.store",
    "build_kg": "kgllm.kg.extraction.build",
    "query_folder": "kgllm.kg.sparql.local",
    "to_pyg": "kgllm.kg.graph.to_pyg",
    "to_networkx": "kgllm.kg.quality.stats",
    "EntityLinker": "kgllm.linking.linker",
    "KGDataModule": "kgllm.data.datamodule",
    "LinkPredDataModule": "kgllm.data.linkpred",
    "MLMModule": "kgllm.lit.mlm",
    "ClassifierModule": "kgllm.lit.classify",
    "DocREModule": "kgllm.lit.classify",
    "LinkPredModule": "kgllm.lit.linkpred",
    "KGClassifier": "kgllm.workflows.predict",
    "probe": "kgllm.workflows.knowledge.probe",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # later lookups skip this hook
        return value
    raise AttributeError(f"module 'kgllm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
