"""Canonical entity names: normalised labels, coarse types, in-document coreference of names.

The corpus-level key of an entity is ``"{TYPE}:{normalised label}"`` (e.g.
``PER:barack obama``); aliases (other surface forms) are kept beside it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

#: spaCy (OntoNotes) labels -> the coarse types Re-DocRED uses
COARSE_TYPES = {
    "PERSON": "PER", "ORG": "ORG", "GPE": "LOC", "LOC": "LOC", "FAC": "LOC",
    "DATE": "TIME", "TIME": "TIME", "CARDINAL": "NUM", "ORDINAL": "NUM", "QUANTITY": "NUM",
    "PERCENT": "NUM", "MONEY": "NUM", "NORP": "MISC", "PRODUCT": "MISC", "EVENT": "MISC",
    "WORK_OF_ART": "MISC", "LAW": "MISC", "LANGUAGE": "MISC",
}

_WS = re.compile(r"\s+")
_EDGE_PUNCT = "\"'`“”‘’()[]{}<>,.;:!?-–—"
_LEADING_DET = re.compile(r"^(the|a|an)\s+", re.IGNORECASE)
_POSSESSIVE = re.compile(r"\s*['’]s$")


def coarse_type(label: str) -> str:
    """spaCy's entity label as kgllm's coarse type (PER, ORG, LOC, TIME, NUM, MISC)."""
    return COARSE_TYPES.get(label, label if label in {"PER", "ORG", "LOC", "TIME", "NUM", "MISC"} else "MISC")


def normalize_label(text: str) -> str:
    """NFKC, lower case, no leading article or trailing possessive, single spaces, no edge punctuation.

    >>> normalize_label("  The  Beatles's ")
    'beatles'
    """
    text = unicodedata.normalize("NFKC", text)
    text = _WS.sub(" ", text).strip().strip(_EDGE_PUNCT).strip()
    text = _POSSESSIVE.sub("", text)
    text = _LEADING_DET.sub("", text)
    return text.lower().strip(_EDGE_PUNCT).strip()


def entity_key(label: str, etype: str) -> str:
    """An entity's key: coarse type and normalised label (``PER:barack obama``)."""
    return f"{coarse_type(etype)}:{normalize_label(label)}"


def initials(text: str) -> str:
    """The initials of a name's capitalised words (``Barack Hussein Obama`` -> ``BHO``), for acronym matching."""
    return "".join(w[0] for w in text.split() if w[:1].isupper())


@dataclass
class EntityCluster:
    """Mentions of one entity inside a document."""

    label: str  # canonical surface form (the longest mention)
    etype: str  # coarse type
    aliases: set[str] = field(default_factory=set)
    norms: set[str] = field(default_factory=set)  # normalised aliases

    @property
    def key(self) -> str:
        return entity_key(self.label, self.etype)

    def add(self, surface: str, norm: str) -> None:
        self.aliases.add(surface)
        self.norms.add(norm)
        if len(norm) > len(normalize_label(self.label)):
            self.label = surface


def _matches(cluster: EntityCluster, norm: str, etype: str, surface: str) -> bool:
    if cluster.etype != etype:
        return False
    canon = normalize_label(cluster.label)
    if norm == canon or norm in cluster.norms:
        return True
    words = canon.split()
    if etype == "PER" and len(words) > 1 and len(norm.split()) == 1:
        return norm in (words[-1], words[0])  # "Obama" / "Barack" after "Barack Obama"
    if etype in {"ORG", "MISC", "LOC"} and surface.isupper() and len(surface) >= 2:
        return initials(cluster.label) == surface  # "NASA" after "National Aeronautics and Space Administration"
    return False


def group_mentions(mentions: list[tuple[str, str]]) -> tuple[list[int], list[EntityCluster]]:
    """Group a document's mentions ``(surface, coarse_type)`` into entities.

    Returns one cluster index per mention, and the clusters. Exact normalised
    matches, surnames and first names after a full person name, and acronyms of
    earlier names join the earlier cluster. A longer name seen later (``Obama``
    then ``Barack Obama``) also joins, and becomes the canonical label.
    """
    clusters: list[EntityCluster] = []
    assignment: list[int] = []
    for surface, etype in mentions:
        norm = normalize_label(surface)
        found = next((i for i, c in enumerate(clusters) if _matches(c, norm, etype, surface)), None)
        if found is None and etype == "PER" and len(norm.split()) > 1:
            parts = norm.split()
            found = next((i for i, c in enumerate(clusters) if c.etype == "PER"
                          and len(c.label.split()) == 1
                          and normalize_label(c.label) in (parts[-1], parts[0])), None)
        if found is None:
            clusters.append(EntityCluster(surface, etype))
            found = len(clusters) - 1
        clusters[found].add(surface, norm)
        assignment.append(found)
    return assignment, clusters
