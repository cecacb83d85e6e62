"""``kgllm`` command line: one dictionary of subcommands -> functions."""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from kgllm.errors import KGLLMError

LIGHTNING = ("fit", "validate", "test", "predict")


def build_kg_main(argv: Sequence[str]) -> int:
    from kgllm.config import DEFAULT_EXCLUDED_LABELS, ExtractConfig
    from kgllm.kg.build import build_kg
    from kgllm.kg.corpus import FORMATS

    p = argparse.ArgumentParser(prog="kgllm build-kg", description="Build a KG folder from a corpus with spaCy.")
    p.add_argument("corpus", help="a .txt file or folder of them, a .jsonl file, or a Re-DocRED .json file")
    p.add_argument("--out", required=True, help="KG folder to write (appears atomically when done)")
    p.add_argument("--format", default="auto", choices=FORMATS)
    p.add_argument("--text-field", default="text", help="JSONL field holding the text")
    p.add_argument("--limit", type=int, default=None, help="only the first N documents")
    p.add_argument("--rdf-format", default="turtle", choices=("turtle", "nt"))
    p.add_argument("--spacy-model", default=None)
    p.add_argument("--exclude-labels", default=",".join(DEFAULT_EXCLUDED_LABELS),
                   help="spaCy entity labels that never become nodes (comma-separated)")
    p.add_argument("--max-path-len", type=int, default=4)
    p.add_argument("--cooccurrence", action="store_true", help="also add co_occurs_with edges")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--n-process", type=int, default=1)
    p.add_argument("--shard-size", type=int, default=256)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    cfg = ExtractConfig(a.spacy_model, tuple(x for x in a.exclude_labels.split(",") if x), a.max_path_len,
                        a.cooccurrence, a.batch_size, a.n_process, a.shard_size)
    kg = build_kg(a.corpus, a.out, a.format, a.limit, cfg, a.rdf_format, a.overwrite, not a.no_progress,
                  a.text_field)
    print(f"{a.out}: {kg}")
    return 0


def kg_stats_main(argv: Sequence[str]) -> int:
    from kgllm.kg.stats import format_stats, kg_stats
    from kgllm.kg.store import KnowledgeGraph

    p = argparse.ArgumentParser(prog="kgllm kg-stats", description="Statistics of a KG folder (networkx).")
    p.add_argument("kg_dir")
    p.add_argument("--top", type=int, default=10)
    a = p.parse_args(argv)
    print(format_stats(kg_stats(KnowledgeGraph.load(a.kg_dir), top=a.top)))
    return 0


def lightning_main(argv: Sequence[str]) -> int:
    from kgllm.lightning_cli import run_cli

    run_cli(argv)
    return 0


def demo_main(argv: Sequence[str]) -> int:
    from kgllm.demo import main as demo

    return demo(argv)


COMMANDS: dict[str, tuple[Callable[[Sequence[str]], int], str]] = {
    "build-kg": (build_kg_main, "build a knowledge graph from a corpus"),
    "kg-stats": (kg_stats_main, "node/edge/relation counts, components, degrees, PageRank"),
    "demo": (demo_main, "KG from Re-DocRED -> fused MLM pretraining -> fine-tuning with fusion on/off"),
    **{c: (lightning_main, f"LightningCLI {c} (e.g. kgllm {c} --config experiments/...yaml)") for c in LIGHTNING},
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: kgllm <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS:
        print(f"kgllm: unknown command {cmd!r}\n\n{usage()}", file=sys.stderr)
        return 2
    func = COMMANDS[cmd][0]
    try:
        return func([cmd, *rest] if func is lightning_main else rest)
    except (KGLLMError, FileExistsError) as exc:
        print(f"kgllm {cmd}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
