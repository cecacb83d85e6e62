"""Existing KGs and fact sets into KG folders: TSV / OpenKE / LAMA / RDF imports (``imports``),
LAMA file reading and splits (``lama``), and RDF parsing that refuses what could reach the
network or run away (``safe_rdf``).

Imports from ``kgllm.kg.graph`` and ``kgllm.kg.extraction`` (corpus reading) only.
"""
