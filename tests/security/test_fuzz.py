"""Fuzzing the readers and a few command lines with Hypothesis: every input ends in a result or one
kgllm error (a one-line message), never another exception. Time-boxed per target by
``KGLLM_FUZZ_SECONDS`` (default 4; issue 23's run used 75 per target, 10 minutes in all); the
number of inputs tried is printed (``pytest -s``)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kgllm.util.errors import KGLLMError

SECONDS = float(os.environ.get("KGLLM_FUZZ_SECONDS", "4"))
SETTINGS = settings(max_examples=25, deadline=None, database=None, derandomize=False,
                    suppress_health_check=list(HealthCheck))

#: JSON values, sometimes deep, with odd strings
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) |
                           st.text(max_size=30), lambda kids: st.lists(kids, max_size=4) |
                           st.dictionaries(st.sampled_from(["id", "text", "sub_label", "obj_label", "predicate_id",
                                                            "sents", "vertexSet", "labels", "title", "sub_uri",
                                                            "obj_uri", "x"]) | st.text(max_size=5), kids, max_size=5),
                           max_leaves=20)
#: lines of text: JSON rows, tab rows, garbage, very deep brackets
lines = st.one_of(json_values.map(json.dumps), st.text(max_size=80),
                  st.lists(st.text(alphabet="\t abc0123-:|%\\\"{}[]\x00\x1b", max_size=12), max_size=6).map("\t".join),
                  st.integers(1, 3000).map(lambda n: '{"text": ' + "[" * n + "]" * n + "}"))
files = st.lists(lines, max_size=6).map("\n".join) | st.binary(max_size=200).map(lambda b: b.decode("latin-1"))


def _time_boxed(name: str, body) -> int:
    """Run the Hypothesis test ``body`` (25 inputs a call) until the budget is spent; inputs tried."""
    count = [0]
    end = time.monotonic() + SECONDS
    while time.monotonic() < end:
        body(count)
    print(f"\nfuzz {name}: {count[0]} inputs, no traceback")
    return count[0]


def _expect(call) -> None:
    try:
        call()
    except KGLLMError as exc:
        assert "\nTraceback" not in str(exc)


@pytest.fixture
def scratch():
    folder = Path(tempfile.mkdtemp(prefix="kgllm-fuzz-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _reader_cases(scratch):
    from kgllm.kg.extraction.corpus import read_corpus
    from kgllm.kg.sources.imports import import_openke, import_rdf, import_tsv
    from kgllm.kg.sources.lama import read_lama

    def write(name: str, text: str) -> Path:
        path = scratch / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        return path

    def openke(text: str):
        for f in ("entity2id.txt", "relation2id.txt", "train2id.txt"):
            write(f"ok/{f}", text)
        return import_openke(scratch / "ok")

    return {
        "jsonl corpus": lambda t: list(read_corpus(write("c.jsonl", t), "jsonl")),
        "text corpus": lambda t: list(read_corpus(write("c.txt", t), "text")),
        "redocred": lambda t: list(read_corpus(write("r.json", t), "redocred")),
        "tsv import": lambda t: import_tsv(write("k.tsv", t)),
        "openke import": openke,
        "lama": lambda t: read_lama(write("lama/P19.test.jsonl", t)),
        "turtle import": lambda t: import_rdf(write("g.ttl", t)),
        "ntriples import": lambda t: import_rdf(write("g.nt", t)),
    }


@pytest.mark.slow
@pytest.mark.parametrize("target", ["jsonl corpus", "text corpus", "redocred", "tsv import", "openke import", "lama",
                                    "turtle import", "ntriples import"])
def test_readers_end_in_a_result_or_one_kgllm_error(scratch, target):
    call = _reader_cases(scratch)[target]

    @SETTINGS
    @given(files)
    def body(count, text):
        count[0] += 1
        _expect(lambda: call(text))

    assert _time_boxed(target, body) > 0


@pytest.mark.slow
def test_hf_sources_end_in_a_result_or_one_kgllm_error(scratch):
    from kgllm.kg.extraction.hf_sources import open_source

    @SETTINGS
    @given(files, st.sampled_from([".jsonl", ".csv", ".tsv", ".json"]))
    def body(count, text, ext):
        count[0] += 1
        path = scratch / f"rows{count[0]}{ext}"
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        _expect(lambda: open_source(str(path)))

    assert _time_boxed("hf source", body) > 0


@pytest.mark.slow
def test_kg_folders_with_fuzzed_files_load_or_fail_in_one_line(kg_dir, scratch):
    from kgllm.kg.graph.store import KnowledgeGraph

    names = ["meta.json", "entities.tsv", "relations.tsv", "triples.tsv", "documents.tsv", "retired.tsv"]

    @SETTINGS
    @given(st.sampled_from(names), files)
    def body(count, name, text):
        count[0] += 1
        kg = scratch / "kg"
        shutil.rmtree(kg, ignore_errors=True)
        shutil.copytree(kg_dir, kg)
        (kg / name).write_text(text, encoding="utf-8", errors="surrogateescape")
        _expect(lambda: KnowledgeGraph.load(kg, provenance=True))

    assert _time_boxed("kg folder", body) > 0


@pytest.mark.slow
def test_cli_options_end_in_a_result_or_one_line(kg_dir, capsys):
    from kgllm.cli import main

    value = st.one_of(st.text(max_size=12), st.sampled_from(["inf", "-inf", "nan", "0", "-1", "1e308", "99999999999",
                                                            "", "x=y", "=", "a b"]))
    option = st.sampled_from(["--timeout", "--max-rows", "--bind", "--store", "--max-bytes", "--top", "--hops",
                              "--entity", "--json"])

    @SETTINGS
    @given(st.sampled_from(["kg-query", "kg-stats"]), st.lists(st.tuples(option, value), max_size=3))
    def body(count, cmd, opts):
        count[0] += 1
        argv = [cmd, str(kg_dir)] + (["SELECT ?s WHERE { ?s ?p ?o } LIMIT 2"] if cmd == "kg-query" else [])
        for name, val in opts:
            argv += [name] if name == "--json" else [name, val]
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's usage error: one line, exit 2
            code = exc.code
        assert code in (0, 1, 2)
        err = capsys.readouterr().err
        assert "Traceback" not in err

    assert _time_boxed("cli options", body) > 0
