"""``kgllm update-kg`` and ``kg-import --into``: change a KG folder as documents and facts arrive.

Every change is one *update* (numbered after the build, which is update 0, and listed in
``meta.json`` ``updates`` with its time, input hash and counts):

* **add documents** (:func:`update_kg`): spaCy and the extractor run on the new documents only,
  with the settings, extractor version and spaCy model ``meta.json`` records (a mismatch is an
  error unless ``allow_settings_change``); a document already in the KG with the same id and
  text is skipped, one with the same id and new text replaces the old version;
* **remove documents** (:func:`remove_docs`) and **retract facts** (:func:`remove_fact`);
* **add curated facts** (:func:`import_into`): an imported KG as one record ``import:<name>``;
* **edit facts** (:func:`edit_facts`): many ``head relation old -> new`` replacements as one
  update: each old fact retracted, the new ones added as the record ``edit:<update number>``.

The KG is then re-assembled from its records (:mod:`kgllm.kg.extraction.assemble`) with the old ids kept,
so adding B to a build of A gives the KG of one build of A+B, and removing B again gives A back
(plus B's entities, retired). The new folder is written beside the old one inside the partial
folder ``.<name>.partial`` and swapped in with one atomic ``renameat2(RENAME_EXCHANGE)``: a kill at
any point leaves the old KG or the new one; extraction of the new documents resumes from its
finished shards. One writer at a time (the lock of ``build-kg``; a second update fails at once,
naming the lock). A KG written before records existed (an import, a merge, an older build) is
*adopted*: its whole content becomes one snapshot record, removable only as a whole.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import shutil
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Iterable, Sequence

from kgllm.kg.extraction.config import RUNTIME_FIELDS, ExtractConfig
from kgllm.util.errors import ConfigError, CorpusError, KGFormatError
from kgllm.util.io import atomic_open, exchange_dirs, locked, real_dir, stable_hash
from kgllm.kg.extraction.assemble import EXTRACTIONS, Assembler, Batch, batch_files, facts_record, update_dir
from kgllm.kg.graph.folder import KG_MARKER, MENTIONS, RDF_FILE, foreign_entries, read_meta
from kgllm.kg.graph.store import KnowledgeGraph

log = logging.getLogger(__name__)

SNAPSHOT = "snapshot"


@dataclass
class UpdateResult:
    """What an update did: the new KG, its number, and document counts (added, replaced, skipped,
    removed)."""

    kg: KnowledgeGraph
    update: int
    counts: dict

    def summary(self) -> str:
        parts = ", ".join(f"{v} {k}" for k, v in self.counts.items() if v)
        return f"update {self.update}: {parts or 'nothing changed'}; {self.kg}"


def _link(src: Path, dst: Path) -> None:
    """A hard link (records are immutable), or a copy where the file system has none."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat()


def check_folder(kg_dir: Path) -> KnowledgeGraph:
    """The KG of ``kg_dir`` (ids and documents), refusing a missing, half-written or hand-edited folder."""
    from kgllm.kg.extraction.build import work_dir_for

    if not kg_dir.is_dir():
        hint = " (an interrupted update left its partial folder; run the same command again)" \
            if work_dir_for(kg_dir).exists() else ""
        raise KGFormatError(f"{kg_dir}: KG folder not found{hint}")
    if not (kg_dir / KG_MARKER).is_file() or not (kg_dir / "meta.json").is_file():
        raise KGFormatError(f"{kg_dir}: not a complete KG folder (entities.tsv or meta.json missing); rebuild it "
                            "with `kgllm build-kg`")
    kg = KnowledgeGraph.load(kg_dir)
    recorded = kg.meta.get("identity")
    if recorded is None or recorded != kg.identity():
        raise KGFormatError(f"{kg_dir}: entities.tsv/relations.tsv do not match meta.json's identity "
                            f"({recorded} vs {kg.identity()}): the folder was half-written or edited; rebuild it")
    return kg


def _recover(kg_dir: Path) -> None:
    """Put back the old KG if a fallback (two-rename) swap was killed between its renames, and the
    user's own files if an update was killed after moving them into its new folder."""
    from kgllm.kg.extraction.build import work_dir_for

    if work_dir_for(kg_dir).is_symlink():  # not ours: _prepare_work_dir refuses it
        return
    old = work_dir_for(kg_dir) / "kg.tmp.old"
    if not kg_dir.exists() and old.is_dir():
        os.replace(old, kg_dir)
        log.warning("%s: restored the KG from an interrupted update", kg_dir)
    new = work_dir_for(kg_dir) / "kg.tmp"
    if kg_dir.is_dir() and new.is_dir():
        _carry_foreign(new, kg_dir)


