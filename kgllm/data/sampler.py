"""Samplers that shard across DDP ranks themselves, with an order that depends only on (seed, epoch).

kgllm's datamodules use these and the CLI runs with ``use_distributed_sampler=False``, so a
2-rank run with per-rank batch ``b`` sees exactly the global batches of a 1-rank run with batch
``2b``: rank ``r`` takes positions ``r, r + W, r + 2W, ...`` of the same permutation. Ranks are
padded to equal length (repeating the first indices), because DDP runs collectives in every
forward pass (buffer broadcast), evaluation included. Evaluation padding is *marked*: a padded
position is yielded as ``index + size``, which :class:`Padded` turns into the example flagged as
padding, and the collators give it no label, so every example is scored exactly once.

Hand-written rather than torch's ``DistributedSampler``: that one pads evaluation with unmarked
duplicates (or drops examples with ``drop_last``), which counts some examples twice or never.
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import torch
import torch.distributed as dist
from torch.utils.data import Dataset, Sampler


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _shard(indices: list[int], mark_padding: bool = False) -> list[int]:
    rank, world = _rank_world()
    if world == 1:
        return indices
    total = -(-len(indices) // world) * world
    extra = indices[: total - len(indices)]
    indices = indices + ([i + len(indices) for i in extra] if mark_padding else extra)
    return indices[rank::world]


class EpochSampler(Sampler[int]):
    """A random order that is a function of (seed, epoch) only: a run resumed at epoch ``e`` sees
    exactly the order an uninterrupted run sees at ``e``; every ablation arm of a seed sees the same."""

    def __init__(self, size: int, seed: int, epoch: Callable[[], int]) -> None:
        self.size = size
        self.seed = seed
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch())
        return iter(_shard(torch.randperm(self.size, generator=g).tolist()))

    def __len__(self) -> int:
        world = _rank_world()[1]
        return -(-self.size // world)


class ShardSampler(Sampler[int]):
    """Sequential order, sharded across ranks (for validation and test); padding positions are
    yielded as ``index + size`` (read the data through :class:`Padded`)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __iter__(self) -> Iterator[int]:
        return iter(_shard(list(range(self.size)), mark_padding=True))

    def __len__(self) -> int:
        world = _rank_world()[1]
        return -(-self.size // world)


class Padded(Dataset):
    """``data[i]`` for ``i < len(data)``; ``mark(data[i - len(data)])`` for the padding positions
    that :class:`ShardSampler` yields past the end."""

    def __init__(self, data: Sequence, mark: Callable) -> None:
        self.data = data
        self.mark = mark

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int):
        n = len(self.data)
        return self.data[i] if i < n else self.mark(self.data[i - n])


def mark_padding(feature: dict) -> dict:
    """A copy of ``feature`` flagged as padding (the collators give it no label)."""
    return {**feature, "padding": True}
