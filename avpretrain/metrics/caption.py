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

import logging
import re
import shutil
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PUNCTUATIONS, PTBTokenizer

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


class CaptionMetrics:
    """Collects generated answers and their references; :meth:`compute` scores them all.

    Args:
        tokenizer: see :func:`caption_scores`.
        meteor: see :func:`caption_scores`.
    """

    def __init__(self, tokenizer: str = "auto", meteor: bool = True) -> None:
        self.tokenizer, self.meteor = tokenizer, meteor
        self.reset()

    def reset(self) -> None:
        """Forget everything collected."""
        self.predictions: dict[Hashable, str] = {}
        self.references: dict[Hashable, list[str]] = {}

    def update(
        self, keys: Sequence[Hashable], predictions: Sequence[str], references: Sequence[Any]
    ) -> None:
        """Add answers.

        Args:
            keys: one unique key per answer (dialog and turn).
            predictions: the generated answers.
            references: per answer, one reference string or a list of them.
        """
        if not len(keys) == len(predictions) == len(references):
            raise ValueError(
                f"{len(keys)} keys, {len(predictions)} predictions, {len(references)} references"
            )
        for key, pred, refs in zip(keys, predictions, references, strict=True):
            if key in self.predictions:
                raise ValueError(f"answer {key!r} added twice")
            self.predictions[key] = str(pred)
            self.references[key] = [refs] if isinstance(refs, str) else [str(r) for r in refs]

    def compute(self) -> dict[str, Any]:
        """The scores of :func:`caption_scores`, plus ``tokenizer`` and ``answers``.

        ``tokenizer`` is ``ptb`` or ``simple``; ``answers`` is how many were scored.
        """
        if not self.predictions:
            raise ValueError("CaptionMetrics.compute: no update since reset")
        scores, used = caption_scores(
            self.predictions, self.references, self.tokenizer, self.meteor
        )
        if used != "ptb":
            log.warning("scored with the simple tokenizer, not the official PTB tokenizer")
        if self.meteor and "METEOR" not in scores:
            log.warning("METEOR unavailable (no java on the PATH): left out")
        return {**scores, "tokenizer": used, "answers": len(self.predictions)}
