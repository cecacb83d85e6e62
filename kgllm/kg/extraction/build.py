"""``kgllm build-kg``: stream a corpus through spaCy into a KG folder, resumably.

Documents are processed in shards of ``shard_size``. Each finished shard is
written atomically to ``.<out>.partial/shard-NNNNN.jsonl``; a build that is
killed (even with SIGKILL) and started again with the same command skips the
finished shards and ends with the same graph. Partial work is reused only for the same
settings and corpus (size and modification time of every corpus file in the fingerprint, and
each shard's documents hashed and compared, so a corpus edited between a kill and a rerun is
re-extracted). The KG folder is assembled inside the partial folder and renamed into place at
the very end, so ``out`` either does not exist or is complete; an exclusive lock keeps a second
build of the same ``out`` from mixing its files in, and ``--overwrite`` replaces only a KG folder
that does not hold the corpus. Bad input raises a
:class:`~kgllm.util.errors.CorpusError` naming the file and removes the partial work;
with ``skip_bad`` bad documents are skipped and listed in ``meta.json``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import itertools
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from kgllm import __version__
from kgllm.kg.extraction.config import ExtractConfig
from kgllm.util.errors import ConfigError, CorpusError
from kgllm.util.io import OutputError, atomic_write_json, check_replaceable, locked, stable_hash
from kgllm.kg.extraction.corpus import Document, read_corpus
from kgllm.kg.extraction.extract import load_pipeline, pipeline_info
from kgllm.kg.extraction.assemble import Assembler, Batch, update_dir
from kgllm.kg.extraction.engines import chunk_lines, doc_sha256, shard_chunks, write_lines
from kgllm.kg.extraction.extractors import extractor_meta, extractor_version, load_extractors
from kgllm.kg.graph.folder import KG_ENTRIES, KG_MARKER
from kgllm.kg.extraction.prepare import PrepareConfig, PrepareReport, prepare
from kgllm.kg.graph.store import KnowledgeGraph

log = logging.getLogger(__name__)


def work_dir_for(out: Path) -> Path:
    """The resumable work folder beside a KG output folder (``.<name>.partial``)."""
    return out.parent / f".{out.name}.partial"


def corpus_stat(corpus: Path) -> list:
    """Size and modification time of every file of the corpus (a fast check that it is unchanged)."""
    corpus = Path(corpus)
    if not corpus.exists():  # a hub dataset (--format hf): its cached files are datasets' business
        return []
    files = sorted(p for p in corpus.rglob("*") if p.is_file()) if corpus.is_dir() else [corpus]
    return [[str(f.relative_to(corpus)) if corpus.is_dir() else f.name, st.st_size, st.st_mtime_ns]
            for f in files for st in (f.stat(),)]


def fingerprint(corpus: Path, fmt: str, limit: int | None, cfg: ExtractConfig, spacy_info: dict,
                text_field: str = "text", prep: PrepareConfig | None = None, hf: dict | None = None) -> str:
    """Identity of a build's settings and corpus files: partial work is reused only under the same
    fingerprint (and each shard only if its documents hash the same, see :func:`extract_shards`)."""
    return stable_hash({"corpus": str(Path(corpus).resolve()), "stat": corpus_stat(corpus), "format": fmt,
                        "limit": limit,
                        "extract": cfg.to_dict(), "spacy": spacy_info, "extractor": extractor_version(cfg),
                        "text_field": text_field, "prepare": vars(prep or PrepareConfig()), **({"hf": hf} if hf else {})})


def _shards(docs: Iterable[Document], size: int) -> Iterator[list[Document]]:
    it = iter(docs)
    while batch := list(itertools.islice(it, size)):
        yield batch


def _prepare_work_dir(work: Path, fp: str) -> None:
    settings = work / "settings.json"
    if work.is_symlink() or (work.exists() and not work.is_dir()):
        raise OutputError(f"{work}: is a {'symlink' if work.is_symlink() else 'file'}, not kgllm's partial folder; "
                          "nothing was deleted (move it away and run again)")
    if work.exists():
        try:
            same = json.loads(settings.read_text())["fingerprint"] == fp
        except (OSError, ValueError, KeyError):
            same = False
        if same:
            for stale in itertools.chain(work.glob(".*.tmp"), work.glob("kg.tmp")):  # left by a kill
                shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
            return
        log.info("discarding partial build %s made with other settings", work)
        shutil.rmtree(work)
    work.mkdir(parents=True)
    atomic_write_json(settings, {"fingerprint": fp})


def extract_shards(docs: Iterable[Document], work: Path, cfg: ExtractConfig, nlp, progress: bool = True,
                   total: int | None = None, errors: list | None = None, engine: str = "local",
                   ray_options: dict | None = None) -> tuple[list[Path], dict]:
    """Run spaCy over the documents of unfinished shards; return all shard files and corpus facts.

    The corpus is streamed: memory holds one shard of extractions at a time (``engine="local"``:
    ``nlp.pipe`` with ``cfg.n_process`` processes) or the shards in flight (``engine="ray"``:
    :func:`kgllm.kg.extraction.engines.ray_extract`, one Ray task per shard; the same records either way).
    """
    from tqdm.auto import tqdm

    digest = hashlib.sha256()
    facts = {"documents": 0, "characters": 0, "words": 0, "shards": 0, "shards_resumed": 0}
    shard_files: list[Path] = []

    seen: dict[bytes, str] = {}  # digest of each document id (less memory than the id) -> where first seen

    def key(doc_id: str) -> bytes:
        return hashlib.blake2b(doc_id.encode("utf-8"), digest_size=12).digest()

    def unique_id(doc: Document) -> Document:
        where, k = doc.meta.get("source", doc.doc_id), key(doc.doc_id)
        if k not in seen:
            seen[k] = where
            return doc
        first = seen[k]
        exc = CorpusError(f"{where}: duplicate document id {doc.doc_id!r} (first at {first}); ids must be "
                          "unique, since provenance points to them (--skip-bad renames duplicates)")
        if errors is None:
            raise exc
        n = next(n for n in itertools.count(2) if key(f"{doc.doc_id}#{n}") not in seen)
        log.warning("%s: duplicate document id %r renamed to %r", where, doc.doc_id, f"{doc.doc_id}#{n}")
        facts["renamed_duplicate_ids"] = facts.get("renamed_duplicate_ids", 0) + 1
        seen[key(f"{doc.doc_id}#{n}")] = where
        return Document(f"{doc.doc_id}#{n}", doc.text, doc.meta)

    def usable(shard: list[Document]) -> tuple[list[Document], str]:
        """The shard's documents that can be extracted, and the sha256 of their ids and texts."""
        kept, shard_digest = [], hashlib.sha256()
        for doc in shard:
            if len(doc.text) > nlp.max_length:
                where = doc.meta.get("source", doc.doc_id)
                exc = CorpusError(f"{where}: document {doc.doc_id!r} has {len(doc.text):,} characters, over "
                                  f"spaCy's limit of {nlp.max_length:,}; split it or pass --skip-bad")
                if errors is None:
                    raise exc
                errors.append(exc)
                continue
            doc = unique_id(doc)
            blob = doc.doc_id.encode() + b"\0" + doc.text.encode() + b"\0"  # as kg.corpus.corpus_hash
            digest.update(blob)
            shard_digest.update(blob)
            facts["documents"] += 1
            facts["characters"] += len(doc.text)
            facts["words"] += len(doc.text.split())
            kept.append(doc)
        return kept, shard_digest.hexdigest()

    def unfinished() -> Iterator[tuple[int, list[Document]]]:
        for k, shard in enumerate(_shards(docs, cfg.shard_size)):
            path, sidecar = work / f"shard-{k:05d}.jsonl", work / f"shard-{k:05d}.sha256"
            shard_files.append(path)
            kept, sha = usable(shard)
            done = path.exists() and sidecar.is_file() and sidecar.read_text().strip() == sha
            facts["shards"] += 1
            facts["shards_resumed"] += done
            if done:
                bar.update(len(kept))
                continue
            if path.exists():  # extracted from other text: the corpus changed since the kill
                log.info("%s: corpus content changed, re-extracting", path.name)
                path.unlink()
            atomic_open_write(sidecar, [sha + "\n"])  # before the shard file, so a shard file has its hash
            if not kept:  # every document of the shard was skipped
                atomic_open_write(path, [])
                continue
            yield k, kept

    def pending() -> Iterator[tuple[str, tuple[str, int, str]]]:
        for k, kept in unfinished():
            for doc in kept:
                yield doc.text, (doc.doc_id, k, doc_sha256(doc))

    atomic_open_write = write_lines
    bar = tqdm(total=total, unit="doc", desc="build-kg", disable=not progress)
    if engine == "ray":
        from kgllm.kg.extraction.engines import ray_extract

        ray_extract(unfinished(), work, cfg, bar, **(ray_options or {}))
        bar.close()
        facts["sha256"] = digest.hexdigest()
        return shard_files, facts
    extractors = load_extractors(cfg)  # built once, not per document
    current, lines = -1, []
    parsed = nlp.pipe(pending(), as_tuples=True, batch_size=cfg.batch_size, n_process=cfg.n_process)
    for chunk in shard_chunks(parsed, cfg.re_batch_size):  # documents of one shard, extracted together
        k = chunk[0][1][1]
        if k != current and lines:  # a finished shard is written before the next document is extracted
            atomic_open_write(work / f"shard-{current:05d}.jsonl", lines)
            lines = []
        current = k
        lines += chunk_lines(chunk, cfg, extractors)
        bar.update(len(chunk))
    if lines:
        atomic_open_write(work / f"shard-{current:05d}.jsonl", lines)
    bar.close()
    facts["sha256"] = digest.hexdigest()
    return shard_files, facts


