"""A recall margin for the learned extractor: a relation is kept when its logit is above the pair's
threshold minus the margin."""

import torch

from kgllm.nn.docre import predict_relations
from kgllm.tasks.docre import DocREScore


def test_a_margin_adds_relations_just_below_the_threshold():
    logits = torch.tensor([[0.0, 0.5, -0.4, -2.0]])  # threshold 0: r0 above, r1 0.4 below, r2 2 below
    assert predict_relations(logits).tolist() == [[True, False, False]]
    assert predict_relations(logits, margin=0.5).tolist() == [[True, True, False]]
    assert predict_relations(logits, margin=3.0, top_k=2).tolist() == [[True, True, False]]


def test_the_score_reads_the_margin():
    logits = torch.tensor([[0.0, 0.5, -0.4, -2.0]])
    labels = torch.tensor([[0, 1, 1, 0]])  # gold: r0 and r1
    plain, wide = DocREScore("recall"), DocREScore("recall", margin=0.5)
    plain.update(logits, labels)
    wide.update(logits, labels)
    assert plain.compute() == 0.5 and wide.compute() == 1.0
