import pytest
from rdflib import RDFS, Literal

from kgllm.util.errors import KGFormatError
from kgllm.kg.graph.rdf import prefixes
from kgllm.kg.sparql.local import load_rdf
from kgllm.kg.graph.store import KnowledgeGraph


def _small() -> KnowledgeGraph:
    kg = KnowledgeGraph({"extractor": {"version": "test/1"}})
    a = kg.add_entity("PER:ada lovelace", "Ada Lovelace", "PER", ["Lovelace"])
    b = kg.add_entity("LOC:london", "London", "LOC")
    c = kg.add_entity('MISC:a "quoted"\tname', 'A "quoted"\tname', "MISC")
    kg.add_edge(a, "born_in", b, ("doc 1", 0, 0, 30, 0.8), 0.8)
    kg.add_edge(a, "born_in", b, ("doc 2", 3, 10, 40, 0.6), 0.6)
    kg.add_edge(c, "related to/odd name", a, ("doc/3", 1, 5, 9, 0.5), 0.5)
    return kg


def test_round_trip(tmp_path):
    kg = _small()
    kg.save(tmp_path / "kg")
    back = KnowledgeGraph.load(tmp_path / "kg", provenance=True)
    assert back.counts() == kg.counts()
    assert [e.key for e in back.entities][:2] == ["PER:ada lovelace", "LOC:london"]
    assert back.entities[0].aliases == {"Ada Lovelace", "Lovelace"}
    edge = back.edges[(0, 0, 1)]
    assert edge.count == 2 and edge.confidence == pytest.approx(0.8) and len(edge.provenance) == 2


def test_rdf_provenance_is_queryable_with_sparql(tmp_path):
    kg = _small()
    kg.save(tmp_path / "kg")
    g = load_rdf(tmp_path / "kg")
    rows = list(g.query(
        """SELECT ?doc ?sent WHERE { ?st rdf:subject ?s ; rdf:predicate ?p ; rdf:object ?o ;
               prov:wasDerivedFrom ?doc ; kgo:sentence ?sent . ?s rdfs:label ?label }""",
        initNs=prefixes(), initBindings={"label": Literal("Ada Lovelace")}))
    assert sorted((str(d).rsplit("/", 1)[-1], int(s)) for d, s in rows) == [("doc%201", 0), ("doc%202", 3)]


def test_ntriples_and_odd_labels_survive(tmp_path):
    kg = _small()
    kg.save(tmp_path / "kg", rdf_format="nt")
    g = load_rdf(tmp_path / "kg")
    labels = {str(o) for o in g.objects(None, RDFS.label)}
    assert 'A "quoted"\tname' in labels and "related to/odd name" in labels


def test_malformed_rdf_names_file(tmp_path):
    _small().save(tmp_path / "kg")
    (tmp_path / "kg" / "graph.ttl").write_text("@prefix broken")
    with pytest.raises(KGFormatError, match="graph.ttl: malformed RDF"):
        load_rdf(tmp_path / "kg")


def test_load_errors(tmp_path):
    with pytest.raises(KGFormatError, match="not a KG folder"):
        KnowledgeGraph.load(tmp_path)
    _small().save(tmp_path / "kg")
    (tmp_path / "kg" / "triples.tsv").write_text("head\trelation\ttail\tcount\tconfidence\n0\t0\t99\t1\t1.0\n")
    with pytest.raises(KGFormatError, match="unknown id"):
        KnowledgeGraph.load(tmp_path / "kg")
    (tmp_path / "kg" / "triples.tsv").write_text("head\trelation\ttail\tcount\tconfidence\n0\t0\n")
    with pytest.raises(KGFormatError, match=r"triples.tsv:2: expected 5"):
        KnowledgeGraph.load(tmp_path / "kg")


def test_save_is_atomic(tmp_path, monkeypatch):
    kg = _small()
    import kgllm.kg.graph.rdf as rdf

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(rdf, "write_rdf", boom)
    with pytest.raises(RuntimeError):
        kg.save(tmp_path / "kg")
    assert list(tmp_path.iterdir()) == []


def test_written_files_follow_the_umask(tmp_path):
    """Results and checkpoints are written through a private temporary file but end with the mode
    open() would give them (0644 under umask 022), not mkstemp's 0600."""
    import os

    import torch

    from kgllm.util.io import atomic_write_json, atomic_write_text
    from kgllm.lit.runtime import AtomicCheckpointIO

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "results.md", "x\n")
        atomic_write_json(tmp_path / "probe.json", {"a": 1})
        AtomicCheckpointIO().save_checkpoint({"w": torch.zeros(1)}, tmp_path / "best.ckpt")
        os.umask(0o077)
        atomic_write_text(tmp_path / "private.md", "x\n")
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes == {"results.md": 0o644, "probe.json": 0o644, "best.ckpt": 0o644, "private.md": 0o600}
