"""Loading checkpoints safely: tensors only (``weights_only=True``, URLs too), clear errors for files
that are not kgllm checkpoints, and a KG identity check so that rows of one KG's entity table are
never loaded onto another KG's entities.

A KG's identity (:func:`kgllm.kg.graph.store.kg_identity`) is a hash of its entity keys and relation
names in id order; it is written to ``meta.json`` and into every checkpoint (``kg_meta``), with the
keys themselves (``kg_keys``) so that ``allow_other_kg`` can remap rows by key, not by position.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
from pathlib import Path
from typing import Any

import torch

from kgllm.util.errors import KGLLMError

log = logging.getLogger(__name__)


class CheckpointError(KGLLMError):
    """A checkpoint is missing, truncated, not a torch file, unsafe, or of another KG."""


def is_url(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an http(s) URL (checkpoints may be fetched from one)."""
    return str(path).startswith(("http://", "https://"))


#: URL -> the content-addressed local copy this process downloaded (never reused across processes)
_FETCHED: dict[str, Path] = {}


def local_checkpoint(path: str | os.PathLike) -> str:
    """``path`` itself for a local file; for an ``http(s)`` URL, a local copy downloaded by this
    process and named by the sha256 of its content (``$KGLLM_CACHE/downloads/``). Nothing is cached
    by URL or file name across processes (``torch.hub`` caches by file name, so a second URL with
    the same name would be answered with the first one's file)."""
    if not is_url(path):
        return str(path)
    url = str(path)
    if url in _FETCHED and _FETCHED[url].is_file():
        return str(_FETCHED[url])
    import hashlib
    import tempfile
    import urllib.error
    import urllib.request

    from kgllm.util.paths import cache_dir

    folder = cache_dir() / "downloads"
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".download.", suffix=".tmp", dir=folder)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
            while block := resp.read(1 << 20):
                digest.update(block)
                out.write(block)
        suffix = ".safetensors" if url.split("?")[0].endswith(".safetensors") else ".ckpt"  # the format it names
        target = folder / f"{digest.hexdigest()[:32]}{suffix}"
        os.replace(tmp, target)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CheckpointError(f"{url}: cannot download the checkpoint ({reason})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _FETCHED[url] = target
    return str(target)


def load_checkpoint(path: str | os.PathLike, map_location: str = "cpu") -> dict:
    """``torch.load`` with ``weights_only=True`` for local files and URLs (downloaded by
    :func:`local_checkpoint`); any failure becomes a :class:`CheckpointError` naming the file (a
    pickled object that is not plain tensors and containers is refused, never executed)."""
    try:
        local = local_checkpoint(path)
        if not Path(local).is_file():
            raise CheckpointError(f"{path}: checkpoint file not found")
        blob = torch.load(local, map_location=map_location, weights_only=True)
    except CheckpointError:
        raise
    except pickle.UnpicklingError as exc:
        lines = [x.strip() for x in str(exc).splitlines() if x.strip()]
        what = next((x for x in lines if "GLOBAL" in x or "Unsupported" in x), lines[0] if lines else "")
        raise CheckpointError(f"{path}: refused: holds objects other than tensors and plain containers "
                              f"({what[:200]})") from None
    except Exception as exc:  # noqa: BLE001 - whatever a corrupt file makes torch raise (struct.error, ...)
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or not a torch file: "
                              f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})") from exc
    if not isinstance(blob, dict):
        raise CheckpointError(f"{path}: not a checkpoint (a {type(blob).__name__}, not a dict)")
    return blob


#: keys by which jsonargparse or Lightning would import and call something named in a file
CODE_KEYS = ("_class_path", "class_path", "_instantiator", "__path__", "function_path")


def check_hparams(path: str | os.PathLike, blob: dict, allowed: set[str]) -> dict:
    """The checkpoint's hyper-parameters, checked so that the file never chooses code: its
    ``_class_path`` must be one of ``allowed`` (the command's own module, else kgllm's modules),
    and no value anywhere inside may name a class, function or module to load."""
    hparams = blob.get("hyper_parameters") or {}
    if not isinstance(hparams, dict):
        raise CheckpointError(f"{path}: hyper_parameters is a {type(hparams).__name__}, not a mapping")
    cls = hparams.get("_class_path")
    if cls is not None and cls not in allowed:
        raise CheckpointError(f"{path}: refused: the checkpoint names the class {str(cls)[:100]!r}, not this "
                              f"command's model ({', '.join(sorted(allowed))}); a checkpoint never chooses code")

    def walk(value, where: str, depth: int = 0) -> None:
        if depth > 50:
            raise CheckpointError(f"{path}: hyper-parameter {where} is nested too deeply")
        if isinstance(value, dict):
            for key, item in value.items():
                if key in CODE_KEYS and not (depth == 0 and key in ("_class_path", "_instantiator")):
                    raise CheckpointError(f"{path}: refused: hyper-parameter {where}{key} names code to load")
                walk(item, f"{where}{key}.", depth + 1)
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                walk(item, f"{where}{i}.", depth + 1)

    walk(hparams, "")
    return hparams


def check_lightning_checkpoint(path: str | os.PathLike) -> dict:
    """Load ``path`` safely and check it is a Lightning checkpoint with a ``state_dict``."""
    blob = load_checkpoint(path)
    if not isinstance(blob.get("state_dict"), dict):
        raise CheckpointError(f"{path}: not a Lightning checkpoint (no state_dict); kgllm checkpoints come from "
                              "`kgllm fit` (runs/.../checkpoints/*.ckpt)")
    return blob


