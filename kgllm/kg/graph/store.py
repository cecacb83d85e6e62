"""The :class:`KnowledgeGraph`: stable integer id maps, typed edges with provenance, RDF export.
The folder format is owned by :mod:`kgllm.kg.graph.folder`; in short, a KG folder holds

* ``entities.tsv``  -- ``id key label type count aliases sources`` (lists joined by `` | ``; a ``|`` or
  ``%`` inside an alias is written ``%7C`` / ``%25``, so a label holding `` | `` stays one alias);
* ``descriptions.tsv`` -- ``id description`` for entities that have one (imported KGs);
* ``relations.tsv`` -- ``id name count``;
* ``triples.tsv``   -- ``head relation tail count confidence`` as integer ids (fast loading);
* ``provenance.tsv`` -- ``head relation tail doc sentence start end confidence``, one row per occurrence;
* ``graph.ttl`` or ``graph.nt`` -- the same graph in RDF (see :mod:`kgllm.kg.graph.rdf`), and with
  ``store="oxigraph"`` an on-disk Oxigraph store ``oxigraph/`` for SPARQL on large graphs;
* ``meta.json`` -- corpus hash, spaCy model and version, extractor settings, counts, and the KG's
  ``identity`` (:func:`kg_identity`: a hash of entity keys and relation names in id order, which
  checkpoints record so that a model is never loaded onto another KG's ids by accident).

Ids are assigned in order of first appearance, so the same corpus and settings
always give the same ids.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from kgllm.util.errors import KGFormatError
from kgllm.util.io import atomic_dir, locked
from kgllm.kg.graph.folder import (ALIAS_SEP, DOCUMENTS, KG_ENTRIES, KG_MARKER, RETIRED, TSV_FORMAT, _clean, _escape, _float, _int, _split, _unescape, kg_identity,
                             read_meta, read_tsv)

@dataclass
class Entity:
    """One KG entity: key, label, coarse type, mention count, aliases and optional description."""

    key: str
    label: str
    etype: str
    count: int = 0
    aliases: set[str] = field(default_factory=set)
    sources: set[str] = field(default_factory=set)  # names of the KGs/corpora it came from


@dataclass
class Edge:
    """One (head, relation, tail) edge: occurrences, confidence and where it was read (provenance rows)."""

    count: int = 0
    confidence: float = 0.0
    provenance: list[tuple] = field(default_factory=list)  # (doc, sentence, start, end, confidence)


ENTITIES_HEADER = "id\tkey\tlabel\ttype\tcount\taliases\tsources\n"
RELATIONS_HEADER = "id\tname\tcount\n"
TRIPLES_HEADER = "head\trelation\ttail\tcount\tconfidence\n"
PROVENANCE_HEADER = "head\trelation\ttail\tdoc\tsentence\tstart\tend\tconfidence\n"
DOCUMENTS_HEADER = "doc\tsha256\tupdate\n"
MENTIONS_HEADER = "doc\tsentence\tstart\tend\tentity\tlabel\ttext\n"
DESCRIPTIONS_HEADER = "id\tdescription\n"
RETIRED_HEADER = "id\n"


# One function per row format, shared by KnowledgeGraph.write_files and the sharded merge
# (kgllm.kg.extraction.sharded), so both write the same bytes.
def entity_line(i: int, e: Entity) -> str:
    """The ``entities.tsv`` row of entity ``i``."""
    aliases = ALIAS_SEP.join(sorted(_escape(a) for a in e.aliases))
    sources = ALIAS_SEP.join(sorted(_escape(a) for a in e.sources))
    return f"{i}\t{_clean(e.key)}\t{_clean(e.label)}\t{e.etype}\t{e.count}\t{aliases}\t{sources}\n"


def description_line(i: int, text: str) -> str:
    """The ``descriptions.tsv`` row of entity ``i``."""
    return f"{i}\t{_clean(text)}\n"


def relation_line(i: int, name: str, count: int) -> str:
    """The ``relations.tsv`` row of relation ``i``."""
    return f"{i}\t{_clean(name)}\t{count}\n"


def triple_line(h: int, r: int, t: int, e: Edge) -> str:
    """The ``triples.tsv`` row of an edge."""
    return f"{h}\t{r}\t{t}\t{e.count}\t{e.confidence:.4f}\n"


def provenance_lines(h: int, r: int, t: int, provenance: Iterable[tuple]) -> list[str]:
    """The ``provenance.tsv`` rows of an edge's occurrences."""
    return [f"{h}\t{r}\t{t}\t{_clean(doc)}\t{sent}\t{start}\t{end}\t{conf}\n"
            for doc, sent, start, end, conf in provenance]


def document_line(doc: str, sha: str, update: int) -> str:
    """The ``documents.tsv`` row of a live document."""
    return f"{_clean(doc)}\t{sha}\t{update}\n"


def mention_line(doc: str, sentence: int, start: int, end: int, entity: int, label: str, text: str) -> str:
    """The ``mentions.tsv`` row of one mention (tabs and newlines in the document id and text become spaces)."""
    doc = doc.replace("\t", " ").replace("\n", " ")
    text = text.replace("\t", " ").replace("\n", " ")
    return f"{doc}\t{sentence}\t{start}\t{end}\t{entity}\t{label}\t{text}\n"


def _dir_id(path: str | os.PathLike) -> tuple | None:
    """What identifies the folder now at ``path`` (device, inode, change time); ``None`` if absent."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_ctime_ns


class KnowledgeGraph:
    """Entities, relations and typed edges with their provenance."""

    def __init__(self, meta: dict | None = None) -> None:
        self.entities: list[Entity] = []
        self.key_to_id: dict[str, int] = {}
        self.relations: list[str] = []
        self.relation_counts: list[int] = []
        self.rel_to_id: dict[str, int] = {}
        self.edges: dict[tuple[int, int, int], Edge] = {}
        self.descriptions: dict[int, str] = {}
        self.meta: dict = dict(meta or {})
        #: ids of entities no live document or fact mentions any more (kept, never renumbered)
        self.retired: set[int] = set()
        #: live documents (and imported fact files): id -> (content sha256, update that added it)
        self.documents: dict[str, tuple[str, int]] = {}
        #: mentions.tsv rows to write with the KG when it was not assembled from records (kg-merge)
        self.mention_rows: list[list[str]] | None = None

    # -- building --------------------------------------------------------
    def add_entity(self, key: str, label: str, etype: str, aliases: Iterable[str] = (), count: int = 1,
                   sources: Iterable[str] = ()) -> int:
        eid = self.key_to_id.get(key)
        if eid is None:
            eid = len(self.entities)
            self.key_to_id[key] = eid
            self.entities.append(Entity(key, label, etype))
        ent = self.entities[eid]
        ent.count += count
        ent.aliases.update(aliases)
        ent.aliases.add(label)
        ent.sources.update(sources)
        return eid

    def relation_id(self, name: str) -> int:
        rid = self.rel_to_id.get(name)
        if rid is None:
            rid = len(self.relations)
            self.rel_to_id[name] = rid
            self.relations.append(name)
            self.relation_counts.append(0)
        return rid

    def add_edge(self, head: int, relation: str, tail: int, provenance: tuple | None = None,
                 confidence: float = 1.0, count: int = 1) -> None:
        rid = self.relation_id(relation)
        self.relation_counts[rid] += count
        edge = self.edges.setdefault((head, rid, tail), Edge())
        edge.count += count
        edge.confidence = max(edge.confidence, confidence)
        if provenance is not None:
            edge.provenance.append(provenance)

    # -- views -----------------------------------------------------------
    @property
    def num_entities(self) -> int:
        return len(self.entities)

    @property
    def num_relations(self) -> int:
        return len(self.relations)

    def triples(self) -> list[tuple[int, int, int]]:
        return list(self.edges)

    def identity(self) -> str:
        return kg_identity((e.key for e in self.entities), self.relations)

    def counts(self) -> dict:
        out = {"entities": self.num_entities, "relations": self.num_relations, "edges": len(self.edges),
               "edge_occurrences": sum(e.count for e in self.edges.values())}
        if self.retired:
            out["retired_entities"] = len(self.retired)
        return out

    def __repr__(self) -> str:
        c = self.counts()
        return f"KnowledgeGraph(entities={c['entities']}, relations={c['relations']}, edges={c['edges']})"

    # -- persistence -----------------------------------------------------
    def write_files(self, folder: Path, rdf_format: str = "turtle", store: str = "memory") -> None:
        """Write all files into an existing ``folder`` (callers make it atomic)."""
        from kgllm.kg.graph.rdf import RDF_FORMATS, rdf_format as check_format, write_rdf

        rdf_format = check_format(rdf_format)
        with open(folder / "entities.tsv", "w", encoding="utf-8") as fh:
            fh.write(ENTITIES_HEADER)
            fh.writelines(entity_line(i, e) for i, e in enumerate(self.entities))
        if self.descriptions:
            with open(folder / "descriptions.tsv", "w", encoding="utf-8") as fh:
                fh.write(DESCRIPTIONS_HEADER)
                fh.writelines(description_line(i, text) for i, text in sorted(self.descriptions.items()))
        if self.mention_rows is not None:
            with open(folder / "mentions.tsv", "w", encoding="utf-8") as fh:
                fh.write(MENTIONS_HEADER)
                fh.writelines("\t".join(row) + "\n" for row in self.mention_rows)
        if self.retired:
            with open(folder / RETIRED, "w", encoding="utf-8") as fh:
                fh.write(RETIRED_HEADER + "".join(f"{i}\n" for i in sorted(self.retired)))
        if self.documents:
            with open(folder / DOCUMENTS, "w", encoding="utf-8") as fh:
                fh.write(DOCUMENTS_HEADER)
                fh.writelines(document_line(doc, sha, update) for doc, (sha, update) in self.documents.items())
        with open(folder / "relations.tsv", "w", encoding="utf-8") as fh:
            fh.write(RELATIONS_HEADER)
            fh.writelines(relation_line(i, name, n) for i, (name, n) in enumerate(zip(self.relations, self.relation_counts)))
        with open(folder / "triples.tsv", "w", encoding="utf-8") as fh, \
                open(folder / "provenance.tsv", "w", encoding="utf-8") as ph:
            fh.write(TRIPLES_HEADER)
            ph.write(PROVENANCE_HEADER)
            for (h, r, t), e in self.edges.items():
                fh.write(triple_line(h, r, t, e))
                ph.writelines(provenance_lines(h, r, t, e.provenance))
        self.meta["counts"] = self.counts()
        self.meta["identity"] = self.identity()
        self.meta["tsv_format"] = TSV_FORMAT
        self.meta["rdf_file"] = RDF_FORMATS[rdf_format][0]
        self.meta["rdf_store"] = store
        write_rdf(self, folder, rdf_format, store)
        with open(folder / "meta.json", "w", encoding="utf-8") as fh:
            json.dump(self.meta, fh, indent=2, sort_keys=True, ensure_ascii=False)
            fh.write("\n")

    def save(self, path: str | os.PathLike, rdf_format: str = "turtle", overwrite: bool = False,
             store: str = "memory", inputs: tuple = ()) -> Path:
        """Write the KG folder atomically: a failure leaves no half-written folder. ``overwrite``
        replaces only a KG folder (never one holding any of ``inputs``), under a lock."""
        with locked(path), atomic_dir(path, overwrite=overwrite, marker=KG_MARKER, inputs=inputs,
                                                  own=KG_ENTRIES) as tmp:
            self.write_files(tmp, rdf_format, store)
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike, provenance: bool = False) -> "KnowledgeGraph":
        """Read a KG folder written by :meth:`save` (provenance rows only if asked).

        ``update-kg`` swaps a whole new folder in while others may be reading: a read during which
        the folder at ``path`` changed (another directory inode) is read again, so a reader never
        returns one version's entities with another's triples."""
        for attempt in range(10):
            before = _dir_id(path)
            try:
                kg = cls._load_once(path, provenance)
            except (KGFormatError, OSError):
                if _dir_id(path) == before or attempt == 9:
                    raise
                continue  # swapped (or being swapped) under us: read the new version
            if _dir_id(path) == before:
                return kg
        raise KGFormatError(f"{path}: the KG folder kept changing while it was read (10 updates in a row)")

    @classmethod
    def _load_once(cls, path: str | os.PathLike, provenance: bool = False) -> "KnowledgeGraph":
        folder = Path(path)
        if not (folder / "entities.tsv").is_file():
            raise KGFormatError(f"{folder}: not a KG folder (no entities.tsv); build one with `kgllm build-kg`")
        kg = cls(read_meta(folder))
        escaped = kg.meta.get("tsv_format", 1) >= 2
        split = (lambda f: [_unescape(a) for a in _split(f)]) if escaped else _split
        ents, rels, trip, prov = (folder / n for n in ("entities.tsv", "relations.tsv", "triples.tsv",
                                                       "provenance.tsv"))
        for lineno, row in read_tsv(ents, 7, numbered=True):
            eid = kg.add_entity(row[1], row[2], row[3], split(row[5]), _int(row[4], ents, lineno), split(row[6]))
            if eid != _int(row[0], ents, lineno):
                raise KGFormatError(f"{ents}:{lineno}: ids are not 0..N-1 in order (row id {row[0]})")
        if (folder / RETIRED).is_file():
            kg.retired = {_int(row[0], folder / RETIRED, n) for n, row in read_tsv(folder / RETIRED, 1, numbered=True)}
        if (folder / DOCUMENTS).is_file():
            kg.documents = {doc: (sha, _int(u, folder / DOCUMENTS, n))
                            for n, (doc, sha, u) in read_tsv(folder / DOCUMENTS, 3, numbered=True)}
        if (folder / "descriptions.tsv").is_file():
            desc = folder / "descriptions.tsv"
            kg.descriptions = {_int(i, desc, n): text for n, (i, text) in read_tsv(desc, 2, numbered=True)}
        for lineno, row in read_tsv(rels, 3, numbered=True):
            rid = kg.relation_id(row[1])
            if rid != _int(row[0], rels, lineno):
                raise KGFormatError(f"{rels}:{lineno}: ids are not 0..N-1 in order (row id {row[0]})")
            kg.relation_counts[rid] = _int(row[2], rels, lineno)
        for lineno, row in read_tsv(trip, 5, numbered=True):
            h, r, t = (_int(x, trip, lineno) for x in row[:3])
            if not (0 <= h < kg.num_entities and 0 <= t < kg.num_entities and 0 <= r < kg.num_relations):
                raise KGFormatError(f"{trip}:{lineno}: unknown id in triple {h} {r} {t}")
            kg.edges[(h, r, t)] = Edge(_int(row[3], trip, lineno), _float(row[4], trip, lineno))
        if provenance and prov.is_file():
            for lineno, row in read_tsv(prov, 8, numbered=True):
                key = tuple(_int(x, prov, lineno) for x in row[:3])
                if key not in kg.edges:
                    raise KGFormatError(f"{prov}:{lineno}: provenance of a triple not in triples.tsv {key}")
                kg.edges[key].provenance.append((row[3], *(_int(x, prov, lineno) for x in row[4:7]),
                                                 _float(row[7], prov, lineno)))
        return kg