def assemble(shard_files: Iterable[Path], meta: dict, mentions_out: Path | None = None,
             source: str = "corpus") -> KnowledgeGraph:
    """Merge shard extractions into one KG (corpus-level canonical entities), as build 0 of
    :mod:`kgllm.kg.extraction.assemble`. Mentions are streamed to ``mentions_out``."""
    asm = Assembler(meta, mentions_out=mentions_out)
    try:
        asm.add_batches([Batch(list(shard_files), source, 0)])
        return asm.finish()
    finally:
        asm.close()


def finish_build(work: Path, out: Path, shard_files: list[Path], meta: dict, rdf_format: str, store: str,
                 overwrite: bool, source: str, reducers: int | None = None) -> KnowledgeGraph | dict:
    """Assemble the KG inside ``work`` and rename it to ``out`` in one step; then drop ``work``.

    Hand-written rather than :func:`kgllm.util.io.atomic_dir`: that one stages in ``out``'s parent, and a
    build killed while assembling would leave a stray temporary folder there; here everything
    stays inside the partial folder, which the next run cleans or resumes. The shard files move
    into the KG folder (``extractions/00000/``) so that ``update-kg`` can re-assemble without spaCy.

    With ``reducers``, the KG is merged on the running Ray instance by
    :func:`kgllm.kg.extraction.sharded.sharded_merge` (the same files; this process never holds
    the KG) and its counts are returned instead of the KG."""
    tmp = work / "kg.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    meta["updates"] = [{"update": 0, "kind": "build", "time": meta.get("created"), "source": source,
                        "corpus_sha256": meta.get("corpus", {}).get("sha256")}]
    if reducers:
        from kgllm.kg.extraction.sharded import sharded_merge, write_meta

        merged = sharded_merge([Batch(list(shard_files), source, 0)], tmp, meta, rdf_format, store, reducers)
        meta["updates"][0]["counts"] = dict(merged["counts"])
        write_meta(tmp, meta, merged, rdf_format, store)
        kg = merged["counts"]
    else:
        kg = assemble(shard_files, meta, tmp / "mentions.tsv", source)
        kg.meta["updates"][0]["counts"] = kg.counts()
    records = update_dir(tmp, 0)
    records.mkdir(parents=True)
    for path in shard_files:
        try:  # a link: the shards stay resumable until the KG folder is in place
            os.link(path, records / path.name)
        except OSError:
            shutil.copy2(path, records / path.name)
    if not reducers:
        kg.write_files(tmp, rdf_format, store)
    if out.exists():
        check_replaceable(out, KG_MARKER, (), overwrite, KG_ENTRIES)  # checked at the start too; it may have appeared since
        os.replace(out, work / "replaced")
    os.replace(tmp, out)
    shutil.rmtree(work, ignore_errors=True)
    log.info("wrote %s: %s", out, describe(kg) if reducers else kg)
    return kg


