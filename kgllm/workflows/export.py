"""``kgllm export CKPT --out DIR``: a trained classifier as a standard Hugging Face folder, plus
what kgllm adds to it.

``DIR`` holds:

* ``config.json``, ``model.safetensors``, the tokenizer files: the backbone with its task head, fusion
  off -- ``transformers.AutoModelFor...from_pretrained(DIR)`` gives exactly the outputs of kgllm's
  model without a graph (LoRA adapters are merged in; label names are in ``config.id2label``);
* ``kgllm_extra.safetensors``: the graph encoder, the fusion blocks and any task head outside the
  transformers model (e.g. ``rel_cls``'s marker head), by kgllm's parameter names;
* ``kgllm.json``: the task, label names, the model and data settings, the KG's identity and entity
  keys, and the checkpoint it came from (its sha256).

``--data.backbone DIR`` (or ``backbone: DIR`` in a config) loads it back: the backbone from the
transformers files and, with fusion on, the graph encoder and fusion blocks from
``kgllm_extra.safetensors`` (same KG required, as for ``init_from``).

    kgllm export runs/sst2/best.ckpt --out exported/sst2
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kgllm.util.formatting import HelpFormatter
from kgllm.util.errors import KGLLMError


def _plain_state(model) -> dict:
    """The transformers model's own tensors, fusion wrappers stripped, LoRA merged."""
    from kgllm.lit.builders import PEFT_MARKERS, BottleneckAdapter
    from kgllm.nn.kgbert import is_kg_parameter

    if any(isinstance(m, BottleneckAdapter) for m in model.modules()):
        raise KGLLMError("bottleneck adapters are not linear, so no plain transformers model holds them; "
                         "export a model trained with peft none, lora or ia3")
    for module in model.modules():  # LoRA and IA3 (peft) layers fold their update into the base weight
        if (hasattr(module, "lora_A") or hasattr(module, "ia3_l")) and hasattr(module, "merge"):
            module.merge()
    out = {}
    for key, value in model.model.hf.state_dict().items():
        if is_kg_parameter(key) or any(m in key for m in PEFT_MARKERS):
            continue
        out[key.replace(".base_layer.", ".")] = value
    return out


def _json_safe(obj):
    return json.loads(json.dumps(obj, default=str))


def export(ckpt: str, out: str, overwrite: bool = False) -> Path:
    """Write the export folder of ``ckpt`` (a ClassifierModule checkpoint) to ``out``."""
    from safetensors.torch import save_file

    from kgllm.nn.checkpoints import kg_keys
    from kgllm.util.io import atomic_dir, sha256_file
    from kgllm.nn.backbone import load_tokenizer
    from kgllm.nn.kgbert import is_kg_parameter
    from kgllm.workflows.predict import load_classifier

    model, task, labels, dm_hp = load_classifier(ckpt, tasks=None)
    hf = model.model.hf
    state = _plain_state(model)
    plain = type(hf)(hf.config)
    missing, unexpected = plain.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise KGLLMError(f"{ckpt}: the backbone does not map onto {type(hf).__name__} "
                         f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    if labels and getattr(plain.config, "num_labels", None) == len(labels):
        plain.config.id2label = dict(enumerate(labels))
        plain.config.label2id = {name: i for i, name in enumerate(labels)}
    tokenizer = load_tokenizer(dm_hp.get("backbone") or model.hparams.backbone)
    model.task_spec.prepare_tokenizer(tokenizer)
    extra = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()
             if not k.startswith("model.hf.") or is_kg_parameter(k)}
    kg_dir = model.hparams.kg_dir
    meta = {"format": 1, "task": task, "label_names": labels, "hf_class": type(hf).__name__,
            "hparams": _json_safe(dict(model.hparams)), "datamodule": _json_safe(dm_hp),
            "kg_meta": _json_safe(model.kg_meta), "kg_keys": kg_keys(kg_dir) if kg_dir and extra else None,
            "checkpoint": {"path": str(ckpt), "sha256": sha256_file(ckpt)}}
    from kgllm.nn.checkpoints import EXPORT_EXTRA as EXTRA
    from kgllm.nn.checkpoints import EXPORT_META as META

    with atomic_dir(out, overwrite=overwrite, marker=META) as tmp:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if extra:
            save_file(extra, str(tmp / EXTRA))
        (tmp / META).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return Path(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="kgllm export", description=__doc__,
                                formatter_class=HelpFormatter)
    p.add_argument("checkpoint", help="a ClassifierModule checkpoint (kgllm fit of a classification config)")
    p.add_argument("--out", required=True, help="folder to write (appears only when complete)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier export at --out")
    a = p.parse_args(argv)
    from kgllm.lit.quiet import quiet_third_party

    quiet_third_party(devices=True)
    print(f"{export(a.checkpoint, a.out, a.overwrite)}: exported", file=sys.stderr)
    return 0
