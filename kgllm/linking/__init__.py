"""Text mentions -> KG node ids -> wordpiece tokens. No torch here."""

from kgllm.linking.align import align_spans
from kgllm.linking.linker import EntityLinker, Mention

__all__ = ["EntityLinker", "Mention", "align_spans"]
