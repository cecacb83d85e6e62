"""Run-time pieces every kgllm training run gets: atomic checkpoints, RNG state in checkpoints,
and the KG's ``meta.json`` beside the run's logs (the epoch-seeded data order is
:class:`kgllm.data.sampler.EpochSampler`)."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints are written to a temporary file in the same folder and renamed into place, so
    a run killed while saving leaves the previous checkpoint intact, never a truncated one."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options: Any | None = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            super().save_checkpoint(checkpoint, tmp, storage_options)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


class RNGStates(L.Callback):
    """Save the torch (CPU and CUDA), NumPy and Python RNG states in every checkpoint and restore them on resume,
    so a resumed run draws the same dropout masks as an uninterrupted one. Stored as tensors,
    lists and ints only (loadable with ``weights_only=True``)."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        np_state = np.random.get_state()
        checkpoint["rng_states"] = {
            "torch": torch.get_rng_state(),
            "python": random.getstate(),
            "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        }
        if torch.cuda.is_available():
            checkpoint["rng_states"]["cuda"] = torch.cuda.get_rng_state_all()

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        states = checkpoint.get("rng_states")
        if not states:
            return
        torch.set_rng_state(states["torch"])
        py = states["python"]
        random.setstate((py[0], tuple(py[1]), py[2]))
        kind, keys, *rest = states["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), *rest))
        if "cuda" in states and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(states["cuda"])


class SaveKGMeta(L.Callback):
    """Copy the KG's ``meta.json`` into the run's log folder (rank 0), beside ``config.yaml``."""

    def on_fit_start(self, trainer, pl_module) -> None:
        kg_dir = getattr(getattr(trainer, "datamodule", None), "hparams", {}).get("kg_dir")
        log_dir = trainer.log_dir  # a collective under DDP: every rank must ask
        if not trainer.is_global_zero or not kg_dir or not log_dir:
            return
        meta = Path(kg_dir) / "meta.json"
        if meta.is_file():
            Path(log_dir).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(meta, Path(log_dir) / "kg_meta.json")


class KGCheckpoint(L.pytorch.callbacks.ModelCheckpoint):
    """``ModelCheckpoint`` whose monitored checkpoints (``best.ckpt``) hold the weights, hyper-parameters
    and KG metadata only; ``last.ckpt``, which ``--ckpt_path last`` resumes from, keeps the optimiser,
    scheduler, loop and RNG states. A fused MiniLM's ``best.ckpt`` is then a third of the size."""

    def _save_checkpoint(self, trainer: "L.Trainer", filepath: str) -> None:
        last = Path(filepath).name.startswith(self.CHECKPOINT_NAME_LAST or "last")
        weights_only, self.save_weights_only = self.save_weights_only, self.save_weights_only or not last
        try:
            super()._save_checkpoint(trainer, filepath)
        finally:
            self.save_weights_only = weights_only
