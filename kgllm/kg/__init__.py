"""Corpus -> knowledge graph. Nothing in this package imports torch at module level.

Rooms, each importing only from the rooms listed before it (``tests/test_imports_graph.py``):

* ``graph``: the KG folder format, ``KnowledgeGraph``, the RDF model;
* ``extraction``: corpora to KGs (reading, spaCy, extractors, build, engines, updates);
* ``sources``: imports of existing KGs and LAMA facts;
* ``sparql``: local queries, the server, remote endpoints;
* ``quality``: evaluation against gold and statistics.
"""
