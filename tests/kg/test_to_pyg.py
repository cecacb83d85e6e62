import subprocess
import sys

import torch

from kgllm.kg.graph.to_pyg import to_pyg


def test_to_pyg_matches_triples(kg):
    data = to_pyg(kg)
    assert data.num_nodes == kg.num_entities
    assert data.edge_index.shape == (2, len(kg.edges)) and data.edge_type.shape == (len(kg.edges),)
    for (h, r, t), col in zip(kg.edges, range(data.edge_index.size(1))):
        assert data.edge_index[:, col].tolist() == [h, t] and int(data.edge_type[col]) == r
    assert data.edge_type.max() < kg.num_relations and data.edge_weight.dtype == torch.float


def test_kg_package_does_not_import_torch():
    code = ("import sys, kgllm.kg.extraction.build, kgllm.kg.graph.store, kgllm.kg.quality.stats, kgllm.linking; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
