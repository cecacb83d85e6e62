"""Example SPARQL queries over a KG folder's RDF (``kgllm kg-query KG --example NAME``).

Each is written against the RDF model of :mod:`kgllm.kg.graph.rdf` and answers in well under a second
on ``lama_all`` (47k entities, 44k edges) in the Oxigraph store; values from the user (an entity's
label) reach the query only as bound variables (``--bind``), never as query text. Each UNION branch repeats the bound patterns: Oxigraph's planner then
starts every branch from the bound entities (one shared prefix made "paths" 5 s instead of 1 ms).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExampleQuery:
    """A shipped SPARQL query: what it answers, its text and the variables the user binds."""

    description: str
    sparql: str
    binds: tuple[str, ...] = ()  # variables the user binds with --bind VAR=TEXT


EXAMPLES: dict[str, ExampleQuery] = {
    "triples": ExampleQuery(
        "labelled (head, relation, tail) edges",
        """SELECT ?head ?relation ?tail WHERE {
  ?r rdfs:label ?relation .
  ?h ?r ?t .
  ?h rdfs:label ?head .
  ?t rdfs:label ?tail .
}"""),
    "neighbourhood": ExampleQuery(
        "every edge of the entities labelled NAME, both directions, with the document and sentence "
        "each came from: one row per occurrence (--bind name=NAME; the label as written in the KG)",
        """SELECT ?name ?direction ?relation ?other ?doc ?sentence WHERE {
  ?e rdfs:label ?name .
  { ?st rdf:subject ?e ; rdf:object ?o . BIND("out" AS ?direction) }
  UNION
  { ?st rdf:object ?e ; rdf:subject ?o . BIND("in" AS ?direction) }
  ?st rdf:predicate ?r ; prov:wasDerivedFrom ?doc .
  ?r rdfs:label ?relation .
  ?o rdfs:label ?other .
  OPTIONAL { ?st kgo:sentence ?sentence }
}""", ("name",)),
    "paths": ExampleQuery(
        "directed paths of one or two edges from the entity labelled SOURCE to the one labelled "
        "TARGET (--bind source=SOURCE --bind target=TARGET)",
        """SELECT ?source ?relation1 ?via ?relation2 ?target WHERE {
  {
    ?a rdfs:label ?source . ?b rdfs:label ?target .
    ?a ?r1 ?b . ?r1 rdfs:label ?relation1 .
  } UNION {
    ?a rdfs:label ?source . ?b rdfs:label ?target .
    ?a ?r1 ?x . ?x ?r2 ?b . ?x rdfs:label ?via .
    ?r1 rdfs:label ?relation1 . ?r2 rdfs:label ?relation2 .
  }
}""", ("source", "target")),
}


def example(name: str, bindings: dict[str, str]) -> str:
    """The SPARQL of example ``name``, after checking that every variable it needs is bound."""
    from kgllm.kg.sparql.local import QueryError

    if name not in EXAMPLES:
        raise QueryError(f"unknown example query {name!r}; choose one of {', '.join(EXAMPLES)}")
    missing = [v for v in EXAMPLES[name].binds if v not in bindings]
    if missing:
        raise QueryError(f"--example {name} needs " + " ".join(f"--bind {v}=TEXT" for v in missing))
    return EXAMPLES[name].sparql
