"""GPU check (never part of CI): fused MLM pretraining in bf16 under ``auto`` and ``fsdp``.

For each strategy and fusion variant it trains ``--steps`` steps of MLM on synthetic token batches
with real per-example KG subgraphs of the KG folder ``--kg``, and prints tokens/s and peak GPU memory. FSDP runs in a child process per variant (Lightning's FSDP
wants a fresh process group). Needs a CUDA machine; exits with a message otherwise.

Run:  python experiments/gpu_check.py --kg graphs/redocred100 [--backbone minilm] [--steps 30]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


def run(strategy: str, fusion: str, a) -> dict:
    import lightning as L
    import torch
    from torch.utils.data import DataLoader

    from kgllm.data.collate import KGCollator
    from kgllm.data.subgraph import SubgraphSampler
    from kgllm.lit import MLMModule
    from kgllm.nn.backbone import load_tokenizer

    torch.manual_seed(0)
    tok = load_tokenizer(a.backbone)
    from kgllm.kg.graph.store import KnowledgeGraph
    from kgllm.kg.graph.to_pyg import to_pyg

    graph = to_pyg(KnowledgeGraph.load(a.kg))
    n_nodes = graph.num_nodes
    feats = []
    for i in range(a.batch_size * (a.steps + 5)):
        ids = torch.randint(1000, tok.vocab_size, (a.seq_len,)).tolist()
        nodes = [-1] * a.seq_len
        for j in range(4):
            pos = 8 * j + 1
            nodes[pos:pos + 3] = [int(torch.randint(n_nodes, ()))] * 3
        feats.append({"input_ids": [tok.cls_token_id] + ids[1:-1] + [tok.sep_token_id], "token_node": nodes,
                      "span": [-1] * a.seq_len, "word": list(range(a.seq_len)), "label": -1, "idx": i})
    loader = DataLoader(feats, batch_size=a.batch_size, collate_fn=KGCollator(tok, SubgraphSampler(graph), "mlm"))
    model = MLMModule(backbone=a.backbone, kg_dir=a.kg, fusion=fusion, fusion_layers=[-3, -2])
    trainer = L.Trainer(accelerator="gpu", devices=1, strategy=strategy, precision="bf16-mixed", max_steps=a.steps,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False)
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    trainer.fit(model, loader)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"strategy": strategy, "fusion": fusion, "tokens_per_s": a.steps * a.batch_size * a.seq_len / seconds,
            "peak_gpu_gib": torch.cuda.max_memory_allocated() / 2 ** 30, "device": torch.cuda.get_device_name()}


def main() -> int:
    import torch

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kg", default="graphs/redocred100", help="a KG folder (kgllm build-kg)")
    p.add_argument("--backbone", default="minilm")
    p.add_argument("--variants", default="none,gated,xattn,interaction")
    p.add_argument("--strategies", default="auto,fsdp")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; run it on a GPU machine (it is not part of CI).")
        return 0
    if a.child:
        strategy, fusion = a.child.split(":")
        print(json.dumps(run(strategy, fusion, a)))
        return 0
    rows = []
    for strategy in a.strategies.split(","):
        for fusion in a.variants.split(","):
            args = [sys.executable, __file__, "--child", f"{strategy}:{fusion}", "--backbone", a.backbone,
                    "--steps", str(a.steps), "--batch-size", str(a.batch_size), "--seq-len", str(a.seq_len),
                    "--kg", a.kg]
            out = subprocess.run(args, capture_output=True, text=True)
            if out.returncode:
                rows.append({"strategy": strategy, "fusion": fusion, "error": out.stderr.strip().splitlines()[-1]})
            else:
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    print("| strategy | fusion | tokens/s | peak GPU memory (GiB) |\n|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['strategy']} | {r['fusion']} | failed: {r['error'][:80]} | |")
        else:
            print(f"| {r['strategy']} | {r['fusion']} | {r['tokens_per_s']:.0f} | {r['peak_gpu_gib']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
