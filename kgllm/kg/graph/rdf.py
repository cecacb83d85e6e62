"""RDF view of a :class:`~kgllm.kg.graph.store.KnowledgeGraph`: writing, stores, SPARQL.

Modelling (documented in the README):

* entity ``e`` is ``<base>entity/<id>`` with ``rdfs:label``, ``kgo:key``, ``kgo:type``,
  ``skos:altLabel`` (aliases), ``kgo:mentionCount`` and, where known, ``rdfs:comment``;
* relation ``r`` is ``<base>relation/<name>`` (name percent-encoded) with ``rdfs:label``;
* every edge is asserted directly: ``<entity/h> <relation/r> <entity/t>``;
* every occurrence of an edge is a reified ``rdf:Statement`` ``<base>statement/<n>`` with
  ``rdf:subject/predicate/object``, ``prov:wasDerivedFrom <base>doc/<doc id>``,
  ``kgo:sentence``, ``kgo:charStart``, ``kgo:charEnd``, ``kgo:confidence`` and
  ``prov:wasGeneratedBy`` the extractor;
* every live document ``<base>doc/<doc id>`` has ``kgo:addedInUpdate`` (the build, 0, or the
  ``update-kg``/``kg-import --into`` run that added it, listed in ``meta.json`` ``updates``) and
  ``kgo:sha256`` of its text;
* a retired entity (no live document mentions it any more) keeps only ``kgo:key`` and
  ``kgo:retired true``.

Reification keeps provenance in a plain Turtle/N-Triples file and is queryable with
SPARQL 1.1 in any store (no RDF-star or quad store needed).

Writing goes through pyoxigraph (Rust; it escapes every term). Stores and queries over the
written RDF live in :mod:`kgllm.kg.sparql.local`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterator
from urllib.parse import quote

from rdflib.namespace import PROV, RDF, RDFS, SKOS, XSD

from kgllm.util.errors import KGFormatError
from kgllm.kg.graph.folder import RDF_FILE

if TYPE_CHECKING:  # pragma: no cover
    import pyoxigraph
    import rdflib

    from kgllm.kg.graph.store import KnowledgeGraph

DEFAULT_BASE = "https://w3id.org/kgllm/"
ONTOLOGY = "https://w3id.org/kgllm/ontology#"
RDF_NS, RDFS_NS, XSD_NS, SKOS_NS, PROV_NS = (str(ns) for ns in (RDF, RDFS, XSD, SKOS, PROV))  # rdflib's own
#: format name -> (file name, pyoxigraph format attribute, rdflib format for the memory store)
RDF_FORMATS = {"turtle": (RDF_FILE["turtle"], "TURTLE", "turtle"), "nt": (RDF_FILE["nt"], "N_TRIPLES", "nt")}
ALIASES = {"ttl": "turtle", "ntriples": "nt", "n-triples": "nt"}
STORES = ("memory", "oxigraph")
STORE_DIR = "oxigraph"


def prefixes(base: str = DEFAULT_BASE) -> dict[str, str]:
    """The SPARQL prefixes of the RDF model (``ent:``, ``rel:``, ``stmt:``, ``doc:``, ``kgo:`` and the W3C ones)."""
    return {"ent": base + "entity/", "rel": base + "relation/", "stmt": base + "statement/",
            "doc": base + "doc/", "kgo": ONTOLOGY, "prov": PROV_NS, "rdf": RDF_NS, "rdfs": RDFS_NS,
            "skos": SKOS_NS, "xsd": XSD_NS}


def rdf_format(name: str) -> str:
    """The canonical RDF format name (``turtle`` or ``nt``) of ``name`` or one of its aliases."""
    name = ALIASES.get(name, name)
    if name not in RDF_FORMATS:
        raise ValueError(f"unknown RDF format {name!r}; choose one of {sorted(RDF_FORMATS)}")
    return name


class RdfTerms:
    """The RDF nodes of the model for one base IRI, and the triples of each part of a KG: shared by
    :func:`iter_triples` and the sharded merge (:mod:`kgllm.kg.extraction.sharded`), which writes the
    parts in separate processes and gets the same bytes."""

    def __init__(self, base: str = DEFAULT_BASE) -> None:
        from pyoxigraph import Literal, NamedNode

        self.NamedNode, self.Literal = NamedNode, Literal
        self.p = prefixes(base)
        self.a, self.label = NamedNode(RDF_NS + "type"), NamedNode(RDFS_NS + "label")
        self.comment = NamedNode(RDFS_NS + "comment")
        self.integer, self.double = NamedNode(XSD_NS + "integer"), NamedNode(XSD_NS + "double")
        self.kgo = {n: NamedNode(ONTOLOGY + n) for n in ("Entity", "key", "type", "mentionCount", "sentence", "charStart",
                                                         "charEnd", "confidence", "retired", "addedInUpdate", "sha256")}
        self.alt = NamedNode(SKOS_NS + "altLabel")
        self.true = Literal("true", datatype=NamedNode(XSD_NS + "boolean"))
        self.prop = NamedNode(RDF_NS + "Property")
        self.statement, self.subj, self.pred, self.obj = (NamedNode(RDF_NS + n) for n in
                                                          ("Statement", "subject", "predicate", "object"))
        self.derived, self.generated = NamedNode(PROV_NS + "wasDerivedFrom"), NamedNode(PROV_NS + "wasGeneratedBy")

    def entity(self, i: int):
        return self.NamedNode(self.p["ent"] + str(i))

    def relation(self, name: str):
        return self.NamedNode(self.p["rel"] + quote(name, safe=""))

    def doc(self, doc_id) -> "pyoxigraph.NamedNode":
        return self.NamedNode(self.p["doc"] + quote(str(doc_id), safe=""))

    def entity_triples(self, i: int, e, retired: bool) -> Iterator["pyoxigraph.Triple"]:
        """Entity ``i`` (an :class:`~kgllm.kg.graph.store.Entity`)."""
        from pyoxigraph import Triple

        node, kgo, Literal = self.entity(i), self.kgo, self.Literal
        yield Triple(node, self.a, kgo["Entity"])
        if retired:
            yield Triple(node, kgo["key"], Literal(e.key))
            yield Triple(node, kgo["retired"], self.true)
            return
        yield Triple(node, self.label, Literal(e.label))
        yield Triple(node, kgo["key"], Literal(e.key))
        yield Triple(node, kgo["type"], Literal(e.etype))
        yield Triple(node, kgo["mentionCount"], Literal(str(e.count), datatype=self.integer))
        for alias in sorted(e.aliases - {e.label}):
            yield Triple(node, self.alt, Literal(alias))

    def description_triples(self, i: int, text: str) -> Iterator["pyoxigraph.Triple"]:
        from pyoxigraph import Triple

        yield Triple(self.entity(i), self.comment, self.Literal(text))

    def relation_triples(self, name: str) -> Iterator["pyoxigraph.Triple"]:
        from pyoxigraph import Triple

        node = self.relation(name)
        yield Triple(node, self.a, self.prop)
        yield Triple(node, self.label, self.Literal(name))

    def document_triples(self, doc_id: str, sha: str, update: int) -> Iterator["pyoxigraph.Triple"]:
        from pyoxigraph import Triple

        node = self.doc(doc_id)
        yield Triple(node, self.kgo["addedInUpdate"], self.Literal(str(int(update)), datatype=self.integer))
        yield Triple(node, self.kgo["sha256"], self.Literal(sha))

    def edge_triples(self, h: int, relation: str, t: int, provenance, first_statement: int,
                     extractor) -> Iterator["pyoxigraph.Triple"]:
        """The edge and one reified statement per occurrence, numbered from ``first_statement``
        (``extractor``: the ``prov:wasGeneratedBy`` literal)."""
        from pyoxigraph import Triple

        s, pr, o, kgo, Literal = self.entity(h), self.relation(relation), self.entity(t), self.kgo, self.Literal
        yield Triple(s, pr, o)
        for n, (doc_id, sent, start, end, conf) in enumerate(provenance, first_statement):
            st = self.NamedNode(f"{self.p['stmt']}{n}")
            yield Triple(st, self.a, self.statement)
            yield Triple(st, self.subj, s)
            yield Triple(st, self.pred, pr)
            yield Triple(st, self.obj, o)
            yield Triple(st, self.derived, self.doc(doc_id))
            yield Triple(st, kgo["sentence"], Literal(str(int(sent)), datatype=self.integer))
            yield Triple(st, kgo["charStart"], Literal(str(int(start)), datatype=self.integer))
            yield Triple(st, kgo["charEnd"], Literal(str(int(end)), datatype=self.integer))
            yield Triple(st, kgo["confidence"], Literal(repr(float(conf)), datatype=self.double))
            yield Triple(st, self.generated, extractor)

    def extractor(self, meta: dict):
        """The ``prov:wasGeneratedBy`` literal of a KG's statements (its extractor version)."""
        return self.Literal(str(meta.get("extractor", {}).get("version", "unknown")))


