import torch
from torch_geometric.data import Data

from kgllm.data.collate import KGCollator
from kgllm.data.subgraph import SubgraphSampler
from kgllm.tasks.mlm import MaskedLM, choose_masked, mask_units


def _sampler():
    ei = torch.tensor([[0, 1, 2], [1, 2, 3]])
    return SubgraphSampler(Data(edge_index=ei, edge_type=torch.tensor([0, 1, 0]), num_nodes=5))


def _feat(n=12):
    # [CLS] w0 w1 (ent0: two pieces) w3 (ent1) ... [SEP]
    span = [-1, -1, 0, 0, -1, 1] + [-1] * (n - 7) + [-1]
    word = [-1, 0, 1, 1, 2, 3] + list(range(4, n - 3)) + [-1]
    nodes = [-1, -1, 2, 2, -1, 4] + [-1] * (n - 7) + [-1]
    return {"input_ids": list(range(100, 100 + n)), "span": span, "word": word, "token_node": nodes,
            "label": 1, "idx": 0}


def test_mask_units_entity_word_token():
    f = _feat()
    ent, word, tok = (mask_units(f, m) for m in ("entity", "word", "token"))
    assert ent[2] == ent[3] != ent[5] and ent[0] == -1 and ent[-1] == -1
    assert word[2] == word[3] and tok[2] != tok[3]


def test_choose_masked_hits_the_rate_with_whole_units():
    units = [-1] + [u // 3 for u in range(300)] + [-1]
    chosen = choose_masked(units, 0.15, torch.Generator().manual_seed(0))
    picked = [u for u, c in zip(units, chosen) if c]
    assert 45 <= len(picked) <= 47 and not chosen[0] and not chosen[-1]
    assert all(picked.count(u) == 3 for u in set(picked))


def test_mlm_batch_masks_unlinks_and_maps_nodes(tokenizer):
    col = KGCollator(tokenizer, _sampler(), MaskedLM(probability=0.5), eval_seed=7)
    feats = [_feat(12), {**_feat(9), "idx": 1}]
    batch = col(feats)
    assert batch["input_ids"].shape == (2, 12) and batch["attention_mask"][1].sum() == 9
    labels, g = batch["labels"], batch["graph"]
    masked = labels != -100
    assert masked.any() and (batch["token_node"][masked] == -1).all()  # masked tokens lose their link
    rows = batch["token_node"]
    for b, f in enumerate(feats):
        for t, node in enumerate(f["token_node"]):
            if rows[b, t] >= 0:
                assert int(g.n_id[rows[b, t]]) == node and int(g.batch[rows[b, t]]) == b
    again = col(feats)
    assert torch.equal(again["input_ids"], batch["input_ids"])  # eval masks are fixed per example


def test_classification_batch():
    from kgllm.nn.backbone import load_tokenizer
    from kgllm.tasks.rel_cls import add_markers

    tokenizer = load_tokenizer("tiny")
    add_markers(tokenizer)
    col = KGCollator(tokenizer, _sampler(), "rel_cls")
    feats = [{**_feat(), "head_pos": 1, "tail_pos": 4}]
    batch = col(feats)
    assert batch["labels"].tolist() == [1] and batch["head_pos"].tolist() == [1]
    assert "labels" in batch and batch["graph"].num_graphs == 1
    assert torch.equal(batch["input_ids"][0], torch.tensor(feats[0]["input_ids"]))
    assert set(batch["graph"].n_id.tolist()) >= {2, 4}
