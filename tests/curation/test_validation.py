"""Precision and recall of the curation stages, worked by hand on small score lists."""

from __future__ import annotations

import math

import pytest

from avpretrain.curation.validation import (
    check_stages,
    precision_recall,
    recall_at_precision,
    to_markdown,
)

SCORES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
BAD = [True, True, False, True, False, False]


def test_precision_recall_by_hand() -> None:
    # below 0.35: 0.1, 0.2 (bad), 0.3 (clean) -> 2 of 3 flagged are bad, 2 of 3 bad flagged
    assert precision_recall(SCORES, BAD, 0.35) == pytest.approx((2 / 3, 2 / 3, 3))
    assert precision_recall(SCORES, BAD, 0.45) == pytest.approx((3 / 4, 1.0, 4))
    precision, recall, flagged = precision_recall(SCORES, BAD, 0.05)
    assert math.isnan(precision) and recall == 0.0 and flagged == 0
    with pytest.raises(ValueError, match="shape"):
        precision_recall(SCORES, BAD[:-1], 0.5)


def test_recall_at_precision_sweeps_every_cut() -> None:
    # cuts after 0.1: 1/1, after 0.2: 2/2, after 0.3: 2/3, after 0.4: 3/4
    recall, threshold = recall_at_precision(SCORES, BAD, 0.9)
    assert recall == pytest.approx(2 / 3)
    assert 0.2 < threshold < 0.3
    assert precision_recall(SCORES, BAD, threshold)[:2] == pytest.approx((1.0, 2 / 3))
    recall, threshold = recall_at_precision(SCORES, BAD, 0.75)
    assert recall == 1.0 and 0.4 < threshold < 0.5


def test_recall_at_precision_flags_ties_together() -> None:
    # the bad 0.1 cannot be flagged without the clean 0.1 beside it: 1/2 < 0.9
    assert recall_at_precision([0.1, 0.1, 0.5], [True, False, True], 0.9) == (0.0, None)
    recall, threshold = recall_at_precision([0.1, 0.1, 0.5], [True, False, False], 0.5)
    assert recall == 1.0 and 0.1 < threshold < 0.5
    recall, threshold = recall_at_precision([0.3, 0.4], [False, False])
    assert math.isnan(recall) and threshold is None


def _record(kind: str, av: float, temporal: float | None) -> dict:
    scores = {"audio_visual": av, "temporal": temporal, "text_audio": None, "text_av": None}
    return {"corruption": kind, "scores": scores}


def test_check_stages_judges_each_stage_on_its_own_kind() -> None:
    records = [
        _record("clean", 0.8, 0.6),
        _record("clean", 0.7, 0.55),
        _record("clean", 0.3, 0.52),
        _record("swap_audio", 0.2, 0.1),
        _record("swap_audio", 0.4, 0.2),
        # a shifted clip scoring low on audio_visual is not counted against the instance stage
        _record("shift_audio", 0.05, 0.4),
        _record("swap_caption", 0.9, None),
    ]
    checks = check_stages(records, {"audio_visual": 0.5})
    assert [(c.stage, c.criterion) for c in checks] == [
        ("instance", "audio_visual"),
        ("temporal", "temporal"),
    ]
    instance, temporal = checks
    # instance: clean 0.8 0.7 0.3, bad 0.2 0.4; below 0.5: 0.2, 0.3, 0.4 -> precision 2/3, recall 1
    assert (instance.clean, instance.corrupted) == (3, 2)
    assert (instance.precision, instance.recall) == pytest.approx((2 / 3, 1.0))
    # at 0.9 precision only the cut after 0.2 qualifies: recall 1/2
    assert instance.recall_at_target == 0.5 and not instance.met
    # temporal: clean 0.6 0.55 0.52 vs shift 0.4: separable, no threshold set
    assert (temporal.clean, temporal.corrupted, temporal.threshold) == (3, 1, None)
    assert temporal.recall_at_target == 1.0 and temporal.met and math.isnan(temporal.precision)
    table = to_markdown(checks)
    assert "| instance | audio_visual | swap_audio | 3 / 2 | 0.500 | 0.667 | 1.000 |" in table
    assert table.count("\n") == 4
