"""Samplers that shard across DDP ranks themselves, with an order that depends only on (seed, epoch).

kgllm's datamodules use these and the CLI runs with ``use_distributed_sampler=False``, so a
2-rank run with per-rank batch ``b`` sees exactly the global batches of a 1-rank run with batch
``2b``: rank ``r`` takes positions ``r, r + W, r + 2W, ...`` of the same permutation. Ranks are
padded to equal length (repeating the first indices) so collectives never wait on a rank that
ran out of batches.
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _shard(indices: list[int]) -> list[int]:
    rank, world = _rank_world()
    if world == 1:
        return indices
    total = -(-len(indices) // world) * world
    padded = indices + indices[: total - len(indices)]
    return padded[rank::world]


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
    """Sequential order, sharded across ranks (for validation and test)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __iter__(self) -> Iterator[int]:
        return iter(_shard(list(range(self.size))))

    def __len__(self) -> int:
        world = _rank_world()[1]
        return -(-self.size // world)
