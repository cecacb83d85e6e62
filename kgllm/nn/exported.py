"""The folder a link-prediction model is exported to, and read back from (``ExportEncoder``,
``graph_encoder_from``, ``node_embeddings_from``):

* ``model.pt`` -- ``{"hparams", "encoder", "decoder"}`` (state dicts; tensors only);
* ``embeddings.pt`` -- the entity embeddings, :math:`(N, D)`;
* ``entities.tsv`` / ``relations.tsv`` -- ``id key`` / ``id name``: what each row means;
* ``meta.json`` -- where it came from (dataset, KG folder) and ``encoder``, ``decoder``, ``dim``.

Loading is tensors-only (``weights_only=True``); writing replaces only an earlier export.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from kgllm.util.errors import KGLLMError


def save_exported(folder: str | Path, hparams: dict, encoder: dict, decoder: dict, embeddings: torch.Tensor,
                  entities: list[str], relations: list[str], meta: dict) -> Path:
    """Write a link-prediction export folder (graph encoder, decoder, entity embeddings, names) atomically."""
    from kgllm.util.io import atomic_dir, atomic_write_json

    folder = Path(folder)
    with atomic_dir(folder, overwrite=True, marker="model.pt") as tmp:  # replaces only an earlier export
        torch.save({"hparams": hparams, "encoder": encoder, "decoder": decoder}, tmp / "model.pt")
        torch.save(embeddings, tmp / "embeddings.pt")
        (tmp / "entities.tsv").write_text("id\tkey\n" + "".join(f"{i}\t{e}\n" for i, e in enumerate(entities)))
        (tmp / "relations.tsv").write_text("id\tname\n" + "".join(f"{i}\t{r}\n" for i, r in enumerate(relations)))
        atomic_write_json(tmp / "meta.json", meta)
    return folder


def load_exported(folder: str | Path) -> dict:
    """Read an exported folder: hparams, state dicts, embeddings, id maps, meta; anything missing,
    unreadable or not tensors-only is a one-line error naming the file."""
    from kgllm.nn.checkpoints import CheckpointError, load_checkpoint

    folder = Path(folder)
    if not (folder / "model.pt").is_file():
        raise KGLLMError(f"{folder}: not an exported link-prediction model (no model.pt)")
    blob = load_checkpoint(folder / "model.pt")
    for key, kind in (("hparams", dict), ("encoder", dict), ("decoder", dict)):
        if not isinstance(blob.get(key), kind):
            raise KGLLMError(f"{folder / 'model.pt'}: not an exported model ({key!r} missing)")
    try:
        embeddings = torch.load(folder / "embeddings.pt", map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one line naming it
        raise CheckpointError(f"{folder / 'embeddings.pt'}: not a readable tensor file ({type(exc).__name__})") from None
    if not isinstance(embeddings, torch.Tensor) or embeddings.dim() != 2:
        raise KGLLMError(f"{folder / 'embeddings.pt'}: expected a 2-D tensor of entity embeddings")

    def read(name: str) -> list[str]:
        try:
            lines = (folder / name).read_text(encoding="utf-8").splitlines()[1:]
        except (OSError, UnicodeDecodeError) as exc:
            raise KGLLMError(f"{folder / name}: cannot read it ({type(exc).__name__})") from None
        bad = next((n for n, line in enumerate(lines, 2) if "\t" not in line), None)
        if bad is not None:
            raise KGLLMError(f"{folder / name}:{bad}: expected 'id<TAB>name'")
        return [line.split("\t", 1)[1] for line in lines]

    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise KGLLMError(f"{folder / 'meta.json'}: cannot read it ({type(exc).__name__})") from None
    if not isinstance(meta, dict):
        raise KGLLMError(f"{folder / 'meta.json'}: must be a JSON object")
    return {**blob, "embeddings": embeddings, "entities": read("entities.tsv"), "relations": read("relations.tsv"),
            "meta": meta}
