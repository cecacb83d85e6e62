"""A learned extractor as one small file: the weights a :class:`~kgllm.lit.DocREModule` trained over
a frozen backbone (a PEFT method such as LoRA, no fusion) plus what rebuilds it, over a backbone
that is installed (``minilm``), not shipped.

Format (``kgllm-extractor/1``): a safetensors file whose tensors are the module's trainable
parameters (matrices int8 with a float16 scale per row, vectors float16; with the random test
backbone ``tiny``, every parameter) and whose metadata entry ``kgllm`` is JSON: the module's hyper-parameters (no
KG folder, nothing that names code), relation ids (``label_names``), the backbone's fingerprint (a
hash of its frozen weights, so adapters never load onto another backbone), and what the file was
made from (training documents, scores, source checkpoint hash).

``kgllm prepare-extractor`` writes one; ``--re-model FILE.safetensors`` and ``kgllm eval-re
FILE.safetensors`` read one; with ``--extractor learned`` and no ``--re-model``, ``build-kg`` reads
the one shipped in the package (:data:`SHIPPED`). Hand-written because a Lightning checkpoint holds
the whole backbone (90 MB for MiniLM) and a PEFT export holds neither the task head nor the schema.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from pathlib import Path

import torch

from kgllm.util.errors import ConfigError, KGLLMError

FORMAT = "kgllm-extractor/1"
#: the extractor shipped with kgllm (``kgllm prepare-extractor`` made it; see its metadata)
SHIPPED = Path(__file__).resolve().parents[1] / "resources" / "extractor_minilm.safetensors"
#: hyper-parameters a file never carries: where a KG or other weights were read from
DROPPED = ("kg_dir", "init_from", "graph_encoder_from", "node_embeddings_from", "allow_other_kg")


def is_extractor_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a compact extractor file (by its ``.safetensors`` suffix)."""
    return str(path).endswith(".safetensors")


def backbone_fingerprint(module) -> str:
    """sha256 (first 16 hex digits) of the frozen backbone weights of ``module`` (a configured
    :class:`~kgllm.lit.DocREModule`), by canonical name: PEFT parameters are left out."""
    from kgllm.lit.base import canonical_key
    from kgllm.lit.builders import PEFT_MARKERS

    digest = hashlib.sha256()
    state = module.model.backbone.state_dict()
    for name in sorted(state, key=canonical_key):
        if any(m in name for m in PEFT_MARKERS):
            continue
        value = state[name].detach().to(torch.float32).contiguous()
        digest.update(canonical_key(name).encode())
        digest.update(value.numpy().tobytes())
    return digest.hexdigest()[:16]


def _constructor_args(cls) -> set[str]:
    names = set()
    for klass in cls.__mro__:
        if "__init__" in vars(klass) and klass.__module__.startswith("kgllm."):
            names |= {p.name for p in inspect.signature(klass.__init__).parameters.values()
                      if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "self"}
    return names


def save_extractor_file(model, out: str | os.PathLike, made_from: dict | None = None) -> dict:
    """Write ``model`` (a configured DocREModule with no fusion and a frozen backbone) to ``out``
    atomically; returns the metadata written. A file that exists is refused (never overwritten)."""
    from safetensors.torch import save

    from kgllm.util.io import atomic_open

    out = Path(out)
    hp = dict(model.hparams)
    if hp.get("fusion", "none") != "none":
        raise ConfigError(f"{out}: the model fuses a KG (fusion {hp['fusion']!r}); a compact extractor file "
                          "holds a model that reads no graph, so keep its checkpoint and KG instead")
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    method, _ = model.peft_method()
    if method == "none" and not hp.get("freeze_backbone"):
        raise ConfigError(f"{out}: the model trained its whole backbone; a compact extractor file holds the "
                          "weights trained over a frozen one (train with --model.peft lora)")
    if out.exists():
        raise ConfigError(f"{out}: exists; kgllm does not overwrite it (choose another --out or remove it)")
    keep = {k: v for k, v in hp.items() if not k.startswith("_") and k not in DROPPED}
    # a random test backbone (``tiny``) cannot be rebuilt from its name, so its frozen weights are kept too
    holds_backbone = hp.get("backbone") == "tiny"
    meta = {"format": FORMAT, "hparams": keep, "label_names": list(model.label_names or []),
            "backbone_fingerprint": backbone_fingerprint(model), "holds_backbone": holds_backbone,
            "made_from": made_from or {}}
    kept = dict(model.named_parameters()) if holds_backbone else trainable
    tensors = {}
    for n, p in kept.items():
        tensors.update(_quantize(n, p.detach().float()))
    with atomic_open(out, "wb") as fh:
        fh.write(save(tensors, metadata={"kgllm": json.dumps(meta, sort_keys=True)}))
    return meta


