"""RDF view of a :class:`~kgllm.kg.store.KnowledgeGraph`: writing, stores, SPARQL.

Modelling (documented in the README):

* entity ``e`` is ``<base>entity/<id>`` with ``rdfs:label``, ``kgo:key``, ``kgo:type``,
  ``skos:altLabel`` (aliases), ``kgo:mentionCount`` and, where known, ``rdfs:comment``;
* relation ``r`` is ``<base>relation/<name>`` (name percent-encoded) with ``rdfs:label``;
* every edge is asserted directly: ``<entity/h> <relation/r> <entity/t>``;
* every occurrence of an edge is a reified ``rdf:Statement`` ``<base>statement/<n>`` with
  ``rdf:subject/predicate/object``, ``prov:wasDerivedFrom <base>doc/<doc id>``,
  ``kgo:sentence``, ``kgo:charStart``, ``kgo:charEnd``, ``kgo:confidence`` and
  ``prov:wasGeneratedBy`` the extractor.

Reification keeps provenance in a plain Turtle/N-Triples file and is queryable with
SPARQL 1.1 in any store (no RDF-star or quad store needed).

Writing goes through pyoxigraph (Rust; it escapes every term). Two stores answer
queries through rdflib's API: ``memory`` (rdflib's own, parses the exported file) and
``oxigraph`` (oxrdflib; an on-disk store folder ``oxigraph/`` beside the export, opened
without parsing). Text from documents only ever reaches a query as a bound
:class:`rdflib.Literal` (``initBindings``), never spliced into the query string.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Mapping
from urllib.parse import quote

from kgllm.errors import KGFormatError

if TYPE_CHECKING:  # pragma: no cover
    import pyoxigraph
    import rdflib

    from kgllm.kg.store import KnowledgeGraph

DEFAULT_BASE = "https://w3id.org/kgllm/"
ONTOLOGY = "https://w3id.org/kgllm/ontology#"
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS_NS = "http://www.w3.org/2000/01/rdf-schema#"
XSD_NS = "http://www.w3.org/2001/XMLSchema#"
SKOS_NS = "http://www.w3.org/2004/02/skos/core#"
PROV_NS = "http://www.w3.org/ns/prov#"
#: format name -> (file name, pyoxigraph format attribute, rdflib format for the memory store)
RDF_FORMATS = {"turtle": ("graph.ttl", "TURTLE", "turtle"), "nt": ("graph.nt", "N_TRIPLES", "nt")}
ALIASES = {"ttl": "turtle", "ntriples": "nt", "n-triples": "nt"}
STORES = ("memory", "oxigraph")
STORE_DIR = "oxigraph"


def prefixes(base: str = DEFAULT_BASE) -> dict[str, str]:
    return {"ent": base + "entity/", "rel": base + "relation/", "stmt": base + "statement/",
            "doc": base + "doc/", "kgo": ONTOLOGY, "prov": PROV_NS, "rdf": RDF_NS, "rdfs": RDFS_NS,
            "skos": SKOS_NS, "xsd": XSD_NS}


def rdf_format(name: str) -> str:
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
                                                "charEnd", "confidence")}
    alt = NamedNode(SKOS_NS + "altLabel")
    ents = [NamedNode(p["ent"] + str(i)) for i in range(kg.num_entities)]
    for node, e in zip(ents, kg.entities):
        yield Triple(node, a, kgo["Entity"])
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


def rdf_file(folder: Path) -> Path:
    from kgllm.kg.store import read_meta

    name = read_meta(folder).get("rdf_file")
    if not name:
        name = next((f for f, _, _ in RDF_FORMATS.values() if (folder / f).exists()), "graph.ttl")
    return folder / name


def open_graph(folder: str | Path, store: str = "auto") -> "rdflib.Graph":
    """An rdflib Graph over a KG folder's RDF: the on-disk Oxigraph store if the folder has one
    (``auto``/``oxigraph``), else the exported file parsed into rdflib's memory store."""
    from rdflib import Graph

    folder = Path(folder)
    if store not in ("auto", *STORES):
        raise ValueError(f"unknown RDF store {store!r}; choose auto, memory or oxigraph")
    if store in ("auto", "oxigraph") and (folder / STORE_DIR).is_dir():
        import pyoxigraph as ox
        from oxrdflib import OxigraphStore
        from rdflib.graph import DATASET_DEFAULT_GRAPH_ID

        try:  # read-only: any number of readers, no lock held; the triples live in the default graph
            store = OxigraphStore(store=ox.Store.read_only(str(folder / STORE_DIR)))
            return Graph(store=store, identifier=DATASET_DEFAULT_GRAPH_ID)
        except OSError as exc:
            raise KGFormatError(f"{folder / STORE_DIR}: cannot open the Oxigraph store ({exc})") from exc
    path = rdf_file(folder)
    if not path.is_file():
        raise KGFormatError(f"{path}: RDF file missing")
    if store == "oxigraph":
        from rdflib.graph import DATASET_DEFAULT_GRAPH_ID

        g = Graph(store="Oxigraph", identifier=DATASET_DEFAULT_GRAPH_ID)
        fmt = "ox-ntriples" if path.suffix == ".nt" else "ox-turtle"
    else:
        g = Graph()
        fmt = "nt" if path.suffix == ".nt" else "turtle"
    try:
        g.parse(str(path), format=fmt)
    except Exception as exc:  # parsers raise many types
        raise KGFormatError(f"{path}: malformed RDF ({type(exc).__name__}: {exc})") from exc
    for prefix, iri in prefixes().items():
        g.bind(prefix, iri)
    return g


def load_rdf(folder: str | Path) -> "rdflib.Graph":
    """The KG folder's RDF in rdflib's memory store."""
    return open_graph(folder, "memory")


def bind(sparql: str, bindings: Mapping[str, str] | None) -> str:
    """Append a SPARQL 1.1 ``VALUES`` clause binding each variable to a string literal.

    The literal is written by rdflib (``Literal.n3()``), which escapes quotes, backslashes and
    line breaks, so text from documents cannot change the query's structure. A trailing
    ``VALUES`` works the same in every store (Oxigraph only substitutes projected variables).
    """
    from rdflib import Literal

    if not bindings:
        return sparql
    for name in bindings:
        if not name.isidentifier():
            raise KGFormatError(f"bad SPARQL variable name {name!r}")
    names = " ".join(f"?{k}" for k in bindings)
    values = " ".join(Literal(str(v)).n3() for v in bindings.values())
    return f"{sparql}\nVALUES ({names}) {{ ({values}) }}"


def query(graph: "rdflib.Graph", sparql: str, bindings: Mapping[str, str] | None = None) -> list[dict]:
    """Run SPARQL with ``bindings`` (variable -> string literal, escaped by :func:`bind`).

    Returns one dict per solution (variable -> Python value or IRI string).
    """
    from rdflib import Literal

    try:
        result = graph.query(bind(sparql, bindings), initNs=prefixes())
    except Exception as exc:
        raise KGFormatError(f"SPARQL error: {type(exc).__name__}: {exc}") from exc
    if result.type == "ASK":
        return [{"ask": bool(result.askAnswer)}]
    if result.type != "SELECT":
        return [{"s": str(s), "p": str(p), "o": str(o)} for s, p, o in result]
    rows = []
    for row in result:
        rows.append({str(v): (None if row[v] is None else row[v].toPython() if isinstance(row[v], Literal)
                              else str(row[v])) for v in result.vars})
    return rows
