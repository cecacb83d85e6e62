"""Load test of ``serve-kg``: concurrent clients running a fixed mix of SPARQL queries on loopback.

The mix, with entity labels drawn (seeded) from the KG: ``lookup`` (entity by label),
``provenance`` (documents, sentences and spans of an entity's statements, LIMIT 100) and
``two_hop`` (entities two edges away, LIMIT 200). For each number of clients (threads, each with
its own connection) every client runs the mix in turn until it has sent ``--queries`` queries or
``--seconds`` have passed. Reports queries/s, p50 and p99 latency per query kind, and errors;
Each query kind is checked once through ``kg-query --endpoint``'s
client; the load itself skips that client's rdflib parse (serialised by a lock, it would cap the
rate at the client). Then the same mix through rdflib's in-memory store (``kgllm.kg.sparql.local.query`` on
the parsed RDF file), one client in a child process stopped after ``--rdflib-seconds`` (rdflib
cannot interrupt a query). Bounded in count and time; the server binds 127.0.0.1 only.

Run:  .venv/bin/python experiments/bench/bench_sparql_load.py graphs/lama_all [--clients 4,16,64]
          [--seconds 20] [--queries 200] [--json results/bench_sparql_load.json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

QUERIES = {
    "lookup": "SELECT ?e WHERE { ?e rdfs:label ?name }",
    "provenance": "SELECT ?doc ?sent ?start WHERE { ?e rdfs:label ?name . ?st rdf:subject ?e ; "
                  "prov:wasDerivedFrom ?doc ; kgo:sentence ?sent ; kgo:charStart ?start } LIMIT 100",
    "two_hop": "SELECT DISTINCT ?y WHERE { ?e rdfs:label ?name . ?e ?p ?x . ?x a kgo:Entity . ?x ?q ?y . "
               "?y a kgo:Entity } LIMIT 200",
}


def labels(kg_dir: Path, n: int, seed: int) -> list[str]:
    from kgllm.kg.graph.store import KnowledgeGraph

    kg = KnowledgeGraph.load(kg_dir)
    ends = sorted({h for h, _, _ in kg.edges} | {t for _, _, t in kg.edges})
    rng = random.Random(seed)
    return [kg.entities[i].label for i in rng.sample(ends, min(n, len(ends)))]


def run_level(run_query, clients: int, names: list[str], seconds: float, per_client: int) -> dict:
    lat: dict[str, list[float]] = {k: [] for k in QUERIES}
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(c: int) -> None:
        kinds = list(QUERIES)
        for i in range(per_client):
            if time.monotonic() > deadline:
                return
            kind = kinds[(c + i) % len(kinds)]
            name = names[(c * 7919 + i) % len(names)]
            start = time.perf_counter()
            try:
                run_query(QUERIES[kind], {"name": name})
                ok = True
            except Exception as exc:  # noqa: BLE001 - counted and reported
                ok = False
                err = f"{kind}: {type(exc).__name__}: {str(exc)[:120]}"
            took = time.perf_counter() - start
            with lock:
                if ok:
                    lat[kind].append(took)
                else:
                    errors.append(err)

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    wall = time.perf_counter() - start
    done = sum(len(v) for v in lat.values())
    row = {"clients": clients, "queries": done, "errors": len(errors), "seconds": round(wall, 2),
           "qps": round(done / wall, 1), "error_examples": errors[:3]}
    for kind, vals in lat.items():
        if vals:
            q = statistics.quantiles(vals, n=100) if len(vals) > 1 else [vals[0]] * 99
            row[f"{kind}_p50_ms"] = round(statistics.median(vals) * 1000, 1)
            row[f"{kind}_p99_ms"] = round(q[98] * 1000, 1)
    return row


def _rdflib_child(kg_dir: str, names: list[str], per_kind: int, out) -> None:
    from kgllm.kg.sparql.local import open_graph, query

    start = time.perf_counter()
    graph = open_graph(kg_dir, "memory")
    out.put(("parsed", time.perf_counter() - start))
    for i in range(per_kind):
        for kind, q in QUERIES.items():
            t = time.perf_counter()
            query(graph, q, {"name": names[i % len(names)]})
            out.put((kind, time.perf_counter() - t))


def rdflib_rows(kg_dir: Path, names: list[str], seconds: float, per_kind: int) -> list[dict]:
    """The same mix through rdflib's in-memory store, one client (rdflib's SPARQL engine is not
    thread-safe and holds the GIL), in a child process stopped after ``seconds``: a query rdflib
    cannot finish in time is reported as unfinished instead of hanging the benchmark."""
    import multiprocessing as mp
    import queue as _queue

    ctx = mp.get_context("fork")
    out = ctx.Queue()
    proc = ctx.Process(target=_rdflib_child, args=(str(kg_dir), names, per_kind, out), daemon=True)
    proc.start()
    lat: dict[str, list[float]] = {k: [] for k in QUERIES}
    parsed, deadline, started = None, None, time.monotonic()
    t0 = last = started
    while True:
        limit = (deadline or started + 600) - time.monotonic()
        try:
            kind, value = out.get(timeout=max(limit, 0.01))
        except _queue.Empty:
            break
        if kind == "parsed":
            parsed, deadline, t0 = value, time.monotonic() + seconds, time.monotonic()
        else:
            lat[kind].append(value)
            last = time.monotonic()
        if not proc.is_alive() and out.empty():
            break
    unfinished = proc.is_alive()
    proc.kill()
    proc.join()
    done = sum(len(v) for v in lat.values())
    wall = (time.monotonic() if unfinished else last) - t0
    row = {"backend": "rdflib memory store (in process, 1 client)", "clients": 1, "queries": done, "errors": 0,
           "seconds": round(wall, 2), "qps": round(done / max(wall, 1e-9), 2), "parse_seconds": round(parsed or 0, 3),
           "unfinished_query_at_deadline": unfinished}
    for kind, vals in lat.items():
        if vals:
            row[f"{kind}_p50_ms"] = round(statistics.median(vals) * 1000, 1)
            row[f"{kind}_p99_ms"] = round(max(vals) * 1000, 1) if len(vals) < 100 else \
                round(statistics.quantiles(vals, n=100)[98] * 1000, 1)
    return [row]


def main(argv=None) -> int:
    import urllib.request

    from kgllm.kg.sparql.endpoint import DEFAULT_MAX_BYTES, _prologue, _request, query_endpoint, with_bindings
    from kgllm.kg.sparql.server import serve

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kg_dir")
    p.add_argument("--clients", default="4,16,64")
    p.add_argument("--seconds", type=float, default=20, help="time bound per level")
    p.add_argument("--queries", type=int, default=200, help="queries per client per level")
    p.add_argument("--rdflib-seconds", type=float, default=60, help="time bound of the rdflib comparison")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    kg_dir = Path(a.kg_dir)
    names = labels(kg_dir, 500, a.seed)
    rows = []
    with serve(kg_dir, timeout=30) as url:
        for q in QUERIES.values():  # each query checked once through kg-query's client (parse, refusals) ...
            query_endpoint(url, q, {"name": names[0]}, timeout=30)

        def remote(q: str, b: dict) -> list:  # ... then sent as kg-query sends it, minus rdflib's parse
            full = with_bindings(_prologue() + q, b)
            req = urllib.request.Request(url + "/query", data=full.encode(), method="POST",
                                         headers={"Content-Type": "application/sparql-query; charset=utf-8",
                                                  "Accept": "application/sparql-results+json"})
            return json.loads(_request(req, 30, DEFAULT_MAX_BYTES, retry=True)[0])["results"]["bindings"]

        for clients in (int(c) for c in a.clients.split(",")):
            row = {"backend": "serve-kg (Oxigraph server)", **run_level(remote, clients, names, a.seconds, a.queries)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    for row in rdflib_rows(kg_dir, names, a.rdflib_seconds, a.queries):
        rows.append(row)
        print(json.dumps(row), flush=True)
    kinds = list(QUERIES)
    print("\n| backend | clients | queries/s | errors | " + " | ".join(f"{k} p50 / p99 ms" for k in kinds) + " |")
    print("|---|---|---|---|" + "---|" * len(kinds))
    for r in rows:
        cells = [f"{r.get(k + '_p50_ms', '–')} / {r.get(k + '_p99_ms', '–')}" for k in kinds]
        print(f"| {r['backend']} | {r['clients']} | {r['qps']} | {r['errors']} | " + " | ".join(cells) + " |")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps({"kg": str(kg_dir), "rows": rows},
                                           indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