@dataclass
class BuildSettings:
    """Everything one ``build-kg`` run depends on.

    Args:
        corpus: a ``.txt`` file or folder, a ``.jsonl`` file, or a Re-DocRED ``.json`` file.
        out: the KG folder to write.
        fmt: ``auto``, ``text``, ``jsonl`` or ``redocred``.
        limit: only the first ``limit`` documents.
        extract: extraction settings (extractor, spaCy pipeline, shard size, ...).
        rdf_format: ``turtle`` or ``nt`` for the RDF export.
        overwrite: replace an existing KG folder at ``out``.
        progress: show a progress bar.
        text_field: the JSONL field holding the text.
        store: ``memory`` (RDF file only) or ``oxigraph`` (also an on-disk SPARQL store).
        prepare: optional corpus preparation (normalisation, clean-up, de-duplication, length filter).
        skip_bad: skip bad documents (listed in ``meta.json``) instead of failing.
        hf: for ``fmt="hf"`` (a Hugging Face ``datasets`` source): ``split`` (``train``, ``val``,
            ``test``: the rows ``dataset: hf`` uses for it; default ``train``), ``split_fraction``,
            ``split_seed`` (as in the experiment's ``dataset_args``).
        engine: ``local`` (``nlp.pipe``, ``extract.n_process`` processes) or ``ray``
            (:mod:`kgllm.kg.extraction.engines`; the same KG, byte for byte).
        ray: for ``engine="ray"``: ``address`` (``None``: start a local instance; ``auto``;
            ``ray://HOST:10001``), ``num_workers``, and ``reducers`` (partitions of the sharded
            merge, :mod:`kgllm.kg.extraction.sharded`; default: the workers; ``0``: merge in this
            process instead).
    """

    corpus: Path
    out: Path
    fmt: str = "auto"
    limit: int | None = None
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    rdf_format: str = "turtle"
    overwrite: bool = False
    progress: bool = True
    text_field: str = "text"
    store: str = "memory"
    prepare: PrepareConfig = field(default_factory=PrepareConfig)
    skip_bad: bool = False
    hf: dict = field(default_factory=dict)
    engine: str = "local"
    ray: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        from kgllm.kg.extraction.engines import ENGINES

        self.corpus, self.out = Path(self.corpus), Path(self.out)
        if self.engine not in ENGINES:
            raise ConfigError(f"unknown engine {self.engine!r}; choose one of {', '.join(ENGINES)}")


