"""Cross-modal retrieval: audio <-> visual, and text -> audio-visual, over the whole eval set.

Training is symmetric InfoNCE on pooled embeddings projected into a shared space: audio against
video, and (with a text encoder) captions against the fused audio-visual embedding. Evaluation
ranks every clip of the validation or test set against all the others, scored as CLIP4Clip's
``compute_metrics`` (see ``avpretrain.metrics.retrieval`` and ``tasks/retrieval/README.md``).

Beside the head's ranking, ``zero_shot`` ranks the backbone's own embeddings, untouched by the
head: each modality's mean patch token, compared by cosine, as CAV-MAE's retrieval evaluates its
pretrained model and as AV-MAE's audio-visual InfoNCE (``contrastive_weight``) trains them. It
tells what pretraining aligned across the modalities before any head was trained.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from avpretrain.heads.retrieval import RetrievalHead
from avpretrain.metrics.retrieval import RetrievalMetrics
from avpretrain.models.avmae import pool_patch_tokens
from avpretrain.models.losses import info_nce
from avpretrain.tasks.base import TaskModule, collect


class RetrievalTask(TaskModule):
    """Audio-visual and text-audio-visual retrieval with a projection head and a text tower.

    The audio and video embeddings are encoded separately (each modality on its own through any
    fusion layers), since jointly fused audio tokens have attended to their paired video, which
    would make matching trivial. In ``linear_probe`` mode the encoders are frozen and only the
    head (projections, temperatures, text encoder) trains.

    Args:
        head: e.g. ``avpretrain.heads.retrieval.RetrievalHead``; its input widths are bound here.
        text_weight: weight of the text-AV InfoNCE term next to the audio-video one.
        zero_shot: also score the backbone's mean patch tokens (``zs_a2v_*``, ``zs_v2a_*``; see
            the module docstring); needs equal encoder widths. None: on when they are equal.
        **kwargs: the common frame's arguments (:class:`~avpretrain.tasks.base.TaskModule`);
            ``inputs`` must be ``av``.
    """

    head: RetrievalHead  # the interface this task calls (bind, forward, ...)

    def __init__(
        self,
        head: RetrievalHead,
        text_weight: float = 1.0,
        zero_shot: bool | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("inputs", "av") != "av":
            raise ValueError(f"retrieval needs inputs='av', got {kwargs['inputs']!r}")
        super().__init__(head=head, **kwargs)
        self.text_weight = text_weight
        widths = (self.backbone.audio_encoder.embed_dim, self.backbone.video_encoder.embed_dim)
        if zero_shot and widths[0] != widths[1]:
            raise ValueError(
                f"zero_shot compares the encoders' embeddings by cosine: their widths {widths} "
                "differ (leave zero_shot unset or false)"
            )
        self.zero_shot = widths[0] == widths[1] if zero_shot is None else zero_shot
        self.head.bind(*widths)
        self.audio_video = RetrievalMetrics("a2v", "v2a")
        self.text_av = RetrievalMetrics("t2av", "av2t")
        self.backbone_av = RetrievalMetrics("zs_a2v", "zs_v2a")

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """Normalised shared-space embeddings [B, E]: ``audio``, ``video`` (+ ``av``, ``text``).

        Needs ``audio`` [B, 1, F, T], ``video`` [B, 3, H, W] and, when the head has a text
        encoder, ``caption`` (B strings, from ``caption_targets``). With ``zero_shot`` also
        ``audio_backbone`` and ``video_backbone`` [B, D], the encoders' mean patch tokens.
        """
        enc_audio = self.encode({"audio": batch["audio"]})
        enc_video = self.encode({"video": batch["video"]})
        audio, video = enc_audio["audio_embedding"], enc_video["video_embedding"]
        text = None
        if self.head.has_text:
            if "caption" not in batch:
                raise ValueError(
                    "the head has a text encoder but the batch has no 'caption': set the data's "
                    "targets to avpretrain.tasks.targets.retrieval.caption_targets"
                )
            assert self.head.text_encoder is not None  # has_text
            ids, mask = self.head.text_encoder.tokenizer(batch["caption"])
            text = (ids.to(self.device), mask.to(self.device))
        out = self.head(audio, video, text)
        if self.zero_shot:
            for name, enc in (("audio", enc_audio), ("video", enc_video)):
                prefix = getattr(self.backbone, f"{name}_encoder").num_prefix_tokens
                out[f"{name}_backbone"] = pool_patch_tokens(enc[f"{name}_tokens"], prefix)
        return out

    def _losses(self, emb: dict[str, Tensor], gather: bool = False) -> dict[str, Tensor]:
        """``loss`` (weighted sum), ``loss_av`` and, with captions, ``loss_text``.

        ``gather`` takes negatives from every rank (training, whose batches are equal on all
        ranks); the evaluation loss stays per batch, since a short last batch on one rank
        would make the gather's shapes disagree.
        """
        scale_av, scale_text = self.head.scales()
        av = info_nce(emb["audio"], emb["video"], tau=1.0 / scale_av, gather=gather)
        losses = {"loss": av, "loss_av": av}
        if "text" in emb:
            text = info_nce(emb["text"], emb["av"], tau=1.0 / scale_text, gather=gather)
            losses.update(loss=av + self.text_weight * text, loss_text=text)
        return losses

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """Contrastive loss of one batch (negatives from every rank); logs losses, temperatures."""
        losses = self._losses(self(batch), gather=True)
        size = len(batch["key"])
        self.log("train/loss", losses["loss"], prog_bar=True, batch_size=size)
        for name in ("loss_av", "loss_text"):
            if name in losses:
                self.log(f"train/{name}", losses[name], batch_size=size)
        scale_av, scale_text = self.head.scales()
        self.log("train/temperature_av", 1.0 / scale_av, batch_size=size)
        if self.head.has_text:
            self.log("train/temperature_text", 1.0 / scale_text, batch_size=size)
        return losses["loss"]

    def _eval_step(self, batch: dict[str, Any], stage: str) -> None:
        emb = self(batch)
        self.log(f"{stage}/loss", self._losses(emb)["loss"], batch_size=len(batch["key"]))
        self.audio_video.update(emb["audio"].detach().float(), emb["video"].detach().float())
        if "text" in emb:
            self.text_av.update(emb["text"].detach().float(), emb["av"].detach().float())
        if self.zero_shot:
            self.backbone_av.update(
                emb["audio_backbone"].detach().float(), emb["video_backbone"].detach().float()
            )

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Log ``val/loss``; keep the batch's embeddings for the epoch."""
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """As :meth:`validation_step`, under ``test/``."""
        self._eval_step(batch, "test")

    def epoch_scores(self, stage: str) -> dict[str, float]:
        """R@1/5/10, median and mean rank, every rank's clips against each other.

        ``a2v_*`` / ``v2a_*``, with captions ``t2av_*`` / ``av2t_*``, with ``zero_shot``
        ``zs_a2v_*`` / ``zs_v2a_*`` (R@K in percent), and ``gallery_size`` (the clips ranked).
        """
        scores = collect(self.audio_video)
        others = [collect(self.text_av), collect(self.backbone_av)]
        if not scores:
            return {}
        size = scores.pop("gallery_size")
        for other in others:
            other.pop("gallery_size", None)
            scores.update(other)
        return {**scores, "gallery_size": size}
