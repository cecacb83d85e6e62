"""kgllm: knowledge-graph-centric research framework for language models.

Data flows one way: ``kg`` (corpus -> knowledge graph, no torch) -> ``linking``
(text mentions -> graph nodes) -> ``nn`` (GAT encoder, fusion blocks, fused BERT)
-> ``data`` (datasets, collators, LightningDataModules) -> ``lit``
(LightningModules) -> ``cli``.
"""

__version__ = "0.1.0"
