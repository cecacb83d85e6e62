"""Map character spans onto wordpiece tokens using the tokenizer's offset mapping."""

from __future__ import annotations

from typing import Sequence


def align_spans(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> list[int]:
    """For each token, the index of the span it overlaps, or -1.

    Args:
        offsets: ``(start, end)`` character offsets per token; special tokens have ``(0, 0)``.
        spans: ``(start, end)`` character spans, not overlapping each other.

    A token belongs to a span when their character ranges overlap, so a
    wordpiece that straddles a span boundary is still counted in.
    """
    order = sorted(range(len(spans)), key=lambda i: spans[i][0])
    out = [-1] * len(offsets)
    j = 0
    for t, (s, e) in enumerate(offsets):
        if e <= s:
            continue
        while j < len(order) and spans[order[j]][1] <= s:
            j += 1
        if j < len(order) and spans[order[j]][0] < e:
            out[t] = order[j]
    return out
