import torch
from torch_geometric.data import Data

from kgllm.data.subgraph import SubgraphConfig
from kgllm.data.subgraph import SubgraphSampler


def _graph():
    # 0 -> 1 -> 2 -> 3, 0 -> 4, 5 isolated; weights prefer 0->4 over 0->1
    ei = torch.tensor([[0, 1, 2, 0], [1, 2, 3, 4]])
    return Data(edge_index=ei, edge_type=torch.tensor([0, 1, 0, 1]), edge_weight=torch.tensor([.5, 1., 1., .9]),
                num_nodes=6)


def test_one_hop_neighbourhood_and_induced_edges():
    g = SubgraphSampler(_graph(), SubgraphConfig(num_hops=1, max_neighbors=8, max_nodes=10))([0])
    assert g.n_id.tolist() == [0, 4, 1]  # strongest edge first
    edges = {(int(g.n_id[a]), int(r), int(g.n_id[b])) for (a, b), r in zip(g.edge_index.t(), g.edge_type)}
    assert edges == {(0, 0, 1), (0, 1, 4)}


def test_caps_and_hops():
    s = SubgraphSampler(_graph(), SubgraphConfig(num_hops=2, max_neighbors=1, max_nodes=10))
    assert s.nodes([0]) == [0, 4]  # one neighbour per node and hop; 4 has no further neighbours
    assert s.nodes([0, 2]) == [0, 2, 4, 1]  # 0 -> 4 (strongest), 2 -> 1 (ties by id)
    s = SubgraphSampler(_graph(), SubgraphConfig(num_hops=3, max_neighbors=8, max_nodes=3))
    assert len(s.nodes([1, 2])) == 3
    assert SubgraphSampler(_graph())([5]).edge_index.shape == (2, 0)


def test_empty_seeds_give_empty_graph():
    g = SubgraphSampler(_graph())([])
    assert g.num_nodes == 0 and g.edge_index.shape == (2, 0)


def test_sampled_edges_are_bounded_by_the_fanout():
    n = 200
    src = torch.arange(n).repeat_interleave(20)
    dst = torch.randint(n, (n * 20,), generator=torch.Generator().manual_seed(0))
    g = Data(edge_index=torch.stack([src, dst]), edge_type=torch.zeros(n * 20, dtype=torch.long), num_nodes=n)
    induced = SubgraphSampler(g, SubgraphConfig(num_hops=2, max_neighbors=3, max_nodes=1000))([0, 1])
    sampled = SubgraphSampler(g, SubgraphConfig(num_hops=2, max_neighbors=3, max_nodes=1000, edges="sampled"))([0, 1])
    assert torch.equal(induced.n_id, sampled.n_id)
    assert sampled.edge_index.size(1) <= 3 * sampled.num_nodes and sampled.edge_index.size(1) <= induced.edge_index.size(1)
    rnd = SubgraphSampler(g, SubgraphConfig(num_hops=2, max_neighbors=3, max_nodes=1000, edges="sampled",
                                            sample="random"), seed=0)
    a, b = rnd([0, 1]), rnd([0, 1])
    assert a.num_nodes <= 2 + 2 * 3 + 2 * 3 * 3 and not torch.equal(a.n_id, b.n_id)  # fresh draws
    # every sampled edge exists in the graph with its direction and type
    pairs = set(zip(src.tolist(), dst.tolist()))
    for a, b in sampled.edge_index.t().tolist():
        assert (int(sampled.n_id[a]), int(sampled.n_id[b])) in pairs
