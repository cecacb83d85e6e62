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


class ConfigError(KGLLMError):
    """A configuration value is out of its range."""


def check_positive(allow_zero: bool = False, **values: float | int | None) -> None:
    """Raise :class:`ConfigError` naming the first option that is negative (or zero unless ``allow_zero``)."""
    for name, value in values.items():
        if value is not None and (value != value or value in (float("inf"), float("-inf"))):
            raise ConfigError(f"{name} must be a finite number, got {value}")
        if value is not None and (value < 0 or (value == 0 and not allow_zero)):
            need = "non-negative" if allow_zero else "positive"
            raise ConfigError(f"{name} must be {need}, got {value}")


def check_fraction(below_one: bool = False, **values: float | None) -> None:
    """Raise :class:`ConfigError` naming the first value outside ``[0, 1]`` (``[0, 1)`` with ``below_one``)."""
    check_positive(allow_zero=True, **values)
    for name, value in values.items():
        if value is not None and (value > 1 or (below_one and value == 1)):
            raise ConfigError(f"{name} must be in [0, 1{')' if below_one else ']'}, got {value}")
