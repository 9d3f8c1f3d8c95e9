"""SIGTERM and SIGINT end ``fit`` promptly, with a checkpoint when the weights are whole.

Lightning's own SIGTERM handling only acts between training steps, so a run blocked waiting for
data (a hung read, workers that never deliver) logs the signal and goes on waiting. This callback
stops at once when the signal arrives outside a training step, and at the end of the step when
it arrives inside one, so an optimiser step is never cut in half. It then writes ``last.ckpt``
beside the :class:`~lightning.pytorch.callbacks.ModelCheckpoint` files (single process only:
under DDP the ranks may not all have seen the signal at the same step), so ``--ckpt_path last``
resumes.

Exit status: 143 (128 + SIGTERM) for SIGTERM; 1 for SIGINT (Lightning's KeyboardInterrupt
handling). A second signal during a step stops at once, without a checkpoint.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from types import FrameType
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopOnSignal(pl.Callback):
    """Ends training on SIGTERM or SIGINT (see the module docstring)."""

    def __init__(self) -> None:
        self.received: int | None = None  # the signal number, once one arrived
        self._in_step = False
        self._torn = False  # the stop interrupted a step: the weights may be half updated
        self._pid: int | None = None
        self._previous: dict[int, Any] = {}

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Install the handlers of SIGTERM and SIGINT."""
        self._pid = os.getpid()
        for signum in _SIGNALS:
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._handle)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Restore the handlers that were installed before (in this process only)."""
        if os.getpid() == self._pid:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)
        self._previous = {}

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """Mark a training step as running."""
        self._in_step = True

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """End of a step: stop now if a signal arrived during it."""
        self._in_step = False
        if self.received is not None:
            raise self._stop(self.received)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if os.getpid() != self._pid:  # a forked DataLoader worker: the default action
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        first = self.received is None
        self.received = signum
        previous = self._previous.get(signum)
        if signum == signal.SIGTERM and callable(previous):
            previous(signum, frame)  # Lightning's notifier (sets trainer.received_sigterm)
        name = signal.Signals(signum).name
        if self._in_step and first:
            log.warning("received %s: stopping after the current training step", name)
            return
        log.warning("received %s: stopping now", name)
        self._torn = self._in_step
        raise self._stop(signum)

    @staticmethod
    def _stop(signum: int) -> BaseException:
        if signum == signal.SIGINT:
            return KeyboardInterrupt()
        return SIGTERMException(128 + signum)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        """After a stop by signal, write ``last.ckpt`` if the weights are whole."""
        if self.received is None or not isinstance(exception, SIGTERMException | KeyboardInterrupt):
            return
        name = signal.Signals(self.received).name
        callbacks = trainer.callbacks  # type: ignore[attr-defined]  # set by Lightning, undeclared
        checkpoints = [c for c in callbacks if isinstance(c, ModelCheckpoint)]
        if self._torn or trainer.world_size > 1 or not checkpoints or not checkpoints[0].dirpath:
            reason = (
                "a step was cut short"
                if self._torn
                else "several processes"
                if trainer.world_size > 1
                else "no ModelCheckpoint directory"
            )
            log.warning("stopped by %s; no checkpoint written (%s)", name, reason)
            return
        callback = checkpoints[0]
        assert callback.dirpath is not None  # checked above
        path = Path(callback.dirpath) / f"{callback.CHECKPOINT_NAME_LAST}{callback.FILE_EXTENSION}"
        try:
            trainer.save_checkpoint(path)
        except Exception as err:  # noqa: BLE001 - report, do not mask the stop itself
            log.error("stopped by %s; writing %s failed: %s", name, path, err)
            return
        log.warning("stopped by %s at step %d; checkpoint %s", name, trainer.global_step, path)
