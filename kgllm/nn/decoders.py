"""Link-prediction decoders that score (head, relation, tail) from given entity embeddings.

PyG's ``torch_geometric.nn.kge`` models own their node-embedding tables; here the entity
embeddings come from an encoder (the GAT, or a plain table), so the decoders take them as
input. Each scores one query against many candidate tails with a matrix product:

* ``distmult``: :math:`\\langle \\mathbf{h}, \\mathbf{r}, \\mathbf{t} \\rangle`;
* ``complex``: :math:`\\mathrm{Re}\\langle \\mathbf{h}, \\mathbf{r}, \\bar{\\mathbf{t}} \\rangle`;
* ``transe``: :math:`\\gamma - \\lVert \\mathbf{h} + \\mathbf{r} - \\mathbf{t} \\rVert_2^2`;
* ``rotate``: :math:`\\gamma - \\lVert \\mathbf{h} \\circ e^{i\\theta_r} - \\mathbf{t} \\rVert_2^2` (squared L2
  over the complex coordinates, which turns 1-vs-all scoring into a matrix product).

Relations come in pairs: ``r`` and its inverse ``r + R`` (reciprocal queries ``(t, r^{-1}, ?)``
predict heads), so every decoder holds ``2 R`` relation embeddings.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor, nn


class Decoder(nn.Module):
    """Base: ``score(h, r, candidates)`` -> :math:`(B, N)` for queries ``h`` :math:`(B, D)`, relation
    ids ``r`` :math:`(B,)` and candidate embeddings :math:`(N, D)`."""

    def __init__(self, num_relations: int, dim: int, rel_dim: int | None = None) -> None:
        super().__init__()
        self.num_relations = num_relations
        self.dim = dim
        self.rel = nn.Embedding(2 * num_relations, rel_dim or dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.rel.weight)

    def score(self, h: Tensor, r: Tensor, candidates: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def score_pairs(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        """Scores of aligned triples ``(h[i], r[i], t[i])``, :math:`(B,)`."""
        return torch.diagonal(self.score(h, r, t))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(relations={self.num_relations}, dim={self.dim})"


class DistMult(Decoder):
    r"""DistMult: score :math:`\langle h, r, t \rangle` (Yang et al., 2015)."""

    def score(self, h: Tensor, r: Tensor, candidates: Tensor) -> Tensor:
        return (h * self.rel(r)) @ candidates.t()  # (B, N)


class ComplEx(Decoder):
    r"""ComplEx: :math:`\mathrm{Re}\langle h, r, \bar t \rangle` over complex halves (Trouillon et al., 2016)."""

    def score(self, h: Tensor, r: Tensor, candidates: Tensor) -> Tensor:
        hr, hi = h.chunk(2, dim=-1)
        rr, ri = self.rel(r).chunk(2, dim=-1)
        q = torch.cat([hr * rr - hi * ri, hr * ri + hi * rr], dim=-1)  # h * r (complex)
        return q @ candidates.t()  # Re<h r, conj(t)>


class _Distance(Decoder):
    """Squared L2 distance between a translated/rotated query and each candidate."""

    def __init__(self, num_relations: int, dim: int, gamma: float = 12.0, rel_dim: int | None = None) -> None:
        self.gamma = gamma
        super().__init__(num_relations, dim, rel_dim)

    def query(self, h: Tensor, r: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def score(self, h: Tensor, r: Tensor, candidates: Tensor) -> Tensor:
        q = self.query(h, r)  # (B, D)
        d = (q * q).sum(-1, keepdim=True) + (candidates * candidates).sum(-1) - 2 * q @ candidates.t()
        return self.gamma - d.clamp_min(0)


class TransE(_Distance):
    r"""TransE: :math:`\gamma - \lVert h + r - t \rVert` (Bordes et al., 2013)."""

    def query(self, h: Tensor, r: Tensor) -> Tensor:
        return h + self.rel(r)


class RotatE(_Distance):
    r"""RotatE: :math:`\gamma - \lVert h \circ r - t \rVert` with unit-modulus complex relations (Sun et al., 2019)."""

    def __init__(self, num_relations: int, dim: int, gamma: float = 12.0) -> None:
        if dim % 2:
            raise ValueError("RotatE needs an even embedding width (real and imaginary halves)")
        super().__init__(num_relations, dim, gamma, rel_dim=dim // 2)

    def reset_parameters(self) -> None:
        nn.init.uniform_(self.rel.weight, -math.pi, math.pi)

    def query(self, h: Tensor, r: Tensor) -> Tensor:
        hr, hi = h.chunk(2, dim=-1)
        phase = self.rel(r)
        cr, ci = torch.cos(phase), torch.sin(phase)
        return torch.cat([hr * cr - hi * ci, hr * ci + hi * cr], dim=-1)


DECODERS: dict[str, Callable[..., Decoder]] = {"distmult": DistMult, "complex": ComplEx, "transe": TransE,
                                               "rotate": RotatE}


def build_decoder(name: str, num_relations: int, dim: int) -> Decoder:
    """A link-prediction decoder by name (distmult, complex, transe, rotate)."""
    if name not in DECODERS:
        raise ValueError(f"unknown decoder {name!r}; choose one of {sorted(DECODERS)}")
    return DECODERS[name](num_relations, dim)