def iter_triples(kg: "KnowledgeGraph", base: str = DEFAULT_BASE) -> Iterator["pyoxigraph.Triple"]:
    """All RDF triples of ``kg`` (entities, relations, edges, provenance statements)."""
    terms = RdfTerms(base)
    for i, e in enumerate(kg.entities):
        yield from terms.entity_triples(i, e, i in kg.retired)
    for i, text in kg.descriptions.items():
        yield from terms.description_triples(i, text)
    for name in kg.relations:
        yield from terms.relation_triples(name)
    for doc_id, (sha, update) in kg.documents.items():
        yield from terms.document_triples(doc_id, sha, update)
    extractor, n = terms.extractor(kg.meta), 0
    for (h, r, t), edge in kg.edges.items():
        yield from terms.edge_triples(h, kg.relations[r], t, edge.provenance, n, extractor)
        n += len(edge.provenance)


def serialize_prefixes(base: str = DEFAULT_BASE) -> dict[str, str]:
    """The prefixes the written RDF file declares."""
    # rel: and doc: local names can hold %-escapes that some Turtle parsers (rdflib's) misread
    # as prefixed names, so those IRIs are written in full
    return {k: v for k, v in prefixes(base).items() if k not in ("rel", "doc")}


def write_rdf(kg: "KnowledgeGraph", folder: Path, fmt: str = "turtle", store: str = "memory") -> Path:
    """Export ``kg`` to ``folder/graph.ttl`` (or ``.nt``); with ``store="oxigraph"`` also load it
    into an on-disk Oxigraph store ``folder/oxigraph/`` for fast SPARQL on large graphs."""
    import pyoxigraph as ox

    fmt = rdf_format(fmt)
    if store not in STORES:
        raise ValueError(f"unknown RDF store {store!r}; choose one of {STORES}")
    file_name, ox_format, _ = RDF_FORMATS[fmt]
    base = kg.meta.get("base_iri", DEFAULT_BASE)
    path = folder / file_name
    ox.serialize(iter_triples(kg, base), str(path), getattr(ox.RdfFormat, ox_format), prefixes=serialize_prefixes(base))
    if store == "oxigraph":
        db = ox.Store(str(folder / STORE_DIR))
        db.bulk_extend(ox.Quad(t.subject, t.predicate, t.object, ox.DefaultGraph()) for t in iter_triples(kg, base))
        db.flush()
        del db
    return path