#: a matrix is stored as int8 with one float16 scale per row under ``NAME`` + this suffix
SCALE = ".__row_scale"


def _quantize(name: str, t: torch.Tensor) -> dict[str, torch.Tensor]:
    """A matrix as int8 with a float16 absmax scale per row (about 1/2 of float16's bytes; the
    round-trip error is at most half a step, 1/254 of the row's largest weight); vectors float16.
    Hand-written: torch's quantization APIs quantize modules for int8 inference, not stored tensors."""
    if t.ndim != 2:
        return {name: t.to(torch.float16).contiguous()}
    scale = (t.abs().amax(dim=1, keepdim=True) / 127).clamp_min(1e-12).to(torch.float16)
    q = torch.round(t / scale.float()).clamp(-127, 127).to(torch.int8)
    return {name: q.contiguous(), name + SCALE: scale.contiguous()}


def _dequantize(stored: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The float tensors of :func:`_quantize`'s output (a file without scales reads as it is)."""
    out = {}
    for name, t in stored.items():
        if name.endswith(SCALE):
            continue
        scale = stored.get(name + SCALE)
        out[name] = t.float() * scale.float() if scale is not None else t
    return out


def read_extractor_meta(path: str | os.PathLike, cls=None) -> dict:
    """The ``kgllm`` metadata of an extractor file, checked: its format, no value that names code,
    and (given the module class ``cls``) no option that class does not take."""
    from safetensors import safe_open

    from kgllm.nn.checkpoints import check_hparams

    path = Path(path)
    if not path.is_file():
        raise KGLLMError(f"{path}: extractor file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get("kgllm")
    except Exception as exc:  # noqa: BLE001 - whatever safetensors raises for a file that is not one
        raise KGLLMError(f"{path}: not a safetensors file ({type(exc).__name__}: {str(exc)[:200]})") from None
    try:
        meta = json.loads(raw) if raw else None
    except ValueError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise KGLLMError(f"{path}: not a kgllm extractor file (no {FORMAT} metadata); "
                         "`kgllm prepare-extractor` writes one")
    check_hparams(path, {"hyper_parameters": meta.get("hparams") or {}}, allowed=set())
    unknown = set(meta.get("hparams") or {}) - _constructor_args(cls) if cls is not None else set()
    if unknown:
        raise KGLLMError(f"{path}: hyper-parameters this kgllm does not know: {sorted(unknown)[:5]} "
                         "(written by another version?)")
    return meta


def load_extractor_file(path: str | os.PathLike, cls):
    """The module (``cls``: :class:`~kgllm.lit.DocREModule`, which calls this from its
    ``from_checkpoint``) of an extractor file, in eval mode, over the installed backbone; refused if
    the backbone's weights differ from the ones it was trained over, or if the file's tensors do not
    match the module's trainable parameters one for one."""
    from safetensors.torch import load_file

    path = Path(path)
    meta = read_extractor_meta(path, cls)
    hp = dict(meta["hparams"])
    if hp.get("task", "docre") != "docre" or hp.get("fusion", "none") != "none":
        raise KGLLMError(f"{path}: not a graph-free document-level RE model (task {hp.get('task')!r}, "
                         f"fusion {hp.get('fusion')!r})")
    model = cls(**hp, kg_dir=None)
    model.label_names = list(meta.get("label_names") or [])
    model.configure_model()
    tensors = _dequantize(load_file(str(path)))
    own = model.state_dict()
    expected = {n for n, p in model.named_parameters() if p.requires_grad or meta.get("holds_backbone")}
    if set(tensors) != expected:
        extra, missing = sorted(set(tensors) - expected), sorted(expected - set(tensors))
        raise KGLLMError(f"{path}: its tensors do not match the model's trainable weights "
                         f"(unexpected {extra[:3]}, missing {missing[:3]})")
    bad = [n for n, t in tensors.items() if t.shape != own[n].shape]
    if bad:
        raise KGLLMError(f"{path}: tensor {bad[0]} has shape {tuple(tensors[bad[0]].shape)}, the model "
                         f"{tuple(own[bad[0]].shape)}")
    model.load_state_dict({n: t.to(own[n].dtype) for n, t in tensors.items()}, strict=False)
    if not meta.get("holds_backbone") and backbone_fingerprint(model) != meta.get("backbone_fingerprint"):
        raise KGLLMError(f"{path}: trained over another {hp.get('backbone')!r} backbone (its weights differ "
                         "from the installed ones); retrain it with `kgllm prepare-extractor`")
    if len(model.label_names) != hp.get("num_labels"):
        raise KGLLMError(f"{path}: {len(model.label_names)} relation ids for {hp.get('num_labels')} labels")
    return model.eval()


__all__ = ["FORMAT", "SHIPPED", "backbone_fingerprint", "is_extractor_file", "load_extractor_file",
           "read_extractor_meta", "save_extractor_file"]
