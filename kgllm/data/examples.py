"""What every dataset loader returns: :class:`TextExample` lists for the splits in :data:`SPLITS`."""

from __future__ import annotations

from dataclasses import dataclass, field

SPLITS = ("train", "val", "test")
#: joins the two texts of a pair for mention detection and linking (never tokenised)
PAIR_SEP = "\n\n"


@dataclass
class TextExample:
    """One text with an optional label and, for relation classification, head/tail character spans;
    for document-level relation extraction, its entities (each a list of mention character spans)
    and gold ``(head entity, tail entity, relation index, in_train)`` triples (``in_train``: the
    fact is also annotated in the training split, which Ign F1 leaves out)."""

    text: str
    label: int | list[int] = -1  # a list for multi-label classification
    head: tuple[int, int] | None = None
    tail: tuple[int, int] | None = None
    spans: list[tuple[int, int, str]] = field(default_factory=list)  # known mentions (start, end, label)
    links: list[tuple[int, int, str]] = field(default_factory=list)  # known links (start, end, KG entity key)
    entities: list[list[tuple[int, int]]] = field(default_factory=list)
    triples: list[tuple[int, int, int, bool]] = field(default_factory=list)
    text_pair: str | None = None  # the second text of a sequence pair (``seq_pair``)

    @property
    def full_text(self) -> str:
        """The text mentions are found in: ``text``, or ``text`` + :data:`PAIR_SEP` + ``text_pair``
        (character offsets into the second text are shifted by ``len(text) + len(PAIR_SEP)``)."""
        return self.text if self.text_pair is None else self.text + PAIR_SEP + self.text_pair
