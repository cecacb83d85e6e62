"""Document-level relation extraction on a BERT encoder (the ATLOP recipe, Zhou et al. 2021).

* every entity mention is wrapped in marker tokens (``*``); an entity's embedding is the
  log-sum-exp of its mentions' start-marker states, its attention the mean of theirs;
* each (head, tail) pair gets its own context (localised context pooling): the product of the
  head's and the tail's last-layer attention, averaged over heads and normalised, weights the
  token states;
* head and tail (each with that context) meet in a grouped bilinear classifier over the relation
  types plus a threshold class 0;
* the adaptive-threshold loss pushes every gold relation above the threshold class and every
  other one below it, so "no relation" needs no tuned cut-off: a relation is predicted when its
  logit beats the pair's threshold logit.

Documents longer than the encoder's window are cut into overlapping windows (each with its own
``[CLS]``/``[SEP]``); token states and attention are averaged where windows overlap
(:func:`encode_windows`).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

#: ``encode(input_ids, attention_mask, token_node, graph) -> (hidden (B, T, H), attention (B, heads, T, T))``
Encoder = Callable[[Tensor, Tensor, "Tensor | None", object], tuple[Tensor, Tensor]]


def window_starts(content: int, size: int, overlap: int) -> list[int]:
    """Start offsets of windows of ``size`` content tokens covering ``content`` tokens, consecutive
    windows sharing at least ``overlap`` tokens (the last window ends at the end)."""
    if content <= size:
        return [0]
    step = max(size - overlap, 1)
    starts = list(range(0, content - size, step))
    return starts + [content - size]


def _graph_rows(graph, docs: list[int]):
    """One copy of doc ``docs[w]``'s subgraph per window ``w``, and a map from the old graph-batch
    rows to each copy's rows (so fusion sees one example per window)."""
    from torch_geometric.data import Batch

    copies = Batch.from_data_list([graph.get_example(d) for d in docs])
    return copies, graph.ptr, copies.ptr


def encode_windows(encode: Encoder, input_ids: Tensor, attention_mask: Tensor, token_node: Tensor | None = None,
                   graph=None, window: int = 512, overlap: int = 128) -> tuple[Tensor, Tensor]:
    """Encode documents of any length; returns hidden :math:`(B, L, H)` and attention
    :math:`(B, heads, L, L)` over each document's own positions.

    A batch whose documents all fit in ``window`` is encoded in one call, exactly as ``encode``
    would, and a document that fits keeps exactly those outputs in any batch. A longer document
    (``[CLS] content [SEP]``, lengths from ``attention_mask``) is cut into windows of ``window - 2``
    content tokens overlapping by ``overlap``; each window gets its own ``[CLS]`` and ``[SEP]``; a
    position's state is the mean over the windows holding it (``[CLS]`` from the first window,
    ``[SEP]`` from the last); attention is averaged the same way over the content blocks of the
    windows (zero between tokens that never share a window) and each row renormalised.
    """
    B, L = input_ids.shape
    if L <= window:
        return encode(input_ids, attention_mask, token_node, graph)
    lengths = attention_mask.sum(1).tolist()
    size = window - 2
    rows, docs = [], []  # (doc, content start, content length) per window
    for b, n in enumerate(lengths):
        content = n - 2
        for s in window_starts(content, size, overlap):
            rows.append((b, s, min(size, content)))
            docs.append(b)
    W = min(window, max(c for _, _, c in rows) + 2)
    ids = input_ids.new_full((len(rows), W), 0)
    mask = attention_mask.new_zeros((len(rows), W))
    nodes = None if token_node is None else token_node.new_full((len(rows), W), -1)
    copies, old_ptr, new_ptr = (None, None, None) if graph is None else _graph_rows(graph, docs)
    for w, (b, s, c) in enumerate(rows):
        n = lengths[b]
        ids[w, 0], ids[w, 1:c + 1], ids[w, c + 1] = input_ids[b, 0], input_ids[b, 1 + s:1 + s + c], input_ids[b, n - 1]
        mask[w, :c + 2] = 1
        if nodes is not None:
            piece = token_node[b, 1 + s:1 + s + c]
            if copies is not None:
                piece = torch.where(piece >= 0, piece - old_ptr[b] + new_ptr[w], piece)
            nodes[w, 1:c + 1] = piece
    hidden_w, att_w = encode(ids, mask, nodes, copies)
    H, heads = hidden_w.size(-1), att_w.size(1)
    hidden = hidden_w.new_zeros(B, L, H)
    count = hidden_w.new_zeros(B, L, 1)
    att = att_w.new_zeros(B, heads, L, L)
    att_count = att_w.new_zeros(B, 1, L, L)
    windows_of = [docs.count(b) for b in range(B)]
    first = {}
    for w, (b, s, c) in enumerate(rows):
        n = lengths[b]
        if windows_of[b] == 1:  # the document fits: exactly its own one-pass states and attention
            hidden[b, :n], count[b, :n] = hidden_w[w, :n], 1
            att[b, :, :n, :n], att_count[b, :, :n, :n] = att_w[w, :, :n, :n], 1
            continue
        span = slice(1 + s, 1 + s + c)
        hidden[b, span] += hidden_w[w, 1:c + 1]
        count[b, span] += 1
        att[b, :, span, span] += att_w[w, :, 1:c + 1, 1:c + 1]
        att_count[b, :, span, span] += 1
        if b not in first:
            first[b] = w
            hidden[b, 0], count[b, 0] = hidden_w[w, 0], 1
        hidden[b, n - 1], count[b, n - 1] = hidden_w[w, c + 1], 1  # the last window's [SEP] wins
    hidden = hidden / count.clamp(min=1)
    att = att / att_count.clamp(min=1)
    multi = torch.tensor([k > 1 for k in windows_of], device=att.device)
    att = torch.where(multi[:, None, None, None], att / (att.sum(-1, keepdim=True) + 1e-10), att)
    return hidden, att


