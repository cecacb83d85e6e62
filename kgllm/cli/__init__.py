"""``kgllm`` command line: one dictionary of subcommands -> functions."""

from __future__ import annotations

import sys
from typing import Callable, Sequence

from kgllm.cli import kg as cli_kg  # noqa: I001 - the kg-* front ends
from kgllm.util.errors import ConfigError, KGLLMError

LIGHTNING = ("fit", "validate", "test", "predict")


def lightning_main(argv: Sequence[str]) -> int:
    """LightningCLI; ``--help`` answers from :mod:`kgllm.cli.help` (no torch import), ``--help-all``
    is LightningCLI's own help."""
    argv = list(argv)
    if any(a in ("-h", "--help") for a in argv[1:]):
        from kgllm.cli.help import fast_help

        print(fast_help(argv[0]))
        return 0
    argv = ["--help" if a == "--help-all" else a for a in argv]
    from kgllm.lit.runner import run_cli

    run_cli(argv)
    return 0


def ablate_main(argv: Sequence[str]) -> int:
    from kgllm.workflows.ablate import main as ablate

    return ablate(argv)


def probe_main(argv: Sequence[str]) -> int:
    from kgllm.workflows.knowledge.probe import main as probe

    return probe(argv)


def prepare_backbone_main(argv: Sequence[str]) -> int:
    from kgllm.workflows.prepare_backbone import main as prepare

    return prepare(argv)


def prepare_extractor_main(argv: Sequence[str]) -> int:
    from kgllm.workflows.prepare_extractor import main as prepare

    return prepare(argv)


def eval_re_main(argv: Sequence[str]) -> int:
    from kgllm.workflows.eval_re import main as eval_re

    return eval_re(argv)


def predict_main(argv: Sequence[str]) -> int:
    """``kgllm predict CKPT --input ...`` (kgllm's predictions file); ``kgllm predict --config ...``
    stays LightningCLI's."""
    if (argv and not argv[0].startswith("-")) or list(argv) in (["-h"], ["--help"]):
        from kgllm.workflows.predict import main as predict

        return predict(argv)
    return lightning_main(["predict", *argv])


def datasets_main(argv: Sequence[str]) -> int:
    """``kgllm datasets [NAME]``: every dataset, its task and its typed options (``--data.dataset_args``)."""
    import argparse

    from kgllm.data.datasets import DATASETS, dataset_options

    parser = argparse.ArgumentParser(prog="kgllm datasets", description="Every dataset kgllm loads, its task "
                                     "and its typed options (passed as --data.dataset_args '{...}').")
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"datasets to show (default: all of "
                        f"{', '.join(sorted(DATASETS))})")
    names = parser.parse_args(list(argv)).names or list(DATASETS)
    for name in names:
        if name not in DATASETS:
            raise ConfigError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
        task = DATASETS[name][0] or "its task option"
        print(f"{name}  (task: {task})\n    {dataset_options(name)}")
    return 0


def export_main(argv: Sequence[str]) -> int:
    from kgllm.workflows.export import main as export

    return export(argv)


def plot_main(argv: Sequence[str]) -> int:
    from kgllm.workflows.plot_runs import main as plot

    return plot(argv)


def inspect_main(argv: Sequence[str]) -> int:
    from kgllm.workflows.inspect import main as inspect_

    return inspect_(argv)


def cross_fit_kg_main(argv: Sequence[str]) -> int:
    from kgllm.workflows.crossfit import main as cross_fit

    return cross_fit(argv)


def demo_main(argv: Sequence[str]) -> int:
    from kgllm.workflows.knowledge.demo import main as demo

    return demo(argv)


