"""RDF view of a :class:`~kgllm.kg.store.KnowledgeGraph`: writing, stores, SPARQL.

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

Writing goes through pyoxigraph (Rust; it escapes every term). Two stores answer
queries through rdflib's API: ``memory`` (rdflib's own, parses the exported file) and
``oxigraph`` (oxrdflib; an on-disk store folder ``oxigraph/`` beside the export, opened
without parsing). Text from documents only ever reaches a query as a bound
:class:`rdflib.Literal` (rdflib ``initBindings``; pyoxigraph ``substitutions`` in the Oxigraph
store), never spliced into the query string. ``SERVICE`` and ``FROM`` are refused unless allowed,
and :func:`query_folder` bounds a query's time and result size.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Mapping
from urllib.parse import quote

from rdflib.namespace import PROV, RDF, RDFS, SKOS, XSD

from kgllm.errors import KGFormatError
from kgllm.kg.folder import RDF_FILE, rdf_file

if TYPE_CHECKING:  # pragma: no cover
    import pyoxigraph
    import rdflib

    from kgllm.kg.store import KnowledgeGraph

DEFAULT_BASE = "https://w3id.org/kgllm/"
ONTOLOGY = "https://w3id.org/kgllm/ontology#"
RDF_NS, RDFS_NS, XSD_NS, SKOS_NS, PROV_NS = (str(ns) for ns in (RDF, RDFS, XSD, SKOS, PROV))  # rdflib's own
#: format name -> (file name, pyoxigraph format attribute, rdflib format for the memory store)
RDF_FORMATS = {"turtle": (RDF_FILE["turtle"], "TURTLE", "turtle"), "nt": (RDF_FILE["nt"], "N_TRIPLES", "nt")}
ALIASES = {"ttl": "turtle", "ntriples": "nt", "n-triples": "nt"}
STORES = ("memory", "oxigraph")
STORE_DIR = "oxigraph"
CACHE_MARKER = "kgllm-oxigraph-cache.json"  # written last: a cache entry without it is incomplete
CACHE_VERSION = 1


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


def cached_store(folder: str | Path) -> Path:
    """An on-disk Oxigraph store of a KG folder's RDF file, bulk-loaded once into the kgllm cache
    (``$KGLLM_CACHE/oxigraph/``) and reused until the file changes (keyed by its path, size, inode
    and modification time). The folder itself is never written. A store of an older version of the
    same file is removed when its successor is built (only stores this function wrote)."""
    import hashlib
    import json
    import os
    import shutil
    import tempfile

    import pyoxigraph as ox

    from kgllm.paths import cache_dir

    path = rdf_file(Path(folder))
    if not path.is_file():
        raise KGFormatError(f"{path}: RDF file missing")
    st = path.stat()
    source = str(path.resolve())
    key = hashlib.sha256(json.dumps([CACHE_VERSION, source, st.st_size, st.st_ino, st.st_mtime_ns])
                         .encode()).hexdigest()[:24]
    root = cache_dir() / "oxigraph"
    root.mkdir(parents=True, exist_ok=True)
    target = root / key
    if (target / CACHE_MARKER).is_file():
        return target / "store"
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
    try:
        db = ox.Store(str(tmp / "store"))
        fmt = ox.RdfFormat.N_TRIPLES if path.suffix == ".nt" else ox.RdfFormat.TURTLE
        try:
            db.bulk_load(path=str(path), format=fmt)
        except (SyntaxError, ValueError, OSError) as exc:  # pyoxigraph's parse errors are SyntaxError
            raise KGFormatError(f"{path}: malformed RDF ({type(exc).__name__}: {exc})") from exc
        db.flush()
        del db  # closes the store (RocksDB keeps a lock until then)
        (tmp / CACHE_MARKER).write_text(json.dumps({"source": source, "size": st.st_size,
                                                     "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}))
        try:
            os.rename(tmp, target)
        except OSError:  # another process built the same store first: use theirs
            if not (target / CACHE_MARKER).is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    for old in root.iterdir():  # stores of earlier versions of this same file (written here, marker checked)
        marker = old / CACHE_MARKER
        if old != target and marker.is_file():
            try:
                if json.loads(marker.read_text()).get("source") == source:
                    shutil.rmtree(old, ignore_errors=True)
            except (OSError, ValueError):
                continue
    return target / "store"


def _oxigraph_graph(store_dir: Path) -> "rdflib.Graph":
    import pyoxigraph as ox
    from oxrdflib import OxigraphStore
    from rdflib import Graph
    from rdflib.graph import DATASET_DEFAULT_GRAPH_ID

    try:  # read-only: any number of readers, no lock held; the triples live in the default graph
        store = OxigraphStore(store=ox.Store.read_only(str(store_dir)))
        return Graph(store=store, identifier=DATASET_DEFAULT_GRAPH_ID)
    except OSError as exc:
        raise KGFormatError(f"{store_dir}: cannot open the Oxigraph store ({exc})") from exc


def open_graph(folder: str | Path, store: str = "auto") -> "rdflib.Graph":
    """An rdflib Graph over a KG folder's RDF. ``auto`` (and ``oxigraph``): the folder's on-disk
    Oxigraph store if it has one, else one bulk-loaded once into the cache (:func:`cached_store`);
    ``memory``: the exported file parsed into rdflib's memory store (pure Python, slow on large KGs)."""
    from rdflib import Graph

    folder = Path(folder)
    if store not in ("auto", *STORES):
        raise ValueError(f"unknown RDF store {store!r}; choose auto, memory or oxigraph")
    if store in ("auto", "oxigraph"):
        if (folder / STORE_DIR).is_dir():
            return _oxigraph_graph(folder / STORE_DIR)
        return _oxigraph_graph(cached_store(folder))
    path = rdf_file(folder)
    if not path.is_file():
        raise KGFormatError(f"{path}: RDF file missing")
    fmt = "N_TRIPLES" if path.suffix == ".nt" else "TURTLE"
    g = Graph()
    try:  # pyoxigraph's parser (linear time)
        add_parsed(g, path, fmt)
    except Exception as exc:  # parsers raise many types
        raise KGFormatError(f"{path}: malformed RDF ({type(exc).__name__}: {exc})") from exc
    for prefix, iri in prefixes().items():
        g.bind(prefix, iri)
    return g


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


