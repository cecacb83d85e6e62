"""Optional corpus preparation before extraction, each step counted in a report.

Steps, in order (each off unless asked for):

* ``unicode``  -- NFKC normalisation;
* ``clean``    -- HTML/XML markup stripped (stdlib ``html.parser``), entities unescaped,
  runs of whitespace folded;
* ``min_words`` -- documents with fewer words are dropped;
* ``dedup``    -- ``exact`` drops documents whose (prepared) text was seen before;
  ``near`` also drops near-duplicates: MinHash over word 5-shingles with LSH
  (datasketch), Jaccard threshold ``near_threshold``.

Text-changing steps shift character offsets, so gold-annotated corpora
(Re-DocRED) are built without them. The corpus is streamed; near-duplicate
detection keeps one small MinHash signature per kept document.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from typing import Iterable, Iterator

from kgllm.kg.extraction.corpus import Document

_WS = re.compile(r"[ \t\r\f\v]+")
_BLANKS = re.compile(r"\n\s*\n+")


@dataclass
class PrepareConfig:
    """Corpus preparation before extraction: Unicode normalisation, clean-up, minimum words, exact or near deduplication."""

    unicode: bool = False
    clean: bool = False
    min_words: int = 0
    dedup: str = "none"  # none | exact | near
    near_threshold: float = 0.8
    num_perm: int = 64

    @property
    def active(self) -> bool:
        return self.unicode or self.clean or self.min_words > 0 or self.dedup != "none"


@dataclass
class PrepareReport:
    """What preparation changed or removed, by reason (written to ``meta.json``)."""

    documents_in: int = 0
    documents_out: int = 0
    changed_unicode: int = 0
    changed_clean: int = 0
    removed_min_words: int = 0
    removed_exact_duplicates: int = 0
    removed_near_duplicates: int = 0
    removed_examples: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        return (f"prepare: {self.documents_in} documents in, {self.documents_out} out; "
                f"unicode-normalised {self.changed_unicode}, cleaned {self.changed_clean}; removed: "
                f"{self.removed_min_words} too short, {self.removed_exact_duplicates} exact duplicates, "
                f"{self.removed_near_duplicates} near duplicates")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag, attrs) -> None:
        if tag in {"p", "br", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6"}:
            self.parts.append("\n")


def strip_markup(text: str) -> str:
    """Markup removed, entities unescaped, whitespace folded (paragraph breaks kept)."""
    if "<" in text and ">" in text:
        parser = _TextExtractor()
        parser.feed(text)
        parser.close()
        text = "".join(parser.parts)
    else:
        text = html.unescape(text)
    text = _WS.sub(" ", text)
    text = _BLANKS.sub("\n\n", text)
    return "\n".join(line.strip() for line in text.split("\n")).strip()


def _shingles(text: str, k: int = 5) -> set[bytes]:
    words = text.lower().split()
    if len(words) < k:
        return {" ".join(words).encode()}
    return {" ".join(words[i:i + k]).encode() for i in range(len(words) - k + 1)}


def prepare(docs: Iterable[Document], cfg: PrepareConfig, report: PrepareReport) -> Iterator[Document]:
    """Yield prepared documents, counting what each step changed or removed into ``report``."""
    seen: set[bytes] = set()
    lsh = None
    if cfg.dedup == "near":
        from datasketch import MinHashLSH

        lsh = MinHashLSH(threshold=cfg.near_threshold, num_perm=cfg.num_perm)
    for doc in docs:
        report.documents_in += 1
        text = doc.text
        if cfg.unicode:
            new = unicodedata.normalize("NFKC", text)
            report.changed_unicode += new != text
            text = new
        if cfg.clean:
            new = strip_markup(text)
            report.changed_clean += new != text
            text = new
        if cfg.min_words and len(text.split()) < cfg.min_words:
            report.removed_min_words += 1
            report.removed_examples.setdefault("min_words", doc.doc_id)
            continue
        if cfg.dedup in ("exact", "near"):
            digest = hashlib.sha1(text.encode("utf-8")).digest()
            if digest in seen:
                report.removed_exact_duplicates += 1
                report.removed_examples.setdefault("exact_duplicate", doc.doc_id)
                continue
            seen.add(digest)
        if lsh is not None:
            from datasketch import MinHash

            mh = MinHash(num_perm=cfg.num_perm, seed=1)
            mh.update_batch(list(_shingles(text)))
            if lsh.query(mh):
                report.removed_near_duplicates += 1
                report.removed_examples.setdefault("near_duplicate", doc.doc_id)
                continue
            lsh.insert(doc.doc_id + f"#{report.documents_in}", mh)
        report.documents_out += 1
        yield Document(doc.doc_id, text, doc.meta)
