"""Cross-modal retrieval: audio <-> visual, and text -> audio-visual, over the whole eval set.

Training is symmetric InfoNCE on pooled embeddings projected into a shared space: audio against
video, and (with a text encoder) captions against the fused audio-visual embedding. Evaluation
ranks every clip of the validation or test set against all the others, scored as CLIP4Clip's
``compute_metrics`` (see ``avpretrain.metrics.retrieval`` and ``tasks/retrieval/README.md``).
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from avpretrain.heads.retrieval import RetrievalHead
from avpretrain.metrics.retrieval import cosine_similarity_matrix, retrieval_metrics
from avpretrain.models.losses import info_nce
from avpretrain.tasks.base import TaskModule

# (log name, query, gallery): the second of each pair is the same similarity matrix transposed
DIRECTIONS = (("a2v", "audio", "video"), ("t2av", "text", "av"))
REVERSE = {"a2v": "v2a", "t2av": "av2t"}


def retrieval_scores(embeddings: dict[str, Any]) -> dict[str, float]:
    """R@1/5/10, median and mean rank for each direction the embeddings allow.

    Args:
        embeddings: ``audio``, ``video`` and optionally ``av`` and ``text``, each [N, E] with
            row ``i`` of every entry belonging to clip ``i`` (the whole evaluation set).

    Returns:
        ``{"a2v_R1", "a2v_R5", "a2v_R10", "a2v_MedianR", "a2v_MeanR", "v2a_R1", ...}`` and the
        ``t2av_*`` / ``av2t_*`` keys when ``text`` and ``av`` are given. R@K in percent.
    """
    out: dict[str, float] = {}
    for name, query, gallery in DIRECTIONS:
        if query not in embeddings or gallery not in embeddings:
            continue
        sim = cosine_similarity_matrix(embeddings[query], embeddings[gallery])
        for direction, matrix in ((name, sim), (REVERSE[name], sim.T)):
            out.update({f"{direction}_{k}": v for k, v in retrieval_metrics(matrix).items()})
        del sim  # [N, N]: large on a real test set, free it before the next pair
    return out


class RetrievalTask(TaskModule):
    """Audio-visual and text-audio-visual retrieval with a projection head and a text tower.

    The audio and video embeddings are encoded separately (each modality on its own through any
    fusion layers), since jointly fused audio tokens have attended to their paired video, which
    would make matching trivial. In ``linear_probe`` mode the encoders are frozen and only the
    head (projections, temperatures, text encoder) trains.

    Args:
        head: e.g. ``avpretrain.heads.retrieval.RetrievalHead``; its input widths are bound here.
        text_weight: weight of the text-AV InfoNCE term next to the audio-video one.
        **kwargs: the common frame's arguments (:class:`~avpretrain.tasks.base.TaskModule`);
            ``inputs`` must be ``av``.
    """

    head: RetrievalHead  # the interface this task calls (bind, forward, ...)

    def __init__(self, head: RetrievalHead, text_weight: float = 1.0, **kwargs: Any) -> None:
        if kwargs.get("inputs", "av") != "av":
            raise ValueError(f"retrieval needs inputs='av', got {kwargs['inputs']!r}")
        super().__init__(head=head, **kwargs)
        self.text_weight = text_weight
        self.head.bind(self.backbone.audio_encoder.embed_dim, self.backbone.video_encoder.embed_dim)
        self._outputs: dict[str, list[Tensor]] = {}

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """Normalised shared-space embeddings [B, E]: ``audio``, ``video`` (+ ``av``, ``text``).

        Needs ``audio`` [B, 1, F, T], ``video`` [B, 3, H, W] and, when the head has a text
        encoder, ``caption`` (B strings, from ``caption_targets``).
        """
        audio = self.encode({"audio": batch["audio"]})["audio_embedding"]
        video = self.encode({"video": batch["video"]})["video_embedding"]
        text = None
        if self.head.has_text:
            if "caption" not in batch:
                raise ValueError(
                    "the head has a text encoder but the batch has no 'caption': set the data's "
                    "targets to avpretrain.tasks.retrieval_targets.caption_targets"
                )
            assert self.head.text_encoder is not None  # has_text
            ids, mask = self.head.text_encoder.tokenizer(batch["caption"])
            text = (ids.to(self.device), mask.to(self.device))
        return self.head(audio, video, text)

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
        for name, value in emb.items():
            self._outputs.setdefault(name, []).append(value.detach().float().cpu())

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Log ``val/loss``; keep the batch's embeddings for the epoch."""
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """As :meth:`validation_step`, under ``test/``."""
        self._eval_step(batch, "test")

    def _gather(self, rows: Tensor) -> Tensor:
        """All ranks' rows in rank order, ranks holding different numbers of rows."""
        count = torch.tensor([rows.shape[0]], device=self.device)
        sizes = cast(Tensor, self.all_gather(count)).flatten().tolist()
        padded = F.pad(rows.to(self.device), (0, 0, 0, max(sizes) - rows.shape[0]))
        gathered = cast(Tensor, self.all_gather(padded))  # [W, max rows, E]
        return torch.cat([gathered[r, :n] for r, n in enumerate(sizes)]).cpu()

    def _epoch_end(self, stage: str) -> None:
        outputs, self._outputs = self._outputs, {}
        names = ["audio", "video"] + (["av", "text"] if self.head.has_text else [])
        empty = torch.zeros(0, self.head.embed_dim)
        embeddings = {n: torch.cat(outputs.get(n) or [empty]) for n in names}
        if self.trainer.world_size > 1:  # rank against the whole set, not one rank's share
            embeddings = {n: self._gather(e) for n, e in embeddings.items()}
        if embeddings["audio"].shape[0] == 0:
            return
        scores = retrieval_scores({n: e.numpy().astype(np.float32) for n, e in embeddings.items()})
        scores["gallery_size"] = float(embeddings["audio"].shape[0])  # clips ranked, all ranks
        for name, value in scores.items():
            self.log(f"{stage}/{name}", value, rank_zero_only=True)

    def on_validation_epoch_end(self) -> None:
        """Log the retrieval scores, ranking every clip against the whole set."""
        self._epoch_end("val")

    def on_test_epoch_end(self) -> None:
        """As :meth:`on_validation_epoch_end`, under ``test/``."""
        self._epoch_end("test")
