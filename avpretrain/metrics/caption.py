"""Caption metrics of generated answers (AVSD), as the COCO caption evaluation computes them.

The DSTC7 / DSTC8 / DSTC10 AVSD evaluation scores generated answers with the MS-COCO caption
code (tylin/coco-caption, packaged as ``pycocoevalcap``): the Stanford PTB tokenizer (lower
case, punctuation removed), then BLEU-1..4 (corpus level, closest reference length), METEOR 1.5,
ROUGE-L and CIDEr (the package's CIDEr-D), every answer against all of its references (the
DSTC7 test set has six for the last turn). SPICE is not part of the AVSD evaluation.

``pycocoevalcap`` itself computes every number here. Its PTB tokenizer and METEOR run Java:

- Java on the ``PATH``: the PTB tokenizer and all seven metrics, as the official evaluation.
- No Java: :func:`simple_tokenize` (lower case; words, keeping in-word apostrophes; the PTB
  punctuation and brackets dropped) replaces the PTB tokenizer, and METEOR is left out of the result (never
  another number under its name). :meth:`CaptionMetrics.compute` reports which tokenizer ran
  (``tokenizer``) so a logged score says how it was made.

The METEOR scorer is one Java process (``meteor-1.5.jar``, about 5 s to load its paraphrase
tables), started on first use and kept for the rest of the Python process.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PUNCTUATIONS, PTBTokenizer
from torch import Tensor
from torchmetrics import Metric

from avpretrain.metrics._arrays import state_numpy, state_rows

log = logging.getLogger(__name__)

METRIC_NAMES = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr")
_PUNCTUATION = set(PUNCTUATIONS) | set("()[]{}")  # PTB writes brackets as -LRB- etc.
_WORD = re.compile(r"\w+(?:'\w+)*|[^\w\s]")
_meteor: Meteor | None = None


def java_available() -> bool:
    """Whether ``java`` is on the ``PATH`` (the PTB tokenizer and METEOR need it)."""
    return shutil.which("java") is not None


def simple_tokenize(text: str) -> str:
    """The fallback tokenizer without Java.

    ``"Yes, he's in the kitchen."`` -> ``"yes he's in the kitchen"`` (the PTB tokenizer gives
    ``"yes he 's in the kitchen"``).
    """
    words = _WORD.findall(text.lower().replace("\n", " "))
    return " ".join(w for w in words if w not in _PUNCTUATION)


def _meteor_scorer() -> Meteor:
    global _meteor
    if _meteor is None:
        _meteor = Meteor()
    return _meteor


def caption_scores(
    predictions: dict[Hashable, str],
    references: Mapping[Hashable, Sequence[str]],
    tokenizer: str = "auto",
    meteor: bool = True,
) -> tuple[dict[str, float], str]:
    """Corpus scores of generated answers against their references.

    Args:
        predictions: one generated answer per key.
        references: at least one reference per key, the same keys.
        tokenizer: ``auto`` (PTB with Java, else simple), ``ptb`` or ``simple``.
        meteor: compute METEOR (only done where Java is present); False saves the scorer's
            start-up where METEOR is not wanted.

    Returns:
        ``(scores, tokenizer used)``: ``scores`` holds ``Bleu_1``..``Bleu_4``, ``ROUGE_L``,
        ``CIDEr`` and, with Java, ``METEOR`` (fractions; the DSTC tables print them as is,
        papers often x 100).

    Raises:
        ValueError: keys differ, a key has no reference, or ``ptb`` without Java.
    """
    if set(predictions) != set(references):
        extra = sorted(map(str, set(predictions) ^ set(references)))[:5]
        raise ValueError(f"predictions and references have different keys, e.g. {extra}")
    if not predictions:
        raise ValueError("caption_scores: no predictions")
    empty = [k for k, refs in references.items() if not refs]
    if empty:
        raise ValueError(f"{len(empty)} answers have no reference, e.g. {empty[0]!r}")
    java = java_available()
    if tokenizer == "auto":
        tokenizer = "ptb" if java else "simple"
    if tokenizer not in ("ptb", "simple"):
        raise ValueError(f"tokenizer must be auto, ptb or simple, got {tokenizer!r}")
    if tokenizer == "ptb" and not java:
        raise ValueError("the PTB tokenizer needs java on the PATH")
    keys = list(predictions)
    index = {k: i for i, k in enumerate(keys)}  # the scorers and the tokenizer use int ids
    gts = {index[k]: [{"caption": r} for r in refs] for k, refs in references.items()}
    res = {index[k]: [{"caption": p}] for k, p in predictions.items()}
    if tokenizer == "ptb":
        ptb = PTBTokenizer()
        gts, res = ptb.tokenize(gts), ptb.tokenize(res)
    else:
        gts = {i: [simple_tokenize(c["caption"]) for c in v] for i, v in gts.items()}
        res = {i: [simple_tokenize(c["caption"]) for c in v] for i, v in res.items()}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    scores = {f"Bleu_{n + 1}": float(b) for n, b in enumerate(bleu)}
    if java and meteor:
        scores["METEOR"] = float(_meteor_scorer().compute_score(gts, res)[0])
    scores["ROUGE_L"] = float(Rouge().compute_score(gts, res)[0])
    scores["CIDEr"] = float(Cider().compute_score(gts, res)[0])
    return {k: scores[k] for k in METRIC_NAMES if k in scores}, tokenizer


class CaptionMetrics(Metric):
    """Collects generated answers and their references; :meth:`compute` scores them all.

    Strings do not pass through ``torch.distributed`` collectives, so each answer is kept as
    the UTF-8 bytes of a JSON record (``key``, ``answer``, ``references`` and any ``info``
    fields) in a ``uint8`` ``cat`` state, beside a ``cat`` state of the records' lengths: under
    DDP, ``compute`` (and :meth:`records` inside ``sync_context()``) sees every rank's answers.
    An answer added on two ranks (a distributed sampler repeats a few samples to even out the
    ranks) counts once; adding a key twice on one process is an error.

    Args:
        tokenizer: see :func:`caption_scores`.
        meteor: see :func:`caption_scores`.
        **kwargs: ``torchmetrics.Metric`` options (e.g. ``sync_on_compute``).
    """

    full_state_update = False
    text: list[Tensor]
    sizes: list[Tensor]

    def __init__(self, tokenizer: str = "auto", meteor: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tokenizer, self.meteor = tokenizer, meteor
        self.add_state("text", default=[], dist_reduce_fx="cat")  # [bytes] uint8
        self.add_state("sizes", default=[], dist_reduce_fx="cat")  # [answers] bytes per record
        self._keys: set[Hashable] = set()  # this process's keys since reset

    def update(
        self,
        keys: Sequence[str | int],
        predictions: Sequence[str],
        references: Sequence[Any],
        info: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        """Add answers.

        Args:
            keys: one unique key per answer (dialog and turn), a string or an int.
            predictions: the generated answers.
            references: per answer, one reference string or a list of them.
            info: per answer, more JSON fields kept in its record (not scored).
        """
        info = info if info is not None else [{}] * len(keys)
        if not len(keys) == len(predictions) == len(references) == len(info):
            raise ValueError(
                f"{len(keys)} keys, {len(predictions)} predictions, {len(references)} references, "
                f"{len(info)} info"
            )
        records = []
        for key, pred, refs, extra in zip(keys, predictions, references, info, strict=True):
            if key in self._keys:
                raise ValueError(f"answer {key!r} added twice")
            self._keys.add(key)
            refs = [refs] if isinstance(refs, str) else [str(r) for r in refs]
            record = {**extra, "key": key, "answer": str(pred), "references": refs}
            records.append(json.dumps(record).encode())
        data = np.frombuffer(b"".join(records), dtype=np.uint8).copy()
        self.text.append(torch.from_numpy(data).to(self.device))
        sizes = torch.tensor([len(r) for r in records], dtype=torch.long, device=self.device)
        self.sizes.append(sizes)

    def reset(self) -> None:
        """Forget everything collected."""
        super().reset()
        self._keys = set()

    def records(self) -> list[dict[str, Any]]:
        """The answers in the states, one record per key, in the order first added.

        Each record holds ``key``, ``answer``, ``references`` and the ``info`` fields. Outside
        ``sync_context()`` these are this process's answers.
        """
        if not state_rows(self.sizes):
            return []
        data, start = state_numpy(self.text).tobytes(), 0
        unique: dict[Hashable, dict[str, Any]] = {}
        for size in state_numpy(self.sizes).tolist():
            record = json.loads(data[start : start + size])
            start += size
            unique[record["key"]] = record
        return list(unique.values())

    def compute(self) -> dict[str, Any]:
        """The scores of :func:`caption_scores`, plus ``tokenizer`` and ``answers``.

        ``tokenizer`` is ``ptb`` or ``simple``; ``answers`` is how many were scored.
        """
        rows = self.records()
        if not rows:
            raise ValueError("CaptionMetrics.compute: no update since reset")
        repeated = state_rows(self.sizes) - len(rows)
        if repeated:
            log.info("%d answers were added twice (padded ranks): scored once", repeated)
        scores, used = caption_scores(
            {r["key"]: r["answer"] for r in rows},
            {r["key"]: r["references"] for r in rows},
            self.tokenizer,
            self.meteor,
        )
        if used != "ptb":
            log.warning("scored with the simple tokenizer, not the official PTB tokenizer")
        if self.meteor and "METEOR" not in scores:
            log.warning("METEOR unavailable (no java on the PATH): left out")
        return {**scores, "tokenizer": used, "answers": len(rows)}
