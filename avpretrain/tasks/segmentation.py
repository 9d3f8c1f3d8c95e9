"""Audio-visual segmentation (AVSBench S4 single-source, MS3 multi-source): pixel masks of the
objects producing the sound.

Trained with per-pixel binary cross-entropy; scored as AVSBench's ``avs_scripts`` do (see
``avpretrain.metrics.segmentation``): per-video mIoU and F-score (beta^2 = 0.3), averaged over
the videos. Here each clip is scored as a video of one frame (the loader gives one frame per
clip), so mIoU equals the official value when every annotated frame is its own clip, while F
is the mean of per-frame maxima over thresholds, not the maximum of each video's mean curve;
``tasks/segmentation/README.md`` says more.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from avpretrain.metrics.segmentation import SegmentationMetrics
from avpretrain.tasks.base import TaskModule


class SegmentationTask(TaskModule):
    """A mask decoder on the visual patch tokens, conditioned on the audio embedding.

    Batches need ``video`` [B, 3, S, S], ``audio`` [B, 1, F, T] and ``mask`` [B, S, S] (0/1,
    from ``avpretrain.tasks.segmentation_targets``). With ``inputs="video"`` the head gets a
    zero audio embedding: the visual-only baseline.

    Args:
        head: e.g. ``avpretrain.heads.segmentation.SegmentationHead``; its widths are bound here.
        pos_weight: BCE weight of foreground pixels (None: 1), for small objects.
        **kwargs: the common frame's arguments (:class:`~avpretrain.tasks.base.TaskModule`).
    """

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
        loss = self._loss(self(batch), batch["mask"])
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["key"]))
        return loss

    def _eval_step(self, batch: dict[str, Any], stage: str) -> None:
        logits = self(batch)
        self.log(f"{stage}/loss", self._loss(logits, batch["mask"]), batch_size=len(batch["key"]))
        # [B, 1, S, S]: each clip a video of one frame
        self.metrics.update(torch.sigmoid(logits.float()).cpu(), batch["mask"][:, None].cpu())

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def _epoch_end(self, stage: str) -> None:
        ious, fs = self.metrics.ious, self.metrics.fs
        self.metrics.reset()
        # sums and counts, so ranks with unequal numbers of clips still give the whole-set mean
        totals = torch.tensor([sum(ious), sum(fs), len(ious)], dtype=torch.float64)
        if self.trainer.world_size > 1:
            totals = self.all_gather(totals.to(self.device)).reshape(-1, 3).sum(0).cpu()
        if totals[2] == 0:
            return
        self.log(f"{stage}/mIoU", float(totals[0] / totals[2]), rank_zero_only=True)
        self.log(f"{stage}/F", float(totals[1] / totals[2]), rank_zero_only=True)

    def on_validation_epoch_end(self) -> None:
        self._epoch_end("val")

    def on_test_epoch_end(self) -> None:
        self._epoch_end("test")
