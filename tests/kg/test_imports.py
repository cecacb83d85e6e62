import pytest

from kgllm.util.errors import KGFormatError
from kgllm.kg.sources.imports import import_kg, import_lama, import_openke, import_rdf, import_tsv, merge
from kgllm.kg.graph.store import KnowledgeGraph

KGDATA = __import__("tests.conftest", fromlist=["DATA"]).DATA / "kg"
LAMA = __import__("tests.conftest", fromlist=["DATA"]).DATA / "lama_trex"


def _facts(kg):
    return {(kg.entities[h].label, kg.relations[r], kg.entities[t].label) for h, r, t in kg.edges}


def test_tsv_folder():
    kg = import_tsv(KGDATA / "tiny_tsv", name="nations")
    assert kg.num_entities == 4 and len(kg.edges) == 10
    assert ("usa", "treaties", "uk") in _facts(kg)
    assert kg.key_to_id["nations:usa"] == 0
    prov = kg.edges[(kg.key_to_id["nations:india"], kg.rel_to_id["embassy"], kg.key_to_id["nations:usa"])].provenance
    assert prov == [("nations/test.txt", 1, -1, -1, 1.0)]


def test_openke_with_texts_and_descriptions():
    kg = import_openke(KGDATA / "tiny_openke", name="wn")
    assert ("dog", "_hypernym", "animal") in _facts(kg)
    assert kg.descriptions[kg.key_to_id["wn:00001"]] == "a domesticated carnivore"
    assert kg.meta["relation_labels"]["_also_see"] == "also see"
    assert len(import_openke(KGDATA / "tiny_openke", splits=("train",)).edges) == 3


def test_lama_facts():
    kg = import_lama(LAMA, splits=("test",))
    assert ("Barack Obama", "P19", "Honolulu") in _facts(kg) and "wd:Q76" in kg.key_to_id
    assert kg.meta["relation_labels"]["P36"] == "capital"
    assert len(import_lama(LAMA, splits=("test",), relations=["P36"]).edges) == 3


def test_rdf_turtle(tmp_path):
    path = tmp_path / "g.ttl"
    path.write_text('@prefix ex: <http://example.org/> .\n@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n'
                    'ex:a ex:knows ex:b ; rdfs:label "Alice" ; rdfs:comment "a person" .\n'
                    'ex:b rdfs:label "Bob" .\n')
    kg = import_rdf(path)
    assert ("Alice", "http://example.org/knows", "Bob") in _facts(kg)
    assert kg.descriptions[kg.key_to_id["http://example.org/a"]] == "a person"


def test_merge_by_id_keeps_both_provenances():
    lama = import_lama(LAMA, splits=("test",))
    more = import_lama(LAMA, splits=("train",))
    merged = merge(lama, more, by="id")
    paris = merged.key_to_id["wd:Q90"]
    assert paris < lama.num_entities  # A's ids are kept
    assert merged.entities[paris].sources == {"wd"}
    docs = {p[0] for e in merged.edges.values() for p in e.provenance}
    assert {"P19.test.jsonl", "P36.test.jsonl", "P17.train.jsonl"} <= docs
    assert ("Paris", "P17", "France") in _facts(merged) and ("France", "P36", "Paris") in _facts(merged)


def test_merge_extracted_with_imported_by_label(kg):
    lama = import_lama(LAMA, splits=("test",))
    merged = merge(kg, lama, by="label")
    obama = kg.key_to_id["PER:barack obama"]
    assert merged.entities[obama].sources == {"dev_revised.json", "wd"}  # one node, from both sides
    facts = _facts(merged)
    assert ("Barack Obama", "P19", "Honolulu") in facts and ("Barack Obama", "born_in", "Honolulu") in facts
    assert merged.num_entities < kg.num_entities + lama.num_entities


def test_import_errors(tmp_path):
    (tmp_path / "bad.txt").write_text("a\tb\n")
    with pytest.raises(KGFormatError, match=r"bad.txt:1: expected"):
        import_tsv(tmp_path / "bad.txt")
    with pytest.raises(KGFormatError, match="does not exist"):
        import_kg("tsv", tmp_path / "missing")
    with pytest.raises(KGFormatError, match="unknown import format"):
        import_kg("csv", tmp_path)


def test_cli_import_and_merge(tmp_path, capsys):
    from kgllm.cli import main

    assert main(["kg-import", "lama", str(LAMA), "--out", str(tmp_path / "a")]) == 0
    assert main(["kg-import", "lama", str(LAMA), "--splits", "train", "--out", str(tmp_path / "b")]) == 0
    assert main(["kg-merge", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "m")]) == 0
    merged = KnowledgeGraph.load(tmp_path / "m", provenance=True)
    lines = sum(len(f.read_text().splitlines()) for f in LAMA.glob("P*.jsonl"))  # one distinct fact a line
    assert len(merged.edges) == lines == 15


def test_merge_reports_joins_and_keeps_both_mentions(tmp_path, kg_dir, capsys):
    from kgllm.cli import main
    from kgllm.kg.extraction.build import build_kg
    from tests.conftest import FIXTURES

    build_kg(FIXTURES / "corpus.jsonl", tmp_path / "b", progress=False)
    assert main(["kg-merge", str(kg_dir), str(tmp_path / "b"), "--out", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert "entities joined" in out and "mentions kept" in out
    a_rows = (kg_dir / "mentions.tsv").read_text().splitlines()[1:]
    b_rows = [r.split("\t") for r in (tmp_path / "b" / "mentions.tsv").read_text().splitlines()[1:]]
    merged = (tmp_path / "m" / "mentions.tsv").read_text().splitlines()[1:]
    assert merged[:len(a_rows)] == a_rows and len(merged) == len(a_rows) + len(b_rows)  # A's ids are kept
    b, m = KnowledgeGraph.load(tmp_path / "b"), KnowledgeGraph.load(tmp_path / "m")
    for row, new in zip(b_rows, merged[len(a_rows):]):  # B's mentions point at the same entity, by key
        assert m.entities[int(new.split("\t")[4])].key == b.entities[int(row[4])].key
