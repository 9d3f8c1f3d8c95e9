"""Audio-visual scene-aware dialog (AVSD): generate the answer to a question about a clip.

Given a clip's audio and frames, its caption, the dialog so far and a question, the model
writes the answer. A clip is cut into T segments as in music_avqa and parsing (T fbank spans and
one frame per span, :meth:`~avpretrain.tasks.base.TaskModule.encode_segments`); the
:class:`~avpretrain.heads.dialog.DialogHead` decoder attends to the segments' audio-visual
tokens and to the encoded caption, history and question, and writes the answer byte by byte:
teacher forcing in training, greedy or beam search in evaluation. Generated answers are scored
against their references with the COCO caption metrics of the official AVSD evaluation
(:mod:`avpretrain.metrics.caption`: BLEU-1..4, METEOR, ROUGE-L, CIDEr).

Each evaluation also scores a floor: every question answered with the most frequent training
answer of its question type (``dialog_targets``: the synthetic ``"<modality> <type>"``, AVSD's
first question word), logged as ``<stage>/baseline_<metric>``. The training answers are counted
during the first training epoch (and kept in checkpoints); an evaluation before any training
logs no baseline.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from avpretrain.arguments import check_choice
from avpretrain.heads.dialog import DialogHead
from avpretrain.heads.text import PAD
from avpretrain.metrics.caption import CaptionMetrics, caption_scores
from avpretrain.tasks.base import TaskModule, collect

log = logging.getLogger(__name__)

EvalTurns = Literal["last", "all"]
_SHOWN = 3  # generated answers logged per evaluation


def history_text(turns: list[dict[str, Any]], upto: int, max_bytes: int, rounds: int | None) -> str:
    """The dialog before round ``upto``: ``"q1 a1 q2 a2 ..."``, the most recent rounds that fit.

    Args:
        turns: the dialog's rounds (``question``, ``answer``).
        upto: index of the current round (rounds before it are the history).
        max_bytes: UTF-8 budget (the text encoder's length less its two special tokens);
            the oldest rounds are dropped until the rest fits (one round longer than the
            budget is kept and cut by the tokenizer).
        rounds: keep at most this many previous rounds (None: as many as fit).
    """
    start = 0 if rounds is None else max(0, upto - rounds)
    parts = [f"{t['question']} {t['answer']}" for t in turns[start:upto]]
    while len(parts) > 1 and len(" ".join(parts).encode("utf-8")) > max_bytes:
        parts.pop(0)
    return " ".join(parts)


class DialogTask(TaskModule):
    """Answer generation over T segments per clip with the transformer decoder head.

    Args:
        head: :class:`~avpretrain.heads.dialog.DialogHead`; its input widths are bound here.
        num_segments: T, segments per clip (the data's ``num_frames_per_clip`` should equal it).
        train_turns: rounds per dialog per training step, drawn at random; None uses all of
            them (the clip is encoded once for all its rounds).
        eval_turns: rounds answered in validation and test: ``last`` (the DSTC7 / DSTC8 test
            protocol: the last round of each dialog, against all its references) or ``all``.
        history_rounds: previous rounds given as history (None: as many as fit the text
            encoder's length).
        use_caption: give the clip's caption (AVSD's ``caption``) as text.
        use_summary: also give AVSD's ``summary`` (written by the questioner after the dialog,
            so the DSTC challenges left it out of the test protocol).
        beam_size: beam width at evaluation; 1 decodes greedily.
        length_penalty: AVSD's per-token bonus of a finished beam hypothesis.
        max_length: bytes generated at most (None: the head's ``max_answer_length``).
        meteor: compute METEOR (where Java is present; see :mod:`avpretrain.metrics.caption`).
        tokenizer: caption metrics' tokenizer: ``auto`` (PTB with Java), ``ptb`` or ``simple``.
        **kwargs: the common frame's arguments (:class:`~avpretrain.tasks.base.TaskModule`);
            ``inputs`` must be ``av``.
    """

    head: DialogHead  # the interface this task calls (bind, forward, ...)

    def __init__(
        self,
        head: DialogHead,
        num_segments: int = 3,
        train_turns: int | None = None,
        eval_turns: EvalTurns = "last",
        history_rounds: int | None = None,
        use_caption: bool = True,
        use_summary: bool = False,
        beam_size: int = 5,
        length_penalty: float = 0.0,
        max_length: int | None = None,
        meteor: bool = True,
        tokenizer: str = "auto",
        **kwargs: Any,
    ) -> None:
        if kwargs.get("inputs", "av") != "av":
            raise ValueError(f"dialog needs inputs='av', got {kwargs['inputs']!r}")
        check_choice("eval_turns", eval_turns, EvalTurns)
        counts: dict[str, int | None] = {"num_segments": num_segments, "beam_size": beam_size}
        counts.update(train_turns=train_turns, history_rounds=history_rounds)
        low = {k: v for k, v in counts.items() if v is not None and v < 1}
        if low:
            raise ValueError(f"need values >= 1, got {low}")
        super().__init__(head=head, **kwargs)
        if self.backbone.video_encoder.is_clip:
            raise ValueError("dialog encodes one frame per segment: use a frame encoder")
        self.head.bind(
            self.backbone.audio_encoder.embed_dim,
            self.backbone.video_encoder.embed_dim,
            num_segments,
        )
        self.answer_counts: dict[str, Counter[str]] = {}
        self.captions = CaptionMetrics(tokenizer, meteor)

    def segment_tokens(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        """Per-segment ``audio`` [B, T, Da] embeddings and ``video`` [B, T, N, Dv] frame tokens.

        Video tokens are patch tokens, or the pooled embedding as N = 1 without ``video_patches``.
        """
        t = self.hparams.num_segments
        enc = self.encode_segments(batch, t)
        b = batch["audio"].shape[0]
        if self.head.video_patches:
            video = enc["video_tokens"][:, self.backbone.video_encoder.num_prefix_tokens :]
        else:
            video = enc["video_embedding"][:, None]
        return enc["audio_embedding"].view(b, t, -1), video.reshape(b, t, *video.shape[1:])

    def select_turns(self, batch: dict[str, Any], train: bool) -> dict[str, Any]:
        """Flatten the batch's dialogs into rounds to answer.

        Returns ``clip_index`` [Q] long, and Q of each of ``texts`` (per role), ``answers``,
        ``references``, ``types`` and ``keys`` (``"<dialog id>#<round>"``).
        """
        if "dialog" not in batch:
            raise ValueError(
                "batch has no 'dialog': set the data's targets to "
                "avpretrain.tasks.targets.dialog.dialog_targets"
            )
        hp = self.hparams
        budget = self.head.text_encoder.tokenizer.max_length - 2
        rows: dict[str, list[Any]] = {
            k: [] for k in ("clip", "caption", "history", "question", "answer", "refs", "type")
        }
        keys = []
        for b, dialog in enumerate(batch["dialog"]):
            turns = dialog["turns"]
            if train:
                chosen = list(range(len(turns)))
                if hp.train_turns is not None and len(turns) > hp.train_turns:
                    chosen = sorted(torch.randperm(len(turns))[: hp.train_turns].tolist())
            else:
                chosen = [len(turns) - 1] if hp.eval_turns == "last" else list(range(len(turns)))
            context = dialog["caption"] if hp.use_caption else ""
            if hp.use_summary and dialog.get("summary"):
                context = f"{context} {dialog['summary']}".strip()
            for t in chosen:
                rows["clip"].append(b)
                rows["caption"].append(context)
                rows["history"].append(history_text(turns, t, budget, hp.history_rounds))
                rows["question"].append(turns[t]["question"])
                rows["answer"].append(turns[t]["answer"])
                rows["refs"].append(list(turns[t]["references"]))
                rows["type"].append(turns[t]["type"])
                keys.append(f"{dialog['id']}#{t}")
        texts = {"history": rows["history"], "question": rows["question"]}
        if hp.use_caption or hp.use_summary:
            texts["caption"] = rows["caption"]
        clip = torch.tensor(rows["clip"], dtype=torch.long, device=self.device)
        return {
            "clip_index": clip,
            "texts": texts,
            "answers": rows["answer"],
            "references": rows["refs"],
            "types": rows["type"],
            "keys": keys,
        }

    def memory(self, batch: dict[str, Any], selection: dict[str, Any]) -> tuple[Tensor, Tensor]:
        """The decoder's memory [Q, M, dim] and its mask [Q, M] for the selected rounds."""
        audio, video = self.segment_tokens(batch)
        return self.head.memory(audio, video, selection["clip_index"], selection["texts"])

    def answer_loss(self, memory: Tensor, mask: Tensor, answers: list[str]) -> Tensor:
        """Teacher-forced cross-entropy of the answers' bytes (``eos`` included)."""
        inputs, labels = self.head.targets(answers)
        logits = self.head(memory, mask, inputs)
        return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=PAD)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """Answer loss of the batch's selected rounds; logs ``train/loss``.

        In the first epoch, also counts the training answers (the baseline's).
        """
        if self.current_epoch == 0:  # the baseline's answer counts: every round, once
            for dialog in batch["dialog"]:
                for turn in dialog["turns"]:
                    self.answer_counts.setdefault(turn["type"], Counter())[turn["answer"]] += 1
        selection = self.select_turns(batch, train=True)
        memory, mask = self.memory(batch, selection)
        loss = self.answer_loss(memory, mask, selection["answers"])
        self.log("train/loss", loss, prog_bar=True, batch_size=len(selection["answers"]))
        return loss

    def generate(self, memory: Tensor, mask: Tensor) -> list[str]:
        """Answers of the rounds whose memory is given, decoded as configured."""
        hp = self.hparams
        return self.head.generate(memory, mask, hp.beam_size, hp.length_penalty, hp.max_length)

    def _eval_step(self, batch: dict[str, Any], stage: str) -> None:
        selection = self.select_turns(batch, train=False)
        memory, mask = self.memory(batch, selection)
        size = len(selection["answers"])
        loss = self.answer_loss(memory, mask, selection["answers"])
        self.log(f"{stage}/loss", loss, batch_size=size)
        info = [
            {"question": question, "type": kind}
            for question, kind in zip(
                selection["texts"]["question"], selection["types"], strict=True
            )
        ]
        self.captions.update(
            selection["keys"], self.generate(memory, mask), selection["references"], info
        )

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Log ``val/loss``; generate and keep answers to the batch's rounds."""
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """As :meth:`validation_step`, under ``test/``."""
        self._eval_step(batch, "test")

    def _gather(self, items: list[Any]) -> list[Any]:
        """``items`` of every rank, concatenated (picklable objects; strings here)."""
        if self.trainer.world_size == 1:
            return items
        parts: list[list[Any]] = [[] for _ in range(self.trainer.world_size)]
        dist.all_gather_object(parts, items)
        return [x for part in parts for x in part]

    def baseline_answers(self, types: list[str]) -> list[str] | None:
        """The most frequent training answer of each question type; None before training.

        A type unseen in training gets the most frequent answer of all.
        """
        counts: dict[str, Counter[str]] = {}
        for t, a, n in self._gather(
            [(t, a, n) for t, c in self.answer_counts.items() for a, n in c.items()]
        ):
            counts.setdefault(t, Counter())[a] += n
        if not counts:
            return None
        overall = sum(counts.values(), Counter()).most_common(1)[0][0]
        return [counts[t].most_common(1)[0][0] if t in counts else overall for t in types]

    def epoch_scores(self, stage: str) -> dict[str, float]:
        """Caption metrics of every rank's answers, and of the baseline; writes the answers.

        Logged as ``<metric>``, ``baseline_<metric>``, ``answers`` (how many were scored) and
        ``ptb_tokenizer`` (1 when the official PTB tokenizer ran); the answers go to
        ``<log dir>/<stage>_answers.json``.
        """
        if not self.captions.update_called:
            return {}
        with self.captions.sync_context():  # every rank's answers
            rows = self.captions.records()
        scores = collect(self.captions)
        out = {}
        baseline = self.baseline_answers([r["type"] for r in rows])
        if baseline is not None:
            floor, _ = caption_scores(
                {r["key"]: a for r, a in zip(rows, baseline, strict=True)},
                {r["key"]: r["references"] for r in rows},
                self.hparams.tokenizer,
                self.hparams.meteor,
            )
            out.update({f"baseline_{name}": value for name, value in floor.items()})
        out.update({name: v for name, v in scores.items() if isinstance(v, float)})
        out.update(answers=float(len(rows)), ptb_tokenizer=float(scores["tokenizer"] == "ptb"))
        self._write_answers(stage, rows)
        return out

    def _write_answers(self, stage: str, rows: list[dict[str, Any]]) -> None:
        """Log the first answers; write them all to ``<log dir>/<stage>_answers.json`` (rank 0)."""
        rows = [
            {k: r[k] for k in ("key", "question", "answer", "references", "type")} for r in rows
        ]
        for r in rows[:_SHOWN]:
            log.info(
                "%s %s: %r -> %r (refs %r)",
                stage,
                r["key"],
                r["question"],
                r["answer"],
                r["references"],
            )
        if self.trainer.is_global_zero:
            out = Path(self.trainer.log_dir or self.trainer.default_root_dir)
            out.mkdir(parents=True, exist_ok=True)
            (out / f"{stage}_answers.json").write_text(json.dumps(rows, indent=1) + "\n")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the training answer counts (the baseline's) in the checkpoint."""
        checkpoint["dialog_answer_counts"] = {t: dict(c) for t, c in self.answer_counts.items()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the training answer counts stored by :meth:`on_save_checkpoint`."""
        counts = checkpoint.get("dialog_answer_counts", {})
        self.answer_counts = {t: Counter(c) for t, c in counts.items()}
