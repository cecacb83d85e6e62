"""The KG copy head (a pointer over the subgraph's label wordpieces that reads the relation) and
``lm`` node inputs (entities from the backbone's own word embeddings, no trained row per entity)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from kgllm.nn.copy_head import KGCopyHead, label_pieces, mask_offsets
from kgllm.nn.graph_encoder import RelGATEncoder


def test_mask_offsets_count_within_runs():
    sel = torch.tensor([[0, 1, 1, 0, 1], [1, 1, 1, 0, 0]], dtype=torch.bool)
    assert mask_offsets(sel).tolist() == [[-1, 0, 1, -1, 0], [0, 1, 2, -1, -1]]


def test_label_pieces_pad_with_minus_one(tokenizer):
    table = label_pieces(["Paris", "Emmanuel Macron", ""], tokenizer, max_pieces=4)
    assert table.shape == (3, 4)
    assert table[0, 0] == tokenizer.convert_tokens_to_ids("paris") and (table[0, 1:] == -1).all()
    assert (table[1] >= 0).sum() >= 2 and (table[2] == -1).all()


def _relational_batch(gen: torch.Generator, examples: int = 16, distractors: int = 3, dim: int = 8,
                      vocab: int = 2000):
    """Each example: a linked subject with one neighbour by relation 0 and one by relation 1, plus
    unconnected distractors; node states and label pieces are random, so only the relation can tell
    the answer. The mask's hidden state says which relation is asked (one-hot in its first 2 dims)."""
    per = 3 + distractors
    n = examples * per
    states = torch.randn(n, dim, generator=gen)
    pieces = torch.randperm(vocab, generator=gen)[:n].unsqueeze(1)  # a distinct one-piece label per node
    node_batch = torch.arange(examples).repeat_interleave(per)
    linked = torch.zeros(n, dtype=torch.bool)
    edges, types = [], []
    asked = torch.randint(2, (examples,), generator=gen)
    hidden = torch.randn(examples, 16, generator=gen) * 0.1
    targets = []
    for b in range(examples):
        s, o0, o1 = b * per, b * per + 1, b * per + 2
        linked[s] = True
        edges += [(s, o0), (s, o1)]
        types += [0, 1]
        hidden[b, :2] = 0
        hidden[b, asked[b]] = 3.0
        targets.append(pieces[o0 if asked[b] == 0 else o1, 0])
    return dict(hidden=hidden, vocab_logits=torch.zeros(examples, vocab), example=torch.arange(examples),
                offset=torch.zeros(examples, dtype=torch.long), node_states=states, node_batch=node_batch,
                node_pieces=pieces, linked=linked, edge_index=torch.tensor(edges).t(),
                edge_type=torch.tensor(types)), torch.stack(targets)