class DocREHead(nn.Module):
    """Entity pooling, localised context pooling and a grouped bilinear classifier.

    Args:
        hidden_size: encoder width.
        num_classes: relation types + 1 (class 0 is the adaptive threshold).
        emb_size: width of the head/tail representations (a multiple of ``block_size``).
        block_size: group size of the bilinear classifier.

    Shapes:
        - **input:** hidden :math:`(B, L, H)`, attention :math:`(B, heads, L, L)`, ``entity_pos``
          (per document, per entity, the start-marker positions of its mentions), ``pairs``
          (per document, :math:`(P_b, 2)` entity indices)
        - **output:** logits :math:`(\\sum_b P_b, \\text{num\\_classes})`
    """

    def __init__(self, hidden_size: int, num_classes: int, emb_size: int = 384, block_size: int = 64) -> None:
        super().__init__()
        if emb_size % block_size:
            raise ValueError(f"emb_size {emb_size} must be a multiple of block_size {block_size}")
        self.emb_size, self.block_size = emb_size, block_size
        self.head_extractor = nn.Linear(2 * hidden_size, emb_size)
        self.tail_extractor = nn.Linear(2 * hidden_size, emb_size)
        self.bilinear = nn.Linear(emb_size * block_size, num_classes)

    def forward(self, hidden: Tensor, attention: Tensor, entity_pos: Sequence[Sequence[Sequence[int]]],
                pairs: Sequence[Tensor]) -> Tensor:
        hs, ts, rs = [], [], []
        for b, entities in enumerate(entity_pos):
            if pairs[b].numel() == 0:
                continue
            emb, att = [], []
            for positions in entities:
                pos = torch.as_tensor(positions, device=hidden.device)
                emb.append(torch.logsumexp(hidden[b, pos], 0))  # (H,)
                att.append(attention[b, :, pos].mean(1))  # (heads, L)
            emb, att = torch.stack(emb), torch.stack(att)  # (E, H), (E, heads, L)
            h, t = pairs[b][:, 0], pairs[b][:, 1]
            ht_att = (att[h] * att[t]).mean(1)  # (P, L)
            ht_att = ht_att / (ht_att.sum(1, keepdim=True) + 1e-5)
            hs.append(emb[h])
            ts.append(emb[t])
            rs.append(ht_att @ hidden[b])  # (P, H)
        if not hs:
            return hidden.new_zeros(0, self.bilinear.out_features) + 0 * self.bilinear.bias
        hs, ts, rs = torch.cat(hs), torch.cat(ts), torch.cat(rs)
        hs = torch.tanh(self.head_extractor(torch.cat([hs, rs], -1)))
        ts = torch.tanh(self.tail_extractor(torch.cat([ts, rs], -1)))
        k = self.emb_size // self.block_size
        b1 = hs.view(-1, k, self.block_size)
        b2 = ts.view(-1, k, self.block_size)
        grouped = (b1.unsqueeze(3) * b2.unsqueeze(2)).view(-1, self.emb_size * self.block_size)
        return self.bilinear(grouped)


def adaptive_threshold_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """ATLOP's loss: each gold relation above the threshold class 0, the threshold above every
    other relation. ``labels`` :math:`(P, C)`, > 0 for gold (column 0 is ignored)."""
    if logits.numel() == 0:
        return logits.sum()
    gold = (labels > 0).to(logits.dtype)
    gold[:, 0] = 0
    th = torch.zeros_like(gold)
    th[:, 0] = 1
    low = torch.finfo(logits.dtype).min / 2
    positive = logits.masked_fill((gold + th) == 0, low)  # gold relations and the threshold
    negative = logits.masked_fill(gold > 0, low)  # the threshold and every non-gold relation
    loss_pos = -(F.log_softmax(positive, -1) * gold).sum(1)
    loss_neg = -(F.log_softmax(negative, -1) * th).sum(1)
    return (loss_pos + loss_neg).mean()


def predict_relations(logits: Tensor, top_k: int | None = None, margin: float = 0.0) -> Tensor:
    """Boolean :math:`(P, C - 1)`: relation ``r`` holds when its logit beats the threshold's minus
    ``margin`` (at most ``top_k`` per pair, the highest). A positive ``margin`` trades precision
    for recall (more edges); the model was trained for ``0``."""
    above = logits[:, 1:] > logits[:, :1] - margin
    if top_k is not None and logits.size(1) - 1 > top_k:
        kth = logits[:, 1:].topk(top_k, dim=1).values[:, -1:]
        above &= logits[:, 1:] >= kth
    return above
