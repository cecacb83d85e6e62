"""The on-disk KG folder format, owned here: file names, the TSV readers and their escaping,
``meta.json`` (validated), the KG identity hash, and entity texts. :mod:`kgllm.kg.graph.store` (the
in-memory graph) and :mod:`kgllm.kg.graph.rdf` (its RDF view) both build on this module and not on
each other.

A KG folder holds

* ``entities.tsv``  -- ``id key label type count aliases sources`` (lists joined by `` | ``; a ``|`` or
  ``%`` inside an alias is written ``%7C`` / ``%25``, so a label holding `` | `` stays one alias);
* ``descriptions.tsv`` -- ``id description`` for entities that have one (imported KGs);
* ``relations.tsv`` -- ``id name count``;
* ``triples.tsv``   -- ``head relation tail count confidence`` as integer ids (fast loading);
* ``provenance.tsv`` -- ``head relation tail doc sentence start end confidence``, one row per occurrence;
* ``mentions.tsv`` -- ``doc sentence start end entity label text`` (built KGs);
* ``documents.tsv`` -- ``doc sha256 update``: the live version of every document and imported fact
  file, and the build or update (``meta.json`` ``updates``) that added it;
* ``retired.tsv`` -- ``id``: entities no live document or fact mentions any more (ids are never reused);
* ``extractions/NNNNN/*.jsonl`` -- what each document of build or update ``NNNNN`` contributed
  (:mod:`kgllm.kg.extraction.assemble`), so that ``update-kg`` re-extracts only new documents;
* ``graph.ttl`` or ``graph.nt`` -- the same graph in RDF (see :mod:`kgllm.kg.graph.rdf`), and with
  ``store="oxigraph"`` an on-disk Oxigraph store ``oxigraph/`` for SPARQL on large graphs;
* ``meta.json`` -- corpus hash, spaCy model and version, extractor settings, counts, and the KG's
  ``identity`` (:func:`kg_identity`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from kgllm.util.errors import KGFormatError

if TYPE_CHECKING:  # pragma: no cover
    from kgllm.kg.graph.store import KnowledgeGraph

ENTITIES, RELATIONS, TRIPLES, PROVENANCE = "entities.tsv", "relations.tsv", "triples.tsv", "provenance.tsv"
DESCRIPTIONS, MENTIONS, META = "descriptions.tsv", "mentions.tsv", "meta.json"
DOCUMENTS, RETIRED = "documents.tsv", "retired.tsv"
#: RDF export format -> file name
RDF_FILE = {"turtle": "graph.ttl", "nt": "graph.nt"}
ALIAS_SEP = " | "
#: entities.tsv list fields escape ``%`` and ``|`` from this format version on
TSV_FORMAT = 2
RDF_FILES = tuple(RDF_FILE.values())
#: a folder holding this file is a KG folder kgllm wrote (``--overwrite`` replaces nothing else)
KG_MARKER = "entities.tsv"
#: every name kgllm writes in a KG folder; anything else there is the user's, and is never removed
KG_ENTRIES = frozenset({ENTITIES, RELATIONS, TRIPLES, PROVENANCE, DESCRIPTIONS, MENTIONS, META, DOCUMENTS, RETIRED,
                        *RDF_FILE.values(), "oxigraph", "extractions"})


def foreign_entries(folder: Path) -> list[str]:
    """Names in the KG folder ``folder`` that kgllm did not write (notes, plots, a corpus, ...)."""
    try:
        return sorted(name for name in (p.name for p in Path(folder).iterdir()) if name not in KG_ENTRIES)
    except FileNotFoundError:
        return []


def _clean(value: object) -> str:
    return str(value).replace("\t", " ").replace("\n", " ").replace("\r", " ")


def _escape(value: str) -> str:
    return _clean(value).replace("%", "%25").replace("|", "%7C")


def _unescape(value: str) -> str:
    return value.replace("%7C", "|").replace("%25", "%")


def kg_identity(entity_keys: Iterable[str], relations: Iterable[str]) -> str:
    """Hash of a KG's entity keys and relation names in id order: equal iff ids mean the same things."""
    h = hashlib.sha256()
    for part, items in ((b"entities", entity_keys), (b"relations", relations)):
        h.update(part + b"\0")
        for item in items:
            h.update(item.encode("utf-8", "surrogatepass") + b"\0")
    return h.hexdigest()[:32]



