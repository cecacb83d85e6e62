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


def iter_triples(kg: "KnowledgeGraph", base: str = DEFAULT_BASE) -> Iterator["pyoxigraph.Triple"]:
    """All RDF triples of ``kg`` (entities, relations, edges, provenance statements)."""
    from pyoxigraph import Literal, NamedNode, Triple

    p = {k: v for k, v in prefixes(base).items()}
    a, label, comment = NamedNode(RDF_NS + "type"), NamedNode(RDFS_NS + "label"), NamedNode(RDFS_NS + "comment")
    integer, double = NamedNode(XSD_NS + "integer"), NamedNode(XSD_NS + "double")
    kgo = {n: NamedNode(ONTOLOGY + n) for n in ("Entity", "key", "type", "mentionCount", "sentence", "charStart",
                                                "charEnd", "confidence", "retired", "addedInUpdate", "sha256")}
    alt = NamedNode(SKOS_NS + "altLabel")
    ents = [NamedNode(p["ent"] + str(i)) for i in range(kg.num_entities)]
    true = Literal("true", datatype=NamedNode(XSD_NS + "boolean"))
    for i, (node, e) in enumerate(zip(ents, kg.entities)):
        yield Triple(node, a, kgo["Entity"])
        if i in kg.retired:
            yield Triple(node, kgo["key"], Literal(e.key))
            yield Triple(node, kgo["retired"], true)
            continue
        yield Triple(node, label, Literal(e.label))
        yield Triple(node, kgo["key"], Literal(e.key))
        yield Triple(node, kgo["type"], Literal(e.etype))
        yield Triple(node, kgo["mentionCount"], Literal(str(e.count), datatype=integer))
        for alias in sorted(e.aliases - {e.label}):
            yield Triple(node, alt, Literal(alias))
    for i, text in kg.descriptions.items():
        yield Triple(ents[i], comment, Literal(text))
    rels = [NamedNode(p["rel"] + quote(name, safe="")) for name in kg.relations]
    prop = NamedNode(RDF_NS + "Property")
    for node, name in zip(rels, kg.relations):
        yield Triple(node, a, prop)
        yield Triple(node, label, Literal(name))
    for doc_id, (sha, update) in kg.documents.items():
        node = NamedNode(p["doc"] + quote(str(doc_id), safe=""))
        yield Triple(node, kgo["addedInUpdate"], Literal(str(int(update)), datatype=integer))
        yield Triple(node, kgo["sha256"], Literal(sha))
    statement, subj, pred, obj = (NamedNode(RDF_NS + n) for n in ("Statement", "subject", "predicate", "object"))
    derived, generated = NamedNode(PROV_NS + "wasDerivedFrom"), NamedNode(PROV_NS + "wasGeneratedBy")
    extractor = Literal(str(kg.meta.get("extractor", {}).get("version", "unknown")))
    n = 0
    for (h, r, t), edge in kg.edges.items():
        s, pr, o = ents[h], rels[r], ents[t]
        yield Triple(s, pr, o)
        for doc_id, sent, start, end, conf in edge.provenance:
            st = NamedNode(f"{p['stmt']}{n}")
            n += 1
            yield Triple(st, a, statement)
            yield Triple(st, subj, s)
            yield Triple(st, pred, pr)
            yield Triple(st, obj, o)
            yield Triple(st, derived, NamedNode(p["doc"] + quote(str(doc_id), safe="")))
            yield Triple(st, kgo["sentence"], Literal(str(int(sent)), datatype=integer))
            yield Triple(st, kgo["charStart"], Literal(str(int(start)), datatype=integer))
            yield Triple(st, kgo["charEnd"], Literal(str(int(end)), datatype=integer))
            yield Triple(st, kgo["confidence"], Literal(repr(float(conf)), datatype=double))
            yield Triple(st, generated, extractor)


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
    # rel: and doc: local names can hold %-escapes that some Turtle parsers (rdflib's) misread
    # as prefixed names, so those IRIs are written in full
    pre = {k: v for k, v in prefixes(base).items() if k not in ("rel", "doc")}
    ox.serialize(iter_triples(kg, base), str(path), getattr(ox.RdfFormat, ox_format), prefixes=pre)
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
