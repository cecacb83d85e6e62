import pytest

from kgllm.errors import KGFormatError
from kgllm.kg.rdf import STORE_DIR, open_graph, query
from kgllm.kg.store import KnowledgeGraph

Q_BORN = """SELECT ?name ?doc ?sent ?start ?end WHERE {
  ?s rdfs:label ?name . ?st rdf:subject ?s ; rdf:predicate rel:born_in ; prov:wasDerivedFrom ?doc ;
  kgo:sentence ?sent ; kgo:charStart ?start ; kgo:charEnd ?end } ORDER BY ?doc"""


@pytest.fixture(scope="module")
def both(kg, tmp_path_factory):
    root = tmp_path_factory.mktemp("stores")
    kg.save(root / "mem")
    kg.save(root / "ox", rdf_format="nt", store="oxigraph")
    return root / "mem", root / "ox"


def test_oxigraph_store_answers_like_memory(both):
    mem, ox = both
    assert (ox / STORE_DIR).is_dir() and (ox / "graph.nt").is_file() and not (mem / STORE_DIR).exists()
    a = query(open_graph(mem), Q_BORN, {"name": "Barack Obama"})
    b = query(open_graph(ox), Q_BORN, {"name": "Barack Obama"})
    c = query(open_graph(ox, "memory"), Q_BORN, {"name": "Barack Obama"})
    assert a and a == b == c


def test_provenance_points_at_the_source_text(both, redocred_file):
    from kgllm.kg.corpus import read_corpus

    docs = {d.doc_id: d.text for d in read_corpus(redocred_file, "redocred")}
    from urllib.parse import unquote

    rows = query(open_graph(both[0]), Q_BORN, {"name": "Barack Obama"})
    assert rows
    for row in rows:
        evidence = docs[unquote(row["doc"].rsplit("/", 1)[-1])][row["start"]:row["end"]]
        assert evidence.startswith("Barack Obama was born in Honolulu")


@pytest.mark.parametrize("hostile", ['Obama" } ; DROP ALL ; #', "x' . ?s ?p ?o . #", "\\u0022"])
def test_bound_text_is_never_spliced(both, hostile):
    for folder in both:
        assert query(open_graph(folder), Q_BORN, {"name": hostile}) == []


def test_bad_sparql_is_a_clear_error(both):
    with pytest.raises(KGFormatError, match="SPARQL (syntax )?error"):
        query(open_graph(both[0]), "SELECT WHERE {")


def test_exported_turtle_reimports_as_same_graph(both):
    g1, g2 = open_graph(both[0], "memory"), open_graph(both[1], "memory")
    assert len(g1) == len(g2) > 100


def test_kg_query_cli(both, capsys):
    from kgllm.cli import main

    assert main(["kg-query", str(both[1]), "SELECT (COUNT(*) AS ?n) WHERE { ?s a kgo:Entity }", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"n"' in out


def test_unknown_store(kg, tmp_path):
    with pytest.raises(ValueError, match="store"):
        KnowledgeGraph.save(kg, tmp_path / "x", store="postgres")
    assert not (tmp_path / "x").exists()
