"""Document-level RE parts: windows over long documents, the adaptive-threshold loss, the scores,
the markers, and a model that fits a small document set."""

import pytest
import torch
from torch_geometric.data import Batch, Data

from kgllm.nn.docre import DocREHead, adaptive_threshold_loss, encode_windows, predict_relations, window_starts
from kgllm.tasks.docre import DocREScore


def test_window_starts_cover_everything_with_the_overlap():
    for content, size, overlap in [(10, 10, 3), (11, 10, 3), (1000, 510, 128), (2000, 126, 32)]:
        starts = window_starts(content, size, overlap)
        covered = set()
        for a, b in zip(starts, starts[1:]):
            assert a + size - b >= min(overlap, size)  # consecutive windows share the overlap
        for s in starts:
            covered |= set(range(s, min(s + size, content)))
        assert covered == set(range(content)) and starts[-1] + size >= content


def _lookup_encoder(table):
    """A position-independent encoder: states are token embeddings, attention uniform over the
    window's real tokens. Stitching windows must then give back exactly the one-pass states."""
    calls = []

    def encode(ids, mask, nodes, graph):
        calls.append((ids.clone(), None if nodes is None else nodes.clone(), graph))
        att = mask[:, None, None, :].float().expand(ids.size(0), 2, ids.size(1), ids.size(1))
        return table[ids], att / att.sum(-1, keepdim=True)
    return encode, calls


def test_short_documents_take_one_pass_unchanged():
    table = torch.randn(50, 8)
    encode, calls = _lookup_encoder(table)
    ids = torch.randint(1, 50, (2, 12))
    mask = torch.ones_like(ids)
    hidden, att = encode_windows(encode, ids, mask, window=12)
    assert len(calls) == 1 and torch.equal(hidden, table[ids])


def test_long_documents_are_stitched_from_overlapping_windows():
    table = torch.randn(50, 8)
    encode, calls = _lookup_encoder(table)
    ids = torch.randint(1, 50, (2, 40))
    mask = torch.ones_like(ids)
    mask[1, 30:] = 0  # a shorter second document
    ids[1, 29] = 3  # its [SEP]
    hidden, att = encode_windows(encode, ids, mask, window=12, overlap=4)
    assert calls[0][0].size(1) <= 12  # no window beyond the encoder's size
    torch.testing.assert_close(hidden[0], table[ids[0]])
    torch.testing.assert_close(hidden[1, :30], table[ids[1, :30]])
    rows = att[0, :, 1:-1].sum(-1)  # content rows ([CLS]/[SEP] rows are not pooled)
    torch.testing.assert_close(rows, torch.ones_like(rows))  # renormalised
    assert att[0, 0, 1, 39] == 0 and att[0, 0, 1, 2] > 0  # tokens that never share a window


def test_a_document_that_fits_gets_the_same_outputs_beside_a_long_one():
    torch.manual_seed(0)
    table = torch.randn(50, 8)

    def encode(ids, mask, nodes, graph):  # position-dependent states, attention mixing real tokens
        h = table[ids] + torch.arange(ids.size(1))[None, :, None] * 0.1
        scores = (h @ h.transpose(1, 2)).unsqueeze(1).expand(-1, 2, -1, -1)
        scores = scores.masked_fill(mask[:, None, None, :] == 0, float("-inf"))
        return h, torch.softmax(scores, -1)

    short = torch.randint(1, 50, (1, 10))
    alone_h, alone_a = encode_windows(encode, short, torch.ones_like(short), window=12)
    ids = torch.randint(1, 50, (2, 30))
    mask = torch.ones_like(ids)
    ids[1, :10], mask[1, 10:] = short[0], 0
    h, a = encode_windows(encode, ids, mask, window=12, overlap=4)
    torch.testing.assert_close(h[1, :10], alone_h[0])
    torch.testing.assert_close(a[1, :, :10, :10], alone_a[0])


