"""Assemble a KG from its per-document records, with stable ids: the one code path of
``build-kg``, ``update-kg``, ``kg-import --into`` and removals.

A KG folder keeps what each document (or imported fact file) contributed, as JSON-lines records
under ``extractions/NNNNN/`` (one folder per build or update ``NNNNN``; records are never edited,
so later versions of the folder hard-link them):

* an **extraction record** (``build-kg``): ``{"doc_id", "entities": [[label, type, aliases]],
  "mentions": [...], "triples": [...]}`` with document-local entity numbers (the shard format);
* a **facts record** (imports, and the snapshot of a KG that had no records):
  ``{"kind": "facts", "doc_id", "entities": [[key, label, type, aliases, count, sources]],
  "descriptions": {local id: text}, "edges": [[head, relation, tail, count, confidence, [provenance
  rows]]]}``.

``documents.tsv`` (``doc sha256 update``) lists the live version of every document; a record is
used only if its update is its document's live one. Assembly walks the updates in order and the
records in file order, so building on documents A and updating with B gives exactly the KG of one
build on A+B. Ids of a previous version (``prior``) never change: its entities and relations are
registered first, new ones are appended in order of first appearance, and an entity no live
record mentions any more is *retired* (kept with its old label, count 0, no aliases or edges,
listed in ``retired.tsv``), never renumbered. Hand-written: no library assembles an RDF/TSV
graph from spaCy extractions with these id guarantees.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, NamedTuple

from kgllm.util.errors import KGFormatError
from kgllm.kg.extraction.extractors import MentionRow, TripleRow
from kgllm.kg.graph.normalize import entity_key
from kgllm.kg.graph.store import MENTIONS_HEADER, KnowledgeGraph, mention_line

#: folder of a KG folder holding the per-update record folders
EXTRACTIONS = "extractions"
FACTS = "facts"


class Batch(NamedTuple):
    """The record files of one build or update, the source name its entities get, its number."""

    files: list[Path]
    source: str
    update: int


def update_dir(kg_dir: Path, update: int) -> Path:
    """The folder of update ``update``'s extraction records in a KG folder."""
    return kg_dir / EXTRACTIONS / f"{update:05d}"


def batch_files(folder: Path) -> list[Path]:
    """The extraction record files of one update folder, in order."""
    return sorted(folder.glob("*.jsonl"))


def iter_records(files: Iterable[Path]):
    """Every per-document extraction record of ``files`` (JSON Lines); a malformed line names file and line."""
    for path in files:
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise KGFormatError(f"{path}:{lineno}: malformed record ({exc.msg})") from exc


def facts_record(kg: KnowledgeGraph, doc_id: str) -> dict:
    """A whole KG (an import, or a snapshot of a KG written without records) as one facts record."""
    return {"kind": FACTS, "doc_id": doc_id,
            "entities": [[e.key, e.label, e.etype, sorted(e.aliases), e.count, sorted(e.sources)] for e in kg.entities],
            "descriptions": {str(i): text for i, text in kg.descriptions.items()},
            "edges": [[h, kg.relations[r], t, e.count, e.confidence, [list(p) for p in e.provenance]]
                      for (h, r, t), e in kg.edges.items()]}


class Assembler:
    """Adds records to a KG, keeping the ids of ``prior`` (see the module docstring)."""

    def __init__(self, meta: dict, prior: KnowledgeGraph | None = None, retracted: Iterable = (),
                 mentions_out: Path | None = None) -> None:
        self.kg = KnowledgeGraph(meta)
        self.n_prior = 0
        self.prior_entities = []
        if prior is not None:
            for e in prior.entities:  # placeholders: label and type are reset by their first live record
                self.kg.add_entity(e.key, e.label, e.etype, count=0)
                self.kg.entities[-1].aliases.clear()
            for name in prior.relations:
                self.kg.relation_id(name)
            self.n_prior = prior.num_entities
        self.touched: set[int] = set()
        self.retracted = {tuple(f) for f in retracted}
        self.documents: dict[str, tuple[str, int]] = {}
        self._out = open(mentions_out, "w", encoding="utf-8") if mentions_out else None
        if self._out:
            self._out.write(MENTIONS_HEADER)

    def copy_mentions(self, path: Path) -> None:
        """Rows of an existing ``mentions.tsv`` (header skipped) whose entity ids stay valid."""
        if self._out:
            with open(path, encoding="utf-8") as fh:
                next(fh, None)
                self._out.writelines(fh)

    def _entity(self, key: str, label: str, etype: str, aliases, count: int, sources) -> int:
        eid = self.kg.key_to_id.get(key)
        if eid is not None and eid < self.n_prior and eid not in self.touched:
            ent = self.kg.entities[eid]  # first live appearance decides label and type, as in a fresh build
            ent.label, ent.etype = label, etype
        eid = self.kg.add_entity(key, label, etype, aliases, count, sources)
        self.touched.add(eid)
        return eid

    def _edge(self, h: int, relation: str, t: int, provenance, confidence: float, count: int = 1) -> None:
        if self.retracted and (self.kg.entities[h].key, relation, self.kg.entities[t].key) in self.retracted:
            return
        self.kg.add_edge(h, relation, t, provenance, confidence, count)

    def add(self, record: dict, source: str) -> None:
        if record.get("kind") == FACTS:
            ids = [self._entity(key, label, etype, aliases, count, sources)
                   for key, label, etype, aliases, count, sources in record["entities"]]
            for i, text in record.get("descriptions", {}).items():
                self.kg.descriptions.setdefault(ids[int(i)], text)
            for h, rel, t, count, conf, prov in record["edges"]:
                if not prov:
                    self._edge(ids[h], rel, ids[t], None, conf, count)
                for k, row in enumerate(prov):  # one occurrence per provenance row, the rest counted on the first
                    self._edge(ids[h], rel, ids[t], tuple(row), conf, (count - len(prov) + 1) if k == 0 else 1)
            return
        mentions = [MentionRow._make(m) for m in record["mentions"]]
        counts = [0] * len(record["entities"])
        for m in mentions:
            counts[m.entity] += 1
        ids = [self._entity(entity_key(label, etype), label, etype, aliases, n, (source,))
               for (label, etype, aliases), n in zip(record["entities"], counts)]
        if self._out:
            self._out.writelines(mention_line(record["doc_id"], m.sentence, m.start, m.end, ids[m.entity], m.label,
                                              m.text) for m in mentions)
        for t in map(TripleRow._make, record["triples"]):
            self._edge(ids[t.head], t.relation, ids[t.tail],
                       (record["doc_id"], t.sentence, t.start, t.end, t.confidence), t.confidence)

    def add_batches(self, batches: Iterable[Batch], live: dict[str, tuple[str, int]] | None = None) -> None:
        """Every record of ``batches`` whose update is its document's live one (all if ``live`` is None)."""
        for batch in batches:
            for record in iter_records(batch.files):
                doc = record["doc_id"]
                if live is not None and (doc not in live or live[doc][1] != batch.update):
                    continue
                self.documents[doc] = (record.get("sha256", ""), batch.update)
                self.add(record, batch.source)

    def finish(self) -> KnowledgeGraph:
        if self._out:
            self._out.close()
            self._out = None
        self.kg.documents = self.documents
        self.kg.retired = {i for i in range(self.n_prior) if i not in self.touched}
        for i in self.kg.retired:
            ent = self.kg.entities[i]
            ent.count, ent.aliases, ent.sources = 0, set(), set()
            self.kg.descriptions.pop(i, None)
        return self.kg

    def close(self) -> None:
        if self._out:
            self._out.close()
            self._out = None
