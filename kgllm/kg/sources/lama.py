"""LAMA-format fact files, whatever the source: T-REx, Google-RE, ConceptNet, SQuAD.

One reader for every LAMA file (Petroni et al., 2019), used by ``kg-import lama``,
the ``lama_mlm`` training set and ``kgllm probe``:

* **T-REx** -- ``sub_uri`` / ``obj_uri`` (Wikidata ids), ``predicate_id``, ``sub_label`` /
  ``obj_label``, ``evidences[].masked_sentence`` (+ ``obj_surface``);
* **Google-RE** -- ``pred`` (``/people/person/place_of_birth``), ``sub`` / ``obj`` (Freebase ids
  such as ``/m/047fprg``), ``sub_label`` / ``obj_label``, ``masked_sentences``,
  ``evidences[].considered_sentences``;
* **ConceptNet** -- ``sub`` / ``obj`` (words), ``pred``, ``obj_label``, ``masked_sentences``;
* **SQuAD** -- ``sub_label``, ``obj_label``, ``masked_sentences``; no ids, no relation.

Entity keys are ``wd:<QID>`` (Wikidata), ``fb:<MID>`` (Freebase) or, for facts without ids,
``text:<normalised label>``. The relation is ``predicate_id``, else the last part of ``pred``,
else the file's stem (``P19.test.jsonl`` -> ``P19``). A path is a file or a folder of
``*.jsonl`` files (with ``splits``: ``P*.<split>.jsonl``, the T-REx layout of ``$KGLLM_DATA``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from kgllm.util.errors import KGFormatError
from kgllm.kg.extraction.corpus import read_text_file
from kgllm.kg.graph.normalize import normalize_label

MASK = "[MASK]"


@dataclass(frozen=True)
class LamaFact:
    """One LAMA fact: its relation, keyed subject and object, and its masked sentences."""

    relation: str
    sub_key: str
    sub_label: str
    obj_key: str
    obj_label: str
    masked_sentences: tuple[str, ...] = ()
    #: per masked sentence, the surface form that fills the mask (T-REx ``obj_surface``)
    obj_surfaces: tuple[str, ...] = ()
    #: per masked sentence, the subject's surface form in it (T-REx ``sub_surface``)
    sub_surfaces: tuple[str, ...] = ()
    source: tuple[str, int] = ("", 0)  # (file name, line)
    uuid: str = field(default="", compare=False)

    @property
    def pair(self) -> frozenset:
        return frozenset((self.sub_key, self.obj_key))

    def evidence(self) -> list[tuple[str, str, str]]:
        """``(sentence with the object restored, subject surface, object surface)`` per masked sentence."""
        out = []
        for i, masked in enumerate(self.masked_sentences):
            obj = self.obj_surfaces[i] if i < len(self.obj_surfaces) and self.obj_surfaces[i] else self.obj_label
            sub = self.sub_surfaces[i] if i < len(self.sub_surfaces) and self.sub_surfaces[i] else self.sub_label
            out.append((masked.replace(MASK, obj, 1), sub, obj))
        return out


def _key(prefix: str, ident) -> str | None:
    return f"{prefix}:{ident}" if isinstance(ident, str) and ident else None


def parse_fact(raw: dict, default_relation: str, source: tuple[str, int], wd: str = "wd") -> LamaFact:
    """One JSON object of any LAMA format -> :class:`LamaFact` (``KeyError``/``TypeError`` if malformed)."""
    obj_label = raw["obj_label"]
    sub_label = raw.get("sub_label") or raw.get("sub") or ""
    if not isinstance(obj_label, str) or not isinstance(sub_label, str):
        raise TypeError("sub_label and obj_label must be strings")
    if "sub_uri" in raw:  # T-REx
        sub_key, obj_key = _key(wd, raw["sub_uri"]), _key(wd, raw["obj_uri"])
    elif isinstance(raw.get("sub"), str) and raw["sub"].startswith("/m/"):  # Google-RE
        sub_key, obj_key = _key("fb", raw["sub"]), _key("fb", raw.get("obj"))
    else:  # ConceptNet, SQuAD: no ids
        sub_key, obj_key = None, None
    sub_key = sub_key or f"text:{normalize_label(sub_label)}"
    obj_key = obj_key or f"text:{normalize_label(obj_label)}"
    pred = raw.get("predicate_id") or (raw.get("pred") or "").rstrip("/").rsplit("/", 1)[-1] or default_relation
    evidences = raw.get("evidences") if isinstance(raw.get("evidences"), list) else []
    masked, obj_s, sub_s = [], [], []
    trex = [e for e in evidences if isinstance(e, dict) and isinstance(e.get("masked_sentence"), str)]
    if trex:
        for e in trex:
            masked.append(e["masked_sentence"])
            obj_s.append(e.get("obj_surface") or "")
            sub_s.append(e.get("sub_surface") or "")
    else:
        ms = raw.get("masked_sentences", raw.get("masked_sentence", []))
        masked = [ms] if isinstance(ms, str) else [m for m in ms if isinstance(m, str)]
    masked = [m for m in masked if MASK in m]
    return LamaFact(pred, sub_key, sub_label, obj_key, obj_label, tuple(masked), tuple(obj_s), tuple(sub_s),
                    source, str(raw.get("uuid") or raw.get("id") or ""))


def lama_files(path: str | Path, splits: Iterable[str] | None = None,
               relations: Iterable[str] | None = None) -> list[Path]:
    """The fact files at ``path`` (a file, or a folder filtered by ``splits`` and ``relations``)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise KGFormatError(f"{path}: no such LAMA file or folder")
    wanted = set(relations) if relations else None
    if splits:
        files = sorted(p for s in splits for p in path.glob(f"*.{s}.jsonl"))
    else:
        files = sorted(p for p in path.glob("*.jsonl") if p.name != "relations.jsonl")
    files = [p for p in files if wanted is None or p.name.split(".")[0] in wanted]
    if not files:
        what = f"*.{{{','.join(splits)}}}.jsonl" if splits else "*.jsonl"
        raise KGFormatError(f"{path}: no LAMA fact files {what}")
    return files


