"""``kgllm fit|validate|test|predict``: LightningCLI over the kgllm modules and ``KGDataModule``."""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Sequence

from lightning.pytorch import LightningModule
from lightning.pytorch.cli import LightningCLI

from kgllm.data.datamodule import KGDataModule


class KGLightningCLI(LightningCLI):
    """LightningCLI whose ``data.kg_dir`` and ``data.backbone`` feed the model too.

    The resolved configuration is written as ``config.yaml`` into each run's log folder.
    """

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.kg_dir", "model.init_args.kg_dir")
        parser.link_arguments("data.backbone", "model.init_args.backbone")


def run_cli(args: Sequence[str] | None = None, run: bool = True) -> KGLightningCLI:
    """Run (or, with ``run=False``, only build) the CLI on ``args`` (default: ``sys.argv``)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = list(args) if args is not None else None
    if args == sys.argv[1:]:
        args = None  # LightningCLI warns when given both args and a command line
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        return _cli(args, run)


def _cli(args: list[str] | None, run: bool) -> KGLightningCLI:
    return KGLightningCLI(LightningModule, KGDataModule, subclass_mode_model=True, args=args,
                          run=run, save_config_kwargs={"overwrite": True},
                          parser_kwargs={"default_env": False})
