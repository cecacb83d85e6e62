"""Training-step cost of each fusion variant relative to ``none``, on the same batch, in one run.

MiniLM (or ``--backbone``) with each fusion at the given layers; one batch of relation
classification examples (Re-DocRED sentences with entity markers and their KG subgraphs) is
built once and every variant trains on it: forward, backward and AdamW step, timed over
``--steps`` steps after ``--warmup``. On a CUDA machine it runs there in bf16 autocast.

Run:  KGLLM_DATA=../shared/data python experiments/bench/bench_fusion_cost.py --kg graphs/redocred100
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time


def main() -> int:
    import torch

    from kgllm.data.datamodule import KGDataModule
    from kgllm.lit import ClassifierModule

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kg", default="graphs/redocred100")
    p.add_argument("--backbone", default="minilm")
    p.add_argument("--variants", default="none,gated,xattn,interaction")
    p.add_argument("--layers", default="3,4")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dm = KGDataModule("redocred_rc", a.kg, a.backbone, batch_size=a.batch_size,
                      dataset_args={"train_docs": "0:70", "val_docs": "70:85", "test_docs": "85:100", "min_count": 10})
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    batch = {k: v.to(device) for k, v in batch.items()}
    rows = []
    for variant in a.variants.split(","):
        torch.manual_seed(0)
        model = ClassifierModule(backbone=a.backbone, kg_dir=a.kg, fusion=variant,
                                 fusion_layers=[int(x) for x in a.layers.split(",")], task="rel_cls",
                                 num_labels=dm.num_labels, vocab_size=len(dm.tokenizer))
        model.configure_model()
        model.to(device).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        times = []
        for step in range(a.warmup + a.steps):
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
                loss = torch.nn.functional.cross_entropy(model(batch), batch["labels"])
            loss.backward()
            opt.step()
            opt.zero_grad()
            if device == "cuda":
                torch.cuda.synchronize()
            if step >= a.warmup:
                times.append(time.perf_counter() - start)
        rows.append({"variant": variant, "step_s": statistics.median(times),
                     "params": sum(p.numel() for p in model.parameters())})
        print(json.dumps(rows[-1]), flush=True)
    base = next(r["step_s"] for r in rows if r["variant"] == "none")
    print(f"device: {device}; batch {a.batch_size} x {batch['input_ids'].size(1)} tokens; fusion at layers {a.layers}")
    print("| variant | step time (s, median) | / none | parameters |")
    print("|---|---|---|---|")
    for r in rows:
        r["ratio"] = r["step_s"] / base
        print(f"| {r['variant']} | {r['step_s']:.3f} | {r['ratio']:.2f}x | {r['params'] / 1e6:.1f} M |")
    if a.json:
        open(a.json, "w").write(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
