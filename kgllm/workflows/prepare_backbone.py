"""``kgllm prepare-backbone``: train MiniLM's missing MLM head once, encoder frozen, and ship it.

all-MiniLM-L6-v2 ships no MLM head, so ``BertForMaskedLM`` starts with a random
``cls.predictions.transform`` (dense + GELU + LayerNorm) and output bias; the decoder is tied to
the word embeddings. Those ~0.18 M parameters are trained here on general text with the whole
encoder (and the tied decoder) frozen, and saved as ``kgllm/resources/minilm_mlm_head.safetensors``,
which ``backbone: minilm`` loads into every ``BertForMaskedLM`` unless ``fresh_mlm_head`` is set.

Text: Re-DocRED documents 0-449 and the FewRel sentences (Wikipedia). LAMA T-REx evidence is not
used, so no probed fact is ever in it. Held-out: Re-DocRED documents 450-499 (masked-token
accuracy before and after, same masks). Because the encoder is frozen, its states at the masked
positions are computed once and the head is trained on them (minutes on a CPU).

Run:  KGLLM_DATA=../shared/data kgllm prepare-backbone [--epochs 12 --lr 3e-3] [--out kgllm/resources/minilm_mlm_head.safetensors]
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from kgllm.util.formatting import HelpFormatter
from kgllm.util.lazy import no_grad
from kgllm.nn.mlm_head import HEAD_KEYS, RESOURCE

if TYPE_CHECKING:  # pragma: no cover
    import torch

log = logging.getLogger(__name__)


def _texts(data_dir, docs: slice, with_fewrel: bool) -> list[str]:
    from kgllm.kg.extraction.corpus import read_corpus
    from kgllm.util.paths import dataset_file

    out = []
    redocred = dataset_file("redocred", "dev_revised.json", root=data_dir)
    for doc in list(read_corpus(redocred, "redocred"))[docs]:
        out += [doc.text[tok[0][0]:tok[-1][1]] for tok in doc.meta["token_offsets"] if tok]
    if with_fewrel:
        fewrel = json.loads(dataset_file("fewrel", "val_wiki.json", root=data_dir).read_text(encoding="utf-8"))
        out += [" ".join(ex["tokens"]) for exs in fewrel.values() for ex in exs]
    return out


@no_grad
def masked_states(encoder, tokenizer, texts: list[str], seed: int, batch_size: int = 64,
                  max_length: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoder states at 15% masked wordpieces (80/10/10 as in BERT) and their original ids."""
    import torch

    from tqdm import tqdm

    gen = torch.Generator().manual_seed(seed)
    states, targets = [], []
    special = torch.tensor(sorted(set(tokenizer.all_special_ids)))
    for i in tqdm(range(0, len(texts), batch_size), desc="encoding", unit="batch", leave=False):
        enc = tokenizer(texts[i:i + batch_size], truncation=True, max_length=max_length, padding=True,
                        return_tensors="pt")
        ids = enc["input_ids"]
        candidates = enc["attention_mask"].bool() & ~torch.isin(ids, special)
        chosen = candidates & (torch.rand(ids.shape, generator=gen) < 0.15)  # (B, T)
        r = torch.rand(ids.shape, generator=gen)
        inputs = ids.clone()
        inputs[chosen & (r < 0.8)] = tokenizer.mask_token_id
        swap = chosen & (r >= 0.8) & (r < 0.9)
        inputs[swap] = torch.randint(tokenizer.vocab_size, (int(swap.sum()),), generator=gen)
        hidden = encoder(input_ids=inputs, attention_mask=enc["attention_mask"]).last_hidden_state  # (B, T, H)
        states.append(hidden[chosen])
        targets.append(ids[chosen])
    return torch.cat(states), torch.cat(targets)


def accuracy(head, states: torch.Tensor, targets: torch.Tensor, batch: int = 2048) -> float:
    """Masked-token accuracy of ``head`` on precomputed encoder ``states``."""
    import torch

    with torch.no_grad():
        hits = sum(int((head(states[i:i + batch]).argmax(-1) == targets[i:i + batch]).sum())
                   for i in range(0, len(states), batch))
    return hits / max(len(states), 1)


def train_head(data_dir=None, epochs: int = 12, lr: float = 3e-3, batch: int = 512, seed: int = 0,
               backbone: str = "minilm") -> tuple[dict, dict]:
    """Train the head; returns its tensors and a report (accuracy before/after on held-out text)."""
    from transformers import BertForMaskedLM

    import torch

    from kgllm.nn.backbone import load_hf_model, load_tokenizer

    torch.manual_seed(seed)
    model = load_hf_model(BertForMaskedLM, backbone).eval()
    tokenizer = load_tokenizer(backbone)
    train_texts, held_texts = _texts(data_dir, slice(0, 450), True), _texts(data_dir, slice(450, 500), False)
    x, y = masked_states(model.bert, tokenizer, train_texts, seed)
    hx, hy = masked_states(model.bert, tokenizer, held_texts, seed + 1)
    head = model.cls
    for p in model.parameters():
        p.requires_grad_(False)
    trainable = [model.get_parameter(k) for k in HEAD_KEYS]
    for p in trainable:
        p.requires_grad_(True)
    report = {"train_texts": len(train_texts), "train_positions": len(x), "held_out_texts": len(held_texts),
              "held_out_positions": len(hx), "acc_before": accuracy(head, hx, hy), "epochs": epochs}
    opt = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    steps = epochs * (-(-len(x) // batch))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), batch):
            idx = order[i:i + batch]
            loss = torch.nn.functional.cross_entropy(head(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        log.info("epoch %d: train loss %.3f, held-out acc %.4f", epoch, total / len(x), accuracy(head, hx, hy))
    report["acc_after"] = accuracy(head, hx, hy)
    state = model.state_dict()
    return {k: state[k].detach().clone().contiguous() for k in HEAD_KEYS}, report


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="kgllm prepare-backbone", description=__doc__,
                                formatter_class=HelpFormatter)
    p.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "resources" / RESOURCE),
                   help="where to write the head (default: the file shipped with kgllm)")
    p.add_argument("--data-dir", default=None, help="dataset root (default: $KGLLM_DATA)")
    p.add_argument("--epochs", type=int, default=12, help="training epochs of the head")
    p.add_argument("--lr", type=float, default=3e-3, help="AdamW learning rate")
    p.add_argument("--seed", type=int, default=0, help="seed of the head initialisation and data order")
    a = p.parse_args(argv)
    if a.epochs < 1 or a.lr <= 0:
        p.error("--epochs and --lr must be positive")
    from safetensors.torch import save

    from kgllm.util.io import atomic_open

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    tensors, report = train_head(a.data_dir, a.epochs, a.lr, seed=a.seed)
    out = Path(a.out)
    with atomic_open(out, "wb") as fh:
        fh.write(save(tensors, metadata={k: str(v) for k, v in report.items()}))
    print(json.dumps({"out": str(out), **report}, indent=2))
    return 0
