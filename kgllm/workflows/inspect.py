"""``kgllm inspect CKPT --text "..."``: what fusion does to one text.

For a fused checkpoint (MLM pretraining or any classifier), the text is linked to the KG exactly as
in training (spaCy mentions, the entity linker, the subgraph settings of the run), and the command
prints, per wordpiece:

* the KG node it is linked to (``-`` when none);
* for each fused layer, ``Δ layer i`` = ||gate ⊙ update|| / ||hidden||: how much that layer's fusion
  block moved the token's state (0 for a closed gate or a token the block does not write);
* ``Δ output``: the relative change of the last hidden state against the same model with fusion
  switched off (the graph's effect on what the task head reads);
* for blocks that attend over nodes (``xattn``), the nodes the token attends to most.

It also prints the gate norms and the share of linked tokens, and, for an MLM checkpoint and a text
with ``[MASK]``, the top predictions with the KG fused and with fusion off.

    kgllm inspect runs/pretrain_lama/latest/checkpoints/best.ckpt --text "Dante was born in [MASK]."
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from kgllm.util.formatting import HelpFormatter
from kgllm.util.errors import KGLLMError


def load_fused(ckpt: str, kg_dir: str | None = None):
    """An ``MLMModule``/``ClassifierModule`` checkpoint in eval mode (:func:`~kgllm.lit.base.restore_module`)
    and the hyper-parameters of the datamodule it was trained with."""
    from kgllm.lit.base import read_checkpoint, restore_module

    raw = read_checkpoint(ckpt)
    if "fusion" not in (raw.get("hyper_parameters") or {}):
        raise KGLLMError(f"{ckpt}: not a fused-BERT checkpoint (kgllm inspect reads MLMModule and "
                         "ClassifierModule checkpoints; link prediction has no text side)")
    return restore_module(ckpt, raw, kg_dir), dict(raw.get("datamodule_hyper_parameters") or {})


def inspect_text(ckpt: str, text: str, kg_dir: str | None = None, top_nodes: int = 3,
                 top_tokens: int = 5) -> dict:
    """Per-token linking and fusion effect of ``text`` under checkpoint ``ckpt`` (see the module doc)."""
    import torch

    from kgllm.data.subgraph import SubgraphConfig
    from kgllm.data.collate import KGCollator
    from kgllm.data.features import detect_mentions
    from kgllm.data.subgraph import SubgraphSampler
    from kgllm.kg.graph.store import KnowledgeGraph
    from kgllm.kg.graph.to_pyg import to_pyg
    from kgllm.linking import EntityLinker, align_spans
    from kgllm.nn.backbone import load_tokenizer

    if not text.strip():
        raise KGLLMError("--text is empty")
    model, dm_hp = load_fused(ckpt, kg_dir)
    kg_dir = str(kg_dir or model.hparams.kg_dir)
    kg = KnowledgeGraph.load(kg_dir)
    tokenizer = load_tokenizer(model.hparams.backbone)
    found = detect_mentions([text], dm_hp.get("spacy_model"), progress=False)[0]
    mentions = EntityLinker.from_kg(kg).link(text, found)
    enc = tokenizer(text, return_offsets_mapping=True, truncation=True,
                    max_length=int(dm_hp.get("max_length") or 512))
    span_of = align_spans(enc["offset_mapping"], [(m.start, m.end) for m in mentions])
    feat = {"input_ids": list(enc["input_ids"]), "token_node": [mentions[j].node if j >= 0 else -1 for j in span_of]}
    sampler = SubgraphSampler(to_pyg(kg), SubgraphConfig(**(dm_hp.get("subgraph") or {})))
    batch = KGCollator(tokenizer, sampler, "cloze")([feat])

    kgbert = model.model
    layers = kgbert.backbone.encoder.layer
    seen: dict[int, dict] = {}

    def record(i):
        def hook(block, args, output):
            hidden, ctx = args[0], args[1]
            delta = layers[i].kg_gate * output[0]
            seen[i] = {"change": (delta.norm(dim=-1) / hidden.norm(dim=-1).clamp(min=1e-12))[0],
                       "weights": block.node_weights(hidden, ctx)}
        return hook

    handles = [layers[i].kg_block.register_forward_hook(record(i)) for i in kgbert.fusion_layers]
    try:
        with torch.no_grad():
            fused = kgbert.encode(batch["input_ids"], batch["attention_mask"], batch["graph"], batch["token_node"])
            plain = kgbert.encode(batch["input_ids"], batch["attention_mask"])
    finally:
        for h in handles:
            h.remove()
    n_id = batch["graph"].n_id.tolist()

    def node(row: int) -> dict | None:
        if row < 0:
            return None
        e = kg.entities[n_id[row]]
        return {"id": int(n_id[row]), "key": e.key, "label": e.label}

    out_change = ((fused - plain).norm(dim=-1) / plain.norm(dim=-1).clamp(min=1e-12))[0]
    tokens = []
    for t, tok in enumerate(tokenizer.convert_ids_to_tokens(feat["input_ids"])):
        row = {"token": tok, "node": node(int(batch["token_node"][0, t])), "output_change": float(out_change[t]),
               "layers": {}}
        for i, rec in sorted(seen.items()):
            entry = {"change": float(rec["change"][t])}
            if rec["weights"] is not None:
                weights, rows = rec["weights"]
                w, r = weights[0, t], rows[0]
                k = min(top_nodes, int((r >= 0).sum()))
                top = w[: r.numel()].topk(k) if k else None
                entry["top_nodes"] = [] if top is None else [
                    {**node(int(r[j])), "weight": float(v)} for v, j in zip(top.values.tolist(), top.indices.tolist())]
            row["layers"][i] = entry
        tokens.append(row)
    gates = {i: float(layers[i].kg_gate.detach().norm()) for i in kgbert.fusion_layers}
    real = [t for t in tokens if t["token"] not in tokenizer.all_special_tokens]
    result = {
        "checkpoint": ckpt, "module": type(model).__name__, "fusion": model.hparams.fusion,
        "fusion_layers": list(kgbert.fusion_layers), "kg_dir": kg_dir, "kg_entities": kg.num_entities,
        "subgraph": {"nodes": len(n_id), "edges": int(batch["graph"].edge_index.size(1))},
        "mentions": [{"text": text[m.start:m.end], "start": m.start, "end": m.end, "type": m.label,
                      "node": None if m.node < 0 else {"id": m.node, "key": kg.entities[m.node].key,
                                                        "label": kg.entities[m.node].label}} for m in mentions],
        "gate_norms": gates, "linked_tokens": sum(t["node"] is not None for t in real), "tokens_total": len(real),
        "tokens": tokens,
    }
    mask = batch["input_ids"][0] == tokenizer.mask_token_id
    if mask.any() and hasattr(kgbert.hf, "cls"):
        result["masks"] = []
        for hidden, name in ((fused, "with_kg"), (plain, "fusion_off")):
            probs = kgbert.hf.cls(hidden[0, mask]).softmax(-1)
            for m, p in enumerate(probs):
                top = p.topk(top_tokens)
                if len(result["masks"]) <= m:
                    result["masks"].append({})
                result["masks"][m][name] = [{"token": tokenizer.convert_ids_to_tokens(int(i)), "prob": float(v)}
                                            for v, i in zip(top.values.tolist(), top.indices.tolist())]
    return result


def format_result(res: dict) -> str:
    """The inspection as a fixed-width table (what ``kgllm inspect`` prints)."""
    layers = res["fusion_layers"]
    where = f" at layers {', '.join(map(str, layers))}" if layers else " (no fusion layer: nothing to inspect)"
    lines = [f"checkpoint  {res['checkpoint']} ({res['module']}, fusion {res['fusion']}{where})",
             f"KG          {res['kg_dir']}: {res['kg_entities']:,} entities; this text's subgraph: "
             f"{res['subgraph']['nodes']} nodes, {res['subgraph']['edges']} edges"]
    ms = [f"\"{m['text']}\" ({m['type']}) -> " + (f"{m['node']['label']} [{m['node']['key']}]" if m["node"] else
                                                  "not in the KG") for m in res["mentions"]]
    lines.append("mentions    " + ("; ".join(ms) if ms else "none found by spaCy"))
    if layers:
        lines.append("gate norms  " + "  ".join(f"layer {i}: {v:.4f}" for i, v in res["gate_norms"].items()))
    share = res["linked_tokens"] / max(res["tokens_total"], 1)
    lines.append(f"linked      {res['linked_tokens']} of {res['tokens_total']} tokens ({share:.0%})")
    lines.append("")
    head = f"{'token':<14}{'KG node':<24}" + "".join(f"{f'Δ layer {i}':>11}" for i in layers) + f"{'Δ output':>10}"
    attends = [i for i in layers if any("top_nodes" in t["layers"].get(i, {}) for t in res["tokens"])]
    if attends:
        head += f"  top nodes (layer {attends[0]})"
    lines.append(head)
    for t in res["tokens"]:
        label = t["node"]["label"] if t["node"] else "-"
        row = f"{t['token'][:13]:<14}{label[:23]:<24}"
        row += "".join(f"{t['layers'][i]['change']:>11.4f}" for i in layers) + f"{t['output_change']:>10.4f}"
        if attends:
            top = t["layers"][attends[0]].get("top_nodes") or []
            row += "  " + ", ".join(f"{n['label'][:20]} {n['weight']:.2f}" for n in top)
        lines.append(row)
    lines.append("")
    lines.append("Δ layer i: ||gate * update|| / ||hidden|| of that fused layer; Δ output: relative change of the "
                 "last hidden state against fusion off")
    for m, preds in enumerate(res.get("masks", [])):
        for name in ("with_kg", "fusion_off"):
            shown = ", ".join(f"{p['token']} {p['prob']:.3f}" for p in preds[name])
            lines.append(f"[MASK] {m + 1} {name.replace('_', ' '):<11} {shown}")
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="kgllm inspect", description=__doc__,
                                formatter_class=HelpFormatter)
    p.add_argument("ckpt", help="a fused MLMModule or ClassifierModule checkpoint")
    p.add_argument("--text", required=True, help="the text to link and run (use [MASK] for MLM predictions)")
    p.add_argument("--kg-dir", default=None, help="KG to fuse (default: the checkpoint's)")
    p.add_argument("--top-nodes", type=int, default=3, help="attended nodes shown per token (xattn; default 3)")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    a = p.parse_args(argv)
    from kgllm.lit.quiet import quiet_third_party

    quiet_third_party()
    if a.top_nodes < 1:
        p.error("--top-nodes must be positive")
    res = inspect_text(a.ckpt, a.text, a.kg_dir, a.top_nodes)
    sys.stdout.write((json.dumps(res, indent=2, ensure_ascii=False) if a.json else format_result(res)) + "\n")
    return 0
