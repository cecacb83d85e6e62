"""Fusion over KGs too large for a row per entity: the memory-mapped graph's subgraphs, ``lm``
node inputs from each batch's own pieces, and a sparse id table that touches only the batch's rows."""

import numpy as np
import pytest
import torch

from kgllm.data.mmap_graph import MmapGraph, write_synthetic
from kgllm.nn.graph_encoder import RelGATEncoder


def hand_graph(folder):
    # 0 -> 1 (r0), 0 -> 2 (r1), 0 -> 3 (r0); 1 -> 0 (r2); 2: none; 3 -> 2 (r1)
    np.save(folder / "indptr.npy", np.array([0, 3, 4, 4, 5], dtype=np.int64))
    np.save(folder / "indices.npy", np.array([1, 2, 3, 0, 2], dtype=np.int32))
    np.save(folder / "relations.npy", np.array([0, 1, 0, 2, 1], dtype=np.int16))
    np.save(folder / "pieces.npy", np.array([[10, 11], [12, -1], [13, 14], [15, -1]], dtype=np.int32))
    return MmapGraph(folder)


def test_subgraph_reads_the_seeds_edges_and_pieces(tmp_path):
    g = hand_graph(tmp_path)
    sub = g.subgraph(np.array([3, 1]), fanout=5, rng=np.random.default_rng(0))
    assert sub.n_id.tolist() == [3, 1, 0, 2]  # seeds first, then new tails (by seed id)
    edges = {(int(sub.n_id[h]), int(sub.n_id[t]), int(r)) for (h, t), r in zip(sub.edge_index.T, sub.edge_type)}
    assert edges == {(3, 2, 1), (1, 0, 2)}
    assert sub.node_pieces.tolist() == [[15, -1], [12, -1], [10, 11], [13, 14]]
    capped = g.subgraph(np.array([0]), fanout=2, rng=np.random.default_rng(0))
    assert capped.edge_index.shape == (2, 2) and set(capped.n_id[1:].tolist()) < {1, 2, 3}


def test_a_folder_without_the_arrays_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing indptr.npy"):
        MmapGraph(tmp_path)


def test_synthetic_graph_has_the_asked_shape(tmp_path):
    g = write_synthetic(tmp_path, 1000, degree=3, max_pieces=4, chunk=256)
    assert g.num_nodes == 1000 and g.num_edges == 3000 and g.indptr[-1] == 3000
    assert int(g.indices.max()) < 1000 and (g.pieces[:, 0] >= 0).all()


def test_lm_inputs_from_the_batch_equal_the_table_and_keep_no_row_per_entity():
    torch.manual_seed(0)
    words = torch.nn.Embedding(50, 16)
    big = RelGATEncoder(10**7, 3, hidden_channels=8, num_layers=1, heads=2, node_features="lm", text_dim=16)
    assert max(t.numel() for t in [*big.parameters(), *big.buffers()]) < 10**5  # nothing of size 10^7
    enc = RelGATEncoder(6, 3, hidden_channels=8, num_layers=1, heads=2, node_features="lm", text_dim=16).eval()
    table = torch.tensor([[1, 2], [3, -1], [4, 5], [6, -1], [7, 8], [9, -1]])
    enc.set_label_pieces(table, words)
    n_id, edge_index, edge_type = torch.tensor([4, 0, 2]), torch.tensor([[0, 1], [1, 2]]), torch.tensor([0, 2])
    from_table = enc(n_id, edge_index, edge_type)
    fresh = RelGATEncoder(6, 3, hidden_channels=8, num_layers=1, heads=2, node_features="lm", text_dim=16).eval()
    fresh.load_state_dict(enc.state_dict())
    fresh.set_word_embeddings(words)
    assert torch.allclose(fresh(n_id, edge_index, edge_type, node_pieces=table[n_id]), from_table)


def test_the_sparse_id_table_updates_only_the_batch_rows():
    torch.manual_seed(0)
    enc = RelGATEncoder(100, 3, hidden_channels=8, num_layers=1, heads=2, sparse_ids=True)
    before = enc.node_emb.weight.detach().clone()
    opt = torch.optim.SparseAdam([enc.node_emb.weight], lr=0.1)
    n_id = torch.tensor([5, 17, 42])
    enc(n_id, torch.tensor([[0, 1], [1, 2]]), torch.tensor([0, 1])).pow(2).sum().backward()
    assert enc.node_emb.weight.grad.is_sparse
    opt.step()
    changed = (enc.node_emb.weight.detach() != before).any(1).nonzero().flatten().tolist()
    assert changed == [5, 17, 42]
