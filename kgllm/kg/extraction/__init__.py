"""Corpus -> KG: reading corpora (``corpus``, ``hf_sources``), preparation, spaCy parsing
(``extract``), the extractors (``extractors/``, one file each), assembly, the build and its
engines (local, Ray), and updates of a built KG.

Imports from ``kgllm.kg.graph`` (and ``kgllm.util``) only. The one model-backed extractor lives
with the model (``kgllm.lit.learned_extractor``) and is imported by name only when chosen.
"""
