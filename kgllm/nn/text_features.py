"""Encode entity texts once with a BERT backbone (mean pooling), cached on disk."""

from __future__ import annotations

import hashlib
import logging

import torch
from torch import Tensor

from kgllm.util.io import atomic_open
from kgllm.util.paths import cache_dir

log = logging.getLogger(__name__)


@torch.no_grad()
def encode_texts(texts: list[str], backbone: str = "minilm", batch_size: int = 128, max_length: int = 32,
                 use_cache: bool = True) -> Tensor:
    """Mean-pooled last hidden states, :math:`(N, H)`, L2-normalised (all-MiniLM-L6-v2's pooling)."""
    from tqdm.auto import tqdm
    from transformers import BertModel

    from kgllm.nn.backbone import load_hf_model, load_tokenizer

    digest = hashlib.sha256(f"{backbone}|{max_length}".encode())
    for t in texts:
        digest.update(t.encode("utf-8") + b"\0")
    path = cache_dir() / f"text-features-{digest.hexdigest()[:16]}.pt"
    if use_cache and path.is_file():
        return torch.load(path, weights_only=True)
    tok = load_tokenizer(backbone)
    model = load_hf_model(BertModel, backbone, add_pooling_layer=False).eval()
    out = []
    for i in tqdm(range(0, len(texts), batch_size), desc="text features", disable=len(texts) < 5000):
        enc = tok(texts[i:i + batch_size], padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        hidden = model(**enc).last_hidden_state  # (B, T, H)
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        out.append(torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1).clamp_min(1), dim=-1))
    features = torch.cat(out) if out else torch.zeros(0, model.config.hidden_size)
    if use_cache:
        with atomic_open(path, "wb") as fh:
            torch.save(features, fh)
    return features
