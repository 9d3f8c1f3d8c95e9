"""The alignment filter: thresholds per criterion, applied stage by stage in the paper's order.

ACAV-1M filters in three stages, each on the clips the previous one kept:

1. ``instance``: ``audio_visual`` (the audio belongs to this video);
2. ``temporal``: ``temporal`` (the audio is in step with the frames);
3. ``language``: ``text_audio`` and ``text_visual`` (the caption describes the sound and the
   picture; CLAP and CLIP) and ``text_av`` (the caption describes the clip; the own model's
   retrieval head); a clip must pass every language threshold that is set.

A threshold is an absolute score (keep ``score >= t``) or, with ``quantile=True``, a fraction
``q`` in [0, 1]: keep the clips at or above the ``q``-quantile (linear interpolation, numpy's
default) of that score among the clips *entering the stage*, so ``q = 0.2`` drops about the
lowest fifth at each stage. A clip without a score for a criterion (no caption, or a score the
embedders could not give) passes that criterion and is counted as ``skipped`` in the stage record;
a criterion no clip has a score for is not filtered on (a stage left with none is inactive).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)

STAGES: dict[str, tuple[str, ...]] = {
    "instance": ("audio_visual",),
    "temporal": ("temporal",),
    "language": ("text_audio", "text_visual", "text_av"),
}
CRITERIA = tuple(c for criteria in STAGES.values() for c in criteria)


@dataclass
class StageResult:
    """What one stage did.

    Attributes:
        name: stage name.
        entered: clips entering the stage.
        kept: clips leaving it.
        skipped: entering clips that lacked a score for at least one of its set criteria.
        thresholds: the absolute threshold applied per criterion (quantiles resolved).
        active: False when the stage was switched off or had no threshold set.
    """

    name: str
    entered: int
    kept: int
    skipped: int = 0
    thresholds: dict[str, float] = field(default_factory=dict)
    active: bool = True


@dataclass
class FilterResult:
    """Outcome of :func:`filter_scores`: ``keep`` per clip and one record per stage."""

    keep: list[bool]
    stages: list[StageResult]


def parse_thresholds(text: str) -> dict[str, float]:
    """``"audio_visual=0.6,temporal=0.5"`` -> ``{"audio_visual": 0.6, "temporal": 0.5}``."""
    out: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or name.strip() not in CRITERIA:
            raise ValueError(f"bad threshold {item!r}: expected NAME=VALUE with NAME in {CRITERIA}")
        out[name.strip()] = float(value)
    return out


def _check(thresholds: Mapping[str, float], quantile: bool, stages: Sequence[str]) -> None:
    for name in stages:
        if name not in STAGES:
            raise ValueError(f"unknown stage {name!r}; expected some of {list(STAGES)}")
    for name, value in thresholds.items():
        if name not in CRITERIA:
            raise ValueError(f"unknown criterion {name!r}; expected one of {CRITERIA}")
        if not 0.0 <= value <= 1.0:
            kind = "quantile" if quantile else "score threshold"
            raise ValueError(f"{kind} for {name} must be in [0, 1], got {value}")


def _scored(scores: Sequence[Mapping[str, float | None]], criterion: str, stage: str) -> bool:
    """Whether any clip has a ``criterion`` score; if none has, the criterion is dropped (logged)."""
    if any(s.get(criterion) is not None for s in scores):
        return True
    log.warning("curation: %s stage: no clip has a %s score; not filtered on", stage, criterion)
    return False


def filter_scores(
    scores: Sequence[Mapping[str, float | None]],
    thresholds: Mapping[str, float],
    quantile: bool = False,
    stages: Sequence[str] = tuple(STAGES),
) -> FilterResult:
    """Decide which clips to keep.

    Args:
        scores: per clip ``{criterion: score or None}``.
        thresholds: per criterion, a score (or a quantile with ``quantile=True``), in [0, 1];
            criteria without a threshold are not filtered on.
        quantile: read thresholds as quantiles of the scores entering each stage.
        stages: the stages switched on; they always run in the paper's order.

    Returns:
        keep flags in input order and a record of every stage (inactive ones included).
    """
    _check(thresholds, quantile, stages)
    alive = np.ones(len(scores), dtype=bool)
    results = []
    for stage, criteria in STAGES.items():
        entered = int(alive.sum())
        criteria = tuple(c for c in criteria if c in thresholds and _scored(scores, c, stage))
        if stage not in stages or not criteria:
            results.append(StageResult(stage, entered, entered, active=False))
            continue
        passed = alive.copy()
        missing = np.zeros(len(scores), dtype=bool)
        resolved = {}
        for c in criteria:
            values = np.array([np.nan if s.get(c) is None else s[c] for s in scores], dtype=float)
            have = alive & ~np.isnan(values)
            missing |= alive & np.isnan(values)
            limit = thresholds[c]
            if quantile:
                limit = float(np.quantile(values[have], limit)) if have.any() else float("nan")
            resolved[c] = limit
            # a clip without this score passes it (NaN compares False, so test explicitly)
            passed &= np.isnan(values) | (values >= limit)
        if missing.any():
            log.info("curation: %s stage: %d clips without a score pass it", stage, missing.sum())
        alive = passed
        results.append(StageResult(stage, entered, int(alive.sum()), int(missing.sum()), resolved))
    return FilterResult(alive.tolist(), results)
