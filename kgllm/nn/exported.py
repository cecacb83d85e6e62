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

from kgllm.errors import KGLLMError


def save_exported(folder: str | Path, hparams: dict, encoder: dict, decoder: dict, embeddings: torch.Tensor,
                  entities: list[str], relations: list[str], meta: dict) -> Path:
    from kgllm.io import atomic_dir, atomic_write_json

    folder = Path(folder)
    with atomic_dir(folder, overwrite=True, marker="model.pt") as tmp:  # replaces only an earlier export
        torch.save({"hparams": hparams, "encoder": encoder, "decoder": decoder}, tmp / "model.pt")
        torch.save(embeddings, tmp / "embeddings.pt")
        (tmp / "entities.tsv").write_text("id\tkey\n" + "".join(f"{i}\t{e}\n" for i, e in enumerate(entities)))
        (tmp / "relations.tsv").write_text("id\tname\n" + "".join(f"{i}\t{r}\n" for i, r in enumerate(relations)))
        atomic_write_json(tmp / "meta.json", meta)
    return folder


def load_exported(folder: str | Path) -> dict:
    """Read an exported folder: hparams, state dicts, embeddings, id maps, meta."""
    folder = Path(folder)
    if not (folder / "model.pt").is_file():
        raise KGLLMError(f"{folder}: not an exported link-prediction model (no model.pt)")
    blob = torch.load(folder / "model.pt", map_location="cpu", weights_only=True)
    read = lambda name: [line.split("\t", 1)[1] for line in (folder / name).read_text().splitlines()[1:]]  # noqa: E731
    return {**blob, "embeddings": torch.load(folder / "embeddings.pt", weights_only=True),
            "entities": read("entities.tsv"), "relations": read("relations.tsv"),
            "meta": json.loads((folder / "meta.json").read_text())}