def _carry_foreign(src: Path, dst: Path) -> None:
    """Move every entry of ``src`` that kgllm did not write (notes, plots, a corpus) into ``dst``:
    an update replaces only kgllm's own files and keeps the user's (renames: same file system)."""
    for name in foreign_entries(src):
        if not os.path.lexists(dst / name):
            os.rename(src / name, dst / name)


def _rdf_settings(meta: dict) -> tuple[str, str]:
    return ("nt" if meta.get("rdf_file") == RDF_FILE["nt"] else "turtle"), meta.get("rdf_store", "memory")


def recorded_config(meta: dict, **overrides) -> ExtractConfig:
    """The extraction settings a KG was built with (``meta.json``), with run-time-only fields
    (batch size, processes, shard size) optionally overridden."""
    rec = meta.get("extractor")
    if not isinstance(rec, dict):
        raise ConfigError("the KG records no extractor settings (it was imported or merged, not built); pass "
                          "--extractor and --allow-settings-change to add documents with today's settings")
    names = {f.name for f in fields(ExtractConfig)}
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in rec.items() if k in names}
    kw.update({k: v for k, v in overrides.items() if v is not None})
    return ExtractConfig(**kw)


class _Change:
    """One update of ``kg_dir``: the prior KG, its records (adopting a KG without any), the next
    update number; :meth:`commit` re-assembles and swaps the new folder in."""

    def __init__(self, kg_dir: Path, work: Path, prior: KnowledgeGraph | None = None) -> None:
        self.kg_dir, self.work = kg_dir, work
        self.prior = prior if prior is not None else check_folder(kg_dir)
        self.meta = dict(self.prior.meta)
        self.updates = list(self.meta.get("updates") or [])
        self.tmp = work / "kg.tmp"
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        (self.tmp / EXTRACTIONS).mkdir(parents=True)
        self.live = dict(self.prior.documents)
        self.batches: list[Batch] = []
        old = self.kg_dir / EXTRACTIONS
        if old.is_dir() and self.updates:
            for entry in self.updates:
                src = update_dir(self.kg_dir, entry["update"])
                if not src.is_dir():
                    continue
                dst = update_dir(self.tmp, entry["update"])
                dst.mkdir()
                for f in batch_files(src):  # records never change: link, do not copy
                    _link(f, dst / f.name)
                self.batches.append(Batch(batch_files(dst), entry.get("source", "corpus"), entry["update"]))
            self.mentions_prefix = None
        else:  # adopt a KG written without records: its content becomes one snapshot record
            full = KnowledgeGraph.load(kg_dir, provenance=True)
            doc = f"{SNAPSHOT}:{self.prior.identity()}"
            dst = update_dir(self.tmp, 0)
            dst.mkdir()
            with open(dst / "facts.jsonl", "w", encoding="utf-8") as fh:
                record = {**facts_record(full, doc), "sha256": self.prior.identity()}
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.batches.append(Batch([dst / "facts.jsonl"], SNAPSHOT, 0))
            self.live = {doc: (self.prior.identity(), 0)}
            self.updates = [{"update": 0, "kind": SNAPSHOT, "time": _now(), "source": SNAPSHOT,
                             "note": "content of the KG before its first update (written without records)",
                             "counts": self.prior.counts()}]
            self.mentions_prefix = kg_dir / MENTIONS if (kg_dir / MENTIONS).is_file() else None
        self.number = max((u["update"] for u in self.updates), default=-1) + 1

    def new_batch(self, files: Iterable[Path], source: str) -> Path:
        dst = update_dir(self.tmp, self.number)
        dst.mkdir(exist_ok=True)
        for f in files:
            _link(f, dst / f.name)
        self.batches.append(Batch(batch_files(dst), source, self.number))
        return dst

    def commit(self, entry: dict, reducers: int | None = None) -> KnowledgeGraph:
        """Re-assemble every live record into the new folder and swap it in; with ``reducers``,
        on the running Ray instance (:func:`kgllm.kg.extraction.sharded.sharded_merge`, the same
        files)."""
        meta = dict(self.meta)
        meta["lineage"] = [*meta.get("lineage", []), self.prior.identity()]
        fmt, store = _rdf_settings(self.meta)
        if reducers:
            from kgllm.kg.extraction.sharded import sharded_merge, write_meta

            merged = sharded_merge(self.batches, self.tmp, meta, fmt, store, reducers, prior=self.prior,
                                   live=self.live, retracted=meta.get("retracted", []),
                                   mentions_prefix=self.mentions_prefix)
            meta["updates"] = [*self.updates, {"update": self.number, "time": _now(), **entry,
                                               "counts": dict(merged["counts"])}]
            write_meta(self.tmp, meta, merged, fmt, store)
            kg = None
        else:
            asm = Assembler(meta, self.prior, meta.get("retracted", []), self.tmp / MENTIONS)
            try:
                if self.mentions_prefix is not None:  # the snapshot's mentions, ids unchanged
                    asm.copy_mentions(self.mentions_prefix)
                asm.add_batches(self.batches, self.live)
                kg = asm.finish()
            finally:
                asm.close()
            entry = {"update": self.number, "time": _now(), **entry, "counts": kg.counts()}
            kg.meta["updates"] = [*self.updates, entry]
            kg.write_files(self.tmp, fmt, store)
        _carry_foreign(self.kg_dir, self.tmp)  # the user's files stay (a kill here: _recover puts them back)
        exchange_dirs(self.tmp, self.kg_dir)  # the old KG is now at self.tmp
        shutil.rmtree(self.work, ignore_errors=True)
        if kg is None:
            kg = KnowledgeGraph.load(self.kg_dir)
        log.info("updated %s: %s", self.kg_dir, kg)
        return kg


