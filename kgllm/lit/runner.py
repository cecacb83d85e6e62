"""The runner: LightningCLI over the kgllm modules and ``KGDataModule`` (``kgllm fit|validate|test|predict``)
and ``fit_and_test`` for the workflows (``ablate``, the demo, benchmarks). It sits below both the
CLI and the workflows, which import it; it imports neither."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import Sequence

from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningCLI

from kgllm.lit.quiet import quiet_third_party

#: loggers that share one run folder (:meth:`KGLightningCLI._share_run_folder`)
RUN_LOGGERS = ("CSVLogger", "TensorBoardLogger")
#: the run folder's version, passed to processes DDP starts later
RUN_ENV = "KGLLM_RUN_VERSION"
#: run folders the current fit named (folder, the topmost folder it would create): removed again,
#: up to that one, if the fit fails before writing any file into them
_NEW_RUN_DIRS: list = []
#: ``ckpt_path`` values that Lightning resolves itself (not files to check)
_SPECIAL_CKPT = ("best", "last", "hpc")


class KGLightningCLI(LightningCLI):
    """LightningCLI over any kgllm LightningModule and LightningDataModule (``class_path`` in the
    config). Models read what depends on the data (KG folder, backbone, label count, graph size)
    from the datamodule when the config leaves it unset. The resolved configuration is written as
    ``config.yaml`` into each run's log folder (rank 0 only), with the KG's ``meta.json`` beside
    it; checkpoints are written atomically and carry the RNG states.
    """

    def instantiate_trainer(self, **kwargs):
        from lightning.pytorch.callbacks import LearningRateMonitor, ModelSummary

        from kgllm.lit.runtime import AtomicCheckpointIO, KGModelSummary

        trainer = self._get(self.config_init, "trainer", default={})
        if not trainer.get("plugins"):
            kwargs.setdefault("plugins", [AtomicCheckpointIO()])
        defaults = list(self.trainer_defaults.get("callbacks", []))
        configured = [*defaults, *(trainer.get("callbacks") or [])]
        if trainer.get("enable_model_summary") is not False and not trainer.get("barebones") and \
                not any(isinstance(cb, ModelSummary) for cb in configured):
            defaults.append(KGModelSummary())  # no FLOPs column of zeros
        if trainer.get("logger") is not False and not trainer.get("fast_dev_run") and \
                not any(isinstance(cb, LearningRateMonitor) for cb in configured):
            defaults.append(LearningRateMonitor())  # every run with a logger logs its learning rates
        self.trainer_defaults["callbacks"] = defaults
        built = super().instantiate_trainer(**kwargs)
        if not built.loggers:  # e.g. --trainer.logger false over a config that lists loggers
            built.callbacks[:] = [cb for cb in built.callbacks if type(cb) is not LearningRateMonitor]
        return built

    def before_instantiate_classes(self) -> None:
        """One folder per run (:meth:`_share_run_folder`); and a run restored from ``--ckpt_path``
        takes every weight from that checkpoint: the sources the model was first initialised from
        (``init_from``, ``graph_encoder_from``) are not read again, so a checkpoint stays usable
        after they move or disappear."""
        sub = self.config.get("subcommand")
        cfg = self.config[sub] if sub else self.config
        self._share_run_folder(cfg, sub)
        if not cfg.get("ckpt_path"):
            return
        init_args = cfg.get("model", {}).get("init_args") if hasattr(cfg.get("model", {}), "get") else None
        if init_args is None:
            return
        for key in ("init_from", "graph_encoder_from"):
            if init_args.get(key):
                logging.getLogger(__name__).info("--ckpt_path given: %s %s is not read (the checkpoint holds "
                                                 "the weights)", key, init_args[key])
                init_args[key] = None

    def _share_run_folder(self, cfg, sub: str | None) -> None:
        """CSV and TensorBoard loggers whose ``version`` the config leaves unset share one run
        folder ``save_dir/name/vNNN-<fusion>-seed<seed>`` (config, metrics, events and checkpoints
        together); ``validate``/``test``/``predict`` of a checkpoint ``RUN/checkpoints/X.ckpt`` log
        into ``RUN/<subcommand>-<time>``. Other loggers, or an explicit ``version``, are left alone."""
        import datetime as _dt
        import os
        from pathlib import Path

        loggers = cfg.get("trainer", {}).get("logger") if hasattr(cfg.get("trainer", {}), "get") else None
        if not isinstance(loggers, list) or not loggers:
            return
        if not all(str(getattr(lg, "class_path", "")).endswith(RUN_LOGGERS) for lg in loggers):
            return
        child = os.environ.get("LOCAL_RANK", "0") != "0"  # a process DDP started: take rank 0's folder
        ckpt = cfg.get("ckpt_path")
        if sub in ("validate", "test", "predict") and ckpt and Path(str(ckpt)).parent.name == "checkpoints":
            # even a version the config sets (the run's own config.yaml does): never the fit's files
            run = Path(str(ckpt)).resolve().parents[1]
            stamp = (os.environ.get(RUN_ENV) if child else None) or _fresh_name(run, f"{sub}-{_dt.datetime.now():%Y%m%d-%H%M%S}")
            for lg in loggers:
                lg.init_args.save_dir, lg.init_args.name, lg.init_args.version = str(run), "", stamp
            os.environ[RUN_ENV] = stamp  # DDP processes started later parse the same command
            return
        if any(lg.init_args.get("version") is not None for lg in loggers):
            if sub == "fit" and ckpt and not child:  # a resumed run in a folder the config names
                for lg in loggers:
                    if str(lg.class_path).endswith("CSVLogger"):
                        _keep_metrics(Path(lg.init_args.get("save_dir") or ".") / (lg.init_args.get("name") or "")
                                      / str(lg.init_args.version))
            return
        if sub != "fit":
            return
        version = os.environ.get(RUN_ENV) if child else None
        if not version:
            roots = {Path(lg.init_args.get("save_dir") or ".") / (lg.init_args.get("name") or "lightning_logs")
                     for lg in loggers}
            runs = sorted((p for root in roots if root.is_dir() for p in root.iterdir()
                           if p.name[:1] == "v" and p.name[1:4].isdigit() and not p.is_symlink()),
                          key=lambda p: int(p.name[1:4]))
            fusion = cfg.get("model", {}).get("init_args", {}).get("fusion", "model")
            suffix = f"-{fusion}-seed{cfg.get('seed_everything')}"
            if str(ckpt) == "last":  # resume the newest run of this variant and seed, in its own folder
                version = self._resume_last(cfg, [p for p in runs if p.name.endswith(suffix)], roots, suffix)
            else:
                n = int(runs[-1].name[1:4]) + 1 if runs else 0
                version = f"v{n:03d}{suffix}"
            os.environ[RUN_ENV] = version
        for lg in loggers:
            lg.init_args.version = version
            root = Path(lg.init_args.get("save_dir") or ".") / (lg.init_args.get("name") or "lightning_logs")
            made = [d for d in (root, *root.parents) if not d.exists()]  # folders this fit would create
            _NEW_RUN_DIRS.append((root / version, made[-1] if made else root / version))

    @staticmethod
    def _resume_last(cfg, runs: list, roots: set, suffix: str) -> str:
        """``fit --ckpt_path last``: the newest run folder of this variant and seed holding
        ``checkpoints/last.ckpt`` (a run folder per fit would otherwise make "last" a new, empty
        folder, and Lightning would train from scratch with a warning); the fit continues there,
        from that file. None found is an error, never a silent fresh start."""
        from kgllm.util.errors import ConfigError

        for run in reversed(runs):
            last = run / "checkpoints" / "last.ckpt"
            if last.is_file():
                cfg["ckpt_path"] = str(last)
                if os.environ.get("LOCAL_RANK", "0") == "0":
                    _keep_metrics(run)
                return run.name
        where = ", ".join(sorted(str(r) for r in roots))
        raise ConfigError(f"--ckpt_path last: no run '*{suffix}' under {where} holds checkpoints/last.ckpt (a "
                          "finished run keeps it only with --keep_last true); pass a checkpoint's path instead")

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--test_after_fit", type=bool, default=False,
                            help="fit: test the best checkpoint (the last weights without one) when fit ends, "
                                 "logged into the same run folder")
        parser.add_argument("--keep_last", type=bool, default=False,
                            help="fit: keep last.ckpt (optimiser and loop states, 3x best.ckpt) after the run "
                                 "finishes, to train it further with --ckpt_path last; a killed or failed run "
                                 "keeps it anyway")

    def before_fit(self) -> None:
        apply_keep_last(self.trainer, self.config.get("fit", {}).get("keep_last", False))

    def after_fit(self) -> None:
        """Test the best checkpoint if ``--test_after_fit``; point ``save_dir/name/latest`` at this run
        and say where it is."""
        import os
        from pathlib import Path

        trainer = self.trainer
        if self.config.get("fit", {}).get("test_after_fit"):
            ckpt = trainer.checkpoint_callback
            best = getattr(ckpt, "best_model_path", "") if ckpt is not None else ""
            trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best or None, weights_only=True)
        if not trainer.is_global_zero:
            return
        # the first logger's own folder: trainer.log_dir is a collective under DDP, and one after
        # fit left a gloo thread running at exit (SIGABRT in a worker)
        log_dir = getattr(trainer.loggers[0], "log_dir", None) if trainer.loggers else None
        if log_dir is None:
            return
        run = Path(log_dir)
        if run.is_dir() and run.name.startswith("v"):
            link = run.parent / "latest"
            tmp = run.parent / f".latest.{os.getpid()}"
            if tmp.is_symlink():
                tmp.unlink()
            os.symlink(run.name, tmp)
            os.replace(tmp, link)
        ckpt = trainer.checkpoint_callback
        best = getattr(ckpt, "best_model_path", "") if ckpt is not None else ""
        print(f"run folder: {run}" + (f"\nbest checkpoint: {best}" if best else ""), flush=True)

    def _parse_ckpt_path(self) -> None:
        """Lightning reads the hyper-parameters of ``--ckpt_path`` while parsing; here that file is
        read once, tensors-only (a URL is downloaded by content, never taken from a cache by name),
        and it never chooses code: a ``_class_path`` other than this command's model (or, with none
        configured, one of kgllm's modules) is refused, as is any value naming a class or function.
        A file that is not a readable checkpoint is a one-line error, not a traceback."""
        from kgllm.nn.checkpoints import CheckpointError, check_hparams, check_lightning_checkpoint, local_checkpoint

        sub = self.config.get("subcommand")
        if not sub:
            return
        if self.config[sub].get("weights_only") is False:
            raise_weights_only_false()
        path = self.config[sub].get("ckpt_path")
        if not path or str(path) in _SPECIAL_CKPT:
            return
        if str(path) == "registry" or str(path).startswith("registry:"):
            raise CheckpointError(f"--ckpt_path {path}: Lightning's model registry is not used by kgllm (it would "
                                  "download from a hub); give a checkpoint file or an http(s) URL")
        blob = check_lightning_checkpoint(path)
        if sub == "fit" and "optimizer_states" not in blob:
            raise CheckpointError(f"{path}: holds weights only (a best.ckpt), so training cannot resume from it; "
                                  "resume from last.ckpt, or start from these weights with "
                                  "--model.init_args.init_from")
        self.config[sub].ckpt_path = local_checkpoint(path)  # a URL's downloaded copy (the same bytes)
        model = self.config[sub].get("model")
        own = str(model.get("class_path")) if hasattr(model, "get") and model.get("class_path") else None
        hparams = dict(check_hparams(path, blob, _allowed_modules(own)))
        hparams.pop("_instantiator", None)
        if not hparams:
            return
        if "_class_path" in hparams:
            hparams = {"class_path": hparams.pop("_class_path"), "dict_kwargs": hparams}
        try:
            self.config = self.parser.parse_object({sub: {"model": hparams}}, self.config)
        except SystemExit:
            sys.stderr.write("Parsing of ckpt_path hyperparameters failed!\n")
            raise

    def _prepare_subcommand_kwargs(self, subcommand: str) -> dict:
        """Checkpoints load with ``weights_only=True`` on every path (an explicit false was refused
        while parsing, where a URL was also replaced by its downloaded copy)."""
        kwargs = super()._prepare_subcommand_kwargs(subcommand)
        if "weights_only" in self._subcommand_method_arguments[subcommand]:
            kwargs["weights_only"] = True
        return kwargs


def _allowed_modules(own: str | None) -> set[str]:
    """Class paths a checkpoint may name: those of this command's model ``own`` (a kgllm module by
    any of its names, or a user's class the config already chose), else every kgllm module's."""
    import kgllm.lit as lit

    names = {}
    for obj in vars(lit).values():
        if isinstance(obj, type) and issubclass(obj, LightningModule):
            names[f"kgllm.lit.{obj.__name__}"] = names[f"{obj.__module__}.{obj.__qualname__}"] = obj
    if own is None:
        return set(names)
    if own not in names:
        return {own}
    return {n for n, obj in names.items() if obj is names[own]}


def raise_weights_only_false() -> None:
    """Refuse ``--weights_only false``: loading such a checkpoint can run code."""
    from kgllm.nn.checkpoints import CheckpointError

    raise CheckpointError("--weights_only false is refused: a checkpoint that needs it can run code when loaded; "
                          "convert it to a tensors-only checkpoint instead")


def _keep_metrics(run) -> None:
    """Before a fit resumes in ``run``: Lightning's CSV logger starts ``metrics.csv`` afresh, so the
    curve so far is kept beside it as ``metrics-until-<time>.csv`` (never lost, never mixed)."""
    import datetime as _dt
    from pathlib import Path

    run = Path(run)
    if (run / "metrics.csv").is_file():
        kept = _fresh_name(run, f"metrics-until-{_dt.datetime.now():%Y%m%d-%H%M%S}") + ".csv"
        os.replace(run / "metrics.csv", run / kept)
        logging.getLogger(__name__).info("resuming %s: its metrics so far are in %s", run, kept)


def _fresh_name(folder, name: str) -> str:
    """``name``, or ``name-2``, ``name-3``, ... : the first that is not yet a sub-folder of ``folder``
    (two evaluations in one second never share a folder)."""
    from pathlib import Path

    taken, n, out = Path(folder), 1, name
    while (taken / out).exists():
        n += 1
        out = f"{name}-{n}"
    return out


def with_run_config(args: list[str]) -> list[str]:
    """``validate``/``test``/``predict --ckpt_path RUN/checkpoints/X.ckpt`` with no ``--config``:
    the run's own ``RUN/config.yaml`` is read first (its model, data and KG), and the options given
    override it, so a checkpoint is all a test needs. Other command lines are returned unchanged."""
    from pathlib import Path

    if not args or args[0] not in ("validate", "test", "predict"):
        return args
    if any(a in ("--config", "-c") or a.startswith("--config=") for a in args):
        return args
    ckpt = next((args[i + 1] for i, a in enumerate(args[:-1]) if a == "--ckpt_path"), None)
    ckpt = ckpt or next((a.split("=", 1)[1] for a in args if a.startswith("--ckpt_path=")), None)
    if not ckpt or "://" in ckpt or Path(ckpt).parent.name != "checkpoints":
        return args
    config = Path(ckpt).resolve().parents[1] / "config.yaml"
    if not config.is_file():
        return args
    logging.getLogger(__name__).info("%s: reading the run's config (options given here override it)", config)
    return [args[0], "--config", str(config), *args[1:]]


def apply_keep_last(trainer, keep: bool) -> None:
    """Tell every :class:`~kgllm.lit.runtime.KGCheckpoint` whether to keep ``last.ckpt`` after fit."""
    from kgllm.lit.runtime import KGCheckpoint

    for cb in trainer.callbacks:
        if isinstance(cb, KGCheckpoint):
            cb.keep_last = bool(keep)


def run_cli(args: Sequence[str] | None = None, run: bool = True) -> KGLightningCLI:
    """Run (or, with ``run=False``, only build) the CLI on ``args`` (default: ``sys.argv``)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    quiet_third_party()
    given = list(args) if args is not None else sys.argv[1:]
    args = with_run_config(given)
    if args == sys.argv[1:]:
        args = None  # LightningCLI warns when given both args and a command line
    _NEW_RUN_DIRS.clear()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        try:
            cli = _cli(args, run)
        except BaseException:
            _remove_empty_run_dirs()
            close_process_group(wait=False)
            raise
    if run:
        close_process_group(wait=True)
    return cli