def test_windows_keep_each_token_linked_to_its_own_node():
    table = torch.randn(50, 8)
    encode, calls = _lookup_encoder(table)
    graphs = [Data(n_id=torch.tensor([7, 8]), edge_index=torch.tensor([[0], [1]]), edge_type=torch.tensor([0]),
                   num_nodes=2),
              Data(n_id=torch.tensor([9, 10, 11]), edge_index=torch.tensor([[0], [2]]), edge_type=torch.tensor([1]),
                   num_nodes=3)]
    graph = Batch.from_data_list(graphs)
    ids = torch.randint(1, 50, (2, 30))
    token_node = torch.full((2, 30), -1)
    token_node[0, 5], token_node[0, 25] = 0, 1  # rows of the graph batch: doc 0 owns rows 0-1
    token_node[1, 3], token_node[1, 28] = 4, 2  # doc 1 owns rows 2-4
    encode_windows(encode, ids, torch.ones_like(ids), token_node, graph, window=12, overlap=4)
    win_ids, win_nodes, copies = calls[0]
    for w in range(win_ids.size(0)):
        for pos in (win_nodes[w] >= 0).nonzero().flatten().tolist():
            row = int(win_nodes[w, pos])
            assert int(copies.batch[row]) == w  # the node belongs to this window's own graph copy
    seen = sorted(int(copies.n_id[r]) for r in win_nodes[win_nodes >= 0])
    assert set(seen) == {7, 8, 9, 11}


def test_adaptive_threshold_loss_and_prediction():
    labels = torch.tensor([[0, 1, 0, 1], [0, 0, 0, 0]])  # pair 0: relations 1 and 3; pair 1: none
    logits = torch.zeros(2, 4, requires_grad=True)
    opt = torch.optim.SGD([logits], lr=1.0)
    first = adaptive_threshold_loss(logits, labels).item()
    for _ in range(100):
        opt.zero_grad()
        adaptive_threshold_loss(logits, labels).backward()
        opt.step()
    # two gold relations share the positive softmax: the floor is 2 log 2 for that pair, 0 for the other
    last = adaptive_threshold_loss(logits, labels).item()
    assert last < first and last == pytest.approx(torch.log(torch.tensor(2.0)).item(), abs=0.05)
    assert predict_relations(logits.detach()).tolist() == [[True, False, True], [False, False, False]]
    ranked = torch.tensor([[0.0, 2.0, -1.0, 1.0]])
    assert predict_relations(ranked).tolist() == [[True, False, True]]
    assert predict_relations(ranked, top_k=1).tolist() == [[True, False, False]]
    assert adaptive_threshold_loss(torch.zeros(0, 4), torch.zeros(0, 4)) == 0


def test_scores_on_a_hand_made_case():
    # 3 pairs x 2 relations; gold: (0, r0) in training, (1, r1); predicted: (0, r0), (1, r0), (2, r1)
    labels = torch.tensor([[0, 2, 0], [0, 0, 1], [0, 0, 0]])
    logits = torch.tensor([[0.0, 1.0, -1.0], [0.0, 1.0, -1.0], [0.0, -1.0, 1.0]])
    score = {k: DocREScore(k) for k in ("precision", "recall", "f1", "ign_f1")}
    for m in score.values():
        m.update(logits, labels)
    assert float(score["precision"].compute()) == pytest.approx(1 / 3)
    assert float(score["recall"].compute()) == pytest.approx(1 / 2)
    assert float(score["f1"].compute()) == pytest.approx(0.4)
    # Ign: the correct prediction was a training fact -> 0 correct of 2 counted predictions
    assert float(score["ign_f1"].compute()) == 0.0


def test_head_pools_mentions_and_every_pair():
    head = DocREHead(8, 3, emb_size=8, block_size=4)
    hidden = torch.randn(1, 10, 8, requires_grad=True)
    att = torch.softmax(torch.randn(1, 2, 10, 10), -1)
    logits = head(hidden, att, [[[1, 5], [3], [7]]], [torch.tensor([[0, 1], [1, 0], [2, 0]])])
    assert logits.shape == (3, 3)
    logits[0].sum().backward()
    assert hidden.grad[0, 5].abs().sum() > 0 and hidden.grad[0, 7].abs().sum() > 0  # mention 2, context
    empty = head(hidden, att, [[[1]]], [torch.zeros(0, 2, dtype=torch.long)])
    assert empty.shape == (0, 3)