def _change(kg_dir: Path, fp: dict):
    """Lock, recover and prepare the partial folder of ``kg_dir`` for an update with fingerprint ``fp``."""
    from kgllm.kg.extraction.build import _prepare_work_dir, work_dir_for

    work = work_dir_for(kg_dir)
    _recover(kg_dir)
    _prepare_work_dir(work, stable_hash({"update": fp, "of": read_meta(kg_dir).get("identity")}))
    return work


def update_kg(kg_dir: str | Path, corpus: str | Path, fmt: str = "auto", limit: int | None = None,
              text_field: str = "text", allow_settings_change: bool = False, progress: bool = True,
              hf: dict | None = None, engine: str = "local", ray: dict | None = None,
              **cfg_overrides) -> UpdateResult:
    """Add the documents of ``corpus`` to the KG folder ``kg_dir`` (see the module docstring).

    ``cfg_overrides``: extraction settings (``extractor``, ``re_model``, ``n_process``, ...); any that
    changes the output needs ``allow_settings_change``. ``engine="ray"`` extracts and merges on Ray
    as ``build-kg --engine ray`` does (``ray``: ``address``, ``num_workers``, ``reducers``): the same KG.
    """
    if engine == "ray":
        from kgllm.kg.extraction.engines import ray_session

        opts = dict(ray or {})
        reducers = opts.pop("reducers", None)
        with ray_session(opts.get("address"), opts.get("num_workers")) as ray_mod:
            if reducers is None:
                reducers = opts.get("num_workers") or max(int(ray_mod.cluster_resources().get("CPU", 1)), 1)
            return _update_kg(kg_dir, corpus, fmt, limit, text_field, allow_settings_change, progress, hf,
                              "ray", opts, reducers, **cfg_overrides)
    if engine != "local":
        raise ConfigError(f"unknown engine {engine!r}; choose one of local, ray")
    return _update_kg(kg_dir, corpus, fmt, limit, text_field, allow_settings_change, progress, hf, "local", {}, None,
                      **cfg_overrides)


