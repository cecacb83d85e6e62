"""Samplers: training shards are padded to equal length, evaluation shards score each example once."""

import pytest

from kgllm.data import sampler as sampler_mod
from kgllm.data.sampler import EpochSampler, Padded, ShardSampler, mark_padding


@pytest.mark.parametrize("size,world", [(7, 2), (10, 3), (2, 2), (1, 2)])
def test_evaluation_shards_cover_every_example_once(monkeypatch, size, world):
    shards = []
    for rank in range(world):
        monkeypatch.setattr(sampler_mod, "_rank_world", lambda r=rank: (r, world))
        s = ShardSampler(size)
        shards.append(list(s))
        assert len(s) == len(shards[-1])
    assert len({len(sh) for sh in shards}) == 1  # equal lengths: DDP's per-forward collectives line up
    real = sorted(i for sh in shards for i in sh if i < size)
    assert real == list(range(size))  # every example once; the rest is marked padding
    data = Padded([{"x": i} for i in range(size)], mark_padding)
    padded = [data[i] for sh in shards for i in sh if i >= size]
    assert all(p["padding"] for p in padded) and len(padded) == len(shards) * len(shards[0]) - size


def test_padding_gets_no_label(tokenizer):
    from kgllm.data.collate import KGCollator
    from kgllm.data.subgraph import SubgraphSampler
    from kgllm.data.subgraph import SubgraphConfig
    import torch
    from torch_geometric.data import Data

    graph = Data(edge_index=torch.empty(2, 0, dtype=torch.long), edge_type=torch.empty(0, dtype=torch.long),
                 num_nodes=3)
    collate = KGCollator(tokenizer, SubgraphSampler(graph, SubgraphConfig()), "seq_cls")
    feats = [{"input_ids": [101, 7, 102], "token_node": [-1, 1, -1], "label": 1}]
    batch = collate(feats + [mark_padding(feats[0])])
    assert batch["labels"].tolist() == [1, -100]


def test_training_shards_are_padded_and_follow_one_permutation(monkeypatch):
    orders = []
    for rank in range(2):
        monkeypatch.setattr(sampler_mod, "_rank_world", lambda r=rank: (r, 2))
        orders.append(list(EpochSampler(7, seed=3, epoch=lambda: 1)))
    assert [len(o) for o in orders] == [4, 4]  # 7 examples padded to 8
    monkeypatch.setattr(sampler_mod, "_rank_world", lambda: (0, 1))
    single = list(EpochSampler(7, seed=3, epoch=lambda: 1))
    assert [single[i] for i in range(0, 7, 2)] == orders[0] and single[1::2] == orders[1][:3]
