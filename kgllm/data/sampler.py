"""A shuffling sampler whose order depends only on (seed, epoch)."""

from __future__ import annotations

from typing import Callable, Iterator

import torch
from torch.utils.data import Sampler


class EpochSampler(Sampler[int]):
    """A random order that is a function of (seed, epoch) only: a run resumed at epoch ``e``
    sees exactly the order an uninterrupted run sees at ``e``. Under DDP, Lightning wraps it so
    each rank takes its share."""

    def __init__(self, size: int, seed: int, epoch: Callable[[], int]) -> None:
        self.size = size
        self.seed = seed
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch())
        return iter(torch.randperm(self.size, generator=g).tolist())

    def __len__(self) -> int:
        return self.size
