"""``kgllm prepare-extractor``: train the small learned extractor and write it as one file.

The model is the ATLOP-style document-level RE model of ``kgllm fit --config
experiments/docre_redocred.yaml``, but over the installed MiniLM kept frozen: LoRA on the attention
query/value projections and a small grouped bilinear head are all that train, and all that the
file holds (:mod:`kgllm.lit.extractor_file`). It fuses no graph, so it needs no KG, to train or to
extract. The recipe is ``kgllm/resources/extractor_minilm.yaml``: Re-DocRED documents 0-359 train,
360-399 pick the epoch, 400-499 test (gold entities; scores written into the file's metadata).

Run:  KGLLM_DATA=../shared/data kgllm prepare-extractor --out extractor.safetensors
      [-- --trainer.max_epochs 4 ...]  (any `kgllm fit` option after --)
      kgllm prepare-extractor --from-checkpoint RUN/checkpoints/best.ckpt --out extractor.safetensors
Then: kgllm build-kg CORPUS --out KG --extractor learned --re-model extractor.safetensors
(without --re-model, ``--extractor learned`` reads the file shipped in the package).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence

from kgllm.util.errors import ConfigError
from kgllm.util.formatting import HelpFormatter

RECIPE = Path(__file__).resolve().parents[1] / "resources" / "extractor_minilm.yaml"


def train(runs: str, overrides: Sequence[str], config: str = str(RECIPE)) -> dict:
    """Fit the recipe (``config``; ``overrides`` as ``kgllm fit`` options) into ``runs`` with no KG;
    returns :func:`~kgllm.lit.runner.fit_and_test`'s result."""
    from kgllm.lit.runner import fit_and_test

    args = ["--config", config, "--data.init_args.kg_dir", "null", "--trainer.default_root_dir", runs,
            "--trainer.logger.init_args.save_dir", runs, *overrides]
    return fit_and_test(args)


def export(ckpt: str, out: str, made_from: dict) -> dict:
    """Write the extractor file ``out`` from a DocREModule checkpoint ``ckpt``; returns its metadata."""
    from kgllm.lit.classify import DocREModule
    from kgllm.lit.extractor_file import save_extractor_file
    import kgllm
    from kgllm.util.io import sha256_file

    model, data_hp = DocREModule.from_checkpoint(ckpt)
    made_from = {"checkpoint_sha256": sha256_file(ckpt), "kgllm_version": kgllm.__version__,
                 "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "datamodule": {k: data_hp.get(k) for k in ("dataset", "dataset_args", "max_length") if k in data_hp},
                 **made_from}
    return save_extractor_file(model, out, made_from)


def main(argv: Sequence[str]) -> int:
    argv = list(argv)
    passthrough = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(prog="kgllm prepare-extractor", description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--out", required=True, help="the extractor file to write (.safetensors; never overwritten)")
    p.add_argument("--runs", default="runs", help="folder of the training run (a new versioned run inside)")
    p.add_argument("--from-checkpoint", default=None, metavar="CKPT",
                   help="skip training: write the file from this DocREModule checkpoint (fusion none, PEFT)")
    p.add_argument("--config", default=str(RECIPE), help="the training recipe (a `kgllm fit` config)")
    a = p.parse_args(own)
    if not a.out.endswith(".safetensors"):
        p.error("--out must end in .safetensors (how --re-model tells an extractor file from a checkpoint)")
    if Path(a.out).exists():
        raise ConfigError(f"{a.out}: exists; kgllm does not overwrite it (choose another --out or remove it)")
    if a.from_checkpoint and passthrough:
        p.error("options after -- train a model; --from-checkpoint trains none")
    made_from: dict = {"recipe": Path(a.config).name}
    if a.from_checkpoint:
        ckpt = a.from_checkpoint
    else:
        result = train(a.runs, passthrough, a.config)
        ckpt = result["best_ckpt"]
        if not ckpt:
            raise ConfigError("the training run saved no checkpoint to export (is a KGCheckpoint callback configured?)")
        made_from.update({"overrides": passthrough, "epochs": result["epochs"],
                          "best_val_f1": result["best_score"],
                          "test": {k.removeprefix("test/"): round(v, 4) for k, v in result["metrics"].items()
                                   if k.startswith("test/")}})
    meta = export(ckpt, a.out, made_from)
    size = Path(a.out).stat().st_size
    print(json.dumps({"out": a.out, "bytes": size, "from": ckpt, "relations": len(meta["label_names"]),
                      **{k: v for k, v in meta["made_from"].items() if k in ("test", "best_val_f1", "epochs")}},
                     indent=2), file=sys.stdout)
    return 0
