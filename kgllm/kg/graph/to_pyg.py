"""KnowledgeGraph -> ``torch_geometric.data.Data`` (torch is imported only when called)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from torch_geometric.data import Data

    from kgllm.kg.graph.store import KnowledgeGraph


def to_pyg(kg: "KnowledgeGraph") -> "Data":
    """The whole graph as ``Data(num_nodes, edge_index (2, E), edge_type (E,), edge_weight (E,))``.

    ``edge_weight`` is the edge's confidence; node ``i`` is entity id ``i``.
    """
    import torch
    from torch_geometric.data import Data

    triples = kg.triples()
    if triples:
        hrt = torch.tensor(triples, dtype=torch.long)  # (E, 3)
        edge_index = hrt[:, [0, 2]].t().contiguous()
        edge_type = hrt[:, 1].contiguous()
    else:
        edge_index = torch.empty(2, 0, dtype=torch.long)
        edge_type = torch.empty(0, dtype=torch.long)
    weight = torch.tensor([kg.edges[t].confidence for t in triples], dtype=torch.float)
    return Data(edge_index=edge_index, edge_type=edge_type, edge_weight=weight, num_nodes=kg.num_entities,
                num_relations=kg.num_relations)