def _update_kg(kg_dir, corpus, fmt, limit, text_field, allow_settings_change, progress, hf, engine: str,
               ray_opts: dict, reducers: int | None, **cfg_overrides) -> UpdateResult:
    from kgllm.kg.extraction.build import corpus_stat, doc_sha256, extract_shards
    from kgllm.kg.extraction.corpus import read_corpus
    from kgllm.kg.extraction.extract import load_pipeline, pipeline_info
    from kgllm.kg.extraction.extractors import extractor_meta, extractor_version

    kg_dir, corpus = real_dir(kg_dir), Path(corpus)
    if not corpus.exists() and fmt != "hf":
        raise CorpusError(f"{corpus}: corpus path does not exist")
    with locked(kg_dir):
        _recover(kg_dir)
        prior = check_folder(kg_dir)
        meta = prior.meta
        runtime = {k: cfg_overrides.pop(k) for k in RUNTIME_FIELDS if k in cfg_overrides}
        try:
            cfg = recorded_config(meta, **cfg_overrides, **runtime)
        except ConfigError:
            if not allow_settings_change:
                raise
            cfg = ExtractConfig(**{k: v for k, v in {**cfg_overrides, **runtime}.items() if v is not None})
        nlp = load_pipeline(cfg.spacy_model, disable=cfg.disable)
        now = {"spacy": pipeline_info(nlp), "version": extractor_version(cfg),
               "settings": {k: v for k, v in cfg.to_dict().items() if k not in RUNTIME_FIELDS}}
        rec = meta.get("extractor") or {}
        was = {"spacy": meta.get("spacy"), "version": rec.get("version"),
               "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in rec.items()
                            if k in now["settings"]}}
        now_cmp = json.loads(json.dumps(now))
        extra = extractor_meta(cfg)
        extra.pop("relation_labels", None)
        changed = [k for k in ("spacy", "version", "settings") if now_cmp[k] != was[k]]
        changed += [f"extractor.{k}" for k, v in extra.items() if rec.get(k) != json.loads(json.dumps(v))]
        if changed and not allow_settings_change:
            raise ConfigError(f"{kg_dir}: built with other settings ({', '.join(changed)} differ from meta.json); "
                              "updating would mix extractions (pass --allow-settings-change to do it anyway)")
        hf = {"split": "train", **(hf or {})} if fmt == "hf" else {}
        work = _change(kg_dir, {"corpus": str(corpus.resolve()), "stat": corpus_stat(corpus), "fmt": fmt,
                                "limit": limit, "text_field": text_field, "cfg": now, "hf": hf})
        change = _Change(kg_dir, work, prior)
        counts = {"added": 0, "replaced": 0, "skipped": 0}

        def fresh(docs):
            for doc in docs:
                old = change.live.get(doc.doc_id)
                sha = doc_sha256(doc)
                if old is not None and old[0] == sha:
                    counts["skipped"] += 1
                    continue
                counts["replaced" if old is not None else "added"] += 1
                change.live[doc.doc_id] = (sha, change.number)
                yield doc

        try:
            docs = fresh(read_corpus(corpus, fmt, limit, text_field=text_field, hf=hf))
            shard_files, facts = extract_shards(docs, work, cfg, nlp, progress, total=limit, engine=engine,
                                                ray_options=ray_opts)
        except (CorpusError, ConfigError):
            shutil.rmtree(work, ignore_errors=True)
            raise
        change.new_batch([f for f in shard_files if f.exists()], corpus.name)
        if changed:
            meta_extractor = {"version": now["version"], **cfg.to_dict(), **extra}
            change.meta["extractor"] = meta_extractor
        kg = change.commit({"kind": "add", "source": corpus.name, "corpus": str(corpus), "format": fmt,
                            "corpus_sha256": facts["sha256"], "words": facts["words"], **counts,
                            **({"settings_changed": changed} if changed else {})}, reducers)
        return UpdateResult(kg, change.number, counts)


def remove_docs(kg_dir: str | Path, doc_ids: Sequence[str]) -> UpdateResult:
    """Remove documents (or imported fact files, ``import:<name>``) and everything only they supported."""
    kg_dir = real_dir(kg_dir)
    with locked(kg_dir):
        _recover(kg_dir)
        prior = check_folder(kg_dir)
        live = prior.documents
        unknown = [d for d in doc_ids if d not in live]
        if unknown:
            example = ", ".join(repr(d) for d in list(live)[:3])
            raise KGFormatError(f"{kg_dir}: no document {unknown[0]!r} in the KG ({len(live)} documents"
                                + (f", e.g. {example})" if live else "; it was imported or merged, not built)"))
        change = _Change(kg_dir, _change(kg_dir, {"remove": sorted(doc_ids)}), prior)
        for d in doc_ids:
            change.live.pop(d, None)
        kg = change.commit({"kind": "remove-doc", "documents": list(doc_ids)[:1000], "removed": len(doc_ids)})
        return UpdateResult(kg, change.number, {"removed": len(doc_ids)})


def _entity_key(kg: KnowledgeGraph, name: str, where: Path) -> str:
    if name in kg.key_to_id and kg.key_to_id[name] not in kg.retired:
        return name
    hits = [e.key for i, e in enumerate(kg.entities) if e.label == name and i not in kg.retired]
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise KGFormatError(f"{where}: {len(hits)} entities are labelled {name!r} ({', '.join(hits[:4])}); give a key")
    raise KGFormatError(f"{where}: no entity with key or label {name!r}")