def _trained_head(steps: int, hide_rate: float | None = None, gate_reads_relation: bool = False) -> KGCopyHead:
    """A head trained on :func:`_relational_batch` (with ``hide_rate``: gate supervision, the answer
    hidden from the candidates in that share of examples)."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    head = KGCopyHead(16, 8, num_relations=2, gate_reads_relation=gate_reads_relation)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(steps):
        inputs, target = _relational_batch(gen)
        if hide_rate is None:
            loss = nn.functional.nll_loss(head(**inputs), target)
        else:
            hide = torch.rand(target.size(0), generator=gen) < hide_rate
            out, gate_loss = head(**inputs, gate_target=target, hide_target=hide)
            loss = nn.functional.nll_loss(out, target) + gate_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return head


def test_copying_through_the_relation_is_learned_and_generalises():
    """On a hand-made KG where the relation is the only way to score (chance 1/6 among an example's
    nodes, 1/2 between its two neighbours), the head learns to copy the asked relation's neighbour,
    and keeps doing so on new graphs, new node states and labels it never saw."""
    head = _trained_head(steps=150)
    with torch.no_grad():
        inputs, target = _relational_batch(torch.Generator().manual_seed(123), examples=200)
        acc = (head(**inputs).argmax(-1) == target).float().mean().item()
    assert acc > 0.95, acc


def _gate(head, inputs):
    node, rel = head.score_parts(inputs["hidden"], inputs["node_states"], inputs["linked"], inputs["edge_index"],
                                 inputs["edge_type"])
    _, usable = head._candidates(inputs["example"], inputs["offset"], inputs["node_batch"], inputs["node_pieces"])
    return torch.sigmoid(head.gate_logits(inputs["hidden"], node + rel, usable, rel))


@pytest.mark.parametrize("gate_reads_relation", [False, True])
def test_fact_dropout_teaches_the_gate_to_close_when_the_fact_is_missing(gate_reads_relation):
    """Trained with the answer hidden from the candidates in a share of examples (``hide_target``), the
    gate opens where the asked relation's edge exists and closes where it was deleted: the reading
    falls back to the vocabulary, as for a model without the graph."""
    head = _trained_head(steps=200, hide_rate=0.3, gate_reads_relation=gate_reads_relation)
    if gate_reads_relation:
        assert head.kg_copy_gate_rel_fit.item() > 0  # it learnt to read the relation fit
    with torch.no_grad():
        inputs, target = _relational_batch(torch.Generator().manual_seed(7), examples=200)
        present = _gate(head, inputs)
        asked = inputs["hidden"][:, :2].argmax(1)  # the relation each mask asks
        src = inputs["edge_index"][0]
        keep = inputs["edge_type"] != asked[inputs["node_batch"][src]]  # delete the asked relation's edge
        deleted = _gate(head, dict(inputs, edge_index=inputs["edge_index"][:, keep],
                                   edge_type=inputs["edge_type"][keep]))
    assert present.mean() > 0.8 and deleted.mean() < 0.3, (present.mean(), deleted.mean())
    assert (present > deleted).float().mean() > 0.95


def test_the_relation_gate_starts_as_the_plain_gate():
    """``gate_reads_relation`` adds one weight, zero at the start: the head's output is the plain
    head's until training moves it, and it then moves the gate."""
    inputs, _ = _relational_batch(torch.Generator().manual_seed(3))
    torch.manual_seed(0)
    plain = KGCopyHead(16, 8, num_relations=2)
    torch.manual_seed(0)
    rel = KGCopyHead(16, 8, num_relations=2, gate_reads_relation=True)
    assert plain.kg_copy_gate_rel_fit is None
    torch.testing.assert_close(rel(**inputs), plain(**inputs))
    with torch.no_grad():
        rel.kg_copy_gate_rel_fit.fill_(1.0)
    assert not torch.allclose(rel(**inputs), plain(**inputs))


def test_hidden_targets_are_no_candidates():
    head = KGCopyHead(16, 8, num_relations=2)
    args = (torch.randn(2, 16), torch.zeros(2, 50), torch.tensor([0, 1]), torch.tensor([0, 0]), torch.randn(4, 8),
            torch.tensor([0, 0, 1, 1]), torch.tensor([[5], [7], [9], [11]]), torch.tensor([True, False, True, False]),
            torch.tensor([[0, 2], [1, 3]]), torch.tensor([0, 0]))
    target = torch.tensor([7, 11])
    shown, shown_gate = head(*args, gate_target=target)
    hidden, hidden_gate = head(*args, gate_target=target, hide_target=torch.tensor([True, False]))
    assert hidden[0, 7] < shown[0, 7] and hidden[0, 5] > shown[0, 5]  # mass moved off the hidden answer
    torch.testing.assert_close(hidden[1], shown[1])  # not hidden: unchanged
    assert hidden_gate != shown_gate  # the gate's target flipped to "not in the graph" for mask 0


def test_without_candidates_the_vocabulary_is_kept():
    head = KGCopyHead(16, 8, num_relations=2)
    logits = torch.randn(3, 50)
    out = head(torch.randn(3, 16), logits, torch.tensor([0, 1, 1]), torch.tensor([0, 0, -1]), torch.randn(2, 8),
               torch.tensor([0, 0]), torch.tensor([[5], [7]]), torch.tensor([True, False]),
               torch.tensor([[0], [1]]), torch.tensor([1]))
    torch.testing.assert_close(out[1:], torch.log_softmax(logits[1:], -1))  # example 1 has no nodes / not a mask
    assert out[0].exp().sum().item() == pytest.approx(1.0, abs=1e-5)
    vocab = torch.softmax(logits[0], -1)
    assert out[0, [5, 7]].exp().sum() > vocab[[5, 7]].sum()  # copy mass on the nodes' pieces


