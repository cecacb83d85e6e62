"""A KG's edges and label wordpieces as memory-mapped arrays, for fusion over KGs far larger than
memory allows for per-entity rows: a batch's subgraph is read from the files (only its pages are
touched), and with ``lm`` node inputs (:class:`kgllm.nn.graph_encoder.RelGATEncoder`) no tensor has
a row per entity.

A folder holds NumPy ``.npy`` files (``np.load(..., mmap_mode="r")``):

* ``indptr.npy`` -- int64 :math:`(N + 1,)`, CSR row pointers over the heads;
* ``indices.npy`` -- int32 :math:`(E,)`, the tails of each head's edges;
* ``relations.npy`` -- int16 :math:`(E,)`, their relation ids;
* ``pieces.npy`` -- int32 :math:`(N, P)`, each entity's label wordpieces, ``-1`` padded.

Hand-written: PyG's ``NeighborLoader`` needs pyg-lib or torch-sparse (no wheels here) and holds
``edge_index`` in memory; ``k_hop_subgraph`` does too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILES = ("indptr.npy", "indices.npy", "relations.npy", "pieces.npy")


@dataclass
class Subgraph:
    """A batch's nodes (global ids), its edges local to them, their relations, and the nodes' pieces."""

    n_id: np.ndarray  # (N,) int64
    edge_index: np.ndarray  # (2, E) int64, local
    edge_type: np.ndarray  # (E,) int64
    node_pieces: np.ndarray  # (N, P) int64


class MmapGraph:
    """The arrays of a folder written by :func:`write_synthetic` (or any writer of the same files)."""

    def __init__(self, folder: str | Path) -> None:
        folder = Path(folder)
        missing = [f for f in FILES if not (folder / f).is_file()]
        if missing:
            raise FileNotFoundError(f"{folder}: not a memory-mapped graph (missing {', '.join(missing)})")
        self.indptr, self.indices, self.relations, self.pieces = (np.load(folder / f, mmap_mode="r") for f in FILES)
        if self.indptr.shape[0] != self.pieces.shape[0] + 1 or self.indices.shape != self.relations.shape:
            raise ValueError(f"{folder}: the arrays' shapes do not match (indptr {self.indptr.shape}, pieces "
                             f"{self.pieces.shape}, indices {self.indices.shape}, relations {self.relations.shape})")

    @property
    def num_nodes(self) -> int:
        return self.pieces.shape[0]

    @property
    def num_edges(self) -> int:
        return self.indices.shape[0]

    def subgraph(self, seeds: np.ndarray, fanout: int, rng: np.random.Generator) -> Subgraph:
        """The seeds, up to ``fanout`` out-edges of each (drawn without replacement), and their tails;
        seeds come first in ``n_id``, in their given order (duplicates kept once), then the new tails
        in order of their seed id."""
        seeds = np.asarray(seeds, dtype=np.int64)
        heads, tails, rels = [], [], []
        for s in np.unique(seeds):
            lo, hi = int(self.indptr[s]), int(self.indptr[s + 1])
            take = np.arange(lo, hi) if hi - lo <= fanout else lo + rng.choice(hi - lo, fanout, replace=False)
            heads.append(np.full(len(take), s, dtype=np.int64))
            tails.append(np.asarray(self.indices[np.sort(take)], dtype=np.int64))
            rels.append(np.asarray(self.relations[np.sort(take)], dtype=np.int64))
        h = np.concatenate(heads) if heads else np.zeros(0, np.int64)
        t = np.concatenate(tails) if tails else np.zeros(0, np.int64)
        order = list(dict.fromkeys(seeds.tolist()))
        seen = set(order)
        n_id = np.asarray(order + [v for v in dict.fromkeys(t.tolist()) if v not in seen], dtype=np.int64)
        local = {v: i for i, v in enumerate(n_id.tolist())}
        edge_index = np.asarray([[local[v] for v in h.tolist()], [local[v] for v in t.tolist()]], dtype=np.int64)
        pieces = np.asarray(self.pieces[np.sort(n_id)], dtype=np.int64)[np.argsort(np.argsort(n_id))]
        return Subgraph(n_id, edge_index.reshape(2, -1), np.concatenate(rels) if rels else np.zeros(0, np.int64),
                        pieces)


def write_synthetic(folder: str | Path, num_nodes: int, degree: int = 10, num_relations: int = 50,
                    max_pieces: int = 4, vocab: tuple[int, int] = (1000, 30000), seed: int = 0,
                    chunk: int = 1_000_000) -> MmapGraph:
    """A random KG of ``num_nodes`` entities with ``degree`` out-edges each (uniform tails and
    relations) and labels of 1 to ``max_pieces`` wordpieces drawn from ``vocab``, written in chunks
    (memory bounded by ``chunk``), to benchmark fusion at scales no real KG here has."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_edges = num_nodes * degree
    fmt = np.lib.format
    indptr = fmt.open_memmap(folder / "indptr.npy", "w+", np.int64, (num_nodes + 1,))
    indices = fmt.open_memmap(folder / "indices.npy", "w+", np.int32, (n_edges,))
    relations = fmt.open_memmap(folder / "relations.npy", "w+", np.int16, (n_edges,))
    pieces = fmt.open_memmap(folder / "pieces.npy", "w+", np.int32, (num_nodes, max_pieces))
    for lo in range(0, num_nodes + 1, chunk):
        hi = min(lo + chunk, num_nodes + 1)
        indptr[lo:hi] = np.arange(lo, hi, dtype=np.int64) * degree
    for lo in range(0, n_edges, chunk):
        hi = min(lo + chunk, n_edges)
        indices[lo:hi] = rng.integers(0, num_nodes, hi - lo, dtype=np.int32)
        relations[lo:hi] = rng.integers(0, num_relations, hi - lo, dtype=np.int16)
    for lo in range(0, num_nodes, chunk):
        hi = min(lo + chunk, num_nodes)
        block = rng.integers(vocab[0], vocab[1], (hi - lo, max_pieces), dtype=np.int32)
        length = rng.integers(1, max_pieces + 1, hi - lo)
        block[np.arange(max_pieces)[None, :] >= length[:, None]] = -1
        pieces[lo:hi] = block
    for arr in (indptr, indices, relations, pieces):
        arr.flush()
    del indptr, indices, relations, pieces
    return MmapGraph(folder)