def load_rdf(folder: str | Path) -> "rdflib.Graph":
    """The KG folder's RDF in rdflib's memory store."""
    return open_graph(folder, "memory")


DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_ROWS = 10_000


class QueryError(KGFormatError):
    """A SPARQL query is malformed, refused (``SERVICE``, ``FROM``), too slow or interrupted."""


def _algebra_names(node, found: set) -> set:
    """Names of every algebra operator in an rdflib query tree (``ServiceGraphPattern``, ...)."""
    from pyparsing import ParseResults
    from rdflib.plugins.sparql.parserutils import CompValue

    if isinstance(node, CompValue):
        found.add(node.name)
        for value in node.values():
            _algebra_names(value, found)
    elif isinstance(node, (list, tuple, ParseResults)):
        for value in node:
            _algebra_names(value, found)
    return found


_PARSE_LOCK = threading.Lock()


def parse_query(sparql: str):
    """rdflib's SPARQL 1.1 parse tree; serialised by a lock, since rdflib's parser (pyparsing) is not
    thread-safe (concurrent parses fail with spurious errors)."""
    from rdflib.plugins.sparql.parser import parseQuery

    with _PARSE_LOCK:
        return parseQuery(sparql)


def check_query(sparql: str, allow_service: bool = False) -> None:
    """Parse ``sparql`` (SPARQL 1.1) and refuse what would contact other hosts: ``SERVICE`` and
    dataset clauses (``FROM``/``FROM NAMED``: rdflib loads those IRIs over the network), unless
    ``allow_service``. Updates are refused by the parser (this is the query grammar)."""
    try:
        parsed = parse_query(sparql)
    except Exception as exc:  # pyparsing's ParseException and friends
        raise QueryError(f"SPARQL syntax error: {str(exc).splitlines()[0][:200]}") from exc
    names = _algebra_names(parsed, set())
    if allow_service:
        return
    if "ServiceGraphPattern" in names:
        raise QueryError("SERVICE is refused: it sends bound values to another host; pass --allow-service to "
                         "permit federated queries")
    if names & {"DatasetClause"}:
        raise QueryError("FROM / FROM NAMED are refused: rdflib would fetch those IRIs; query the KG's own graph "
                         "(or pass --allow-service)")


def check_bindings(sparql: str, bindings: Mapping[str, str] | None) -> None:
    """Refuse a binding whose variable the query never mentions (a typo would otherwise bind
    nothing, and the query return every row on one store and an error on another)."""
    import re

    for name in bindings or {}:
        if not name.isidentifier():
            raise QueryError(f"bad SPARQL variable name {name!r} in a binding")
        if not re.search(rf"[?$]{re.escape(name)}(?![\w\u00b7\u0300-\u036f\u203f-\u2040])", sparql):
            raise QueryError(f"--bind {name}: the query has no variable ?{name}")


