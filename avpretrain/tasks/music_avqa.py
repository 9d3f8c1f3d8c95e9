"""Audio-visual question answering (MUSIC-AVQA): answer questions about a clip's sounds and sights.

A clip is cut into T segments: T equal spans of the fbank (each encoded on its own by the audio
encoder, whose sin-cos positions are recomputed for the shorter grid) and one frame per segment
(``num_frames_per_clip: T`` in the data, one frame per equal span). The ST-AVQA head
(:class:`~avpretrain.heads.music_avqa.AVQAHead`) grounds each question spatially and temporally
and classifies over the answer vocabulary. Every question of a validation or test clip is
answered, and accuracy is tallied per question type as the official
``net_grd_avst/main_avst.py`` test loop (:class:`~avpretrain.metrics.music_avqa.AVQAAccuracy`).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.aggregation import SumMetric

from avpretrain.heads.music_avqa import AVQAHead
from avpretrain.metrics.music_avqa import TYPE_NAMES, AVQAAccuracy
from avpretrain.tasks.base import TaskModule, collect

log = logging.getLogger(__name__)

_TYPES = list(TYPE_NAMES)  # type id -> (modality, type); ids past the end are other types
_OTHER = ("Other", "Other")


def load_answers(answers: str | list[str]) -> list[str]:
    """The answer vocabulary: a JSON list file, or the list itself.

    Raises:
        ValueError: the file is not a JSON list of strings, or answers repeat.
    """
    if isinstance(answers, str):
        path = Path(answers)
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"answer vocabulary {path}: cannot read a JSON list: {err}") from err
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ValueError(f"answer vocabulary {path}: expected a JSON list of strings")
        answers = values
    if len(set(answers)) != len(answers) or not answers:
        raise ValueError(f"answer vocabulary must be non-empty and unique, got {len(answers)}")
    return list(answers)


def metric_key(name: str) -> str:
    """Log name of an official accuracy name: ``"AV counting"`` -> ``"acc_av_counting"``."""
    return "acc" if name == "Overall" else "acc_" + re.sub(r"\W+", "_", name.lower())


class MusicAVQATask(TaskModule):
    """Audio-visual question answering with the ST-AVQA head over T segments per clip.

    Args:
        head: :class:`~avpretrain.heads.music_avqa.AVQAHead`; its widths are bound here.
        answers: answer vocabulary: the JSON list file written by ``avpretrain
            convert-music-avqa --answer-vocab`` (MUSIC-AVQA) or by ``avpretrain synth``
            (``<world>/answers.json``), or the list itself.
        num_segments: T, segments per clip (the official loader keeps 10 of MUSIC-AVQA's 60 s:
            every 6th second). The data's ``num_frames_per_clip`` should equal it.
        train_questions: questions per clip per training step, drawn at random; None uses all
            of them (each clip is encoded once for all its questions).
        match_weight: weight of the audio-visual matching loss (0.5 officially; 0 disables).
        **kwargs: the common frame's arguments (:class:`~avpretrain.tasks.base.TaskModule`);
            ``inputs`` must be ``av``.
    """

    head: AVQAHead  # the interface this task calls (bind, forward, ...)

    def __init__(
        self,
        head: AVQAHead,
        answers: str | list[str],
        num_segments: int = 3,
        train_questions: int | None = 1,
        match_weight: float = 0.5,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("inputs", "av") != "av":
            raise ValueError(f"music_avqa needs inputs='av', got {kwargs['inputs']!r}")
        if num_segments < 1 or (train_questions is not None and train_questions < 1):
            raise ValueError(
                f"need num_segments, train_questions >= 1: {num_segments}, {train_questions}"
            )
        super().__init__(head=head, **kwargs)
        if self.backbone.video_encoder.is_clip:
            raise ValueError("music_avqa encodes one frame per segment: use a frame encoder")
        self.answers = load_answers(answers)
        self.answer_index = {a: i for i, a in enumerate(self.answers)}
        self.head.bind(
            self.backbone.audio_encoder.embed_dim,
            self.backbone.video_encoder.embed_dim,
            len(self.answers),
        )
        self.accuracy = AVQAAccuracy()
        self.unknown_answers = SumMetric()  # true answers outside the vocabulary (label -1)

    def segment_features(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        """Per-segment ``audio`` [B, T, Da] embeddings and ``video`` [B, T, N, Dv] patch tokens."""
        t = self.hparams.num_segments
        enc = self.encode_segments(batch, t)
        b = batch["audio"].shape[0]
        prefix = self.backbone.video_encoder.num_prefix_tokens
        video = enc["video_tokens"][:, prefix:]
        return enc["audio_embedding"].view(b, t, -1), video.reshape(b, t, *video.shape[1:])

    def select_questions(self, batch: dict[str, Any], train: bool) -> dict[str, Any]:
        """Flatten the batch's questions.

        Returns ``texts`` (Q strings), ``clip_index``, ``labels`` (answer index, -1 outside the
        vocabulary) and ``types`` (type ids), [Q] long each.
        """
        if "questions" not in batch:
            raise ValueError(
                "batch has no 'questions': set the data's targets to "
                "avpretrain.tasks.targets.music_avqa.question_targets"
            )
        k = self.hparams.train_questions
        texts, clips, labels, types = [], [], [], []
        for b, questions in enumerate(batch["questions"]):
            if train and k is not None and len(questions) > k:
                questions = [questions[i] for i in torch.randperm(len(questions))[:k].tolist()]
            for q in questions:
                texts.append(q["question"])
                clips.append(b)
                labels.append(self.answer_index.get(q["answer"], -1))
                pair = (q["modality"], q["type"])
                types.append(_TYPES.index(pair) if pair in TYPE_NAMES else len(_TYPES))
        longs = torch.tensor([clips, labels, types], dtype=torch.long, device=self.device)
        return {"texts": texts, "clip_index": longs[0], "labels": longs[1], "types": longs[2]}

    def forward(self, batch: dict[str, Any], train: bool = False) -> dict[str, Any]:
        """The head's outputs for the batch's questions, plus the selection (``labels``, ...).

        ``train`` samples ``train_questions`` per clip and adds the matching logits.
        """
        selection = self.select_questions(batch, train)
        audio, video = self.segment_features(batch)
        with_match = train and self.hparams.match_weight > 0
        out = self.head(audio, video, selection["texts"], selection["clip_index"], with_match)
        return {**out, **selection}

    def _losses(self, out: dict[str, Any]) -> dict[str, Tensor]:
        qa = F.cross_entropy(out["logits"], out["labels"], ignore_index=-1)
        losses = {"loss": qa, "loss_qa": qa}
        if "match_logits" in out and self.hparams.match_weight > 0:
            match = F.cross_entropy(out["match_logits"], out["match_labels"])
            losses.update(loss=qa + self.hparams.match_weight * match, loss_match=match)
        return losses

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """Answer (plus match) loss of the sampled questions; logs ``train/loss*``."""
        out = self(batch, train=True)
        losses = self._losses(out)
        size = len(out["texts"])
        for name, value in losses.items():
            self.log(f"train/{name}", value, prog_bar=name == "loss", batch_size=size)
        return losses["loss"]

    def _eval_step(self, batch: dict[str, Any], stage: str) -> None:
        out = self(batch)
        self.log(f"{stage}/loss", self._losses(out)["loss"], batch_size=len(out["texts"]))
        labels, types = out["labels"], out["types"].tolist()
        self.accuracy.update(
            out["logits"].argmax(-1),
            labels,
            [_TYPES[t] if t < len(_TYPES) else _OTHER for t in types],
        )
        self.unknown_answers.update((labels < 0).sum())

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Log ``val/loss``; keep each question's predicted answer, label and type."""
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """As :meth:`validation_step`, under ``test/``."""
        self._eval_step(batch, "test")

    def epoch_scores(self, stage: str) -> dict[str, float]:
        """Answer accuracy per question type (``acc_*``), ``acc`` and ``questions``, all ranks."""
        unknown = int(self.unknown_answers.compute()) if self.unknown_answers.update_called else 0
        self.unknown_answers.reset()
        if unknown:
            log.warning(
                "%d %s answers are outside the answer vocabulary: counted wrong", unknown, stage
            )
        scores = collect(self.accuracy)
        if not scores:
            return {}
        questions = scores.pop("count")
        return {**{metric_key(k): v for k, v in scores.items()}, "questions": questions}
