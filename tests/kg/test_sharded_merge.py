"""The sharded merge on Ray (``build-kg`` / ``update-kg --engine ray``): the local engine's KG byte
for byte, with 1 and 3 reducers, in Turtle and N-Triples, after a reducer is killed mid-merge, and
for an update over imports, a retracted fact and a removed document."""

import filecmp
import json

import pytest

from kgllm.kg.extraction.assemble import Batch
from kgllm.kg.extraction.build import BuildSettings, assemble, run_build
from kgllm.kg.extraction.config import ExtractConfig
from kgllm.kg.extraction.sharded import (KILL_REDUCER_ONCE_ENV, partition_of, sharded_merge, synthetic_records,
                                         write_meta)
from tests.conftest import FIXTURES

FILES = ("entities.tsv", "relations.tsv", "triples.tsv", "provenance.tsv", "mentions.tsv", "documents.tsv")


def local_kg(files, folder, fmt):
    folder.mkdir()
    meta = {"extractor": {"version": "test/1"}, "updates": [{"update": 0}]}
    kg = assemble(files, meta, folder / "mentions.tsv", "corpus")
    kg.meta["updates"][0]["counts"] = kg.counts()
    kg.write_files(folder, fmt)
    return kg


def meta(folder):
    """meta.json without the build's time stamps."""
    m = json.loads((folder / "meta.json").read_text())
    m.pop("created", None)
    for u in m["updates"]:
        u.pop("time", None)
    return m


def same(a, b, rdf):
    differ = [f for f in (*FILES, rdf) if not filecmp.cmp(a / f, b / f, shallow=False)]
    assert not differ, differ
    assert meta(a) == meta(b)


def test_partitions_are_stable_and_cover_every_reducer():
    keys = [f"PER:entity {i}" for i in range(200)]
    assert [partition_of(k, 3) for k in keys] == [partition_of(k, 3) for k in keys]
    assert {partition_of(k, 3) for k in keys} == {0, 1, 2}


@pytest.mark.slow
def test_sharded_merge_gives_the_local_kg_byte_for_byte(tmp_path):
    ray = pytest.importorskip("ray")
    files = synthetic_records(tmp_path / "records", n_shards=7, docs_per_shard=40, seed=3, vocabulary=300)
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    try:
        for fmt, rdf in (("turtle", "graph.ttl"), ("nt", "graph.nt")):
            kg = local_kg(files, tmp_path / f"local-{fmt}", fmt)
            assert kg.num_entities > 100 and len(kg.edges) > 200 and kg.num_relations > 5
            assert any(len(e.provenance) > 1 for e in kg.edges.values())  # edges repeated across shards
            for reducers in (1, 3):
                out = tmp_path / f"ray-{fmt}-{reducers}"
                out.mkdir()
                meta = {"extractor": {"version": "test/1"}, "updates": [{"update": 0}]}
                merged = sharded_merge([Batch(files, "corpus", 0)], out, meta, fmt, reducers=reducers, trace_memory=True)
                meta["updates"][0]["counts"] = dict(merged["counts"])
                write_meta(out, meta, merged, fmt, "memory")
                same(tmp_path / f"local-{fmt}", out, rdf)
                assert merged["counts"]["entities"] == kg.num_entities and len(merged["reducer_peak_bytes"]) == reducers
        empty = synthetic_records(tmp_path / "empty", n_shards=2, docs_per_shard=0)
        local_kg(empty, tmp_path / "local-empty", "turtle")
        (tmp_path / "ray-empty").mkdir()
        sharded_merge([Batch(empty, "corpus", 0)], tmp_path / "ray-empty",
                      {"updates": [{"update": 0}], "extractor": {"version": "test/1"}}, reducers=2)
        assert (tmp_path / "ray-empty" / "graph.ttl").read_bytes() == (tmp_path / "local-empty" / "graph.ttl").read_bytes()
        assert not (tmp_path / "ray-empty" / "documents.tsv").exists()
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_ray_build_with_a_killed_reducer_gives_the_local_kg(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    cfg = ExtractConfig(shard_size=1)
    local = run_build(BuildSettings(FIXTURES / "corpus", tmp_path / "local", extract=cfg, progress=False))
    marker = tmp_path / "killed"
    monkeypatch.setenv(KILL_REDUCER_ONCE_ENV, str(marker))
    res = run_build(BuildSettings(FIXTURES / "corpus", tmp_path / "ray", extract=cfg, progress=False, engine="ray",
                                  ray={"num_workers": 2, "reducers": 3}))
    assert marker.exists()  # a reducer died, and Ray ran it again
    same(tmp_path / "local", tmp_path / "ray", "graph.ttl")
    assert res.counts == local.counts and str(res) == repr(local.kg)
    assert json.loads((tmp_path / "ray" / "meta.json").read_text())["identity"] == local.kg.identity()
    assert res.kg.num_entities == local.kg.num_entities  # read back from the folder on first use


@pytest.mark.slow
def test_ray_update_over_imports_retractions_and_removals_gives_the_local_kg(tmp_path, redocred_file):
    """An update of a KG holding a build, an import with descriptions, a retracted fact and a removed
    document (so retired entities): ``update-kg --engine ray`` writes the local engine's folder."""
    import shutil

    pytest.importorskip("ray")
    from kgllm.kg.extraction.corpus import read_corpus
    from kgllm.kg.extraction.update import import_into, remove_docs, remove_fact, update_kg
    from kgllm.kg.graph.store import KnowledgeGraph

    docs = list(read_corpus(redocred_file, "redocred"))

    def jsonl(name, part):
        path = tmp_path / name
        path.write_text("".join(json.dumps({"id": d.doc_id, "text": d.text}) + "\n" for d in part))
        return path

    kg_dir = tmp_path / "kg"
    run_build(BuildSettings(jsonl("a.jsonl", docs[:3]), kg_dir, progress=False))
    imported = KnowledgeGraph({"source": "cur"})
    a, b, c = (imported.add_entity(f"cur:{x}", x, "ENT", sources=("cur",)) for x in ("Alpha", "Beta", "Gamma"))
    imported.descriptions.update({b: "the second", a: "the first"})
    imported.add_edge(a, "rel", b, ("facts.tsv", 0, 0, 1, 1.0))
    imported.add_edge(b, "rel", c, None, 0.5, count=3)
    import_into(kg_dir, imported, "cur")
    remove_fact(kg_dir, "cur:Alpha", "rel", "cur:Beta")
    remove_docs(kg_dir, [docs[1].doc_id])
    assert KnowledgeGraph.load(kg_dir).retired  # entities only the removed document mentioned
    shutil.copytree(kg_dir, tmp_path / "kg_ray")
    b_docs = jsonl("b.jsonl", docs[3:])
    update_kg(kg_dir, b_docs, progress=False)
    update_kg(tmp_path / "kg_ray", b_docs, progress=False, engine="ray", ray={"num_workers": 2, "reducers": 3})
    for name in ("descriptions.tsv", "retired.tsv"):
        assert (tmp_path / "kg_ray" / name).read_bytes() == (kg_dir / name).read_bytes(), name
    same(kg_dir, tmp_path / "kg_ray", "graph.ttl")
