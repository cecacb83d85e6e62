"""Wikidata property labels, so relations show as ``P19 (place of birth)`` rather than bare ids
in logs, tables and confusion matrices (``kgllm/resources/wikidata_relations.json``: the 753
properties of FewRel, DocRED/Re-DocRED and LAMA T-REx; Wikidata's labels are CC0)."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib.resources import files

_PID = re.compile(r"P[1-9]\d*")


@lru_cache(maxsize=1)
def _labels() -> dict[str, str]:
    text = (files("kgllm") / "resources" / "wikidata_relations.json").read_text(encoding="utf-8")
    return json.loads(text)["relations"]


def relation_label(name: str) -> str | None:
    """The English label of a Wikidata property id (``P19`` -> ``place of birth``), else ``None``."""
    return _labels().get(name) if _PID.fullmatch(name) else None


def with_label(name: str) -> str:
    """``P19 (place of birth)`` for a known property id; any other name unchanged."""
    label = relation_label(name)
    return f"{name} ({label})" if label else name
