"""Hostile corpus and KG files: one-line errors naming the file, never a traceback or a half-written KG."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from kgllm.cli import main
from kgllm.util.errors import CorpusError, KGFormatError
from kgllm.kg.extraction.build import work_dir_for
from kgllm.kg.extraction.corpus import iter_jsonl, read_corpus
from kgllm.kg.graph.store import KnowledgeGraph

GOOD = json.dumps({"id": "ok", "text": "Angela Merkel was born in Hamburg."})


def _leaves_nothing(tmp_path: Path, out: Path) -> None:
    assert not out.exists() and not work_dir_for(out).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("line", ['{"id": "s", "text": "bad \\ud800 text"}', "[" * 100_000 + "]" * 100_000,
                                  '{"id": "n", "text": ' + "[" * 5000 + "]" * 5000 + "}"],
                         ids=["lone-surrogate", "nested-100k", "nested-text"])
def test_hostile_jsonl_lines(tmp_path, line, capsys):
    corpus, out = tmp_path / "c.jsonl", tmp_path / "kg"
    corpus.write_text(GOOD + "\n" + line + "\n")
    assert main(["build-kg", str(corpus), "--out", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "c.jsonl:2" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    _leaves_nothing(tmp_path, out)
    assert main(["build-kg", str(corpus), "--out", str(out), "--no-progress", "--skip-bad"]) == 0
    assert json.loads((out / "meta.json").read_text())["skipped"]["count"] == 1
    assert not work_dir_for(out).exists()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=12)
       | st.text().map(lambda t: {"text": t}) | st.binary(max_size=60))
def test_jsonl_reader_yields_documents_or_corpus_errors(tmp_path, value):
    path = tmp_path / "h.jsonl"
    path.write_bytes(value if isinstance(value, bytes) else json.dumps(value).encode() + b"\n")
    errors: list = []
    docs = list(iter_jsonl(path, errors=errors))  # anything else raised fails the test
    for doc in docs:
        doc.text.encode("utf-8")
        assert doc.text.strip()
    assert all(isinstance(e, CorpusError) and "h.jsonl" in str(e) for e in errors)


@pytest.mark.parametrize("patch,problem", [
    ({"vertexSet": "oops"}, "'vertexSet' must be a list"),
    ({"vertexSet": [[{"name": "x", "sent_id": 99, "pos": [0, 1]}]]}, "sent_id 99"),
    ({"vertexSet": [[{"name": "x", "sent_id": "0", "pos": [0, 1]}]]}, "sent_id '0'"),
    ({"vertexSet": [[{"name": "x", "sent_id": 0, "pos": [0, 999]}]]}, "pos [0, 999]"),
    ({"labels": [{"h": 0, "t": 7, "r": "P17"}]}, "labels[0].t = 7"),
])
def test_redocred_schema_is_checked_on_read(tmp_path, redocred_file, patch, problem):
    docs = json.loads(redocred_file.read_text())[:2]
    docs[1].update(patch)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(docs))
    with pytest.raises(CorpusError, match=r"bad.json: document 1: .*" + re.escape(problem)):
        list(read_corpus(bad, "redocred"))
    assert len(list(read_corpus(bad, "redocred", errors=[]))) == 1


def test_deeply_nested_jsonld_is_refused(tmp_path):
    from kgllm.kg.sources.safe_rdf import parse_rdf_safely

    bad = tmp_path / "deep.jsonld"
    bad.write_text('{"@graph": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(KGFormatError, match="deep.jsonld: .*nested too deeply"):
        parse_rdf_safely(bad)


def test_ntriples_are_parsed_by_pyoxigraph_not_rdflib(tmp_path, monkeypatch):
    """rdflib's N-Triples parser is quadratic in literal length; imports must not reach it."""
    import rdflib.plugins.parsers.ntriples as nt

    from kgllm.kg.sources.safe_rdf import parse_rdf_safely

    def refuse(*_a, **_k):
        raise AssertionError("rdflib's N-Triples parser was used")

    monkeypatch.setattr(nt.W3CNTriplesParser, "parse", refuse)
    big = tmp_path / "big.nt"
    big.write_text(f'<http://x/a> <http://x/label> "{"y" * 2_000_000}" .\n<http://x/a> <http://x/p> <http://x/b> .\n')
    g = parse_rdf_safely(big)
    assert len(g) == 2


def test_labels_with_separators_round_trip(tmp_path):
    kg = KnowledgeGraph()
    kg.add_entity("k1", "AC | DC", "ORG", aliases=["a|b", "100% | pure", "%7C"])
    kg.save(tmp_path / "kg")
    back = KnowledgeGraph.load(tmp_path / "kg").entities[0]
    assert back.label == "AC | DC" and back.aliases == {"AC | DC", "a|b", "100% | pure", "%7C"}


def test_meta_json_must_be_an_object_naming_files_inside(kg_dir, tmp_path, capsys):
    import shutil

    from kgllm.kg.sparql.local import open_graph

    folder = tmp_path / "kg"
    shutil.copytree(kg_dir, folder)
    (folder / "meta.json").write_text("[1, 2]")
    with pytest.raises(KGFormatError, match="must be a JSON object"):
        KnowledgeGraph.load(folder)
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET first line\n")
    meta = json.loads((kg_dir / "meta.json").read_text())
    for path in (str(secret), "../secret.txt"):
        (folder / "meta.json").write_text(json.dumps({**meta, "rdf_file": path}))
        with pytest.raises(KGFormatError, match="rdf_file must be one of"):
            open_graph(folder, "memory")
        assert main(["kg-query", str(folder), "SELECT * WHERE { ?s ?p ?o }", "--store", "memory"]) == 1
        assert "TOP-SECRET" not in capsys.readouterr().err


def test_non_integer_tsv_id_names_file_and_line(kg_dir, tmp_path, capsys):
    import shutil

    folder = tmp_path / "kg"
    shutil.copytree(kg_dir, folder)
    lines = (folder / "triples.tsv").read_text().splitlines()
    lines[2] = "x" + lines[2]
    (folder / "triples.tsv").write_text("\n".join(lines) + "\n")
    with pytest.raises(KGFormatError, match=r"triples.tsv:3: expected an integer"):
        KnowledgeGraph.load(folder)
    assert main(["kg-stats", str(folder)]) == 1
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--model.init_args.lr", "-1"], ["--data.batch_size", "-4"],
                                  ["--data.batch_size", "0"]])
def test_negative_training_numbers_are_usage_errors(tmp_path, kg_dir, data_dir, args, capsys):
    from tests.security.test_checkpoints import _fit_args

    assert main(_fit_args(tmp_path, kg_dir, data_dir, *args)) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # (earlier lines: logging of other tests' runs)
    assert last.startswith("kgllm fit: error: ") and ("lr must be" in last or "batch_size must be" in last)
