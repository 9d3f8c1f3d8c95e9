"""LightningCLI entry point for ``avpretrain fit|validate|test|predict --config <recipe>.yaml``.

Stock LightningCLI in subclass mode: a recipe names its LightningModule and LightningDataModule by
``class_path`` (pretraining, or any downstream task), and typed ``__init__`` arguments are the
schema, so ``avpretrain fit --help`` and ``--print_config`` document every option.
"""

from __future__ import annotations

import os

from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningCLI


def run_lightning_cli(args: list[str], run: bool = True) -> LightningCLI:
    """Run LightningCLI on ``args`` (e.g. ``["fit", "--config", "configs/pretrain/tiny.yaml"]``).

    W&B runs offline unless the user says otherwise (there may be no network; ``wandb sync``
    uploads a finished run later).
    """
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    return LightningCLI(
        LightningModule,
        LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=args,
        run=run,
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,
    )