def describe(counts: dict) -> str:
    """A KG's counts as :class:`KnowledgeGraph` prints itself."""
    return f"KnowledgeGraph(entities={counts['entities']}, relations={counts['relations']}, edges={counts['edges']})"


@dataclass
class BuildResult:
    """What a build produced: the KG written to ``out`` (``kg``; read back from ``out`` on first use
    after a sharded merge, which never holds it in memory), its ``counts``, the corpus-preparation
    report (``None`` when no preparation was asked for) and the documents skipped as bad."""

    _kg: KnowledgeGraph | None
    out: Path
    report: PrepareReport | None = None
    skipped: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)

    @property
    def kg(self) -> KnowledgeGraph:
        if self._kg is None:
            self._kg = KnowledgeGraph.load(self.out)
        return self._kg

    def __str__(self) -> str:
        return describe(self.counts)


def run_build(settings: BuildSettings) -> BuildResult:
    """Build the KG folder ``settings.out`` from ``settings.corpus`` under an exclusive lock."""
    check_replaceable(settings.out, KG_MARKER, (settings.corpus,), settings.overwrite, KG_ENTRIES)
    with locked(settings.out):  # one writer per output folder (and its partial folder)
        return _build_locked(settings)


def build_kg(corpus: str | Path, out: str | Path, fmt: str = "auto", limit: int | None = None,
             cfg: ExtractConfig | None = None, rdf_format: str = "turtle", overwrite: bool = False,
             progress: bool = True, text_field: str = "text", store: str = "memory",
             prep: PrepareConfig | None = None, skip_bad: bool = False) -> KnowledgeGraph:
    """:func:`run_build` with the settings as arguments; returns the KG (see :class:`BuildSettings`)."""
    return run_build(BuildSettings(corpus, out, fmt, limit, cfg or ExtractConfig(), rdf_format, overwrite, progress,
                                   text_field, store, prep or PrepareConfig(), skip_bad)).kg


