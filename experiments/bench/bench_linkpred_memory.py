"""Peak memory of sampled (bounded-memory) GAT training as the graph grows, at a fixed batch size.

For each graph size a fresh process builds a random multi-relational graph, runs a few training
steps of ``LinkPredModule(sampled=True)`` (capped k-hop subgraphs around each batch's entities and
negatives; 2 hops, 3 sampled neighbours per node), and reports the peak resident memory (``ru_maxrss``) and the peak *growth* during the
steps. Two series: nodes fixed (10,000) while edges grow 10^4 -> 10^6, and nodes growing with the
edges (E/10), where the entity table and its optimiser state grow with the graph itself. A
full-graph GAT step is measured alongside for contrast.

Run:  python experiments/bench/bench_linkpred_memory.py [--sizes 10000,100000,1000000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def child(nodes: int, edges: int, sampled: bool, steps: int, batch: int) -> dict:
    import torch

    from kgllm.lit.linkpred import LinkPredModule

    torch.manual_seed(0)
    rels = 20
    h = torch.randint(nodes, (edges,))
    t = torch.randint(nodes, (edges,))
    r = torch.randint(rels, (edges,))
    model = LinkPredModule(dim=64, gnn_layers=2, gnn_heads=4, sampled=sampled, num_negatives=256, num_hops=2,
                           max_neighbors=3, num_entities=nodes, num_relations=rels)
    model.configure_model()

    class _DM:  # the two things LinkPredModule.setup reads from a datamodule
        def graph(self, inference=False):
            return torch.stack([h, t]), r

    model._trainer = None
    model.setup_graph(_DM())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    for step in range(steps):
        idx = torch.randint(edges, (batch,))
        loss = model.training_step((torch.stack([h[idx], r[idx], t[idx]], 1),), step)
        opt.zero_grad()
        loss.backward()
        opt.step()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"nodes": nodes, "edges": edges, "sampled": sampled, "peak_rss_mb": peak / 1024,
            "growth_during_steps_mb": (peak - before) / 1024, "s_per_step": (time.perf_counter() - start) / steps}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="10000,100000,1000000")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(child(**json.loads(a.child))))
        return 0
    rows = []
    for series in ("fixed_nodes", "growing_nodes"):
        for e in (int(x) for x in a.sizes.split(",")):
            n = 10_000 if series == "fixed_nodes" else max(e // 10, 100)
            for sampled in (True, False):
                if not sampled and e > 100_000:
                    continue  # the full-graph step is the contrast, not the subject
                args = {"nodes": n, "edges": e, "sampled": sampled, "steps": a.steps, "batch": a.batch}
                out = subprocess.run([sys.executable, __file__, "--child", json.dumps(args)], capture_output=True,
                                     text=True, check=True)
                rows.append({"series": series, **json.loads(out.stdout.strip().splitlines()[-1])})
                print(json.dumps(rows[-1]), flush=True)
    print("| series | nodes | edges | mode | peak RSS (MB) | growth during steps (MB) | s/step |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['series']} | {r['nodes']} | {r['edges']} | {'sampled' if r['sampled'] else 'full graph'} | "
              f"{r['peak_rss_mb']:.0f} | {r['growth_during_steps_mb']:.0f} | {r['s_per_step']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
