"""Helpers that keep torch out of a module's import, so a command's ``--help`` answers at once."""

from __future__ import annotations

import functools
from typing import Callable


def no_grad(fn: Callable) -> Callable:
    """``@torch.no_grad()`` that imports torch when ``fn`` is first called, not when it is defined."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        import torch

        with torch.no_grad():
            return fn(*args, **kwargs)

    return run


__all__ = ["no_grad"]
