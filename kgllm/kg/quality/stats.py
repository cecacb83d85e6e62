"""Graph statistics with networkx."""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx

    from kgllm.kg.graph.store import KnowledgeGraph

log = logging.getLogger(__name__)


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
    """:func:`kg_stats` as text: counts, components, degrees, top entities and relations."""
    lines = [f"nodes {stats['nodes']}  edges {stats['edges']}  relations {stats['relations']}",
             f"components {stats['components']} (largest {stats['largest_component']}, "
             f"isolated nodes {stats['isolated_nodes']})",
             f"degree mean {stats['mean_degree']:.2f}  max {stats['max_degree']}", "", "top entities by PageRank:"]
    lines += [f"  {s:.5f}  {label}" for label, s in stats["top_pagerank"]]
    lines += ["", "most frequent relations:"]
    from kgllm.kg.graph.wikidata import with_label

    lines += [f"  {n:6d}  {with_label(name)}" for name, n in stats["top_relations"]]
    return "\n".join(lines)


def find_entity(kg: "KnowledgeGraph", query: str, pick: bool = False) -> int:
    """Entity id by id number, exact key, or (normalised) label/alias. Several entities with that
    label are an error that lists them (id, key, edges, mentions), so the caller can pass an id or
    key; with ``pick`` the best-connected one (most edges, then most mentions) is returned instead,
    and a warning names it and the others."""
    from kgllm.util.errors import KGFormatError
    from kgllm.kg.graph.normalize import normalize_label

    if query.isdigit() and int(query) < kg.num_entities:
        return int(query)
    if query in kg.key_to_id:
        return kg.key_to_id[query]
    norm = normalize_label(query)
    hits = [i for i, e in enumerate(kg.entities)
            if i not in kg.retired and norm in {normalize_label(a) for a in (e.label, *e.aliases)}]
    if not hits:
        raise KGFormatError(f"no entity matches {query!r} (by id, key, label or alias)")
    if len(hits) == 1:
        return hits[0]
    degree = dict.fromkeys(hits, 0)
    for h, _, t in kg.edges:
        for node in (h, t) if h != t else (h,):
            if node in degree:
                degree[node] += 1
    hits.sort(key=lambda i: (-degree[i], -kg.entities[i].count, i))
    shown = "; ".join(f"{i} {kg.entities[i].key} ({degree[i]} edges, {kg.entities[i].count} mentions)"
                      for i in hits[:6])
    if not pick:
        raise KGFormatError(f"{len(hits)} entities match {query!r}: {shown}; pass an id or key")
    log.warning("%d entities match %r; using the best-connected, %d %s (others: %s); pass an id or key "
                "for another", len(hits), query, hits[0], kg.entities[hits[0]].key, shown.split("; ", 1)[1])
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
    """Write :func:`degree_figure` of ``stats`` as a PNG at ``path``; returns the path."""
    import matplotlib.pyplot as plt

    fig = degree_figure(stats)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def neighbourhood_figure(kg: "KnowledgeGraph", entity: int, hops: int = 1, max_nodes: int = 40):
    """The ``hops``-neighbourhood of ``entity``, in rings by hop around it: nodes coloured by entity
    type (legend), labels outside their node, every relation between two nodes in the edge's label, and, when there are more than ``max_nodes``
    nodes, the nearest ones kept (by hop, then degree; every kept node reaches the centre through
    kept nodes) and the truncation stated in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx
    import numpy as np
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
    # rings by hop around the centre (a spring layout piles a star's labels onto its centre)
    rings = [[entity]] + [sorted(n for n in keep if dist[n] == h) for h in range(1, hops + 1)]
    rings = [r for r in rings if r]
    pos, theta = {entity: np.zeros(2)}, {}
    for i, n in enumerate(rings[1] if len(rings) > 1 else []):  # the first ring evenly around the centre
        theta[n] = 2 * np.pi * i / len(rings[1]) + np.pi / 2
    for h in range(2, len(rings)):  # later rings: each node in its parent's sector (a radial tree)
        sector = 2 * np.pi / len(rings[h - 1])
        children: dict = {}
        for n in rings[h]:
            parent = min((m for m in und[n] if m in theta and dist[m] == h - 1), key=lambda m: (theta[m], m))
            children.setdefault(parent, []).append(n)
        for parent, kids in children.items():
            for k, n in enumerate(kids):
                theta[n] = theta[parent] + 0.9 * sector * ((k + 0.5) / len(kids) - 0.5)
    for n, angle in theta.items():
        pos[n] = dist[n] * np.array([np.cos(angle), np.sin(angle)])
    fig, ax = plt.subplots(figsize=(9, 8))
    colours = [TYPE_COLOURS.get(kg.entities[n].etype, "tab:gray") for n in sub]
    nx.draw_networkx_nodes(sub, pos, ax=ax, node_size=[520 if n == entity else 200 for n in sub], node_color=colours,
                           edgecolors="black", linewidths=[2.0 if n == entity else 0.0 for n in sub], alpha=0.85)
    nx.draw_networkx_edges(sub, pos, ax=ax, alpha=0.4, arrows=True, arrowsize=8)
    def radial(x: float, y: float) -> dict:  # text along its spoke, reading left to right
        angle = float(np.degrees(np.arctan2(y, x)))
        right = -90 < angle <= 90
        return {"rotation": angle if right else angle - 180, "ha": "left" if right else "right",
                "va": "center", "rotation_mode": "anchor"}

    for n in sub:  # labels outside their node, along the spoke: ring neighbours never collide
        x, y = pos[n]
        r = float(np.hypot(x, y))
        if r == 0:
            ax.text(0, -0.1, kg.entities[n].label[:25], ha="center", va="top", fontsize=8, fontweight="bold",
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})
            continue
        ax.text(x * (1 + 0.06 / r), y * (1 + 0.06 / r), kg.entities[n].label[:25], fontsize=7, **radial(x, y))
    names = kg.meta.get("relation_labels") or {}  # Wikidata ids -> readable names (learned extractor)
    edge_labels: dict = {}
    for u, v, d in sub.edges(data=True):  # several relations between the same two nodes: all named
        edge_labels.setdefault(frozenset((u, v)), []).append(str(names.get(d["relation"], d["relation"]))[:20])
    for pair, rels in edge_labels.items():  # on the outer half of each spoke, along it
        u, v = sorted(pair, key=lambda n: (dist[n], n)) if len(pair) == 2 else (next(iter(pair)),) * 2
        at, d = pos[u] + 0.45 * (pos[v] - pos[u]), pos[v] - pos[u]
        style = radial(float(d[0]), float(d[1])) if np.hypot(*d) > 0 else {"ha": "center", "va": "center"}
        ax.text(at[0], at[1], " / ".join(sorted(set(rels))), fontsize=6, color="0.25", **style,
                bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8})
    ax.set_aspect("equal")
    ax.set_xlim(-hops - 0.75, hops + 0.75)
    ax.set_ylim(-hops - 0.75, hops + 0.75)
    types = sorted({kg.entities[n].etype for n in sub})
    ax.legend(handles=[Line2D([], [], marker="o", linestyle="", color=TYPE_COLOURS.get(t, "tab:gray"), label=t)
                       for t in types], title="entity type", loc="upper left", fontsize=8, bbox_to_anchor=(0, 1.0),
              framealpha=0.9)
    shown = f"{sub.number_of_nodes()} nodes" if total <= max_nodes else \
        f"{sub.number_of_nodes()} of {total} nodes: the nearest, by hop then degree"
    ax.set_title(f"{kg.entities[entity].label} ({kg.entities[entity].key}): {hops}-hop neighbourhood, {shown}",
                 fontsize=10)
    ax.axis("off")
    fig.tight_layout()
    return fig


def plot_neighbourhood(kg: "KnowledgeGraph", entity: int, path: str, hops: int = 1, max_nodes: int = 40) -> str:
    """Write :func:`neighbourhood_figure` of ``entity`` as a PNG at ``path``; returns the path."""
    import matplotlib.pyplot as plt

    fig = neighbourhood_figure(kg, entity, hops, max_nodes)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
