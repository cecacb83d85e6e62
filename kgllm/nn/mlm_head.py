"""MiniLM's MLM head: the shipped weights and their loading (trained by ``kgllm prepare-backbone``,
:mod:`kgllm.workflows.prepare_backbone`).

all-MiniLM-L6-v2 ships no MLM head, so ``BertForMaskedLM`` starts with a random
``cls.predictions.transform`` (dense + GELU + LayerNorm) and output bias; ``backbone: minilm``
loads the trained ones from ``kgllm/resources/minilm_mlm_head.safetensors`` unless
``fresh_mlm_head`` is set.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from kgllm.util.errors import KGLLMError

HEAD_KEYS = ("cls.predictions.transform.dense.weight", "cls.predictions.transform.dense.bias",
             "cls.predictions.transform.LayerNorm.weight", "cls.predictions.transform.LayerNorm.bias",
             "cls.predictions.bias")
RESOURCE = "minilm_mlm_head.safetensors"


def packaged_head() -> Path | None:
    """The shipped head file, or ``None`` when this installation has none."""
    path = Path(str(resources.files("kgllm") / "resources" / RESOURCE))
    return path if path.is_file() else None


def load_head(model, path: str | Path | None = None) -> bool:
    """Copy a trained head into a ``BertForMaskedLM`` (shapes must match); ``False`` if there is none."""
    from safetensors.torch import load_file

    path = Path(path) if path is not None else packaged_head()
    if path is None:
        return False
    tensors = load_file(str(path))
    own = model.state_dict()
    if set(tensors) != set(HEAD_KEYS) or any(tensors[k].shape != own[k].shape for k in HEAD_KEYS):
        raise KGLLMError(f"{path}: not an MLM head for this backbone (keys or shapes differ)")
    import torch

    with torch.no_grad():
        for k in HEAD_KEYS:
            own[k].copy_(tensors[k])
    return True
