"""SPARQL over a KG folder's RDF (the model is :mod:`kgllm.kg.graph.rdf`'s).

Two stores answer queries through rdflib's API: ``oxigraph`` (oxrdflib; the folder's on-disk
store ``oxigraph/``, or one bulk-loaded once into the cache from the RDF file) and ``memory``
(rdflib's own, parses the exported file). Text from documents only ever reaches a query as a
bound :class:`rdflib.Literal` (rdflib ``initBindings``; pyoxigraph ``substitutions`` in the
Oxigraph store), never spliced into the query string. ``SERVICE`` and ``FROM`` are refused unless
allowed, and :func:`query_folder` bounds a query's time and result size.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from kgllm.kg.graph.folder import rdf_file
from kgllm.kg.graph.rdf import STORE_DIR, STORES, add_parsed, prefixes
from kgllm.util.errors import KGFormatError

if TYPE_CHECKING:  # pragma: no cover
    import rdflib

CACHE_MARKER = "kgllm-oxigraph-cache.json"  # written last: a cache entry without it is incomplete
CACHE_VERSION = 1


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

    from kgllm.util.paths import cache_dir

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
