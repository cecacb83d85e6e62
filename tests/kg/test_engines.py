"""build-kg --engine ray: the same KG as the local engine, byte for byte, also after Ray retries
a worker that was killed mid-shard (a local Ray instance, started and shut down by each build)."""

import filecmp

import pytest

from kgllm.kg.extraction.config import ExtractConfig
from kgllm.util.errors import ConfigError
from kgllm.kg.extraction.build import BuildSettings, run_build
from kgllm.kg.extraction.engines import KILL_ONCE_ENV
from tests.conftest import FIXTURES

FILES = ("entities.tsv", "relations.tsv", "triples.tsv", "provenance.tsv", "mentions.tsv", "graph.ttl",
         "documents.tsv")


def same_kg(a, b) -> bool:
    records = sorted(p.relative_to(a) for p in (a / "extractions").rglob("*.jsonl"))
    assert records and records == sorted(p.relative_to(b) for p in (b / "extractions").rglob("*.jsonl"))
    return all(filecmp.cmp(a / f, b / f, shallow=False) for f in [*FILES, *map(str, records)])


def build(out, engine="local", **ray):
    return run_build(BuildSettings(FIXTURES / "corpus", out, extract=ExtractConfig(shard_size=1), progress=False,
                                   engine=engine, ray=ray))


def test_unknown_engine_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="unknown engine"):
        BuildSettings(FIXTURES / "corpus", tmp_path / "kg", engine="spark")


@pytest.mark.slow
def test_ray_engine_gives_the_local_kg_even_after_a_worker_dies(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    build(tmp_path / "local")
    build(tmp_path / "ray", "ray", num_workers=2)
    assert same_kg(tmp_path / "local", tmp_path / "ray")
    marker = tmp_path / "killed"
    monkeypatch.setenv(KILL_ONCE_ENV, str(marker))  # the first worker SIGKILLs itself mid-shard
    build(tmp_path / "ray_killed", "ray", num_workers=2)
    assert marker.exists()  # a worker did die, and Ray's retry gave the same KG
    assert same_kg(tmp_path / "local", tmp_path / "ray_killed")


@pytest.mark.slow
def test_ray_build_resumes_from_finished_shards(tmp_path, redocred_file):
    """Shards a killed build finished (here written by the local engine) are skipped by a Ray build."""
    pytest.importorskip("ray")
    from kgllm.kg.extraction.build import _prepare_work_dir, build_kg, extract_shards, fingerprint, work_dir_for
    from kgllm.kg.extraction.corpus import read_corpus
    from kgllm.kg.extraction.extract import load_pipeline, pipeline_info

    cfg = ExtractConfig(shard_size=2)
    build_kg(redocred_file, tmp_path / "full", "redocred", cfg=cfg, progress=False)
    out = tmp_path / "resumed"
    work = work_dir_for(out)
    nlp = load_pipeline()
    _prepare_work_dir(work, fingerprint(redocred_file, "redocred", None, cfg, pipeline_info(nlp)))
    extract_shards(list(read_corpus(redocred_file, "redocred"))[:4], work, cfg, nlp, progress=False)
    res = run_build(BuildSettings(redocred_file, out, "redocred", extract=cfg, progress=False, engine="ray",
                                  ray={"num_workers": 1}))
    assert res.kg.meta["corpus"]["shards_resumed"] == 2 and res.kg.meta["corpus"]["shards"] == 3
    assert same_kg(tmp_path / "full", out)


@pytest.mark.slow
def test_an_extractor_registered_by_the_user_runs_in_ray_workers(tmp_path, monkeypatch):
    """``register_extractor`` in the driver reaches the Ray workers (they start without it)."""
    pytest.importorskip("ray")
    from kgllm.kg.extraction import extractors

    monkeypatch.setitem(extractors.EXTRACTORS, "mine", "kgllm.kg.extraction.extractors.cooccurrence:CooccurrenceExtractor")

    def with_mine(out, engine, **ray):
        return run_build(BuildSettings(FIXTURES / "corpus", out, extract=ExtractConfig(shard_size=1, extractor="mine"),
                                       progress=False, engine=engine, ray=ray))

    with_mine(tmp_path / "local", "local")
    with_mine(tmp_path / "ray", "ray", num_workers=2)
    assert same_kg(tmp_path / "local", tmp_path / "ray")
    assert len((tmp_path / "ray" / "triples.tsv").read_text().splitlines()) > 1  # edges were extracted
