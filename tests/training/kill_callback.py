"""Test-only callbacks: a hard kill mid-run, and a recorder of the steps a run executes."""

from __future__ import annotations

import os

import lightning.pytorch as pl


class KillAtStep(pl.Callback):
    """Ends the process at once (no cleanup, like SIGKILL) when ``global_step`` reaches ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step >= self.step:
            os._exit(17)


class StepRecorder(pl.Callback):
    """Records ``global_step`` at the start of every training batch."""

    def __init__(self) -> None:
        self.steps: list[int] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.steps.append(trainer.global_step)
