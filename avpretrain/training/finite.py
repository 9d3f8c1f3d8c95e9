"""Stop training at the first non-finite loss or gradient; never save non-finite weights.

A NaN or infinite loss does not fix itself: the optimiser step that follows writes NaN into the
weights, and every later step and checkpoint carries them. :class:`StopOnNonFinite` checks the
gradients before each optimiser step (so the weights are never touched by a NaN step) and the
loss after each batch, and ends ``fit`` with a :class:`NonFiniteError` naming the step and the
logged loss terms that are not finite (``train/loss_audio``, ``train/loss_video``,
``train/loss_contrastive``, ...). It also refuses any checkpoint whose weights are not all
finite, so ``last.ckpt`` keeps the last good state.

Under fp16 mixed precision the gradient scaler skips steps with infinite gradients by design;
the gradient check is then left to it, and only the loss is checked.
"""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from avpretrain.models.finite import non_finite_tensors


class NonFiniteError(RuntimeError):
    """A loss, gradient or weight that is NaN or infinite."""


class StopOnNonFinite(pl.Callback):
    """Ends ``fit`` at the first non-finite loss or gradient (see the module docstring)."""

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        """Raise :class:`NonFiniteError` on a non-finite gradient (not under fp16)."""
        if getattr(trainer.precision_plugin, "scaler", None) is not None:
            return  # fp16: the scaler skips steps with inf gradients itself
        grads = {n: p.grad for n, p in pl_module.named_parameters() if p.grad is not None}
        norm = torch.nn.utils.get_total_norm(list(grads.values()), error_if_nonfinite=False)
        if bool(torch.isfinite(norm)):
            return
        raise NonFiniteError(
            f"{self._where(trainer)}: non-finite gradient (in {non_finite_tensors(grads)}); "
            f"{self._losses(trainer)}. The optimiser step was not taken; the last checkpoint "
            f"holds the last good weights. Lower the learning rate or check the data."
        )

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """Raise :class:`NonFiniteError` on a non-finite loss."""
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, Tensor) and not bool(torch.isfinite(loss.detach()).all()):
            raise NonFiniteError(
                f"{self._where(trainer)}: non-finite loss; {self._losses(trainer)}. "
                f"Lower the learning rate or check the data."
            )

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Raise :class:`NonFiniteError` rather than save non-finite weights."""
        bad = non_finite_tensors(checkpoint.get("state_dict", {}))
        if bad:
            raise NonFiniteError(
                f"{self._where(trainer)}: refusing to save a checkpoint with non-finite weights "
                f"({bad}); the previous checkpoint is kept"
            )

    @staticmethod
    def _where(trainer: pl.Trainer) -> str:
        return f"training step {trainer.global_step} (epoch {trainer.current_epoch})"

    @staticmethod
    def _losses(trainer: pl.Trainer) -> str:
        """The logged loss terms, the non-finite ones first: ``train/loss_audio=nan, ...``."""
        terms = {
            name: float(value)
            for name, value in trainer.callback_metrics.items()
            if "loss" in name
            and not name.startswith(("val", "test"))
            and isinstance(value, Tensor)
            and value.numel() == 1
        }
        if not terms:
            return "no loss terms logged"
        bad = ", ".join(f"{n}={v}" for n, v in terms.items() if not math.isfinite(v))
        good = ", ".join(f"{n}={v:.4g}" for n, v in terms.items() if math.isfinite(v))
        return f"non-finite loss terms: {bad or 'none'} (finite: {good or 'none'})"
