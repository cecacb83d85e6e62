"""Exceptions with messages that name the offending file and the problem."""

from __future__ import annotations


class KGLLMError(Exception):
    """Base class of all errors kgllm raises on bad input."""


class CorpusError(KGLLMError):
    """A corpus file is empty, not UTF-8, or malformed."""


class DatasetNotFoundError(KGLLMError):
    """A dataset file is missing under the data root."""


class KGFormatError(KGLLMError):
    """A knowledge-graph folder or RDF/TSV file is missing or malformed."""


class BackboneError(KGLLMError):
    """A BERT backbone cannot be found or loaded."""
