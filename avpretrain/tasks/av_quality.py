"""Audio-visual quality assessment (``av_quality``): MOS regression scored by SRCC and PLCC.

Scored as the quality-assessment literature does (see ``tasks/av_quality/README.md`` and
:mod:`avpretrain.metrics.av_quality`): over the whole validation set, per target, Spearman (SRCC)
and Pearson (PLCC) correlations on the raw predictions, Kendall (KRCC), and PLCC / RMSE after
the VQEG four-parameter logistic fit. Logged as ``<stage>/<target>/<metric>``, e.g.
``val/overall/SRCC``.

Video clips ([B, 3, F, H, W], e.g. ``num_frames_per_clip: 8, frame_sampling: dense``) are encoded
per time step: a single-frame encoder sees each frame on its own, a clip (tubelet) encoder the
whole clip, its patch tokens averaged per time step; the steps [B, T, D] are then pooled by
:func:`~avpretrain.heads.av_quality.temporal_pool` (``temporal: mean_diff`` keeps the
frame-to-frame change that reveals stutter).
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from avpretrain.arguments import check_choice
from avpretrain.av_quality.levels import LEVEL_WIDTH
from avpretrain.heads.av_quality import (
    NUM_LEVELS,
    TEMPORAL_POOLING,
    MOSLevelHead,
    MOSRegressionHead,
    TemporalPooling,
    temporal_pool,
)
from avpretrain.metrics.av_quality import QualityMetrics
from avpretrain.tasks.base import TaskModule, collect


def mos_level(mos: torch.Tensor) -> torch.Tensor:
    """0-100 scores -> levels 0..4, ``min(4, floor(clip(mos, 0, 100) / 20))``.

    Long, same shape; the torch twin of :func:`avpretrain.av_quality.opinion.to_level`.
    """
    level = torch.floor(mos.clamp(0.0, 100.0) / LEVEL_WIDTH)
    return level.clamp(max=NUM_LEVELS - 1).long()


class AVQualityTask(TaskModule):
    """A quality head on pooled audio, video or concatenated audio-visual embeddings.

    The batch carries ``mos`` [B, K] on 0-100 (:class:`~avpretrain.tasks.targets.av_quality.
    MOSTargets` with the same keys). Losses, by the head's ``kind``:

    - ``regression`` (:class:`~avpretrain.heads.av_quality.MOSRegressionHead`): MSE between the
      output and ``mos / 100``;
    - ``levels`` (:class:`~avpretrain.heads.av_quality.MOSLevelHead`): cross-entropy over the five
      20-point levels of ``mos``, plus ``expected_weight`` times the MSE of the expected score
      (both / 100), which ties the levels' order to the score.

    Args:
        head: a quality head; its input width and K are bound here.
        targets: names of the K scores, in the order of the batch's ``mos`` (for logging).
        expected_weight: weight of the expected-score MSE of the level head (0: CE alone).
        temporal: pooling of the per-step video features, ``mean`` (width D) or ``mean_diff``
            (width 2D: mean and mean absolute step-to-step change); see
            :func:`~avpretrain.heads.av_quality.temporal_pool`.
        **kwargs: the common frame's arguments (:class:`~avpretrain.tasks.base.TaskModule`).
    """

    head: MOSRegressionHead | MOSLevelHead  # the interface this task calls (bind, forward, ...)

    def __init__(
        self,
        head: nn.Module,
        targets: list[str] | None = None,
        expected_weight: float = 1.0,
        temporal: TemporalPooling = "mean",
        **kwargs: Any,
    ) -> None:
        super().__init__(head=head, **kwargs)
        check_choice("temporal", temporal, TemporalPooling)
        self.temporal = temporal
        self.targets = list(targets or ["overall"])
        if len(set(self.targets)) != len(self.targets):
            raise ValueError(f"targets must be distinct, got {self.targets}")
        if head.kind not in ("regression", "levels"):
            raise ValueError(f"head kind must be 'regression' or 'levels', got {head.kind!r}")
        self.expected_weight = expected_weight
        self.head.bind(self.feature_dim(), len(self.targets))
        # one collector per target: a ModuleList, so they move with the task
        self.metrics = cast(
            "list[QualityMetrics]", nn.ModuleList(QualityMetrics() for _ in self.targets)
        )

    def feature_dim(self) -> int:
        """Width of :meth:`pooled_features`: the video part is D x the pooling's width."""
        audio = self.backbone.audio_encoder.embed_dim
        video = self.backbone.video_encoder.embed_dim * TEMPORAL_POOLING[self.temporal]
        return {"audio": audio, "video": video, "av": audio + video}[self.hparams.inputs]

    def video_steps(self, video: torch.Tensor) -> torch.Tensor:
        """Per-step video features: [B, 3, H, W] or [B, 3, F, H, W] -> [B, T, D].

        A single-frame encoder embeds each frame (T = F); a clip encoder embeds the clip and
        its patch tokens, time-major, are averaged per tubelet step (T = F / tubelet).
        """
        encoder = self.backbone.video_encoder
        clip = video if video.ndim == 5 else video[:, :, None]
        if encoder.is_clip:
            tokens = self.encode({"video": clip})["video_tokens"][:, encoder.num_prefix_tokens :]
            steps = encoder.grid_for(clip)[0]
            return tokens.unflatten(1, (steps, -1)).mean(dim=2)
        frames = clip.transpose(1, 2).flatten(0, 1)  # [B * F, 3, H, W]
        return self.encode({"video": frames})["video_embedding"].unflatten(0, clip.shape[:3:2])

    def pooled_features(self, batch: dict[str, Any]) -> torch.Tensor:
        """[B, feature_dim]: the audio embedding and / or the temporally pooled video steps.

        Single frames with ``temporal: mean`` take the common frame's path; otherwise the
        modalities are encoded apart (a backbone with fusion layers fuses each on its own).
        """
        inputs = self.hparams.inputs
        video = batch.get("video") if inputs in ("video", "av") else None
        if inputs == "audio" or (video is not None and video.ndim == 4 and self.temporal == "mean"):
            return super().pooled_features(batch)
        audio = batch.get("audio") if inputs == "av" else None
        if audio is None and video is None:
            raise ValueError(f"batch has none of the inputs {inputs!r} (keys: {sorted(batch)})")
        a = self.encode({"audio": audio})["audio_embedding"] if audio is not None else None
        v = temporal_pool(self.video_steps(video), self.temporal) if video is not None else None
        if inputs == "video":
            assert v is not None  # the video is given (checked above)
            return v
        ref = a if a is not None else v
        assert ref is not None  # the audio or the video is given (checked above)
        if a is None:  # a missing modality is a mode, not a crash: zeros of its width
            a = ref.new_zeros(ref.shape[0], self.backbone.audio_encoder.embed_dim)
        if v is None:
            v = ref.new_zeros(ref.shape[0], self.feature_dim() - a.shape[1])
        return torch.cat([a, v], dim=-1)

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
        """Regression or level loss of one batch; logs ``train/loss``."""
        loss = self._loss(self(batch), self._mos(batch))
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["key"]))
        return loss

    def _eval_step(self, batch: dict[str, Any], stage: str) -> None:
        out, mos = self(batch), self._mos(batch)
        self.log(f"{stage}/loss", self._loss(out, mos), batch_size=len(batch["key"]))
        pred = self.head.scores(out).detach().float()
        for k, metric in enumerate(self.metrics):
            metric.update(pred[:, k], mos[:, k])

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Log ``val/loss``; keep the batch's predicted and true scores for the epoch."""
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """As :meth:`validation_step`, under ``test/``."""
        self._eval_step(batch, "test")

    def epoch_scores(self, stage: str) -> dict[str, float]:
        """``<target>/<metric>`` (:class:`QualityMetrics`) over every rank's clips."""
        return {
            f"{name}/{metric}": value
            for name, metrics in zip(self.targets, self.metrics, strict=True)
            for metric, value in collect(metrics).items()
        }