def to_rdflib(term):
    """A pyoxigraph term as an rdflib term; ``xsd:string`` literals become plain literals, as rdflib
    writes them (oxrdflib keeps the datatype, and rdflib then finds no match for a plain literal)."""
    import pyoxigraph as ox
    from rdflib import BNode, Literal, URIRef

    if isinstance(term, ox.NamedNode):
        return URIRef(term.value)
    if isinstance(term, ox.BlankNode):
        return BNode(term.value)
    if isinstance(term, ox.Literal):
        if term.language:
            return Literal(term.value, lang=term.language)
        dt = term.datatype.value
        return Literal(term.value) if dt == XSD_NS + "string" else Literal(term.value, datatype=URIRef(dt))
    raise KGFormatError(f"unsupported RDF term {term!r} (RDF-star triples are not read)")


def add_parsed(graph: "rdflib.Graph", source: Path | bytes, fmt: str, base_iri: str | None = None) -> None:
    """Parse ``source`` (a file or bytes) with pyoxigraph (``fmt``: a ``pyoxigraph.RdfFormat`` name)
    into ``graph``, merging the triples of every named graph."""
    import pyoxigraph as ox

    kw = {"path": str(source)} if isinstance(source, Path) else {"input": source}
    quads = ox.parse(format=getattr(ox.RdfFormat, fmt), base_iri=base_iri, **kw)
    graph.addN((to_rdflib(q.subject), to_rdflib(q.predicate), to_rdflib(q.object), graph) for q in quads)
