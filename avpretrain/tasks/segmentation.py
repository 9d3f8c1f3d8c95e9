"""Audio-visual segmentation (AVSBench S4 single-source, MS3 multi-source).

Pixel masks of the objects producing the sound.

Trained with per-pixel binary cross-entropy; scored as AVSBench's ``avs_scripts`` do (see
``avpretrain.metrics.segmentation``): per-video mIoU and F-score (beta^2 = 0.3), averaged over
the videos. The loader gives one frame per clip (the converter writes one clip per annotated
frame); the frames are grouped into videos by the batch's ``video_id`` (from the clip's JSON),
over all ranks, before the per-video scores are taken.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from avpretrain.metrics.segmentation import SegmentationMetrics
from avpretrain.tasks.base import TaskModule, collect

if TYPE_CHECKING:
    from avpretrain.heads.segmentation import SegmentationHead


class SegmentationTask(TaskModule):
    """A mask decoder on the visual patch tokens, conditioned on the audio embedding.

    Batches need ``video`` [B, 3, S, S], ``audio`` [B, 1, F, T], ``mask`` [B, S, S] (0/1) and
    ``video_id`` (B strings), both from ``avpretrain.tasks.targets.segmentation``. With ``inputs="video"`` the head gets a
    zero audio embedding: the visual-only baseline.

    Args:
        head: e.g. ``avpretrain.heads.segmentation.SegmentationHead``; its widths are bound here.
        pos_weight: BCE weight of foreground pixels (None: 1), for small objects.
        **kwargs: the common frame's arguments (:class:`~avpretrain.tasks.base.TaskModule`).
    """

    head: SegmentationHead  # the interface this task calls (bind, forward, ...)

    def __init__(self, head: nn.Module, pos_weight: float | None = None, **kwargs: Any) -> None:
        super().__init__(head=head, **kwargs)
        if self.hparams.inputs == "audio":
            raise ValueError("segmentation decodes visual tokens: inputs must be 'av' or 'video'")
        self.head.bind(self.backbone.video_encoder.embed_dim, self.backbone.audio_encoder.embed_dim)
        self.pos_weight = pos_weight
        self.metrics = SegmentationMetrics()

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        """Mask logits [B, 1, S, S] from the batch's ``video`` (and ``audio``)."""
        video = batch["video"]
        if video.dim() != 4:
            raise ValueError(
                f"segmentation needs one frame per clip [B, 3, S, S], got {video.shape}"
            )
        enc = self.encode(batch)
        encoder = self.backbone.video_encoder
        tokens = enc["video_tokens"][:, encoder.num_prefix_tokens :]
        audio = enc.get("audio_embedding")
        if audio is None:
            audio = tokens.new_zeros(tokens.shape[0], self.backbone.audio_encoder.embed_dim)
        return self.head(tokens, encoder.grid_for(video), audio, tuple(video.shape[-2:]))

    def _loss(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        weight = None if self.pos_weight is None else logits.new_tensor(self.pos_weight)
        return F.binary_cross_entropy_with_logits(logits[:, 0], mask, pos_weight=weight)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        """Per-pixel binary cross-entropy of one batch; logs ``train/loss``."""
        loss = self._loss(self(batch), batch["mask"])
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["key"]))
        return loss

    def _eval_step(self, batch: dict[str, Any], stage: str) -> None:
        logits = self(batch)
        self.log(f"{stage}/loss", self._loss(logits, batch["mask"]), batch_size=len(batch["key"]))
        prob = torch.sigmoid(logits.float())[:, 0]
        self.metrics.update(prob, batch["mask"], batch["video_id"])

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Log ``val/loss``; add the batch's frames to the per-video metrics."""
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """As :meth:`validation_step`, under ``test/``."""
        self._eval_step(batch, "test")

    def epoch_scores(self, stage: str) -> dict[str, float]:
        """``mIoU`` and ``F``, per video over every rank's frames."""
        return collect(self.metrics)
