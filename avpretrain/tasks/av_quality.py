"""Audio-visual quality assessment (``av_quality``): MOS regression scored by SRCC and PLCC.

Scored as the quality-assessment literature does (see ``tasks/av_quality/README.md`` and
:mod:`avpretrain.metrics.quality`): over the whole validation set, per target, Spearman (SRCC)
and Pearson (PLCC) correlations on the raw predictions, Kendall (KRCC), and PLCC / RMSE after
the VQEG four-parameter logistic fit. Logged as ``<stage>/<target>/<metric>``, e.g.
``val/overall/SRCC``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from avpretrain.heads.quality import NUM_LEVELS
from avpretrain.metrics.quality import QualityMetrics
from avpretrain.quality.opinion import LEVEL_WIDTH
from avpretrain.tasks.base import TaskModule


def mos_level(mos: torch.Tensor) -> torch.Tensor:
    """0-100 scores -> levels 0..4, ``min(4, floor(clip(mos, 0, 100) / 20))`` (long, same shape);
    the torch twin of :func:`avpretrain.quality.opinion.to_level`."""
    level = torch.floor(mos.clamp(0.0, 100.0) / LEVEL_WIDTH)
    return level.clamp(max=NUM_LEVELS - 1).long()


class AVQualityTask(TaskModule):
    """A quality head on pooled audio, video or concatenated audio-visual embeddings.

    The batch carries ``mos`` [B, K] on 0-100 (:class:`~avpretrain.tasks.av_quality_targets.
    MOSTargets` with the same keys). Losses, by the head's ``kind``:

    - ``regression`` (:class:`~avpretrain.heads.quality.MOSRegressionHead`): MSE between the
      output and ``mos / 100``;
    - ``levels`` (:class:`~avpretrain.heads.quality.MOSLevelHead`): cross-entropy over the five
      20-point levels of ``mos``, plus ``expected_weight`` times the MSE of the expected score
      (both / 100), which ties the levels' order to the score.

    Args:
        head: a quality head; its input width and K are bound here.
        targets: names of the K scores, in the order of the batch's ``mos`` (for logging).
        expected_weight: weight of the expected-score MSE of the level head (0: CE alone).
        **kwargs: the common frame's arguments (:class:`~avpretrain.tasks.base.TaskModule`).
    """

    def __init__(
        self,
        head: nn.Module,
        targets: list[str] | None = None,
        expected_weight: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(head=head, **kwargs)
        self.targets = list(targets or ["overall"])
        if len(set(self.targets)) != len(self.targets):
            raise ValueError(f"targets must be distinct, got {self.targets}")
        if head.kind not in ("regression", "levels"):
            raise ValueError(f"head kind must be 'regression' or 'levels', got {head.kind!r}")
        self.expected_weight = expected_weight
        self.head.bind(self.feature_dim(), len(self.targets))
        self._outputs: dict[str, list[torch.Tensor]] = {"pred": [], "mos": []}

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        """The head's output: [B, K] (regression) or [B, K, 5] level logits."""
        return self.head(self.pooled_features(batch))

    def _mos(self, batch: dict[str, Any]) -> torch.Tensor:
        mos = batch.get("mos")
        if mos is None:
            raise ValueError("batch has no 'mos': set the data module's targets to MOSTargets")
        if mos.ndim != 2 or mos.shape[1] != len(self.targets):
            raise ValueError(
                f"batch 'mos' has shape {tuple(mos.shape)}, expected [B, {len(self.targets)}] "
                f"for targets {self.targets}: give MOSTargets the same keys"
            )
        return mos.float()

    def _loss(self, out: torch.Tensor, mos: torch.Tensor) -> torch.Tensor:
        if self.head.kind == "regression":
            return F.mse_loss(out.float(), mos / 100.0)
        ce = F.cross_entropy(out.flatten(0, 1).float(), mos_level(mos).flatten())
        if self.expected_weight == 0:
            return ce
        mse = F.mse_loss(self.head.scores(out) / 100.0, mos / 100.0)
        return ce + self.expected_weight * mse

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self._loss(self(batch), self._mos(batch))
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["key"]))
        return loss

    def _eval_step(self, batch: dict[str, Any], stage: str) -> None:
        out, mos = self(batch), self._mos(batch)
        self.log(f"{stage}/loss", self._loss(out, mos), batch_size=len(batch["key"]))
        self._outputs["pred"].append(self.head.scores(out).detach().float().cpu())
        self._outputs["mos"].append(mos.detach().cpu())

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def _epoch_end(self, stage: str) -> None:
        if not self._outputs["pred"]:
            return
        pred, mos = (torch.cat(self._outputs[k]) for k in ("pred", "mos"))
        self._outputs = {"pred": [], "mos": []}
        if self.trainer.world_size > 1:  # correlations over the whole set, not one rank's share
            pred = self.all_gather(pred).flatten(0, 1).cpu()
            mos = self.all_gather(mos).flatten(0, 1).cpu()
        for k, name in enumerate(self.targets):
            metrics = QualityMetrics()
            metrics.update(pred[:, k], mos[:, k])
            for metric, value in metrics.compute().items():
                self.log(f"{stage}/{name}/{metric}", value, rank_zero_only=True)

    def on_validation_epoch_end(self) -> None:
        self._epoch_end("val")

    def on_test_epoch_end(self) -> None:
        self._epoch_end("test")
