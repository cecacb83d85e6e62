"""Loading checkpoints safely: tensors only (``weights_only=True``, URLs too), clear errors for files
that are not kgllm checkpoints, and a KG identity check so that rows of one KG's entity table are
never loaded onto another KG's entities.

A KG's identity (:func:`kgllm.kg.store.kg_identity`) is a hash of its entity keys and relation
names in id order; it is written to ``meta.json`` and into every checkpoint (``kg_meta``), with the
keys themselves (``kg_keys``) so that ``allow_other_kg`` can remap rows by key, not by position.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from kgllm.errors import KGLLMError

log = logging.getLogger(__name__)


class CheckpointError(KGLLMError):
    """A checkpoint is missing, truncated, not a torch file, unsafe, or of another KG."""


def is_url(path: str | os.PathLike) -> bool:
    return str(path).startswith(("http://", "https://"))


def load_checkpoint(path: str | os.PathLike, map_location: str = "cpu") -> dict:
    """``torch.load`` with ``weights_only=True`` for local files and URLs; any failure becomes a
    :class:`CheckpointError` naming the file (a pickled object that is not plain tensors and
    containers is refused, never executed)."""
    try:
        if is_url(path):
            blob = torch.hub.load_state_dict_from_url(str(path), map_location=map_location, weights_only=True,
                                                      progress=False)
        else:
            if not Path(path).is_file():
                raise CheckpointError(f"{path}: checkpoint file not found")
            blob = torch.load(path, map_location=map_location, weights_only=True)
    except CheckpointError:
        raise
    except pickle.UnpicklingError as exc:
        lines = [x.strip() for x in str(exc).splitlines() if x.strip()]
        what = next((x for x in lines if "GLOBAL" in x or "Unsupported" in x), lines[0] if lines else "")
        raise CheckpointError(f"{path}: refused: holds objects other than tensors and plain containers "
                              f"({what[:200]})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or not a torch file: "
                              f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})") from exc
    if not isinstance(blob, dict):
        raise CheckpointError(f"{path}: not a checkpoint (a {type(blob).__name__}, not a dict)")
    return blob


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
    from kgllm.kg.folder import read_tsv

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


__all__ = ["CheckpointError", "EXPORT_EXTRA", "EXPORT_META", "check_lightning_checkpoint", "check_same_kg", "is_url",
           "kg_keys", "load_checkpoint", "read_export_extras", "remap_kg_rows"]
