"""Graph statistics with networkx."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx

    from kgllm.kg.store import KnowledgeGraph


def to_networkx(kg: "KnowledgeGraph") -> "nx.MultiDiGraph":
    """Nodes are entity ids (with ``label``/``type``); one edge per (head, relation, tail) with ``relation``."""
    import networkx as nx

    g = nx.MultiDiGraph()
    g.add_nodes_from((i, {"label": e.label, "type": e.etype}) for i, e in enumerate(kg.entities))
    g.add_edges_from((h, t, {"relation": kg.relations[r]}) for h, r, t in kg.edges)
    return g


def kg_stats(kg: "KnowledgeGraph", top: int = 10) -> dict:
    """Counts, weakly connected components, degree summary, top PageRank entities, relation frequencies."""
    import networkx as nx

    g = to_networkx(kg)
    comps = sorted((len(c) for c in nx.weakly_connected_components(g)), reverse=True)
    degrees = [d for _, d in g.degree()]
    simple = nx.DiGraph(g)
    pr = nx.pagerank(simple) if simple.number_of_edges() else {}
    rel = Counter(kg.relations[r] for _, r, _ in kg.edges)
    return {
        "nodes": g.number_of_nodes(), "edges": g.number_of_edges(), "relations": kg.num_relations,
        "components": len(comps), "largest_component": comps[0] if comps else 0,
        "isolated_nodes": sum(d == 0 for d in degrees),
        "mean_degree": sum(degrees) / max(len(degrees), 1), "max_degree": max(degrees, default=0),
        "degree_histogram": Counter(degrees),
        "top_pagerank": [(kg.entities[n].label, round(s, 5)) for n, s in
                         sorted(pr.items(), key=lambda x: -x[1])[:top]],
        "top_relations": rel.most_common(top),
    }


def format_stats(stats: dict) -> str:
    lines = [f"nodes {stats['nodes']}  edges {stats['edges']}  relations {stats['relations']}",
             f"components {stats['components']} (largest {stats['largest_component']}, "
             f"isolated nodes {stats['isolated_nodes']})",
             f"degree mean {stats['mean_degree']:.2f}  max {stats['max_degree']}", "", "top entities by PageRank:"]
    lines += [f"  {s:.5f}  {label}" for label, s in stats["top_pagerank"]]
    lines += ["", "most frequent relations:"]
    lines += [f"  {n:6d}  {name}" for name, n in stats["top_relations"]]
    return "\n".join(lines)