def read_lama(path: str | Path, splits: Iterable[str] | None = None, relations: Iterable[str] | None = None,
              max_facts: int | None = None, wd: str = "wd") -> list[LamaFact]:
    """Every fact of the LAMA file(s) at ``path``; ``max_facts``: the first N of each file."""
    facts = []
    wanted = set(relations) if relations else None
    for file in lama_files(path, splits, relations):
        stem = file.name.split(".")[0].removesuffix("_test")
        lines = [ln for ln in enumerate(read_text_file(file).splitlines(), 1) if ln[1].strip()]
        for lineno, line in lines[:max_facts]:
            try:
                fact = parse_fact(json.loads(line), stem, (file.name, lineno), wd)
            except (ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
                raise KGFormatError(f"{file}:{lineno}: not a LAMA fact ({repr(exc)[:200]})") from None
            if wanted is None or fact.relation in wanted:
                facts.append(fact)
    return facts


def read_templates(path: str | Path) -> dict[str, str]:
    """``relation -> template`` (``[X] was born in [Y] .``) from a LAMA ``relations.jsonl``; ``{}`` if absent.
    Google-RE's relations are keyed by the last part of their ``relation`` (``place_of_birth``)."""
    path = Path(path)
    if not path.is_file():
        return {}
    out = {}
    for lineno, line in enumerate(read_text_file(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            rel = json.loads(line)
            out[rel["relation"].rstrip("/").rsplit("/", 1)[-1]] = rel["template"]
        except (ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
            raise KGFormatError(f"{path}:{lineno}: not a LAMA relation ({repr(exc)[:200]})") from None
    return out


@dataclass
class FactSplit:
    """Probed facts split into *text facts* (their evidence is MLM training text) and *KG-only facts*
    (in the KG, never in a training sentence); ``excluded`` are KG-only draws that failed a check."""

    text: list[LamaFact]
    kg_only: list[LamaFact]
    excluded: list[LamaFact]

    def training_sentences(self) -> list[str]:
        return list(dict.fromkeys(sent for f in self.text for sent, _, _ in f.evidence()))

    def held_sentences(self) -> list[str]:
        """The held-out facts' evidence (KG-only and excluded draws), less any sentence that is also
        training text: the corpus "part B" a KG can be built from and a reading arm can read."""
        train = set(self.training_sentences())
        return [s for s in dict.fromkeys(sent for f in self.kg_only + self.excluded for sent, _, _ in f.evidence())
                if s not in train]


def split_facts(facts: list[LamaFact], kg_only_fraction: float = 0.5, seed: int = 0) -> FactSplit:
    """Seeded, disjoint split of ``facts`` into text facts and KG-only facts, per relation.

    A KG-only draw is excluded from probing (its edge stays in the KG) when the training text could
    still teach it: its subject-object pair is also a text fact (under any relation), or one
    training sentence contains both its subject label and its object label (case-insensitive).
    """
    import random

    if not 0.0 < kg_only_fraction < 1.0:
        raise ValueError(f"kg_only_fraction must be in (0, 1), got {kg_only_fraction}")
    rng = random.Random(seed)
    text, drawn = [], []
    by_rel: dict[str, list[LamaFact]] = {}
    for f in facts:
        by_rel.setdefault(f.relation, []).append(f)
    for rel in sorted(by_rel):
        group = list(by_rel[rel])
        rng.shuffle(group)
        k = round(kg_only_fraction * len(group))
        drawn += group[:k]
        text += group[k:]
    text_pairs = {f.pair for f in text}
    sentences = [s.lower() for s in dict.fromkeys(sent for f in text for sent, _, _ in f.evidence())]
    kg_only, excluded = [], []
    for f in drawn:
        sub, obj = f.sub_label.lower(), f.obj_label.lower()
        leaked = f.pair in text_pairs or any(sub in s and obj in s for s in sentences)
        (excluded if leaked else kg_only).append(f)
    order = {f: i for i, f in enumerate(facts)}
    return FactSplit(sorted(text, key=order.get), sorted(kg_only, key=order.get), sorted(excluded, key=order.get))
