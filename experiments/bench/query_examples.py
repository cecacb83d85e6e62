"""Time the shipped SPARQL examples (``kgllm kg-query --example``) on a KG folder.

    python experiments/bench/query_examples.py graphs/lama_all [--bind name=Paris] [--repeat 3]

Builds (or reuses) the cached Oxigraph store, then times opening it and each example in this
process (the CLI adds its own start-up, about 0.3 s). Bindings default to the best-connected
entity's label and a two-edge path found in the KG. Prints one line per query: rows and seconds
(the best of ``--repeat``).
"""

from __future__ import annotations

import argparse
import time


def _defaults(graph) -> dict[str, str]:
    from kgllm.kg.sparql.local import query

    hub = query(graph, """SELECT ?name (COUNT(*) AS ?n) WHERE { ?e rdfs:label ?name . ?st rdf:object ?e }
                           GROUP BY ?name ORDER BY DESC(?n) LIMIT 1""", max_rows=1)
    path = query(graph, """SELECT ?a ?b WHERE { ?x rdfs:label ?a . ?x ?p ?y . ?p rdfs:label ?pl .
                           ?y ?q ?z . ?q rdfs:label ?ql . ?z rdfs:label ?b } LIMIT 1""", max_rows=1)
    out = {"name": hub[0]["name"] if hub else ""}
    if path:
        out.update(source=path[0]["a"], target=path[0]["b"])
    return out


def main(argv=None) -> int:
    from kgllm.kg.sparql.queries import EXAMPLES
    from kgllm.kg.sparql.local import cached_store, open_graph, query

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kg_dir")
    p.add_argument("--bind", action="append", default=[], metavar="VAR=TEXT")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--max-rows", type=int, default=1000)
    a = p.parse_args(argv)
    start = time.perf_counter()
    cached_store(a.kg_dir)
    print(f"cache store ready: {time.perf_counter() - start:.2f} s (built once, then reused)")
    start = time.perf_counter()
    graph = open_graph(a.kg_dir)
    print(f"open: {time.perf_counter() - start:.2f} s")
    binds = {**_defaults(graph), **dict(b.split("=", 1) for b in a.bind)}
    for name, ex in EXAMPLES.items():
        values = {v: binds[v] for v in ex.binds}
        best, rows = float("inf"), []
        for _ in range(a.repeat):
            start = time.perf_counter()
            rows = query(graph, ex.sparql, values, max_rows=a.max_rows)
            best = min(best, time.perf_counter() - start)
        print(f"{name} {values}: {len(rows)} rows, {best:.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
