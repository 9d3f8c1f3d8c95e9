"""Audio-visual classification: single-label top-1 accuracy or multi-label mAP.

Scored as CAV-MAE's ``src/utilities/stats.py`` does (see ``tasks/classification/README.md``):
top-1 accuracy on the argmax, and mAP as the mean over classes of average precision.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from avpretrain.metrics.classification import ClassificationMetrics
from avpretrain.tasks.base import TaskModule, collect

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
        self.metrics = ClassificationMetrics(keys=("mAP",) if multilabel else ("acc",))

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
        self.metrics.update(
            scores.detach().float(), batch["labels" if self.multilabel else "label"]
        )

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Log ``val/loss``; keep the batch's class scores and targets for the epoch."""
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """As :meth:`validation_step`, under ``test/``."""
        self._eval_step(batch, "test")

    def epoch_scores(self, stage: str) -> dict[str, float]:
        """``mAP`` (multi-label) or ``acc`` over every rank's clips."""
        return collect(self.metrics)