def remap_kg_rows(state_dict: dict[str, torch.Tensor], own: dict[str, torch.Tensor], src_keys: dict,
                  dst_keys: dict, edges: torch.Tensor | None = None) -> dict:
    """Rewrite the entity- and relation-indexed tables of ``state_dict`` (``*node_emb.weight``,
    ``*rel_emb.weight``) from the source KG's ids to this KG's ids by key; rows of matched entities
    and relations are copied bit for bit. A new entity's row is the mean of its matched neighbours'
    rows in ``edges`` (``2 x E`` entity ids of this KG; the inductive guess before any training),
    else the mean of all matched rows; new relations keep this model's fresh values (``own``).

    Returns counts of matched entities and relations.
    """
    maps = {}
    for kind in ("entities", "relations"):
        src_index = {k: i for i, k in enumerate(src_keys[kind])}
        maps[kind] = [src_index.get(k, -1) for k in dst_keys[kind]]
    for name, value in list(state_dict.items()):
        kind = "entities" if name.endswith("node_emb.weight") else "relations" if name.endswith("rel_emb.weight") \
            else None
        if kind is None or name not in own:
            continue
        fresh = own[name].detach().clone()
        n_src, n_dst = len(src_keys[kind]), len(dst_keys[kind])
        blocks = value.size(0) // max(n_src, 1)  # relation tables hold inverse relations as a second block
        if value.size(0) != blocks * max(n_src, 1) or fresh.size(0) != blocks * max(n_dst, 1):
            raise CheckpointError(f"{name}: {value.size(0)} rows do not fit {n_src} source {kind}")
        for b in range(blocks):
            for dst, src in enumerate(maps[kind]):
                if src >= 0:
                    fresh[b * n_dst + dst] = value[b * n_src + src]
        if kind == "entities" and blocks == 1:
            _neighbour_rows(fresh, torch.tensor([s >= 0 for s in maps[kind]], dtype=torch.bool), edges)
        state_dict[name] = fresh
    return {k: sum(i >= 0 for i in m) for k, m in maps.items()}


def _neighbour_rows(table: torch.Tensor, known: torch.Tensor, edges: torch.Tensor | None) -> None:
    """Fill the rows of ``table`` not ``known`` with the mean of their known neighbours' rows (else
    the mean of all known rows), in place."""
    new = (~known).nonzero().flatten()
    if len(new) == 0 or not known.any():
        return
    fill = table[known].mean(0).expand(len(new), -1).clone()
    if edges is not None and edges.numel():
        src, dst = torch.cat([edges[0], edges[1]]), torch.cat([edges[1], edges[0]])
        keep = ~known[dst] & known[src]  # messages from known rows into new ones
        sums = torch.zeros_like(table).index_add_(0, dst[keep], table[src[keep]])
        deg = torch.zeros(table.size(0), dtype=table.dtype).index_add_(0, dst[keep], torch.ones_like(dst[keep], dtype=table.dtype))
        has = deg[new] > 0
        fill[has] = sums[new][has] / deg[new][has].unsqueeze(1)
    table[new] = fill.to(table.dtype)


def check_same_kg(checkpoint: dict, own_meta: dict, where: str, allow_other_kg: bool) -> bool:
    """True if ``checkpoint`` was trained on the KG of ``own_meta``; else raise unless
    ``allow_other_kg`` (then the caller remaps by key and this returns False)."""
    src = (checkpoint.get("kg_meta") or {}).get("identity")
    dst = own_meta.get("identity")
    if src is not None and src == dst:
        return True
    grown = src is not None and src in (own_meta.get("lineage") or [])  # the KG was updated since (update-kg)
    if allow_other_kg or grown:
        if not checkpoint.get("kg_keys"):
            raise CheckpointError(f"{where}: has no entity keys (written before kgllm stored them), so its "
                                  "graph weights cannot be remapped to this KG")
        return False
    said = "an unrecorded KG" if src is None else f"KG {src}"
    raise CheckpointError(f"{where}: trained on {said}, but this run's KG is {dst}; its entity rows would land "
                          "on other entities. Pass --model.init_args.allow_other_kg true to remap them by entity key")


def kg_keys(kg_dir: str | os.PathLike) -> dict[str, Any]:
    """Entity keys and relation names of a KG folder, in id order."""
    from kgllm.kg.graph.folder import read_tsv

    folder = Path(kg_dir)
    return {"entities": [row[1] for row in read_tsv(folder / "entities.tsv", 7)],
            "relations": [row[1] for row in read_tsv(folder / "relations.tsv", 3)]}


#: the files ``kgllm export`` writes next to the transformers ones (:mod:`kgllm.workflows.export`)
EXPORT_EXTRA = "kgllm_extra.safetensors"
EXPORT_META = "kgllm.json"


def read_export_extras(folder: str | Path) -> dict | None:
    """An export folder's kgllm weights as a checkpoint-like dict (``state_dict``, ``kg_meta``,
    ``kg_keys``) for :meth:`~kgllm.lit.base.KGLitModule.load_init`; ``None`` for a plain HF folder."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / EXPORT_META).is_file():
        return None
    meta = json.loads((folder / EXPORT_META).read_text(encoding="utf-8"))
    state = load_file(str(folder / EXPORT_EXTRA)) if (folder / EXPORT_EXTRA).is_file() else {}
    return {"state_dict": state, "kg_meta": meta.get("kg_meta") or {}, "kg_keys": meta.get("kg_keys")}


__all__ = ["CheckpointError", "EXPORT_EXTRA", "EXPORT_META", "check_hparams", "check_lightning_checkpoint",
           "check_same_kg", "is_url", "kg_keys", "load_checkpoint", "local_checkpoint", "read_export_extras",
           "remap_kg_rows"]
