"""serve-kg (the Oxigraph server on loopback), kg-query --endpoint and kg-push: each test starts
its own server on a free 127.0.0.1 port and stops it, also when the test fails."""

import socket
import urllib.request

import pytest

from kgllm.util.errors import ConfigError
from kgllm.kg.sparql.endpoint import push, query_endpoint, with_bindings
from kgllm.kg.sparql.local import QueryError, query_folder
from kgllm.kg.sparql.server import serve

LOOKUP = "SELECT ?e ?name WHERE { ?e rdfs:label ?name }"


def ntriples(path) -> int:
    import pyoxigraph as ox

    return sum(1 for _ in ox.parse(path=str(path), format=ox.RdfFormat.TURTLE))


def test_endpoint_answers_as_the_local_store(kg_dir):
    with serve(kg_dir) as url:
        assert url.startswith("http://127.0.0.1:")
        remote = query_endpoint(url, LOOKUP, {"name": "Barack Obama"})
        local = query_folder(kg_dir, LOOKUP, {"name": "Barack Obama"})
        assert remote == local and len(remote) == 1
        count = query_endpoint(url, "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")[0]["n"]
        assert count == ntriples(kg_dir / "graph.ttl")
        hostile = 'x" } } ; DROP ALL ; SELECT * WHERE { ?s ?p "\n'
        assert query_endpoint(url, LOOKUP, {"name": hostile}) == []  # one literal, nothing more
        assert query_endpoint(url, "ASK { ?s ?p ?o }") == [{"ask": True}]
        with pytest.raises(QueryError, match="SERVICE is refused"):
            query_endpoint(url, "SELECT * WHERE { SERVICE <http://example.org/s> { ?s ?p ?o } }")
        with pytest.raises(QueryError, match="HTTP 4"):  # read-only: no updates
            req = urllib.request.Request(url + "/update", data=b"DROP ALL", method="POST",
                                         headers={"Content-Type": "application/sparql-update"})
            from kgllm.kg.sparql.endpoint import _request

            _request(req, 10, 1000)
        with pytest.raises(QueryError, match="max-bytes"):
            query_endpoint(url, "SELECT * WHERE { ?s ?p ?o }", max_bytes=1000)
    port = int(url.rsplit(":", 1)[1])
    with socket.socket() as s:  # stopped
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_a_writable_server_of_a_folder_writes_a_copy_that_ends_with_it(kg_dir, tmp_path, capsys):
    """A push into ``serve-kg KG --writable`` lands in a private copy: afterwards neither the KG
    folder nor the cached store it was copied from holds the pushed graph."""
    import shutil

    from kgllm.cli import main

    kg = tmp_path / "kg"
    shutil.copytree(kg_dir, kg)
    before = sorted((p.relative_to(kg), p.stat().st_mtime_ns) for p in kg.rglob("*"))
    graph = "https://example.org/graphs/pushed"
    count = "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }"
    with serve(kg, read_only=False) as url:
        push(kg_dir, url, graph, batch_size=100, progress=False)
        assert query_endpoint(url, count)[0]["n"] == ntriples(kg_dir / "graph.ttl")
    assert query_folder(kg, count)[0]["n"] == 0  # the cached store: no named graph was ever written
    with serve(kg) as url:
        assert query_endpoint(url, count)[0]["n"] == 0
    assert sorted((p.relative_to(kg), p.stat().st_mtime_ns) for p in kg.rglob("*")) == before
    with pytest.raises(SystemExit):  # a usage error: read-only needs a folder
        main(["serve-kg", "--bind", "127.0.0.1:0"])
    assert "a read-only server needs a KG folder" in capsys.readouterr().err


def test_bindings_are_escaped_literals():
    q = with_bindings("SELECT * WHERE { ?e rdfs:label ?name }", {"name": 'a"b\\c\nd'})
    assert q.endswith(r'VALUES (?name) { ("a\"b\\c\nd") }')
    with pytest.raises(QueryError, match="bad SPARQL variable"):
        with_bindings("SELECT * {}", {"x y": "1"})


def test_push_replaces_the_named_graph_and_leaves_nothing_on_failure(kg_dir):
    graph = "https://example.org/graphs/kg"
    with serve(None, read_only=False) as url:
        res = push(kg_dir, url, graph, batch_size=100, progress=False)
        n = ntriples(kg_dir / "graph.ttl")
        assert res["triples"] == n and res["batches"] == -(-n // 100)
        count = "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }"
        assert query_endpoint(url, count)[0]["n"] == n
        assert query_endpoint(url, "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }") == [{"g": graph}]

        def broken():
            yield b"<https://example.org/a> <https://example.org/b> <https://example.org/c> .\n"
            yield b"this is not N-Triples"

        with pytest.raises(QueryError, match="HTTP 400"):
            push(kg_dir, url, graph, progress=False, batches=broken())
        assert query_endpoint(url, count)[0]["n"] == n  # the graph as it was, no temporary graph left
        assert query_endpoint(url, "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }") == [{"g": graph}]
        with pytest.raises(QueryError, match="absolute IRI"):
            push(kg_dir, url, "not an iri", progress=False)


def test_remote_bind_needs_a_flag(kg_dir):
    with pytest.raises(ConfigError, match="allow-remote"):
        with serve(kg_dir, bind="0.0.0.0:0"):
            pass
    with pytest.raises(QueryError, match="http"):
        query_endpoint("file:///etc/passwd", LOOKUP)


def test_cli_serve_query_push(kg_dir, capsys):
    from kgllm.cli import main

    with serve(kg_dir) as url:
        assert main(["kg-query", "SELECT ?e WHERE { ?e rdfs:label ?name }", "--endpoint", url,
                     "--bind", "name=Honolulu", "--json"]) == 0
        assert "entity/" in capsys.readouterr().out
        assert main(["kg-query", "SELECT ?e WHERE { ?e ?p ?o }", "--endpoint", url + "/nope"]) == 1
        assert "HTTP 404" in capsys.readouterr().err
    with serve(None, read_only=False) as url:
        assert main(["kg-push", str(kg_dir), "--endpoint", url, "--graph", "https://example.org/g",
                     "--no-progress"]) == 0
        assert "triples in 1 batches" in capsys.readouterr().out
