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
    in_deg, out_deg = Counter(d for _, d in g.in_degree()), Counter(d for _, d in g.out_degree())
    simple = nx.DiGraph(g)
    pr = nx.pagerank(simple) if simple.number_of_edges() else {}
    rel = Counter(kg.relations[r] for _, r, _ in kg.edges)
    return {
        "nodes": g.number_of_nodes(), "edges": g.number_of_edges(), "relations": kg.num_relations,
        "components": len(comps), "largest_component": comps[0] if comps else 0,
        "isolated_nodes": sum(d == 0 for d in degrees),
        "mean_degree": sum(degrees) / max(len(degrees), 1), "max_degree": max(degrees, default=0),
        "degree_histogram": Counter(degrees), "in_degree_histogram": in_deg, "out_degree_histogram": out_deg,
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
    """Entity id by id number, exact key, or (normalised) label/alias; several entities with that
    label are an error that lists them (id, key, mentions), so the caller can pass an id or key."""
    from kgllm.errors import KGFormatError
    from kgllm.kg.normalize import normalize_label

    if query.isdigit() and int(query) < kg.num_entities:
        return int(query)
    if query in kg.key_to_id:
        return kg.key_to_id[query]
    norm = normalize_label(query)
    hits = [i for i, e in enumerate(kg.entities)
            if i not in kg.retired and norm in {normalize_label(a) for a in (e.label, *e.aliases)}]
    if not hits:
        raise KGFormatError(f"no entity matches {query!r} (by id, key, label or alias)")
    if len(hits) > 1:
        hits.sort(key=lambda i: -kg.entities[i].count)
        shown = "; ".join(f"{i} {kg.entities[i].key} ({kg.entities[i].count} mentions)" for i in hits[:6])
        raise KGFormatError(f"{len(hits)} entities match {query!r}: {shown}; pass an id or key")
    return hits[0]


#: entity type -> colour (matplotlib's tab10), the same in every plot
TYPE_COLOURS = {"PER": "tab:blue", "ORG": "tab:orange", "LOC": "tab:green", "TIME": "tab:purple",
                "NUM": "tab:brown", "MISC": "tab:pink", "ENT": "tab:cyan"}


def degree_figure(stats: dict):
    """Log-log in-degree and out-degree distributions; nodes with degree 0 cannot be drawn on a log
    axis, so their number is stated in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for key, label, marker in (("in_degree_histogram", "in-degree", "o"), ("out_degree_histogram", "out-degree", "s")):
        hist = sorted((d, n) for d, n in stats[key].items() if d > 0)
        if hist:
            ax.loglog([d for d, _ in hist], [n for _, n in hist], marker, markersize=4, alpha=0.7, label=label)
    ax.set_xlabel("degree (edges, each relation counted)")
    ax.set_ylabel("number of nodes")
    ax.set_title(f"degree distribution: {stats['nodes']:,} nodes, {stats['edges']:,} edges\n"
                 f"{stats['isolated_nodes']:,} isolated nodes (degree 0, not drawn)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_degree_distribution(stats: dict, path: str) -> str:
    import matplotlib.pyplot as plt

    fig = degree_figure(stats)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def neighbourhood_figure(kg: "KnowledgeGraph", entity: int, hops: int = 1, max_nodes: int = 40):
    """The ``hops``-neighbourhood of ``entity``: nodes coloured by entity type (legend), every
    relation between two nodes in the edge's label, and, when there are more than ``max_nodes``
    nodes, the nearest ones kept (by hop, then degree; every kept node reaches the centre through
    kept nodes) and the truncation stated in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx
    from matplotlib.lines import Line2D

    g = to_networkx(kg)
    und = g.to_undirected(as_view=True)
    dist = nx.single_source_shortest_path_length(und, entity, cutoff=hops)
    total = len(dist)
    keep = {entity}
    for level in range(1, hops + 1):  # nearest first; a node is kept only if a kept node leads to it
        layer = sorted((n for n, d in dist.items() if d == level and any(m in keep for m in und[n])),
                       key=lambda n: (-g.degree(n), n))
        keep.update(layer[: max(0, max_nodes - len(keep))])
    sub = g.subgraph(keep)
    pos = nx.spring_layout(sub, seed=0)
    fig, ax = plt.subplots(figsize=(9, 7))
    colours = [TYPE_COLOURS.get(kg.entities[n].etype, "tab:gray") for n in sub]
    nx.draw_networkx_nodes(sub, pos, ax=ax, node_size=[520 if n == entity else 200 for n in sub], node_color=colours,
                           edgecolors="black", linewidths=[2.0 if n == entity else 0.0 for n in sub], alpha=0.85)
    nx.draw_networkx_edges(sub, pos, ax=ax, alpha=0.4, arrows=True, arrowsize=8)
    nx.draw_networkx_labels(sub, pos, {n: kg.entities[n].label[:25] for n in sub}, font_size=7, ax=ax)
    names = kg.meta.get("relation_labels") or {}  # Wikidata ids -> readable names (learned extractor)
    edge_labels: dict = {}
    for u, v, d in sub.edges(data=True):  # several relations between the same two nodes: all named
        edge_labels.setdefault((u, v), []).append(str(names.get(d["relation"], d["relation"]))[:20])
    nx.draw_networkx_edge_labels(sub, pos, {k: " / ".join(sorted(set(v))) for k, v in edge_labels.items()},
                                 font_size=6, ax=ax)
    types = sorted({kg.entities[n].etype for n in sub})
    ax.legend(handles=[Line2D([], [], marker="o", linestyle="", color=TYPE_COLOURS.get(t, "tab:gray"), label=t)
                       for t in types], title="entity type", loc="upper left", fontsize=8)
    shown = f"{sub.number_of_nodes()} nodes" if total <= max_nodes else \
        f"{sub.number_of_nodes()} of {total} nodes: the nearest, by hop then degree"
    ax.set_title(f"{kg.entities[entity].label} ({kg.entities[entity].key}): {hops}-hop neighbourhood, {shown}",
                 fontsize=10)
    ax.axis("off")
    fig.tight_layout()
    return fig


def plot_neighbourhood(kg: "KnowledgeGraph", entity: int, path: str, hops: int = 1, max_nodes: int = 40) -> str:
    import matplotlib.pyplot as plt

    fig = neighbourhood_figure(kg, entity, hops, max_nodes)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
