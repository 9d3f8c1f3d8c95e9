"""Test-only callbacks: a hard kill, a step recorder, NaN input, signals sent to the run."""

from __future__ import annotations

import os
import threading

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


class PoisonAudioAtStep(pl.Callback):
    """Fills the batch's audio with NaN from ``global_step`` ``step`` on (a corrupt input)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step >= self.step:
            batch["audio"].fill_(float("nan"))


class SignalAfterStart(pl.Callback):
    """Sends ``signum`` to this process ``delay_s`` seconds after training starts, from a timer
    thread (the main thread may then be inside a step or waiting for data)."""

    def __init__(self, signum: int = 15, delay_s: float = 0.5) -> None:
        self.signum, self.delay_s = signum, delay_s

    def on_train_start(self, trainer, pl_module) -> None:
        threading.Timer(self.delay_s, os.kill, (os.getpid(), self.signum)).start()


class SignalAtStep(pl.Callback):
    """Sends ``signum`` to this process mid-step (after the backward pass) at ``global_step``
    ``step``."""

    def __init__(self, step: int, signum: int = 15) -> None:
        self.step, self.signum = step, signum

    def on_after_backward(self, trainer, pl_module) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)
