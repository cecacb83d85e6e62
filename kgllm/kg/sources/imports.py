"""Import existing knowledge graphs (TSV triples, OpenKE id files, LAMA T-REx facts, RDF files)
and merge KGs by id or by normalised label, keeping every source's provenance.

Imported entities are keyed ``<source>:<original id>`` (``umls:steroid``,
``wn18rr:14854262``, ``wd:Q76``, or the full IRI for RDF), so two KGs that share an id
space (e.g. Wikidata ids) merge by id. Provenance rows of imported triples are
``(file name, line number, -1, -1, 1.0)``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable, Iterator

from kgllm.util.errors import KGFormatError
from kgllm.kg.extraction.corpus import decode
from kgllm.kg.graph.normalize import normalize_label
from kgllm.kg.graph.store import KnowledgeGraph

IMPORT_FORMATS = ("tsv", "openke", "lama", "rdf")
SPLITS = ("train", "valid", "test")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    if not path.is_file():
        raise KGFormatError(f"{path}: file not found")
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = decode(raw, f"{path}:{lineno}").rstrip("\r\n")
            except Exception as exc:
                raise KGFormatError(str(exc)) from exc
            if line.strip():
                yield lineno, line


def _new(name: str, fmt: str, paths: Iterable[Path]) -> KnowledgeGraph:
    return KnowledgeGraph({"imported": [{"source": name, "format": fmt, "files": [str(p) for p in paths]}]})


def import_tsv(path: str | Path, name: str | None = None, splits: Iterable[str] = SPLITS) -> KnowledgeGraph:
    """``head<TAB>relation<TAB>tail`` lines: one file, or a folder with ``train/valid/test.txt``."""
    path = Path(path)
    name = name or path.stem
    files = [path / f"{s}.txt" for s in splits] if path.is_dir() else [path]
    kg = _new(name, "tsv", files)
    for file in files:
        for lineno, line in _lines(file):
            parts = line.split("\t")
            if len(parts) != 3 or not all(p.strip() for p in parts):
                raise KGFormatError(f"{file}:{lineno}: expected 'head<TAB>relation<TAB>tail'")
            h, r, t = (p.strip() for p in parts)
            hid = kg.add_entity(f"{name}:{h}", h.replace("_", " "), "ENT", sources=(name,))
            tid = kg.add_entity(f"{name}:{t}", t.replace("_", " "), "ENT", sources=(name,))
            kg.add_edge(hid, r, tid, (f"{name}/{file.name}", lineno, -1, -1, 1.0))
    return kg


def _read_map(path: Path, header: bool) -> dict[str, str]:
    out = {}
    for lineno, line in _lines(path):
        if header and lineno == 1:
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            raise KGFormatError(f"{path}:{lineno}: expected 2 tab-separated fields")
        out[parts[0]] = parts[1]
    return out


def _id(text: str, path: Path, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise KGFormatError(f"{path}: the id of {name[:60]!r} is not an integer ({text[:30]!r})") from None


def import_openke(folder: str | Path, name: str | None = None, splits: Iterable[str] = SPLITS) -> KnowledgeGraph:
    """OpenKE benchmark folder (``entity2id.txt``, ``relation2id.txt``, ``<split>2id.txt`` with
    ``head tail relation`` ids; optional ``entity2text.txt`` / ``relation2text.txt``)."""
    folder = Path(folder)
    name = name or folder.name
    ents = {_id(i, folder / "entity2id.txt", e): e for e, i in _read_map(folder / "entity2id.txt", header=True).items()}
    rels = {_id(i, folder / "relation2id.txt", r): r
            for r, i in _read_map(folder / "relation2id.txt", header=True).items()}
    texts = _read_map(folder / "entity2text.txt", False) if (folder / "entity2text.txt").exists() else {}
    rel_texts = _read_map(folder / "relation2text.txt", False) if (folder / "relation2text.txt").exists() else {}
    files = [folder / f"{s}2id.txt" for s in splits]
    kg = _new(name, "openke", files)
    kg.meta["relation_labels"] = {r: rel_texts.get(r, r) for r in rels.values()}
    ids: dict[int, int] = {}

    def entity(i: int) -> int:
        if i not in ids:
            if i not in ents:
                raise KGFormatError(f"{folder / 'entity2id.txt'}: no entity with id {i}")
            raw = ents[i]
            label, _, desc = texts.get(raw, raw).partition(", ")
            ids[i] = kg.add_entity(f"{name}:{raw}", label.strip() or raw, "ENT", sources=(name,))
            if desc:
                kg.descriptions[ids[i]] = desc.strip()
        return ids[i]

    for file in files:
        for lineno, line in _lines(file):
            if lineno == 1 and line.strip().isdigit():
                continue
            parts = line.split()
            if len(parts) != 3 or not all(p.isdigit() for p in parts):
                raise KGFormatError(f"{file}:{lineno}: expected 'head tail relation' integer ids")
            h, t, r = map(int, parts)
            if r not in rels:
                raise KGFormatError(f"{file}:{lineno}: unknown relation id {r}")
            kg.add_edge(entity(h), rels[r], entity(t), (f"{name}/{file.name}", lineno, -1, -1, 1.0))
    return kg


def import_lama(path: str | Path, splits: Iterable[str] | None = ("test",), name: str = "wd",
                relations: Iterable[str] | None = None) -> KnowledgeGraph:
    """LAMA facts of any format (T-REx, Google-RE, ConceptNet, SQuAD; see :mod:`kgllm.kg.sources.lama`) from
    a file or a folder (``splits`` picks ``*.<split>.jsonl`` in a folder; ``None``: every ``*.jsonl``)."""
    from kgllm.kg.sources.lama import lama_files, read_lama

    path = Path(path)
    files = lama_files(path, splits if path.is_dir() else None, relations)
    kg = _new(name, "lama", files)
    labels = {}
    folder = path if path.is_dir() else path.parent
    if (folder / "relations.jsonl").exists():
        for _, line in _lines(folder / "relations.jsonl"):
            rel = json.loads(line)
            labels[rel["relation"]] = rel.get("label", rel["relation"])
    kg.meta["relation_labels"] = labels
    for file in files:
        for fact in read_lama(file, relations=relations, wd=name):
            h = kg.add_entity(fact.sub_key, fact.sub_label, "ENT", sources=(name,))
            t = kg.add_entity(fact.obj_key, fact.obj_label, "ENT", sources=(name,))
            kg.add_edge(h, fact.relation, t, (*fact.source, -1, -1, 1.0))
    return kg


_LOCAL = re.compile(r"[#/:]([^#/:]+)$")
LABEL_PREDICATES = ("http://www.w3.org/2000/01/rdf-schema#label", "http://www.w3.org/2004/02/skos/core#prefLabel",
                    "http://schema.org/name", "https://schema.org/name")
COMMENT_PREDICATES = ("http://www.w3.org/2000/01/rdf-schema#comment", "http://schema.org/description",
                      "https://schema.org/description")


def local_name(iri: str) -> str:
    """The last segment of an IRI (after ``/`` or ``#``), as an entity or relation name."""
    m = _LOCAL.search(iri.rstrip("/#"))
    return m.group(1) if m else iri


def import_rdf(path: str | Path, fmt: str | None = None, name: str | None = None) -> KnowledgeGraph:
    """An RDF file (Turtle, N-Triples, RDF/XML, JSON-LD, ...) checked for unsafe content first
    (see :mod:`kgllm.kg.sources.safe_rdf`). Triples between resources become edges (relation = predicate
    IRI); ``rdfs:label``-like literals name entities, ``rdfs:comment``-like ones describe them."""
    from rdflib import BNode, Literal

    from kgllm.kg.sources.safe_rdf import parse_rdf_safely

    path = Path(path)
    name = name or path.stem
    g = parse_rdf_safely(path, fmt)
    kg = _new(name, "rdf", [path])
    labels, comments = {}, {}
    for s, p, o in g:
        if isinstance(o, Literal):
            if str(p) in LABEL_PREDICATES:
                labels.setdefault(str(s), str(o))
            elif str(p) in COMMENT_PREDICATES:
                comments.setdefault(str(s), str(o))
    ids: dict[str, int] = {}

    def entity(node) -> int:
        key = str(node) if not isinstance(node, BNode) else f"_:{node}"
        if key not in ids:
            ids[key] = kg.add_entity(key, labels.get(key, local_name(key)), "ENT", sources=(name,))
            if key in comments:
                kg.descriptions[ids[key]] = comments[key]
        return ids[key]

    for n, (s, p, o) in enumerate(sorted(g, key=lambda t: tuple(map(str, t)))):
        if isinstance(o, Literal):
            continue
        kg.add_edge(entity(s), str(p), entity(o), (path.name, n, -1, -1, 1.0))
    return kg


def import_kg(fmt: str, path: str | Path, **kwargs) -> KnowledgeGraph:
    """An existing KG read from ``path`` in format ``fmt`` (tsv, openke, lama, rdf) as a ``KnowledgeGraph``."""
    readers = {"tsv": import_tsv, "openke": import_openke, "lama": import_lama, "rdf": import_rdf}
    if fmt not in readers:
        raise KGFormatError(f"unknown import format {fmt!r}; choose one of {IMPORT_FORMATS}")
    if not Path(path).exists():
        raise KGFormatError(f"{path}: does not exist")
    return readers[fmt](path, **kwargs)


def merge(a: KnowledgeGraph, b: KnowledgeGraph, by: str = "id") -> KnowledgeGraph:
    """A new KG holding ``a`` then ``b``; ``b``'s entities join ``a``'s with the same key (``by="id"``)
    or the same normalised label or alias (``by="label"``). Edges, aliases, descriptions, sources
    and provenance of both are kept; ``a``'s ids are preserved."""
    if by not in ("id", "label"):
        raise ValueError("merge by 'id' or 'label'")
    out = KnowledgeGraph({"merged": [a.meta, b.meta], "merge_by": by,
                          "relation_labels": {**b.meta.get("relation_labels", {}),
                                              **a.meta.get("relation_labels", {})}})
    maps = []
    for kg in (a, b):
        mapping = []
        maps.append(mapping)
        label_index = {}
        if by == "label" and kg is b:
            for i, e in enumerate(out.entities):
                for alias in {e.label, *e.aliases}:
                    label_index.setdefault(normalize_label(alias), i)
        for i, e in enumerate(kg.entities):
            target = None
            if kg is b and by == "label":
                target = next((label_index[n] for n in (normalize_label(x) for x in (e.label, *sorted(e.aliases)))
                               if n in label_index), None)
            key = out.entities[target].key if target is not None else e.key
            mapping.append(out.add_entity(key, e.label if target is None else out.entities[target].label,
                                          e.etype, e.aliases, e.count, e.sources))
            if i in kg.descriptions:
                out.descriptions.setdefault(mapping[-1], kg.descriptions[i])
        for (h, r, t), edge in kg.edges.items():
            name = kg.relations[r]
            if edge.provenance:
                for prov in edge.provenance:
                    out.add_edge(mapping[h], name, mapping[t], prov, prov[4])
            else:
                out.add_edge(mapping[h], name, mapping[t], None, edge.confidence, edge.count)
    out.merge_maps = maps  # old id -> merged id, per input (for mentions.tsv)
    out.meta["merge_counts"] = {"a_entities": a.num_entities, "b_entities": b.num_entities,
                                "joined": a.num_entities + b.num_entities - out.num_entities}
    return out


def merge_folders(a: str | Path, b: str | Path, by: str = "id") -> KnowledgeGraph:
    """:func:`merge` of two KG folders, with provenance, and both folders' ``mentions.tsv`` rows
    renumbered to the merged ids (``kg.mention_rows``, written by ``kg.save``): what ``kgllm
    kg-merge`` writes. Refuses to merge a KG with itself (every count would double)."""
    from kgllm.kg.graph.folder import read_tsv

    if Path(a).resolve() == Path(b).resolve():
        raise KGFormatError(f"{a} and {b} are the same KG folder; merging a KG with itself would double every count")
    first, second = KnowledgeGraph.load(a, provenance=True), KnowledgeGraph.load(b, provenance=True)
    if first.identity() == second.identity() and first.counts() == second.counts():
        raise KGFormatError(f"{b}: the same KG as {a} (identity {first.identity()}); merging it would double "
                            "every count")
    kg = merge(first, second, by)
    rows = []
    for folder, mapping in zip((a, b), kg.merge_maps):  # both sides' mentions, ids of the merged KG
        if (Path(folder) / "mentions.tsv").is_file():
            for row in read_tsv(Path(folder) / "mentions.tsv", 7):
                row[4] = str(mapping[int(row[4])])
                rows.append(row)
    kg.mention_rows = rows
    return kg
