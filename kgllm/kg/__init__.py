"""Corpus -> knowledge graph. Nothing in this package imports torch at module level."""
