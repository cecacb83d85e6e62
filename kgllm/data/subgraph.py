"""Deterministic, capped k-hop subgraphs around an example's linked nodes.

Each hop adds at most ``max_neighbors`` new nodes per example (strongest edges
first, then lowest id), and the subgraph never exceeds ``max_nodes``. Edges are
those of the KG induced on the chosen nodes. Cost is proportional to the
neighbourhoods touched, not to the size of the KG (CSR adjacency).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch_geometric.data import Data

from kgllm.config import SubgraphConfig


class SubgraphSampler:
    """Cut per-example subgraphs out of a whole-KG ``Data`` (``edge_index``, ``edge_type``)."""

    def __init__(self, graph: Data, cfg: SubgraphConfig | None = None) -> None:
        self.cfg = cfg or SubgraphConfig()
        self.num_nodes = int(graph.num_nodes)
        src, dst = graph.edge_index.numpy()
        etype = graph.edge_type.numpy()
        weight = graph.edge_weight.numpy() if graph.get("edge_weight") is not None else np.ones(len(src))
        # undirected neighbour lists for expansion, sorted by (node, -weight, neighbour)
        a = np.concatenate([src, dst])
        b = np.concatenate([dst, src])
        w = np.concatenate([weight, weight])
        order = np.lexsort((b, -w, a))
        self.nbr = b[order]
        self.nbr_ptr = np.searchsorted(a[order], np.arange(self.num_nodes + 1))
        # directed out-edges for inducing the subgraph's edges
        order = np.lexsort((dst, src))
        self.out_dst, self.out_type = dst[order], etype[order]
        self.out_ptr = np.searchsorted(src[order], np.arange(self.num_nodes + 1))

    def nodes(self, seeds: Sequence[int]) -> list[int]:
        cfg = self.cfg
        chosen = list(dict.fromkeys(int(s) for s in seeds))[: cfg.max_nodes]
        seen = set(chosen)
        frontier = chosen
        for _ in range(cfg.num_hops):
            new: list[int] = []
            for v in frontier:
                for u in self.nbr[self.nbr_ptr[v]:self.nbr_ptr[v + 1]]:
                    if len(new) >= cfg.max_neighbors or len(seen) >= cfg.max_nodes:
                        break
                    if int(u) not in seen:
                        seen.add(int(u))
                        new.append(int(u))
            chosen += new
            frontier = new
            if not new:
                break
        return chosen

    def __call__(self, seeds: Sequence[int]) -> Data:
        """Subgraph around ``seeds``: ``n_id`` (global ids, seeds first), local ``edge_index``, ``edge_type``."""
        n_id = self.nodes(seeds)
        local = {v: i for i, v in enumerate(n_id)}
        rows, cols, types = [], [], []
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