def test_lm_node_inputs_embed_entities_added_after_training():
    words = nn.Embedding(30, 12)
    enc = RelGATEncoder(3, 2, hidden_channels=8, num_layers=1, heads=2, node_features="lm", text_dim=12)
    table = torch.tensor([[1, 2], [3, -1], [4, 5]])
    enc.set_label_pieces(table, words)
    assert all(p.size(0) != 3 for p in enc.state_dict().values())  # no row per entity
    before = enc.embed_nodes(torch.tensor([0, 1, 2])).detach()
    grown = torch.cat([table, torch.tensor([[6, 7]])])  # an entity added after training
    enc.set_label_pieces(grown, words)
    x = enc.embed_nodes(torch.tensor([0, 1, 2, 3]))
    torch.testing.assert_close(x[:3], before)
    expected = enc.lm_norm(enc.lm_proj(words(torch.tensor([6, 7])).mean(0)))
    torch.testing.assert_close(x[3], expected)
    out = enc(torch.tensor([0, 3]), torch.tensor([[0], [1]]), torch.tensor([1]))
    assert out.shape == (2, 8) and torch.isfinite(out).all()
    out.sum().backward()
    assert words.weight.grad is not None and words.weight.grad[6].abs().sum() > 0  # the backbone's own space


def test_lm_node_inputs_need_their_pieces():
    enc = RelGATEncoder(3, 2, hidden_channels=8, num_layers=0, heads=2, node_features="lm", text_dim=12)
    with pytest.raises(RuntimeError, match="set_label_pieces"):
        enc.embed_nodes(torch.tensor([0]))
    with pytest.raises(ValueError, match="width"):
        enc.set_label_pieces(torch.zeros(3, 1, dtype=torch.long), nn.Embedding(5, 7))


def test_counterfactual_swap_trades_answers_of_the_same_relation_only():
    from kgllm.nn.copy_head import counterfactual_swap

    # example 0: subject node 0 (linked) -P19-> node 1 "paris" [7]; example 1: node 2 (linked) -P19-> node 3 "rome" [8];
    # example 2: node 4 (linked) -P27-> node 5 "france" [9] (another relation: never a donor for P19)
    pieces = torch.tensor([[1, -1], [7, -1], [2, -1], [8, -1], [3, -1], [9, -1]])
    node_batch = torch.tensor([0, 0, 1, 1, 2, 2])
    linked = torch.tensor([True, False, True, False, True, False])
    edge_index, edge_type = torch.tensor([[0, 2, 4], [1, 3, 5]]), torch.tensor([0, 0, 1])
    labels = torch.full((3, 5), -100)
    labels[0, 2], labels[1, 3], labels[2, 1] = 7, 8, 9
    new_labels, new_pieces, swapped = counterfactual_swap(labels, pieces, node_batch, linked, edge_index, edge_type,
                                                          rate=1.0, generator=torch.Generator().manual_seed(0))
    assert new_labels[0, 2] == 8 and new_labels[1, 3] == 7 and new_labels[2, 1] == 9
    assert new_pieces[1].tolist() == [8, -1] and new_pieces[3].tolist() == [7, -1] and new_pieces[5].tolist() == [9, -1]
    assert swapped.tolist() == [True, True, False]
    assert labels[0, 2] == 7 and pieces[1, 0] == 7  # the inputs are left alone
    # a donor need not be a masked answer: any node a linked node reaches by the relation (example 3's
    # "milan" [10], not masked) joins the pool, so example 0 draws "rome" or "milan"
    pieces4 = torch.cat([pieces, torch.tensor([[4, -1], [10, -1]])])
    batch4, linked4 = torch.cat([node_batch, torch.tensor([3, 3])]), torch.cat([linked, torch.tensor([True, False])])
    edges4, types4 = torch.cat([edge_index, torch.tensor([[6], [7]])], 1), torch.cat([edge_type, torch.tensor([0])])
    labels4 = torch.cat([labels, torch.full((1, 5), -100)])
    drawn = set()
    for seed in range(20):
        out, out_pieces, _ = counterfactual_swap(labels4, pieces4, batch4, linked4, edges4, types4, rate=1.0,
                                                 generator=torch.Generator().manual_seed(seed))
        drawn.add(int(out[0, 2]))
        assert out_pieces[1, 0] == out[0, 2]  # the graph and the target agree
    assert drawn == {8, 10}
    same, _, none = counterfactual_swap(labels, pieces, node_batch, linked, edge_index, edge_type, rate=0.0)
    assert torch.equal(same, labels) and not none.any()
    unlinked = torch.zeros(6, dtype=torch.bool)  # no subject linked: nothing is answerable from the graph
    _, _, none = counterfactual_swap(labels, pieces, node_batch, unlinked, edge_index, edge_type, rate=1.0)
    assert not none.any()
