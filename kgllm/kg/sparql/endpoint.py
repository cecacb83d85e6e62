"""A client for any SPARQL 1.1 endpoint (Oxigraph, Fuseki, GraphDB, Virtuoso): ``kg-query
--endpoint`` and ``kg-push``.

* Queries go out by the SPARQL 1.1 Protocol (POST ``application/sparql-query``). The protocol has no
  parameter binding, so ``--bind`` values are added as a trailing ``VALUES`` block whose literals
  pyoxigraph serialises (quotes, backslashes and newlines escaped); the whole query is then parsed
  again, and ``SERVICE``/``FROM`` are refused unless allowed, as for local queries.
* Only ``http``/``https`` URLs, no redirects (a redirect would contact another host), a time limit
  on the whole exchange (``timeout``), and at most ``max_bytes`` of response and ``max_rows`` rows.
* One bounded pool of keep-alive connections per process (urllib3, :data:`POOL_SIZE` per host);
  a query is retried after a 5xx answer or a reset connection (:data:`RETRIES`, exponential
  backoff within the deadline); updates and Graph Store POSTs are never retried.
* ``push`` loads a KG's RDF into a named graph through the SPARQL 1.1 Graph Store HTTP Protocol in
  batches, into a temporary graph first, then ``MOVE``s it onto the target graph in one update; on
  any failure the temporary graph is dropped and the target graph is left as it was.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Iterable, Iterator, Mapping
from urllib.parse import quote, urlsplit

from kgllm.kg.graph.rdf import prefixes

from kgllm.kg.sparql.local import DEFAULT_MAX_ROWS, DEFAULT_TIMEOUT, QueryError, check_bindings, check_query, parse_query

DEFAULT_MAX_BYTES = 64 * 1024 * 1024


#: connections kept open per host (HTTP keep-alive); more concurrent requests wait for one
POOL_SIZE = 32
#: retries of an idempotent request (a query) after a 5xx answer or a reset connection
RETRIES = 3
BACKOFF = 0.1  # seconds before the first retry, doubled each time (never past the deadline)
_POOL = None
_POOL_LOCK = threading.Lock()


def _pool():
    """One bounded urllib3 pool per process: keep-alive connections, no redirects, no retries of its own
    (``_request`` decides what may be retried)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            import urllib3

            _POOL = urllib3.PoolManager(num_pools=16, maxsize=POOL_SIZE, block=True, retries=False)
        return _POOL


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise QueryError(f"{url!r}: an endpoint must be an http(s) URL")
    return url


def query_url(endpoint: str) -> str:
    """The query service of ``endpoint``: a server root (``http://127.0.0.1:7878``) gets Oxigraph's
    ``/query``; any other path is used as given (Fuseki ``/ds/sparql``, GraphDB ``/repositories/x``)."""
    _check_url(endpoint)
    return endpoint.rstrip("/") + "/query" if urlsplit(endpoint).path in ("", "/") else endpoint


def with_bindings(sparql: str, bindings: Mapping[str, str] | None) -> str:
    """``sparql`` with a trailing ``VALUES`` block binding each variable to a string literal."""
    from pyoxigraph import Literal

    if not bindings:
        return sparql
    names = list(bindings)
    for name in names:
        if not name.isidentifier():
            raise QueryError(f"bad SPARQL variable name {name!r} in a binding")
    row = " ".join(str(Literal(str(bindings[n]))) for n in names)  # N-Triples escaping: one-line, quoted
    return f"{sparql}\nVALUES ({' '.join('?' + n for n in names)}) {{ ({row}) }}"


def _prologue() -> str:
    return "".join(f"PREFIX {k}: <{v}>\n" for k, v in prefixes().items())


def _set_socket_timeout(resp, seconds: float) -> None:
    """Bound the next ``recv`` of ``resp`` to ``seconds`` (urllib's ``timeout`` applies per read, so
    a server trickling one byte at a time would otherwise never hit the overall deadline)."""
    sock = getattr(getattr(getattr(resp, "fp", None), "raw", None), "_sock", None)
    if sock is not None:
        sock.settimeout(max(seconds, 0.001))


