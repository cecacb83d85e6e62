"""Run-time pieces every kgllm training run gets: atomic checkpoints, RNG state in checkpoints,
and the KG's ``meta.json`` beside the run's logs (the epoch-seeded data order is
:class:`kgllm.data.sampler.EpochSampler`)."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from kgllm.util.io import current_umask


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
            os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; follow the umask like open()
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
    """``ModelCheckpoint`` whose monitored checkpoints (``best.ckpt``) hold the weights (in the
    training dtype), hyper-parameters and KG metadata only; ``last.ckpt``, which ``--ckpt_path last``
    resumes from, keeps the optimiser, scheduler, loop and RNG states. A fused MiniLM's ``best.ckpt``
    is then a third of the size. ``last.ckpt`` lives only while the run is unfinished: it is removed
    when fit ends normally, unless ``keep_last`` (``kgllm fit --keep_last true``), e.g. to train a
    finished run further. A killed or failed run keeps it for resuming."""

    keep_last: bool = False

    def on_fit_end(self, trainer: "L.Trainer", pl_module: "L.LightningModule") -> None:
        path = self.last_model_path
        if self.keep_last or not path or getattr(trainer, "interrupted", False):
            return
        if trainer.is_global_zero and Path(path).is_file():  # a file this callback wrote
            trainer.strategy.remove_checkpoint(path)
        self.last_model_path = ""

    def _save_checkpoint(self, trainer: "L.Trainer", filepath: str) -> None:
        last = Path(filepath).name.startswith(self.CHECKPOINT_NAME_LAST or "last")
        weights_only, self.save_weights_only = self.save_weights_only, self.save_weights_only or not last
        try:
            super()._save_checkpoint(trainer, filepath)
        finally:
            self.save_weights_only = weights_only


def checkpoint_metadata(trainer: "L.Trainer | None", pl_module: "L.LightningModule") -> dict:
    """What a checkpoint records of how it was made: kgllm, torch and transformers versions, the
    time, the trainer's precision, the weights' dtype, parameter counts (all and trainable), epoch
    and step. Plain values only (a checkpoint loads with ``weights_only=True``). kgllm's modules write
    it as ``checkpoint["kgllm"]`` from their ``on_save_checkpoint`` (a callback's hook is skipped for
    the weights-only ``best.ckpt``)."""
    import transformers

    import kgllm

    params = list(pl_module.parameters())
    dtypes = sorted({str(p.dtype).removeprefix("torch.") for p in params})
    return {"kgllm_version": kgllm.__version__, "torch_version": str(torch.__version__),
            "transformers_version": transformers.__version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "precision": str(trainer.precision) if trainer is not None else None, "weights_dtype": ",".join(dtypes),
            "parameters": sum(p.numel() for p in params),
            "trainable_parameters": sum(p.numel() for p in params if p.requires_grad),
            "epoch": int(trainer.current_epoch) if trainer is not None else None,
            "global_step": int(trainer.global_step) if trainer is not None else None}


class KGModelSummary(L.pytorch.callbacks.ModelSummary):
    """Lightning's model summary without the FLOPs column and total when nothing was counted (a
    model without ``example_input_array``, all of kgllm's: a column of zeros says nothing)."""

    @staticmethod
    def summarize(summary_data, total_parameters, trainable_parameters, model_size, total_training_modes,
                  total_flops, **summarize_kwargs) -> None:
        from lightning.pytorch.utilities.model_summary.model_summary import _format_summary_table

        if total_flops:
            cols = summary_data
        else:
            cols = [(name, values) for name, values in summary_data if name != "FLOPs"]
        table = _format_summary_table(total_parameters, trainable_parameters, model_size, total_training_modes,
                                      total_flops, *cols)
        if not total_flops:
            table = "\n".join(line for line in table.splitlines() if not line.endswith("Total Flops"))
        L.pytorch.utilities.rank_zero_info("\n" + table)


def epoch_line(metrics: dict) -> str:
    """``val/...`` then ``train/...`` metrics of an epoch, one value each: ``X_epoch`` shown as ``X``,
    per-step values dropped."""
    values = {k: float(v) for k, v in metrics.items()
              if k.startswith(("val/", "train/")) and getattr(v, "numel", lambda: 1)() == 1}
    shown = {}
    for key, value in values.items():
        if key.endswith("_epoch"):
            shown[key.removesuffix("_epoch")] = value
        elif not key.endswith("_step") and key + "_epoch" not in values and key + "_step" not in values:
            shown[key] = value
    order = sorted(shown, key=lambda k: (not k.startswith("val/"), k))
    return "  ".join(f"{k} {shown[k]:.4g}" for k in order)


class FiniteLoss(L.Callback):
    """Stop a run whose training loss is no longer finite with a one-line error (exit 1): a run that
    trained to NaN must not end with exit 0 and NaN checkpoints."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor) and not bool(torch.isfinite(loss.detach()).all()):
            from kgllm.util.errors import KGLLMError

            raise KGLLMError(f"train/loss is {loss.detach().float().mean().item()} at step {trainer.global_step} "
                             f"(epoch {trainer.current_epoch}); training stopped: lower the learning rate, clip "
                             "gradients (--trainer.gradient_clip_val) or train in bf16/fp32")


class EpochSummary(L.Callback):
    """One line per epoch with the epoch's metrics when the progress bar is off (``kgllm ablate``, the
    README's long runs, batch jobs), and TensorBoard's ``hp_metric`` set to the checkpoint callback's
    monitored metric (best so far) instead of its ``-1`` placeholder."""

    _start = 0.0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_test_end(self, trainer, pl_module) -> None:
        """A test after fit re-logged the hyper-parameters with TensorBoard's ``-1`` placeholder."""
        if trainer.is_global_zero:
            self._hp_metric(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        """After the epoch's validation (Lightning validates inside the training epoch) and after the
        checkpoint callback has updated its best score."""
        if not trainer.is_global_zero:
            return
        self._hp_metric(trainer)
        bar = trainer.progress_bar_callback
        if bar is not None and bar.is_enabled:
            return
        line = epoch_line(trainer.callback_metrics)
        if line:
            print(f"epoch {trainer.current_epoch} step {trainer.global_step} "
                  f"({time.perf_counter() - self._start:.1f} s): {line}", flush=True)

    @staticmethod
    def _hp_metric(trainer) -> None:
        from lightning.pytorch.loggers import TensorBoardLogger

        ckpt = trainer.checkpoint_callback
        score = getattr(ckpt, "best_model_score", None) if ckpt is not None else None
        if score is None and ckpt is not None and getattr(ckpt, "monitor", None):
            score = trainer.callback_metrics.get(ckpt.monitor)
        if score is None:
            return
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.log_metrics({"hp_metric": float(score)}, step=trainer.global_step)
