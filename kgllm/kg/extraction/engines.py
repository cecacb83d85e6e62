"""Extraction engines of ``build-kg``: ``local`` (spaCy ``nlp.pipe`` in this machine's processes,
in :mod:`kgllm.kg.extraction.build`) and ``ray`` (this module): one Ray task per shard of documents, on a
local Ray instance or a cluster (``--address auto`` or ``ray://HOST:10001``).

Each Ray worker process loads spaCy and the extractors once (cached per settings) and returns
the shard's record lines; the driver writes each finished shard atomically to the partial folder,
so a killed build resumes from its finished shards as with the local engine, and assembly then
reads the shards in shard order: ids are assigned in one deterministic step, never by worker
order, and the KG is byte-identical to the local engine's. A worker that dies mid-shard is
retried by Ray (``max_retries``); the shard is then extracted again from the start.

Ray is an optional dependency (``pip install -e '.[ray]'``); nothing here imports it until a
Ray build starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Iterable, Iterator

from kgllm.kg.extraction.config import ExtractConfig
from kgllm.util.errors import ConfigError
from kgllm.util.io import atomic_open
from kgllm.kg.extraction.corpus import Document

ENGINES = ("local", "ray")
#: test hook: a marker file path; the first Ray worker to find it missing creates it and kills
#: itself mid-shard (SIGKILL), so tests can check that Ray's retry gives the same KG
KILL_ONCE_ENV = "KGLLM_RAY_KILL_ONCE"

_WORKER_STATE: dict = {}


def doc_sha256(doc: Document) -> str:
    """A document's identity for updates: sha256 of its id and text (as the corpus hash reads them)."""
    return hashlib.sha256(doc.doc_id.encode() + b"\0" + doc.text.encode() + b"\0").hexdigest()


def write_lines(path: Path, lines: list[str]) -> None:
    """Write ``lines`` to ``path`` atomically (a reader never sees half a file)."""
    with atomic_open(path) as fh:
        fh.writelines(lines)


def shard_chunks(spacy_docs, size: int) -> Iterator[list]:
    """Parsed ``(Doc, (doc id, shard, sha256))`` in runs of at most ``size`` consecutive documents
    of one shard (a chunk never spans two shards, so a finished shard is written before the next
    one is extracted)."""
    chunk: list = []
    for item in spacy_docs:
        if chunk and (len(chunk) >= size or item[1][1] != chunk[0][1][1]):
            yield chunk
            chunk = []
        chunk.append(item)
    if chunk:
        yield chunk


def chunk_lines(chunk: list, cfg: ExtractConfig, extractors) -> list[str]:
    """The record lines (mentions, entity clusters, typed edges, text hash) of one chunk of parsed
    documents, extracted together (the learned extractor scores them in one pass)."""
    from kgllm.kg.extraction.extract import extract_docs

    records = extract_docs([(doc, doc_id) for doc, (doc_id, _, _) in chunk], cfg, extractors)
    return [json.dumps({**record.to_dict(), "sha256": sha}, ensure_ascii=False) + "\n"
            for record, (_, (_, _, sha)) in zip(records, chunk)]


def extraction_lines(spacy_docs, cfg: ExtractConfig, extractors) -> Iterator[tuple[int, str, str]]:
    """``(shard, document id, record line)`` for each parsed ``(Doc, (doc id, shard, sha256))``,
    ``cfg.re_batch_size`` documents of a shard at a time."""
    for chunk in shard_chunks(spacy_docs, cfg.re_batch_size):
        for line, (_, (doc_id, k, _)) in zip(chunk_lines(chunk, cfg, extractors), chunk):
            yield k, doc_id, line




def _worker(cfg_dict: dict, registry: dict | None = None):
    """spaCy and the extractors of this worker process, loaded on its first shard; ``registry``
    (name -> ``"module:Class"``) re-registers the driver's extractors, so one registered from the
    user's code (``register_extractor``) is found in a Ray worker too."""
    from kgllm.kg.extraction.extract import load_pipeline
    from kgllm.kg.extraction.extractors import EXTRACTORS, load_extractors

    for name, target in (registry or {}).items():
        EXTRACTORS.setdefault(name, target)
    key = repr(sorted(cfg_dict.items()))
    if key not in _WORKER_STATE:
        cfg = ExtractConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg_dict.items()})
        _WORKER_STATE.clear()
        _WORKER_STATE[key] = (cfg, load_pipeline(cfg.spacy_model, disable=cfg.disable), load_extractors(cfg))
    return _WORKER_STATE[key]


def extract_shard(cfg_dict: dict, k: int, docs: list[tuple[str, str, str]], registry: dict | None = None) -> list[str]:
    """Record lines of one shard (``(doc id, text, sha256)`` per document), in document order."""
    cfg, nlp, extractors = _worker(cfg_dict, registry)
    marker = os.environ.get(KILL_ONCE_ENV)
    parsed = nlp.pipe(((text, (doc_id, k, sha)) for doc_id, text, sha in docs), as_tuples=True,
                      batch_size=cfg.batch_size)
    lines = []
    for _, _, line in extraction_lines(parsed, cfg, extractors):
        lines.append(line)
        if marker and not os.path.exists(marker):  # test hook (see KILL_ONCE_ENV): die mid-shard
            Path(marker).write_text(str(os.getpid()))
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
    return lines


def ray_extract(shards: Iterable[tuple[int, list]], work: Path, cfg: ExtractConfig, bar, address: str | None = None,
                num_workers: int | None = None, max_retries: int = 3) -> None:
    """Extract every ``(shard number, documents)`` of ``shards`` on Ray and write
    ``work/shard-NNNNN.jsonl`` as each finishes; at most ``2 x workers`` shards are in flight, so the
    corpus is still streamed. Starts a local Ray instance (``num_workers`` CPUs) unless ``address``
    names a running one, and shuts down only an instance it started."""
    with ray_session(address, num_workers) as ray:
        workers = num_workers or max(int(ray.cluster_resources().get("CPU", 1)), 1)
        remote = ray.remote(num_cpus=1, max_retries=max_retries, retry_exceptions=False)(extract_shard)
        cfg_dict = {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.to_dict().items()}
        cfg_ref = ray.put(cfg_dict)
        from kgllm.kg.extraction.extractors import EXTRACTORS, extractor_names

        registry = {n: EXTRACTORS[n] for n in extractor_names(cfg.extractor)}  # the user's own ones included
        in_flight: dict = {}

        def drain(block_until: int) -> None:
            while len(in_flight) > block_until:
                done, _ = ray.wait(list(in_flight), num_returns=1)
                k, n = in_flight.pop(done[0])
                write_lines(work / f"shard-{k:05d}.jsonl", ray.get(done[0]))
                bar.update(n)

        for k, kept in shards:
            docs = [(d.doc_id, d.text, doc_sha256(d)) for d in kept]
            in_flight[remote.remote(cfg_ref, k, docs, registry)] = (k, len(docs))
            drain(2 * workers)
        drain(0)


@contextlib.contextmanager
def ray_session(address: str | None = None, num_workers: int | None = None):
    """The ``ray`` module with an instance running: the one already initialised, a cluster at
    ``address``, or a local instance of ``num_workers`` CPUs, shut down on exit only if started here."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("--engine ray needs Ray: pip install -e '.[ray]' (pinned in requirements/constraints.txt)") \
            from exc
    started = False
    if not ray.is_initialized():
        kwargs = {"address": address} if address else {"num_cpus": num_workers or os.cpu_count() or 1}
        ray.init(include_dashboard=False, logging_level="WARNING", log_to_driver=False, **kwargs)
        started = True
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()