def _terms(bindings: Mapping[str, str] | None) -> dict:
    from rdflib import Literal, Variable

    out = {}
    for name, value in (bindings or {}).items():
        if not name.isidentifier():
            raise QueryError(f"bad SPARQL variable name {name!r} in a binding")
        out[Variable(name)] = Literal(str(value))
    return out


def query(graph: "rdflib.Graph", sparql: str, bindings: Mapping[str, str] | None = None,
          max_rows: int | None = DEFAULT_MAX_ROWS, allow_service: bool = False) -> list[dict]:
    """Run SPARQL with ``bindings`` (variable -> string literal) passed as bound parameters:
    rdflib's ``initBindings``, which the Oxigraph store turns into pyoxigraph ``substitutions``;
    the values never become query text. At most ``max_rows`` solutions are returned.

    Returns one dict per solution (variable -> Python value or IRI string).
    """
    import rdflib.plugins.sparql as rdflib_sparql
    from rdflib import Literal

    check_query(sparql, allow_service)
    check_bindings(sparql, bindings)
    rdflib_sparql.SPARQL_LOAD_GRAPHS = allow_service  # rdflib's own switch for fetching FROM graphs
    init = _terms(bindings)
    try:
        result = graph.query(sparql, initNs=prefixes(), initBindings=init)
        kind = result.type
    except Exception as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "SELECT projection" in msg:
            msg += " (the Oxigraph store binds only variables the SELECT lists: add them, or use --store memory)"
        raise QueryError(f"SPARQL error: {type(exc).__name__}: {msg[:300]}") from exc
    if kind == "ASK":
        return [{"ask": bool(result.askAnswer)}]
    rows = []
    for item in result:
        if max_rows is not None and len(rows) >= max_rows:
            break
        if kind != "SELECT":
            s, p, o = item
            rows.append({"s": str(s), "p": str(p), "o": str(o)})
        else:
            rows.append({str(v): (None if item[v] is None else item[v].toPython() if isinstance(item[v], Literal)
                                  else str(item[v])) for v in result.vars})
    return rows


def _query_worker(conn, folder: str, store: str, sparql: str, bindings: dict, max_rows, allow_service) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and ends this process
    try:  # Linux: die with the parent, so no orphaned query keeps running (or holds the terminal's pipes)
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    try:
        conn.send(("ok", query(open_graph(folder, store), sparql, bindings, max_rows, allow_service)))
    except BaseException as exc:  # reported to the parent as a one-line error
        conn.send(("error", f"{exc}" if isinstance(exc, KGFormatError) else f"{type(exc).__name__}: {exc}"))


def query_folder(folder: str | Path, sparql: str, bindings: Mapping[str, str] | None = None, store: str = "auto",
                 timeout: float | None = DEFAULT_TIMEOUT, max_rows: int | None = DEFAULT_MAX_ROWS,
                 allow_service: bool = False) -> list[dict]:
    """:func:`query` over a KG folder in a child process that is killed after ``timeout`` seconds
    or on Ctrl-C: neither rdflib nor the Oxigraph store can stop a running query themselves."""
    import multiprocessing as mp

    check_query(sparql, allow_service)  # syntax and refusals answered at once, without a process
    check_bindings(sparql, bindings)
    if timeout is not None and not (0 < timeout < 1e7):
        raise QueryError(f"--timeout must be a positive number of seconds below 10^7, got {timeout:g}")
    if store in ("auto", "oxigraph") and not (Path(folder) / STORE_DIR).is_dir():
        # built here, not in the child: pyoxigraph's bulk loader runs on a thread pool, and a pool
        # made by an earlier load in this process has no threads in a forked child (it would hang)
        cached_store(folder)
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_query_worker, daemon=True,
                       args=(send, str(folder), store, sparql, dict(bindings or {}), max_rows, allow_service))
    try:
        proc.start()
        send.close()
        if not recv.poll(timeout):
            raise QueryError(f"{folder}: query stopped after the {timeout:g} s timeout (--timeout)")
        status, payload = recv.recv()
    except EOFError:
        raise QueryError(f"{folder}: the query process died (exit code {proc.exitcode})") from None
    finally:
        if proc.pid is not None and proc.is_alive():
            proc.kill()
        if proc.pid is not None:
            proc.join()
        recv.close()
    if status != "ok":
        raise QueryError(payload)
    return payload
