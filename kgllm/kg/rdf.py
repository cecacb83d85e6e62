"""RDF view of a :class:`~kgllm.kg.store.KnowledgeGraph` (rdflib).

Modelling (documented in the README):

* entity ``e`` is ``<base>entity/<id>`` with ``rdfs:label``, ``kgo:key``, ``kgo:type``,
  ``skos:altLabel`` (aliases) and ``kgo:mentionCount``;
* relation ``r`` is ``<base>relation/<name>`` (name percent-encoded) with ``rdfs:label``;
* every edge is asserted directly: ``<entity/h> <relation/r> <entity/t>``;
* every occurrence of an edge is a reified ``rdf:Statement`` ``<base>statement/<n>`` with
  ``rdf:subject/predicate/object``, ``prov:wasDerivedFrom <base>doc/<doc id>``,
  ``kgo:sentence``, ``kgo:charStart``, ``kgo:charEnd``, ``kgo:confidence`` and
  ``prov:wasGeneratedBy`` the extractor.

Reification keeps provenance in a plain Turtle/N-Triples file and is queryable
with SPARQL 1.1 everywhere (no RDF-star or quad store required). Labels only ever
enter the graph as :class:`rdflib.Literal` objects, never spliced into strings.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:  # pragma: no cover
    import rdflib

    from kgllm.kg.store import KnowledgeGraph

DEFAULT_BASE = "https://w3id.org/kgllm/"
ONTOLOGY = "https://w3id.org/kgllm/ontology#"
RDF_FORMATS = {"turtle": "turtle", "ttl": "turtle", "nt": "nt", "ntriples": "nt"}


def namespaces(base: str = DEFAULT_BASE) -> dict:
    from rdflib import Namespace

    return {"ent": Namespace(base + "entity/"), "rel": Namespace(base + "relation/"),
            "stmt": Namespace(base + "statement/"), "doc": Namespace(base + "doc/"),
            "kgo": Namespace(ONTOLOGY), "prov": Namespace("http://www.w3.org/ns/prov#")}


def relation_iri_name(name: str) -> str:
    return quote(name, safe="")


def to_rdflib(kg: "KnowledgeGraph", base: str = DEFAULT_BASE) -> "rdflib.Graph":
    """Build the rdflib graph (in memory) of ``kg`` with provenance statements."""
    from rdflib import RDF, RDFS, SKOS, XSD, Graph, Literal

    ns = namespaces(base)
    ent, rel, stmt, doc, kgo, prov = (ns[k] for k in ("ent", "rel", "stmt", "doc", "kgo", "prov"))
    g = Graph()
    for prefix, n in ns.items():
        g.bind(prefix, n)
    g.bind("skos", SKOS)
    for i, e in enumerate(kg.entities):
        node = ent[str(i)]
        g.add((node, RDF.type, kgo.Entity))
        g.add((node, RDFS.label, Literal(e.label)))
        g.add((node, kgo.key, Literal(e.key)))
        g.add((node, kgo.type, Literal(e.etype)))
        g.add((node, kgo.mentionCount, Literal(e.count, datatype=XSD.integer)))
        for alias in sorted(e.aliases - {e.label}):
            g.add((node, SKOS.altLabel, Literal(alias)))
    for i, name in enumerate(kg.relations):
        g.add((rel[relation_iri_name(name)], RDF.type, RDF.Property))
        g.add((rel[relation_iri_name(name)], RDFS.label, Literal(name)))
    extractor = Literal(kg.meta.get("extractor", {}).get("version", "unknown"))
    n = 0
    for (h, r, t), edge in kg.edges.items():
        s, p, o = ent[str(h)], rel[relation_iri_name(kg.relations[r])], ent[str(t)]
        g.add((s, p, o))
        for doc_id, sent, start, end, conf in edge.provenance:
            st = stmt[str(n)]
            n += 1
            g.add((st, RDF.type, RDF.Statement))
            g.add((st, RDF.subject, s))
            g.add((st, RDF.predicate, p))
            g.add((st, RDF.object, o))
            g.add((st, prov.wasDerivedFrom, doc[quote(str(doc_id), safe="")]))
            g.add((st, kgo.sentence, Literal(int(sent), datatype=XSD.integer)))
            g.add((st, kgo.charStart, Literal(int(start), datatype=XSD.integer)))
            g.add((st, kgo.charEnd, Literal(int(end), datatype=XSD.integer)))
            g.add((st, kgo.confidence, Literal(float(conf), datatype=XSD.double)))
            g.add((st, prov.wasGeneratedBy, extractor))
    return g


def write_rdf(kg: "KnowledgeGraph", folder: Path, rdf_format: str = "turtle") -> Path:
    """Serialise ``kg`` into ``folder/graph.ttl`` or ``folder/graph.nt``."""
    from kgllm.kg.store import rdf_file_name

    fmt = RDF_FORMATS.get(rdf_format)
    if fmt is None:
        raise ValueError(f"unknown RDF format {rdf_format!r}; choose one of {sorted(RDF_FORMATS)}")
    path = folder / rdf_file_name(fmt)
    to_rdflib(kg, kg.meta.get("base_iri", DEFAULT_BASE)).serialize(destination=str(path), format=fmt, encoding="utf-8")
    return path


def load_rdf(folder: str | Path) -> "rdflib.Graph":
    """Parse a KG folder's RDF file; a malformed file raises an error naming it."""
    from rdflib import Graph

    from kgllm.errors import KGFormatError
    from kgllm.kg.store import _read_meta

    folder = Path(folder)
    name = _read_meta(folder).get("rdf_file") or next(
        (n for n in ("graph.ttl", "graph.nt") if (folder / n).exists()), "graph.ttl")
    path = folder / name
    if not path.is_file():
        raise KGFormatError(f"{path}: RDF file missing")
    g = Graph()
    try:
        g.parse(str(path), format="nt" if path.suffix == ".nt" else "turtle")
    except Exception as exc:  # rdflib raises many parser-specific types
        raise KGFormatError(f"{path}: malformed RDF ({type(exc).__name__}: {exc})") from exc
    return g
