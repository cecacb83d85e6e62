"""``kgllm probe``: LAMA-style knowledge probe of an MLM checkpoint, with and without the KG.

For each T-REx relation with test facts, the relation's template (``relations.jsonl``, e.g.
``[X] was born in [Y] .``) is filled with the subject's label and a ``[MASK]`` for the object;
only facts whose object label is a single wordpiece are kept (Petroni et al., 2019). The
subject's wordpieces are linked to the KG node ``wd:<subject QID>``. P@1 is the share of facts
whose object is the model's top prediction at the mask (over the whole vocabulary), per
relation, averaged over relations (``p_at_1``, as LAMA reports) and over facts (``p_at_1_micro``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

import torch

from kgllm.errors import KGLLMError
from kgllm.paths import dataset_file


def load_cloze(data_dir=None, relations: Sequence[str] | None = None, max_facts: int | None = None,
               tokenizer=None) -> dict[str, list[dict]]:
    """Cloze items per relation: ``text``, subject span, object label and object token id."""
    rel_path = dataset_file("lama_trex", "relations.jsonl", root=data_dir)
    templates = {}
    for line in rel_path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rel = json.loads(line)
            templates[rel["relation"]] = rel["template"]
    out = {}
    for path in sorted(rel_path.parent.glob("P*.test.jsonl")):
        pid = path.name.split(".")[0]
        if (relations and pid not in relations) or pid not in templates:
            continue
        items = []
        for line in path.read_text(encoding="utf-8").splitlines()[:max_facts]:
            fact = json.loads(line)
            ids = tokenizer(fact["obj_label"], add_special_tokens=False)["input_ids"]
            if len(ids) != 1:
                continue  # LAMA keeps single-token objects
            template = templates[pid]
            start = template.index("[X]")
            text = template.replace("[X]", fact["sub_label"]).replace("[Y]", tokenizer.mask_token)
            items.append({"text": text, "subject": (start, start + len(fact["sub_label"])),
                          "sub_key": f"wd:{fact['sub_uri']}", "object": fact["obj_label"], "object_id": ids[0]})
        if items:
            out[pid] = items
    if not out:
        raise KGLLMError(f"{rel_path.parent}: no probe facts with single-token objects")
    return out


@torch.no_grad()
def predict(model, tokenizer, items: list[dict], key_to_id: dict, sampler, use_kg: bool,
            batch_size: int = 64) -> list[int]:
    """Top-1 token id at the mask for each cloze item."""
    from kgllm.data.collate import KGCollator
    from kgllm.linking import align_spans

    collate = KGCollator(tokenizer, sampler, "seq_cls")
    preds = []
    for i in range(0, len(items), batch_size):
        feats = []
        for it in items[i:i + batch_size]:
            enc = tokenizer(it["text"], return_offsets_mapping=True)
            node = key_to_id.get(it["sub_key"], -1)
            span = align_spans(enc["offset_mapping"], [it["subject"]])
            feats.append({"input_ids": enc["input_ids"], "token_node": [node if j == 0 else -1 for j in span],
                          "label": 0})
        batch = collate(feats)
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        if use_kg:
            inputs.update(graph=batch["graph"], token_node=batch["token_node"])
        hidden = model.model.encode(**inputs)  # (B, T, H)
        mask = batch["input_ids"] == tokenizer.mask_token_id
        preds += model.model.hf.cls(hidden[mask]).argmax(-1).tolist()
    return preds


def probe(ckpt: str, data_dir=None, relations: Sequence[str] | None = None, max_facts: int | None = None,
          kg_dir: str | None = None) -> dict:
    """P@1 per relation and overall, with the KG fused in and without it."""
    from kgllm.config import SubgraphConfig
    from kgllm.data.subgraph import SubgraphSampler
    from kgllm.kg.store import KnowledgeGraph
    from kgllm.kg.to_pyg import to_pyg
    from kgllm.lit import MLMModule
    from kgllm.nn.backbone import load_tokenizer

    if not Path(ckpt).is_file():
        raise KGLLMError(f"{ckpt}: checkpoint not found")
    model = MLMModule.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True).eval()
    kg_dir = kg_dir or model.hparams.kg_dir
    tokenizer = load_tokenizer(model.hparams.backbone)
    kg = KnowledgeGraph.load(kg_dir)
    sampler = SubgraphSampler(to_pyg(kg), SubgraphConfig())
    cloze = load_cloze(data_dir, relations, max_facts, tokenizer)
    result = {"checkpoint": ckpt, "kg_dir": str(kg_dir), "fusion": model.hparams.fusion, "relations": {}}
    for use_kg in (True, False):
        tag = "with_kg" if use_kg else "without_kg"
        hits = total = 0
        for pid, items in cloze.items():
            preds = predict(model, tokenizer, items, kg.key_to_id, sampler, use_kg)
            correct = sum(p == it["object_id"] for p, it in zip(preds, items))
            result["relations"].setdefault(pid, {"facts": len(items)})[tag] = correct / len(items)
            hits += correct
            total += len(items)
        rels = result["relations"].values()
        result[tag] = {"p_at_1": sum(r[tag] for r in rels) / len(cloze), "p_at_1_micro": hits / total, "facts": total}
    return result


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="kgllm probe", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ckpt", help="an MLMModule checkpoint")
    p.add_argument("--data", default="lama_trex", choices=("lama_trex",))
    p.add_argument("--data-dir", default=None, help="dataset root (default: $KGLLM_DATA)")
    p.add_argument("--kg-dir", default=None, help="KG to fuse (default: the checkpoint's)")
    p.add_argument("--relations", default=None, help="comma-separated relation ids (default: all with test facts)")
    p.add_argument("--max-facts", type=int, default=None, help="first N facts per relation")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    res = probe(a.ckpt, a.data_dir, a.relations.split(",") if a.relations else None, a.max_facts, a.kg_dir)
    if a.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"{'relation':<10}{'facts':>7}{'P@1 with KG':>14}{'P@1 without':>14}")
    for pid, r in res["relations"].items():
        print(f"{pid:<10}{r['facts']:>7}{r['with_kg']:>14.3f}{r['without_kg']:>14.3f}")
    print(f"{'mean':<10}{res['with_kg']['facts']:>7}{res['with_kg']['p_at_1']:>14.3f}"
          f"{res['without_kg']['p_at_1']:>14.3f}")
    return 0
