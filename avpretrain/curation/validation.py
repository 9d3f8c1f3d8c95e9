"""How well each curation stage catches the corruption it is meant for (synthetic ground truth).

The synthetic world (``avpretrain synth --corrupt F``) corrupts clips in three known ways, one per
stage of the filter: ``swap_audio`` (instance: ``audio_visual``), ``shift_audio`` (temporal:
``temporal``) and ``swap_caption`` (language: ``text_av``, ``text_audio``, ``text_visual``).
A stage *flags* a clip whose score is below its threshold (the filter keeps ``score >= t``).

Each stage is judged on the clean clips plus the clips of its own corruption kind: another kind
is left out, since a stage dropping, say, a swapped-audio clip on its timing is no error. On that
population the positives are the corrupted clips; precision is the corrupted share of the flagged
clips and recall the flagged share of the corrupted ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# (stage, criterion, corruption it should catch, recall wanted at TARGET_PRECISION)
STAGE_TARGETS: tuple[tuple[str, str, str, float], ...] = (
    ("instance", "audio_visual", "swap_audio", 0.9),
    ("temporal", "temporal", "shift_audio", 0.8),
    ("language", "text_av", "swap_caption", 0.9),
    ("language", "text_audio", "swap_caption", 0.9),
    ("language", "text_visual", "swap_caption", 0.9),
)
TARGET_PRECISION = 0.9
CLEAN = "clean"


def precision_recall(
    scores: Sequence[float], positive: Sequence[bool], threshold: float
) -> tuple[float, float, int]:
    """Precision and recall of flagging ``score < threshold`` as positive.

    Args:
        scores: N scores.
        positive: N ground-truth flags (True: corrupted).
        threshold: clips scoring below it are flagged.

    Returns:
        ``(precision, recall, flagged)``; precision is NaN when nothing is flagged and recall
        NaN when there is no positive.
    """
    s, y = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
    if s.shape != y.shape:
        raise ValueError(f"scores {s.shape} and labels {y.shape} differ in shape")
    flagged = s < threshold
    hits = int((flagged & y).sum())
    precision = hits / flagged.sum() if flagged.any() else math.nan
    recall = hits / y.sum() if y.any() else math.nan
    return float(precision), float(recall), int(flagged.sum())


def recall_at_precision(
    scores: Sequence[float], positive: Sequence[bool], min_precision: float = TARGET_PRECISION
) -> tuple[float, float | None]:
    """The highest recall over all thresholds whose precision is at least ``min_precision``.

    Every useful threshold sits just above one of the scores (flag that score and all below),
    so those are the thresholds swept.

    Returns:
        ``(recall, threshold)``; ``(0.0, None)`` when no threshold reaches the precision, and
        ``(nan, None)`` when there is no positive.
    """
    s, y = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
    if s.shape != y.shape:
        raise ValueError(f"scores {s.shape} and labels {y.shape} differ in shape")
    if not y.any():
        return math.nan, None
    order = np.argsort(s, kind="stable")
    s, y = s[order], y[order]
    hits, flagged = np.cumsum(y), np.arange(1, len(s) + 1)
    # only the last of a run of equal scores is a reachable cut (ties are flagged together)
    cut = np.append(s[1:] != s[:-1], True)
    ok = cut & (hits / flagged >= min_precision)
    if not ok.any():
        return 0.0, None
    best = int(np.flatnonzero(ok)[np.argmax(hits[ok])])
    return float(hits[best] / y.sum()), float(np.nextafter(s[best], np.inf))


@dataclass
class StageCheck:
    """One stage's record against its corruption kind.

    Attributes:
        stage: filter stage.
        criterion: the score it filters on.
        corruption: the corruption kind it should catch.
        clean: clean clips with a score.
        corrupted: clips of that kind with a score.
        threshold: the stage's threshold (None: not set).
        precision: precision at ``threshold``.
        recall: recall at ``threshold``.
        recall_at_target: best recall at ``TARGET_PRECISION``.
        threshold_at_target: the threshold that reaches it (None if none does).
        target: recall wanted at ``TARGET_PRECISION``.
    """

    stage: str
    criterion: str
    corruption: str
    clean: int
    corrupted: int
    threshold: float | None
    precision: float
    recall: float
    recall_at_target: float
    threshold_at_target: float | None
    target: float

    @property
    def met(self) -> bool:
        """Whether ``recall_at_target`` reaches ``target``."""
        return self.recall_at_target >= self.target


def check_stages(
    records: Sequence[Mapping],
    thresholds: Mapping[str, float] | None = None,
    targets: Sequence[tuple[str, str, str, float]] = STAGE_TARGETS,
) -> list[StageCheck]:
    """Judge every stage whose criterion was scored.

    Args:
        records: per clip ``{"corruption": kind or "clean", "scores": {criterion: float|None}}``
            (the records ``avpretrain curate`` caches in ``scores/<shard>.json``).
        thresholds: absolute threshold per criterion, for the operating point.
        targets: ``(stage, criterion, corruption, wanted recall)`` rows to judge.

    Returns:
        one :class:`StageCheck` per row of ``targets`` with scored clips of both kinds.
    """
    thresholds = thresholds or {}
    checks = []
    for stage, criterion, kind, target in targets:
        pairs = [
            (r["scores"][criterion], r["corruption"] == kind)
            for r in records
            if r.get("corruption") in (CLEAN, kind) and r["scores"].get(criterion) is not None
        ]
        n_bad = sum(bad for _, bad in pairs)
        if not pairs or n_bad in (0, len(pairs)):
            continue
        scores, labels = [p[0] for p in pairs], [p[1] for p in pairs]
        limit = thresholds.get(criterion)
        precision, recall = (math.nan, math.nan)
        if limit is not None:
            precision, recall, _ = precision_recall(scores, labels, limit)
        best, at = recall_at_precision(scores, labels)
        checks.append(
            StageCheck(
                stage, criterion, kind, len(pairs) - n_bad, n_bad, limit, precision, recall,
                best, at, target,
            )
        )  # fmt: skip
    return checks


def _f(value: float | None) -> str:
    return (
        "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"
    )


def to_markdown(checks: Sequence[StageCheck]) -> str:
    """The checks as a Markdown table."""
    p = f"{TARGET_PRECISION:g}"
    lines = [
        f"| stage | score | catches | clean / corrupted | threshold | precision | recall "
        f"| recall @ {p} precision (threshold) | target | met |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in checks:
        lines.append(
            f"| {c.stage} | {c.criterion} | {c.corruption} | {c.clean} / {c.corrupted} "
            f"| {_f(c.threshold)} | {_f(c.precision)} | {_f(c.recall)} "
            f"| {_f(c.recall_at_target)} ({_f(c.threshold_at_target)}) | {c.target:g} "
            f"| {'yes' if c.met else 'no'} |"
        )
    return "\n".join(lines) + "\n"
