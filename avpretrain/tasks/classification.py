"""Audio-visual classification: single-label top-1 accuracy or multi-label mAP.

Scored as CAV-MAE's ``src/utilities/stats.py`` does (see ``tasks/classification/README.md``):
top-1 accuracy on the argmax, and mAP as the mean over classes of average precision.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from avpretrain.metrics.classification import mean_average_precision, top1_accuracy
from avpretrain.tasks.base import TaskModule

if TYPE_CHECKING:
    from avpretrain.heads.classification import LinearHead


class ClassificationTask(TaskModule):
    """A classification head on pooled audio, video or concatenated audio-visual embeddings.

    Args:
        head: e.g. ``avpretrain.heads.classification.LinearHead``; its input width is bound here.
        multilabel: sigmoid + BCE on ``labels`` [B, C] and mAP (AudioSet); otherwise softmax +
            cross-entropy on ``labels`` (mixed-up soft targets) or ``label`` and top-1 accuracy.
        **kwargs: the common frame's arguments (:class:`~avpretrain.tasks.base.TaskModule`).
    """

    head: LinearHead  # the interface this task calls (bind, forward, ...)

    def __init__(self, head: nn.Module, multilabel: bool = False, **kwargs: Any) -> None:
        super().__init__(head=head, **kwargs)
        self.multilabel = multilabel
        self.head.bind(self.feature_dim())
        self._outputs: dict[str, list[torch.Tensor]] = {"scores": [], "targets": []}

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        """Logits [B, C] from the batch's ``audio`` and/or ``video`` (see ``pooled_features``)."""
        return self.head(self.pooled_features(batch))

    def _loss(self, logits: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        if self.multilabel:
            return F.binary_cross_entropy_with_logits(logits, batch["labels"])
        if "labels" in batch:  # soft targets (mixup) or one-hot
            target = batch["labels"] / batch["labels"].sum(-1, keepdim=True).clamp_min(1e-8)
            return torch.sum(-target * F.log_softmax(logits, -1), dim=-1).mean()
        return F.cross_entropy(logits, batch["label"])

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        """Classification loss of one batch; logs ``train/loss``."""
        loss = self._loss(self(batch), batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["key"]))
        return loss

    def _eval_step(self, batch: dict[str, Any], stage: str) -> None:
        logits = self(batch)
        self.log(f"{stage}/loss", self._loss(logits, batch), batch_size=len(batch["key"]))
        scores = torch.sigmoid(logits) if self.multilabel else logits.softmax(-1)
        self._outputs["scores"].append(scores.detach().float().cpu())
        target = batch["labels"] if self.multilabel else batch["label"]
        self._outputs["targets"].append(target.detach().cpu())

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Log ``val/loss``; keep the batch's class scores and targets for the epoch."""
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """As :meth:`validation_step`, under ``test/``."""
        self._eval_step(batch, "test")

    def _epoch_end(self, stage: str) -> None:
        if not self._outputs["scores"]:
            return
        scores, targets = (torch.cat(self._outputs[k]) for k in ("scores", "targets"))
        self._outputs = {"scores": [], "targets": []}
        scores, targets = self.gather_rows(scores), self.gather_rows(targets)  # whole set
        if self.multilabel:
            value = mean_average_precision(scores.numpy(), targets.numpy())
            self.log(f"{stage}/mAP", value, rank_zero_only=True)
        else:
            self.log(f"{stage}/acc", top1_accuracy(scores, targets), rank_zero_only=True)

    def on_validation_epoch_end(self) -> None:
        """Log ``val/mAP`` (multi-label) or ``val/acc`` over the whole set."""
        self._epoch_end("val")

    def on_test_epoch_end(self) -> None:
        """As :meth:`on_validation_epoch_end`, under ``test/``."""
        self._epoch_end("test")
