"""Audio-visual video parsing (LLP): which events are heard and which seen, second by second.

A clip is cut into T one-second segments as in question answering
(:func:`~avpretrain.tasks.segments.segment_inputs`): T equal spans of the fbank, each encoded
on its own by the audio encoder (its sin-cos positions recomputed for the shorter grid), and one
frame per segment (``num_frames_per_clip: T`` in the data). Each segment's pooled audio and
visual embeddings go to the HAN + MMIL head (:class:`~avpretrain.heads.parsing.ParsingHead`),
trained from the weak video-level labels only (:func:`~avpretrain.heads.parsing.parsing_loss`).
Scoring follows the official ``main_avvp.py:eval`` with
:class:`~avpretrain.metrics.parsing.ParsingMetrics`: video-level predictions at 0.5 mask the
segment-level ones, and segment- and event-level F are averaged over videos.

Logged at validation / test: ``{stage}/{level}_{kind}`` for level ``segment`` and ``event`` and
kind ``audio``, ``visual``, ``av``, ``type_at_av`` and ``event_at_av`` (the official Type@AV and
Event@AV), fractions in [0, 1]. The official model selection uses ``val/segment_type_at_av``.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from avpretrain.heads.parsing import ParsingHead, parsing_loss
from avpretrain.metrics.parsing import ParsingMetrics
from avpretrain.tasks.base import TaskModule, collect


def metric_key(name: str) -> str:
    """Log name of a :func:`~avpretrain.metrics.parsing.parsing_metrics` key.

    ``"segment/type@av"`` -> ``"segment_type_at_av"``.
    """
    return name.replace("/", "_").replace("@", "_at_")


class ParsingTask(TaskModule):
    """Weakly supervised audio-visual video parsing with the HAN + MMIL head over T segments.

    Args:
        head: :class:`~avpretrain.heads.parsing.ParsingHead`; its input widths are bound here.
        num_segments: T, one-second segments per clip (10 in LLP; as many as the synthetic
            clip has seconds). The data's ``num_frames_per_clip`` must equal it.
        modality_weight: weight of the audio- and visual-level loss terms (1 officially).
        audio_smoothing: label smoothing of the audio-level term (0 officially).
        visual_smoothing: label smoothing of the visual-level term (0.1 officially).
        threshold: probability threshold of the video- and segment-level predictions.
        iou: event-level match threshold.
        **kwargs: the common frame's arguments (:class:`~avpretrain.tasks.base.TaskModule`);
            ``inputs`` must be ``av``.
    """

    head: ParsingHead  # the interface this task calls (bind, forward, ...)

    def __init__(
        self,
        head: ParsingHead,
        num_segments: int = 10,
        modality_weight: float = 1.0,
        audio_smoothing: float = 0.0,
        visual_smoothing: float = 0.1,
        threshold: float = 0.5,
        iou: float = 0.5,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("inputs", "av") != "av":
            raise ValueError(f"parsing needs inputs='av', got {kwargs['inputs']!r}")
        if num_segments < 1:
            raise ValueError(f"num_segments must be >= 1, got {num_segments}")
        super().__init__(head=head, **kwargs)
        if self.backbone.video_encoder.is_clip:
            raise ValueError("parsing encodes one frame per segment: use a frame encoder")
        self.head.bind(self.backbone.audio_encoder.embed_dim, self.backbone.video_encoder.embed_dim)
        self.metrics = ParsingMetrics(iou=iou, threshold=threshold)

    def segment_features(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        """Per-segment pooled ``audio`` [B, T, Da] and ``video`` [B, T, Dv] embeddings."""
        t = self.hparams.num_segments
        enc = self.encode_segments(batch, t)
        b = batch["audio"].shape[0]
        return enc["audio_embedding"].view(b, t, -1), enc["video_embedding"].view(b, t, -1)

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """The head's outputs (``frame_prob`` [B, T, 2, C], ``global_prob`` [B, C], ...)."""
        return self.head(*self.segment_features(batch))

    def _check(self, batch: dict[str, Any]) -> None:
        if "weak" not in batch:
            raise ValueError(
                "batch has no 'weak' labels: set the data's targets to "
                "avpretrain.tasks.targets.parsing.parsing_targets"
            )
        t = batch["audio_gt"].shape[-1]
        if t != self.hparams.num_segments:
            raise ValueError(
                f"targets have {t} segments, the task num_segments={self.hparams.num_segments}: "
                f"set the data's num_frames_per_clip to num_segments"
            )

    def _losses(self, out: dict[str, Tensor], batch: dict[str, Any]) -> dict[str, Tensor]:
        hp = self.hparams
        return parsing_loss(
            out, batch["weak"], hp.modality_weight, hp.audio_smoothing, hp.visual_smoothing
        )

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """Parsing loss of one batch from its weak labels; logs ``train/loss*``."""
        self._check(batch)
        losses = self._losses(self(batch), batch)
        for name, value in losses.items():
            self.log(f"train/{name}", value, prog_bar=name == "loss", batch_size=len(batch["key"]))
        return losses["loss"]

    def _eval_step(self, batch: dict[str, Any], stage: str) -> None:
        self._check(batch)
        out = self(batch)
        loss = self._losses(out, batch)["loss"]
        self.log(f"{stage}/loss", loss, batch_size=len(batch["key"]))
        self.metrics.update_from_probs(
            out["global_prob"].detach().float(),
            out["frame_prob"].detach().float().transpose(1, 2),  # [B, 2, T, C]: audio, visual
            batch["audio_gt"],
            batch["visual_gt"],
        )

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Log ``val/loss``; score the batch's videos for the epoch's means."""
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """As :meth:`validation_step`, under ``test/``."""
        self._eval_step(batch, "test")

    def epoch_scores(self, stage: str) -> dict[str, float]:
        """The parsing metrics (:class:`ParsingMetrics`) over every rank's videos."""
        return {metric_key(name): value for name, value in collect(self.metrics).items()}
