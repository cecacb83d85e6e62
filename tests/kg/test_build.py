import json
import os

import pytest

from kgllm.kg.extraction.config import ExtractConfig
from kgllm.util.errors import CorpusError
from kgllm.kg.extraction.build import build_kg, work_dir_for
from kgllm.kg.graph.store import KnowledgeGraph


def test_kg_folder_has_all_artifacts(kg_dir):
    names = {p.name for p in kg_dir.iterdir()}
    assert {"entities.tsv", "relations.tsv", "triples.tsv", "provenance.tsv", "mentions.tsv",
            "graph.ttl", "meta.json"} <= names
    meta = json.loads((kg_dir / "meta.json").read_text())
    assert meta["corpus"]["documents"] == 6 and len(meta["corpus"]["sha256"]) == 64
    assert meta["spacy"]["version"] and meta["extractor"]["version"].startswith("kgllm-dep-path")
    assert meta["counts"]["entities"] > 10 and meta["counts"]["edges"] > 3


def test_same_corpus_gives_same_ids(tmp_path, redocred_file, kg_dir):
    build_kg(redocred_file, tmp_path / "again", "redocred", progress=False)
    for name in ("entities.tsv", "relations.tsv", "triples.tsv", "provenance.tsv"):
        assert (tmp_path / "again" / name).read_text() == (kg_dir / name).read_text()


def test_known_facts_extracted(kg):
    labels = {e.label for e in kg.entities}
    assert {"Barack Obama", "Honolulu", "Paris", "France"} <= labels
    facts = {(kg.entities[h].label, kg.relations[r], kg.entities[t].label) for h, r, t in kg.edges}
    assert ("Barack Obama", "born_in", "Honolulu") in facts
    assert ("Paris", "capital_of", "France") in facts


def test_text_and_jsonl_corpora(tmp_path):
    fix = __import__("tests.conftest", fromlist=["FIXTURES"]).FIXTURES
    kg = build_kg(fix / "corpus", tmp_path / "a", progress=False)
    assert "PER:michelle obama" in kg.key_to_id
    build_kg(fix / "corpus.jsonl", tmp_path / "b", progress=False)
    loaded = KnowledgeGraph.load(tmp_path / "b", provenance=True)
    docs = {p[0] for e in loaded.edges.values() for p in e.provenance}
    assert docs and docs <= {"d1", "d2"}


@pytest.mark.parametrize("content", [b"", "caf\xe9 au lait".encode("latin-1")])
def test_bad_input_leaves_nothing_behind(tmp_path, content):
    corpus = tmp_path / "bad.txt"
    corpus.write_bytes(content)
    out = tmp_path / "kg"
    with pytest.raises(CorpusError, match="bad.txt"):
        build_kg(corpus, out, progress=False)
    assert not out.exists() and not work_dir_for(out).exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.txt"]


def test_malformed_jsonl_midway_leaves_nothing_behind(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"text": "Paris is in France."}\n{"text": "Berlin is in Germany."}\n{broken\n')
    out = tmp_path / "kg"
    with pytest.raises(CorpusError, match=r"c.jsonl:3: malformed JSON"):
        build_kg(corpus, out, cfg=ExtractConfig(shard_size=1), progress=False)
    assert not out.exists() and not work_dir_for(out).exists()


def test_existing_output_needs_overwrite(tmp_path, redocred_file):
    out = tmp_path / "kg"
    out.mkdir()
    with pytest.raises(FileExistsError, match="--overwrite"):
        build_kg(redocred_file, out, progress=False)


def test_interrupted_build_resumes_to_identical_graph(tmp_path, redocred_file, kg_dir):
    """Shards finished before a kill are reused; the result equals an uninterrupted build."""
    cfg = ExtractConfig(shard_size=2)
    full = build_kg(redocred_file, tmp_path / "full", "redocred", cfg=cfg, progress=False)
    out = tmp_path / "resumed"
    # simulate a build killed after its first two shards: copy the finished shards of a run into place
    work = work_dir_for(out)
    from kgllm.kg.extraction.build import _prepare_work_dir, extract_shards, fingerprint
    from kgllm.kg.extraction.corpus import read_corpus
    from kgllm.kg.extraction.extract import load_pipeline, pipeline_info

    nlp = load_pipeline()
    _prepare_work_dir(work, fingerprint(redocred_file, "redocred", None, cfg, pipeline_info(nlp)))
    docs = list(read_corpus(redocred_file, "redocred"))[:4]
    extract_shards(docs, work, cfg, nlp, progress=False)
    assert len(list(work.glob("shard-*.jsonl"))) == 2
    kg = build_kg(redocred_file, out, "redocred", cfg=cfg, progress=False)
    assert kg.meta["corpus"]["shards_resumed"] == 2
    for name in ("entities.tsv", "relations.tsv", "triples.tsv", "provenance.tsv", "mentions.tsv"):
        assert (out / name).read_text() == (tmp_path / "full" / name).read_text()
    assert full.counts() == kg.counts() and not work.exists()


def test_partial_work_from_other_settings_is_discarded(tmp_path, redocred_file):
    out = tmp_path / "kg"
    work = work_dir_for(out)
    work.mkdir()
    (work / "settings.json").write_text('{"fingerprint": "other"}')
    (work / "shard-00000.jsonl").write_text("garbage\n")
    kg = build_kg(redocred_file, out, "redocred", progress=False)
    assert kg.meta["corpus"]["shards_resumed"] == 0 and not work.exists()


def test_no_temp_files_left(tmp_path, redocred_file):
    build_kg(redocred_file, tmp_path / "kg", "redocred", limit=2, progress=False)
    assert sorted(os.listdir(tmp_path)) == ["kg"]
