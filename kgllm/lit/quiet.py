"""Known third-party noise, dropped from kgllm's command-line output (library use keeps it).

Lives below the workflows and the CLI, so both can quiet a run without importing each other.
"""

from __future__ import annotations

import logging
import warnings

#: messages of other libraries that say nothing about this run (the CLI drops them; library use keeps them)
NOISE = ("litlogger", "isinstance(treespec, LeafSpec)", "You are resizing the embedding layer",
         "The new embeddings will be initialized from", "Trainer already configured with model summary",
         "Seed set to",  # the seed is in the run's config.yaml and folder name
         "torch.jit.script` is deprecated")


#: Lightning's device report, which says nothing when a tool only predicts
DEVICE_LINES = ("GPU available:", "TPU available:", "HPU available:", "IPU available:")


class _DropNoise(logging.Filter):
    def __init__(self, extra: tuple = ()) -> None:
        super().__init__()
        self.extra = extra  # more messages this filter drops (per filter, not process-wide)

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not any(n in msg for n in NOISE + self.extra)


def quiet_third_party(devices: bool = False) -> None:
    """Drop known third-party noise from the command line's output: Lightning's litlogger tip,
    torch's ``_pytree`` and ``jit.script`` deprecation warnings, transformers' embedding-resize
    notice and its weight-loading progress bar, and the "Seed set to" line before anything else is
    said; with ``devices``, also Lightning's "GPU available" lines (inference tools)."""
    extra = DEVICE_LINES if devices else ()
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch", "transformers",
                 "lightning.fabric.utilities.seed", "lightning_fabric.utilities.seed"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropNoise) and f.extra == extra for f in logger.filters):
            logger.addFilter(_DropNoise(extra))
    for pattern in NOISE:
        warnings.filterwarnings("ignore", message=f".*{pattern.replace('(', '.').replace(')', '.')}")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.get_logger("transformers.modeling_utils").addFilter(_DropNoise())
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass
