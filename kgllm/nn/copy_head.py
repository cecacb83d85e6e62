"""A KG copy head: at a masked position, a learned gate mixes BERT's vocabulary distribution with a
distribution over the label wordpieces of the example's subgraph nodes (a pointer-generator over
the graph, after KGLM's copying of entity aliases, Logan et al. 2019).

Node scores read the relation: a node reached from a linked (subject) node by an edge of relation
``r`` carries ``r``'s embedding (inverse edges have their own), so "[X] was born in [MASK]" can
pick the place-of-birth neighbour and not the place-of-death one. The copy distribution puts each
node's probability on the wordpiece of its label at the mask's offset within its run of masks, so
a multi-wordpiece object fills its masks piece by piece.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def label_pieces(labels: list[str], tokenizer, max_pieces: int = 8) -> Tensor:
    """Wordpiece ids of each label, :math:`(N, P)`, padded with ``-1`` (at most ``max_pieces``)."""
    table = torch.full((max(len(labels), 1), max_pieces), -1, dtype=torch.long)
    if labels:
        ids = tokenizer(list(labels), add_special_tokens=False)["input_ids"]
        for i, row in enumerate(ids):
            row = row[:max_pieces]
            table[i, :len(row)] = torch.tensor(row, dtype=torch.long)
    return table


def mask_offsets(selected: Tensor) -> Tensor:
    """Position of each selected token within its run of consecutive selected tokens, :math:`(B, T)`
    (``0`` for the first mask of a run; ``-1`` where not selected)."""
    out = torch.full_like(selected, -1, dtype=torch.long)
    run = torch.zeros(selected.size(0), dtype=torch.long, device=selected.device)
    for t in range(selected.size(1)):  # T is short (<= 512); a loop over positions, vectorised over the batch
        run = torch.where(selected[:, t], run + 1, torch.zeros_like(run))
        out[:, t] = run - 1
    return out


class KGCopyHead(nn.Module):
    r"""Mixes vocabulary and graph-copy distributions at masked positions.

    .. math::
        s_{mn} = (\mathbf{W}_q \mathbf{h}_m)^\top \mathbf{z}_n + (\mathbf{W}_r \mathbf{h}_m)^\top \bar{\mathbf{r}}_n,
        \qquad p^{\text{copy}}_m(w) = \sum_{n: \text{piece}_k(n) = w} \mathrm{softmax}_{n \in G_m}(s_{mn})

        p_m = (1 - g_m)\, \mathrm{softmax}(\mathbf{o}_m) + g_m\, p^{\text{copy}}_m, \qquad
        g_m = \sigma(\mathbf{w}_g^\top \mathbf{h}_m + a \max_{n \in G_m} s_{mn}
              + c \max_{n \in G_m} (\mathbf{W}_r \mathbf{h}_m)^\top \bar{\mathbf{r}}_n + b_g)

    where :math:`G_m` are the subgraph nodes of the mask's example whose label has a wordpiece at
    the mask's offset :math:`k`, :math:`\mathbf{z}_n` their encoded states and
    :math:`\bar{\mathbf{r}}_n` the mean embedding of the relations on edges from the example's
    linked nodes to :math:`n` (zero for nodes no linked node reaches). The gate also reads how well
    the best candidate fits (:math:`a`, zero at the start): a wording the training text never used
    still copies when a neighbour matches the relation asked. With ``gate_reads_relation`` it also
    reads, apart, how well the best candidate's *relation* fits (:math:`c`, zero at the start;
    without it :math:`c = 0`): a node of the right type reached by another relation (the deathplace
    when the birthplace edge was deleted) then need not hold the gate open. A mask whose example has
    no candidate keeps :math:`p^{\text{vocab}}` (:math:`g_m = 0`).

    Args:
        hidden_size (int): BERT width :math:`H`.
        node_dim (int): node state width :math:`D`.
        num_relations (int): KG relation types (inverse edges get ``num_relations`` more).
        gate_bias (float, optional): initial :math:`b_g`; ``-2`` starts with about 12% copy mass,
            so both branches learn from the first step. (default: ``-2.0``)
        gate_reads_relation (bool, optional): the gate also reads the best relation fit :math:`c`
            (above). (default: ``False``)

    Shapes:
        - **input:** ``hidden`` :math:`(M, H)`, ``vocab_logits`` :math:`(M, V)`, ``example``
          :math:`(M,)`, ``offset`` :math:`(M,)`, ``node_states`` :math:`(N, D)`, ``node_batch``
          :math:`(N,)`, ``node_pieces`` :math:`(N, P)`, ``linked`` :math:`(N,)` bool,
          ``edge_index`` :math:`(2, E)`, ``edge_type`` :math:`(E,)`
        - **output:** log-probabilities :math:`(M, V)`
    """

    def __init__(self, hidden_size: int, node_dim: int, num_relations: int, gate_bias: float = -2.0,
                 gate_reads_relation: bool = False) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.node_dim = node_dim
        self.num_relations = max(num_relations, 1)
        self.gate_bias = gate_bias
        self.kg_copy_query = nn.Linear(hidden_size, node_dim)
        self.kg_copy_rel_query = nn.Linear(hidden_size, node_dim)
        self.kg_copy_rel = nn.Embedding(2 * self.num_relations, node_dim)
        self.kg_copy_gate = nn.Linear(hidden_size, 1)
        self.kg_copy_gate_fit = nn.Parameter(torch.zeros(()))
        self.kg_copy_gate_rel_fit = nn.Parameter(torch.zeros(())) if gate_reads_relation else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.kg_copy_query.reset_parameters()
        self.kg_copy_rel_query.reset_parameters()
        nn.init.normal_(self.kg_copy_rel.weight, std=0.1)
        nn.init.zeros_(self.kg_copy_gate.weight)
        nn.init.constant_(self.kg_copy_gate.bias, self.gate_bias)
        nn.init.zeros_(self.kg_copy_gate_fit)
        if self.kg_copy_gate_rel_fit is not None:
            nn.init.zeros_(self.kg_copy_gate_rel_fit)

    def relation_context(self, num_nodes: int, linked: Tensor, edge_index: Tensor, edge_type: Tensor) -> Tensor:
        """Mean embedding of the relations from linked nodes to each node, :math:`(N, D)`."""
        ctx = self.kg_copy_rel.weight.new_zeros(num_nodes, self.node_dim)
        count = self.kg_copy_rel.weight.new_zeros(num_nodes)
        if edge_index.numel():
            src, dst = edge_index
            rel = edge_type.clamp(max=self.num_relations - 1)
            for a, b, r in ((src, dst, rel), (dst, src, rel + self.num_relations)):  # forward, inverse
                keep = linked[a]
                ctx = ctx.index_add(0, b[keep], self.kg_copy_rel(r[keep]))
                count = count.index_add(0, b[keep], torch.ones_like(b[keep], dtype=count.dtype))
        return ctx / count.clamp(min=1).unsqueeze(1)

    def _candidates(self, example: Tensor, offset: Tensor, node_batch: Tensor, node_pieces: Tensor):
        k = offset.clamp(min=0, max=node_pieces.size(1) - 1)  # (M,)
        pieces = node_pieces[:, k].t()  # (M, N): each node's wordpiece at the mask's offset
        usable = (node_batch.unsqueeze(0) == example.unsqueeze(1)) & (pieces >= 0) & (offset >= 0).unsqueeze(1)
        return pieces, usable

    def score_parts(self, hidden: Tensor, node_states: Tensor, linked: Tensor, edge_index: Tensor,
                    edge_type: Tensor) -> tuple[Tensor, Tensor]:
        """The node-state and relation terms of :math:`s_{mn}`, each :math:`(M, N)`."""
        z = node_states.float()  # (N, D)
        rel_ctx = self.relation_context(z.size(0), linked, edge_index, edge_type)  # (N, D)
        h = hidden.float()
        return self.kg_copy_query(h) @ z.t(), self.kg_copy_rel_query(h) @ rel_ctx.t()

    def scores(self, hidden: Tensor, node_states: Tensor, linked: Tensor, edge_index: Tensor,
               edge_type: Tensor) -> Tensor:
        """:math:`s_{mn}` for every mask and node, :math:`(M, N)`."""
        node, rel = self.score_parts(hidden, node_states, linked, edge_index, edge_type)
        return node + rel

    def gate_logits(self, hidden: Tensor, scores: Tensor, usable: Tensor, rel_scores: Tensor | None = None) -> Tensor:
        """The gate before its sigmoid, :math:`(M,)` (``rel_scores``: the relation term, read when the
        head was built with ``gate_reads_relation``)."""
        has = usable.any(1)

        def best(x: Tensor) -> Tensor:  # the best candidate's value per mask, 0 without candidates
            top = x.masked_fill(~usable, float("-inf")).amax(1)
            return torch.where(has, top, torch.zeros_like(top))

        out = self.kg_copy_gate(hidden.float()).squeeze(-1) + self.kg_copy_gate_fit * best(scores)
        if self.kg_copy_gate_rel_fit is not None and rel_scores is not None:
            out = out + self.kg_copy_gate_rel_fit * best(rel_scores)
        return out

    def forward(self, hidden: Tensor, vocab_logits: Tensor, example: Tensor, offset: Tensor, node_states: Tensor,
                node_batch: Tensor, node_pieces: Tensor, linked: Tensor, edge_index: Tensor,
                edge_type: Tensor, gate_target: Tensor | None = None,
                hide_target: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:
        """Log-probabilities of the mixture, :math:`(M, V)`; with ``gate_target`` (the targets' wordpiece
        ids) also the gate's binary cross-entropy against "the target is a candidate's piece here"
        (where copying from the graph is right). ``hide_target`` :math:`(M,)` bool removes, at those
        masks, every candidate whose piece is the target (the fact is then missing from the graph, the
        gate's target is 0 and the loss falls on the vocabulary: training for deleted facts)."""
        log_vocab = torch.log_softmax(vocab_logits.float(), dim=-1)  # (M, V)
        if hidden.size(0) == 0 or node_states.size(0) == 0:
            out = log_vocab + 0.0 * sum(p.sum() for p in self.parameters())  # keep every parameter in the graph
            return (out, out.sum() * 0.0) if gate_target is not None else out
        node_part, rel_part = self.score_parts(hidden, node_states, linked, edge_index, edge_type)
        scores = node_part + rel_part  # (M, N)
        pieces, usable = self._candidates(example, offset, node_batch, node_pieces)
        if hide_target is not None and gate_target is not None:
            usable = usable & ~((pieces == gate_target.unsqueeze(1)) & hide_target.unsqueeze(1))
        has = usable.any(1)  # (M,)
        p_node = torch.softmax(scores.masked_fill(~usable, float("-inf")).masked_fill(~has.unsqueeze(1), 0.0),
                               dim=-1) * usable  # (M, N)
        p_copy = torch.zeros_like(log_vocab).scatter_add_(1, pieces.clamp(min=0), p_node)  # (M, V)
        gate_logit = self.gate_logits(hidden, scores, usable, rel_part)  # (M,)
        gate = (torch.sigmoid(gate_logit) * has).unsqueeze(1)  # (M, 1)
        mixed = torch.log(((1 - gate) * log_vocab.exp() + gate * p_copy).clamp_min(1e-30))
        if gate_target is None:
            return mixed
        should = ((pieces == gate_target.unsqueeze(1)) & usable).any(1)
        return mixed, nn.functional.binary_cross_entropy_with_logits(gate_logit, should.float())

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(hidden={self.hidden_size}, node_dim={self.node_dim}, "
                f"relations={self.num_relations})")


def counterfactual_swap(labels: Tensor, node_pieces: Tensor, node_batch: Tensor, linked: Tensor, edge_index: Tensor,
                        edge_type: Tensor, rate: float, generator: torch.Generator | None = None
                        ) -> tuple[Tensor, Tensor, Tensor]:
    """Counterfactual facts for training the copy head to trust the graph over what the weights
    remember (after the entity substitutions of Longpre et al., 2021, "Entity-Based Knowledge
    Conflicts in Question Answering"): a masked run whose wordpieces are exactly the label of a
    subgraph node that a linked (subject) node reaches by relation ``r`` is *answerable from the
    graph*; with probability ``rate`` such a run gets the label of another node of the batch that a
    linked node reaches by the same relation (any example's: the probed subjects' relation
    distractors make this pool large), with as many wordpieces and another label, and its node
    gets that label's pieces. The graph and the target then agree on a fact the text does
    not state, so only copying from the graph scores. Returns the new ``labels`` :math:`(B, T)`,
    ``node_pieces`` :math:`(N, P)` (copies) and which examples got a swapped run, :math:`(B,)` bool."""
    sel = labels != -100
    swapped = torch.zeros(labels.size(0), dtype=torch.bool, device=labels.device)
    if rate <= 0 or not sel.any() or edge_index.numel() == 0:
        return labels, node_pieces, swapped
    src, dst = edge_index
    reach = {}  # node -> relation of the first edge from a linked node to it
    for s, d, r in zip(src.tolist(), dst.tolist(), edge_type.tolist()):
        if linked[s] and not linked[d]:
            reach.setdefault(d, r)
    pieces_of = node_pieces.tolist()
    batch_of = node_batch.tolist()
    by_example: dict[int, list[int]] = {}
    for n in reach:
        by_example.setdefault(batch_of[n], []).append(n)
    runs = []  # (example, start, end, node, relation, target)
    sel_rows = sel.tolist()
    label_rows = labels.tolist()
    for b, row in enumerate(sel_rows):
        t = 0
        while t < len(row):
            if not row[t]:
                t += 1
                continue
            end = t
            while end < len(row) and row[end]:
                end += 1
            target = tuple(label_rows[b][t:end])
            for n in by_example.get(b, ()):
                p = pieces_of[n]
                if tuple(p[:len(target)]) == target and (len(target) == len(p) or p[len(target)] == -1):
                    runs.append((b, t, end, n, reach[n], target))
                    break
            t = end
    if not runs:
        return labels, node_pieces, swapped
    pool: dict[tuple[int, int], list[int]] = {}  # (relation, wordpieces) -> nodes a linked node reaches by it
    for n, r in reach.items():
        pool.setdefault((r, sum(x >= 0 for x in pieces_of[n])), []).append(n)
    flip = torch.rand(len(runs), generator=generator).lt(rate).tolist()
    pick = torch.rand(len(runs), generator=generator).tolist()
    labels, node_pieces = labels.clone(), node_pieces.clone()
    changed = set()
    for k, (b, start, end, n, r, target) in enumerate(runs):
        if not flip[k] or n in changed:
            continue
        donors = [d for d in pool.get((r, len(target)), ()) if tuple(pieces_of[d][:len(target)]) != target]
        if not donors:
            continue
        donor = donors[min(int(pick[k] * len(donors)), len(donors) - 1)]
        labels[b, start:end] = torch.tensor(pieces_of[donor][:len(target)], dtype=labels.dtype, device=labels.device)
        node_pieces[n] = torch.tensor(pieces_of[donor], dtype=node_pieces.dtype, device=node_pieces.device)
        changed.add(n)
        swapped[b] = True
    return labels, node_pieces, swapped
