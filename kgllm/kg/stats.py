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


def find_entity(kg: "KnowledgeGraph", query: str) -> int:
    """Entity id by id number, exact key, or (normalised) label/alias; the most mentioned wins."""
    from kgllm.errors import KGFormatError
    from kgllm.kg.normalize import normalize_label

    if query.isdigit() and int(query) < kg.num_entities:
        return int(query)
    if query in kg.key_to_id:
        return kg.key_to_id[query]
    norm = normalize_label(query)
    hits = [i for i, e in enumerate(kg.entities) if norm in {normalize_label(a) for a in (e.label, *e.aliases)}]
    if not hits:
        raise KGFormatError(f"no entity matches {query!r} (by id, key, label or alias)")
    return max(hits, key=lambda i: kg.entities[i].count)


def plot_degree_distribution(stats: dict, path: str) -> str:
    """Log-log scatter of the degree distribution (nodes with degree >= 1)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hist = sorted((d, n) for d, n in stats["degree_histogram"].items() if d > 0)
    fig, ax = plt.subplots(figsize=(5, 4))
    if hist:
        ax.loglog([d for d, _ in hist], [n for _, n in hist], "o", markersize=4)
    ax.set_xlabel("degree (in + out)")
    ax.set_ylabel("number of nodes")
    ax.set_title(f"degree distribution ({stats['nodes']} nodes, {stats['edges']} edges)")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_neighbourhood(kg: "KnowledgeGraph", entity: int, path: str, hops: int = 1, max_nodes: int = 40) -> str:
    """Draw the ``hops``-neighbourhood of ``entity`` (at most ``max_nodes`` nodes, strongest first)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    g = to_networkx(kg)
    nodes = set(nx.ego_graph(g.to_undirected(as_view=True), entity, radius=hops))
    if len(nodes) > max_nodes:
        keep = sorted(nodes - {entity}, key=lambda n: (-g.degree(n), n))[: max_nodes - 1]
        nodes = {entity, *keep}
    sub = g.subgraph(nodes)
    pos = nx.spring_layout(sub, seed=0)
    fig, ax = plt.subplots(figsize=(9, 7))
    nx.draw_networkx_nodes(sub, pos, ax=ax, node_size=[500 if n == entity else 180 for n in sub],
                           node_color=["tab:red" if n == entity else "tab:blue" for n in sub], alpha=0.8)
    nx.draw_networkx_edges(sub, pos, ax=ax, alpha=0.4, arrows=True, arrowsize=8)
    nx.draw_networkx_labels(sub, pos, {n: kg.entities[n].label[:25] for n in sub}, font_size=7, ax=ax)
    edge_labels = {(u, v): d["relation"][:20] for u, v, d in sub.edges(data=True)}
    nx.draw_networkx_edge_labels(sub, pos, edge_labels, font_size=6, ax=ax)
    ax.set_title(f"{kg.entities[entity].label}: {hops}-hop neighbourhood ({sub.number_of_nodes()} nodes)")
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
