"""``kgllm fit|validate|test|predict --help`` without importing torch: kgllm's own options first.

LightningCLI builds its parser from every class signature, which imports torch, Lightning and
transformers (about 9 s here). The options people reach for are listed here instead, as text;
``--help-all`` prints LightningCLI's full help. ``tests/test_cli.py`` checks that every option
named here is one the full parser accepts, so this page cannot drift from it.
"""

from __future__ import annotations

import re

ABOUT = {
    "fit": "Train a kgllm LightningModule on a LightningDataModule, both named in the config.",
    "validate": "Validate a checkpoint (its run's config.yaml is read when no --config is given).",
    "test": "Test a checkpoint (its run's config.yaml is read when no --config is given); the report goes "
            "to a new folder RUN/test-<time>, never over the fit's files.",
    "predict": "LightningCLI predict of a checkpoint (kgllm predict CKPT --input FILE is the JSON Lines tool).",
}

#: (option, what it does); the first group is kgllm's, then the most used of Lightning's
KGLLM_OPTIONS = [
    ("--config FILE", "a config from experiments/ (several merge left to right; later options win)"),
    ("--ckpt_path PATH", "best | last | a .ckpt file (loaded with weights_only); test/validate/predict read "
                         "its run's config.yaml when no --config is given"),
    ("--seed_everything N", "the seed of the run (weights, data order, dropout)"),
    ("--test_after_fit BOOL", "fit: test the best checkpoint when fit ends, into the same run folder"),
    ("--keep_last BOOL", "fit: keep last.ckpt after a finished run (removed by default; a killed run keeps it)"),
    ("--data.kg_dir DIR", "the KG folder (kgllm build-kg / kg-import)"),
    ("--data.backbone NAME", "minilm, tiny or a local BERT folder"),
    ("--data.dataset NAME", "a registered dataset (kgllm datasets lists them and their options)"),
    ("--data.dataset_args JSON", "the dataset's options, e.g. '{\"source\": \"my.csv\"}'"),
    ("--data.batch_size N", "training batch size"),
    ("--data.max_length N", "wordpieces per example"),
    ("--data.control NAME", "a control that keeps the parameters and removes the graph's information"),
    ("--model.fusion NAME", "none or a fusion block (gated, xattn, ...; one file each, registered by name)"),
    ("--model.fusion_layers LIST", "BERT layers to fuse at, e.g. [3, 4] (negative counts from the top)"),
    ("--model.node_features NAME", "id, text, text_norm, both or lm (lm: no per-entity trained row)"),
    ("--model.init_from CKPT", "start from these weights (pretraining -> fine-tuning)"),
    ("--model.lr FLOAT", "learning rate of the language model (--model.kg_lr: of the graph encoder)"),
]
LIGHTNING_OPTIONS = [
    ("--trainer.max_epochs N", "epochs"),
    ("--trainer.accelerator NAME", "cpu, gpu or auto"),
    ("--trainer.devices N", "devices per node"),
    ("--trainer.strategy NAME", "auto, ddp, ddp_spawn, fsdp, deepspeed_stage_2, ..."),
    ("--trainer.precision P", "32-true, bf16-mixed, 16-mixed"),
    ("--trainer.enable_progress_bar BOOL", "the progress bar"),
    ("--trainer.default_root_dir DIR", "where runs go when the config names no logger"),
    ("--print_config", "print the resolved config and exit"),
]


def fast_help(command: str) -> str:
    """``kgllm COMMAND --help`` for the LightningCLI commands, as text (no torch import)."""
    width = max(len(o) for o, _ in KGLLM_OPTIONS + LIGHTNING_OPTIONS) + 2
    lines = [f"usage: kgllm {command} [--config FILE] [--section.key VALUE ...]", "", ABOUT[command],
             "Every value of a config can be overridden as --section.key VALUE (dashes or underscores).", "",
             "kgllm options:"]
    lines += [f"  {o:<{width}}{h}" for o, h in KGLLM_OPTIONS]
    lines += ["", "Lightning options (the most used; --help-all lists every one, with its default):"]
    lines += [f"  {o:<{width}}{h}" for o, h in LIGHTNING_OPTIONS]
    lines += ["", f"  {'--help-all':<{width}}LightningCLI's full help (imports torch: a few seconds)"]
    return "\n".join(lines)


def named_options() -> list[str]:
    """The option names (without values) this help lists."""
    return [re.split(r"\s", o, maxsplit=1)[0] for o, _ in KGLLM_OPTIONS + LIGHTNING_OPTIONS]


#: LightningCLI's top-level flags, written with underscores whatever the user types
LIGHTNING_FLAGS = {"seed_everything", "ckpt_path", "print_config", "test_after_fit", "keep_last"}
_OPTION = re.compile(r"--([A-Za-z][\w.-]*)(=.*)?", re.S)


def one_spelling(argv: list[str], lightning: bool) -> list[str]:
    """Options in either spelling: ``--print-config`` and ``--print_config`` mean the same. kgllm's
    own commands are written with dashes; LightningCLI's keys (``--trainer.max_epochs``, passed
    through by ``ablate`` and ``demo`` too) and top-level flags with underscores."""
    out = []
    for tok in argv:
        m = _OPTION.fullmatch(tok)
        if m is None or tok == "--help-all":
            out.append(tok)
            continue
        name, rest = m.group(1), m.group(2) or ""
        if lightning or "." in name or (name.replace("-", "_") in LIGHTNING_FLAGS - {"print_config"}):
            name = name.replace("-", "_")
        else:
            name = name.replace("_", "-")
        out.append(f"--{name}{rest}")
    return out
