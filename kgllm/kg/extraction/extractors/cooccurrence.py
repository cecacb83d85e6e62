"""Sentence co-occurrence: an edge ``co_occurs_with`` between every two entities mentioned in one
sentence (pronouns excluded), confidence 0.1. The baseline every learned extractor must beat, and
a recall ceiling for sentence-level extraction."""

from __future__ import annotations

from kgllm.kg.extraction.extractors import Extractor, MentionedDoc, TripleRow

COOCCURRENCE = "co_occurs_with"


class CooccurrenceExtractor(Extractor):
    """Baseline extractor: one untyped edge between every two entities of a sentence."""

    name = "cooccurrence"
    version = "kgllm-cooccurrence/1"

    def extract(self, mdoc: MentionedDoc) -> list[TripleRow]:
        out, seen = [], set()
        for sent, mi, mj in mdoc.sentence_pairs():
            a, b = mdoc.spans[mi], mdoc.spans[mj]
            ea, eb = mdoc.owner[mi], mdoc.owner[mj]
            if "PRON" in (a.label_, b.label_) or (ea, eb, sent) in seen:
                continue
            seen.add((ea, eb, sent))
            out.append(TripleRow(ea, COOCCURRENCE, eb, sent, *mdoc.span_of(mi, mj), 0.1))
        return out