def _build_locked(st: BuildSettings) -> BuildResult:
    if st.engine == "ray":
        from kgllm.kg.extraction.engines import ray_session

        ray_opts = dict(st.ray)
        reducers = ray_opts.pop("reducers", None)
        with ray_session(ray_opts.get("address"), ray_opts.get("num_workers")) as ray:
            if reducers is None:
                reducers = ray_opts.get("num_workers") or max(int(ray.cluster_resources().get("CPU", 1)), 1)
            return _build(st, ray_opts, reducers)
    return _build(st, {}, None)


def _build(st: BuildSettings, ray_opts: dict, reducers: int | None) -> BuildResult:
    corpus, out, fmt, limit, cfg, prep = st.corpus, st.out, st.fmt, st.limit, st.extract, st.prepare
    rdf_format, overwrite, progress, text_field, store, skip_bad = (st.rdf_format, st.overwrite, st.progress,
                                                                    st.text_field, st.store, st.skip_bad)
    if not corpus.exists() and fmt != "hf":
        raise CorpusError(f"{corpus}: corpus path does not exist")
    hf = ({"split": "train", **st.hf} if fmt == "hf" else {})
    nlp = load_pipeline(cfg.spacy_model, disable=cfg.disable)
    spacy_info = pipeline_info(nlp)
    work = work_dir_for(out)
    _prepare_work_dir(work, fingerprint(corpus, fmt, limit, cfg, spacy_info, text_field, prep, hf))
    errors: list | None = [] if skip_bad else None
    report = PrepareReport()
    try:
        docs = read_corpus(corpus, fmt, limit, text_field=text_field, errors=errors, hf=hf)
        if prep.active:
            docs = prepare(docs, prep, report)
        shard_files, facts = extract_shards(docs, work, cfg, nlp, progress, total=limit, errors=errors,
                                            engine=st.engine, ray_options=ray_opts)
    except (CorpusError, ConfigError):
        shutil.rmtree(work, ignore_errors=True)
        raise
    meta = {"kgllm_version": __version__, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(),
            "corpus": {"path": str(corpus), "format": fmt, "limit": limit, **hf, **facts},
            "spacy": spacy_info, "extractor": {"version": extractor_version(cfg), **cfg.to_dict()}}
    extra = extractor_meta(cfg)
    if "relation_labels" in extra:
        meta["relation_labels"] = extra.pop("relation_labels")
    meta["extractor"].update(extra)
    if prep.active:
        meta["preparation"] = {**vars(prep), "report": report.to_dict()}
        log.info(report.summary())
    if errors is not None:
        meta["skipped"] = {"count": len(errors), "errors": [str(e) for e in errors[:1000]]}
    kg = finish_build(work, out, shard_files, meta, rdf_format, store, overwrite, source=corpus.name,
                      reducers=reducers)
    counts = kg if isinstance(kg, dict) else kg.counts()
    return BuildResult(None if isinstance(kg, dict) else kg, out, report if prep.active else None, errors or [],
                       counts)

