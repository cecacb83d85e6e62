"""The graph itself: the KG folder format (``folder``), the in-memory ``KnowledgeGraph``
(``store``), its RDF model and writing (``rdf``), label normalisation, diffs, the PyG export and
Wikidata relation labels.

The lowest room of ``kgllm.kg``: it imports nothing else from ``kgllm.kg`` (only ``kgllm.util``).
"""
