"""Deterministic, capped k-hop subgraphs around a set of seed nodes.

Each hop visits at most ``max_neighbors`` neighbours of every frontier node -- the strongest
edges first, then lowest id (``sample="top"``, deterministic) or a uniform random choice
(``sample="random"``, seeded) -- and the subgraph never exceeds ``max_nodes``. Its edges are either all
KG edges among the chosen nodes (``edges="induced"``: complete, for small per-example
subgraphs) or only the edges the expansion walked (``edges="sampled"``: at most
``max_neighbors`` per visited node, so memory is bounded by the batch and the caps, not by
the graph -- GraphSAGE-style sampling). Cost is proportional to the neighbourhoods touched
(CSR adjacency), not to the size of the KG.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch
from torch_geometric.data import Data


@dataclass
class SubgraphConfig:
    """Which part of the KG each example sees: linked nodes plus sampled k-hop neighbours.

    Args:
        num_hops: neighbourhood depth around the linked nodes.
        max_neighbors: at most this many new neighbours per frontier node and hop.
        max_nodes: hard cap on nodes per subgraph.
        edges: ``induced`` (all KG edges among the chosen nodes) or ``sampled`` (only the edges the
            expansion walked; bounded by ``max_neighbors`` per node).
        sample: which neighbours: ``top`` (strongest edges, deterministic) or ``random`` (seeded).
    """

    num_hops: int = 1
    max_neighbors: int = 16
    max_nodes: int = 64
    edges: str = "induced"
    sample: str = "top"

    def __post_init__(self) -> None:
        from kgllm.util.errors import ConfigError, check_positive

        check_positive(max_nodes=self.max_nodes)
        check_positive(allow_zero=True, num_hops=self.num_hops, max_neighbors=self.max_neighbors)
        if self.edges not in ("induced", "sampled") or self.sample not in ("top", "random"):
            raise ConfigError(f"subgraph edges must be induced|sampled and sample top|random, got "
                              f"{self.edges!r}, {self.sample!r}")

    def to_dict(self) -> dict:
        return asdict(self)


class SubgraphSampler:
    """Cut subgraphs out of a whole-KG ``Data`` (``edge_index``, ``edge_type``, optional ``edge_weight``)."""

    def __init__(self, graph: Data, cfg: SubgraphConfig | None = None, seed: int = 0) -> None:
        self.cfg = cfg or SubgraphConfig()
        self.rng = np.random.default_rng(seed)
        self.num_nodes = int(graph.num_nodes)
        src, dst = graph.edge_index.numpy()
        etype = graph.edge_type.numpy()
        weight = graph.edge_weight.numpy() if graph.get("edge_weight") is not None else np.ones(len(src))
        # undirected adjacency sorted by (node, -weight, neighbour); each entry remembers its edge
        a, b = np.concatenate([src, dst]), np.concatenate([dst, src])
        order = np.lexsort((b, -np.concatenate([weight, weight]), a))
        self.nbr = b[order]
        self.nbr_type = np.concatenate([etype, etype])[order]
        self.nbr_out = np.concatenate([np.ones(len(src), bool), np.zeros(len(src), bool)])[order]  # a -> b?
        self.nbr_ptr = np.searchsorted(a[order], np.arange(self.num_nodes + 1))
        # directed out-edges for induced subgraphs
        order = np.lexsort((dst, src))
        self.out_dst, self.out_type = dst[order], etype[order]
        self.out_ptr = np.searchsorted(src[order], np.arange(self.num_nodes + 1))

    def _expand(self, seeds: Sequence[int]) -> tuple[list[int], list[tuple[int, int, int]]]:
        cfg = self.cfg
        chosen = list(dict.fromkeys(int(s) for s in seeds))[: cfg.max_nodes]
        seen = set(chosen)
        walked: list[tuple[int, int, int]] = []  # (src, type, dst) global ids
        frontier = chosen
        for _ in range(cfg.num_hops):
            new: list[int] = []
            for v in frontier:
                lo, hi = int(self.nbr_ptr[v]), int(self.nbr_ptr[v + 1])
                if cfg.sample == "random" and hi - lo > cfg.max_neighbors:
                    picks = lo + self.rng.choice(hi - lo, cfg.max_neighbors, replace=False)
                else:
                    picks = range(lo, min(hi, lo + cfg.max_neighbors))
                for k in picks:
                    u = int(self.nbr[k])
                    if u not in seen:
                        if len(seen) >= cfg.max_nodes:
                            continue
                        seen.add(u)
                        new.append(u)
                    walked.append((v, int(self.nbr_type[k]), u) if self.nbr_out[k] else (u, int(self.nbr_type[k]), v))
            chosen += new
            frontier = new
            if not new:
                break
        return chosen, walked

    def nodes(self, seeds: Sequence[int]) -> list[int]:
        return self._expand(seeds)[0]

    def __call__(self, seeds: Sequence[int]) -> Data:
        """Subgraph around ``seeds``: ``n_id`` (global ids, seeds first), local ``edge_index``, ``edge_type``."""
        n_id, walked = self._expand(seeds)
        local = {v: i for i, v in enumerate(n_id)}
        rows, cols, types = [], [], []
        if self.cfg.edges == "sampled":
            for s, r, d in dict.fromkeys(walked):
                rows.append(local[s])
                cols.append(local[d])
                types.append(r)
        else:
            for v in n_id:
                lo, hi = self.out_ptr[v], self.out_ptr[v + 1]
                for u, r in zip(self.out_dst[lo:hi], self.out_type[lo:hi]):
                    j = local.get(int(u))
                    if j is not None:
                        rows.append(local[v])
                        cols.append(j)
                        types.append(int(r))
        return Data(n_id=torch.tensor(n_id, dtype=torch.long),
                    edge_index=torch.tensor([rows, cols], dtype=torch.long).view(2, -1),
                    edge_type=torch.tensor(types, dtype=torch.long), num_nodes=len(n_id))
