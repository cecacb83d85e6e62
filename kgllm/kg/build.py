"""``kgllm build-kg``: stream a corpus through spaCy into a KG folder, resumably.

Documents are processed in shards of ``shard_size``. Each finished shard is
written atomically to ``.<out>.partial/shard-NNNNN.jsonl``; a build that is
killed and started again with the same command skips finished shards and ends
with the same graph. The KG folder itself appears atomically at the very end.
Bad input (empty file, bad UTF-8, malformed JSON) raises a
:class:`~kgllm.errors.CorpusError` naming the file and removes the partial work.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import itertools
import json
import logging
import shutil
from pathlib import Path
from typing import Iterable, Iterator

from kgllm import __version__
from kgllm.config import ExtractConfig
from kgllm.errors import CorpusError
from kgllm.io import atomic_open, atomic_write_json, stable_hash
from kgllm.kg.corpus import Document, read_corpus
from kgllm.kg.extract import EXTRACTOR_VERSION, extract_doc, load_pipeline, pipeline_info
from kgllm.kg.normalize import entity_key
from kgllm.kg.store import KnowledgeGraph

log = logging.getLogger(__name__)


def work_dir_for(out: Path) -> Path:
    return out.parent / f".{out.name}.partial"


def fingerprint(corpus: Path, fmt: str, limit: int | None, cfg: ExtractConfig, spacy_info: dict,
                text_field: str = "text") -> str:
    """Identity of a build's settings: partial work is reused only under the same fingerprint."""
    return stable_hash({"corpus": str(Path(corpus).resolve()), "format": fmt, "limit": limit,
                        "extract": cfg.to_dict(), "spacy": spacy_info, "extractor": EXTRACTOR_VERSION,
                        "text_field": text_field})


def _shards(docs: Iterable[Document], size: int) -> Iterator[list[Document]]:
    it = iter(docs)
    while batch := list(itertools.islice(it, size)):
        yield batch


def _prepare_work_dir(work: Path, fingerprint: str) -> None:
    settings = work / "settings.json"
    if work.exists():
        try:
            same = json.loads(settings.read_text())["fingerprint"] == fingerprint
        except (OSError, ValueError, KeyError):
            same = False
        if same:
            return
        log.info("discarding partial build %s made with other settings", work)
        shutil.rmtree(work)
    work.mkdir(parents=True)
    atomic_write_json(settings, {"fingerprint": fingerprint})


def extract_shards(docs: Iterable[Document], work: Path, cfg: ExtractConfig, nlp,
                   progress: bool = True, total: int | None = None) -> tuple[list[Path], dict]:
    """Run spaCy over the documents of unfinished shards; return all shard files and corpus facts.

    The corpus is streamed: memory holds one shard of extractions at a time.
    """
    from tqdm.auto import tqdm

    digest = hashlib.sha256()
    facts = {"documents": 0, "characters": 0, "shards": 0, "shards_resumed": 0}
    shard_files: list[Path] = []

    def pending() -> Iterator[tuple[str, tuple[str, int]]]:
        for k, shard in enumerate(_shards(docs, cfg.shard_size)):
            path = work / f"shard-{k:05d}.jsonl"
            shard_files.append(path)
            done = path.exists()
            facts["shards"] += 1
            facts["shards_resumed"] += done
            for doc in shard:
                digest.update(doc.doc_id.encode() + b"\0" + doc.text.encode() + b"\0")
                facts["documents"] += 1
                facts["characters"] += len(doc.text)
                if len(doc.text) > nlp.max_length:
                    raise CorpusError(f"document {doc.doc_id!r}: {len(doc.text)} characters exceeds spaCy's "
                                      f"limit of {nlp.max_length}; split it into smaller documents")
                if not done:
                    yield doc.text, (doc.doc_id, k)
            if done:
                bar.update(len(shard))

    def flush(k: int, lines: list[str]) -> None:
        with atomic_open(work / f"shard-{k:05d}.jsonl") as fh:
            fh.writelines(lines)

    bar = tqdm(total=total, unit="doc", desc="build-kg", disable=not progress)
    current, lines = -1, []
    parsed = nlp.pipe(pending(), as_tuples=True, batch_size=cfg.batch_size, n_process=cfg.n_process)
    for spacy_doc, (doc_id, k) in parsed:
        if k != current and lines:
            flush(current, lines)
            lines = []
        current = k
        lines.append(json.dumps(extract_doc(spacy_doc, doc_id, cfg).to_dict(), ensure_ascii=False) + "\n")
        bar.update(1)
    if lines:
        flush(current, lines)
    bar.close()
    facts["sha256"] = digest.hexdigest()
    return shard_files, facts


def assemble(shard_files: Iterable[Path], meta: dict) -> tuple[KnowledgeGraph, list[list]]:
    """Merge shard extractions into one KG (corpus-level canonical entities); also return mentions."""
    kg = KnowledgeGraph(meta)
    mentions: list[list] = []
    for path in shard_files:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                ex = json.loads(line)
                counts = [0] * len(ex["entities"])
                for m in ex["mentions"]:
                    counts[m[0]] += 1
                ids = [kg.add_entity(entity_key(label, etype), label, etype, aliases, n)
                       for (label, etype, aliases), n in zip(ex["entities"], counts)]
                for ent, sent, start, end, text, label in ex["mentions"]:
                    mentions.append([ex["doc_id"], sent, start, end, ids[ent], label, text])
                for h, rel, t, sent, start, end, conf in ex["triples"]:
                    kg.add_edge(ids[h], rel, ids[t], (ex["doc_id"], sent, start, end, conf), conf)
    return kg, mentions


def write_mentions(folder: Path, mentions: list[list]) -> None:
    with open(folder / "mentions.tsv", "w", encoding="utf-8") as fh:
        fh.write("doc\tsentence\tstart\tend\tentity\tlabel\ttext\n")
        for row in mentions:
            fh.write("\t".join(str(v).replace("\t", " ").replace("\n", " ") for v in row) + "\n")


def build_kg(corpus: str | Path, out: str | Path, fmt: str = "auto", limit: int | None = None,
             cfg: ExtractConfig | None = None, rdf_format: str = "turtle", overwrite: bool = False,
             progress: bool = True, text_field: str = "text") -> KnowledgeGraph:
    """Build a KG folder at ``out`` from the documents of ``corpus``."""
    from kgllm.io import atomic_dir

    cfg = cfg or ExtractConfig()
    corpus, out = Path(corpus), Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: output folder exists (pass --overwrite)")
    nlp = load_pipeline(cfg.spacy_model)
    spacy_info = pipeline_info(nlp)
    work = work_dir_for(out)
    _prepare_work_dir(work, fingerprint(corpus, fmt, limit, cfg, spacy_info, text_field))
    try:
        docs = read_corpus(corpus, fmt, limit, text_field=text_field)
        shard_files, facts = extract_shards(docs, work, cfg, nlp, progress, total=limit)
    except CorpusError:
        shutil.rmtree(work, ignore_errors=True)
        raise
    meta = {"kgllm_version": __version__, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(),
            "corpus": {"path": str(corpus), "format": fmt, "limit": limit, **facts},
            "spacy": spacy_info, "extractor": {"version": EXTRACTOR_VERSION, **cfg.to_dict()}}
    kg, mentions = assemble(shard_files, meta)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        kg.write_files(tmp, rdf_format)
        write_mentions(tmp, mentions)
    shutil.rmtree(work, ignore_errors=True)
    log.info("wrote %s: %s", out, kg)
    return kg
