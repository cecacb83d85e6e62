"""Link entity mentions found in text to KG nodes by normalised label and type."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from kgllm.kg.graph.normalize import coarse_type, entity_key, group_mentions, normalize_label


@dataclass(frozen=True)
class Mention:
    """A character span of a text, its spaCy (or coarse) label, and the KG node it links to (-1: none)."""

    start: int
    end: int
    label: str
    node: int = -1


class EntityLinker:
    """Exact-key linker: ``TYPE:label`` first, then the label (or an alias) alone.

    Among several nodes sharing a normalised label across types, the most
    frequent one (by mention count) wins. Mentions of one text are grouped with
    the same in-document rules as the KG builder (surnames, acronyms), so a
    surname links where the full name does.
    """

    def __init__(self, keys: Sequence[str], labels: Sequence[str], aliases: Sequence[Iterable[str]],
                 counts: Sequence[int]) -> None:
        self.key_to_id = {k: i for i, k in enumerate(keys) if k is not None}  # None: a retired entity
        by_label: dict[str, Counter] = {}
        for i, (label, names) in enumerate(zip(labels, aliases)):
            for name in {label, *names}:
                by_label.setdefault(normalize_label(name), Counter())[i] = counts[i]
        self.label_to_id = {n: c.most_common(1)[0][0] for n, c in by_label.items() if n}
        self.num_nodes = len(keys)

    @classmethod
    def from_kg(cls, kg) -> "EntityLinker":
        ents, retired = kg.entities, kg.retired  # retired entities are never linked
        return cls([None if i in retired else e.key for i, e in enumerate(ents)],
                   ["" if i in retired else e.label for i, e in enumerate(ents)],
                   [() if i in retired else e.aliases for i, e in enumerate(ents)], [e.count for e in ents])

    @classmethod
    def from_folder(cls, folder: str | Path) -> "EntityLinker":
        from kgllm.kg.graph.store import KnowledgeGraph

        return cls.from_kg(KnowledgeGraph.load(folder))

    def link_one(self, surface: str, label: str) -> int:
        node = self.key_to_id.get(entity_key(surface, label))
        if node is None:
            node = self.label_to_id.get(normalize_label(surface), -1)
        return node

    def link(self, text: str, spans: Sequence[tuple[int, int, str]]) -> list[Mention]:
        """Link ``(start, end, label)`` spans of ``text``; unresolved mentions inherit a link from
        another mention of the same in-text entity."""
        surfaces = [(text[s:e], coarse_type(lab)) for s, e, lab in spans]
        nodes = [self.link_one(surf, lab) for (s, e, lab), (surf, _) in zip(spans, surfaces)]
        groups, _ = group_mentions(surfaces)
        group_node: dict[int, int] = {}
        for g, n in zip(groups, nodes):
            if n >= 0:
                group_node.setdefault(g, n)
        return [Mention(s, e, lab, n if n >= 0 else group_node.get(g, -1))
                for (s, e, lab), n, g in zip(spans, nodes, groups)]
