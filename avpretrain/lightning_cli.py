"""LightningCLI entry point for ``avpretrain fit|validate|test|predict --config <recipe>.yaml``.

Stock LightningCLI in subclass mode: a recipe names its LightningModule and LightningDataModule by
``class_path`` (pretraining, or any downstream task), and typed ``__init__`` arguments are the
schema, so ``avpretrain fit --help`` and ``--print_config`` document every option.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from typing import Any

from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import WandbLogger

from avpretrain.recipes import resolve_recipe
from avpretrain.training.finite import StopOnNonFinite
from avpretrain.training.resume import check_ckpt_path
from avpretrain.training.signals import StopOnSignal

CONFIG_FLAGS = ("--config", "-c")


class _NoAdvertising(logging.Filter):
    """Drops Lightning's "💡 Tip: try installing litlogger / litmodels" lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


def _quiet_framework() -> None:
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoAdvertising) for f in logger.filters):
            logger.addFilter(_NoAdvertising())
    # Lightning's own pytree helper builds torch's deprecated LeafSpec on every step (torch >= 2.10)
    warnings.filterwarnings(
        "ignore",
        message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        category=FutureWarning,
    )


def resolve_config_args(args: list[str]) -> list[str]:
    """``--config NAME`` (or ``--config=NAME``, ``-c NAME``) with recipe names resolved.

    Packaged recipe names are turned into their files (:func:`avpretrain.recipes.resolve_recipe`);
    existing paths stay as given.
    """
    out = list(args)
    for i, arg in enumerate(out):
        flag, eq, value = arg.partition("=")
        if eq and flag in CONFIG_FLAGS:
            out[i] = f"{flag}={resolve_recipe(value)}"
        elif arg in CONFIG_FLAGS and i + 1 < len(out):
            out[i + 1] = str(resolve_recipe(out[i + 1]))
    return out


@contextlib.contextmanager
def _as_command_line(args: list[str]) -> Iterator[None]:
    """``sys.argv`` holding ``args``, as LightningCLI reads a command line.

    DDP's launcher restarts the script with the same ``sys.argv``, resolved recipe paths included.
    """
    saved = sys.argv
    sys.argv = [saved[0] if saved else "avpretrain", *args]
    try:
        yield
    finally:
        sys.argv = saved


class _CLI(LightningCLI):
    """Stock LightningCLI, without wandb's ``anonymous`` warning, checking ``--ckpt_path``.

    Lightning's WandbLogger passes ``anonymous=None`` to ``wandb.init``, which wandb >= 0.19 warns
    about on every run, so the unset setting is dropped here. A ``--ckpt_path`` that is no Lightning
    checkpoint is refused before the run (``check_ckpt_path``).
    """

    def _check_ckpt_path(self) -> None:
        check_ckpt_path(self.config[self.subcommand].get("ckpt_path"))

    before_fit = before_validate = before_test = before_predict = _check_ckpt_path

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        trainer = super().instantiate_trainer(**kwargs)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger) and logger._wandb_init.get("anonymous") is None:
                logger._wandb_init.pop("anonymous", None)
        return trainer


def run_lightning_cli(args: list[str], run: bool = True) -> LightningCLI:
    """Run LightningCLI on ``args`` (e.g. ``["fit", "--config", "pretrain/tiny"]``).

    Recipes may be named without a path (``--config tasks/retrieval/synth``). W&B runs offline
    unless the user says otherwise (there may be no network; ``wandb sync`` uploads a finished
    run later). Every run gets, besides its recipe's callbacks, :class:`StopOnNonFinite` (a NaN
    loss or gradient ends it; no NaN checkpoint) and :class:`StopOnSignal` (SIGTERM / SIGINT
    end it, with a checkpoint).
    """
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    _quiet_framework()
    with _as_command_line(resolve_config_args(args)):
        return _CLI(
            LightningModule,
            LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            run=run,
            save_config_kwargs={"overwrite": True},
            auto_configure_optimizers=False,
            trainer_defaults={"callbacks": [StopOnNonFinite(), StopOnSignal()]},
        )