def entity_texts(kg: "KnowledgeGraph") -> list[str]:
    """Each entity's text for text-feature encoders: its label, then its description if it has one."""
    return [e.label + (f", {kg.descriptions[i]}" if i in kg.descriptions else "") for i, e in enumerate(kg.entities)]


def rdf_file(folder: Path) -> Path:
    """The folder's RDF export (the name ``meta.json`` gives, else whichever exists)."""
    name = read_meta(folder).get("rdf_file")
    if not name:
        name = next((f for f in RDF_FILES if (folder / f).exists()), RDF_FILE["turtle"])
    return folder / name


def _split(field_: str) -> list[str]:
    return [a for a in field_.split(ALIAS_SEP) if a]


def _int(value: str, path: Path, lineno: int) -> int:
    try:
        return int(value)
    except ValueError:
        raise KGFormatError(f"{path}:{lineno}: expected an integer, got {value[:40]!r}") from None


def _float(value: str, path: Path, lineno: int) -> float:
    try:
        return float(value)
    except ValueError:
        raise KGFormatError(f"{path}:{lineno}: expected a number, got {value[:40]!r}") from None


def read_meta(folder: Path) -> dict:
    """``meta.json`` of a KG folder (``{}`` if absent); it must be an object, and the file names it
    gives (``rdf_file``) must be names of files inside the folder, never paths."""
    path = folder / "meta.json"
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise KGFormatError(f"{path}: malformed meta.json ({type(exc).__name__})") from exc
    if not isinstance(meta, dict):
        raise KGFormatError(f"{path}: meta.json must be a JSON object, not a {type(meta).__name__}")
    _check_meta_types(meta, path)
    rdf = meta.get("rdf_file")
    if rdf is not None and rdf not in RDF_FILES:
        raise KGFormatError(f"{path}: rdf_file must be one of {RDF_FILES} (a file in the KG folder), "
                            f"got {str(rdf)[:60]!r}")
    return meta


#: meta.json fields kgllm reads, and the JSON type each must have
_META_TYPES = {"updates": list, "lineage": list, "retracted": list, "counts": dict, "identity": str,
               "extractor": (dict, type(None)), "tsv_format": int, "relation_labels": dict, "spacy": (dict, type(None))}


def _check_meta_types(meta: dict, path: Path) -> None:
    """One line naming the field of a hand-edited meta.json whose type is wrong, or whose format
    version is newer than this kgllm reads."""
    for key, kind in _META_TYPES.items():
        if key not in meta:
            continue
        if not isinstance(meta[key], kind) or (kind is int and isinstance(meta[key], bool)):
            raise KGFormatError(f"{path}: {key} must be a JSON {getattr(kind, '__name__', 'object or null')}, "
                                f"got {type(meta[key]).__name__}")
    version = meta.get("tsv_format", 1)
    if not 1 <= version <= TSV_FORMAT:
        raise KGFormatError(f"{path}: tsv_format {version} is not one this kgllm reads (1-{TSV_FORMAT}); "
                            "upgrade kgllm or rebuild the KG")
    for i, entry in enumerate(meta.get("updates", [])):
        if not isinstance(entry, dict) or not isinstance(entry.get("update"), int) or isinstance(entry["update"], bool):
            raise KGFormatError(f"{path}: updates[{i}] must be an object with an integer 'update'")
    for i, fact in enumerate(meta.get("retracted", [])):
        if not (isinstance(fact, list) and len(fact) == 3 and all(isinstance(x, str) for x in fact)):
            raise KGFormatError(f"{path}: retracted[{i}] must be [head, relation, tail] strings")
    if not all(isinstance(x, str) for x in meta.get("lineage", [])):
        raise KGFormatError(f"{path}: lineage must list KG identities (strings)")


def read_tsv(path: Path, width: int, numbered: bool = False) -> Iterable:
    """Rows of a kgllm TSV file (header skipped), each checked to have ``width`` fields;
    ``numbered`` yields ``(line number, row)``."""
    if not path.is_file():
        raise KGFormatError(f"{path}: missing")
    try:
        with open(path, encoding="utf-8") as fh:
            next(fh, None)
            for lineno, line in enumerate(fh, 2):
                row = line.rstrip("\n").split("\t")
                if len(row) != width:
                    raise KGFormatError(f"{path}:{lineno}: expected {width} tab-separated fields, got {len(row)}")
                yield (lineno, row) if numbered else row
    except UnicodeDecodeError as exc:
        raise KGFormatError(f"{path}: not valid UTF-8 (byte {exc.start})") from exc