def _request(req: urllib.request.Request, timeout: float, max_bytes: int,
             retry: bool = False) -> tuple[bytes, str]:
    """Send ``req`` through the pooled client; the whole exchange (waiting for a connection,
    connect, headers, every byte of the body, retries included) ends within ``timeout`` seconds,
    and the body is at most ``max_bytes``. With ``retry`` (idempotent requests only: queries),
    a 5xx answer or a reset connection is tried again up to :data:`RETRIES` times with
    exponential backoff; updates and Graph Store POSTs are never retried."""
    import urllib3
    from urllib3.exceptions import (ConnectTimeoutError, NewConnectionError, ProtocolError, ReadTimeoutError,
                                    TimeoutError as PoolTimeout)

    url, method, body = req.full_url, req.get_method(), req.data
    headers = dict(req.header_items())
    deadline = time.monotonic() + timeout

    def stop() -> QueryError:
        return QueryError(f"{url}: stopped after the {timeout:g} s timeout (--timeout)")

    def backoff(attempt: int) -> None:
        pause = BACKOFF * 2 ** (attempt - 1)
        if time.monotonic() + pause >= deadline:
            raise stop()
        time.sleep(pause)

    attempt = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise stop()
        resp = None
        try:
            resp = _pool().request(method, url, body=body, headers=headers, preload_content=False, redirect=False,
                                   retries=False, timeout=urllib3.Timeout(connect=left, read=left), pool_timeout=left)
            if 300 <= resp.status < 400:
                raise QueryError(f"{url}: the endpoint redirects to {resp.headers.get('Location', '?')}; kgllm does "
                                 "not follow redirects (they could send the query to another host): give the final URL")
            if resp.status >= 500 and retry and attempt < RETRIES:
                attempt += 1
                resp.close()
                backoff(attempt)
                continue
            if resp.status >= 400:
                _set_socket_timeout(resp._fp, max(deadline - time.monotonic(), 0.001))
                text = resp.read(2000).decode("utf-8", "replace").strip().splitlines()
                raise QueryError(f"{url}: HTTP {resp.status} {resp.reason}: {' '.join(text)[:300]}")
            chunks, size = [], 0
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise stop()
                _set_socket_timeout(resp._fp, left)  # a server trickling bytes still meets the deadline
                chunk = resp.read1(1 << 16)  # what has arrived, not a full 64 KiB
                if not chunk:
                    break
                size += len(chunk)
                if size > max_bytes:
                    raise QueryError(f"{url}: the response is over {max_bytes:,} bytes (--max-bytes); "
                                     "narrow the query or add LIMIT")
                chunks.append(chunk)
            out = b"".join(chunks), resp.headers.get("Content-Type", "")
            resp.release_conn()  # fully read: the connection goes back to the pool
            resp = None
            return out
        except (ReadTimeoutError, ConnectTimeoutError, PoolTimeout, TimeoutError):
            raise stop() from None
        except NewConnectionError as exc:
            raise QueryError(f"{url}: cannot reach the endpoint ({str(exc).split(': ', 1)[-1][:200]})") from None
        except ProtocolError as exc:
            cause = exc.args[1] if len(exc.args) > 1 else exc
            if isinstance(cause, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
                if retry and attempt < RETRIES:
                    attempt += 1
                    backoff(attempt)
                    continue
                raise QueryError(f"{url}: the endpoint closed the connection ({type(cause).__name__})") from None
            if time.monotonic() >= deadline or "timed out" in str(cause):
                raise stop() from None
            if isinstance(cause, http.client.HTTPException):
                raise QueryError(f"{url}: not an HTTP answer ({type(cause).__name__}: {str(cause)[:200]})") from None
            raise QueryError(f"{url}: cannot reach the endpoint ({cause})") from None
        except OSError as exc:
            if time.monotonic() >= deadline or "timed out" in str(exc):
                raise stop() from None
            raise QueryError(f"{url}: cannot reach the endpoint ({exc})") from None
        except http.client.HTTPException as exc:
            raise QueryError(f"{url}: not an HTTP answer ({type(exc).__name__}: {str(exc)[:200]})") from None
        finally:
            if resp is not None:
                resp.close()  # not fully read: never reused


def _value(term: dict):
    from rdflib import Literal, URIRef

    kind = term.get("type")
    if kind == "uri":
        return term["value"]
    if kind == "bnode":
        return "_:" + term["value"]
    dt = term.get("datatype")
    lit = Literal(term["value"], lang=term.get("xml:lang"), datatype=URIRef(dt) if dt else None)
    return lit.toPython()


def query_endpoint(endpoint: str, sparql: str, bindings: Mapping[str, str] | None = None,
                   timeout: float | None = DEFAULT_TIMEOUT, max_rows: int | None = DEFAULT_MAX_ROWS,
                   allow_service: bool = False, max_bytes: int = DEFAULT_MAX_BYTES) -> list[dict]:
    """Run ``sparql`` on a remote endpoint; rows as :func:`kgllm.kg.sparql.local.query` returns them."""
    check_bindings(sparql, bindings)
    full = with_bindings(_prologue() + sparql, bindings)
    check_query(full, allow_service)
    kind = parse_query(full)[1].name  # SelectQuery, AskQuery, ConstructQuery, DescribeQuery
    accept = "application/sparql-results+json" if kind in ("SelectQuery", "AskQuery") else "application/n-triples"
    req = urllib.request.Request(query_url(endpoint), data=full.encode("utf-8"), method="POST",
                                 headers={"Content-Type": "application/sparql-query; charset=utf-8",
                                          "Accept": accept})
    body, _ = _request(req, timeout or DEFAULT_TIMEOUT, max_bytes, retry=True)  # a query: idempotent
    if accept == "application/n-triples":
        import pyoxigraph as ox

        rows = [{"s": str(t.subject.value), "p": str(t.predicate.value), "o": str(t.object.value)}
                for t in ox.parse(input=body, format=ox.RdfFormat.N_TRIPLES)]
        return rows[:max_rows] if max_rows is not None else rows
    try:
        return _rows(json.loads(body), max_rows)
    except json.JSONDecodeError as exc:
        raise QueryError(f"{endpoint}: not a SPARQL JSON result ({exc.msg})") from None
    except RecursionError:
        raise QueryError(f"{endpoint}: not a SPARQL JSON result (nested too deeply)") from None
    except (AttributeError, TypeError, KeyError, ValueError) as exc:
        raise QueryError(f"{endpoint}: not a SPARQL JSON result ({type(exc).__name__}: {str(exc)[:200]})") from None


def _rows(data, max_rows: int | None) -> list[dict]:
    """Rows of a SPARQL 1.1 JSON result; a malformed one raises ``TypeError``/``KeyError``/...."""
    if not isinstance(data, dict):
        raise TypeError(f"a JSON {type(data).__name__}, not an object")
    if "boolean" in data:
        return [{"ask": bool(data["boolean"])}]
    names = [str(n) for n in data.get("head", {}).get("vars", [])]
    rows = []
    for b in data.get("results", {}).get("bindings", []):
        if max_rows is not None and len(rows) >= max_rows:
            break
        rows.append({n: (_value(b[n]) if n in b else None) for n in names})
    return rows


def _batches(kg_dir: Path, size: int) -> Iterator[bytes]:
    import pyoxigraph as ox

    from kgllm.kg.graph.folder import rdf_file

    source = rdf_file(kg_dir)
    if not source.is_file():
        from kgllm.util.errors import KGFormatError

        raise KGFormatError(f"{source}: RDF file missing")
    fmt = ox.RdfFormat.N_TRIPLES if source.suffix == ".nt" else ox.RdfFormat.TURTLE
    batch: list = []
    for quad in ox.parse(path=str(source), format=fmt):
        batch.append(ox.Triple(quad.subject, quad.predicate, quad.object))
        if len(batch) >= size:
            yield ox.serialize(batch, format=ox.RdfFormat.N_TRIPLES)
            batch = []
    if batch:
        yield ox.serialize(batch, format=ox.RdfFormat.N_TRIPLES)


def _update(url: str, text: str, timeout: float) -> None:
    req = urllib.request.Request(url, data=text.encode("utf-8"), method="POST",
                                 headers={"Content-Type": "application/sparql-update; charset=utf-8"})
    _request(req, timeout, DEFAULT_MAX_BYTES)


def push(kg_dir: str | Path, endpoint: str, graph: str, batch_size: int = 50_000, timeout: float = 300,
         store_url: str | None = None, update_url: str | None = None, progress: bool = True,
         batches: Iterable[bytes] | None = None) -> dict:
    """Load the KG folder's RDF into the named graph ``graph`` of ``endpoint`` (replacing what it
    held); Oxigraph's Graph Store endpoint ``/store`` and update endpoint ``/update`` unless given."""
    import pyoxigraph as ox
    from tqdm.auto import tqdm

    base = _check_url(endpoint).rstrip("/")
    store_url = _check_url(store_url or base + "/store")
    update_url = _check_url(update_url or base + "/update")
    for name, given in (("--endpoint", endpoint), ("--store-url", store_url), ("--update-url", update_url)):
        if urlsplit(given).query or urlsplit(given).fragment:
            raise QueryError(f"{name} {given!r}: has a query string or fragment; kgllm adds its own ?graph= "
                             "parameter, and a second one could name another graph (give the bare service URL)")
    try:
        target = ox.NamedNode(graph)  # validated: no spaces, quotes or angle brackets
    except ValueError as exc:
        raise QueryError(f"--graph {graph!r} is not an absolute IRI ({exc})") from None
    if not urlsplit(graph).scheme:
        raise QueryError(f"--graph {graph!r} is not an absolute IRI (it needs a scheme, e.g. https://...)")
    tmp = ox.NamedNode(f"urn:kgllm:push:{uuid.uuid4().hex}")
    sent = loaded = 0
    bar = tqdm(unit="batch", desc="kg-push", disable=not progress)
    try:
        for body in batches if batches is not None else _batches(Path(kg_dir), batch_size):
            req = urllib.request.Request(f"{store_url}?graph={quote(tmp.value, safe='')}", data=body, method="POST",
                                         headers={"Content-Type": "application/n-triples"})
            _request(req, timeout, DEFAULT_MAX_BYTES)
            sent += 1
            loaded += body.count(b"\n")
            bar.update(1)
        _update(update_url, f"MOVE SILENT {tmp} TO {target}", timeout)
    except BaseException:
        try:
            _update(update_url, f"DROP SILENT GRAPH {tmp}", min(timeout, 30))
        except QueryError:
            pass
        raise
    finally:
        bar.close()
    return {"graph": graph, "batches": sent, "triples": loaded}