COMMANDS: dict[str, tuple[Callable[[Sequence[str]], int], str]] = {
    "build-kg": (cli_kg.build_kg_main, "build a knowledge graph from a corpus"),
    "kg-stats": (cli_kg.kg_stats_main, "counts, components, degrees, PageRank, plots"),
    "kg-eval": (cli_kg.kg_eval_main, "mention and pair P/R/F1 of a KG against Re-DocRED gold"),
    "kg-query": (cli_kg.kg_query_main, "SPARQL over a KG folder (bound variables for text)"),
    "kg-import": (cli_kg.kg_import_main, "import TSV / OpenKE / LAMA / RDF knowledge graphs"),
    "kg-merge": (cli_kg.kg_merge_main, "merge two KG folders by id or by label"),
    "cross-fit-kg": (cross_fit_kg_main, "a KG of labelled documents whose every edge comes from an extractor that "
                     "never trained on its document"),
    "update-kg": (cli_kg.update_kg_main, "add documents to a KG, or remove documents or facts, keeping every id"),
    "kg-edit": (cli_kg.kg_edit_main, "replace the objects of facts in one update (a model reads the edit, no retraining)"),
    "kg-diff": (cli_kg.kg_diff_main, "what differs between two KG folders (by key; exit 1 if they differ)"),
    "serve-kg": (cli_kg.serve_kg_main, "serve a KG over SPARQL 1.1 with the Oxigraph server (read-only, loopback)"),
    "kg-push": (cli_kg.kg_push_main, "load a KG into a named graph of a SPARQL server (Graph Store Protocol)"),
    "ablate": (ablate_main, "every fusion variant x seed with the same data; table, paired tests, plot"),
    "plot": (plot_main, "loss and metric curves of runs, overlaid: kgllm plot RUN_DIR... --out curves.png"),
    "probe": (probe_main, "LAMA knowledge probe (P@1) of an MLM checkpoint, with and without the KG"),
    "inspect": (inspect_main, "what fusion does to one text: linked tokens, per-layer change, attended nodes"),
    "prepare-backbone": (prepare_backbone_main, "train MiniLM's missing MLM head once (encoder frozen) and ship it"),
    "prepare-extractor": (prepare_extractor_main, "train the small learned extractor (LoRA over MiniLM, no KG) "
                          "and write it as one file"),
    "datasets": (datasets_main, "the datasets, their tasks and typed options (for --data.dataset_args)"),
    "export": (export_main, "a classifier checkpoint as a Hugging Face folder (fusion off) plus kgllm's graph weights"),
    "eval-re": (eval_re_main, "document-level RE scores (P/R/F1, Ign F1) of a checkpoint on gold entities"),
    "demo": (demo_main, "does a fused KG teach facts the text never states? LAMA KG-only probe, seeds, intervals"),
    **{c: (lightning_main, f"LightningCLI {c} (e.g. kgllm {c} --config experiments/...yaml)") for c in LIGHTNING},
    "predict": (predict_main, "a classifier checkpoint on new texts: kgllm predict CKPT --input FILE --out preds.jsonl"),
}


def usage() -> str:
    """The ``kgllm`` help: every command with one line on what it does."""
    width = max(map(len, COMMANDS))
    lines = ["usage: kgllm <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def _own_error(exc: BaseException) -> BaseException | None:
    """The kgllm error behind ``exc`` (jsonargparse and Lightning wrap the errors that model and
    data constructors raise), or ``None``. Bad data names its file in the message."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, (KGLLMError, FileExistsError)):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


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
    from kgllm.cli.help import one_spelling

    lightning = func is lightning_main or (cmd == "predict" and (not rest or rest[0].startswith("-")))
    rest = one_spelling(rest, lightning)
    try:
        return func([cmd, *rest] if func is lightning_main else rest)
    except BrokenPipeError:  # `kgllm ... | head` closed the pipe: stop quietly, as other CLI tools do
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at interpreter exit
        return 141
    except Exception as exc:  # noqa: BLE001 - only kgllm's own errors are answered here, others re-raised
        from kgllm.util.io import terminal_safe

        ours = _own_error(exc)
        if ours is None and isinstance(exc, OSError) and exc.filename:  # a path that cannot be read or written
            print(terminal_safe(f"kgllm {cmd}: error: {exc.filename}: {exc.strerror or type(exc).__name__}", keep=""),
                  file=sys.stderr)
            return 1
        if ours is None:
            raise
        print(terminal_safe(f"kgllm {cmd}: error: {ours}", keep="\n"), file=sys.stderr)
        return 2 if isinstance(ours, ConfigError) else 1  # an option out of range is a usage error
    except KeyboardInterrupt:  # partial work stays resumable; finished outputs are never half-written
        print(f"kgllm {cmd}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