def remove_fact(kg_dir: str | Path, head: str, relation: str, tail: str) -> UpdateResult:
    """Retract the fact ``head relation tail`` (entity keys or unique labels): it stays out of the KG
    whatever document or import states it, listed in ``meta.json`` ``retracted``."""
    kg_dir = real_dir(kg_dir)
    with locked(kg_dir):
        _recover(kg_dir)
        kg = check_folder(kg_dir)
        h, t = _entity_key(kg, head, kg_dir), _entity_key(kg, tail, kg_dir)
        rid = kg.rel_to_id.get(relation)
        if rid is None or (kg.key_to_id[h], rid, kg.key_to_id[t]) not in kg.edges:
            raise KGFormatError(f"{kg_dir}: no fact {h} {relation} {t} in the KG")
        change = _Change(kg_dir, _change(kg_dir, {"retract": [h, relation, t]}), kg)
        change.meta["retracted"] = [*change.meta.get("retracted", []), [h, relation, t]]
        kg = change.commit({"kind": "remove-fact", "fact": [h, relation, t]})
        return UpdateResult(kg, change.number, {"retracted": 1})


def _add_record(change: _Change, record: dict, doc: str, source: str) -> None:
    """Write the facts ``record`` (with its ``sha256``) as this update's batch and make ``doc`` live."""
    path = change.work / "facts.jsonl"
    with atomic_open(path) as fh:
        fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    change.live[doc] = (record["sha256"], change.number)
    change.new_batch([path], source)


def import_into(kg_dir: str | Path, imported: KnowledgeGraph, name: str) -> UpdateResult:
    """Add an imported KG's entities and facts (keyed as ``kg-import`` keys them) as the record
    ``import:<name>``; importing the same content again is skipped, new content replaces it."""
    kg_dir = real_dir(kg_dir)
    doc = f"import:{name}"
    record = facts_record(imported, doc)
    sha = stable_hash(record)
    record["sha256"] = sha
    with locked(kg_dir):
        _recover(kg_dir)
        prior = check_folder(kg_dir)
        if prior.documents.get(doc, ("",))[0] == sha:
            return UpdateResult(prior, -1, {"skipped": 1})
        work = _change(kg_dir, {"import": sha})
        change = _Change(kg_dir, work, prior)
        counts = {"replaced" if doc in change.live else "added": 1}
        _add_record(change, record, doc, name)
        kg = change.commit({"kind": "import", "source": name, "files": imported.meta.get("imported", []),
                            "facts": len(imported.edges), **counts})
        return UpdateResult(kg, change.number, counts)


def edit_facts(kg_dir: str | Path, edits: Sequence[tuple[str, str, str, str]]) -> UpdateResult:
    """Replace the object of facts, all in one update: for each ``(head, relation, old, new)``
    (entity keys or unique labels; ``new`` must be an entity of the KG), the fact ``head relation
    old`` is retracted (``meta.json`` ``retracted``) and ``head relation new`` added as part of the
    record ``edit:<update number>``. Entity ids and the KG identity do not change, so a model
    trained on the KG reads the edited graph as it is, with no weight changed."""
    kg_dir = real_dir(kg_dir)
    if not edits:
        raise KGFormatError(f"{kg_dir}: no edits given")
    with locked(kg_dir):
        _recover(kg_dir)
        prior = check_folder(kg_dir)
        added = KnowledgeGraph({})
        retract, seen = [], set()
        for i, (head, relation, old, new) in enumerate(edits, 1):
            h, o, n = (_entity_key(prior, x, kg_dir) for x in (head, old, new))
            rid = prior.rel_to_id.get(relation)
            if rid is None or (prior.key_to_id[h], rid, prior.key_to_id[o]) not in prior.edges:
                raise KGFormatError(f"{kg_dir}: edit {i}: no fact {h} {relation} {o} in the KG")
            if (h, relation) in seen:
                raise KGFormatError(f"{kg_dir}: edit {i}: {h} {relation} is edited twice in one batch")
            seen.add((h, relation))
            ids = []
            for key in (h, n):
                e = prior.entities[prior.key_to_id[key]]
                ids.append(added.add_entity(e.key, e.label, e.etype, sorted(e.aliases), 1, sorted(e.sources)))
            added.add_edge(ids[0], relation, ids[1], (f"edit:{i}", i, -1, -1, 1.0))
            retract.append([h, relation, o])
        work = _change(kg_dir, {"edit": stable_hash(sorted(map(list, edits)))})
        change = _Change(kg_dir, work, prior)
        doc = f"edit:{change.number}"
        record = facts_record(added, doc)
        record["sha256"] = stable_hash(record)
        new_facts = {(added.entities[a].key, added.relations[r], added.entities[b].key) for a, r, b in added.edges}
        kept = [f for f in change.meta.get("retracted", []) if tuple(f) not in new_facts]  # an edit back re-allows it
        change.meta["retracted"] = [*kept, *retract]
        _add_record(change, record, doc, doc)
        kg = change.commit({"kind": "edit", "edits": len(edits), "examples": [list(e) for e in edits[:5]]})
        return UpdateResult(kg, change.number, {"edited": len(edits)})