def close_process_group(wait: bool) -> None:
    """End a finished distributed run cleanly: every rank waits for the others (``wait``), then the
    process group is destroyed. A rank that exited with gloo's threads still running (and rank 0's
    store gone) aborted at interpreter exit ("terminate called without an active exception")."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        if wait:
            dist.barrier()
    finally:
        dist.destroy_process_group()


def _remove_empty_run_dirs() -> None:
    """A failed fit leaves no empty run folder: each folder it named is removed if it holds no file
    (only empty folders the loggers made), and so are the empty parents this fit created."""
    import os

    for folder, top in _NEW_RUN_DIRS:
        if os.environ.get("LOCAL_RANK", "0") != "0" or not folder.is_dir():
            continue
        if any(p.is_file() or p.is_symlink() for p in folder.rglob("*")):
            continue
        for sub in sorted((p for p in folder.rglob("*")), key=lambda p: -len(p.parts)):
            sub.rmdir()
        folder.rmdir()
        up = folder.parent
        while folder != top and top in (up, *up.parents) and up.is_dir() and not any(up.iterdir()):
            up.rmdir()
            if up == top:
                break
            up = up.parent
    _NEW_RUN_DIRS.clear()


def _cli(args: list[str] | None, run: bool) -> KGLightningCLI:
    from kgllm.lit.runtime import EpochSummary, FiniteLoss, RNGStates, SaveKGMeta

    return KGLightningCLI(LightningModule, LightningDataModule, subclass_mode_model=True, subclass_mode_data=True,
                          args=args,
                          run=run, save_config_kwargs={"overwrite": True},
                          trainer_defaults={"callbacks": [RNGStates(), SaveKGMeta(), EpochSummary(), FiniteLoss()],
                                            "use_distributed_sampler": False},  # kgllm's samplers shard
                          parser_kwargs={"default_env": False})


def fit_and_test(args: Sequence[str]) -> dict:
    """Fit through the CLI (``args`` as on the command line, without the subcommand), then test the
    best checkpoint (the last weights when no checkpoint callback saved one), tensors-only.

    Returns ``cli``, the test ``metrics`` (floats), ``fit_seconds``, ``best_ckpt`` (path or ``""``),
    ``best_score`` (the monitored validation value or ``None``) and ``epochs``. Used by
    ``kgllm ablate`` (and through it the demo) and the link-prediction benchmark scripts.
    """
    import time

    start = time.perf_counter()
    cli = run_cli(list(args), run=False)
    apply_keep_last(cli.trainer, cli.config.get("keep_last", False))
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    fit_seconds = time.perf_counter() - start
    ckpt = cli.trainer.checkpoint_callback
    best = ckpt.best_model_path if ckpt is not None and ckpt.best_model_path else ""
    (metrics,) = cli.trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path="best" if best else None,
                                  weights_only=True, verbose=False)
    score = ckpt.best_model_score if ckpt is not None else None
    return {"cli": cli, "metrics": {k: float(v) for k, v in metrics.items()}, "fit_seconds": fit_seconds,
            "best_ckpt": best, "best_score": None if score is None else float(score),
            "epochs": cli.trainer.current_epoch}
